"""VisionTransformer: shapes, masking, positions of kept tokens, options and factories."""

import pytest
import torch

from vjepa_ac.models import (
    VisionTransformer,
    vit_giant_xformers,
    vit_gigantic,
    vit_huge,
    vit_large,
    vit_tiny_rope,
)


def _tiny(**kw):
    opts = {
        "img_size": 32,
        "patch_size": 8,
        "num_frames": 4,
        "embed_dim": 32,
        "depth": 2,
        "num_heads": 2,
        "use_rope": True,
    }
    return VisionTransformer(**{**opts, **kw}).eval()


@torch.no_grad()
def test_shapes_video_image_and_other_grids():
    video = _tiny()
    assert video(torch.randn(2, 3, 4, 32, 32)).shape == (2, 2 * 16, 32)
    assert video(torch.randn(1, 3, 6, 24, 40)).shape == (1, 3 * 3 * 5, 32)  # RoPE needs no interpolation
    assert video(torch.randn(2, 3, 32, 32)).shape == (2, 16, 32)  # an image becomes a 2-frame clip
    image = _tiny(num_frames=1)
    assert image(torch.randn(2, 3, 32, 32)).shape == (2, 16, 32)
    assert image(torch.randn(2, 3, 16, 24)).shape == (2, 6, 32)
    sincos = _tiny(use_rope=False)
    assert sincos(torch.randn(1, 3, 2, 32, 32)).shape == (1, 16, 32)  # fewer frames: table rows chopped
    assert sincos(torch.randn(1, 3, 4, 48, 48)).shape == (1, 2 * 36, 32)  # interpolated table


@torch.no_grad()
def test_image_equals_repeated_frame_clip():
    model = _tiny()
    img = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(img), model(img.unsqueeze(2).repeat(1, 1, 2, 1, 1)), atol=0, rtol=0)


@torch.no_grad()
def test_masks_keep_exactly_the_requested_tokens():
    # Without blocks every output token depends only on its own patch: masking must equal gathering.
    model = _tiny(depth=0)
    x = torch.randn(2, 3, 4, 32, 32)
    full = model(x)
    m1 = torch.stack([torch.randperm(32)[:5], torch.randperm(32)[:5]])
    m2 = torch.stack([torch.randperm(32)[:5], torch.randperm(32)[:5]])
    out = model(x, masks=[m1, m2])
    assert out.shape == (4, 5, 32)
    expected = torch.cat([torch.stack([full[b, m[b]] for b in range(2)]) for m in (m1, m2)])  # mask-major
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


@pytest.mark.parametrize("use_rope", [True, False])
@torch.no_grad()
def test_kept_tokens_carry_their_own_positions(use_rope):
    # Keeping every token in a shuffled order must give the shuffled full output (positions follow the
    # tokens); keeping a subset must differ from the full output at those tokens (context is smaller).
    model = _tiny(use_rope=use_rope)
    x = torch.randn(2, 3, 4, 32, 32)
    full = model(x)
    perm = torch.stack([torch.randperm(32), torch.randperm(32)])
    shuffled = model(x, masks=perm)
    torch.testing.assert_close(
        shuffled, torch.gather(full, 1, perm[..., None].expand(-1, -1, 32)), atol=2e-6, rtol=0
    )
    subset = model(x, masks=perm[:, :8])
    assert not torch.allclose(subset, shuffled[:, :8], atol=1e-4)


def test_bad_inputs_raise_clear_errors():
    model = _tiny()
    with pytest.raises(ValueError, match="multiple of tubelet_size"):
        model(torch.randn(1, 3, 3, 32, 32))
    with pytest.raises(ValueError, match="multiples of patch_size"):
        model(torch.randn(1, 3, 4, 30, 32))
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, 1, 4, 32, 32))
    with pytest.raises(ValueError, match="rows, expected batch size 2"):
        model(torch.randn(2, 3, 4, 32, 32), masks=torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer token indices"):
        model(torch.randn(2, 3, 4, 32, 32), masks=torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"masks\[1\]: every mask must have the shape"):
        model(
            torch.randn(2, 3, 4, 32, 32),
            masks=[torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 5, dtype=torch.long)],
        )


def test_unknown_options_are_rejected_with_a_hint():
    with pytest.raises(TypeError, match=r"'use_ropee' \(did you mean 'use_rope'\?\)"):
        VisionTransformer(use_ropee=True)
    with pytest.raises(TypeError, match="mpl_ratio"):
        vit_tiny_rope(mpl_ratio=4.0)
    # The official hub's misspellings are mapped (with a warning), not silently dropped.
    with pytest.warns(UserWarning, match="use_SiLU"):
        model = _tiny(use_SiLU=True, depth=1)
    assert hasattr(model.blocks[0].mlp, "fc3")


def test_state_dict_keys_follow_the_official_layout():
    rope = _tiny(depth=1).state_dict()
    assert "pos_embed" not in rope
    assert {
        "patch_embed.proj.weight",
        "blocks.0.attn.qkv.weight",
        "blocks.0.mlp.fc2.bias",
        "norm.weight",
    } <= set(rope)
    sincos = _tiny(use_rope=False, depth=1)
    assert sincos.state_dict()["pos_embed"].shape == (1, 32, 32) and not sincos.pos_embed.requires_grad
    swiglu = _tiny(use_silu=True, depth=1, mlp_ratio=4.0).state_dict()
    # wide SwiGLU: round_up_8(int(2 * 128 / 3)) = 88
    assert swiglu["blocks.0.mlp.fc1.weight"].shape == (88, 32) and swiglu[
        "blocks.0.mlp.fc3.weight"
    ].shape == (32, 88)


def test_released_sizes_on_meta_device():
    with torch.device("meta"):
        g = vit_giant_xformers(img_size=256, num_frames=64, use_rope=True).state_dict()
        large = vit_large(use_rope=True)
        huge = vit_huge(use_rope=True)
        gigantic = vit_gigantic(use_rope=True).state_dict()
    assert g["patch_embed.proj.weight"].shape == (1408, 3, 2, 16, 16)
    assert g["blocks.39.attn.qkv.weight"].shape == (4224, 1408)
    assert g["blocks.0.mlp.fc1.weight"].shape == (6144, 1408)
    assert "blocks.40.norm1.weight" not in g
    assert gigantic["blocks.0.mlp.fc1.weight"].shape == (6656, 1664)
    assert large.blocks[0].attn.num_heads == 16 and huge.embed_dim == 1280
    assert 300e6 < sum(p.numel() for p in large.parameters()) < 310e6


def test_activation_checkpointing_gives_same_outputs_and_grads():
    plain = _tiny(use_rope=True).train()
    ckpt = _tiny(use_rope=True, use_activation_checkpointing=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 4, 32, 32)
    out_a, out_b = plain(x), ckpt(x)
    torch.testing.assert_close(out_a, out_b)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    for (name, pa), pb in zip(plain.named_parameters(), ckpt.parameters()):
        if pa.requires_grad:
            torch.testing.assert_close(pa.grad, pb.grad, msg=name)


@torch.no_grad()
def test_out_layers_and_bf16_autocast():
    model = _tiny(out_layers=[0, 1])
    x = torch.randn(1, 3, 4, 32, 32)
    outs = model(x)
    assert isinstance(outs, list) and len(outs) == 2
    ref = _tiny()
    ref.load_state_dict(model.state_dict())
    torch.testing.assert_close(outs[1], ref(x), atol=0, rtol=0)  # last block through the final norm
    assert not torch.allclose(outs[0], outs[1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = ref(x)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), ref(x), atol=0.15, rtol=0.05)
