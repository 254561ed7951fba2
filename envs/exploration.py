"""Workspace-covering exploration data: the arm visits uniformly random targets in the whole safety box.

Scripted task data (envs.policies) concentrates where tasks start and end; a world model and a state head
trained on it regress to the data mean elsewhere, and a planner that overshoots the task region then finds no
way back (measured in docs/results.md). `WorkspaceExplorer` drives the end effector to one random target after
another, anywhere in the controller's workspace box, at a random speed with Gaussian noise; rotations stay
fixed and the gripper open, as in the reach task. `envs.collect.collect_exploration` writes its episodes
(or the `explore` component of a mix).
"""
from __future__ import annotations

import numpy as np

from envs.controller import ControllerConfig
from envs.policies import STEP, Policy

MARGIN = np.array([0.02, 0.02, 0.025])  # stay this far inside the safety box (metres)


class WorkspaceExplorer(Policy):
    """Random targets in the controller's workspace box, approached at a random per-episode speed."""

    name = "workspace_explorer"

    def __init__(self, low=None, high=None, noise: float = 0.2, retarget_prob: float = 0.08):
        box = ControllerConfig()
        self.low = np.asarray(box.workspace_low if low is None else low, float) + (MARGIN if low is None else 0)
        self.high = np.asarray(box.workspace_high if high is None else high, float) - (MARGIN if high is None else 0)
        self.noise, self.retarget_prob = noise, retarget_prob

    def reset(self, rng):
        super().reset(rng)
        self.speed = rng.uniform(0.4, 1.0) * STEP
        self.target = rng.uniform(self.low, self.high)

    def __call__(self, obs, info):
        position = np.asarray(obs["state"][:3], float)
        if np.linalg.norm(self.target - position) < 0.02 or self.rng.random() < self.retarget_prob:
            self.target = self.rng.uniform(self.low, self.high)
        delta = self.target - position
        norm = np.linalg.norm(delta)
        move = delta if norm <= self.speed else delta * self.speed / norm
        move = move + self.noise * STEP * self.rng.standard_normal(3)
        return np.concatenate([move, np.zeros(4)])
