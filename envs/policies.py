"""Scripted policies for the Franka tasks: oracles, noisy experts and random exploration.

Every policy is called as `policy(obs, info) -> action` (7-D DROID delta) after `policy.reset(rng)` at the
start of an episode. Experts read the privileged `info` the envs return (`goal_state`, and for the cube tasks
`object_pos`, `object_yaw`, `goal_object_pos`) — they exist to make training data and to prove the tasks are
solvable, not to be learned from at test time.

`make_policy(task, kind)` builds one: kind "oracle" (noise-free expert), "expert" (noisy expert, mostly
succeeds), "random" (smoothed random exploration), or "mixed" (per episode, one of the other three with
probabilities 0.15 / 0.55 / 0.3, like DROID's mix of successes and failures).
"""
from __future__ import annotations

import numpy as np

from droid_data.conventions import euler_xyz_to_matrix
from envs.controller import rotation_error
from envs.scene import CUBE_HALF, TABLE_TOP

STEP = 0.075  # metres per step the experts aim for (the controller's default clamp)
SAFE_HEIGHT = TABLE_TOP + 0.12  # EE height for moving over the cube
OPEN, CLOSE = -1.0, 1.0  # gripper deltas: fully open / fully close within the controller's clamp


def _toward(state: np.ndarray, target_pos: np.ndarray, step: float = STEP) -> np.ndarray:
    delta = np.asarray(target_pos, float) - state[:3]
    norm = np.linalg.norm(delta)
    return delta if norm <= step else delta * step / norm


def _yaw_delta(state: np.ndarray, target_finger_angle: float, period: float = np.pi / 2,
               limit: float = 0.15) -> float:
    """Rotation about the base z axis that turns the finger axis onto `target_finger_angle` (mod `period`)."""
    rot = euler_xyz_to_matrix(state[3:6])
    error = target_finger_angle - np.arctan2(rot[1, 1], rot[0, 1])
    error = (error + period / 2) % period - period / 2
    return float(np.clip(error, -limit, limit))


def _keep_pointing_down(state: np.ndarray, limit: float = 0.15) -> np.ndarray:
    """Euler delta that removes roll/pitch so the gripper points straight down (yaw kept)."""
    rot = euler_xyz_to_matrix(state[3:6])
    down = rot.copy()
    down[:, 2] = (0.0, 0.0, -1.0)
    x = rot[:, 0] - rot[:, 0] @ down[:, 2] * down[:, 2]
    down[:, 0] = x / np.linalg.norm(x)
    down[:, 1] = np.cross(down[:, 2], down[:, 0])
    err = rotation_error(down, rot)
    norm = np.linalg.norm(err)
    return err if norm <= limit else err * limit / norm


def _action(move: np.ndarray, rotate: np.ndarray, gripper: float) -> np.ndarray:
    return np.concatenate([move, rotate, [gripper]])


class Policy:
    name = "policy"

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, obs: dict, info: dict) -> np.ndarray:
        raise NotImplementedError


class ReachExpert(Policy):
    """Straight to the goal pose (position and orientation); gripper toward the goal's closedness."""

    name = "reach_expert"

    def __call__(self, obs, info):
        state, goal = np.asarray(obs["state"], float), np.asarray(info["goal_state"], float)
        rotate = rotation_error(euler_xyz_to_matrix(goal[3:6]), euler_xyz_to_matrix(state[3:6]))
        norm = np.linalg.norm(rotate)
        rotate = rotate if norm <= 0.15 else rotate * 0.15 / norm
        return _action(_toward(state, goal[:3]), rotate, float(np.clip(goal[6] - state[6], -1, 1)))


