"""LeRobotDataset v2.1 / v3.0 folders written here with pyarrow + PyAV, following the public layout."""

import io
import itertools
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zarr
from PIL import Image

import droid_data
from droid_data import CORRUPTION_KINDS, ClipSpec, EpisodeError, RawClipDataset, convert, pose_diffs
from droid_data.lerobot import read_lerobot_dataset
from droid_data.sources import list_episodes
from droid_data.synthetic import frame_index_of, make_frames, random_states
from droid_data.validate import validate_episodes
from droid_data.video import encode_video

FPS = 10
CAMERA = "observation.images.exterior_1_left"


# A Hugging Face `datasets` Image cell, as LeRobot embeds image-stored frames in the data parquet.
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def png_bytes(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def features(droid_port: bool, storage: str = "video") -> dict:
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
        CAMERA: {"dtype": storage, "shape": [32, 32, 3], "names": ["height", "width", "channel"]},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }


def episode_frames(episodes, packed: bool) -> list[np.ndarray]:
    """The frames each writer stores: per-episode files differ by camera shade; packed files run on."""
    if not packed:
        return [make_frames(len(states), camera=i) for i, states in enumerate(episodes)]
    frames = make_frames(sum(len(s) for s in episodes))
    bounds = np.cumsum([0, *(len(s) for s in episodes)])
    return [frames[a:b] for a, b in itertools.pairwise(bounds)]


def frame_table(states_per_episode, droid_port: bool, images=None) -> pa.Table:
    """Rows of (episode, states); with `images` (frames per episode) an image-stored camera column."""
    columns = {k: [] for k in ("timestamp", "frame_index", "episode_index", "index", "task_index", "action")}
    state_columns = {"cart": [], "grip": [], "state": [], "image": []}
    index = 0
    for number, (episode, states) in enumerate(states_per_episode):
        for t, row in enumerate(states):
            columns["timestamp"].append(t / FPS)
            columns["frame_index"].append(t)
            columns["episode_index"].append(episode)
            columns["index"].append(index)
            columns["task_index"].append(0)
            columns["action"].append([0.0] * 7)
            state_columns["cart"].append(row[:6].tolist())
            state_columns["grip"].append([float(row[6])])
            state_columns["state"].append(row.astype(np.float32).tolist())
            if images is not None:
                frame = images[number][t]
                state_columns["image"].append({"bytes": png_bytes(frame), "path": f"frame-{t:06d}.png"})
            index += 1
    if droid_port:
        columns["observation.state.cartesian_position"] = state_columns["cart"]
        columns["observation.state.gripper_position"] = state_columns["grip"]
    else:
        columns["observation.state"] = state_columns["state"]
    table = pa.table(columns)
    if images is not None:
        table = table.append_column(CAMERA, pa.array(state_columns["image"], type=IMAGE_TYPE))
    # shuffle rows to check the reader orders by frame_index
    return table.take(np.random.default_rng(0).permutation(len(table)))


def write_v21(root, episodes, droid_port=True, storage="video"):
    info = {
        "codebase_version": "v2.1",
        "robot_type": "franka",
        "fps": FPS,
        "chunks_size": 1000,
        "total_episodes": len(episodes),
        "total_frames": sum(len(s) for s in episodes),
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": features(droid_port, storage),
    }
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    lines = [
        json.dumps({"episode_index": i, "tasks": ["stack"], "length": len(s)}) for i, s in enumerate(episodes)
    ]
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    for i, (states, frames) in enumerate(zip(episodes, episode_frames(episodes, packed=False))):
        data = root / f"data/chunk-000/episode_{i:06d}.parquet"
        data.parent.mkdir(parents=True, exist_ok=True)
        images = [frames] if storage == "image" else None
        pq.write_table(frame_table([(i, states)], droid_port, images), data)
        if storage == "video":
            video = root / f"videos/chunk-000/{CAMERA}/episode_{i:06d}.mp4"
            video.parent.mkdir(parents=True, exist_ok=True)
            encode_video(video, frames, fps=FPS, codec="libsvtav1")


