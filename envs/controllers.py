"""The `FrankaController` interface: one object that observes and moves a Franka, wherever it is.

Backends:
- `SimController` (here): the MuJoCo arm of `envs`, in process;
- `envs.franka_client.FrankaClient`: a robot-side `scripts/franka_server.py` over the network (which itself
  drives a `SimController` or an `envs.franky_backend.FrankyController` behind its safety layer).

Observations are the same dict the gymnasium envs return: `rgb` uint8 [H, W, 3] (exterior camera), `state`
float [7] (xyz, Euler 'xyz', gripper closedness), `joints` float [7], plus optional other `<name>_rgb` images.
Actions are the 7-D DROID deltas of docs/architecture.md.
"""
from __future__ import annotations

import abc
import json
import pathlib
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class StepResult:
    applied: np.ndarray  # [7] the delta that was executed (may differ from the request on a safe server)
    limited: tuple[str, ...] = ()  # safety limits that changed the request (see envs.safety)
    state: np.ndarray | None = field(default=None)  # [7] state right after the step, when the backend knows it


class FrankaController(abc.ABC):
    """Observe and command a Franka arm with DROID-convention deltas. Usable as a context manager."""

    backend: str = "abstract"

    @abc.abstractmethod
    def observe(self, images: bool = True) -> dict:
        """Current observation; with images=False only `state` and `joints` (cheap, no rendering/capture)."""

    @abc.abstractmethod
    def step(self, action: np.ndarray) -> StepResult:
        """Apply one 7-D delta [dxyz, d_euler_xyz, d_gripper] and return what was executed."""

    @abc.abstractmethod
    def set_gripper(self, position: float) -> float:
        """Move the gripper to an absolute closedness in [0, 1]; returns the commanded value."""

    @abc.abstractmethod
    def home(self) -> dict:
        """Move to the home configuration (blocking) and return the observation without images."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop any motion now and hold the current pose."""

    def close(self) -> None:
        """Release the robot/connection. Idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def as_action(action, who: str) -> np.ndarray:
    """Validate a 7-D action given by a caller (clear error instead of a broadcasting surprise)."""
    array = np.asarray(action, dtype=np.float64)
    if array.shape != (7,):
        raise ValueError(f"{who}: expected an action of shape (7,) [dx, dy, dz, droll, dpitch, dyaw, dgripper], "
                         f"got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{who}: action must be finite, got {array.tolist()}")
    return array


class SimController(FrankaController):
    """The simulated arm of an `envs` task, driven through the env's public low-level operations.

    The simulator advances only inside commands: `step` runs one control period of physics and returns once
    the arm has settled, so between commands nothing moves. `stop` re-targets the joint servos to the measured
    joints, which is what holding position means for the sim.
    """

    backend = "sim"

    def __init__(self, env="FrankaReach-v0", *, seed: int | None = 0, **env_options):
        if isinstance(env, str):
            import gymnasium as gym

            import envs  # noqa: F401  registers the Franka tasks

            env = gym.make(env, **env_options).unwrapped
            env.reset(seed=seed)
        elif env_options:
            raise TypeError(f"SimController: env options {sorted(env_options)} only apply when env is an id string")
        self.env = env

    def observe(self, images: bool = True) -> dict:
        # float64 state and joints either way (the env's observation dict holds float32 copies).
        exact = {"state": self.env.state(), "joints": self.env.robot.joints(self.env.data)}
        return {**self.env.observe(), **exact} if images else exact

    def step(self, action) -> StepResult:
        action = as_action(action, "SimController.step")
        # The gripper delta is relative to the *measured* closedness (the state), as on the real arm; the env
        # adds it to its last gripper command, which differs while the fingers are blocked by an object.
        measured = self.env.state()[6]
        command = action.copy()
        command[6] = float(np.clip(measured + action[6], 0.0, 1.0)) - self.env.gripper_command
        executed = np.asarray(self.env.apply_delta(command), dtype=np.float64)
        applied = np.concatenate([executed[:6], [self.env.gripper_command - measured]])
        limited = () if np.allclose(applied, action) else ("sim_controller",)
        return StepResult(applied=applied, limited=limited, state=self.env.state())

    def set_gripper(self, position: float) -> float:
        position = float(np.clip(position, 0.0, 1.0))
        self.env.set_gripper(position)
        return position

    def home(self) -> dict:
        self.env.go_home()
        self.env.set_gripper(0.0)  # DROID's reset opens the gripper
        return self.observe(images=False)

    def stop(self) -> None:
        robot, data = self.env.robot, self.env.data
        data.ctrl[robot.arm_actuators] = robot.joints(data)

    def close(self) -> None:
        self.env.close()


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