class PushExpert(Policy):
    """Close the gripper, turn the closed fingers broadside to the push, go behind the cube (opposite the goal),
    lower, then push along the current cube-goal line in steps that shrink near the goal."""

    name = "push_expert"
    finger_half = 0.011  # half thickness of the closed fingers along the push direction

    def __call__(self, obs, info):
        state = np.asarray(obs["state"], float)
        cube, goal = np.asarray(info["object_pos"], float), np.asarray(info["goal_object_pos"], float)
        to_goal = goal[:2] - cube[:2]
        remaining = np.linalg.norm(to_goal)
        direction = to_goal / max(remaining, 1e-6)
        contact = cube[:2] - direction * (CUBE_HALF + self.finger_half + 0.004)  # EE touching the cube's back
        behind = cube[:2] - direction * (CUBE_HALF + 0.04)  # where the EE comes down
        offset = state[:2] - cube[:2]
        along = offset @ direction
        across = abs(offset[0] * direction[1] - offset[1] * direction[0])
        low = TABLE_TOP + 0.02
        # Finger axis across the push direction, so the flat of the closed fingers does the pushing.
        broadside = np.arctan2(direction[1], direction[0]) + np.pi / 2
        rotate = _keep_pointing_down(state) + np.array([0.0, 0.0, _yaw_delta(state, broadside, np.pi)])
        if remaining < 0.015:  # done (success needs 5 cm): ease off and hold
            return _action(_toward(state, [*state[:2], low + 0.03]), _keep_pointing_down(state), CLOSE)
        if along < -CUBE_HALF and across < 0.025 and state[2] < low + 0.02:
            target_xy = contact + direction * min(remaining, 0.04)  # push the cube by at most 4 cm
            return _action(_toward(state, [*target_xy, low]), rotate, CLOSE)
        if np.linalg.norm(state[:2] - behind) < 0.015:
            return _action(_toward(state, [*behind, low]), rotate, CLOSE)  # descend behind the cube
        if state[2] < SAFE_HEIGHT - 0.04 and np.linalg.norm(offset) < 0.12:
            return _action(_toward(state, [*state[:2], SAFE_HEIGHT]), rotate, CLOSE)  # lift clear of the cube
        return _action(_toward(state, [*behind, SAFE_HEIGHT]), rotate, CLOSE)


class PickPlaceExpert(Policy):
    """Above the cube, align, descend, grasp, lift, carry, lower at the goal spot, release, retreat."""

    name = "pick_place_expert"

    def reset(self, rng):
        super().reset(rng)
        self.phase, self.wait = "approach", 0

    def __call__(self, obs, info):
        state = np.asarray(obs["state"], float)
        cube, goal = np.asarray(info["object_pos"], float), np.asarray(info["goal_object_pos"], float)
        yaw = _yaw_delta(state, float(info["object_yaw"]))
        align = _keep_pointing_down(state) + np.array([0.0, 0.0, yaw])  # before the grasp only
        rotate = _keep_pointing_down(state)
        grasp_z = cube[2] + 0.005
        # Fingers stopped by something between them (not touching each other) with the cube close: held.
        held = np.linalg.norm(cube - state[:3]) < 0.05 and 0.2 < state[6] < 0.9
        if self.phase in ("lift", "carry", "lower") and not held:
            self.phase = "approach"  # dropped it: start over
        if self.phase == "approach":
            if np.linalg.norm(state[:2] - cube[:2]) < 0.01 and abs(yaw) < 0.05:
                self.phase = "descend"
            return _action(_toward(state, [*cube[:2], SAFE_HEIGHT]), align, OPEN)
        if self.phase == "descend":
            if abs(state[2] - grasp_z) < 0.008:
                self.phase, self.wait = "grasp", 0
            if np.linalg.norm(state[:2] - cube[:2]) > 0.02:
                self.phase = "approach"
            return _action(_toward(state, [*cube[:2], grasp_z], 0.05), align, OPEN)
        if self.phase == "grasp":
            self.wait += 1
            if self.wait >= 2:
                self.phase = "lift"
            return _action(np.zeros(3), np.zeros(3), CLOSE)
        if self.phase == "lift":
            if state[2] > SAFE_HEIGHT - 0.01:
                self.phase = "carry"
            return _action(_toward(state, [*state[:2], SAFE_HEIGHT]), rotate, CLOSE)
        if self.phase == "carry":
            if np.linalg.norm(state[:2] - goal[:2]) < 0.01:
                self.phase = "lower"
            return _action(_toward(state, [*goal[:2], SAFE_HEIGHT]), rotate, CLOSE)
        if self.phase == "lower":
            if abs(state[2] - (goal[2] + 0.008)) < 0.008:
                self.phase = "release"
            return _action(_toward(state, [*goal[:2], goal[2] + 0.008], 0.05), rotate, CLOSE)
        if self.phase == "release":
            if state[6] < 0.05:
                self.phase = "retreat"
            return _action(np.zeros(3), np.zeros(3), OPEN)
        return _action(_toward(state, [*state[:2], SAFE_HEIGHT]), rotate, OPEN)  # retreat


