"""Schedules: shapes of the curves, end values, lr_scale / WD_exclude handling."""
import itertools
import math

import pytest
import torch

from vjepa_ac.schedules import (
    CosineWDSchedule,
    LinearDecaySchedule,
    LRScheduler,
    MomentumSchedule,
    ScheduleConfig,
    WarmupCosineSchedule,
    WarmupStableDecaySchedule,
    WDScheduler,
)


def test_warmup_cosine_warms_up_linearly_then_reaches_final():
    s = WarmupCosineSchedule(warmup_steps=10, start_lr=1e-4, ref_lr=1e-3, final_lr=1e-6, total_steps=100)
    assert s.value(0) == pytest.approx(1e-4)
    assert s.value(5) == pytest.approx(1e-4 + 0.5 * (1e-3 - 1e-4))
    assert s.value(10) == pytest.approx(1e-3)
    assert s.value(55) == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5)  # cosine midpoint
    assert s.value(100) == pytest.approx(1e-6)
    assert s.value(1000) == pytest.approx(1e-6)  # clamped
    vals = [s.value(i) for i in range(10, 101)]
    assert all(a >= b for a, b in itertools.pairwise(vals))


def test_official_pretrain_recipe_is_warmup_then_constant():
    s = WarmupCosineSchedule(warmup_steps=12000, start_lr=1e-4, ref_lr=5.25e-4, final_lr=5.25e-4,
                             total_steps=240000)
    assert s.value(1) == pytest.approx(1e-4 + (5.25e-4 - 1e-4) / 12000)
    assert s.value(12000) == pytest.approx(5.25e-4)
    assert s.value(200000) == pytest.approx(5.25e-4)


def test_linear_decay_really_reaches_final_lr():
    # The official cooldown stops near 1.06e-4 because of ipe_scale; ours must end at final_lr.
    s = LinearDecaySchedule(ref_lr=5.25e-4, final_lr=1e-6, total_steps=12000)
    assert s.value(0) == pytest.approx(5.25e-4)
    assert s.value(6000) == pytest.approx((5.25e-4 + 1e-6) / 2)
    assert s.value(12000) == pytest.approx(1e-6)
    assert s.value(20000) == pytest.approx(1e-6)


def test_wsd_has_three_phases():
    s = WarmupStableDecaySchedule(warmup_steps=10, decay_steps=20, start_lr=0.0, ref_lr=1.0,
                                  final_lr=0.1, total_steps=100)
    assert s.value(5) == pytest.approx(0.5)
    assert s.value(10) == s.value(50) == s.value(80) == pytest.approx(1.0)
    assert s.value(90) == pytest.approx(1.0 + (0.1 - 1.0) * 0.5)
    assert s.value(100) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="decay_steps"):
        WarmupStableDecaySchedule(10, 95, 0.0, 1.0, 0.1, 100)


def test_cosine_wd_and_momentum_schedules():
    wd = CosineWDSchedule(ref_wd=0.04, final_wd=0.4, total_steps=100)
    assert wd.value(0) == pytest.approx(0.04) and wd.value(100) == pytest.approx(0.4)
    assert wd.value(50) == pytest.approx(0.22)
    lin = MomentumSchedule(0.996, 1.0, 100, "linear")
    assert lin.value(25) == pytest.approx(0.996 + 0.004 * 0.25)
    cos = MomentumSchedule(0.996, 1.0, 100, "cosine")
    assert cos.value(25) == pytest.approx(1.0 + (0.996 - 1.0) * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert cos.value(100) == pytest.approx(1.0) and cos.value(0) == pytest.approx(0.996)
    with pytest.raises(ValueError, match="kind"):
        MomentumSchedule(0.99, 1.0, 10, "exp")
    with pytest.raises(ValueError, match=r"end.*\[0, 1\]"):
        MomentumSchedule(0.99, 1.5, 10)


def test_lr_scheduler_applies_lr_scale_and_wd_scheduler_skips_excluded_groups():
    w1, w2 = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([{"params": [w1], "lr_scale": 0.5},
                             {"params": [w2], "WD_exclude": True, "weight_decay": 0.0}])
    cfg = ScheduleConfig(lr=1e-3, start_lr=1e-3, final_lr=1e-5, warmup_steps=0, total_steps=10,
                         lr_schedule="linear", weight_decay=0.04, final_weight_decay=0.4)
    lr = LRScheduler(opt, cfg).step(10)
    assert lr == pytest.approx(1e-5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5e-5)
    assert opt.param_groups[1]["lr"] == pytest.approx(1e-5)
    wd = WDScheduler(opt, cfg).step(10)
    assert wd == pytest.approx(0.4)
    assert opt.param_groups[0]["weight_decay"] == pytest.approx(0.4)
    assert opt.param_groups[1]["weight_decay"] == 0.0


def test_unknown_schedule_name_is_reported():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="lr_schedule.*'step'"):
        LRScheduler(opt, ScheduleConfig(lr_schedule="step"))
