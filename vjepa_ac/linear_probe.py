"""Linear (ridge) probes on frozen encoder features: how much of a label is linearly decodable.

Typical use: regress the end-effector position from single frames of simulator episodes, once with the
pretrained encoder and once with the same architecture at random initialisation (the baseline a
representation must beat).

- ``encode_frames``: uint8 frames ``[N, H, W, 3]`` -> features ``[N, F]``; each frame is encoded as an
  image (repeated to one tubelet, as AC training and planning do). ``layers='last'`` uses the final
  output, ``'last4'`` concatenates the (final-normed) outputs of the last four blocks. ``pool='mean'``
  averages the tokens, ``'flatten'`` keeps every token (the spatial layout; F = tokens·D·layers).
- ``ridge_probe``: standardise features, pick the ridge strength on a validation split of the training
  set, refit on all of it and report R² / RMSE on a held-out test set (split by episode, so frames of
  one episode never sit on both sides).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vjepa_ac.runtime import normalize_images

LAYER_CHOICES = ("last", "last4")
POOL_CHOICES = ("mean", "flatten")


@torch.no_grad()
def frame_tokens(encoder: nn.Module, frames: np.ndarray | torch.Tensor, layers: str = "last", batch_size: int = 64,
                 tubelet_size: int = 2) -> torch.Tensor:
    """Frozen patch tokens of single frames, ``[N, tokens, D·L]`` float32 on CPU (L = 1 or 4 layers,
    the last block's output last)."""
    if layers not in LAYER_CHOICES:
        raise ValueError(f"layers: expected one of {LAYER_CHOICES}, got {layers!r}")
    frames = torch.as_tensor(np.asarray(frames))
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected uint8 [N, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
    device = next(encoder.parameters()).device
    saved = getattr(encoder, "out_layers", None)
    if layers == "last4":
        depth = len(encoder.blocks)
        encoder.out_layers = list(range(max(0, depth - 4), depth))
    was_training = encoder.training
    encoder.eval()
    try:
        out = []
        for start in range(0, len(frames), batch_size):
            x = normalize_images(frames[start:start + batch_size].to(device))  # [b, 3, H, W]
            h = encoder(x.unsqueeze(2).repeat(1, 1, tubelet_size, 1, 1))
            out.append((torch.cat(h, dim=-1) if isinstance(h, (list, tuple)) else h).float().cpu())
    finally:
        encoder.out_layers = saved
        encoder.train(was_training)
    return torch.cat(out)


def pool_tokens(tokens: torch.Tensor, pool: str = "mean") -> torch.Tensor:
    """``[N, tokens, F]`` -> ``[N, F]`` (mean over tokens) or ``[N, tokens·F]`` (flatten)."""
    if pool not in POOL_CHOICES:
        raise ValueError(f"pool: expected one of {POOL_CHOICES}, got {pool!r}")
    return tokens.mean(dim=1) if pool == "mean" else tokens.flatten(1)


def encode_frames(encoder: nn.Module, frames: np.ndarray | torch.Tensor, layers: str = "last", pool: str = "mean",
                  batch_size: int = 64, tubelet_size: int = 2) -> torch.Tensor:
    """Frozen features of single frames, ``[N, F]`` float32 on CPU."""
    if pool not in POOL_CHOICES:
        raise ValueError(f"pool: expected one of {POOL_CHOICES}, got {pool!r}")
    return pool_tokens(frame_tokens(encoder, frames, layers, batch_size, tubelet_size), pool)


@dataclass(frozen=True)
class ProbeResult:
    r2: float  # mean over outputs of the coefficient of determination on the test set
    rmse: float  # root mean squared error over all outputs, in label units
    r2_per_output: tuple[float, ...]
    ridge: float  # the chosen regularisation strength
    num_features: int

    def as_row(self) -> dict[str, float]:
        return {"r2": self.r2, "rmse": self.rmse, "ridge": self.ridge, "num_features": self.num_features}


def ridge_fit(x: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """Weights ``[F, K]`` of ``min |xW − y|² + lam·|W|²`` (x, y centred). Dual form when F > N."""
    n, f = x.shape
    if f <= n:
        return torch.linalg.solve(x.T @ x + lam * torch.eye(f, dtype=x.dtype), x.T @ y)
    return x.T @ torch.linalg.solve(x @ x.T + lam * torch.eye(n, dtype=x.dtype), y)


def _r2(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    ss_res = ((pred - y) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    return 1 - ss_res / ss_tot


class _Standardizer:
    def __init__(self, x: torch.Tensor):
        self.mean, self.std = x.mean(0), x.std(0).clamp_min(1e-6)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def ridge_probe(train_x, train_y, test_x, test_y, lambdas=(1e-2, 1e-1, 1, 10, 1e2, 1e3, 1e4, 1e5, 1e6),
                val_fraction: float = 0.2, train_groups=None, seed: int = 0) -> ProbeResult:
    """Fit a ridge probe (strength chosen on a validation split) and score it on the test set.

    ``train_groups`` (e.g. episode ids per row) makes the validation split group-wise too.
    """
    tx, ty, vx, vy = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (train_x, train_y, test_x, test_y))
    ty, vy = ty.reshape(len(ty), -1), vy.reshape(len(vy), -1)
    if len(tx) != len(ty) or len(vx) != len(vy) or tx.shape[1] != vx.shape[1]:
        raise ValueError(f"ridge_probe: shapes do not match: train {tuple(tx.shape)}/{tuple(ty.shape)}, "
                         f"test {tuple(vx.shape)}/{tuple(vy.shape)}")
    rng = np.random.default_rng(seed)
    groups = np.arange(len(tx)) if train_groups is None else np.asarray(train_groups)
    uniq = rng.permutation(np.unique(groups))
    n_val = max(1, round(len(uniq) * val_fraction))
    is_val = torch.as_tensor(np.isin(groups, uniq[:n_val]))
    if is_val.all() or not is_val.any():
        raise ValueError(f"ridge_probe: need at least 2 training groups for a validation split, got {len(uniq)}")

    def fit_predict(x_fit, y_fit, x_eval, lam):
        sx = _Standardizer(x_fit)
        y_mean = y_fit.mean(0)
        w = ridge_fit(sx(x_fit), y_fit - y_mean, lam)
        return sx(x_eval) @ w + y_mean

    scores = [_r2(fit_predict(tx[~is_val], ty[~is_val], tx[is_val], lam), ty[is_val]).mean().item()
              for lam in lambdas]
    best = float(lambdas[int(np.argmax(scores))])
    pred = fit_predict(tx, ty, vx, best)
    r2 = _r2(pred, vy)
    rmse = torch.sqrt(((pred - vy) ** 2).mean()).item()
    return ProbeResult(r2=r2.mean().item(), rmse=rmse, r2_per_output=tuple(r2.tolist()), ridge=best,
                       num_features=tx.shape[1])


@dataclass
class ProbeData:
    frames: np.ndarray  # uint8 [N, S, S, 3]
    labels: np.ndarray  # float [N, K]
    episode: np.ndarray  # int [N], index of the episode each row comes from


def load_episode_frames(source, crop_size: int, camera: str | None = None, label: str = "ee_xyz",
                        frame_stride: int = 1, max_episodes: int | None = None) -> ProbeData:
    """Frames and labels from DROID-layout episodes (``droid_data``), centre-cropped to ``crop_size``.

    label: ``ee_xyz`` (end-effector position, metres), ``state`` (all 7 state dims) or ``gripper``.
    """
    from droid_data import find_episodes, read_episode
    from droid_data.video import center_crop_resize

    columns = {"ee_xyz": slice(0, 3), "state": slice(0, 7), "gripper": slice(6, 7)}
    if label not in columns:
        raise ValueError(f"label: expected one of {sorted(columns)}, got {label!r}")
    folders = find_episodes(source)[:max_episodes]
    if not folders:
        raise FileNotFoundError(f"no DROID-layout episodes found in {source}")
    frames, labels, episode = [], [], []
    for i, folder in enumerate(folders):
        ep = read_episode(folder)
        idx = np.arange(0, ep.num_frames, frame_stride)
        cam = camera if camera is not None else ep.cameras[0]
        frames.append(center_crop_resize(ep.load_frames(cam, idx), crop_size))
        labels.append(ep.states[idx, columns[label]])
        episode.append(np.full(len(idx), i))
    return ProbeData(np.concatenate(frames), np.concatenate(labels), np.concatenate(episode))


def split_by_episode(data: ProbeData, test_fraction: float = 0.25, seed: int = 0) -> tuple[ProbeData, ProbeData]:
    uniq = np.random.default_rng(seed).permutation(np.unique(data.episode))
    n_test = max(1, round(len(uniq) * test_fraction))
    if n_test >= len(uniq):
        raise ValueError(f"split_by_episode: need at least 2 episodes, got {len(uniq)}")
    test = np.isin(data.episode, uniq[:n_test])
    pick = lambda m: ProbeData(data.frames[m], data.labels[m], data.episode[m])
    return pick(~test), pick(test)


def probe_encoder(encoder: nn.Module, train: ProbeData, test: ProbeData, layers=("last",), pools=("mean",),
                  tubelet_size: int = 2) -> dict[tuple[str, str], ProbeResult]:
    """Encode both splits once with the frozen ``encoder``; a ridge probe per (layers, pool) option."""
    deep = "last4" if "last4" in layers else "last"
    tr, te = (frame_tokens(encoder, d.frames, deep, tubelet_size=tubelet_size) for d in (train, test))
    dim = encoder.embed_dim
    results = {}
    for layer in layers:
        a, b = (tr, te) if layer == deep else (tr[..., -dim:], te[..., -dim:])  # the last block comes last
        for pool in pools:
            results[(layer, pool)] = ridge_probe(pool_tokens(a, pool), train.labels, pool_tokens(b, pool),
                                                 test.labels, train_groups=train.episode)
    return results
