"""The `FrankaController` interface: one object that observes and moves a Franka, wherever it is.

Implementations:
- `robot.backends.sim.SimController`: the MuJoCo arm of `envs`, in process;
- `robot.backends.franky.FrankyController`: a real arm through franky (on the robot computer);
- `robot.client.FrankaClient`: a robot-side `scripts/franka_server.py` over the network (which itself drives
  one of the two backends behind its safety layer, `robot.server`);
- `robot.recording.RecordingController`: wraps any of them and records a DROID episode.

Observations are the same dict the gymnasium envs return: `rgb` uint8 [H, W, 3] (exterior camera), `state`
float [7] (xyz, Euler 'xyz', gripper closedness), `joints` float [7], plus optional other `<name>_rgb` images.
Actions are the 7-D DROID deltas of docs/architecture.md.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class StepResult:
    applied: np.ndarray  # [7] the delta that was executed (may differ from the request on a safe server)
    limited: tuple[str, ...] = ()  # safety limits that changed the request (see robot.safety)
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
        """Move to the home configuration (blocking) and return the observation without images.

        The backend's own motion, trusted to start near home: the robot server first walks the arm there in
        safety-limited steps (robot.safety.limit_home_step) and calls this only for the last few millimetres.
        """

    def home_state(self) -> np.ndarray:
        """The 7-D state `home()` ends in (end-effector pose at the home joints, gripper open).

        The robot server needs it to walk home within its limits; a backend that cannot tell cannot be served.
        """
        raise NotImplementedError(f"{type(self).__name__} does not know its home pose (home_state)")

    def is_moving(self) -> bool:
        """True while a commanded motion is still under way; the server refuses `home` then.

        Backends whose commands return with the arm at rest (the simulator) keep this default.
        """
        return False

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
