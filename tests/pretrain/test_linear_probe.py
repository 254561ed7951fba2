"""Ridge probe: recovers linear labels, rejects noise, splits by episode; frame encoding options."""
import numpy as np
import pytest
import torch

from vjepa_ac.linear_probe import (
    ProbeData,
    encode_frames,
    probe_encoder,
    ridge_fit,
    ridge_probe,
    split_by_episode,
)
from vjepa_ac.pretrain import build_encoder


def test_ridge_fit_primal_and_dual_agree():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 5, generator=g, dtype=torch.float64), torch.randn(20, 2, generator=g, dtype=torch.float64)
    wide = torch.randn(6, 30, generator=g, dtype=torch.float64)
    torch.testing.assert_close(ridge_fit(wide, y[:6], 0.5), torch.linalg.lstsq(
        torch.cat([wide, 0.5**0.5 * torch.eye(30, dtype=torch.float64)]),
        torch.cat([y[:6], torch.zeros(30, 2, dtype=torch.float64)])).solution)
    torch.testing.assert_close(ridge_fit(x, y, 0.5), torch.linalg.solve(x.T @ x + 0.5 * torch.eye(5, dtype=x.dtype),
                                                                        x.T @ y))


def test_probe_scores_linear_labels_high_and_noise_low():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 30))
    w = rng.normal(size=(30, 3))
    groups = np.repeat(np.arange(40), 10)
    good = ridge_probe(x[:300], x[:300] @ w, x[300:], x[300:] @ w, train_groups=groups[:300])
    assert good.r2 > 0.99 and good.rmse < 0.1 and len(good.r2_per_output) == 3
    noise = rng.normal(size=(400, 3))
    bad = ridge_probe(x[:300], noise[:300], x[300:], noise[300:], train_groups=groups[:300])
    assert bad.r2 < 0.1
    with pytest.raises(ValueError, match="shapes do not match"):
        ridge_probe(x[:10], noise[:9], x[10:20], noise[10:20])


def test_split_by_episode_keeps_episodes_whole():
    data = ProbeData(np.zeros((40, 8, 8, 3), np.uint8), np.zeros((40, 3)), np.repeat(np.arange(8), 5))
    train, test = split_by_episode(data, 0.25, seed=1)
    assert not set(train.episode) & set(test.episode) and len(set(test.episode)) == 2
    assert len(train.frames) + len(test.frames) == 40


def test_encode_frames_layers_and_pooling(tiny):
    cfg = tiny()
    enc = build_encoder(cfg)
    frames = np.random.default_rng(0).integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    last = encode_frames(enc, frames, "last", "mean", batch_size=2)
    assert last.shape == (5, 48)
    full = encode_frames(enc, frames, "last", "flatten")
    assert full.shape == (5, 16 * 48)
    torch.testing.assert_close(full.view(5, 16, 48).mean(1), last)
    four = encode_frames(enc, frames, "last4", "mean")
    assert four.shape == (5, 2 * 48)  # the tiny encoder has only 2 blocks
    torch.testing.assert_close(four[:, -48:], last, atol=1e-5, rtol=1e-5)  # last block's output comes last
    assert enc.out_layers is None  # restored
    with pytest.raises(ValueError, match="pool"):
        encode_frames(enc, frames, "last", "max")


def test_probe_encoder_reuses_one_forward_for_all_options(tiny):
    cfg = tiny()
    enc = build_encoder(cfg)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (48, 32, 32, 3), dtype=np.uint8)
    labels = frames.reshape(48, -1).mean(1, keepdims=True) / 255.0  # brightness: linearly decodable
    data = ProbeData(frames, labels, np.repeat(np.arange(12), 4))
    train, test = split_by_episode(data, 0.25)
    res = probe_encoder(enc, train, test, layers=("last", "last4"), pools=("mean", "flatten"))
    assert set(res) == {("last", "mean"), ("last", "flatten"), ("last4", "mean"), ("last4", "flatten")}
    direct = ridge_probe(encode_frames(enc, train.frames), train.labels, encode_frames(enc, test.frames),
                         test.labels, train_groups=train.episode)
    assert res[("last", "mean")].r2 == pytest.approx(direct.r2, abs=1e-6)
    assert res[("last4", "flatten")].num_features == 16 * 2 * 48
