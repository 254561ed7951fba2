"""VJEPAWorldModel: AC-checkpoint loading, encoding as in training, cached rollouts equal to prefix recomputation."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from planning import official_cem
from planning.cem import CEMConfig, CEMPlanner
from planning.world_model import WorldModel
from vjepa_ac import ac_train, runtime
from vjepa_ac.formats import CheckpointFormatError
from vjepa_ac.runtime import VJEPAWorldModel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random-weight checkpoint in the AC-training layout (keys encoder, predictor, config)."""
    torch.manual_seed(0)
    cfg = ac_train.load_ac_config("ac-smoke")
    encoder = runtime.build_encoder(ac_train.encoder_spec(cfg))
    predictor = runtime.build_predictor(ac_train.predictor_spec(cfg, encoder.embed_dim))
    path = tmp_path_factory.mktemp("ckpt") / "ac.pt"
    torch.save({"encoder": encoder.state_dict(), "predictor": predictor.state_dict(),
                "config": ac_train.checkpoint_config(cfg, encoder, {}, None)}, path)
    return path


@pytest.fixture(scope="module")
def wm(checkpoint):
    return VJEPAWorldModel.from_checkpoint(checkpoint)


def _images(n, size=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_encode_matches_training_encoding(wm):
    assert isinstance(wm, WorldModel)
    images = _images(2)
    latents = wm.encode(images)
    assert latents.shape == (2, 16, wm.encoder.embed_dim)
    expected = runtime.encode(wm.encoder, torch.from_numpy(images), True)
    torch.testing.assert_close(latents, expected)
    # layer-normed tokens (normalize_reps): zero mean, unit variance per token
    assert latents.mean(-1).abs().max() < 1e-4
    # larger frames are center-cropped and resized to the training size
    assert wm.encode(_images(1, size=96)).shape == (1, 16, wm.encoder.embed_dim)
    with pytest.raises(ValueError, match="uint8"):
        wm.encode(images.astype(np.float32))


def test_cached_rollout_equals_official_prefix_recomputation(wm):
    """KV-cached rollout == re-running the predictor on the whole prefix each step (official planner)."""
    official = official_cem
    step = official.prefix_step(wm.predictor, tokens_per_frame=16, normalize_reps=True)

    context = wm.encode(_images(1))
    state = torch.tensor([[0.45, 0.05, 0.3, 3.1, -0.1, 0.2, 0.3]])
    actions = torch.randn(5, 3, 7) * 0.05
    preds = wm.rollout(context, state, actions)
    assert preds.shape == (5, 3, 16, wm.encoder.embed_dim)

    frames, poses = context[:, None].expand(5, -1, -1, -1), state[:, None].expand(5, -1, -1)
    for h in range(3):
        nxt, pose = step(frames, actions[:, : h + 1], poses)
        frames, poses = torch.cat([frames, nxt], 1), torch.cat([poses, pose], 1)
    torch.testing.assert_close(preds, frames[:, 1:], atol=1e-4, rtol=1e-4)


def test_chunked_rollout_equals_one_batch(checkpoint):
    """Chunks of a few samples (CPU default) give the rollout of one batch, gradients included."""
    whole = VJEPAWorldModel.from_checkpoint(checkpoint)
    whole.chunk_tokens = 10**9
    chunked = VJEPAWorldModel.from_checkpoint(checkpoint)
    chunked.chunk_tokens = 40  # 18 tokens per sample and frame -> chunks of 2 samples
    assert chunked._chunk_size(7, 16) == 2 and whole._chunk_size(7, 16) == 7
    context = whole.encode(_images(1))
    actions = (torch.randn(7, 2, 7) * 0.05).requires_grad_(True)
    preds = chunked.rollout(context, torch.zeros(1, 7), actions)
    torch.testing.assert_close(preds, whole.rollout(context, torch.zeros(1, 7), actions), atol=1e-5, rtol=0)
    preds.sum().backward()
    assert actions.grad.abs().sum(dim=(1, 2)).gt(0).all()  # every chunk reached its actions
    with pytest.raises(ValueError, match="chunk_tokens"):
        VJEPAWorldModel(whole.encoder, whole.predictor, img_size=64, chunk_tokens=0)


def test_rollout_is_differentiable_in_the_actions_only(wm):
    context = wm.encode(_images(1))
    actions = (torch.randn(2, 2, 7) * 0.05).requires_grad_(True)
    preds = wm.rollout(context, torch.zeros(1, 7), actions)
    F.l1_loss(preds, torch.zeros_like(preds)).backward()
    assert actions.grad is not None and actions.grad.abs().sum() > 0
    assert all(p.grad is None for p in wm.predictor.parameters())


def test_rollout_rejects_mismatched_batches(wm):
    context = wm.encode(_images(2))
    with pytest.raises(ValueError, match="must be 1 or the number of action sequences"):
        wm.rollout(context, torch.zeros(2, 7), torch.zeros(3, 2, 7))


def test_cem_plans_with_the_vjepa_world_model(wm):
    context, goal = wm.encode(_images(1, seed=1)), wm.encode(_images(1, seed=2))
    result = CEMPlanner(CEMConfig(samples=16, topk=4, iterations=2)).plan(wm, context, torch.zeros(1, 7), goal)
    assert result.actions.shape == (2, 7) and torch.isfinite(result.energies).all()


def test_unusable_checkpoints_are_reported(tmp_path, checkpoint):
    path = tmp_path / "bad.pt"
    torch.save({"encoder": {}}, path)
    with pytest.raises(CheckpointFormatError, match=r"bad.pt: found entries \['encoder'\], expected an official"):
        VJEPAWorldModel.from_checkpoint(path)
    ckpt = torch.load(checkpoint, weights_only=True)
    del ckpt["predictor"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointFormatError, match=r"bad.pt: no state dict under 'predictor'"):
        VJEPAWorldModel.from_checkpoint(path)


def test_bf16_autocast_returns_float32_close_to_float32(checkpoint):
    fp32 = VJEPAWorldModel.from_checkpoint(checkpoint)
    bf16 = VJEPAWorldModel.from_checkpoint(checkpoint, amp_dtype=torch.bfloat16)
    images = _images(1)
    context = bf16.encode(images)
    assert context.dtype == torch.float32
    actions = torch.randn(3, 2, 7) * 0.05
    preds = bf16.rollout(context, torch.zeros(1, 7), actions)
    reference = fp32.rollout(fp32.encode(images), torch.zeros(1, 7), actions)
    assert preds.dtype == torch.float32
    error = (preds - reference).abs().mean() / reference.abs().mean()
    assert 0 < error < 0.05  # bf16 really ran (not bit-equal) and stays close


def test_cem_energies_match_the_official_planner_on_the_same_weights(wm):
    """Same seed: the official recompute-the-prefix CEM and ours score the same candidates alike."""
    official = official_cem
    context, goal = wm.encode(_images(1, seed=3)), wm.encode(_images(1, seed=4))
    state = torch.tensor([[0.45, 0.05, 0.3, 3.1, -0.1, 0.2, 0.0]])
    record = []
    torch.manual_seed(11)
    official.official_cem(context[:, None], state[:, None], goal[:, None],
                          official.prefix_step(wm.predictor, 16, True), rollout=2, cem_steps=3, samples=32, topk=4,
                          record=record)
    ours = CEMPlanner(CEMConfig(horizon=2, iterations=3, samples=32, topk=4, seed=11)).plan(wm, context, state, goal)
    torch.testing.assert_close(ours.energies, torch.stack(record), atol=1e-5, rtol=0)
