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


def test_a_mix_writes_valid_droid_episodes_and_resumes(tmp_path):
    from droid_data.validate import validate_episodes
    from envs.collect import SceneVariation, collect_mix

    mix = "reach:1,grasp/oracle:2,pick_place/failed_grasp:1,push:1,explore_object:1,reach_with_object:1,explore:1"
    variation = SceneVariation(objects=("cube", "cup"), random_colors=True, camera_jitter=0.03)
    paths = collect_mix(mix, tmp_path, seed=2, max_steps=3, variation=variation, progress=False)
    assert len(paths) == 8 and all(p.exists() for p in paths)
    assert paths[1] == tmp_path / "grasp-oracle" / "grasp_00000"
    count, problems = validate_episodes(tmp_path, progress=False)
    assert count == 8 and problems == []
    grasp = read_episode(paths[1])
    assert grasp.num_frames == 4 and grasp.metadata["sim_policy"] == "oracle"
    assert grasp.metadata["sim_object"] in ("cube", "cup")
    assert grasp.metadata["current_task"] == f"grasp the {grasp.metadata['sim_object']} and lift it"
    assert len(grasp.metadata["sim_scene_options"]["object_rgba"]) == 4
    assert max(abs(v) for v in grasp.metadata["sim_scene_options"]["camera_offset"]) <= 0.03
    assert len(read_episode(paths[3]).metadata["sim_subgoal_states"]) == 2  # pick_place
    # the two grasp episodes differ (own seeds); a second call keeps what is there and adds the rest
    assert grasp.metadata["sim_seed"] != read_episode(paths[2]).metadata["sim_seed"]
    stamp = (paths[1] / "trajectory.h5").stat().st_mtime_ns
    more = collect_mix(mix.replace("grasp/oracle:2", "grasp/oracle:3"), tmp_path, seed=2, max_steps=3,
                       variation=variation, progress=False)
    assert (paths[1] / "trajectory.h5").stat().st_mtime_ns == stamp
    assert len(more) == 9 and (tmp_path / "grasp-oracle" / "grasp_00002" / "trajectory.h5").exists()


def test_scene_variation_is_reproducible_and_varied():
    from envs.collect import SceneVariation

    variation = SceneVariation(objects=("cube", "cup"), random_colors=True, camera_jitter=0.05)
    draws = [variation.sample(seed) for seed in range(20)]
    assert draws == [variation.sample(seed) for seed in range(20)]
    assert {shape for shape, _ in draws} == {"cube", "cup"}
    colours = np.array([options["object_rgba"] for _, options in draws])
    assert colours[:, :3].std(axis=0).min() > 0.1 and np.all((colours >= 0) & (colours <= 1))
    assert SceneVariation().sample(3) == ("cube", {})
    with pytest.raises(ValueError, match="objects: expected one or more of"):
        SceneVariation(objects=("mug",))


def test_bad_mixes_are_named(tmp_path):
    from envs.collect import parse_mix

    assert parse_mix("reach:2, grasp/oracle:3") == {"reach": 2, "grasp/oracle": 3}
    (tmp_path / "mix.yaml").write_text("push: 4\nexplore_object: 2\n")
    assert parse_mix(tmp_path / "mix.yaml") == {"push": 4, "explore_object": 2}
    for bad, message in [("stack:3", "expected a task"), ("grasp/human:3", "expected a policy among"),
                         ("reach/failed_grasp:2", "needs an object"), ("grasp:x", "COMPONENT:COUNT"),
                         ("grasp:0", "positive episode count")]:
        with pytest.raises(ValueError, match=message):
            parse_mix(bad)


def test_cli_collects_a_mix(tmp_path, capsys):
    from vjepa_ac.cli import collect as script

    assert script.main(["--mix", "grasp:1,explore_object:1", "--out", str(tmp_path), "--max-steps", "2",
                        "--objects", "cup", "--random-colors"]) == 0
    assert "2 episodes" in capsys.readouterr().out
    assert read_episode(tmp_path / "grasp" / "grasp_00000").metadata["sim_object"] == "cup"
    assert script.main(["--task", "grasp", "--out", str(tmp_path)]) == 2  # --task needs --episodes: usage
    assert "--task needs --episodes" in capsys.readouterr().err


def test_object_positions_are_recorded_per_frame_for_evaluation():
    reach = next(iter(collect_episodes("reach", 1, seed=5, max_steps=3, progress=False)))
    assert reach.object_positions is None
    push = next(iter(collect_episodes("push", 1, seed=5, max_steps=3, progress=False)))
    pos = push.object_positions
    assert pos.shape == (len(push.states), 3) == (4, 3)
    # Objects stand in x 0.4-0.63, y -0.17-0.17 (docs/envs.md); three pushes move them a few centimetres at most.
    assert np.all((pos[:, 0] > 0.35) & (pos[:, 0] < 0.7) & (np.abs(pos[:, 1]) < 0.22))
