"""Reference policies evaluated like a planner: a uniform random policy and any scripted ``policy(obs, info)``.

A planner's success rate only means something next to what no model (random actions in the planner's own
action box) and a privileged expert (the scripted oracle of `envs.policies`, which reads the goal pose) reach
on the same episode seeds. `evaluate_policy` returns the same summary fields as `planning.evaluate.evaluate`.
"""
from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from planning.common import ActionSpace
from planning.evaluate import wilson_interval


class UniformRandomPolicy:
    """Actions drawn uniformly from the planner's action box (xyz, and rotations if planned; gripper still)."""

    name = "random"

    def __init__(self, action_space: ActionSpace | None = None):
        self.space = action_space or ActionSpace()

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, obs: dict, info: dict) -> np.ndarray:
        action = np.zeros(7, dtype=np.float32)
        action[:3] = self.rng.uniform(-self.space.maxnorm, self.space.maxnorm, 3)
        if self.space.plan_rotation:
            action[3:6] = self.rng.uniform(-self.space.max_rotation, self.space.max_rotation, 3)
        return action


def evaluate_policy(make_env, policy, episodes: int, seed: int, max_steps: int | None = None,
                    progress: bool = True, desc: str | None = None) -> dict:
    """Run `policy` (``reset(rng)``, ``policy(obs, info) -> action``) for `episodes` episodes with env seeds
    ``seed + i``; stop an episode on success or truncation. Success comes from the simulator."""
    if episodes < 1:
        raise ValueError(f"evaluate_policy: episodes must be >= 1, got {episodes}")
    env = make_env()
    results, seconds = [], []
    bar = tqdm(range(episodes), desc=desc or getattr(policy, "name", "policy"), unit="ep", disable=not progress)
    for i in bar:
        obs, info = env.reset(seed=seed + i)
        policy.reset(np.random.default_rng(seed + i))
        steps, success, done = 0, bool(info["is_success"]), bool(info["is_success"])
        while not done:
            start = time.perf_counter()
            action = policy(obs, info)
            seconds.append(time.perf_counter() - start)
            obs, _, terminated, truncated, info = env.step(action)
            steps += 1
            success = bool(info["is_success"])
            done = success or terminated or truncated or (max_steps is not None and steps >= max_steps)
        results.append((success, steps, float(info["distance"])))
        bar.set_postfix(success=f"{sum(r[0] for r in results)}/{len(results)}")
    env.close()
    successes = sum(r[0] for r in results)
    return {
        "policy": getattr(policy, "name", type(policy).__name__),
        "episodes": episodes,
        "seed": seed,
        "successes": successes,
        "success_rate": successes / episodes,
        "success_ci95": list(wilson_interval(successes, episodes)),
        "final_distance_m": {"mean": float(np.mean([r[2] for r in results])),
                             "median": float(np.median([r[2] for r in results]))},
        "steps": {"mean": float(np.mean([r[1] for r in results]))},
        "seconds_per_action": float(np.mean(seconds)) if seconds else 0.0,
        "per_episode": [{"seed": seed + i, "success": s, "steps": n, "final_distance_m": d}
                        for i, (s, n, d) in enumerate(results)],
    }
