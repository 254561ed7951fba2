"""The planning fast path (no autograd: preallocated KV buffers, shared frame-0 embedding, RoPE with a signed
table) equals the reference paths on tiny random models: the autograd path (concatenated
cache, unfused layers), the full forward, and the official recompute-the-prefix planner."""
import numpy as np
import pytest
import torch

from droid_data.conventions import integrate_actions
from planning import official_cem
from planning.cem import CEMConfig, CEMPlanner
from vjepa_ac import ac_train, runtime
from vjepa_ac.runtime import VJEPAWorldModel


@pytest.fixture(scope="module")
def wm():
    """ac-smoke's encoder (16 tokens per frame) and a 3-layer predictor of width 48 with 3 heads (head_dim 16:
    rotated and unrotated RoPE dims)."""
    torch.manual_seed(3)
    cfg = ac_train.load_ac_config("ac-smoke")
    encoder = runtime.build_encoder(ac_train.encoder_spec(cfg))
    spec = {**ac_train.predictor_spec(cfg, encoder.embed_dim), "predictor_embed_dim": 48, "depth": 3, "num_heads": 3}
    return VJEPAWorldModel(encoder, runtime.build_predictor(spec), normalize_reps=True, img_size=cfg.model.img_size)


def _inputs(wm, seed=0):
    rng = np.random.default_rng(seed)
    size = wm.img_size
    context = wm.encode(rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8))
    goal = wm.encode(rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8))
    state = torch.tensor([[0.45, 0.05, 0.3, 3.1, -0.1, 0.2, 0.1]])
    return context, state, goal


def test_no_grad_rollout_equals_the_autograd_path_and_the_full_forward(wm):
    context, state, _ = _inputs(wm)
    actions = torch.randn(6, 4, 7) * 0.05
    with torch.no_grad():
        fast = wm.rollout(context, state, actions)
    reference = wm.rollout(context, state, actions.clone().requires_grad_(True)).detach()  # concatenating path
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=0)

    # the full forward over the teacher-forced frames 0..3 (the fast path's own predictions fed back)
    states = integrate_actions(state.expand(6, -1), actions)[:, :4]
    frames = torch.cat([context.expand(6, -1, -1)[:, None], fast[:, :3]], dim=1).flatten(1, 2)
    with torch.no_grad():
        full = runtime.normalize_latents(wm.predictor(frames, actions, states), True).view_as(fast)
    torch.testing.assert_close(fast, full, atol=1e-4, rtol=0)


def test_preallocated_cache_is_filled_in_place_and_refuses_overflow(wm):
    context, state, _ = _inputs(wm)
    pred = wm.predictor
    cache = pred.new_cache(capacity=2)
    action = torch.zeros(3, 7)
    with torch.no_grad():
        pred.forward_next(context, action, state.expand(3, -1), cache)  # batch-1 context shared by 3 samples
        buffers = cache.buffers
        assert buffers is not None and buffers[0][0].shape == (3, 3, 2 * 18, 16)
        pred.forward_next(torch.zeros(3, 16, context.shape[-1]), action, state.expand(3, -1), cache)
        assert cache.buffers is buffers and cache.layers[0][0].data_ptr() == buffers[0][0].data_ptr()
        with pytest.raises(ValueError, match="full"):
            pred.forward_next(torch.zeros(3, 16, context.shape[-1]), action, state.expand(3, -1), cache)
    grad_cache = pred.new_cache(capacity=2)  # autograd on: the capacity is ignored, the past is concatenated
    pred.forward_next(context, action, state.expand(3, -1), grad_cache)
    assert grad_cache.buffers is None


@pytest.mark.parametrize("horizon", [2, 3])
def test_cem_fast_path_scores_like_the_official_planner(wm, horizon):
    """Every candidate's energy within 1e-4 of the official recompute-the-prefix CEM, same best candidate."""
    context, state, goal = _inputs(wm, seed=horizon)
    record = []
    torch.manual_seed(5)
    official_cem.official_cem(context[:, None], state[:, None], goal[:, None],
                              official_cem.prefix_step(wm.predictor, 16, True), rollout=horizon, cem_steps=3,
                              samples=40, topk=5, record=record)
    wm.chunk_tokens = 5 * 18  # chunks of 5 samples: several chunks, as on the CPU
    try:
        ours = CEMPlanner(CEMConfig(horizon=horizon, iterations=3, samples=40, topk=5, seed=5)).plan(
            wm, context, state, goal)
    finally:
        wm.chunk_tokens = None
    reference = torch.stack(record)
    assert (ours.energies - reference).abs().max() < 1e-4
    assert torch.equal(ours.energies.argmin(dim=1), reference.argmin(dim=1))
