"""A light head on frozen latents that estimates the proprioceptive state (end-effector position) of a frame.

DROID-format data records the robot state of every frame, so a small regressor from frozen frame latents
``[N, D]`` to the end-effector position costs seconds to train. Planning uses it to put an *estimated*
goal position, read from the goal image, next to the latent distance (`planning.energy.StateHeadEnergy`):
the planner still sees only images, and the world model's predicted latents are read by the same head.

    head = StateHead(tokens=16, dim=192)
    report = fit_state_head(head, latents, states[:, :3], groups=episode_ids)   # latents as planning sees them
    head(latents)  # [B, 3] metres

Training may mix in the predictor's own predictions of frames (`predicted_latents`), so the head also reads
the slightly blurred latents a rollout produces.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vjepa_ac.runtime import normalize_latents, rollout


class StateHead(nn.Module):
    """Per-token projection to `token_dim`, flattened (keeps where things are), then a 2-layer MLP to `out`.

    The output is de-standardised with the training targets' mean / std (buffers), so it is in label units.
    """

    def __init__(self, tokens: int, dim: int, out: int = 3, token_dim: int = 32, hidden: int = 256):
        super().__init__()
        self.tokens, self.dim = tokens, dim
        self.project = nn.Linear(dim, token_dim)
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(tokens * token_dim, hidden), nn.GELU(), nn.Linear(hidden, out))
        self.register_buffer("target_mean", torch.zeros(out))
        self.register_buffer("target_std", torch.ones(out))

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        if latents.dim() != 3 or latents.shape[1:] != (self.tokens, self.dim):
            raise ValueError(f"StateHead: latents must be [B, {self.tokens}, {self.dim}], got {tuple(latents.shape)}")
        x = self.mlp(self.project(latents).flatten(1))
        return x * self.target_std + self.target_mean


@dataclass
class HeadReport:
    train_rmse: float  # metres (per coordinate, RMS over outputs)
    val_rmse: float
    val_mean_error: float  # mean Euclidean error on the held-out rows (metres)
    steps: int

    def as_dict(self) -> dict[str, float]:
        return {"train_rmse": self.train_rmse, "val_rmse": self.val_rmse, "val_mean_error": self.val_mean_error,
                "steps": self.steps}


def _split(n: int, groups, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    groups = np.arange(n) if groups is None else np.asarray(groups)
    uniq = np.random.default_rng(seed).permutation(np.unique(groups))
    n_val = max(1, round(len(uniq) * val_fraction))
    if n_val >= len(uniq):
        raise ValueError(f"fit_state_head: need at least 2 groups (episodes) for a validation split, got {len(uniq)}")
    val = np.isin(groups, uniq[:n_val])
    return np.flatnonzero(~val), np.flatnonzero(val)


def fit_state_head(head: StateHead, latents: torch.Tensor, targets, groups=None, steps: int = 1500,
                   batch_size: int = 256, lr: float = 2e-3, weight_decay: float = 1e-4, val_fraction: float = 0.15,
                   noise: float = 0.0, seed: int = 0, log=None) -> HeadReport:
    """Train `head` on latents [F, N, D] -> targets [F, K] (AdamW, cosine lr); rows split by `groups`.

    `noise` adds Gaussian noise of that std to the latents during training (robustness to predicted latents).
    The head is left in eval mode with its target mean / std set.
    """
    latents = torch.as_tensor(latents, dtype=torch.float32)
    targets = torch.as_tensor(np.asarray(targets), dtype=torch.float32).reshape(len(latents), -1)
    train_idx, val_idx = _split(len(latents), groups, val_fraction, seed)
    head.target_mean.copy_(targets[train_idx].mean(0))
    head.target_std.copy_(targets[train_idx].std(0).clamp_min(1e-6))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    scale = head.target_std
    head.train()
    train_idx_t = torch.as_tensor(train_idx)
    for step in range(steps):
        pick = train_idx_t[torch.randint(len(train_idx_t), (batch_size,), generator=gen)]
        x = latents[pick]
        if noise > 0:
            x = x + noise * torch.randn(x.shape, generator=gen)
        loss = ((head(x) - targets[pick]) / scale).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log is not None and (step + 1) % 500 == 0:
            log(f"state head step {step + 1}/{steps}: loss {loss.item():.4f}")
    head.eval()
    with torch.no_grad():
        def rmse(idx):
            return float((head(latents[idx]) - targets[idx]).square().mean().sqrt())

        val_err = float((head(latents[val_idx]) - targets[val_idx]).norm(dim=-1).mean())
        return HeadReport(train_rmse=rmse(train_idx), val_rmse=rmse(val_idx), val_mean_error=val_err, steps=steps)


def store_frames(store, normalize_reps: bool = True, episodes=None) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Every frame of a feature store (`vjepa_ac.feature_cache`): latents [F, N, D] as planning sees them
    (layer-normed when `normalize_reps`), states [F, 7] and the episode index of each row [F]."""
    import zarr

    group = zarr.open_group(str(store), mode="r")
    starts, lengths = group["episode_starts"][:], group["episode_lengths"][:]
    episodes = range(len(starts)) if episodes is None else episodes
    rows = np.concatenate([np.arange(starts[e], starts[e] + lengths[e]) for e in episodes])
    episode_ids = np.concatenate([np.full(lengths[e], e) for e in episodes])
    features = torch.from_numpy(np.asarray(group["features"][:])[rows]).float()
    return normalize_latents(features, normalize_reps), np.asarray(group["states"][:])[rows], episode_ids