def write_v30(root, episodes, droid_port=True, storage="video"):
    """All episodes packed in one parquet (and one MP4), as LeRobot v3 does."""
    info = {
        "codebase_version": "v3.0",
        "robot_type": "franka",
        "fps": FPS,
        "chunks_size": 1000,
        "total_episodes": len(episodes),
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": features(droid_port, storage),
    }
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    rows, start = [], 0
    for i, states in enumerate(episodes):
        row = {
            "episode_index": i,
            "tasks": ["stack"],
            "length": len(states),
            "data/chunk_index": 0,
            "data/file_index": 0,
            "dataset_from_index": start,
            "dataset_to_index": start + len(states),
        }
        if storage == "video":
            row[f"videos/{CAMERA}/chunk_index"] = 0
            row[f"videos/{CAMERA}/file_index"] = 0
            row[f"videos/{CAMERA}/from_timestamp"] = start / FPS
            row[f"videos/{CAMERA}/to_timestamp"] = (start + len(states)) / FPS
        rows.append(row)
        start += len(states)
    pq.write_table(pa.Table.from_pylist(rows), root / "meta/episodes/chunk-000/file-000.parquet")
    (root / "data/chunk-000").mkdir(parents=True)
    frames = episode_frames(episodes, packed=True)
    images = frames if storage == "image" else None
    # small row groups, so reading one episode's images touches only some of them
    table = frame_table(list(enumerate(episodes)), droid_port, images)
    pq.write_table(table, root / "data/chunk-000/file-000.parquet", row_group_size=4)
    if storage == "video":
        video = root / f"videos/{CAMERA}/chunk-000/file-000.mp4"
        video.parent.mkdir(parents=True)
        encode_video(video, np.concatenate(frames), fps=FPS, codec="libsvtav1")


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
    write_v21(
        tmp_path, [random_states(np.random.default_rng(4), 6), random_states(np.random.default_rng(5), 7)]
    )
    assert validate_episodes(tmp_path, progress=False) == (2, [])
    (tmp_path / f"videos/chunk-000/{CAMERA}/episode_000001.mp4").unlink()
    count, problems = validate_episodes(tmp_path, progress=False)
    assert count == 2 and [p.kind for p in problems] == ["missing_mp4"]
    assert problems[0].episode.endswith("#episode_000001")


# ---- image-stored cameras (dtype "image": PNG bytes inside the data parquet) ---------------------------------


@pytest.mark.parametrize("writer", [write_v21, write_v30])
def test_reads_image_stored_cameras_exactly(tmp_path, writer):
    rng = np.random.default_rng(6)
    episodes = [random_states(rng, 11), random_states(rng, 7)]
    writer(tmp_path, episodes, storage="image")
    expected = episode_frames(episodes, packed=writer is write_v30)
    read = read_lerobot_dataset(tmp_path)
    for episode, states, frames in zip(read, episodes, expected):
        np.testing.assert_allclose(episode.states, states, atol=0)
        assert episode.cameras == [CAMERA] and episode.stores_images("exterior_1_left")
        np.testing.assert_array_equal(episode.load_frames("exterior_1_left", [6, 0, 6]), frames[[6, 0, 6]])
        np.testing.assert_array_equal(np.concatenate(list(episode.iter_frames(CAMERA, batch_size=4))), frames)
        assert episode.frames_path(CAMERA) == tmp_path / episode.images[CAMERA].path.relative_to(tmp_path)
    assert validate_episodes(tmp_path, decode_all=True, progress=False) == (2, [])


def test_image_stored_cameras_convert_to_a_cache(tmp_path):
    rng = np.random.default_rng(7)
    episodes = [random_states(rng, 9), random_states(rng, 6)]
    write_v30(tmp_path / "lerobot", episodes, storage="image")
    report = convert(
        tmp_path / "lerobot", tmp_path / "cache", size=(32, 32), cameras=[CAMERA], progress=False
    )
    assert (report.episodes, report.frames) == (2, 15)
    frames = zarr.open_group(str(tmp_path / "cache"), mode="r")[f"frames/{CAMERA}"][:]
    np.testing.assert_array_equal(frames, np.concatenate(episode_frames(episodes, packed=True)))


# ---- bad data: every problem is reported with its kind, file and reason; readers raise one EpisodeError ----


