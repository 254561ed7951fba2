"""Read LeRobotDataset v2.x and v3.0 folders (parquet + MP4 or embedded images + meta/) as droid_data Episodes.

Layouts (https://huggingface.co/docs/lerobot/lerobot-dataset-v3, porting guide for v2 -> v3):

- v2.x: one parquet and one MP4 per episode, ``meta/episodes.jsonl`` ({"episode_index", "length", ...});
  ``info.json`` templates ``data_path`` / ``video_path`` use ``episode_chunk`` (= index // chunks_size),
  ``episode_index`` and ``video_key``.
- v3.0: many episodes per parquet / MP4; ``meta/episodes/chunk-*/file-*.parquet`` rows give ``episode_index``,
  ``length``, ``data/chunk_index``, ``data/file_index`` and per video camera ``videos/<key>/chunk_index``,
  ``videos/<key>/file_index``, ``videos/<key>/from_timestamp`` (where the episode starts in the shared MP4).

Cameras are the features with ``dtype: "video"`` (frames in MP4 files) or ``dtype: "image"`` (each frame's PNG
or JPEG bytes inside the data parquet, in the Hugging Face ``datasets`` Image column ``{bytes, path}``, as
LeRobot writes when videos are off); ``load_frames`` accepts the full key ("observation.images.wrist") or its
last part ("wrist").

States map to the DROID convention ``[x, y, z, rx, ry, rz, gripper]`` (extrinsic Euler 'xyz'). By default:
``observation.state.cartesian_position`` + ``observation.state.gripper_position`` when present (DROID's LeRobot
port), otherwise a 7-D ``observation.state`` taken to be in that convention already. Pass ``state_keys`` (features
concatenated in order, 7 values in total) for anything else. Actions are recomputed from states with
``pose_diffs``, exactly as for DROID raw; the dataset's own ``action`` column is not used.

Bad data never raises a raw pyarrow / JSON / Pillow error: `scan_lerobot_dataset` returns every readable episode
and an EpisodeError (kind, file, reason) for each problem, which `read_lerobot_dataset` raises.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import itertools
import json
import os
import pathlib
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from droid_data.episode import Episode, EpisodeError

__all__ = [
    "ImageFrames",
    "LeRobotEpisode",
    "is_lerobot_dataset",
    "read_lerobot_dataset",
    "scan_lerobot_dataset",
]

DROID_PORT_STATE_KEYS = ("observation.state.cartesian_position", "observation.state.gripper_position")
CAMERA_DTYPES = ("video", "image")
# What pyarrow raises for a truncated, empty or garbled parquet (ArrowInvalid is also a ValueError).
PARQUET_ERRORS = (OSError, ValueError, pa.ArrowException)
# What Pillow raises for truncated or garbled image bytes (broken PNG chunks raise SyntaxError).
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def is_lerobot_dataset(path: str | os.PathLike) -> bool:
    return (pathlib.Path(path) / "meta" / "info.json").is_file()


def _episode_name(root: pathlib.Path, index: int) -> str:
    return f"{root}#episode_{index:06d}"


@dataclasses.dataclass(frozen=True)
class ImageFrames:
    """Where an image-stored camera's frames live: rows of a data parquet, in frame order."""

    path: pathlib.Path
    rows: np.ndarray  # int64 [T]: row of `path` holding frame t of the episode


