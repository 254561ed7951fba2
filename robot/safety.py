"""Robot-side safety limits: pure functions plus two tiny time-driven state machines, no I/O.

The server (robot.server) passes every motion command through these before the robot sees it:

- per-step motion: translation norm <= max_translation (m), rotation angle <= max_rotation (rad); larger
  steps are scaled down along their own direction (DROID clamps the same way: 0.075 m / 0.15 rad at 15 Hz);
- workspace box: the commanded end-effector position is clipped into [workspace_low, workspace_high]; an arm
  that is already outside the box can only be commanded back towards it;
- gripper range: gripper targets are clipped into [gripper_min, gripper_max];
- command rate: motion commands (step, gripper, home) closer than 1 / max_rate_hz to the previous accepted one
  are refused;
- watchdog: when no motion command arrived for watchdog_ms, the server stops the arm (hold position);
- home: the server walks to the home pose in steps made by `limit_home_step` (the limits above, at
  home_speed_factor of the per-step motion), so the way home stays inside the box and under the speed limits;
  only once within HOME_TOLERANCE of the home pose does the backend finish the move on its own.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from droid_data.conventions import integrate_actions


@dataclass(frozen=True)
class SafetyLimits:
    """Limits enforced by the robot-side server. Distances in metres, angles in radians, robot base frame."""

    workspace_low: tuple[float, float, float] = (0.20, -0.45, 0.02)
    workspace_high: tuple[float, float, float] = (0.80, 0.45, 0.75)
    max_translation: float = 0.075  # per step (DROID: 0.075 m at 15 Hz)
    max_rotation: float = 0.15  # per step, angle of the rotation delta (DROID: 0.15 rad at 15 Hz)
    gripper_min: float = 0.0
    gripper_max: float = 1.0
    max_rate_hz: float = 20.0  # motion commands per second (15 Hz policies plus jitter headroom)
    watchdog_ms: float = 500.0  # no motion command for this long -> hold position
    home_speed_factor: float = 0.5  # `home` walks at this fraction of max_translation / max_rotation per step

    def __post_init__(self):
        low, high = np.asarray(self.workspace_low, float), np.asarray(self.workspace_high, float)
        if low.shape != (3,) or high.shape != (3,):
            raise ValueError(f"SafetyLimits.workspace_low/high: expected 3 numbers each, got {low.shape} and {high.shape}")
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low < high)):
            raise ValueError(f"SafetyLimits.workspace: expected finite low < high per axis, got low={low.tolist()} "
                             f"high={high.tolist()}")
        for name in ("max_translation", "max_rotation", "max_rate_hz", "watchdog_ms"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"SafetyLimits.{name}: expected a positive finite number, got {value!r}")
        if self.max_translation > 1.0 or self.max_rotation > np.pi:
            raise ValueError(f"SafetyLimits: max_translation must be <= 1 m and max_rotation <= pi rad, got "
                             f"{self.max_translation} and {self.max_rotation}")
        if not (np.isfinite(self.home_speed_factor) and 0.0 < self.home_speed_factor <= 1.0):
            raise ValueError(f"SafetyLimits.home_speed_factor: expected a number in (0, 1], got {self.home_speed_factor!r}")
        if not 0.0 <= self.gripper_min <= self.gripper_max <= 1.0:
            raise ValueError(f"SafetyLimits.gripper_min/max: expected 0 <= min <= max <= 1, got "
                             f"{self.gripper_min} and {self.gripper_max}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict, source: str = "limits") -> SafetyLimits:
        """Limits from a map of field names; every error is one ``ValueError`` naming ``source`` and the field."""
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"{source}: unknown safety setting(s) {unknown}; expected some of "
                             f"{sorted(cls.__dataclass_fields__)}")
        checked = {}
        for name, value in values.items():
            if name.startswith("workspace_"):
                numbers = [_number(v) for v in value] if isinstance(value, (list, tuple)) else []
                ok, expected = len(numbers) == 3 and None not in numbers, "3 numbers [x, y, z] in metres"
                number = tuple(numbers)
            else:
                number = _number(value)
                ok, expected = number is not None, "a number"
            if not ok:
                raise ValueError(f"{source}: {name}: expected {expected}, got {value!r}")
            checked[name] = number
        try:
            return cls(**checked)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None

    @classmethod
    def from_yaml(cls, path) -> SafetyLimits:
        """Limits of one robot cell from a YAML map of the fields above (missing fields keep their defaults)."""
        from droid_data.cli import read_yaml_file

        values = read_yaml_file(path, f"a YAML map of safety settings {sorted(cls.__dataclass_fields__)}")
        values = {} if values is None else values
        if not isinstance(values, dict):  # a ValueError like every other bad file (the CLI: exit code 2)
            raise ValueError(f"{path}: expected a YAML map of safety settings, got "  # noqa: TRY004
                             f"{type(values).__name__} {values!r:.60}")
        return cls.from_dict(values, source=str(path))


def _number(value) -> float | None:
    """``value`` as a float if it is a number, else None: bools are not numbers, 'fast' is not a speed, and
    '1e-2' is (YAML 1.1 reads exponents without a dot as strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class LimitedStep:
    action: np.ndarray  # [7] the delta that will be executed
    target: np.ndarray  # [7] the state it commands (current state integrated by `action`)
    limited: tuple[str, ...]  # names of the limits that changed the request (empty: executed as asked)


def _scale_to_norm(vector: np.ndarray, max_norm: float) -> tuple[np.ndarray, bool]:
    norm = float(np.linalg.norm(vector))
    if norm <= max_norm:
        return vector, False
    return vector * (max_norm / norm), True


def limit_step(state: np.ndarray, action: np.ndarray, limits: SafetyLimits) -> LimitedStep:
    """Make a 7-D DROID delta `action`, requested at `state`, safe. Inputs must be finite."""
    state = np.asarray(state, dtype=np.float64)
    action = np.asarray(action, dtype=np.float64)
    if state.shape != (7,) or action.shape != (7,):
        raise ValueError(f"limit_step: expected state and action of shape (7,), got {state.shape} and {action.shape}")
    if not (np.all(np.isfinite(state)) and np.all(np.isfinite(action))):
        raise ValueError(f"limit_step: non-finite input, state={state.tolist()} action={action.tolist()}")
    limited = []

    translation, hit = _scale_to_norm(action[:3], limits.max_translation)
    if hit:
        limited.append("max_translation")

    rotvec, hit = _scale_to_norm(Rotation.from_euler("xyz", action[3:6]).as_rotvec(), limits.max_rotation)
    if hit:
        limited.append("max_rotation")
    # Always re-expressed in canonical Euler angles: (pi, pi, pi) is the identity, and backends that treat
    # Euler deltas as small vectors (norm clamps, velocity scaling) must see the small rotation it is.
    rotation = Rotation.from_rotvec(rotvec).as_euler("xyz")

    target_xyz = state[:3] + translation
    inside = np.clip(target_xyz, limits.workspace_low, limits.workspace_high)
    if not np.array_equal(inside, target_xyz):
        limited.append("workspace")
        # Re-limit: from outside the box, the way back may be longer than one step.
        translation, _ = _scale_to_norm(inside - state[:3], limits.max_translation)

    gripper_target = float(np.clip(state[6] + action[6], 0.0, 1.0))
    safe_gripper = float(np.clip(gripper_target, limits.gripper_min, limits.gripper_max))
    if safe_gripper != gripper_target:
        limited.append("gripper_range")

    safe = np.concatenate([translation, rotation, [safe_gripper - state[6]]])
    target = integrate_actions(state, safe[None])[-1]
    return LimitedStep(action=safe, target=target, limited=tuple(limited))


# Within this distance of the home pose (metres, radians) the walk home ends and the backend's own home
# motion (a joint move to the exact home configuration, which also resets the elbow) finishes the way.
HOME_TOLERANCE = (0.005, 0.03)


def _rotation_between(state: np.ndarray, target: np.ndarray) -> Rotation:
    """The base-frame rotation delta R(target) R(state)^T of the DROID action from `state` to `target`."""
    return Rotation.from_euler("xyz", target[3:6]) * Rotation.from_euler("xyz", state[3:6]).inv()


def distance_to(state: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(metres, radians) between the end-effector poses of two 7-D states."""
    return float(np.linalg.norm(target[:3] - state[:3])), float(_rotation_between(state, target).magnitude())


def limit_home_step(state: np.ndarray, home: np.ndarray, limits: SafetyLimits) -> LimitedStep:
    """The next step of the walk from `state` to the `home` state: the whole remaining delta, made safe by
    `limit_step` with the per-step motion scaled by home_speed_factor.

    Every step points straight at the home position, so from inside the (convex) workspace box the walk
    follows the segment to a home pose inside the box and never leaves it; from outside, the box limit
    brings the arm back first.
    """
    state, home = np.asarray(state, dtype=np.float64), np.asarray(home, dtype=np.float64)
    delta = np.concatenate([home[:3] - state[:3], _rotation_between(state, home).as_euler("xyz"),
                            [home[6] - state[6]]])
    slow = dataclasses.replace(limits, max_translation=limits.max_translation * limits.home_speed_factor,
                               max_rotation=limits.max_rotation * limits.home_speed_factor)
    return limit_step(state, delta, slow)


def limit_gripper(position: float, limits: SafetyLimits) -> tuple[float, tuple[str, ...]]:
    """Clip an absolute gripper closedness target into the allowed range."""
    safe = float(np.clip(position, limits.gripper_min, limits.gripper_max))
    return safe, (("gripper_range",) if safe != position else ())


class RateLimiter:
    """Accepts an event only if the previous accepted one is at least 1 / max_rate_hz seconds old."""

    def __init__(self, max_rate_hz: float):
        self.min_interval = 1.0 / max_rate_hz
        self.last: float | None = None

    def allow(self, now: float) -> bool:
        if self.last is not None and now - self.last < self.min_interval:
            return False
        self.last = now
        return True


class Watchdog:
    """Armed by every motion command; `expired` turns true once `timeout_s` passed without one."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.last_feed: float | None = None

    def feed(self, now: float) -> None:
        self.last_feed = now

    def disarm(self) -> None:
        self.last_feed = None

    @property
    def armed(self) -> bool:
        return self.last_feed is not None

    def expired(self, now: float) -> bool:
        return self.last_feed is not None and now - self.last_feed > self.timeout_s