def save_state_head(head: StateHead, path, **extra) -> None:
    """Atomic checkpoint: weights plus what rebuilds the head (tokens, dim, out, token_dim, hidden)."""
    from vjepa_ac.checkpoint import atomic_save

    spec = {"tokens": head.tokens, "dim": head.dim, "out": head.mlp[-1].out_features,
            "token_dim": head.project.out_features, "hidden": head.mlp[1].out_features}
    atomic_save({"state_head": head.state_dict(), "spec": spec, **extra}, path)


def load_state_head(path, map_location="cpu") -> StateHead:
    from vjepa_ac.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, map_location=map_location, expected="a state-head checkpoint",
                           required=("state_head", "spec"))
    head = StateHead(**ckpt["spec"])
    head.load_state_dict(ckpt["state_head"])
    return head.eval().requires_grad_(False)


@torch.no_grad()
def predicted_latents(predictor: nn.Module, latents: torch.Tensor, states, episode, horizon: int = 2,
                      normalize_reps: bool = True, batch_size: int = 256):
    """The AC predictor's rollouts from every frame with the recorded actions, as planning rolls it out.

    latents [F, N, D] (as planning sees them), states [F, 7], episode [F] (rows of one episode consecutive).
    Returns (preds [M, N, D], their recorded states [M, 7], episode [M], step [M] in 1..horizon): the latent
    predicted k steps ahead of frame t, for every t with t + horizon inside its episode.
    """
    from droid_data import pose_diffs

    states = torch.as_tensor(np.asarray(states), dtype=torch.float32)
    episode = np.asarray(episode)
    offsets = np.arange(horizon + 1)
    starts = np.array([t for t in range(len(episode) - horizon) if episode[t + horizon] == episode[t]], dtype=np.int64)
    if len(starts) == 0:
        raise ValueError(f"predicted_latents: no episode is longer than horizon={horizon} frames")
    preds, labels = [], []
    for i in range(0, len(starts), batch_size):
        rows = starts[i:i + batch_size, None] + offsets  # [b, horizon + 1]
        window = states[torch.as_tensor(rows)]
        z = rollout(predictor, latents[torch.as_tensor(rows[:, 0])], window[:, 0], pose_diffs(window), normalize_reps)
        preds.append(z.flatten(0, 1))
        labels.append(window[:, 1:].flatten(0, 1))
    step = np.tile(np.arange(1, horizon + 1), len(starts))
    return torch.cat(preds), torch.cat(labels), np.repeat(episode[starts], horizon), step


@torch.no_grad()
def head_errors(head: StateHead, latents: torch.Tensor, positions) -> dict[str, float]:
    """Mean / median Euclidean error (metres) of the head's estimates."""
    err = (head(latents) - torch.as_tensor(np.asarray(positions), dtype=torch.float32)).norm(dim=-1)
    return {"mean": float(err.mean()), "median": float(err.median())}
