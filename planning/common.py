"""What every planner shares: the planning energy, the action parameterisation and the plan result.

Planners search over a *parameter* vector per horizon step. In the official V-JEPA 2-AC parameterisation it
is 4-D, ``[dx, dy, dz, grip]``, and the rotation deltas are fixed to zero; with ``plan_rotation`` it is the
full 7-D DROID action. `ActionSpace` converts between the two and applies the official limits (xyz clipped per
coordinate to ``[-maxnorm, maxnorm]``, gripper delta to ``[-gripper_clip, gripper_clip]``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch

ENERGIES = ("l1", "l2")
ENERGY_STEPS = ("last", "all")


def latent_energy(preds: torch.Tensor, goal: torch.Tensor, kind: str = "l1", steps: str = "last") -> torch.Tensor:
    """Planning energy of predicted latents `preds` [S, H, N, D] against goal latents `goal` [1 or S, N, D] -> [S].

    ``l1`` is the official objective: the mean absolute difference over all N*D features (of the last predicted
    frame when ``steps="last"``). ``l2`` is the mean squared difference. ``steps="all"`` sums the per-step
    energies over the horizon instead of scoring only the last step.
    """
    if preds.dim() != 4:
        raise ValueError(f"latent_energy: preds must be [S, H, N, D], got shape {tuple(preds.shape)}")
    if goal.dim() != 3 or goal.shape[-2:] != preds.shape[-2:]:
        raise ValueError(
            f"latent_energy: goal must be [1 or S, N, D] with N, D = {tuple(preds.shape[-2:])}, got {tuple(goal.shape)}"
        )
    if steps == "last":
        preds = preds[:, -1:]
    elif steps != "all":
        raise ValueError(f"latent_energy: steps must be one of {ENERGY_STEPS}, got {steps!r}")
    diff = preds - goal[:, None]
    if kind == "l1":
        per_step = diff.abs().flatten(2).mean(-1)
    elif kind == "l2":
        per_step = diff.square().flatten(2).mean(-1)
    else:
        raise ValueError(f"latent_energy: kind must be one of {ENERGIES}, got {kind!r}")
    return per_step.sum(1)


@dataclass
class ActionSpace:
    """Official V-JEPA 2-AC action limits; `plan_rotation` adds the three rotation deltas to the search."""

    maxnorm: float = 0.05  # xyz delta box per coordinate (metres per step)
    max_rotation: float = 0.15  # rotation delta box per coordinate (radians per step), only with plan_rotation
    gripper_clip: float = 0.75  # gripper delta box
    gripper_round: float = 0.25  # planned gripper deltas smaller than this are returned as 0
    plan_rotation: bool = False

    @property
    def dim(self) -> int:
        return 7 if self.plan_rotation else 4

    def initial_std(self, horizon: int, device=None) -> torch.Tensor:
        """[H, P]: maxnorm for xyz, max_rotation for rotations, 1 for the gripper (as the official CEM)."""
        std = [self.maxnorm] * 3 + ([self.max_rotation] * 3 if self.plan_rotation else []) + [1.0]
        return torch.tensor(std, device=device).repeat(horizon, 1)

    def clamp_(self, params: torch.Tensor) -> torch.Tensor:
        """Clip parameters [..., P] in place to the action box."""
        params[..., :3] = params[..., :3].clamp(-self.maxnorm, self.maxnorm)
        if self.plan_rotation:
            params[..., 3:6] = params[..., 3:6].clamp(-self.max_rotation, self.max_rotation)
        params[..., -1:] = params[..., -1:].clamp(-self.gripper_clip, self.gripper_clip)
        return params

    def clamp(self, params: torch.Tensor) -> torch.Tensor:
        """Differentiable (out-of-place) version of `clamp_`."""
        bound = self.initial_std(1, params.device)[0]
        bound[-1] = self.gripper_clip
        return torch.maximum(torch.minimum(params, bound), -bound)

    def to_actions(self, params: torch.Tensor) -> torch.Tensor:
        """Parameters [..., P] -> 7-D DROID actions [..., 7] (zero rotation deltas unless planned)."""
        if self.plan_rotation:
            return params
        zeros = params.new_zeros(params.shape[:-1] + (3,))
        return torch.cat([params[..., :3], zeros, params[..., 3:]], dim=-1)

    def to_params(self, actions: torch.Tensor) -> torch.Tensor:
        """7-D actions [..., 7] -> parameters [..., P] (drops rotations unless planned)."""
        if actions.shape[-1] != 7:
            raise ValueError(f"ActionSpace.to_params: actions must end in 7, got shape {tuple(actions.shape)}")
        return actions if self.plan_rotation else torch.cat([actions[..., :3], actions[..., 6:]], dim=-1)

    def finalize(self, params: torch.Tensor) -> torch.Tensor:
        """The plan handed to the robot: 7-D actions with small gripper deltas rounded to zero (official)."""
        actions = self.to_actions(params).clone()
        grip = actions[..., 6]
        actions[..., 6] = torch.where(grip.abs() < self.gripper_round, torch.zeros_like(grip), grip)
        return actions


@dataclass
class PlanResult:
    """A planner's answer: the plan, the energies it saw and per-iteration diagnostics."""

    actions: torch.Tensor  # [H, 7] planned actions; execute actions[:k]
    energies: torch.Tensor  # [iterations, S] energy of every candidate evaluated in each iteration
    diagnostics: dict[str, list[float]] = field(default_factory=dict)  # per-iteration scalars

    @property
    def best_energy(self) -> float:
        return float(self.energies.min())


