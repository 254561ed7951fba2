"""Shared test settings: headless MuJoCo and deterministic torch."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


def set_lr_at(monkeypatch, at_step: int, lr: float) -> None:
    """From now on the LR scheduler sets ``lr`` on every group at ``at_step`` (a run diverging exactly there, e.g.
    on a checkpoint step). Both trainers use ``schedules.LRScheduler``. (Also used by benchmarks/fault_suite.py.)"""
    from vjepa_ac import schedules

    real_step = schedules.LRScheduler.step

    def step(self, step):
        value = real_step(self, step)
        if step == at_step:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        return value

    monkeypatch.setattr(schedules.LRScheduler, "step", step)


@pytest.fixture
def blow_up_lr(monkeypatch):
    """``blow_up_lr(step, lr)``: ``set_lr_at`` for the test."""
    return lambda at_step, lr: set_lr_at(monkeypatch, at_step, lr)
