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

    def new_cache(self):
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
