"""OGBench visual-cube adapter and oracle collection (skipped unless `pip install 'vjepa-ac[ogbench]'`).

One rendering env for the whole module (one rendering env per process); the collection test runs the CLI in a
subprocess, which has its own.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


pytest.importorskip("ogbench", reason="optional dependency: pip install 'vjepa-ac[ogbench]'")
os.environ.setdefault("MUJOCO_GL", "egl")


def assert_not_black(image, what):
    image = np.asarray(image)
    assert image.dtype == np.uint8 and image.shape == (64, 64, 3), (what, image.dtype, image.shape)
    # A black (or blank) frame is what a second renderer in the process silently produces.
    assert image.mean() > 20 and image.std() > 5, f"{what}: black or blank frame (mean {image.mean():.1f})"


@pytest.fixture(scope="module")
def env():
    from envs.ogbench_cube import OGBenchCubeEnv

    env = OGBenchCubeEnv("visual-cube-single-v0", image_size=64)
    yield env
    env.close()


def test_reset_gives_frames_goal_and_proprio_state(env):
    obs, info = env.reset(seed=3)
    assert_not_black(obs["rgb"], "observation")
    assert_not_black(info["goal_rgb"], "goal image")
    assert info["task_id"] == 1 + 3 % 5 and info["task_name"].startswith("task4")
    assert obs["state"].shape == (7,) and obs["state"][3] == 0 and obs["state"][4] == 0
    np.testing.assert_allclose(obs["state"][:3], info["native"]["proprio/effector_pos"])
    assert not info["is_success"] and info["distance"] > 0.04
    assert not np.array_equal(obs["rgb"], info["goal_rgb"])


def test_reset_is_reproducible_and_task_id_option(env):
    _, a = env.reset(seed=11, options={"task_id": 2})
    _, b = env.reset(seed=11, options={"task_id": 2})
    assert a["task_id"] == 2
    np.testing.assert_array_equal(a["goal_rgb"], b["goal_rgb"])
    with pytest.raises(ValueError, match="task_id"):
        env.reset(seed=0, options={"task_id": 6})


def test_step_moves_the_gripper_as_commanded_and_frames_stay_lit(env):
    obs, _ = env.reset(seed=0)
    sign = np.sign(0.425 - obs["state"][0])  # toward the middle of OGBench's workspace box (x in [0.25, 0.6])
    for _ in range(3):
        before = obs["state"]
        obs, *_ = env.step([sign * 0.03, 0.0, -0.02, 0.0, 0.0, 0.0, 0.0])
        moved = obs["state"] - before
        assert sign * moved[0] > 0.015 and moved[2] < -0.01 and abs(moved[1]) < 0.01, moved
        assert_not_black(obs["rgb"], "frame after a step")
    obs, *_ = env.step([0, 0, 0, 0, 0, 0, 0.8])  # close the gripper by 0.8
    assert obs["state"][6] > 0.3
    with pytest.raises(ValueError, match="7 finite"):
        env.step([0.0] * 5)


def test_budget_truncates(env, monkeypatch):
    assert env.max_steps == 200 // 5  # OGBench's 200 native steps at 5 native steps per step
    monkeypatch.setattr(env, "max_steps", 3)
    env.reset(seed=1)
    truncated = []
    for _ in range(3):
        *_, terminated, done, _ = env.step(np.zeros(7))
        truncated.append(done)
    assert truncated == [False, False, True] and not terminated


def test_second_rendering_env_is_refused(env):
    from envs.ogbench_cube import OGBenchCubeEnv

    with pytest.raises(RuntimeError, match="one rendering env per process"):
        OGBenchCubeEnv("visual-cube-single-v0")


def test_oracle_collection_writes_droid_episodes(tmp_path):
    out = tmp_path / "data"
    cmd = [sys.executable, str(ROOT / "scripts" / "collect_ogbench.py"), "--episodes", "2", "--frames", "3",
           "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    from droid_data import find_episodes, read_episode

    episodes = [read_episode(p) for p in find_episodes(out)]
    assert len(episodes) == 2
    for ep in episodes:
        frames = ep.load_frames(ep.cameras[0])
        assert frames.shape == (3, 64, 64, 3) and ep.fps == 4.0
        for i, frame in enumerate(frames):
            assert_not_black(frame, f"{ep.name} frame {i}")
        assert np.abs(np.diff(ep.states[:, :3], axis=0)).max() > 0.005  # the oracle moves the arm
        assert np.all(ep.states[:, 3:5] == 0)  # the package's 7-D state: yaw only
    # Resume: with every folder complete nothing is collected again (and no env is made in this process).
    from envs.ogbench_collect import collect_ogbench

    mtimes = [p.stat().st_mtime for p in find_episodes(out)]
    assert collect_ogbench("visual-cube-single-v0", 2, out, frames=3) == find_episodes(out)
    assert [p.stat().st_mtime for p in find_episodes(out)] == mtimes


GOAL_AHEAD_CHECK = """
import numpy as np
from envs.ogbench_cube import OGBenchCubeEnv
env = OGBenchCubeEnv(mode="data_collection", goal_ahead=25, max_steps=10)
obs, info = env.reset(seed=5)
again = env.reset(seed=5)[1]
print(info["is_success"], info["distance"], obs["rgb"].mean(), obs["rgb"].std(), info["goal_rgb"].mean(),
      info["goal_rgb"].std(), np.array_equal(info["goal_rgb"], again["goal_rgb"]), np.abs(obs["rgb"].astype(int)
      - info["goal_rgb"]).mean())
"""


def test_goal_ahead_episodes_start_off_a_lit_goal():
    """stable-worldmodel's protocol: a goal image 25 oracle steps ahead, not already met at the start."""
    run = subprocess.run([sys.executable, "-c", GOAL_AHEAD_CHECK], capture_output=True, text=True, timeout=300,
                         check=False, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    success, distance, mean, std, goal_mean, goal_std, same, diff = run.stdout.split()[-8:]
    assert success == "False" and float(distance) > 0.04
    assert float(mean) > 20 and float(std) > 5 and float(goal_mean) > 20 and float(goal_std) > 5  # not black
    assert same == "True" and float(diff) > 0.5  # reproducible, and the goal differs from the start
