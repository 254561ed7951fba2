"""Model-predictive path integral (MPPI) planning over world-model rollouts.

Each iteration perturbs the current mean plan with Gaussian noise, scores every candidate with the planning
energy and moves the mean to the exponentially weighted average of all candidates,
``w_i ∝ exp(-(E_i - min E) / (temperature * std(E)))``. Scaling the temperature by the batch's energy spread
makes one default work for latent spaces of any scale. The noise std adapts to the weighted spread of the
candidates around the new mean (as in TD-MPC's MPPI), never below `min_std` times its initial value.
The action box and gripper rounding are the same as CEM's (`planning.common.ActionSpace`).
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
class MPPIConfig:
    horizon: int = 2
    samples: int = 400
    iterations: int = 10
    temperature: float = 0.1  # in units of the candidates' energy std
    min_std: float = 0.01  # floor of the noise std, relative to the initial std (the action box)
    action_space: ActionSpace = field(default_factory=ActionSpace)
    energy: str = "l1"
    energy_steps: str = "last"
    warm_start: bool = False
    seed: int | None = 0

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError(f"MPPIConfig: temperature must be > 0, got {self.temperature}")
        if self.samples < 2 or self.horizon < 1 or self.iterations < 1:
            raise ValueError("MPPIConfig: samples must be >= 2, horizon and iterations >= 1")


class MPPIPlanner(PlannerBase):
    """``plan(wm, context, state, goal) -> PlanResult``; `reset(seed)` between episodes, `shift(k)` after acting."""

    config_class = MPPIConfig

    @torch.no_grad()
    def plan(self, wm: WorldModel, context: torch.Tensor, state: torch.Tensor, goal: torch.Tensor) -> PlanResult:
        check_plan_inputs(context, state, goal, "MPPIPlanner.plan")
        cfg, space = self.config, self.config.action_space
        device, gen = context.device, self.rng(context.device)
        h, s, p = cfg.horizon, cfg.samples, space.dim

        mean = self.initial_mean(device)
        noise_std = space.initial_std(h, device)
        std_floor = noise_std * cfg.min_std

        energies, diag = [], {"energy_min": [], "energy_weighted": [], "effective_samples": [], "noise_std_xyz": []}
        for _ in range(cfg.iterations):
            params = mean + noise_std * torch.randn(s, h, p, device=device, generator=gen)
            params[0] = mean  # always score the current mean, so the plan never gets worse unseen
            space.clamp_(params)
            energy = self.energy(wm.rollout(context, state, space.to_actions(params)), goal)
            scale = energy.std().clamp_min(1e-12)
            weights = torch.softmax(-(energy - energy.min()) / (cfg.temperature * scale), dim=0)
            w = weights[:, None, None]
            mean = (w * params).sum(0)
            spread = (w * (params - mean).square()).sum(0).sqrt()

            energies.append(energy)
            diag["energy_min"].append(float(energy.min()))
            diag["energy_weighted"].append(float((weights * energy).sum()))
            diag["effective_samples"].append(float(1.0 / weights.square().sum()))
            diag["noise_std_xyz"].append(float(noise_std[:, :3].mean()))
            noise_std = torch.maximum(spread, std_floor)

        self.warm.remember(mean)
        return PlanResult(actions=space.finalize(mean), energies=torch.stack(energies), diagnostics=diag)
