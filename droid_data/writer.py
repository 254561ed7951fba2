"""Write one episode in the DROID raw layout (h5 + metadata JSON + one MP4 per camera), atomically."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import shutil
import tempfile
import uuid as uuid_lib

import h5py
import numpy as np

from droid_data.episode import (
    CAMERA_ROLES,
    CARTESIAN_KEY,
    EXTRINSICS_GROUP,
    GRIPPER_KEY,
    H5_NAME,
    JOINTS_KEY,
    MP4_DIR,
)
from droid_data.video import encode_video

__all__ = ["write_episode"]

# DROID's observation/camera_type/<serial> values: 0 hand (wrist) camera, 1 varied (exterior) camera.
_CAMERA_TYPE = {"wrist": 0, "ext1": 1, "ext2": 1}


def _as_array(name: str, value, shape: tuple) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"write_episode: {name} expected shape {list(shape)}, got {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"write_episode: {name} contains NaN or Inf")
    return array


def _default_roles(serials: list[str]) -> dict[str, str]:
    if len(serials) > len(CAMERA_ROLES):
        raise ValueError(
            f"write_episode: at most {len(CAMERA_ROLES)} cameras get default roles {CAMERA_ROLES}, "
            f"got {len(serials)}; pass camera_roles"
        )
    return dict(zip(serials, CAMERA_ROLES))


def write_episode(
    out_dir,
    cartesian_position,
    gripper_position,
    frames,
    *,
    joint_position=None,
    camera_extrinsics=None,
    camera_roles=None,
    fps=15.0,
    metadata=None,
    codec="libx264",
) -> pathlib.Path:
    """Write an episode folder `out_dir` in the DROID raw layout and return its path.

    - cartesian_position float [T, 6] (xyz + extrinsic Euler 'xyz'), gripper_position [T] in [0, 1];
    - frames: {camera_serial: uint8 [T, H, W, 3]} (frame i goes with state row i);
    - joint_position [T, 7] or None; camera_extrinsics {serial: [T, 6] or [6]} or None;
    - camera_roles {serial: "ext1" | "ext2" | "wrist"} (default: cameras in order get ext1, ext2, wrist);
    - metadata: extra JSON entries (e.g. current_task / task, success, lab) merged into metadata_<uuid>.json.

    Written into a temporary sibling folder and renamed, so `out_dir` either holds a complete episode or
    does not exist. Raises FileExistsError if `out_dir` exists.
    """
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"write_episode: {out_dir} already exists; refusing to overwrite an episode")
    cartesian = np.asarray(cartesian_position, dtype=np.float64)
    if cartesian.ndim != 2 or cartesian.shape[1] != 6 or cartesian.shape[0] < 1:
        raise ValueError(
            f"write_episode: cartesian_position expected shape [T, 6], got {list(cartesian.shape)}"
        )
    length = cartesian.shape[0]
    cartesian = _as_array("cartesian_position", cartesian, (length, 6))
    gripper = _as_array("gripper_position", np.asarray(gripper_position).reshape(-1), (length,))
    joints = None if joint_position is None else _as_array("joint_position", joint_position, (length, 7))

    if not frames:
        raise ValueError("write_episode: frames must map at least one camera serial to uint8 [T, H, W, 3]")
    frames = {str(serial): np.asarray(video) for serial, video in frames.items()}
    for serial, video in frames.items():
        if video.dtype != np.uint8 or video.ndim != 4 or video.shape[0] != length or video.shape[-1] != 3:
            raise ValueError(
                f"write_episode: frames[{serial!r}] expected uint8 [{length}, H, W, 3], "
                f"got {video.dtype} {list(video.shape)}"
            )
    roles = (
        _default_roles(list(frames)) if camera_roles is None else {str(k): v for k, v in camera_roles.items()}
    )
    if (
        set(roles) != set(frames)
        or not set(roles.values()) <= set(CAMERA_ROLES)
        or len(set(roles.values())) != len(roles)
    ):
        raise ValueError(
            f"write_episode: camera_roles must give each camera in frames {sorted(frames)} a distinct role "
            f"from {CAMERA_ROLES}, got {roles}"
        )
    extrinsics = {}
    for serial, value in (camera_extrinsics or {}).items():
        value = np.asarray(value, dtype=np.float64)
        value = np.broadcast_to(value, (length, 6)) if value.shape == (6,) else value
        extrinsics[str(serial)] = _as_array(f"camera_extrinsics[{serial!r}]", value, (length, 6))
    unknown = set(extrinsics) - set(frames)
    if unknown:
        raise ValueError(f"write_episode: camera_extrinsics for cameras not in frames: {sorted(unknown)}")

    now = datetime.datetime.now()
    extra = dict(metadata or {})
    episode_uuid = str(
        extra.pop("uuid", f"{extra.get('lab', 'sim')}+{uuid_lib.uuid4().hex[:8]}+{now:%Y-%m-%d-%Hh-%Mm-%Ss}")
    )
    record = {
        "uuid": episode_uuid,
        "timestamp": now.isoformat(timespec="seconds"),
        "date": now.strftime("%Y-%m-%d"),
        "trajectory_length": length,
        "fps": float(fps),
        "current_task": str(extra.get("current_task", extra.get("task", ""))),
    }
    serial_of = {role: serial for serial, role in roles.items()}
    for role in CAMERA_ROLES:
        serial = serial_of.get(role)
        record[f"{role}_cam_serial"] = serial
        record[f"{role}_mp4_path"] = None if serial is None else (MP4_DIR / f"{serial}.mp4").as_posix()
        record[f"{role}_cam_extrinsics"] = (
            None if serial not in extrinsics else extrinsics[serial][0].tolist()
        )
    record["left_mp4_path"], record["right_mp4_path"] = _left_right(serial_of, extrinsics)
    record.update(extra)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        (staging / MP4_DIR).mkdir(parents=True)
        for serial, video in frames.items():
            encode_video(staging / MP4_DIR / f"{serial}.mp4", video, fps=fps, codec=codec)
        with h5py.File(staging / H5_NAME, "w") as h5:
            h5.create_dataset(CARTESIAN_KEY, data=cartesian)
            h5.create_dataset(GRIPPER_KEY, data=gripper)
            if joints is not None:
                h5.create_dataset(JOINTS_KEY, data=joints)
            for serial, value in extrinsics.items():
                h5.create_dataset(f"{EXTRINSICS_GROUP}/{serial}_left", data=value)
            for serial, role in roles.items():
                h5.create_dataset(
                    f"observation/camera_type/{serial}", data=np.full(length, _CAMERA_TYPE[role])
                )
            # DROID keeps the task and outcome as file attributes too.
            for key in ("current_task", "success"):
                if record.get(key) is not None:
                    h5.attrs[key] = record[key]
        with open(staging / f"metadata_{episode_uuid}.json", "w") as handle:
            json.dump(record, handle, indent=1, default=_json_default)
        os.chmod(staging, 0o755)  # mkdtemp creates it private
        os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _left_right(
    serial_of: dict[str, str], extrinsics: dict[str, np.ndarray]
) -> tuple[str | None, str | None]:
    """DROID's heuristic: of the two exterior cameras, the one with larger y (robot's left) is "left"."""
    ext1, ext2 = serial_of.get("ext1"), serial_of.get("ext2")
    if ext1 is None or ext2 is None:
        only = ext1 or ext2
        return (None if only is None else (MP4_DIR / f"{only}.mp4").as_posix()), None
    if ext1 in extrinsics and ext2 in extrinsics and extrinsics[ext2][0, 1] > extrinsics[ext1][0, 1]:
        ext1, ext2 = ext2, ext1
    return (MP4_DIR / f"{ext1}.mp4").as_posix(), (MP4_DIR / f"{ext2}.mp4").as_posix()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(
        f"write_episode: metadata value {value!r} of type {type(value).__name__} is not JSON-serialisable"
    )
