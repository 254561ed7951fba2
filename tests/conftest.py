"""Shared test settings: headless MuJoCo and deterministic torch."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


@pytest.fixture
def blow_up_lr(monkeypatch):
    """``blow_up_lr(step, lr)``: from then on the LR scheduler sets ``lr`` on every group at ``step`` (a run
    diverging exactly there, e.g. on a checkpoint step). Both trainers use ``schedules.LRScheduler``."""
    from vjepa_ac import schedules

    real_step = schedules.LRScheduler.step

    def arm(at_step: int, lr: float) -> None:
        def step(self, step):
            value = real_step(self, step)
            if step == at_step:
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
            return value

        monkeypatch.setattr(schedules.LRScheduler, "step", step)

    return arm
