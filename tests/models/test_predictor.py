"""VisionTransformerPredictor (pretraining): signatures, sorting by position, mask tokens, mask pairs."""

import pytest
import torch

from vjepa_ac.models import VisionTransformerPredictor, vit_predictor

GRID = {"img_size": 32, "patch_size": 8, "num_frames": 4, "tubelet_size": 2}  # 2 x 4 x 4 = 32 tokens


def _masks(batch, n_ctx, n_tgt, n=32):
    perm = torch.stack([torch.randperm(n) for _ in range(batch)])
    return perm[:, :n_ctx], perm[:, n_ctx : n_ctx + n_tgt]


def _random_tokens(model):
    with torch.no_grad():
        for t in model.mask_tokens:
            t.normal_()
    return model


@torch.no_grad()
def test_issue_signature_and_defaults_work():
    model = VisionTransformerPredictor(48, 32, 2, 4, num_targets=10, use_rope=True, **GRID).eval()
    assert model.num_mask_tokens == 10 and "mask_tokens.9" in model.state_dict()
    mx, my = _masks(3, 10, 6)
    assert model(torch.randn(3, 10, 48), mx, my).shape == (3, 6, 48)
    # Only the four sizes: official defaults elsewhere (no mask tokens, sin-cos, 224 px image) still run.
    plain = VisionTransformerPredictor(embed_dim=48, predictor_embed_dim=32, depth=1, num_heads=4).eval()
    assert "predictor_pos_embed" in plain.state_dict() and plain.mask_tokens is None
    mx, my = _masks(2, 50, 20, n=196)
    assert plain(torch.randn(2, 50, 48), mx, my).shape == (2, 20, 48)


@torch.no_grad()
def test_issue_argument_names_are_accepted():
    model = vit_predictor(
        embed_dim=48, predictor_embed_dim=32, depth=1, num_heads=4, use_rope=True, **GRID
    ).eval()
    x, (mx, my) = torch.randn(2, 8, 48), _masks(2, 8, 5)
    ref = model(x, mx, my)
    torch.testing.assert_close(model(context_repr=x, masks_enc=mx, masks_pred=my), ref, atol=0, rtol=0)
    with pytest.raises(TypeError, match="both masks_enc and masks_x"):
        model(x, mx, my, masks_enc=mx)
    with pytest.raises(TypeError, match="unknown option"):
        VisionTransformerPredictor(48, 32, 1, 4, num_target=3)


@pytest.mark.parametrize("use_rope", [True, False])
@torch.no_grad()
def test_outputs_depend_on_positions_not_on_token_order(use_rope):
    model = vit_predictor(
        embed_dim=48,
        predictor_embed_dim=32,
        depth=2,
        num_heads=4,
        use_rope=use_rope,
        use_mask_tokens=True,
        **GRID,
    ).eval()
    x, (mx, my) = torch.randn(2, 8, 48), _masks(2, 8, 5)
    out = model(x, mx, my)
    # Shuffle the context tokens together with their indices: same predictions.
    p = torch.randperm(8)
    torch.testing.assert_close(model(x[:, p], mx[:, p], my), out, atol=2e-6, rtol=0)
    # Shuffle the target indices: predictions follow masks_y's order.
    q = torch.randperm(5)
    torch.testing.assert_close(model(x, mx, my[:, q]), out[:, q], atol=2e-6, rtol=0)
    # Moving a target elsewhere changes its prediction.
    free = min(set(range(32)) - set(mx[0].tolist()) - set(my[0].tolist()))
    moved = my.clone()
    moved[0, 0] = free
    assert not torch.allclose(model(x, mx, moved)[0, 0], out[0, 0], atol=1e-4)


@torch.no_grad()
def test_mask_index_selects_a_token_and_pairs_are_independent():
    model = vit_predictor(
        embed_dim=48,
        predictor_embed_dim=32,
        depth=1,
        num_heads=4,
        use_rope=True,
        use_mask_tokens=True,
        num_mask_tokens=3,
        **GRID,
    ).eval()
    _random_tokens(model)
    x, (mx, my) = torch.randn(2, 8, 48), _masks(2, 8, 5)
    a, b = model(x, mx, my, mask_index=0), model(x, mx, my, mask_index=1)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(model(x, mx, my, mask_index=3), a, atol=0, rtol=0)  # modulo num_mask_tokens
    # Two (context, target) mask pairs, mask-major, equal two separate calls.
    x2, (mx2, my2) = torch.randn(2, 8, 48), _masks(2, 8, 5)
    both = model(torch.cat([x, x2]), [mx, mx2], [my, my2], mask_index=0)
    torch.testing.assert_close(both, torch.cat([a, model(x2, mx2, my2, mask_index=0)]), atol=1e-6, rtol=0)


def test_bad_masks_raise_clear_errors():
    model = vit_predictor(
        embed_dim=48, predictor_embed_dim=32, depth=1, num_heads=4, use_mask_tokens=True, **GRID
    )
    x, (mx, my) = torch.randn(2, 8, 48), _masks(2, 8, 5)
    with pytest.raises(ValueError, match="must pair up"):
        model(x, [mx, mx], [my])
    with pytest.raises(ValueError, match="matching masks_x"):
        model(x[:, :7], mx, my)
    with pytest.raises(ValueError, match="outside the sin-cos table of 32 positions"):
        model(x, mx, my + 100)
