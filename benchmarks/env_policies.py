#!/usr/bin/env python
"""Success rates of the scripted policies per task and object, and collection speed (episodes per second).

    MUJOCO_GL=egl python benchmarks/env_policies.py [--episodes 30] [--collect 30] [--objects cube cup]

The oracle (noise-free expert on privileged state) must solve >= 95% of every task within its step budget: that
shows the tasks are solvable and success is measured right; for pick-and-place it also reports the last step
at which the oracle met each sub-goal, to check the schedule (`subgoal_steps`) leaves it a margin. Noisy
experts, botched grasps, object exploration and random exploration are the data-collection mix (successes
and failures). Collection speed = scripts/collect_sim.py's work (render + MP4 + h5) for `--collect` episodes
of each task's mixed policy into a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from envs import TASKS
from envs.collect import collect_episodes
from envs.policies import MIXES, make_policy


def rates(task: str, shape: str, kind: str, episodes: int) -> dict:
    """Success at the last step, at any step, and (with sub-goals) the step each sub-goal was first met."""
    env = TASKS[task][1](object=shape)
    policy = make_policy(task, kind)
    final, ever, met = [], [], []
    for i in range(episodes):
        obs, info = env.reset(seed=1000 + i)
        policy.reset(np.random.default_rng(1000 + i))
        first = [None] * len(env.subgoal_steps)
        succeeded, truncated = False, False
        while not truncated:
            obs, _, _, truncated, info = env.step(policy(obs, info))
            succeeded |= info["is_success"]
            first = [f or (env.steps if ok else None) for f, ok in zip(first, info["subgoal_success"])]
        final.append(info["is_success"])
        ever.append(succeeded)
        met.append(first)
    env.close()
    return {"final": np.mean(final), "ever": np.mean(ever), "met": met, "schedule": np.cumsum(env.subgoal_steps)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=30, help="episodes per (task, object, policy) row")
    p.add_argument("--collect", type=int, default=30, help="episodes per collection-speed row (0: skip)")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--objects", nargs="+", default=["cube", "cup"], choices=["cube", "cup"])
    p.add_argument("--policies", nargs="+", default=["oracle", "expert", "failed_grasp", "explore_object", "random"])
    args = p.parse_args(argv)
    print("| task | object | policy | episodes | success at end | success at any step | oracle: sub-goals met "
          "by step (latest; schedule) |")
    print("|---|---|---|---|---|---|---|")
    for task in args.tasks:
        for shape in args.objects if task != "reach" else ["-"]:
            for kind in args.policies:
                if kind not in MIXES[task] and kind != "oracle":
                    continue  # e.g. reach has no object to explore; push has no grasp to botch
                row = rates(task, "cube" if shape == "-" else shape, kind, args.episodes)
                schedule = ""
                if len(row["schedule"]) and kind == "oracle":  # latest step a sub-goal was first met
                    worst = [max((m[k] or 10 ** 6) for m in row["met"]) for k in range(len(row["schedule"]))]
                    worst = ["not always" if w == 10 ** 6 else str(w) for w in worst]
                    schedule = f"{' / '.join(worst)}; switch at {' / '.join(map(str, row['schedule']))}"
                print(f"| {task} | {shape} | {kind} | {args.episodes} | {row['final']:.0%} | {row['ever']:.0%} | "
                      f"{schedule} |", flush=True)
    if args.collect:
        print()
        print("| task | episodes (mixed policy, 64 px, cube) | steps/episode | wall s | episodes/s | CPU s |")
        print("|---|---|---|---|---|---|")
        for task in args.tasks:
            with tempfile.TemporaryDirectory() as out:
                start, cpu = time.perf_counter(), time.process_time()
                collect_episodes(task, args.collect, seed=0, out=out, progress=False)
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            steps = TASKS[task][1].default_max_steps
            print(f"| {task} | {args.collect} | {steps} | {wall:.1f} | {args.collect / wall:.2f} | {cpu:.1f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
