#!/usr/bin/env python
"""How visible is the end effector? Pixel distance to the goal image vs true distance to the goal (reach).

    MUJOCO_GL=egl python benchmarks/env_pixel_landscape.py [--goals 20] [--positions 40] [--sizes 64 128]

For each reach goal, the arm is placed (IK, goal orientation) at random positions in the reach region and the
mean absolute pixel difference to `goal_rgb` is compared with the EE-goal distance. A high Spearman rank
correlation means the camera sees the EE position well: the planning energy (feature distance to a goal
image) has something to descend. The CPU probe measured 0.47-0.54 for an earlier low-poly Franka view.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
from scipy.stats import spearmanr

from envs import FrankaReachEnv
from envs.scene import SceneConfig
from envs.tasks import REACH_HIGH, REACH_LOW


def landscape(size: int, goals: int, positions: int) -> tuple[float, float]:
    env = FrankaReachEnv(image_size=size)
    rng = np.random.default_rng(0)
    per_goal, pooled_pix, pooled_dist = [], [], []
    for g in range(goals):
        _, info = env.reset(seed=g)
        goal_rgb, goal_pos = info["goal_rgb"].astype(np.float32), env.goal_state[:3]
        _, goal_rot = env.controller.forward(env.goal_config.joints)
        pix, dist = [], []
        while len(pix) < positions:
            pos = rng.uniform(REACH_LOW, REACH_HIGH)
            joints, err, _ = env.controller.solve_ik(env.goal_config.joints, pos, goal_rot, iterations=100)
            if err > 1e-3:
                continue
            env.set_config(SceneConfig(joints, 0.0))
            pix.append(np.abs(env.render().astype(np.float32) - goal_rgb).mean())
            dist.append(np.linalg.norm(pos - goal_pos))
        per_goal.append(spearmanr(pix, dist).statistic)
        pooled_pix += pix
        pooled_dist += dist
    env.close()
    return float(np.mean(per_goal)), float(spearmanr(pooled_pix, pooled_dist).statistic)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--goals", type=int, default=20)
    p.add_argument("--positions", type=int, default=40, help="arm positions per goal")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    args = p.parse_args(argv)
    print("| image px | goals x positions | Spearman (per goal, mean) | Spearman (pooled) |")
    print("|---|---|---|---|")
    for size in args.sizes:
        per_goal, pooled = landscape(size, args.goals, args.positions)
        print(f"| {size} | {args.goals} x {args.positions} | {per_goal:.2f} | {pooled:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
