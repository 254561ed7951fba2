"""Scripted collection: DROID raw episodes readable by droid_data, deterministic, frames aligned with states."""
from pathlib import Path

import numpy as np
import pytest

from droid_data import read_episode
from envs.collect import collect_episodes

ROOT = Path(__file__).resolve().parents[2]


def test_written_episodes_read_back(tmp_path):
    paths = collect_episodes("push", 2, seed=3, out=tmp_path, max_steps=6, cameras=("ext1", "wrist"),
                             progress=False)
    memory = list(collect_episodes("push", 2, seed=3, max_steps=6, cameras=("ext1", "wrist"), progress=False))
    assert [p.name for p in paths] == ["push_00000", "push_00001"]
    for path, episode in zip(paths, memory):
        read = read_episode(path)
        assert read.num_frames == 7  # reset + 6 steps
        np.testing.assert_allclose(read.states, episode.states, atol=1e-9)
        np.testing.assert_allclose(read.joint_positions, episode.joints, atol=1e-9)
        assert read.fps == pytest.approx(4.0)
        assert read.metadata["sim_policy"] == episode.policy
        assert read.metadata["success"] == episode.success
        frames = read.load_frames(read.roles["ext1"])
        assert frames.shape == (7, 64, 64, 3)
        # lossy video, but frame i is recognisably the render recorded with state row i
        error = np.abs(frames.astype(int) - episode.frames["ext1"].astype(int)).mean(axis=(1, 2, 3))
        assert error.max() < 6.0
        shifted = np.abs(frames[1:].astype(int) - episode.frames["ext1"][:-1].astype(int)).mean()
        assert shifted > error.mean()


def test_collection_is_deterministic_and_varied():
    first = list(collect_episodes("reach", 3, seed=5, policy="mixed", max_steps=4, progress=False))
    second = list(collect_episodes("FrankaReach-v0", 3, seed=5, policy="mixed", max_steps=4, progress=False))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.states, b.states)
        np.testing.assert_array_equal(a.frames["ext1"], b.frames["ext1"])
    assert not np.array_equal(first[0].states, first[1].states)
    other = list(collect_episodes("reach", 1, seed=6, max_steps=4, progress=False))
    assert not np.array_equal(other[0].states, first[0].states)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="task: expected one of"):
        list(collect_episodes("stack", 1))
    with pytest.raises(ValueError, match="policy: expected one of"):
        list(collect_episodes("reach", 1, policy="human"))


def test_cli_resumes_existing_episodes(tmp_path, capsys):
    from vjepa_ac.cli import collect as script

    args = ["--task", "reach", "--out", str(tmp_path), "--seed", "1", "--max-steps", "3"]
    assert script.main(args + ["--episodes", "2"]) == 0
    h5 = tmp_path / "reach_00000" / "trajectory.h5"
    stamp = h5.stat().st_mtime_ns
    assert script.main(args + ["--episodes", "3"]) == 0
    assert "3 episodes" in capsys.readouterr().out
    assert h5.stat().st_mtime_ns == stamp  # kept, not rewritten
    assert (tmp_path / "reach_00002" / "trajectory.h5").exists()
