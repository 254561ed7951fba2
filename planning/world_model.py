"""The world-model interface planners use, and an oracle implementation for testing the control loop.

Planners know a world model only through two calls (docs/architecture.md):

    latents = wm.encode(images)                  # uint8 [B, H, W, 3] -> float [B, N, D]
    preds = wm.rollout(latents, state, actions)  # [B, N, D], [B, 7], [S, H, 7] -> [S, H, N, D]

`B` may be 1 while `actions` holds S samples: the world model broadcasts the context. `rollout` must be
differentiable with respect to `actions` (the gradient planner backpropagates through it); planners that do
not need gradients call it under ``torch.no_grad()``.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from droid_data.conventions import integrate_actions


@runtime_checkable
class WorldModel(Protocol):
    def encode(self, images) -> torch.Tensor:
        """uint8 images [B, H, W, 3] (numpy or torch) -> latents [B, N, D]."""
        ...

    def rollout(self, latents: torch.Tensor, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Latents [B, N, D] and state [B, 7] of the current frame, actions [S, H, 7] -> predictions [S, H, N, D]."""
        ...


def broadcast_context(latents: torch.Tensor, state: torch.Tensor, actions: torch.Tensor, who: str):
    """Check rollout inputs and repeat a single context (B=1) to the S action samples."""
    if latents.dim() != 3:
        raise ValueError(f"{who}.rollout: latents must be [B, N, D], got {tuple(latents.shape)}")
    if state.dim() != 2 or state.shape[-1] != 7:
        raise ValueError(f"{who}.rollout: state must be [B, 7], got {tuple(state.shape)}")
    if actions.dim() != 3 or actions.shape[-1] != 7:
        raise ValueError(f"{who}.rollout: actions must be [S, H, 7], got {tuple(actions.shape)}")
    b, s = latents.shape[0], actions.shape[0]
    if state.shape[0] != b or b not in (1, s):
        raise ValueError(
            f"{who}.rollout: batch of latents ({b}) and state ({state.shape[0]}) must be 1 or the number of "
            f"action samples ({s})"
        )
    if b == 1 and s > 1:
        latents, state = latents.expand(s, -1, -1), state.expand(s, -1)
    return latents, state


class OracleWorldModel:
    """ORACLE world model: its latents are features of the *true* robot state, not of images.

    The latent of a state is its end-effector position, ``[B, 1, 3]`` (N = 1 token, D = 3), multiplied by
    `scale`. Rollouts integrate the actions exactly with `droid_data.conventions.integrate_actions`, so the
    model is perfect up to what the robot's controller does with a commanded delta. It proves the planning and
    MPC loop, not the learned model. It cannot encode images: use `encode_states` on observed states (oracle
    mode in `planning.mpc`).
    """

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def encode(self, images) -> torch.Tensor:
        raise TypeError(
            "OracleWorldModel.encode: the oracle has no image encoder; it reads true states. "
            "Use encode_states(obs['state']) (oracle mode: planning.mpc.oracle_latents)."
        )

    def encode_states(self, states) -> torch.Tensor:
        """True states [B, 7] or [7] (numpy or torch) -> oracle latents [B, 1, 3]."""
        states = torch.as_tensor(np.asarray(states) if not torch.is_tensor(states) else states, dtype=torch.float32)
        if states.shape[-1] != 7:
            raise ValueError(f"OracleWorldModel.encode_states: states must end in 7, got {tuple(states.shape)}")
        return self._features(states.reshape(-1, 7))[:, None]

    def _features(self, states: torch.Tensor) -> torch.Tensor:
        return states[..., :3] * self.scale

    def rollout(self, latents: torch.Tensor, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        latents, state = broadcast_context(latents, state, actions, "OracleWorldModel")
        states = integrate_actions(state.to(actions.dtype), actions)[:, 1:]  # [S, H, 7]
        return self._features(states)[:, :, None]