class NoisyPolicy(Policy):
    """An expert at a random speed, with Gaussian action noise and occasional bursts of random actions.

    Per episode: speed ~ U(speed_range) scales the expert's translations (slower, longer trajectories like a
    teleoperator's), noise ~ U(noise_range) scales the Gaussian noise (in units of the per-step limits).
    """

    def __init__(self, expert: Policy, speed_range=(0.4, 1.0), noise_range=(0.05, 0.3), burst_prob: float = 0.04,
                 burst_len: int = 3):
        self.expert, self.speed_range, self.noise_range = expert, speed_range, noise_range
        self.burst_prob, self.burst_len = burst_prob, burst_len
        self.name = f"noisy_{expert.name}"
        self.random = RandomPolicy()

    def reset(self, rng):
        super().reset(rng)
        self.expert.reset(rng)
        self.random.reset(rng)
        self.burst = 0
        self.speed, self.noise = rng.uniform(*self.speed_range), rng.uniform(*self.noise_range)

    def __call__(self, obs, info):
        action = self.expert(obs, info)
        if self.burst == 0 and self.rng.random() < self.burst_prob:
            self.burst = self.burst_len
        if self.burst > 0:  # random arm motion; the gripper keeps doing what the expert wants
            self.burst -= 1
            return np.concatenate([self.random(obs, info)[:6], action[6:]])
        action[:3] *= self.speed
        scale = np.array([STEP] * 3 + [0.15] * 3 + [0.5])
        return action + self.noise * scale * self.rng.standard_normal(7)


class RandomPolicy(Policy):
    """Smoothed random exploration: correlated deltas, a weak pull back to the workspace centre, random grips."""

    name = "random"

    def __init__(self, smoothing: float = 0.7, centre=(0.5, 0.0, 0.2)):
        self.smoothing, self.centre = smoothing, np.asarray(centre)

    def reset(self, rng):
        super().reset(rng)
        self.previous = np.zeros(7)

    def __call__(self, obs, info):
        state = np.asarray(obs["state"], float)
        fresh = np.concatenate([self.rng.normal(0, STEP * 0.6, 3), self.rng.normal(0, 0.06, 3), [0.0]])
        action = self.smoothing * self.previous + (1 - self.smoothing) * fresh * 2.0
        action[:3] += 0.15 * (self.centre - state[:3])
        action[3:6] += 0.3 * _keep_pointing_down(state, 0.3)  # wander in yaw, stay roughly pointing down
        action[6] = self.rng.choice([OPEN, CLOSE]) if self.rng.random() < 0.15 else 0.0
        self.previous = action
        return action


class MixedPolicy(Policy):
    """Per episode: the oracle, a noisy expert or random exploration."""

    def __init__(self, task: str, probs=(0.15, 0.55, 0.3)):
        self.members = [EXPERTS[task](), NoisyPolicy(EXPERTS[task]()), RandomPolicy()]
        self.members[0].name = "oracle"
        self.probs = probs
        self.name = "mixed"

    def reset(self, rng):
        super().reset(rng)
        self.active = self.members[rng.choice(len(self.members), p=self.probs)]
        self.active.reset(rng)
        self.name = self.active.name

    def __call__(self, obs, info):
        return self.active(obs, info)


EXPERTS = {"reach": ReachExpert, "push": PushExpert, "pick_place": PickPlaceExpert}
POLICY_KINDS = ("oracle", "expert", "random", "mixed")


def make_policy(task: str, kind: str = "mixed") -> Policy:
    if task not in EXPERTS:
        raise ValueError(f"task: expected one of {sorted(EXPERTS)}, got {task!r}")
    if kind == "oracle":
        policy = EXPERTS[task]()
        policy.name = "oracle"
        return policy
    if kind == "expert":
        return NoisyPolicy(EXPERTS[task]())
    if kind == "random":
        return RandomPolicy()
    if kind == "mixed":
        return MixedPolicy(task)
    raise ValueError(f"policy: expected one of {POLICY_KINDS}, got {kind!r}")
