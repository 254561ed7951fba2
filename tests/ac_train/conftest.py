"""Tiny stand-ins for the encoder / AC predictor with known, exact dynamics (for loss-semantics tests).

Latents of a frame are a fixed linear function of the end-effector position: token n = COEF[n] * xyz.
Because actions hold xyz differences, ``next = tokens + gain * COEF ⊗ action[:3]`` is the *exact* dynamics
when ``gain == 1``: a correct teacher-forcing and rollout loss is then exactly zero.
"""
from __future__ import annotations

import torch
from torch import nn

COEF = torch.tensor([1.0, -2.0])  # N = 2 tokens, D = 3 channels (x, y, z)


def latents_of(states: torch.Tensor) -> torch.Tensor:
    """states [..., 7] -> latents [..., 2, 3]."""
    return COEF.to(states)[:, None] * states[..., None, :3]


class ToyCache:
    def __init__(self):
        self.frames, self.actions, self.states = [], [], []

    @property
    def num_frames(self) -> int:
        return len(self.frames)


class ToyPredictor(nn.Module):
    """Implements the AC predictor's two entry points (full forward and incremental) with linear dynamics."""

    def __init__(self, gain: float = 1.0):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(float(gain)))
        self.calls = []  # (kind, frame_tokens, action, state) of every incremental call, for spying

    def _step(self, tokens, action):
        return tokens + self.gain * COEF.to(tokens)[:, None] * action[..., None, :3]

    def forward(self, x, actions, states, extrinsics=None):
        b, t = actions.shape[:2]
        frames = x.reshape(b, t, 2, 3)
        return self._step(frames, actions).reshape(b, t * 2, 3)

    def new_cache(self, capacity=None):  # capacity: frames to preallocate (the toy cache needs none)
        return ToyCache()

    def forward_next(self, frame_tokens, action, state, cache, extrinsics=None):
        self.calls.append(("next", frame_tokens.detach().clone(), action.detach().clone(), state.detach().clone()))
        cache.frames.append(frame_tokens)
        cache.actions.append(action)
        cache.states.append(state)
        return self._step(frame_tokens, action)


def random_trajectory(batch: int, frames: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random states [B, T, 7] (xyz walk, small rotations, gripper in [0, 1]) and their actions."""
    from droid_data.conventions import pose_diffs

    g = torch.Generator().manual_seed(seed)
    xyz = 0.4 + torch.cumsum(0.02 * torch.randn(batch, frames, 3, generator=g, dtype=torch.float64), 1)
    rot = 0.3 * torch.randn(batch, 1, 3, generator=g, dtype=torch.float64) + torch.cumsum(
        0.05 * torch.randn(batch, frames, 3, generator=g, dtype=torch.float64), 1)
    grip = torch.rand(batch, frames, 1, generator=g, dtype=torch.float64) * 0.8 + 0.1
    states = torch.cat([xyz, rot, grip], -1)
    return states.float(), pose_diffs(states).float()


import types

import pytest


@pytest.fixture
def toy():
    """The toy dynamics above as a namespace (test modules cannot import each other under importlib mode)."""
    return types.SimpleNamespace(COEF=COEF, latents_of=latents_of, ToyPredictor=ToyPredictor,
                                 random_trajectory=random_trajectory)


# Flat test keywords -> AC config group, so tests read ac_config(lr=1e-3, batch_size=4).
AC_GROUP = {
    **dict.fromkeys(("path", "frames_per_clip", "fps", "camera", "crop_aspect", "batch_size", "num_workers",
                     "val_fraction", "feature_cache", "cache_dtype"), "data"),
    **dict.fromkeys(("encoder_name", "encoder_kwargs", "encoder_checkpoint", "encoder_checkpoint_key", "img_size",
                     "patch_size", "tubelet_size", "predictor_embed_dim", "predictor_depth", "predictor_num_heads",
                     "predictor_num_frames", "use_activation_checkpointing"), "model"),
    **dict.fromkeys(("lr", "start_lr", "final_lr", "warmup_steps", "total_steps", "lr_schedule", "decay_fraction",
                     "weight_decay", "final_weight_decay", "betas", "eps", "clip_grad"), "optim"),
    **dict.fromkeys(("auto_steps", "loss_exp", "normalize_reps"), "loss"),
    **dict.fromkeys(("out", "seed", "max_steps", "use_bfloat16", "log_every", "eval_every", "eval_clips",
                     "checkpoint_every"), "run"),
}


def make_ac_config(**flat):
    from vjepa_ac.ac_train import ACTrainingConfig
    from vjepa_ac.config import from_dict

    nested: dict = {}
    for key, value in flat.items():
        nested.setdefault(AC_GROUP[key], {})[key] = value
    return from_dict(ACTrainingConfig, nested, source="tests")


@pytest.fixture
def ac_config():
    """``make_ac_config(**flat_fields)`` -> ACTrainingConfig."""
    return make_ac_config
