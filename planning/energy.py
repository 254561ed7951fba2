"""Planning energies: what a planner minimises, as small callables over predicted and goal latents.

Every energy is called as ``energy(preds, goal) -> [S]`` with predicted latents ``preds`` [S, H, N, D] and goal
latents ``goal`` [1 or S, N, D]; lower is better. Planners take one (``CEMPlanner(config, energy=...)``);
without one they use `LatentDistance` built from their config (the official L1 of the last predicted frame).

`StateHeadEnergy` adds the distance between *estimated end-effector positions*: a light head (trained on the
proprioceptive states the data records, e.g. `vjepa_ac.state_head.StateHead`) reads a position from the
world model's predicted latent and from the goal image's latent,

    E = latent_weight · L1(ẑ_H, z_goal) + head_weight · ‖head(ẑ_H) − head(z_goal)‖₂  (metres)

so the planner still plans through the world model and sees only images (the goal pose is estimated from the
goal image, never read from the simulator). The head term gives the energy wide basins where latent L1 is flat.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from planning.common import latent_energy


class Energy(Protocol):
    def __call__(self, preds: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Predicted latents [S, H, N, D] and goal latents [1 or S, N, D] -> energies [S]."""
        ...


@dataclass
class LatentDistance:
    """Mean L1 (or squared L2) distance of predicted latents to the goal's: the official planning energy."""

    kind: str = "l1"  # "l1" | "l2"
    steps: str = "last"  # "last" | "all" (sum over the horizon)

    def __call__(self, preds: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return latent_energy(preds, goal, self.kind, self.steps)


class StateHeadEnergy:
    """Latent distance plus the distance between head-estimated positions of prediction and goal (see module).

    Args:
        head: latents [B, N, D] -> estimates [B, K] (e.g. EE xyz in metres); frozen, differentiable.
        head_weight: weight of the estimated-position distance (energy units per metre).
        latent_weight: weight of the latent distance (0 = position term only).
        kind, steps: the latent distance (`LatentDistance`); ``steps="all"`` also sums the head term over steps.
    """

    def __init__(self, head: Callable[[torch.Tensor], torch.Tensor], head_weight: float = 1.0,
                 latent_weight: float = 1.0, kind: str = "l1", steps: str = "last"):
        if head_weight < 0 or latent_weight < 0 or head_weight + latent_weight == 0:
            raise ValueError(f"StateHeadEnergy: weights must be >= 0 and not both 0, got head_weight={head_weight}, "
                             f"latent_weight={latent_weight}")
        self.head, self.head_weight, self.latent_weight = head, float(head_weight), float(latent_weight)
        self.latent = LatentDistance(kind, steps)

    def estimate(self, latents: torch.Tensor) -> torch.Tensor:
        """Head estimates of latents [..., N, D] -> [..., K]."""
        lead = latents.shape[:-2]
        return self.head(latents.reshape(-1, *latents.shape[-2:])).reshape(*lead, -1)

    def __call__(self, preds: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        energy = self.latent_weight * self.latent(preds, goal) if self.latent_weight else 0.0
        scored = preds if self.latent.steps == "all" else preds[:, -1:]
        dist = (self.estimate(scored) - self.estimate(goal.detach())[:, None]).norm(dim=-1)  # [S, steps]
        return energy + self.head_weight * dist.sum(1)
