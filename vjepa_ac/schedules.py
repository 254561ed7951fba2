"""Learning-rate, weight-decay and EMA-momentum schedules.

Every schedule is a pure function of the global optimisation step (``value(step)``), so resuming a
run only needs the step counter — nothing is fast-forwarded. Steps are 1-based like the official
code (the first optimiser step sees ``step = 1``), and every schedule is clamped at its end value,
so a decay over ``total_steps`` really reaches ``final`` (the official cooldown stops at ~1e-4).

``LRScheduler`` / ``WDScheduler`` apply a schedule to an optimizer's param groups:
- lr of a group = schedule value × ``group["lr_scale"]`` (default 1), so per-module scales work;
- weight decay is written only to groups without ``group["WD_exclude"]``.

Both read their settings from any object with the attribute names listed in ``ScheduleConfig``
(``JEPATrainingConfig`` provides them as properties), so other trainers can reuse them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LR_SCHEDULES = ("cosine", "wsd", "linear", "constant")
EMA_SCHEDULES = ("linear", "cosine")


def _check_steps(name: str, total_steps: int, warmup_steps: int = 0) -> None:
    if total_steps < 1:
        raise ValueError(f"{name}: total_steps must be >= 1, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"{name}: warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}")


def _cosine(start: float, end: float, progress: float) -> float:
    """Half-cosine from ``start`` (progress 0) to ``end`` (progress 1); progress is clamped."""
    progress = min(max(progress, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _warmup(step: int, warmup_steps: int, start_lr: float, ref_lr: float) -> float:
    return start_lr + (ref_lr - start_lr) * step / warmup_steps


@dataclass(frozen=True)
class WarmupCosineSchedule:
    """Linear warmup from ``start_lr`` to ``ref_lr``, then cosine to ``final_lr`` at ``total_steps``.

    With ``final_lr == ref_lr`` this is the official V-JEPA 2 pretraining recipe: warmup, then constant.
    """

    warmup_steps: int
    start_lr: float
    ref_lr: float
    final_lr: float
    total_steps: int

    def __post_init__(self):
        _check_steps("WarmupCosineSchedule", self.total_steps, self.warmup_steps)

    def value(self, step: int) -> float:
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps, self.start_lr, self.ref_lr)
        span = max(1, self.total_steps - self.warmup_steps)
        return _cosine(self.ref_lr, self.final_lr, (step - self.warmup_steps) / span)


@dataclass(frozen=True)
class WarmupStableDecaySchedule:
    """Warmup → constant ``ref_lr`` → linear decay to ``final_lr`` over the last ``decay_steps`` steps."""

    warmup_steps: int
    decay_steps: int
    start_lr: float
    ref_lr: float
    final_lr: float
    total_steps: int

    def __post_init__(self):
        _check_steps("WarmupStableDecaySchedule", self.total_steps, self.warmup_steps)
        if not 0 <= self.decay_steps <= self.total_steps - self.warmup_steps:
            raise ValueError(
                f"WarmupStableDecaySchedule: decay_steps must be in [0, total_steps - warmup_steps = "
                f"{self.total_steps - self.warmup_steps}], got {self.decay_steps}"
            )

    def value(self, step: int) -> float:
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps, self.start_lr, self.ref_lr)
        decay_start = self.total_steps - self.decay_steps
        if step <= decay_start or self.decay_steps == 0:
            return self.ref_lr
        progress = min(1.0, (step - decay_start) / self.decay_steps)
        return self.ref_lr + (self.final_lr - self.ref_lr) * progress


@dataclass(frozen=True)
class LinearDecaySchedule:
    """Linear anneal from ``ref_lr`` to ``final_lr``, reached exactly at ``total_steps`` and held after.

    Used by the cooldown. Unlike the official one it is clamped and has no ``ipe_scale`` stretch.
    """

    ref_lr: float
    final_lr: float
    total_steps: int

    def __post_init__(self):
        _check_steps("LinearDecaySchedule", self.total_steps)

    def value(self, step: int) -> float:
        progress = min(max(step / self.total_steps, 0.0), 1.0)
        return self.ref_lr + (self.final_lr - self.ref_lr) * progress


@dataclass(frozen=True)
class ConstantSchedule:
    """Warmup from ``start_lr`` to ``ref_lr``, then constant."""

    warmup_steps: int
    start_lr: float
    ref_lr: float
    total_steps: int

    def __post_init__(self):
        _check_steps("ConstantSchedule", self.total_steps, self.warmup_steps)

    def value(self, step: int) -> float:
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps, self.start_lr, self.ref_lr)
        return self.ref_lr


@dataclass(frozen=True)
class LinearWarmupHold:
    """The 2.1 context-loss weight (official ``Lambda_LinearWarmupHold``): 0 before ``start_step``, a linear
    ramp to ``lambda_value`` until ``end_step``, then ``lambda_value``. Steps are 0-based (official: ``epoch * ipe + itr``)."""

    lambda_value: float
    start_step: int = 15_000
    end_step: int = 30_000

    def __post_init__(self):
        if not 0 <= self.start_step < self.end_step:
            raise ValueError(f"LinearWarmupHold: need 0 <= start_step < end_step, got {self.start_step}, "
                             f"{self.end_step}")

    def value(self, step: int) -> float:
        if step < self.start_step:
            return 0.0
        if step >= self.end_step:
            return self.lambda_value
        return self.lambda_value * (step - self.start_step) / (self.end_step - self.start_step)


@dataclass(frozen=True)
class CosineWDSchedule:
    """Cosine from ``ref_wd`` to ``final_wd`` over ``total_steps`` (clamped), as the official one."""

    ref_wd: float
    final_wd: float
    total_steps: int

    def __post_init__(self):
        _check_steps("CosineWDSchedule", self.total_steps)

    def value(self, step: int) -> float:
        return _cosine(self.ref_wd, self.final_wd, step / self.total_steps)


@dataclass(frozen=True)
class MomentumSchedule:
    """EMA momentum from ``start`` to ``end`` over ``total_steps``, ``kind`` 'linear' or 'cosine'.

    Step 0 gives ``start``; ``total_steps`` and beyond give ``end`` (the official generator uses
    ``ipe_scale`` so it never gets there; here it does).
    """

    start: float
    end: float
    total_steps: int
    kind: str = "linear"

    def __post_init__(self):
        _check_steps("MomentumSchedule", self.total_steps)
        if self.kind not in EMA_SCHEDULES:
            raise ValueError(f"MomentumSchedule.kind: expected one of {EMA_SCHEDULES}, got {self.kind!r}")
        for name in ("start", "end"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"MomentumSchedule.{name}: expected a momentum in [0, 1], got {v}")

    def value(self, step: int) -> float:
        progress = min(max(step / self.total_steps, 0.0), 1.0)
        if self.kind == "linear":
            return self.start + (self.end - self.start) * progress
        return _cosine(self.start, self.end, progress)


@dataclass
class ScheduleConfig:
    """The attributes ``LRScheduler`` and ``WDScheduler`` read (any object with them works).

    lr_schedule: 'cosine' (warmup→cosine), 'wsd' (warmup→stable→linear decay over the last
    ``decay_fraction`` of training), 'linear' (anneal from ``lr`` to ``final_lr``, no warmup) or
    'constant' (warmup→constant).
    """

    lr: float = 1e-3
    start_lr: float = 2e-4
    final_lr: float = 1e-6
    warmup_steps: int = 0
    total_steps: int = 1000
    lr_schedule: str = "cosine"
    decay_fraction: float = 0.2
    weight_decay: float = 0.04
    final_weight_decay: float = 0.4


def build_lr_schedule(config) -> WarmupCosineSchedule | WarmupStableDecaySchedule | LinearDecaySchedule:
    """Pick the LR schedule named by ``config.lr_schedule`` (see ``ScheduleConfig``)."""
    kind = config.lr_schedule
    total, warmup = int(config.total_steps), int(config.warmup_steps)
    if kind == "cosine":
        return WarmupCosineSchedule(warmup, config.start_lr, config.lr, config.final_lr, total)
    if kind == "wsd":
        decay = round(config.decay_fraction * (total - warmup))
        return WarmupStableDecaySchedule(warmup, decay, config.start_lr, config.lr, config.final_lr, total)
    if kind == "linear":
        return LinearDecaySchedule(config.lr, config.final_lr, total)
    if kind == "constant":
        return ConstantSchedule(warmup, config.start_lr, config.lr, total)
    raise ValueError(f"lr_schedule: expected one of {LR_SCHEDULES}, got {kind!r}")


class LRScheduler:
    """Sets every param group's lr to ``schedule(step) * group['lr_scale']``; ``step(step) -> lr``."""

    def __init__(self, optimizer: torch.optim.Optimizer, config):
        self.optimizer = optimizer
        self.schedule = build_lr_schedule(config)

    def step(self, step: int) -> float:
        lr = self.schedule.value(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr


class WDScheduler:
    """Cosine weight decay from ``config.weight_decay`` to ``config.final_weight_decay``.

    Groups flagged ``WD_exclude`` (biases, norms) keep weight decay 0. ``step(step) -> wd``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config):
        self.optimizer = optimizer
        self.schedule = CosineWDSchedule(config.weight_decay, config.final_weight_decay, int(config.total_steps))

    def step(self, step: int) -> float:
        wd = self.schedule.value(step)
        for group in self.optimizer.param_groups:
            if not group.get("WD_exclude", False):
                group["weight_decay"] = wd
        return wd