@dataclasses.dataclass
class LeRobotEpisode(Episode):
    """An episode of a LeRobot dataset; same interface as a DROID Episode."""

    index: int = 0
    # camera key -> (MP4 path, index of this episode's first frame in that file)
    videos: dict[str, tuple[pathlib.Path, int]] = dataclasses.field(default_factory=dict)
    # camera key -> its frames inside the data parquet
    images: dict[str, ImageFrames] = dataclasses.field(default_factory=dict)
    dataset_fps: float = 30.0

    @property
    def name(self) -> str:
        return _episode_name(self.path, self.index)

    @property
    def fps(self) -> float:
        return self.dataset_fps

    def serial(self, camera: str) -> str:
        camera = str(camera)
        if camera in self.cameras:
            return camera
        matches = [key for key in self.cameras if key.split(".")[-1] == camera]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(f"{self.path}: unknown camera {camera!r}; expected one of {sorted(self.cameras)}")

    def stores_images(self, camera: str) -> bool:
        """True if the camera's frames are images inside the parquet rather than an MP4."""
        return self.serial(camera) in self.images

    def frames_path(self, camera: str) -> pathlib.Path:
        key = self.serial(camera)
        return self.images[key].path if key in self.images else self.videos[key][0]

    def video_path(self, camera: str) -> pathlib.Path:
        key = self.serial(camera)
        if key in self.images:
            raise KeyError(
                f"{self.name}: camera {key!r} is stored as images in {self.images[key].path}, not as a video"
            )
        return self.videos[key][0]

    def video_frame_range(self, camera: str) -> tuple[int, int | None]:
        return self.videos[self.serial(camera)][1], self.num_frames

    def load_frames(self, camera: str, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        key = self.serial(camera)
        if key not in self.images:
            return super().load_frames(camera, indices)
        frames = self.images[key]
        indices = self._checked_indices(indices, frames.path)
        cells = _read_image_cells(self.name, frames.path, key, frames.rows[indices])
        decoded = [
            _decode_image(self.name, frames.path, key, int(i), cell) for i, cell in zip(indices, cells)
        ]
        sizes = {image.shape for image in decoded}
        if len(sizes) > 1:
            raise EpisodeError(
                self.name,
                "undecodable_image",
                frames.path,
                f"camera {key!r}: frames differ in size {sorted(sizes)}",
            )
        return np.stack(decoded)

    def iter_frames(self, camera: str, batch_size: int = 32) -> Iterator[np.ndarray]:
        if not self.stores_images(camera):
            yield from super().iter_frames(camera, batch_size)
            return
        for start in range(0, self.num_frames, batch_size):
            yield self.load_frames(camera, np.arange(start, min(start + batch_size, self.num_frames)))

    def extrinsics(self, camera: str) -> np.ndarray:
        raise KeyError(f"{self.path}: LeRobot datasets carry no camera extrinsics (camera {camera!r})")


def _read_image_cells(name: str, path: pathlib.Path, key: str, rows: np.ndarray) -> list:
    """The parquet cells of column `key` at `rows`, reading only the row groups that hold them."""
    try:
        file = pq.ParquetFile(path)
        sizes = np.array([file.metadata.row_group(g).num_rows for g in range(file.metadata.num_row_groups)])
        starts = np.concatenate([[0], np.cumsum(sizes)])
        if rows.size and rows.max() >= starts[-1]:
            raise ValueError(
                f"holds {starts[-1]} rows, the episode needs row {rows.max()} (changed since read?)"
            )
        group_of_row = np.searchsorted(starts, rows, side="right") - 1
        groups = np.unique(group_of_row)
        column = file.read_row_groups(groups.tolist(), columns=[key]).column(key)
    except PARQUET_ERRORS as error:
        raise EpisodeError(
            name,
            "unreadable_parquet",
            path,
            f"column {key!r} cannot be read ({type(error).__name__}: {error})",
        ) from error
    # position of each row within the concatenation of the row groups read
    first_of_group = np.concatenate([[0], np.cumsum(sizes[groups])])[np.searchsorted(groups, group_of_row)]
    return column.take(pa.array(first_of_group + rows - starts[group_of_row])).to_pylist()


def _decode_image(name: str, path: pathlib.Path, key: str, frame: int, cell) -> np.ndarray:
    """uint8 [H, W, 3] RGB from a Hugging Face Image cell ({"bytes", "path"}) or raw bytes."""
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    where = f"camera {key!r} frame {frame}"
    if not data:
        stored_path = cell.get("path") if isinstance(cell, dict) else None
        raise EpisodeError(
            name, "undecodable_image", path, f"{where}: no image bytes stored (path field: {stored_path!r})"
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except IMAGE_ERRORS as error:
        raise EpisodeError(
            name, "undecodable_image", path, f"{where}: cannot be decoded ({type(error).__name__}: {error})"
        ) from error


# ---- metadata -----------------------------------------------------------------------------------------------


def _read_info(root: pathlib.Path) -> dict:
    path = root / "meta" / "info.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise EpisodeError(root, "missing_metadata", path, f"not readable as JSON ({error})") from error
    if not isinstance(info, dict):
        raise EpisodeError(
            root, "missing_metadata", path, f"expected a JSON object, got {type(info).__name__}"
        )
    for key in ("codebase_version", "fps", "features", "data_path"):
        if key not in info:
            raise EpisodeError(root, "missing_key", path, f"missing key {key!r}")
    features = info["features"]
    if not isinstance(features, dict) or not all(isinstance(f, dict) for f in features.values()):
        raise EpisodeError(root, "missing_key", path, "'features': expected an object of feature objects")
    if not str(info["codebase_version"]).lstrip("v").startswith(("2", "3")):
        raise EpisodeError(
            root,
            "missing_metadata",
            path,
            f"codebase_version {info['codebase_version']!r}: expected v2.x or v3.0",
        )
    fps = info["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < float("inf"):
        raise EpisodeError(root, "missing_key", path, f"'fps': expected a positive number, got {fps!r}")
    chunks_size = info.get("chunks_size", 1000)
    if isinstance(chunks_size, bool) or not isinstance(chunks_size, int) or chunks_size < 1:
        raise EpisodeError(
            root, "missing_key", path, f"'chunks_size': expected an integer >= 1, got {chunks_size!r}"
        )
    # checked once here, so formatting a path per episode cannot fail
    location = {"chunk_index", "file_index"} if _is_v3(info) else {"episode_chunk", "episode_index"}
    _check_template(root, info, "data_path", location)
    if _video_keys(info):  # image-only datasets may have "video_path": null
        if "video_path" not in info:
            raise EpisodeError(
                root, "missing_key", path, "missing key 'video_path' (the dataset has video features)"
            )
        _check_template(root, info, "video_path", location | {"video_key"})
    return info


def _check_template(root: pathlib.Path, info: dict, key: str, fields: set[str]) -> None:
    template = info[key]
    try:
        if not isinstance(template, str):
            raise TypeError(f"expected a string, got {type(template).__name__}")
        template.format(**{field: 0 for field in fields})
    except (KeyError, IndexError, ValueError, TypeError) as error:
        raise EpisodeError(
            root,
            "missing_key",
            root / "meta" / "info.json",
            f"{key!r}: expected a path template with fields {sorted(fields)}, got {template!r} ({error!r})",
        ) from error


def _is_v3(info: dict) -> bool:
    return str(info["codebase_version"]).lstrip("v").startswith("3")


def _video_keys(info: dict) -> list[str]:
    return [key for key, feature in info["features"].items() if feature.get("dtype") == "video"]


def _camera_keys(info: dict) -> list[str]:
    return [key for key, feature in info["features"].items() if feature.get("dtype") in CAMERA_DTYPES]


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


@dataclasses.dataclass
class _Listing:
    """One episode as the episodes metadata lists it."""

    index: int
    length: int
    data: str  # data parquet, relative to the root
    videos: dict[str, tuple[str, float]]  # camera key -> (MP4 relative to the root, start time in seconds)
    tasks: list
    source: pathlib.Path  # the metadata file listing it


def _integer(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{what}: expected an integer >= 0, got {value!r}")
    return int(value)


def _listing(root: pathlib.Path, info: dict, entry, source: pathlib.Path, where: str) -> _Listing:
    """Normalise one v2 episodes.jsonl line or v3 episodes parquet row; EpisodeError if a field is bad."""
    if not isinstance(entry, dict):
        raise EpisodeError(
            root, "missing_metadata", source, f"{where}: expected an object, got {type(entry).__name__}"
        )
    index = entry.get("episode_index")
    name = _episode_name(root, index) if isinstance(index, int) and index >= 0 else f"{root} ({where})"
    try:
        index = _integer(index, "episode_index")
        length = _integer(entry.get("length"), "length")
        if _is_v3(info):
            location = {
                "chunk_index": _integer(entry.get("data/chunk_index"), "data/chunk_index"),
                "file_index": _integer(entry.get("data/file_index"), "data/file_index"),
            }
            data = info["data_path"].format(**location)
            videos = {}
            for key in _video_keys(info):
                start = entry.get(f"videos/{key}/from_timestamp")
                if (
                    isinstance(start, bool)
                    or not isinstance(start, (int, float))
                    or not 0 <= start < float("inf")
                ):
                    raise ValueError(f"videos/{key}/from_timestamp: expected a time >= 0, got {start!r}")
                video = info["video_path"].format(
                    video_key=key,
                    chunk_index=_integer(entry.get(f"videos/{key}/chunk_index"), f"videos/{key}/chunk_index"),
                    file_index=_integer(entry.get(f"videos/{key}/file_index"), f"videos/{key}/file_index"),
                )
                videos[key] = (video, float(start))
        else:
            location = {"episode_chunk": index // info.get("chunks_size", 1000), "episode_index": index}
            data = info["data_path"].format(**location)
            videos = {
                key: (info["video_path"].format(video_key=key, **location), 0.0) for key in _video_keys(info)
            }
    except (ValueError, TypeError) as error:
        raise EpisodeError(name, "missing_key", source, f"{where}: {error}") from error
    tasks = entry.get("tasks")
    return _Listing(
        index, length, data, videos, list(tasks) if isinstance(tasks, (list, tuple)) else [], source
    )


def _entries_v2(root: pathlib.Path) -> tuple[list[tuple], list[EpisodeError]]:
    """(source file, where, entry) for each line of meta/episodes.jsonl, and a problem per unreadable line."""
    path = root / "meta" / "episodes.jsonl"
    if not path.is_file():
        raise EpisodeError(root, "missing_metadata", path, "file does not exist")
    try:
        lines = path.read_text().splitlines()
    except (OSError, ValueError) as error:
        raise EpisodeError(root, "missing_metadata", path, f"not readable ({error})") from error
    entries, problems = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append((path, f"line {number}", json.loads(line)))
        except ValueError as error:
            problems.append(
                EpisodeError(root, "missing_metadata", path, f"line {number}: not valid JSON ({error})")
            )
    return entries, problems


def _entries_v3(root: pathlib.Path, info: dict) -> tuple[list[tuple], list[EpisodeError]]:
    """(source file, where, entry) for each row of meta/episodes/**/*.parquet, and a problem per bad file."""
    files = sorted((root / "meta" / "episodes").rglob("*.parquet"))
    if not files:
        raise EpisodeError(
            root, "missing_metadata", root / "meta" / "episodes", "no episode metadata parquet files"
        )
    # only the columns used (the files also hold per-episode statistics of every feature)
    wanted = ["episode_index", "length", "tasks", "data/chunk_index", "data/file_index"]
    for key in _video_keys(info):
        wanted += [f"videos/{key}/chunk_index", f"videos/{key}/file_index", f"videos/{key}/from_timestamp"]
    entries, problems = [], []
    for path in files:
        try:
            names = pq.read_schema(path).names
            rows = pq.read_table(path, columns=[c for c in wanted if c in names]).to_pylist()
        except PARQUET_ERRORS as error:
            problems.append(
                EpisodeError(
                    root,
                    "missing_metadata",
                    path,
                    f"truncated or unreadable ({type(error).__name__}: {error})",
                )
            )
            continue
        entries.extend((path, f"row {number}", row) for number, row in enumerate(rows))
    return entries, problems


def _listings(root: pathlib.Path, info: dict) -> tuple[list[_Listing], list[EpisodeError]]:
    """Every episode the metadata lists (sorted by index), and the problems of the metadata itself."""
    entries, problems = _entries_v3(root, info) if _is_v3(info) else _entries_v2(root)
    listings = []
    for source, where, entry in entries:
        try:
            listings.append(_listing(root, info, entry, source, where))
        except EpisodeError as error:
            problems.append(error)
    counts = collections.Counter(listing.index for listing in listings)
    for index in sorted(i for i, n in counts.items() if n > 1):
        sources = sorted({str(listing.source) for listing in listings if listing.index == index})
        problems.append(
            EpisodeError(
                _episode_name(root, index),
                "missing_metadata",
                sources[0],
                f"episode {index} is listed {counts[index]} times (in {', '.join(sources)})",
            )
        )
    listings = sorted((listing for listing in listings if counts[listing.index] == 1), key=lambda x: x.index)
    if not listings and not problems:
        source = root / "meta" / ("episodes" if _is_v3(info) else "episodes.jsonl")
        problems.append(EpisodeError(root, "missing_metadata", source, "lists no episodes"))
    total = info.get("total_episodes")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        problems.append(
            EpisodeError(
                root,
                "missing_key",
                root / "meta" / "info.json",
                f"'total_episodes': expected an integer >= 0, got {total!r}",
            )
        )
    elif total is not None and not problems:
        # Episode indices run 0..total_episodes-1 (LeRobot looks episodes up by index); report a gap once.
        # (Never materialise range(total): the number comes from the file.)
        listed = set(counts)
        extra = sorted(i for i in listed if i >= total)
        missing = total - (len(listed) - len(extra))
        if missing or extra:
            first_missing = list(
                itertools.islice((i for i in itertools.count() if i not in listed), min(missing, 10))
            )
            problems.append(
                EpisodeError(
                    root,
                    "missing_metadata",
                    listings[0].source,
                    f"meta/info.json says total_episodes {total}, so indices 0..{total - 1}; "
                    f"{missing} not listed {first_missing}{' ...' if missing > 10 else ''}, "
                    f"{len(extra)} unexpected {extra[:10]}{' ...' if len(extra) > 10 else ''}",
                )
            )
    return listings, problems


# ---- frame tables -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _DataFile:
    """The state columns of one data parquet (image columns are only checked, and read per request)."""

    table: pa.Table
    episode_index: np.ndarray  # int64 [rows]


def _read_data_file(
    root: pathlib.Path, path: pathlib.Path, keys: list[str], image_keys: list[str]
) -> _DataFile:
    if not path.is_file():
        raise EpisodeError(
            root, "unreadable_parquet", path, "file named by meta/info.json data_path does not exist"
        )
    columns = [*keys, "episode_index", "frame_index"]
    try:
        schema = pq.read_schema(path)
        missing = [c for c in [*columns, *image_keys] if c not in schema.names]
        if missing:
            raise EpisodeError(root, "missing_key", path, f"missing column {missing[0]!r}")
        for key in image_keys:
            if not _is_image_type(schema.field(key).type):
                raise EpisodeError(
                    root,
                    "missing_key",
                    path,
                    f"column {key!r}: expected images (struct<bytes: binary, path: string> or binary), "
                    f"got {schema.field(key).type}",
                )
        table = pq.read_table(path, columns=columns)
        episode_index = _integer_column(root, path, table, "episode_index")
    except PARQUET_ERRORS as error:
        raise EpisodeError(
            root, "unreadable_parquet", path, f"truncated or unreadable ({type(error).__name__}: {error})"
        ) from error
    return _DataFile(table, episode_index)


def _is_image_type(kind: pa.DataType) -> bool:
    """A Hugging Face Image column (struct with binary "bytes"), or plain binary cells."""
    if pa.types.is_struct(kind):
        index = kind.get_field_index("bytes")
        return index >= 0 and _is_image_type(kind.field(index).type)
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind)


def _integer_column(episode: str | os.PathLike, path: pathlib.Path, table: pa.Table, key: str) -> np.ndarray:
    column = table.column(key)
    if not pa.types.is_integer(column.type) or column.null_count:
        raise EpisodeError(
            episode,
            "missing_key",
            path,
            f"column {key!r}: expected integers without nulls, got {column.type} with {column.null_count} null(s)",
        )
    return column.to_numpy().astype(np.int64)


def _float_column(name: str, path: pathlib.Path, table: pa.Table, key: str) -> np.ndarray:
    """float64 [rows, D] from a numeric scalar or fixed-length list column."""
    column = table.column(key)
    if column.null_count:
        raise EpisodeError(
            name, "missing_key", path, f"column {key!r}: {column.null_count} row(s) hold no value"
        )
    try:
        rows = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in column.to_pylist()]
        return np.stack(rows) if rows else np.zeros((0, 1))
    except (ValueError, TypeError) as error:
        raise EpisodeError(
            name, "missing_key", path, f"column {key!r}: expected numbers of one length per row ({error})"
        ) from error


def _read_episode(
    root: pathlib.Path, info: dict, keys: list[str], listing: _Listing, data: _DataFile
) -> LeRobotEpisode:
    name = _episode_name(root, listing.index)
    path = root / listing.data
    rows = np.flatnonzero(data.episode_index == listing.index)
    part = data.table.take(pa.array(rows))
    frame_index = _integer_column(name, path, part, "frame_index")
    order = np.argsort(frame_index, kind="stable")
    if len(rows) != listing.length:
        raise EpisodeError(
            name,
            "length_mismatch",
            path,
            f"episode {listing.index}: metadata says {listing.length} frames, parquet has {len(rows)} rows",
        )
    if not np.array_equal(frame_index[order], np.arange(len(rows))):
        wrong = int(np.flatnonzero(frame_index[order] != np.arange(len(rows)))[0])
        raise EpisodeError(
            name,
            "length_mismatch",
            path,
            f"episode {listing.index}: frame_index should run 0..{len(rows) - 1} once each; "
            f"sorted, position {wrong} holds {int(frame_index[order][wrong])}",
        )
    states = np.concatenate([_float_column(name, path, part, key) for key in keys], axis=1)[order]
    if states.shape[1] != 7:
        raise EpisodeError(
            name, "missing_key", path, f"state features {keys} give {states.shape[1]} values, expected 7"
        )
    bad = ~np.isfinite(states)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise EpisodeError(
            name,
            "nonfinite_state",
            path,
            f"episode {listing.index}: {int(bad.any(axis=1).sum())} state rows contain NaN/Inf "
            f"(first: frame {row} = {states[row].tolist()})",
        )
    fps = float(info["fps"])
    videos = {key: (root / rel, round(start * fps)) for key, (rel, start) in listing.videos.items()}
    image_keys = [key for key in _camera_keys(info) if key not in videos]
    return LeRobotEpisode(
        path=root,
        states=states,
        joint_positions=None,
        metadata={"episode_index": listing.index, "tasks": listing.tasks, "lerobot": info},
        metadata_path=root / "meta" / "info.json",
        cameras=_camera_keys(info),
        roles={},
        index=listing.index,
        videos=videos,
        images={key: ImageFrames(path, rows[order]) for key in image_keys},
        dataset_fps=fps,
    )


def scan_lerobot_dataset(
    root: str | os.PathLike, state_keys: Sequence[str] | None = None
) -> tuple[list[LeRobotEpisode], list[EpisodeError]]:
    """(every readable episode, sorted by index; an EpisodeError for each problem found), never raising on bad
    data. Problems of one episode name it (``<root>#episode_000042``); problems of the whole dataset name the
    root. Videos and images are not decoded here (see droid_data.validate)."""
    root = pathlib.Path(root)
    try:
        info = _read_info(root)
        keys = _state_keys(info, root, state_keys)
        listings, problems = _listings(root, info)
    except EpisodeError as error:
        return [], [error]
    image_keys = [key for key in _camera_keys(info) if info["features"][key]["dtype"] == "image"]
    files: dict[str, _DataFile | EpisodeError] = {}
    episodes = []
    for listing in listings:
        if listing.data not in files:
            try:
                files[listing.data] = _read_data_file(root, root / listing.data, keys, image_keys)
            except EpisodeError as error:
                files[listing.data] = error
        data = files[listing.data]
        try:
            if isinstance(data, EpisodeError):  # the file's problem, reported for each episode it holds
                raise EpisodeError(_episode_name(root, listing.index), data.kind, data.file, data.reason)
            episodes.append(_read_episode(root, info, keys, listing, data))
        except EpisodeError as error:
            problems.append(error)
    return episodes, problems


def read_lerobot_dataset(
    root: str | os.PathLike, state_keys: Sequence[str] | None = None
) -> list[LeRobotEpisode]:
    """Every episode of a LeRobotDataset folder (v2.x or v3.0), with states mapped to the DROID convention.

    Raises the first problem as EpisodeError (kind, file, reason); `scan_lerobot_dataset` returns them all.
    """
    episodes, problems = scan_lerobot_dataset(root, state_keys)
    if problems:
        raise problems[0]
    return episodes
