"""`RecordingController`: wraps any `FrankaController` and writes what it saw as a DROID raw episode."""
from __future__ import annotations

import json
import pathlib
import time

import numpy as np

from robot.interface import FrankaController, StepResult, as_action

# Observation image keys -> (camera serial, DROID camera role) in recorded episodes.
_CAMERAS = {"rgb": ("exterior", "ext1"), "wrist_rgb": ("wrist", "wrist")}


class RecordingController(FrankaController):
    """Wraps a controller and records every observation with images and every command, to write an episode.

    Each `observe()` with images becomes one row of the episode (state, joints, frames). Every call (observe,
    step, gripper, home, stop) goes to `<episode>/deploy_log.jsonl` with its start time `t`, duration `seconds`,
    the request, what the robot executed (`applied`, `limited`) or the error it raised, so refusals and
    clipping stay visible.
    """

    def __init__(self, inner: FrankaController):
        self.inner = inner
        self.backend = inner.backend
        self.rows: list[dict] = []
        self.log: list[dict] = []
        self._t0 = time.monotonic()

    def _event(self, **fields) -> dict:
        event = {"t": round(time.monotonic() - self._t0, 6), **fields}
        self.log.append(event)
        return event

    def _call(self, cmd: str, request, fn):
        event = self._event(cmd=cmd, request=request)
        start = time.monotonic()
        try:
            result = fn()
        except Exception as exc:
            event["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            event["seconds"] = round(time.monotonic() - start, 6)
        return event, result

    def observe(self, images: bool = True) -> dict:
        event, obs = self._call("observe", {"images": images}, lambda: self.inner.observe(images))
        event["state"] = np.asarray(obs["state"]).tolist()
        if images:
            self.rows.append(obs)
            event["row"] = len(self.rows) - 1
        return obs

    def step(self, action) -> StepResult:
        action = as_action(action, "RecordingController.step")
        event, result = self._call("step", action.tolist(), lambda: self.inner.step(action))
        event.update(applied=np.asarray(result.applied).tolist(), limited=list(result.limited))
        return result

    def set_gripper(self, position: float) -> float:
        event, applied = self._call("gripper", float(position), lambda: self.inner.set_gripper(position))
        event["applied"] = applied
        return applied

    def home(self) -> dict:
        return self._call("home", None, self.inner.home)[1]

    def stop(self) -> None:
        self._call("stop", None, self.inner.stop)

    def close(self) -> None:
        self.inner.close()

    def write_episode(self, out_dir, *, fps: float, metadata: dict | None = None,
                      camera_extrinsics: dict | None = None) -> pathlib.Path:
        """Write the recorded rows as a DROID raw episode (droid_data.write_episode) plus deploy_log.jsonl.

        camera_extrinsics: optional {observation key ("rgb", ...): [6] or [T, 6]} camera poses in the base frame.
        """
        from droid_data import write_episode

        if not self.rows:
            raise ValueError("RecordingController.write_episode: no observation with images was recorded")
        states = np.stack([np.asarray(row["state"], dtype=np.float64) for row in self.rows])
        keys = [k for k in self.rows[0] if k == "rgb" or k.endswith("_rgb")]
        unknown = [k for k in keys if k not in _CAMERAS]
        if len(unknown) > 1:
            raise ValueError(f"RecordingController.write_episode: DROID has one free camera role (ext2); got extra "
                             f"images {unknown}")
        cameras = {k: _CAMERAS.get(k, (k.removesuffix("_rgb"), "ext2")) for k in keys}
        frames = {cameras[k][0]: np.stack([row[k] for row in self.rows]) for k in keys}
        extrinsics = {cameras[k][0]: v for k, v in (camera_extrinsics or {}).items()}
        path = write_episode(
            out_dir, states[:, :6], states[:, 6], frames,
            joint_position=np.stack([np.asarray(row["joints"], dtype=np.float64) for row in self.rows]),
            camera_extrinsics=extrinsics or None, camera_roles={serial: role for serial, role in cameras.values()},
            fps=fps, metadata={"backend": self.backend, **(metadata or {})})
        with open(pathlib.Path(path) / "deploy_log.jsonl", "w") as f:
            f.writelines(json.dumps(event) + "\n" for event in self.log)
        return pathlib.Path(path)
