"""Cross-entropy method over world-model rollouts, with the official V-JEPA 2-AC semantics by default.

Official semantics (notebooks/utils/mpc_utils.py ``cem``): per iteration and per horizon step, draw
``randn(samples, 4) * std[h] + mean[h]``; clip xyz to a box of ``maxnorm`` and the gripper to ±0.75; rotation
deltas are zero; the energy is the L1 distance between the last predicted latent and the goal latent; the
top-k candidates give a new mean/std (unbiased) blended with momenta (separate momenta for the gripper); the
plan is the final mean with gripper deltas below 0.25 rounded to zero. With the same seed the random numbers
are the official ones, drawn in the same order.

Differences, by design: the whole horizon of every candidate is rolled out in one batched, KV-cached
`wm.rollout` call (the official code re-runs the predictor over the growing prefix at every step); random
numbers come from a planner-local generator (reentrant); options ``plan_rotation``, ``warm_start``,
``energy="l2"``, ``energy_steps="all"`` and ``stop_std`` (early exit) go beyond the official planner.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from planning.common import (
    ActionSpace,
    PlannerBase,
    PlanResult,
    check_plan_inputs,
)
from planning.world_model import WorldModel


@dataclass
class CEMConfig:
    horizon: int = 2
    samples: int = 400
    topk: int = 10
    iterations: int = 10
    momentum_mean: float = 0.15
    momentum_std: float = 0.15
    momentum_mean_gripper: float = 0.15
    momentum_std_gripper: float = 0.15
    action_space: ActionSpace = field(default_factory=ActionSpace)
    energy: str = "l1"  # "l1" (official) or "l2"
    energy_steps: str = "last"  # "last" (official) or "all" (sum over the horizon)
    warm_start: bool = False  # start the mean from the previous plan shifted by the executed steps
    # Early exit: stop before `iterations` once every xyz (and planned rotation) sampling std is below this
    # (metres / radians), i.e. the search has converged. None (default) runs all iterations, as upstream.
    # The gripper's std is not checked: where the gripper does not change the energy it never shrinks.
    stop_std: float | None = None
    seed: int | None = 0

    def __post_init__(self):
        if not 1 <= self.topk <= self.samples:
            raise ValueError(f"CEMConfig: topk must be in [1, samples={self.samples}], got {self.topk}")
        if self.topk < 2:
            raise ValueError("CEMConfig: topk must be >= 2 (the elite std is the unbiased std)")
        if self.horizon < 1 or self.iterations < 1:
            raise ValueError(f"CEMConfig: horizon and iterations must be >= 1, got {self.horizon}, {self.iterations}")
        if self.stop_std is not None and not self.stop_std > 0:
            raise ValueError(f"CEMConfig: stop_std must be > 0 or None, got {self.stop_std}")


class CEMPlanner(PlannerBase):
    """``plan(wm, context, state, goal) -> PlanResult``; `reset(seed)` between episodes, `shift(k)` after acting."""

    config_class = CEMConfig

    @torch.no_grad()
    def plan(self, wm: WorldModel, context: torch.Tensor, state: torch.Tensor, goal: torch.Tensor) -> PlanResult:
        """Plan from current latents [1, N, D] and state [1, 7] towards goal latents [1, N, D]."""
        check_plan_inputs(context, state, goal, "CEMPlanner.plan")
        cfg, space = self.config, self.config.action_space
        device, gen = context.device, self.rng(context.device)
        h, s, p = cfg.horizon, cfg.samples, space.dim

        mean = self.initial_mean(device)
        std = space.initial_std(h, device)

        energies, diag = [], {"energy_min": [], "energy_elite_mean": [], "elite_std_xyz": [], "elite_std_grip": []}
        for _ in range(cfg.iterations):
            params = torch.empty(s, h, p, device=device)
            for t in range(h):  # one draw per step, in the official order
                params[:, t] = torch.randn(s, p, device=device, generator=gen) * std[t] + mean[t]
            space.clamp_(params)
            preds = wm.rollout(context, state, space.to_actions(params))
            energy = self.energy(preds, goal)
            elite_idx = energy.topk(cfg.topk, largest=False).indices
            elite = params[elite_idx]
            elite_mean, elite_std = elite.mean(0), elite.std(0)
            mean = torch.cat([
                _blend(elite_mean[:, :-1], mean[:, :-1], cfg.momentum_mean),
                _blend(elite_mean[:, -1:], mean[:, -1:], cfg.momentum_mean_gripper),
            ], dim=-1)
            std = torch.cat([
                _blend(elite_std[:, :-1], std[:, :-1], cfg.momentum_std),
                _blend(elite_std[:, -1:], std[:, -1:], cfg.momentum_std_gripper),
            ], dim=-1)

            energies.append(energy)
            diag["energy_min"].append(float(energy.min()))
            diag["energy_elite_mean"].append(float(energy[elite_idx].mean()))
            diag["elite_std_xyz"].append(float(elite_std[:, :3].mean()))
            diag["elite_std_grip"].append(float(elite_std[:, -1].mean()))
            if cfg.stop_std is not None and float(std[:, :-1].max()) < cfg.stop_std:
                break  # converged: the next draws would land within stop_std of the mean

        self.warm.remember(mean)
        return PlanResult(actions=space.finalize(mean), energies=torch.stack(energies), diagnostics=diag)


def _blend(new: torch.Tensor, old: torch.Tensor, momentum: float) -> torch.Tensor:
    """Momentum update, written with Python-float weights as the official planner (same rounding)."""
    return new * (1.0 - momentum) + old * momentum
