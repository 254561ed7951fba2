#!/usr/bin/env python
"""Success rates of the scripted policies per task, and the time to collect 50 DROID-format episodes.

    MUJOCO_GL=egl python benchmarks/env_policies.py [--episodes 50] [--collect 50]

The oracle (noise-free expert on privileged state) must solve >= 95% of reach episodes: that shows the tasks
are solvable within their step budgets and success is measured right. Noisy experts and random exploration
are the data-collection mix (successes and failures). Collection time = scripts/collect_sim.py's work for
`--collect` episodes of the default mixed policy into a temporary folder (rendering + MP4 encoding + h5).
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


def success_rate(task: str, policy: str, episodes: int) -> tuple[float, float]:
    """(success rate at the last step, rate of episodes that succeeded at any step)."""
    runs = list(collect_episodes(task, episodes, seed=1000, policy=policy, progress=False))
    return float(np.mean([r.success for r in runs])), float(np.mean([r.ever_success for r in runs]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=50, help="episodes per (task, policy) row")
    p.add_argument("--collect", type=int, default=50, help="episodes for the collection-time rows (0: skip)")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    args = p.parse_args(argv)
    print("| task | policy | episodes | success at end | success at any step |")
    print("|---|---|---|---|---|")
    for task in args.tasks:
        for policy in ("oracle", "expert", "random"):
            final, ever = success_rate(task, policy, args.episodes)
            print(f"| {task} | {policy} | {args.episodes} | {final:.0%} | {ever:.0%} |", flush=True)
    if args.collect:
        print()
        print("| task | episodes (mixed policy, 64 px) | collection wall time s | CPU time s |")
        print("|---|---|---|---|")
        for task in args.tasks:
            with tempfile.TemporaryDirectory() as out:
                start, cpu = time.perf_counter(), time.process_time()
                collect_episodes(task, args.collect, seed=0, out=out, progress=False)
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            print(f"| {task} | {args.collect} | {wall:.1f} | {cpu:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
