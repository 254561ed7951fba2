"""The whole demo pipeline at toy scale (preset demo-toy): every stage runs and hands the next what it needs."""
import json

import numpy as np
import pytest

from vjepa_ac.cli import demo


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert demo.main(["--config", "demo-toy", "--out", str(out)]) == 0
    return out


def test_toy_pipeline_writes_every_stage(toy_run):
    out = toy_run
    assert len(list((out / "data" / "reach").glob("reach_*/trajectory.h5"))) == 10
    assert len(list((out / "data" / "explore").glob("explore_*/trajectory.h5"))) == 3
    for path in ("pretrain/latest.pt", "cooldown/latest.pt", "ac/latest.pt", "ac/features.zarr", "state_head.pt",
                 "landscape.json", "landscape.png", "results.md", "results.json", "eval/reach_cem/report.json",
                 "eval/reach_cem/episode_000.mp4", "eval/reach_cem/energy_landscape.png"):
        assert (out / path).exists(), path


def test_toy_results_table(toy_run):
    results = json.loads((toy_run / "results.json").read_text())
    rows = {(r["task"], r["policy"]): r for r in results["rows"]}
    cem = rows[("reach", "CEM + world model (goal image)")]
    oracle = rows[("reach", "scripted oracle (knows goal pose)")]
    assert cem["episodes"] == 2 and 0 <= cem["successes"] <= 2 and cem["seconds_per_action"] > 0
    assert oracle["successes"] == 2  # the scripted expert solves reach: the evaluation loop and seeds are sound
    assert ("reach", "random actions") in rows and ("push", "CEM + world model (goal image)") in rows
    for row in results["rows"]:
        low, high = row["ci95"]
        assert 0 <= low <= row["success_rate"] <= high <= 1
    for name, value in results["landscape"]["pairs"].items():
        assert -1 <= value["spearman_mean"] <= 1, name
    assert {"trained encoder, planning energy", "untrained encoder, latent L1", "pixels 16x16, L1"} <= set(
        results["landscape"]["pairs"])
    horizon = results["ac"]["horizon_l1"]
    assert np.isfinite(horizon["rollout"][0]) and np.isfinite(horizon["copy_first"][0])
    head = results["state_head"]
    assert {"held_out_real", "held_out_predicted_h1", "held_out_predicted_h2"} == set(head)
    assert all(0 <= v["mean"] < 1.0 for v in head.values())  # metres
    text = (toy_run / "results.md").read_text()
    assert "| reach | CEM + world model (goal image) |" in text and "| total |" in text


def test_rerun_resumes_without_retraining(toy_run):
    before = {p: (toy_run / p).stat().st_mtime_ns for p in ("pretrain/latest.pt", "ac/latest.pt", "state_head.pt")}
    assert demo.main(["--config", "demo-toy", "--out", str(toy_run), "--eval_episodes", "1",
                      "--baseline_episodes", "1", "--extra_tasks", "[]"]) == 0
    rerun = json.loads((toy_run / "results.json").read_text())
    assert np.isfinite(rerun["ac"]["horizon_l1"]["rollout"][0])  # the finished AC run's evaluation is reported
    for path, mtime in before.items():
        if path != "pretrain/latest.pt":  # the pretraining loop rewrites latest.pt even with no epochs left
            assert (toy_run / path).stat().st_mtime_ns == mtime, path
