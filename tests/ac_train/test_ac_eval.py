import json

import pytest
import torch

from vjepa_ac import ac_eval
from vjepa_ac.ac_train import evaluate


def test_horizon_errors_match_definitions():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(3, 4, 5, 6, generator=g)
    z_tf = torch.randn(3, 3, 5, 6, generator=g)
    z_ar = torch.randn(3, 2, 5, 6, generator=g)
    m = ac_eval.horizon_errors(h, z_tf, z_ar).means()
    for k in range(1, 4):
        assert m["teacher_forcing"][k - 1] == pytest.approx((z_tf[:, k - 1] - h[:, k]).abs().mean().item(), rel=1e-6)
        assert m["copy_previous"][k - 1] == pytest.approx((h[:, k - 1] - h[:, k]).abs().mean().item(), rel=1e-6)
        assert m["copy_first"][k - 1] == pytest.approx((h[:, 0] - h[:, k]).abs().mean().item(), rel=1e-6)
    for k in range(1, 3):
        assert m["rollout"][k - 1] == pytest.approx((z_ar[:, k - 1] - h[:, k]).abs().mean().item(), rel=1e-6)
    assert m["rollout"][2] != m["rollout"][2]  # NaN: no rollout prediction at horizon 3


def test_accumulation_over_batches_equals_one_batch():
    g = torch.Generator().manual_seed(2)
    h, z_tf, z_ar = torch.randn(4, 3, 2, 2, generator=g), torch.randn(4, 2, 2, 2, generator=g), torch.randn(4, 2, 2, 2, generator=g)
    whole = ac_eval.horizon_errors(h, z_tf, z_ar)
    parts = ac_eval.horizon_errors(h[:1], z_tf[:1], z_ar[:1]) + ac_eval.horizon_errors(h[1:], z_tf[1:], z_ar[1:])
    for row in ac_eval.ROWS:
        assert parts.means()[row] == pytest.approx(whole.means()[row])


def test_exact_model_beats_copy_baseline_and_report_is_written(toy, tmp_path):
    states, actions = toy.random_trajectory(batch=4, frames=5)
    h = toy.latents_of(states)
    errors = evaluate(toy.ToyPredictor(gain=1.0), [(h, actions, states)], normalize_reps=False, horizon=4)
    m = errors.means()
    assert max(m["rollout"]) < 1e-5 and min(m["copy_first"]) > 1e-3
    out = ac_eval.write_report(errors, tmp_path / "eval", step=7)
    assert json.loads((out / "horizon_errors.json").read_text())["step"] == 7
    table = (out / "horizon_errors.txt").read_text()
    assert table.count("\n") == 2 + errors.horizon  # "step" line + header + one line per horizon
    assert (out / "horizon_errors.png").stat().st_size > 1000
    rows = (out / "horizon_errors.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,horizon") and len(rows) == 1 + errors.horizon


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="horizon_errors"):
        ac_eval.horizon_errors(torch.zeros(2, 4, 1, 1), torch.zeros(2, 2, 1, 1), torch.zeros(2, 1, 1, 1))


def test_config_errors_name_field_expected_and_actual(tmp_path):
    from vjepa_ac.ac_train import ACLossConfig, ACModelConfig, ACTrainingConfig, load_ac_config
    from vjepa_ac.config import ConfigError

    with pytest.raises(ValueError, match=r"loss.auto_steps: expected 0..data.frames_per_clip-1 = 0..7, got 8"):
        ACTrainingConfig(loss=ACLossConfig(auto_steps=8))
    with pytest.raises(ValueError, match=r"model.img_size: expected a multiple of patch_size=16, got 100"):
        ACModelConfig(img_size=100)
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: ac-tiny\noptim: {learning_rate: 1.0}\n")
    with pytest.raises(ConfigError, match="bad.yaml: optim: .*learning_rate"):
        load_ac_config(bad)
    preset = load_ac_config("ac-droid-256px-8f")
    o, m, d = preset.optim, preset.model, preset.data
    assert (o.lr, o.start_lr, o.warmup_steps, o.total_steps) == (4.25e-4, 7.5e-5, 4500, 94500)
    assert (m.predictor_depth, m.predictor_embed_dim, m.predictor_num_heads) == (24, 1024, 16)
    assert (d.frames_per_clip, d.fps, m.tubelet_size, preset.loss.auto_steps) == (8, 4.0, 2, 2)


def test_official_preset_schedule_matches_the_released_wsd():
    """Warmup 4,500 steps 7.5e-5 -> 4.25e-4, constant until 90,000, linear to 0 at 94,500."""
    from vjepa_ac.ac_train import load_ac_config
    from vjepa_ac.schedules import build_lr_schedule

    sched = build_lr_schedule(load_ac_config("ac-droid-256px-8f").optim)
    assert sched.value(0) == pytest.approx(7.5e-5)
    assert sched.value(2250) == pytest.approx((7.5e-5 + 4.25e-4) / 2)
    assert sched.value(4500) == pytest.approx(4.25e-4) and sched.value(90000) == pytest.approx(4.25e-4)
    assert sched.value(92250) == pytest.approx(4.25e-4 / 2)
    assert sched.value(94500) == pytest.approx(0.0, abs=1e-12)
