"""Read one DROID raw-format episode and find episodes under a folder or in an index file.

Layout (the public DROID raw release, and what `droid_data.write_episode` writes)::

    <episode>/trajectory.h5              observation/robot_state/cartesian_position [T, 6]  xyz + Euler 'xyz'
                                         observation/robot_state/gripper_position   [T]     0 open .. 1 closed
                                         observation/robot_state/joint_positions    [T, 7]  (optional)
                                         observation/camera_extrinsics/<serial>_left [T, 6] (optional)
    <episode>/metadata_<uuid>.json       <role>_cam_serial and <role>_mp4_path for role in wrist / ext1 / ext2,
                                         left_mp4_path / right_mp4_path (exterior cameras at the robot's
                                         left (+y) and right)
    <episode>/recordings/MP4/<serial>.mp4   frame i <-> h5 row i, 15 fps

The metadata's MP4 paths are relative to the lab folder in DROID; only the part after ``recordings/MP4/``
is used, so the episode folder can live anywhere.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os
import pathlib
from collections.abc import Iterator, Sequence

import h5py
import numpy as np

from droid_data.cli import one_line
from droid_data.conventions import pose_diffs
from droid_data.video import VIDEO_ERRORS, decode_frames, iter_frames, probe_video

__all__ = [
    "CAMERA_ROLES",
    "CORRUPTION_KINDS",
    "STATE_KEYS",
    "Episode",
    "EpisodeError",
    "find_episodes",
    "read_episode",
    "read_metadata",
    "read_trajectory_h5",
]

DEFAULT_FPS = 15.0
H5_NAME = "trajectory.h5"
MP4_DIR = pathlib.Path("recordings") / "MP4"
CARTESIAN_KEY = "observation/robot_state/cartesian_position"
GRIPPER_KEY = "observation/robot_state/gripper_position"
JOINTS_KEY = "observation/robot_state/joint_positions"
EXTRINSICS_GROUP = "observation/camera_extrinsics"
STATE_KEYS = (CARTESIAN_KEY, GRIPPER_KEY)
CAMERA_ROLES = ("ext1", "ext2", "wrist")
# Keys of DROID's metadata that name an MP4; "left"/"right" alias the exterior cameras by position.
MP4_PATH_KEYS = ("ext1_mp4_path", "ext2_mp4_path", "wrist_mp4_path", "left_mp4_path", "right_mp4_path")

# The corruption kinds the validator reports (and the `kind` of every EpisodeError), for DROID raw episodes and
# LeRobot datasets alike.
CORRUPTION_KINDS = {
    "unreadable_h5": "trajectory.h5 is truncated, unreadable or absent",
    "unreadable_parquet": "a LeRobot data parquet is truncated, unreadable or absent",
    "missing_mp4": "an MP4 named by the metadata is missing",
    "truncated_mp4": "an MP4 is truncated or cannot be decoded",
    "undecodable_image": "a LeRobot image-stored frame (PNG/JPEG bytes in the parquet) is empty or cannot be decoded",
    "missing_metadata": "episode metadata is absent or unreadable (DROID metadata_*.json; LeRobot meta/info.json, "
    "meta/episodes.jsonl, meta/episodes/*.parquet)",
    "missing_key": "a required h5 dataset, metadata key or parquet column is missing or has the wrong shape",
    "nonfinite_state": "states contain NaN or Inf",
    "length_mismatch": "frame counts disagree (video frames, state rows, metadata lengths, frame_index)",
}


class EpisodeError(Exception):
    """A bad episode: `kind` is one of CORRUPTION_KINDS, `file` the offending file, `reason` the details."""

    def __init__(self, episode: str | os.PathLike, kind: str, file: str | os.PathLike, reason: str):
        if kind not in CORRUPTION_KINDS:
            raise ValueError(f"unknown corruption kind {kind!r}; expected one of {sorted(CORRUPTION_KINDS)}")
        self.episode, self.kind, self.file, self.reason = str(episode), kind, str(file), one_line(reason)
        super().__init__(f"{kind}: {file}: {self.reason}")


def read_metadata(folder: pathlib.Path) -> tuple[pathlib.Path, dict]:
    """(metadata file, its JSON object) of an episode folder; EpisodeError "missing_metadata" if absent/bad."""
    candidates = sorted(folder.glob("metadata_*.json")) or sorted(folder.glob("*.json"))
    if not candidates:
        raise EpisodeError(
            folder, "missing_metadata", folder / "metadata_<uuid>.json", "no metadata JSON file found"
        )
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise EpisodeError(
            folder, "missing_metadata", candidates[0], f"expected one metadata JSON, found {names}"
        )
    path = candidates[0]
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise EpisodeError(folder, "missing_metadata", path, f"not readable as JSON ({error})") from error
    if not isinstance(metadata, dict):
        raise EpisodeError(
            folder, "missing_metadata", path, f"expected a JSON object, got {type(metadata).__name__}"
        )
    return path, metadata


def _serial_from_mp4_path(value: str) -> str:
    # DROID stores e.g. "AUTOLab/success/2023-07-07/<time>/recordings/MP4/23897859.mp4".
    return pathlib.PurePosixPath(str(value).replace("\\", "/")).stem


def _camera_serials(metadata: dict, folder: pathlib.Path) -> tuple[list[str], dict[str, str]]:
    """(camera serials in a stable order, role -> serial) from the metadata, else from the MP4 folder."""
    roles: dict[str, str] = {}
    for role in CAMERA_ROLES:
        if metadata.get(f"{role}_cam_serial") not in (None, ""):
            roles[role] = str(metadata[f"{role}_cam_serial"])
    for key in MP4_PATH_KEYS:
        if metadata.get(key):
            roles.setdefault(key[: -len("_mp4_path")], _serial_from_mp4_path(metadata[key]))
    serials = list(dict.fromkeys(roles[r] for r in ("ext1", "ext2", "wrist", "left", "right") if r in roles))
    if not serials:  # metadata without camera keys: every non-stereo MP4 is a camera
        serials = sorted(p.stem for p in (folder / MP4_DIR).glob("*.mp4") if not p.stem.endswith("-stereo"))
    return serials, roles


def read_trajectory_h5(folder: pathlib.Path) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """(states [T, 7], joint positions [T, 7] or None, extrinsics dataset names) of an episode folder.

    Raises EpisodeError of kind unreadable_h5, missing_key or nonfinite_state.
    """
    path = folder / H5_NAME
    if not path.is_file():
        raise EpisodeError(folder, "unreadable_h5", path, "file does not exist")
    try:
        with h5py.File(path, "r") as h5:
            missing = [key for key in STATE_KEYS if key not in h5]
            if missing:
                raise EpisodeError(folder, "missing_key", path, f"missing dataset {missing[0]!r}")
            cartesian = np.asarray(h5[CARTESIAN_KEY][()], dtype=np.float64)
            gripper = np.asarray(h5[GRIPPER_KEY][()], dtype=np.float64)
            joints = np.asarray(h5[JOINTS_KEY][()], dtype=np.float64) if JOINTS_KEY in h5 else None
            extrinsic_names = sorted(h5[EXTRINSICS_GROUP].keys()) if EXTRINSICS_GROUP in h5 else []
    except EpisodeError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError) as error:
        raise EpisodeError(folder, "unreadable_h5", path, f"truncated or unreadable ({error})") from error

    if cartesian.ndim != 2 or cartesian.shape[1] != 6:
        raise EpisodeError(
            folder, "missing_key", path, f"{CARTESIAN_KEY}: expected shape [T, 6], got {cartesian.shape}"
        )
    length = cartesian.shape[0]
    if gripper.ndim == 2 and gripper.shape[1] == 1:
        gripper = gripper[:, 0]
    if gripper.shape != (length,):
        raise EpisodeError(
            folder, "missing_key", path, f"{GRIPPER_KEY}: expected shape [{length}], got {gripper.shape}"
        )
    if joints is not None and joints.shape != (length, 7):
        raise EpisodeError(
            folder, "missing_key", path, f"{JOINTS_KEY}: expected shape [{length}, 7], got {joints.shape}"
        )
    states = np.concatenate([cartesian, gripper[:, None]], axis=1)
    bad = ~np.isfinite(states)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        field = CARTESIAN_KEY if column < 6 else GRIPPER_KEY
        raise EpisodeError(
            folder,
            "nonfinite_state",
            path,
            f"{int(bad.any(axis=1).sum())} state rows contain NaN/Inf (first: {field} row {row} = {states[row, column]})",
        )
    return states, joints, extrinsic_names


@dataclasses.dataclass
class Episode:
    """One episode. States and joints are loaded eagerly (small); frames are decoded on demand."""

    path: pathlib.Path
    states: np.ndarray  # float64 [T, 7]: xyz, Euler 'xyz', gripper
    joint_positions: np.ndarray | None  # float64 [T, 7] or None
    metadata: dict
    metadata_path: pathlib.Path
    cameras: list[str]  # camera serials; load_frames also accepts roles ("ext1", "left", "wrist", ...)
    roles: dict[str, str]  # role -> serial
    _extrinsic_names: list[str] = dataclasses.field(repr=False, default_factory=list)

    @property
    def name(self) -> str:
        """A unique, human-readable id (the folder for DROID)."""
        return str(self.path)

    @property
    def num_frames(self) -> int:
        return int(self.states.shape[0])

    @functools.cached_property
    def actions(self) -> np.ndarray:
        """float64 [T-1, 7]: pose_diffs of consecutive states (action t moves state t to state t+1)."""
        return pose_diffs(self.states)

    @functools.cached_property
    def fps(self) -> float:
        """Frame rate: metadata "fps" if present, else the first camera's video rate, else DROID's 15 Hz."""
        if self.metadata.get("fps"):
            return float(self.metadata["fps"])
        for camera in self.cameras:
            path = self.video_path(camera)
            if path.is_file():
                rate = probe_video(path, count_packets=False).fps
                if np.isfinite(rate) and rate > 0:
                    return rate
        return DEFAULT_FPS

    def serial(self, camera: str) -> str:
        """Camera serial for a serial, a role ("ext1", "ext2", "wrist", "left", "right") or a "*_mp4_path" key."""
        camera = str(camera)
        if camera in self.cameras:
            return camera
        role = camera.removesuffix("_mp4_path")
        if role in self.roles:
            return self.roles[role]
        raise KeyError(
            f"{self.path}: unknown camera {camera!r}; expected one of serials {self.cameras} "
            f"or roles {sorted(self.roles)}"
        )

    def video_path(self, camera: str) -> pathlib.Path:
        return self.path / MP4_DIR / f"{self.serial(camera)}.mp4"

    def frames_path(self, camera: str) -> pathlib.Path:
        """The file holding the camera's frames (its MP4; LeRobot image-stored cameras: the data parquet)."""
        return self.video_path(camera)

    def _checked_video_path(self, camera: str) -> pathlib.Path:
        path = self.video_path(camera)
        if not path.is_file():
            raise EpisodeError(self.name, "missing_mp4", path, f"video of camera {camera!r} does not exist")
        return path

    def video_frame_range(self, camera: str) -> tuple[int, int | None]:
        """(index of this episode's frame 0 in the video file, its frame count or None = to the file's end).

        DROID files hold exactly one episode; formats that pack episodes in one file override this.
        """
        return 0, None

    def load_frames(self, camera: str, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """uint8 [N, H, W, 3] RGB frames at native resolution (all if `indices` is None); frame i goes with
        state row i. A video that cannot be decoded raises EpisodeError "truncated_mp4" naming the file."""
        path = self._checked_video_path(camera)
        offset = self.video_frame_range(camera)[0]
        indices = self._checked_indices(indices, path)
        try:
            return decode_frames(path, indices + offset)
        except VIDEO_ERRORS as error:
            raise self._undecodable(camera, path, error) from error

    def iter_frames(self, camera: str, batch_size: int = 32) -> Iterator[np.ndarray]:
        """Every frame of the episode's video in order, as uint8 batches [<=batch_size, H, W, 3].

        Bounded memory. A DROID video is read to its end, so a caller can compare the count with num_frames.
        """
        path = self._checked_video_path(camera)
        offset, count = self.video_frame_range(camera)
        try:
            yield from iter_frames(path, offset, count, batch_size)
        except VIDEO_ERRORS as error:
            raise self._undecodable(camera, path, error) from error

    def _checked_indices(self, indices, path: pathlib.Path) -> np.ndarray:
        """`indices` (None = every frame) as int64 [N], each a valid frame of this episode."""
        if indices is None:
            indices = np.arange(self.num_frames)
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_frames):
            raise IndexError(
                f"{path}: frame indices must be in [0, {self.num_frames}), got "
                f"[{int(indices.min())}, {int(indices.max())}]"
            )
        return indices

    def _undecodable(self, camera: str, path: pathlib.Path, error: Exception) -> EpisodeError:
        return EpisodeError(
            self.name,
            "truncated_mp4",
            path,
            f"camera {camera!r}: frames cannot be decoded ({type(error).__name__}: {error})",
        )

    def extrinsics(self, camera: str) -> np.ndarray:
        """float64 [T, 6] camera pose (xyz + Euler 'xyz', left lens) in the robot base frame.

        From ``observation/camera_extrinsics/<serial>_left``; falls back to the metadata's constant
        ``<role>_cam_extrinsics`` repeated over time.
        """
        serial = self.serial(camera)
        name = f"{serial}_left"
        h5_path = self.path / H5_NAME
        if name in self._extrinsic_names:
            with h5py.File(h5_path, "r") as h5:
                values = np.asarray(h5[f"{EXTRINSICS_GROUP}/{name}"][()], dtype=np.float64)
            if values.shape != (self.num_frames, 6):
                raise EpisodeError(
                    self.path,
                    "missing_key",
                    h5_path,
                    f"{EXTRINSICS_GROUP}/{name}: expected shape [{self.num_frames}, 6], got {values.shape}",
                )
            return values
        for role, role_serial in self.roles.items():
            constant = self.metadata.get(f"{role}_cam_extrinsics")
            if role_serial == serial and constant is not None:
                return np.tile(np.asarray(constant, dtype=np.float64).reshape(1, 6), (self.num_frames, 1))
        raise KeyError(
            f"{h5_path}: no extrinsics for camera {serial!r}: expected dataset {EXTRINSICS_GROUP}/{name} "
            f"or a metadata '<role>_cam_extrinsics' entry"
        )


