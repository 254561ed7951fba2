"""LeRobotDataset v2.1 / v3.0 folders written here with pyarrow + PyAV, following the public layout."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from droid_data import EpisodeError, pose_diffs
from droid_data.lerobot import read_lerobot_dataset
from droid_data.sources import list_episodes
from droid_data.synthetic import frame_index_of, make_frames, random_states
from droid_data.video import encode_video

FPS = 10
CAMERA = "observation.images.exterior_1_left"


def features(droid_port: bool) -> dict:
    state = (
        {
            "observation.state.cartesian_position": {"dtype": "float64", "shape": [6], "names": None},
            "observation.state.gripper_position": {"dtype": "float64", "shape": [1], "names": None},
        }
        if droid_port
        else {"observation.state": {"dtype": "float32", "shape": [7], "names": None}}
    )
    return {
        **state,
        "action": {"dtype": "float32", "shape": [7], "names": None},
        CAMERA: {"dtype": "video", "shape": [32, 32, 3], "names": ["height", "width", "channel"]},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }


def frame_table(states_per_episode, droid_port: bool, first_index: int = 0) -> pa.Table:
    columns = {k: [] for k in ("timestamp", "frame_index", "episode_index", "index", "task_index", "action")}
    state_columns = {"cart": [], "grip": [], "state": []}
    index = 0
    for episode, states in states_per_episode:
        for t, row in enumerate(states):
            columns["timestamp"].append(t / FPS)
            columns["frame_index"].append(t)
            columns["episode_index"].append(episode)
            columns["index"].append(first_index + index)
            columns["task_index"].append(0)
            columns["action"].append([0.0] * 7)
            state_columns["cart"].append(row[:6].tolist())
            state_columns["grip"].append([float(row[6])])
            state_columns["state"].append(row.astype(np.float32).tolist())
            index += 1
    if droid_port:
        columns["observation.state.cartesian_position"] = state_columns["cart"]
        columns["observation.state.gripper_position"] = state_columns["grip"]
    else:
        columns["observation.state"] = state_columns["state"]
    table = pa.table(columns)
    # shuffle rows to check the reader orders by frame_index
    return table.take(np.random.default_rng(0).permutation(len(table)))


def write_v21(root, episodes, droid_port=True):
    info = {
        "codebase_version": "v2.1",
        "robot_type": "franka",
        "fps": FPS,
        "chunks_size": 1000,
        "total_episodes": len(episodes),
        "total_frames": sum(len(s) for s in episodes),
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": features(droid_port),
    }
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    lines = [
        json.dumps({"episode_index": i, "tasks": ["stack"], "length": len(s)}) for i, s in enumerate(episodes)
    ]
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    for i, states in enumerate(episodes):
        data = root / f"data/chunk-000/episode_{i:06d}.parquet"
        data.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(frame_table([(i, states)], droid_port), data)
        video = root / f"videos/chunk-000/{CAMERA}/episode_{i:06d}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        encode_video(video, make_frames(len(states), camera=i), fps=FPS, codec="libsvtav1")


def write_v30(root, episodes, droid_port=True):
    """Both episodes packed in one parquet and one MP4, as LeRobot v3 does."""
    info = {
        "codebase_version": "v3.0",
        "robot_type": "franka",
        "fps": FPS,
        "chunks_size": 1000,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": features(droid_port),
    }
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    rows, start = [], 0
    for i, states in enumerate(episodes):
        rows.append(
            {
                "episode_index": i,
                "tasks": ["stack"],
                "length": len(states),
                "data/chunk_index": 0,
                "data/file_index": 0,
                "dataset_from_index": start,
                "dataset_to_index": start + len(states),
                f"videos/{CAMERA}/chunk_index": 0,
                f"videos/{CAMERA}/file_index": 0,
                f"videos/{CAMERA}/from_timestamp": start / FPS,
                f"videos/{CAMERA}/to_timestamp": (start + len(states)) / FPS,
            }
        )
        start += len(states)
    pq.write_table(pa.Table.from_pylist(rows), root / "meta/episodes/chunk-000/file-000.parquet")
    (root / "data/chunk-000").mkdir(parents=True)
    pq.write_table(
        frame_table(list(enumerate(episodes)), droid_port), root / "data/chunk-000/file-000.parquet"
    )
    video = root / f"videos/{CAMERA}/chunk-000/file-000.mp4"
    video.parent.mkdir(parents=True)
    total = sum(len(s) for s in episodes)
    encode_video(video, make_frames(total), fps=FPS, codec="libsvtav1")


@pytest.mark.parametrize("writer", [write_v21, write_v30])
@pytest.mark.parametrize("droid_port", [True, False])
def test_reads_states_actions_and_frames(tmp_path, writer, droid_port):
    rng = np.random.default_rng(1)
    episodes = [random_states(rng, 12), random_states(rng, 9)]
    writer(tmp_path, episodes, droid_port)
    read = read_lerobot_dataset(tmp_path)
    assert [e.index for e in read] == [0, 1]
    tol = 0 if droid_port else 1e-6  # observation.state is float32
    for episode, states in zip(read, episodes):
        np.testing.assert_allclose(episode.states, states, atol=tol)
        np.testing.assert_allclose(episode.actions, pose_diffs(episode.states))
        assert episode.num_frames == len(states) and episode.fps == FPS
        assert episode.cameras == [CAMERA]
    total = sum(len(s) for s in episodes)
    for episode_number, episode in enumerate(read):
        frames = episode.load_frames("exterior_1_left", [episode.num_frames - 1, 0, 3])
        assert frames.shape == (3, 32, 32, 3)
        if writer is write_v21:
            seen = [frame_index_of(f, episode.num_frames, camera=episode_number) for f in frames]
            assert seen == [episode.num_frames - 1, 0, 3]
        else:  # frames of the packed file: episode 1 starts after episode 0's 12 frames
            offset = 0 if episode_number == 0 else len(episodes[0])
            seen = [frame_index_of(f, total) - offset for f in frames]
            assert seen == [episode.num_frames - 1, 0, 3]
        batches = list(episode.iter_frames(CAMERA, batch_size=5))
        assert sum(len(b) for b in batches) == episode.num_frames


def test_list_episodes_detects_lerobot(tmp_path):
    write_v30(tmp_path, [random_states(np.random.default_rng(2), 6)])
    (episode,) = list_episodes(tmp_path)
    assert episode.name.endswith("#episode_000000")


def test_unmappable_state_is_a_clear_error(tmp_path):
    write_v21(tmp_path, [random_states(np.random.default_rng(3), 5)], droid_port=False)
    info = json.loads((tmp_path / "meta/info.json").read_text())
    info["features"]["observation.state"]["shape"] = [8]
    (tmp_path / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(EpisodeError, match="state_keys"):
        read_lerobot_dataset(tmp_path)
    with pytest.raises(EpisodeError, match="give 14 values, expected 7"):
        read_lerobot_dataset(tmp_path, state_keys=["observation.state", "action"])


def test_validator_checks_lerobot_videos(tmp_path):
    from droid_data.validate import validate_episodes

    write_v21(
        tmp_path, [random_states(np.random.default_rng(4), 6), random_states(np.random.default_rng(5), 7)]
    )
    assert validate_episodes(tmp_path, progress=False) == (2, [])
    (tmp_path / f"videos/chunk-000/{CAMERA}/episode_000001.mp4").unlink()
    count, problems = validate_episodes(tmp_path, progress=False)
    assert count == 2 and [p.kind for p in problems] == ["missing_mp4"]
    assert problems[0].episode.endswith("#episode_000001")
