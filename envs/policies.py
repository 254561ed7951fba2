"""Scripted policies for the Franka tasks: oracles, noisy experts, failure modes and exploration.

Every policy is called as `policy(obs, info) -> action` (7-D DROID delta) after `policy.reset(rng)` at the
start of an episode. Experts read the privileged `info` the envs return (`goal_state`, and for the object tasks
`object`, `object_pos`, `object_yaw`, `object_held`, `goal_object_pos`) — they exist to make training data and to
prove the tasks are solvable, not to be learned from at test time.

`make_policy(task, kind)` builds one. Kinds:

* "oracle": the noise-free expert;
* "expert": the expert at a random speed with Gaussian noise and bursts of random motion (mostly succeeds);
* "failed_grasp": the expert with a botched grasp — it closes too early, misses the object or closes
  misaligned, then carries on as if it held it; with an object that starts in the hand it drops it midway;
* "explore_object": wanders near the object, nudging it and opening / closing the gripper around it;
* "random": smoothed random exploration of the workspace;
* "mixed": one of the above per episode, with the task's probabilities in `MIXES` (successes and failures,
  like DROID's play data).
"""
from __future__ import annotations

import numpy as np

from droid_data.conventions import euler_xyz_to_matrix
from envs.controller import rotation_error
from envs.scene import OBJECTS, TABLE_TOP
from envs.tasks import CARRY_HEIGHT, grasp_point

STEP = 0.075  # metres per step the experts aim for (the controller's default clamp)
SAFE_HEIGHT = CARRY_HEIGHT  # EE height for moving over the object
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
    """Close the gripper, turn the closed fingers broadside to the push, go behind the object (opposite the
    goal), lower, then push along the current object-goal line in steps that shrink near the goal."""

    name = "push_expert"
    finger_half = 0.011  # half thickness of the closed fingers along the push direction
    push_step = 0.04  # metres per step while in contact

    def __call__(self, obs, info):
        state = np.asarray(obs["state"], float)
        cube, goal = np.asarray(info["object_pos"], float), np.asarray(info["goal_object_pos"], float)
        half = OBJECTS[info["object"]].half_width
        to_goal = goal[:2] - cube[:2]
        remaining = np.linalg.norm(to_goal)
        direction = to_goal / max(remaining, 1e-6)
        contact = cube[:2] - direction * (half + self.finger_half + 0.004)  # EE touching the object's back
        behind = cube[:2] - direction * (half + 0.04)  # where the EE comes down
        offset = state[:2] - cube[:2]
        along = offset @ direction
        across = abs(offset[0] * direction[1] - offset[1] * direction[0])
        # Low, but with the hand (4.5 cm above the EE) clear of the object's top: a push on a cup's rim tips it.
        low = max(TABLE_TOP + 0.02, TABLE_TOP + 2 * OBJECTS[info["object"]].half_height - 0.04)
        # Finger axis across the push direction, so the flat of the closed fingers does the pushing.
        broadside = np.arctan2(direction[1], direction[0]) + np.pi / 2
        rotate = _keep_pointing_down(state) + np.array([0.0, 0.0, _yaw_delta(state, broadside, np.pi)])
        if remaining < 0.015:  # done (success needs 5 cm): ease off and hold
            return _action(_toward(state, [*state[:2], low + 0.03]), _keep_pointing_down(state), CLOSE)
        if along < -half and across < 0.025 and state[2] < low + 0.02:
            target_xy = contact + direction * min(remaining, 0.04)  # push the object by at most 4 cm
            # at most 4 cm per step (16 cm/s at 4 Hz): a faster strike knocks a cup over
            return _action(_toward(state, [*target_xy, low], self.push_step), rotate, CLOSE)
        if np.linalg.norm(state[:2] - behind) < 0.015:
            return _action(_toward(state, [*behind, low]), rotate, CLOSE)  # descend behind the object
        if state[2] < SAFE_HEIGHT - 0.04 and np.linalg.norm(offset) < 0.12:
            return _action(_toward(state, [*state[:2], SAFE_HEIGHT]), rotate, CLOSE)  # lift clear of the object
        return _action(_toward(state, [*behind, SAFE_HEIGHT]), rotate, CLOSE)


