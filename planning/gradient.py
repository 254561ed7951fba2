"""Gradient planning: Adam on the action sequence, backpropagating the energy through the world-model rollout.

`samples` candidate plans (the first starts at the warm-start/zero mean, the others add Gaussian noise) are
optimised in parallel: their energies are summed, so each receives its own gradient. After every
`optimizer.step()` the parameters are projected back into the action box. The plan is the lowest-energy
candidate seen over all iterations.
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
class GradientConfig:
    horizon: int = 2
    samples: int = 8  # parallel starts
    iterations: int = 30
    lr: float = 0.01  # Adam step size (action units: metres for xyz)
    init_noise: float = 0.5  # start spread, in units of the action box (ActionSpace.initial_std)
    action_space: ActionSpace = field(default_factory=ActionSpace)
    energy: str = "l1"
    energy_steps: str = "last"
    warm_start: bool = False
    seed: int | None = 0

    def __post_init__(self):
        if self.samples < 1 or self.horizon < 1 or self.iterations < 1 or self.lr <= 0:
            raise ValueError("GradientConfig: samples, horizon, iterations must be >= 1 and lr > 0")


class GradientPlanner(PlannerBase):
    """``plan(wm, context, state, goal) -> PlanResult``; `reset(seed)` between episodes, `shift(k)` after acting."""

    config_class = GradientConfig

    def plan(self, wm: WorldModel, context: torch.Tensor, state: torch.Tensor, goal: torch.Tensor) -> PlanResult:
        check_plan_inputs(context, state, goal, "GradientPlanner.plan")
        cfg, space = self.config, self.config.action_space
        device, gen = context.device, self.rng(context.device)
        h, s, p = cfg.horizon, cfg.samples, space.dim

        mean = self.initial_mean(device)
        noise = torch.randn(s, h, p, device=device, generator=gen) * space.initial_std(h, device) * cfg.init_noise
        noise[0] = 0.0
        params = space.clamp_(mean + noise).requires_grad_(True)
        optimizer = torch.optim.Adam([params], lr=cfg.lr)
        context, state, goal = context.detach(), state.detach(), goal.detach()

        def evaluate(candidates: torch.Tensor) -> torch.Tensor:
            preds = wm.rollout(context, state, space.to_actions(candidates))
            return self.energy(preds, goal)

        best_params, best_energy = params.detach()[0].clone(), float("inf")
        energies, diag = [], {"energy_min": [], "energy_mean": [], "grad_norm": []}
        for step in range(cfg.iterations + 1):
            evaluated = params.detach().clone()
            if step < cfg.iterations:
                optimizer.zero_grad(set_to_none=True)
                with torch.enable_grad():
                    energy = evaluate(params)
                    energy.sum().backward()  # candidates are independent: the sum gives each its own gradient
                diag["grad_norm"].append(float(params.grad.norm()))
                optimizer.step()
                with torch.no_grad():
                    space.clamp_(params)
            else:  # score the parameters left by the last step
                with torch.no_grad():
                    energy = evaluate(params)
            energy = energy.detach()
            i = int(energy.argmin())
            if float(energy[i]) < best_energy:
                best_energy, best_params = float(energy[i]), evaluated[i]
            energies.append(energy)
            diag["energy_min"].append(float(energy.min()))
            diag["energy_mean"].append(float(energy.mean()))

        self.warm.remember(best_params)
        return PlanResult(actions=space.finalize(best_params), energies=torch.stack(energies), diagnostics=diag)