def read_episode(path: str | os.PathLike) -> Episode:
    """Read an episode folder (or its trajectory.h5 / metadata JSON path). Raises EpisodeError if it is bad.

    Only the h5 and metadata are read here; videos are opened by `Episode.load_frames`. Use
    `droid_data.validate.validate_episode` for the full check including the videos.
    """
    folder = pathlib.Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: episode folder does not exist")
    metadata_path, metadata = read_metadata(folder)
    states, joints, extrinsic_names = read_trajectory_h5(folder)
    cameras, roles = _camera_serials(metadata, folder)
    return Episode(
        path=folder,
        states=states,
        joint_positions=joints,
        metadata=metadata,
        metadata_path=metadata_path,
        cameras=cameras,
        roles=roles,
        _extrinsic_names=extrinsic_names,
    )


def find_episodes(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[pathlib.Path]:
    """Episode folders from a root folder (every non-hidden folder holding a trajectory.h5, recursively), an
    index file (CSV or text: first whitespace/comma separated column = episode folder or trajectory.h5 path,
    one per line, relative paths resolved against the file's folder, lines starting with '#' ignored), or a
    list of folders. Sorted for a root folder, in file order for an index file.
    """
    if not isinstance(source, (str, os.PathLike)):
        return [_episode_folder(pathlib.Path(p)) for p in source]
    source = pathlib.Path(source)
    if source.is_dir():
        if (source / H5_NAME).is_file():
            return [source]
        # Hidden folders are skipped: write_episode stages episodes in ".<name>.tmp-*" before renaming them.
        found = (p.parent for p in source.rglob(H5_NAME))
        return sorted(
            f for f in found if not any(part.startswith(".") for part in f.relative_to(source).parts)
        )
    if source.is_file():
        return _read_index(source)
    raise FileNotFoundError(
        f"{source}: expected an episode root folder or an index file (CSV/text), found nothing"
    )


def _episode_folder(path: pathlib.Path) -> pathlib.Path:
    return path.parent if path.name == H5_NAME else path


def _read_index(index: pathlib.Path) -> list[pathlib.Path]:
    try:
        lines = index.read_text().splitlines()
    except (OSError, ValueError) as error:  # e.g. a binary file given as the root
        raise ValueError(
            f"{index}: expected an episode root folder or a text index file ({error})"
        ) from error
    folders = []
    for line_number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        # The official index is space-separated; CSVs from other tools use commas.
        first = next(csv.reader([line], delimiter="," if "," in line else " ", skipinitialspace=True))[0]
        if line_number == 1 and first.lower() in ("path", "episode", "episode_path", "trajectory"):
            continue  # header row
        path = pathlib.Path(first)
        if not path.is_absolute():
            path = index.parent / path
        folders.append(_episode_folder(path))
    if not folders:
        raise ValueError(f"{index}: index file lists no episode folders")
    # Some missing folders are reported one by one later (the validator lists them); none at all means the file is
    # not an index of this machine's episodes (or not an index), so the error names the file, not its first word.
    if not any(folder.is_dir() for folder in folders):
        raise FileNotFoundError(f"{index}: none of the {len(folders)} episode folders this index file lists exists "
                                f"(first: {folders[0]})")
    return folders