class ObjectExpert(Policy):
    """Grasp the object and bring it where the goal wants it: approach above it, align the fingers, descend,
    close, lift, carry; with `place`, lower it onto the spot, release and retreat.

    The EE's carry target is the goal object position plus the grasp offset (grasp, reach-with-object) or the
    spot at carry height (pick-and-place). An object that starts in the hand (reach-with-object) is carried
    directly. If the object drops while carried, the expert starts over (not in `failed_grasp` mode).
    """

    def __init__(self, task: str):
        self.name = f"{task}_expert"
        self.place = task == "pick_place"
        self.retry = True  # start over after a drop
        self.grasp_offset = np.zeros(3)  # failure modes move where the fingers close (see FailedGrasp)

    def reset(self, rng):
        super().reset(rng)
        self.phase, self.wait = None, 0

    def __call__(self, obs, info):
        state = np.asarray(obs["state"], float)
        obj, goal = np.asarray(info["object_pos"], float), np.asarray(info["goal_object_pos"], float)
        shape = OBJECTS[info["object"]]
        held = bool(info["object_held"])
        if self.phase is None:  # first call: an object already in the hand is carried directly
            self.phase = "carry" if held else "approach"
        if self.retry and self.phase in ("lift", "carry", "lower") and not held:
            self.phase = "approach"  # dropped it: start over
        rotate = _keep_pointing_down(state)
        yaw = _yaw_delta(state, float(info["object_yaw"])) if shape.yaw_period else 0.0
        align = rotate + np.array([0.0, 0.0, yaw])  # turn the fingers across the object before the grasp
        grasp = grasp_point(obj, shape) + self.grasp_offset
        if self.place:
            carry_to = np.array([*goal[:2], SAFE_HEIGHT])
        else:  # where the EE is when the object is at its goal, with the grasp it has now (or will have)
            carry_to = goal + (state[:3] - obj if held else grasp_point(obj, shape) - obj)

        if self.phase == "approach":
            if np.linalg.norm(state[:2] - grasp[:2]) < 0.01 and abs(yaw) < 0.05:
                self.phase = "descend"
            if state[2] < SAFE_HEIGHT - 0.04 and np.linalg.norm(state[:2] - obj[:2]) > 0.03:
                return _action(_toward(state, [*state[:2], SAFE_HEIGHT]), align, OPEN)  # rise clear first
            return _action(_toward(state, [*grasp[:2], SAFE_HEIGHT]), align, OPEN)
        if self.phase == "descend":
            if abs(state[2] - grasp[2]) < 0.008:
                self.phase, self.wait = "close", 0
            if np.linalg.norm(state[:2] - grasp[:2]) > 0.02:
                self.phase = "approach"
            return _action(_toward(state, grasp, 0.05), align, OPEN)
        if self.phase == "close":
            self.wait += 1
            if self.wait >= 2:
                self.phase = "lift"
            return _action(np.zeros(3), np.zeros(3), CLOSE)
        if self.phase == "lift":  # straight up to the carry target's height (or carry height), then across
            lift_to = SAFE_HEIGHT if self.place else max(carry_to[2], state[2])
            if state[2] > lift_to - 0.01:
                self.phase = "carry"
            return _action(_toward(state, [*state[:2], lift_to]), rotate, CLOSE)
        if self.phase == "carry":
            if self.place and np.linalg.norm(state[:2] - carry_to[:2]) < 0.01:
                self.phase = "lower"
            return _action(_toward(state, carry_to), rotate, CLOSE)
        if self.phase == "lower":
            place_at = grasp_point(goal, shape) + [0.0, 0.0, 0.008]
            if abs(state[2] - place_at[2]) < 0.008:
                self.phase, self.wait = "release", 0
            return _action(_toward(state, [*goal[:2], place_at[2]], 0.05), rotate, CLOSE)
        if self.phase == "release":
            self.wait += 1
            if self.wait >= 2:
                self.phase = "retreat"
            return _action(np.zeros(3), np.zeros(3), OPEN)
        return _action(_toward(state, [*state[:2], SAFE_HEIGHT]), rotate, OPEN)  # retreat


class FailedGrasp(Policy):
    """The object expert with a botched grasp, chosen per episode, then carrying on as if it had worked:

    * "early": closes 3.5-6 cm above the grasp height (on air, or on the very top of a cup);
    * "miss": comes down 4.5-6 cm beside the object (closing next to it, or pressing on its top);
    * "drop": grasps well, then opens the gripper 1-4 steps into the lift or carry.

    An object that starts in the hand (reach-with-object) is always dropped.
    """

    def __init__(self, expert: ObjectExpert):
        self.expert = expert
        self.name = f"failed_{expert.name}"

    def reset(self, rng):
        super().reset(rng)
        self.expert.reset(rng)
        self.expert.retry = False
        self.mode = str(rng.choice(["early", "miss", "drop"]))
        self.drop_after = int(rng.integers(1, 5))
        self.carried = 0
        offset = np.zeros(3)
        if self.mode == "early":
            offset[2] = rng.uniform(0.035, 0.06)
        elif self.mode == "miss":
            angle = rng.uniform(-np.pi, np.pi)
            offset[:2] = rng.uniform(0.045, 0.06) * np.array([np.cos(angle), np.sin(angle)])
        self.expert.grasp_offset = offset

    def __call__(self, obs, info):
        if self.expert.phase is None and info["object_held"]:
            self.mode = "drop"
        action = self.expert(obs, info)
        if self.mode == "drop" and self.expert.phase in ("lift", "carry", "lower", "release", "retreat"):
            self.carried += 1
            if self.carried > self.drop_after:
                action[6] = OPEN
        return action