def truncate(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def rewrite_parquet(path, change):
    table = pq.read_table(path)
    pq.write_table(change(table), path)


def set_image(path, row, cell):
    """Replace the image cell of the row holding frame `row` of episode 0."""

    def change(table):
        cells = table.column(CAMERA).to_pylist()
        episode = np.asarray(table.column("episode_index").to_pylist())
        frame = np.asarray(table.column("frame_index").to_pylist())
        cells[int(np.flatnonzero((episode == 0) & (frame == row))[0])] = cell
        return table.set_column(table.column_names.index(CAMERA), CAMERA, pa.array(cells, type=IMAGE_TYPE))

    rewrite_parquet(path, change)


V21_DATA = "data/chunk-000/episode_000000.parquet"
V30_DATA = "data/chunk-000/file-000.parquet"
V30_EPISODES = "meta/episodes/chunk-000/file-000.parquet"
V21_VIDEO = f"videos/chunk-000/{CAMERA}/episode_000000.mp4"
V30_VIDEO = f"videos/{CAMERA}/chunk-000/file-000.mp4"


def write_json(path, value):
    path.write_text(json.dumps(value))


def edit_info(root, change):
    info = json.loads((root / "meta/info.json").read_text())
    change(info)
    write_json(root / "meta/info.json", info)


def drop_column(path, column):
    rewrite_parquet(path, lambda table: table.drop_columns([column]))


def replace_column(path, column, values):
    rewrite_parquet(
        path,
        lambda table: table.set_column(table.column_names.index(column), column, pa.array(values(table))),
    )


def edit_lines(path, change):
    path.write_text(change(path.read_text()))


def truncated_episodes_parquet(root):
    truncate(root / V30_EPISODES)
    return V30_EPISODES


def empty_episodes_parquet(root):
    (root / V30_EPISODES).write_bytes(b"")
    return V30_EPISODES


def episodes_parquet_without_length(root):
    drop_column(root / V30_EPISODES, "length")
    return V30_EPISODES


def truncated_episodes_jsonl(root):
    truncate(root / "meta/episodes.jsonl", 0.75)  # cuts the second line
    return "meta/episodes.jsonl"


def episode_index_gap(root):
    edit_lines(root / "meta/episodes.jsonl", lambda text: text.splitlines()[1] + "\n")  # only episode 1
    return "meta/episodes.jsonl"


def info_json_not_an_object(root):
    write_json(root / "meta/info.json", [1, 2])
    return "meta/info.json"


def empty_info_json(root):
    (root / "meta/info.json").write_text("")
    return "meta/info.json"


def info_json_bad_data_path(root):
    edit_info(root, lambda info: info.update(data_path="data/{episode_index}.parquet"))
    return "meta/info.json"


def truncated_v21_data(root):
    truncate(root / V21_DATA)
    return V21_DATA


def empty_v30_data(root):
    (root / V30_DATA).write_bytes(b"")
    return V30_DATA


def missing_v21_data(root):
    (root / V21_DATA).unlink()
    return V21_DATA


def missing_state_column(root):
    drop_column(root / V21_DATA, "observation.state.gripper_position")
    return V21_DATA


def missing_image_column(root):
    drop_column(root / V30_DATA, CAMERA)
    return V30_DATA


def ragged_state_column(root):
    replace_column(
        root / V21_DATA,
        "observation.state.cartesian_position",
        lambda table: [[0.0] * (6 if i else 5) for i in range(len(table))],
    )
    return V21_DATA


def metadata_length_differs(root):
    edit_lines(root / "meta/episodes.jsonl", lambda text: text.replace('"length": 8', '"length": 9'))
    return V21_DATA


def episode_0_rows(table):
    return zip(table.column("episode_index").to_pylist(), table.column("frame_index").to_pylist())


def duplicate_frame_index(root):
    replace_column(
        root / V30_DATA,
        "frame_index",
        lambda table: [0 if (e, f) == (0, 1) else f for e, f in episode_0_rows(table)],
    )
    return V30_DATA


def nonfinite_state(root):
    key = "observation.state.gripper_position"
    replace_column(
        root / V30_DATA,
        key,
        lambda table: [
            [np.nan] if (e, f) == (0, 3) else g
            for (e, f), g in zip(episode_0_rows(table), table.column(key).to_pylist())
        ],
    )
    return V30_DATA


def truncated_v21_mp4(root):
    truncate(root / V21_VIDEO)
    return V21_VIDEO


def missing_v21_mp4(root):
    (root / V21_VIDEO).unlink()
    return V21_VIDEO


def v30_video_shorter_than_parquet(root):
    encode_video(root / V30_VIDEO, make_frames(10), fps=FPS)  # the two episodes need 14 frames
    return V30_VIDEO


def truncated_png(root):
    set_image(root / V21_DATA, 7, {"bytes": png_bytes(make_frames(1)[0])[:60], "path": "frame-000007.png"})
    return V21_DATA


def null_image(root):
    set_image(root / V30_DATA, 0, {"bytes": None, "path": "frame-000000.png"})
    return V30_DATA


# corruption -> (layout writer, camera storage, kind, words in every reason)
CORRUPTIONS = {
    truncated_episodes_parquet: (write_v30, "video", "missing_metadata", "truncated or unreadable"),
    empty_episodes_parquet: (write_v30, "video", "missing_metadata", "truncated or unreadable"),
    episodes_parquet_without_length: (write_v30, "video", "missing_key", "length"),
    truncated_episodes_jsonl: (write_v21, "video", "missing_metadata", "line 2: not valid JSON"),
    episode_index_gap: (write_v21, "video", "missing_metadata", "1 not listed [0]"),
    info_json_not_an_object: (write_v21, "video", "missing_metadata", "expected a JSON object"),
    empty_info_json: (write_v30, "image", "missing_metadata", "not readable as JSON"),
    info_json_bad_data_path: (write_v30, "image", "missing_key", "data_path"),
    truncated_v21_data: (write_v21, "video", "unreadable_parquet", "truncated or unreadable"),
    empty_v30_data: (write_v30, "video", "unreadable_parquet", "truncated or unreadable"),
    missing_v21_data: (write_v21, "image", "unreadable_parquet", "does not exist"),
    missing_state_column: (write_v21, "video", "missing_key", "observation.state.gripper_position"),
    missing_image_column: (write_v30, "image", "missing_key", CAMERA),
    ragged_state_column: (write_v21, "video", "missing_key", "one length per row"),
    metadata_length_differs: (write_v21, "video", "length_mismatch", "metadata says 9 frames, parquet has 8"),
    duplicate_frame_index: (write_v30, "video", "length_mismatch", "frame_index should run 0..7"),
    nonfinite_state: (write_v30, "video", "nonfinite_state", "first: frame 3"),
    truncated_v21_mp4: (write_v21, "video", "truncated_mp4", "truncated"),
    missing_v21_mp4: (write_v21, "video", "missing_mp4", "does not exist"),
    v30_video_shorter_than_parquet: (write_v30, "video", "length_mismatch", "video has 10 frames"),
    truncated_png: (write_v21, "image", "undecodable_image", "frame 7: cannot be decoded"),
    null_image: (write_v30, "image", "undecodable_image", "frame 0: no image bytes"),
}


def test_corruptions_cover_the_lerobot_kinds():
    assert {kind for _, _, kind, _ in CORRUPTIONS.values()} == set(CORRUPTION_KINDS) - {"unreadable_h5"}


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda corrupt: corrupt.__name__)
def test_each_corruption_is_reported_and_raised_in_one_line(tmp_path, corrupt):
    writer, storage, kind, words = CORRUPTIONS[corrupt]
    rng = np.random.default_rng(8)
    writer(tmp_path, [random_states(rng, 8), random_states(rng, 6)], storage=storage)
    assert validate_episodes(tmp_path, progress=False) == (2, [])
    bad_file = tmp_path / corrupt(tmp_path)
    _, problems = validate_episodes(tmp_path, progress=False)
    assert problems and {p.kind for p in problems} == {kind}, problems
    assert {p.file for p in problems} == {str(bad_file)}, problems
    assert all(words in p.reason for p in problems), problems
    # readers raise the same problem as one EpisodeError (for frames: when they are loaded)
    with pytest.raises(EpisodeError) as raised:
        for episode in read_lerobot_dataset(tmp_path):
            episode.load_frames(CAMERA, [0, episode.num_frames - 1])
    # (a reader cannot tell a short video from a cut one; the validator counts the packets and can)
    reader_kind = "truncated_mp4" if corrupt is v30_video_shorter_than_parquet else kind
    assert raised.value.kind == reader_kind and str(bad_file) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_truncated_v21_mp4_names_the_file_when_loading(tmp_path):
    write_v21(tmp_path, [random_states(np.random.default_rng(9), 6)])
    video = tmp_path / V21_VIDEO
    truncate(video)
    (episode,) = read_lerobot_dataset(tmp_path)
    with pytest.raises(EpisodeError, match=f"truncated_mp4: {video}: camera"):
        episode.load_frames(CAMERA, [0, 3])
    with pytest.raises(EpisodeError, match="truncated_mp4"):
        list(episode.iter_frames(CAMERA))