class WarmStart:
    """Remembers the last plan so the next search can start from it, shifted by the executed steps."""

    def __init__(self):
        self._plan: torch.Tensor | None = None  # [H, P] parameters of the last plan

    def remember(self, params: torch.Tensor) -> None:
        self._plan = params.detach().clone()

    def shift(self, executed: int) -> None:
        """Drop the first `executed` steps of the remembered plan and pad the end with zeros."""
        if self._plan is None or executed <= 0:
            return
        tail = self._plan[executed:]
        pad = self._plan.new_zeros((min(executed, len(self._plan)),) + self._plan.shape[1:])
        self._plan = torch.cat([tail, pad])

    def reset(self) -> None:
        self._plan = None

    def initial_mean(self, horizon: int, dim: int, device) -> torch.Tensor | None:
        """The remembered plan if it fits [horizon, dim], else None."""
        if self._plan is None or self._plan.shape != (horizon, dim):
            return None
        return self._plan.to(device)


def check_plan_inputs(context: torch.Tensor, state: torch.Tensor, goal: torch.Tensor, who: str) -> None:
    """Planners plan from one context: latents [1, N, D], state [1, 7], goal latents [1, N, D]."""
    if context.dim() != 3 or context.shape[0] != 1:
        raise ValueError(f"{who}: context latents must be [1, N, D], got {tuple(context.shape)}")
    if state.shape != (1, 7):
        raise ValueError(f"{who}: state must be [1, 7], got {tuple(state.shape)}")
    if goal.shape != context.shape:
        raise ValueError(f"{who}: goal latents must match context {tuple(context.shape)}, got {tuple(goal.shape)}")


class PlannerBase:
    """What all planners share: their config, a warm-start memory and a planner-local random generator.

    Planners never touch the global RNG, so several can run in one process (reentrant) and a seed reproduces a
    plan exactly. Call `reset(seed)` between episodes and `shift(k)` after executing k planned actions.
    Subclasses set `config_class` (a dataclass with horizon, action_space, warm_start and seed) and `plan`.
    `energy` (``energy(preds [S, H, N, D], goal [1, N, D]) -> [S]``, see `planning.energy`) is what the planner
    minimises; by default the latent distance named by the config's ``energy`` / ``energy_steps``.
    """

    config_class: type

    def __init__(self, config=None, energy=None):
        self.config = config if config is not None else self.config_class()
        self.energy = energy if energy is not None else partial(
            latent_energy, kind=self.config.energy, steps=self.config.energy_steps)
        self.warm = WarmStart()
        self._seed = self.config.seed
        self._generator: torch.Generator | None = None

    def reset(self, seed: int | None = None) -> None:
        """Forget the previous plan and reseed the planner's own generator."""
        self.warm.reset()
        if seed is not None:
            self._seed = seed
        self._generator = None

    def shift(self, executed: int) -> None:
        self.warm.shift(executed)

    def rng(self, device) -> torch.Generator:
        device = torch.device(device)
        if self._generator is None or self._generator.device.type != device.type:
            self._generator = torch.Generator(device=device)
            if self._seed is None:
                self._generator.seed()
            else:
                self._generator.manual_seed(self._seed)
        return self._generator

    def initial_mean(self, device) -> torch.Tensor:
        """Zeros [H, P], or the previous plan shifted by the executed steps when warm starting."""
        horizon, dim = self.config.horizon, self.config.action_space.dim
        previous = self.warm.initial_mean(horizon, dim, device) if self.config.warm_start else None
        return previous.clone() if previous is not None else torch.zeros(horizon, dim, device=device)

    def plan(self, wm, context: torch.Tensor, state: torch.Tensor, goal: torch.Tensor) -> PlanResult:
        """Plan from current latents [1, N, D] and state [1, 7] towards goal latents [1, N, D]."""
        raise NotImplementedError
