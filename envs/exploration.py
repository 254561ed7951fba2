"""Workspace-covering exploration data: the arm visits uniformly random targets in the whole safety box.

Scripted task data (envs.policies) concentrates where tasks start and end; a world model and a state head
trained on it regress to the data mean elsewhere, and a planner that overshoots the task region then finds no
way back (measured in docs/results.md). `WorkspaceExplorer` drives the end effector to one random target after
another, anywhere in the controller's workspace box, at a random speed with Gaussian noise; rotations stay
fixed and the gripper open, as in the reach task.

    collect_exploration("data/explore", episodes=100, seed=0)   # DROID raw layout, explore_<index>/
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from envs.collect import episode_seed, run_episode, write_sim_episode
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


def collect_exploration(out: str | Path, episodes: int, seed: int = 0, image_size: int = 64,
                        control_hz: float = 4.0, max_steps: int | None = None, progress: bool = True) -> list[Path]:
    """`episodes` WorkspaceExplorer episodes from FrankaReach-v0 starts, written to ``<out>/explore_<index>``
    (DROID raw layout; folders already complete are kept)."""
    from envs.franka_env import EnvConfig
    from envs.tasks import FrankaReachEnv

    out = Path(out)
    paths = [out / f"explore_{i:05d}" for i in range(episodes)]
    todo = [i for i, p in enumerate(paths) if not (p / "trajectory.h5").exists()]
    if not todo:
        return paths
    env = FrankaReachEnv(config=EnvConfig(image_size=image_size, control_hz=control_hz, max_steps=max_steps))
    policy = WorkspaceExplorer()
    try:
        for i in tqdm(todo, desc="collect exploration", unit="ep", disable=not progress):
            write_sim_episode(run_episode(env, policy, episode_seed(seed, 1_000_000 + i)), paths[i])
    finally:
        env.close()
    return paths
