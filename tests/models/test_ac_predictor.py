"""VisionTransformerPredictorAC: block-causality, incremental (KV-cached) inference, autograd, errors."""

import pytest
import torch

from vjepa_ac.models import VisionTransformerPredictorAC, block_causal_mask, vit_ac_predictor

HW = 6  # construction grid 2 x 3 (16 x 24 px, patch 8)


def _model(**kw):
    opts = {
        "img_size": (16, 24),
        "patch_size": 8,
        "num_frames": 8,
        "embed_dim": 16,
        "predictor_embed_dim": 40,
        "depth": 2,
        "num_heads": 2,
    }
    return vit_ac_predictor(**{**opts, **kw}).eval()


def _inputs(batch, frames, hw=HW, dim=16):
    return (
        torch.randn(batch, frames * hw, dim),
        torch.randn(batch, frames, 7),
        torch.randn(batch, frames, 7),
        torch.randn(batch, frames, 6),
    )


def test_mask_matches_the_block_causal_definition():
    mask = block_causal_mask(3, 4)
    for q in range(12):
        for k in range(12):
            assert bool(mask[q, k]) == (k // 4 <= q // 4)


@pytest.mark.parametrize("frames", [1, 3, 5])
@torch.no_grad()
def test_attention_mask_is_built_at_the_size_of_the_input(frames):
    """The official predictor pre-builds a mask for its whole capacity (num_frames // tubelet_size frames, made
    as float zeros then cast to bool: 17 GB then 4.4 GB for 512 frames at 256 px); ours holds no mask and
    builds a bool [L, L] for the L tokens it is given."""
    model = _model(num_frames=1024)  # a capacity far beyond the input: must cost nothing
    assert list(model.buffers()) == []
    seen = []
    hook = model.predictor_blocks[0].register_forward_pre_hook(lambda mod, args: seen.append(args[2]))
    x, a, s, _ = _inputs(2, frames)
    model(x, a, s)
    hook.remove()
    tokens = frames * (model.cond_tokens + HW)
    assert len(seen) == 1 and seen[0].dtype == torch.bool and tuple(seen[0].shape) == (tokens, tokens)
    torch.testing.assert_close(seen[0], block_causal_mask(frames, model.cond_tokens + HW))


def test_state_dict_keys_include_unused_extrinsics_encoder():
    keys = set(_model(depth=1).state_dict())
    assert {
        "predictor_embed.weight",
        "action_encoder.weight",
        "state_encoder.weight",
        "extrinsics_encoder.weight",
    } <= keys
    assert "predictor_blocks.0.attn.qkv.weight" in keys and "predictor_proj.bias" in keys
    assert _model(depth=1).extrinsics_encoder.weight.shape == (40, 6)


@pytest.mark.parametrize("what", ["tokens", "action", "state"])
@torch.no_grad()
def test_later_frames_never_change_earlier_outputs(what):
    model = _model()
    x, a, s, _ = _inputs(2, 4)
    out = model(x, a, s)
    x2, a2, s2 = x.clone(), a.clone(), s.clone()
    changed = 2
    if what == "tokens":
        x2[:, changed * HW :] += 1.0
    elif what == "action":
        a2[:, changed] += 1.0
    else:
        s2[:, changed] += 1.0
    out2 = model(x2, a2, s2)
    torch.testing.assert_close(out2[:, : changed * HW], out[:, : changed * HW], atol=1e-6, rtol=0)
    assert not torch.allclose(out2[:, changed * HW :], out[:, changed * HW :], atol=1e-4)


@pytest.mark.parametrize("extrinsics", [False, True])
@torch.no_grad()
def test_incremental_equals_full_forward_for_every_prefix(extrinsics):
    model = _model(use_extrinsics=extrinsics)
    x, a, s, e = _inputs(3, 5)
    full = model(x, a, s, e)
    cache = model.new_cache()
    for t in range(5):
        step = model.forward_next(x[:, t * HW : (t + 1) * HW], a[:, t], s[:, t], cache, e[:, t])
        assert cache.num_frames == t + 1 and step.shape == (3, HW, 16)
        prefix = model(x[:, : (t + 1) * HW], a[:, : t + 1], s[:, : t + 1], e[:, : t + 1])
        torch.testing.assert_close(step, prefix[:, -HW:], atol=1e-5, rtol=0)
        torch.testing.assert_close(step, full[:, t * HW : (t + 1) * HW], atol=1e-5, rtol=0)


@torch.no_grad()
def test_cached_autoregressive_rollout_and_shared_context():
    model = _model()
    x, a, s, _ = _inputs(1, 1)
    samples = 4
    actions = torch.randn(samples, 3, 7)
    states = torch.randn(samples, 3, 7)
    states[:, 0] = s[:, 0]
    actions[:, 0] = a[:, 0]

    # Cached: context frame once for one sample, then shared by `samples` rollouts.
    cache = model.new_cache()
    nxt = model.forward_next(x, a[:, 0], s[:, 0], cache).repeat_interleave(samples, 0)
    shared = cache.repeat_interleave(samples)
    assert cache.batch_size == 1 and shared.batch_size == samples and shared.num_frames == 1
    cached = [nxt]
    for t in range(1, 3):
        cached.append(model.forward_next(cached[-1], actions[:, t], states[:, t], shared))

    # Reference: re-run the whole trajectory each step, as the official planner does.
    frames = [x.repeat(samples, 1, 1)]
    for t in range(3):
        pred = model(torch.cat(frames, 1), actions[:, : t + 1], states[:, : t + 1])[:, -HW:]
        torch.testing.assert_close(cached[t], pred, atol=1e-5, rtol=0)
        frames.append(pred)
    assert cache.num_frames == 1  # the original cache is untouched by the shared copies


def test_gradients_through_cached_rollout_match_full_forward():
    model = _model()
    x, a, s, _ = _inputs(2, 3)
    a_full = a.clone().requires_grad_(True)
    model(x, a_full, s).square().mean().backward()
    grads_full = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    a_inc = a.clone().requires_grad_(True)
    cache = model.new_cache()
    outs = [model.forward_next(x[:, t * HW : (t + 1) * HW], a_inc[:, t], s[:, t], cache) for t in range(3)]
    torch.cat(outs, 1).square().mean().backward()
    torch.testing.assert_close(a_inc.grad, a_full.grad, atol=1e-5, rtol=1e-4)
    for (name, p), g in zip(model.named_parameters(), grads_full):
        if name.startswith("extrinsics_encoder"):  # unused without extrinsics
            assert p.grad is None and g is None
        else:
            torch.testing.assert_close(p.grad, g, atol=1e-5, rtol=1e-4, msg=name)


@torch.no_grad()
def test_other_square_grid_is_accepted():
    model = _model()  # built for 2 x 3 patches
    x, a, s, _ = _inputs(2, 3, hw=16)  # 4 x 4 patches per frame
    full = model(x, a, s)
    assert full.shape == (2, 48, 16)
    cache = model.new_cache()
    steps = [model.forward_next(x[:, t * 16 : (t + 1) * 16], a[:, t], s[:, t], cache) for t in range(3)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="neither the construction grid 2x3"):
        model(torch.randn(1, 2 * 8, 16), a[:1, :2], s[:1, :2])


def test_errors_are_clear():
    model = _model()
    x, a, s, _e = _inputs(2, 2)
    with pytest.raises(ValueError, match=r"states must have shape \[2, 2, 7\]"):
        model(x, a, s[:, :1])
    with pytest.raises(ValueError, match="not a whole number of frames"):
        model(x[:, :-1], a, s)
    with pytest.raises(ValueError, match="use_extrinsics=True; pass extrinsics"):
        _model(use_extrinsics=True)(x, a, s)
    cache = model.new_cache()
    model.forward_next(x[:, :HW], a[:, 0], s[:, 0], cache)
    with pytest.raises(ValueError, match="cache holds batch 2"):
        model.forward_next(x[:1, :HW], a[:1, 0], s[:1, 0], cache)
    assert cache.num_frames == 1
    with pytest.raises(ValueError, match="is_frame_causal=True"):
        _model(is_frame_causal=False).forward_next(x[:, :HW], a[:, 0], s[:, 0], cache)
    with pytest.raises(TypeError, match="'action_dim'"):
        VisionTransformerPredictorAC(action_dim=7)
