"""Read LeRobotDataset v2.x and v3.0 folders (parquet + MP4 + meta/info.json) as droid_data Episodes.

Layouts (https://huggingface.co/docs/lerobot/lerobot-dataset-v3, porting guide for v2 -> v3):

- v2.x: one parquet and one MP4 per episode, ``meta/episodes.jsonl`` ({"episode_index", "length", ...});
  ``info.json`` templates ``data_path`` / ``video_path`` use ``episode_chunk`` (= index // chunks_size),
  ``episode_index`` and ``video_key``.
- v3.0: many episodes per parquet / MP4; ``meta/episodes/chunk-*/file-*.parquet`` rows give ``episode_index``,
  ``length``, ``data/chunk_index``, ``data/file_index`` and per camera ``videos/<key>/chunk_index``,
  ``videos/<key>/file_index``, ``videos/<key>/from_timestamp`` (where the episode starts in the shared MP4).

Cameras are the features with ``dtype: "video"``; ``load_frames`` accepts the full key
("observation.images.wrist") or its last part ("wrist").

States map to the DROID convention ``[x, y, z, rx, ry, rz, gripper]`` (extrinsic Euler 'xyz'). By default:
``observation.state.cartesian_position`` + ``observation.state.gripper_position`` when present (DROID's LeRobot
port), otherwise a 7-D ``observation.state`` taken to be in that convention already. Pass ``state_keys`` (features
concatenated in order, 7 values in total) for anything else. Actions are recomputed from states with
``pose_diffs``, exactly as for DROID raw; the dataset's own ``action`` column is not used.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from droid_data.episode import Episode, EpisodeError

__all__ = ["LeRobotEpisode", "is_lerobot_dataset", "read_lerobot_dataset"]

DROID_PORT_STATE_KEYS = ("observation.state.cartesian_position", "observation.state.gripper_position")


def is_lerobot_dataset(path: str | os.PathLike) -> bool:
    return (pathlib.Path(path) / "meta" / "info.json").is_file()


@dataclasses.dataclass
class LeRobotEpisode(Episode):
    """An episode of a LeRobot dataset; same interface as a DROID Episode."""

    index: int = 0
    # camera key -> (MP4 path, index of this episode's first frame in that file)
    videos: dict[str, tuple[pathlib.Path, int]] = dataclasses.field(default_factory=dict)
    dataset_fps: float = 30.0

    @property
    def name(self) -> str:
        return f"{self.path}#episode_{self.index:06d}"

    @property
    def fps(self) -> float:
        return self.dataset_fps

    def serial(self, camera: str) -> str:
        camera = str(camera)
        if camera in self.videos:
            return camera
        matches = [key for key in self.videos if key.split(".")[-1] == camera]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(f"{self.path}: unknown camera {camera!r}; expected one of {sorted(self.videos)}")

    def video_path(self, camera: str) -> pathlib.Path:
        return self.videos[self.serial(camera)][0]

    def video_frame_range(self, camera: str) -> tuple[int, int | None]:
        return self.videos[self.serial(camera)][1], self.num_frames

    def extrinsics(self, camera: str) -> np.ndarray:
        raise KeyError(f"{self.path}: LeRobot datasets carry no camera extrinsics (camera {camera!r})")


def _read_info(root: pathlib.Path) -> dict:
    path = root / "meta" / "info.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise EpisodeError(root, "missing_metadata", path, f"not readable as JSON ({error})") from error
    for key in ("codebase_version", "fps", "features", "data_path"):
        if key not in info:
            raise EpisodeError(root, "missing_key", path, f"missing key {key!r}")
    return info


def _state_keys(info: dict, root: pathlib.Path, state_keys: Sequence[str] | None) -> list[str]:
    features = info["features"]
    if state_keys is None:
        if all(key in features for key in DROID_PORT_STATE_KEYS):
            state_keys = DROID_PORT_STATE_KEYS
        elif "observation.state" in features and list(features["observation.state"].get("shape", [])) == [7]:
            state_keys = ("observation.state",)
        else:
            numeric = sorted(
                k for k, v in features.items() if v.get("dtype") not in ("video", "image", "string")
            )
            raise EpisodeError(
                root,
                "missing_key",
                root / "meta" / "info.json",
                "cannot map features to the 7-D state [xyz, euler xyz, gripper]: expected "
                f"{' + '.join(DROID_PORT_STATE_KEYS)} or a 7-D observation.state; pass state_keys from {numeric}",
            )
    missing = [key for key in state_keys if key not in features]
    if missing:
        raise EpisodeError(
            root, "missing_key", root / "meta" / "info.json", f"feature {missing[0]!r} not in info.json"
        )
    return list(state_keys)


def _read_parquet(path: pathlib.Path, root: pathlib.Path, columns: list[str]):
    import pyarrow.parquet as pq

    if not path.is_file():
        raise EpisodeError(root, "missing_key", path, "parquet file named by meta/info.json does not exist")
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as error:
        raise EpisodeError(
            root, "unreadable_h5", path, f"parquet truncated or unreadable ({error})"
        ) from error
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise EpisodeError(root, "missing_key", path, f"missing column {missing[0]!r}")
    return table


def _column(table, key: str) -> np.ndarray:
    values = table.column(key).to_pylist()
    return np.asarray([np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values], dtype=np.float64)


def _episodes_v2(root: pathlib.Path, info: dict) -> list[dict]:
    path = root / "meta" / "episodes.jsonl"
    if not path.is_file():
        raise EpisodeError(root, "missing_metadata", path, "file does not exist")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    chunks_size = int(info.get("chunks_size", 1000))
    for row in rows:
        row["_data"] = info["data_path"].format(
            episode_chunk=row["episode_index"] // chunks_size, episode_index=row["episode_index"]
        )
        row["_videos"] = {
            key: (
                info["video_path"].format(
                    episode_chunk=row["episode_index"] // chunks_size,
                    episode_index=row["episode_index"],
                    video_key=key,
                ),
                0.0,
            )
            for key in _video_keys(info)
        }
    return rows


def _episodes_v3(root: pathlib.Path, info: dict) -> list[dict]:
    import pyarrow.parquet as pq

    files = sorted((root / "meta" / "episodes").rglob("*.parquet"))
    if not files:
        raise EpisodeError(
            root, "missing_metadata", root / "meta" / "episodes", "no episode metadata parquet files"
        )
    rows = []
    for path in files:
        rows.extend(pq.read_table(path).to_pylist())
    for row in rows:
        row["_data"] = info["data_path"].format(
            chunk_index=row["data/chunk_index"], file_index=row["data/file_index"]
        )
        row["_videos"] = {
            key: (
                info["video_path"].format(
                    video_key=key,
                    chunk_index=row[f"videos/{key}/chunk_index"],
                    file_index=row[f"videos/{key}/file_index"],
                ),
                float(row[f"videos/{key}/from_timestamp"]),
            )
            for key in _video_keys(info)
        }
    return rows


def _video_keys(info: dict) -> list[str]:
    return [key for key, feature in info["features"].items() if feature.get("dtype") == "video"]


def read_lerobot_dataset(
    root: str | os.PathLike, state_keys: Sequence[str] | None = None
) -> list[LeRobotEpisode]:
    """Every episode of a LeRobotDataset folder (v2.x or v3.0), with states mapped to the DROID convention."""
    root = pathlib.Path(root)
    info = _read_info(root)
    version = str(info["codebase_version"]).lstrip("v")
    keys = _state_keys(info, root, state_keys)
    rows = _episodes_v3(root, info) if version.startswith("3") else _episodes_v2(root, info)
    fps = float(info["fps"])
    tables: dict[str, tuple] = {}
    episodes = []
    for row in sorted(rows, key=lambda r: r["episode_index"]):
        index = int(row["episode_index"])
        if row["_data"] not in tables:
            table = _read_parquet(root / row["_data"], root, [*keys, "episode_index", "frame_index"])
            episode_column = np.asarray(table.column("episode_index").to_pylist())
            tables[row["_data"]] = (table, episode_column)
        table, episode_column = tables[row["_data"]]
        rows_of_episode = np.flatnonzero(episode_column == index)
        part = table.take(rows_of_episode)
        order = np.argsort(np.asarray(part.column("frame_index").to_pylist()), kind="stable")
        states = np.concatenate([_column(part, key) for key in keys], axis=1)[order]
        data_path = root / row["_data"]
        if states.shape[1] != 7:
            raise EpisodeError(
                root,
                "missing_key",
                data_path,
                f"state features {keys} give {states.shape[1]} values, expected 7",
            )
        if len(states) != int(row["length"]):
            raise EpisodeError(
                root,
                "length_mismatch",
                data_path,
                f"episode {index}: metadata says {row['length']} frames, parquet has {len(states)} rows",
            )
        if not np.isfinite(states).all():
            raise EpisodeError(
                root, "nonfinite_state", data_path, f"episode {index}: states contain NaN or Inf"
            )
        videos = {key: (root / rel, round(start * fps)) for key, (rel, start) in row["_videos"].items()}
        tasks = row.get("tasks")
        episodes.append(
            LeRobotEpisode(
                path=root,
                states=states,
                joint_positions=None,
                metadata={
                    "episode_index": index,
                    "tasks": list(tasks) if tasks is not None else [],
                    "lerobot": info,
                },
                metadata_path=root / "meta" / "info.json",
                cameras=list(videos),
                roles={},
                index=index,
                videos=videos,
                dataset_fps=fps,
            )
        )
    return episodes