def test_problems_are_per_episode(tmp_path):
    """One bad episode among good ones: only it is reported; convert --skip-bad keeps the others."""
    rng = np.random.default_rng(10)
    write_v21(tmp_path / "ds", [random_states(rng, 6) for _ in range(3)], storage="image")
    truncate(tmp_path / "ds/data/chunk-000/episode_000001.parquet")
    count, problems = validate_episodes(tmp_path / "ds", progress=False)
    assert count == 3 and [(p.episode, p.kind) for p in problems] == [
        (f"{tmp_path / 'ds'}#episode_000001", "unreadable_parquet")
    ]
    with pytest.raises(EpisodeError, match="unreadable_parquet"):
        convert(tmp_path / "ds", tmp_path / "cache", size=16, cameras=[CAMERA], progress=False)
    report = convert(
        tmp_path / "ds", tmp_path / "cache", size=16, cameras=[CAMERA], skip_bad=True, progress=False
    )
    assert report.episodes == 2 and [p.kind for p in report.skipped] == ["unreadable_parquet"]
    dataset = RawClipDataset(
        tmp_path / "ds",
        ClipSpec(2, None),
        cameras=["exterior_1_left"],
        size=16,
        skip_bad=True,
        progress=False,
    )
    assert len(dataset) == 2 and dataset[0]["frames"].shape == (2, 16, 16, 3)