class ObjectExplorer(Policy):
    """Random exploration near the object: EE targets in a box around it (from just above the table to 15 cm),
    random yaw, the gripper opened or closed at random — it touches, nudges, tips and sometimes grabs it."""

    name = "explore_object"

    def __init__(self, reach: float = 0.08, retarget_prob: float = 0.15, toggle_prob: float = 0.2):
        self.reach, self.retarget_prob, self.toggle_prob = reach, retarget_prob, toggle_prob

    def reset(self, rng):
        super().reset(rng)
        self.target, self.speed = None, rng.uniform(0.3, 1.0) * STEP
        self.gripper = OPEN

    def __call__(self, obs, info):
        state, obj = np.asarray(obs["state"], float), np.asarray(info["object_pos"], float)
        if self.target is None or np.linalg.norm(self.target - state[:3]) < 0.015 \
                or self.rng.random() < self.retarget_prob:
            offset = self.rng.uniform([-self.reach, -self.reach, 0.0], [self.reach, self.reach, 0.15])
            self.target = np.array([*(obj[:2] + offset[:2]), TABLE_TOP + 0.02 + offset[2]])
        if self.rng.random() < self.toggle_prob:
            self.gripper = -self.gripper
        move = _toward(state, self.target, self.speed) + 0.15 * STEP * self.rng.standard_normal(3)
        rotate = _keep_pointing_down(state) + np.array([0.0, 0.0, self.rng.normal(0.0, 0.08)])
        return _action(move, rotate, self.gripper)


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




# Per task: policy kind -> probability of an episode of the "mixed" policy. Reach keeps the original mix; the
# object tasks add botched grasps and exploration around the object (contact-rich failures).
MIXES = {
    "reach": {"oracle": 0.15, "expert": 0.55, "random": 0.3},
    "push": {"oracle": 0.15, "expert": 0.5, "explore_object": 0.2, "random": 0.15},
    **{task: {"oracle": 0.15, "expert": 0.4, "failed_grasp": 0.15, "explore_object": 0.15, "random": 0.15}
       for task in ("grasp", "reach_with_object", "pick_place")},
}
POLICY_KINDS = ("oracle", "expert", "failed_grasp", "explore_object", "random", "mixed")


class MixedPolicy(Policy):
    """Per episode, one of the task's policies (`MIXES`)."""

    def __init__(self, task: str):
        self.mix = MIXES[task]
        self.members = {kind: make_policy(task, kind) for kind in self.mix}
        self.name = "mixed"

    def reset(self, rng):
        super().reset(rng)
        kinds = list(self.mix)
        self.active = self.members[kinds[rng.choice(len(kinds), p=list(self.mix.values()))]]
        self.active.reset(rng)
        self.name = self.active.name

    def __call__(self, obs, info):
        return self.active(obs, info)


def _expert(task: str) -> Policy:
    if task == "reach":
        return ReachExpert()
    if task == "push":
        return PushExpert()
    return ObjectExpert(task)


def make_policy(task: str, kind: str = "mixed") -> Policy:
    """A scripted policy of `kind` (POLICY_KINDS) for `task` (a key of MIXES)."""
    if task not in MIXES:
        raise ValueError(f"task: expected one of {sorted(MIXES)}, got {task!r}")
    if kind not in POLICY_KINDS:
        raise ValueError(f"policy: expected one of {POLICY_KINDS}, got {kind!r}")
    if kind == "oracle":
        policy = _expert(task)
        policy.name = "oracle"
        return policy
    if kind == "expert":
        if task in ("reach", "push"):
            return NoisyPolicy(_expert(task))
        # A grasp does not survive the 0.3-limit noise reach and push take (grasp 45 %, pick-and-place 40 %
        # at 60 steps); up to 0.15 keeps most grasps (100 % / 70 %) and still varies the trajectories.
        return NoisyPolicy(_expert(task), noise_range=(0.05, 0.15))
    if kind == "random":
        return RandomPolicy()
    if kind == "mixed":
        return MixedPolicy(task)
    if task == "reach":
        raise ValueError(f"policy: {kind!r} needs an object; reach has none (use oracle, expert, random, mixed)")
    if kind == "explore_object":
        return ObjectExplorer()
    if task == "push":
        raise ValueError("policy: 'failed_grasp' needs a grasping task (grasp, reach_with_object, pick_place)")
    return FailedGrasp(ObjectExpert(task))