def test_unknown_camera_is_reported_not_raised(tmp_path):
    write_v30(tmp_path, [random_states(np.random.default_rng(11), 6)], storage="image")
    count, problems = validate_episodes(tmp_path, cameras=["wrist"], progress=False)
    assert count == 1 and [p.kind for p in problems] == ["missing_key"] and "wrist" in problems[0].reason


def test_cli_reports_bad_lerobot_data_in_lines_and_exits_1(tmp_path):
    rng = np.random.default_rng(12)
    write_v30(tmp_path, [random_states(rng, 8), random_states(rng, 6)], storage="image")
    truncate(tmp_path / V30_EPISODES)
    command = [sys.executable, "-m", "droid_data", "validate", str(tmp_path), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(droid_data.__file__).parents[1])}
    result = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("BAD ")]
    assert f": missing_metadata: {tmp_path / V30_EPISODES}: truncated or unreadable" in line


@pytest.mark.parametrize("writer", [write_v21, write_v30])
@pytest.mark.parametrize("storage", ["video", "image"])
def test_every_emptied_or_halved_file_is_reported(tmp_path, writer, storage):
    """A sweep: each file of the dataset, emptied or cut in half, gives problems naming it, never an exception."""
    rng = np.random.default_rng(13)
    writer(tmp_path / "good", [random_states(rng, 8), random_states(rng, 6)], storage=storage)
    files = sorted(p.relative_to(tmp_path / "good") for p in (tmp_path / "good").rglob("*") if p.is_file())
    for number, relative in enumerate(files):
        for fraction in (0.0, 0.5):
            root = tmp_path / f"{number}-{fraction}"
            shutil.copytree(tmp_path / "good", root)
            truncate(root / relative, fraction)
            _, problems = validate_episodes(root, progress=False)
            assert problems and all(p.file == str(root / relative) for p in problems), (relative, problems)
