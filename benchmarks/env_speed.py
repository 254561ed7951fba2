#!/usr/bin/env python
"""Simulator throughput: env steps per second with rendering, per task and image size (one process, one thread).

    MUJOCO_GL=egl python benchmarks/env_speed.py [--steps 600] [--sizes 64 128] [--control-hz 4]

A step = clamp + IK + one control period of physics + one exterior-camera render. Actions come from the
random-exploration policy; episodes reset on truncation (reset time, incl. the goal render, is included).
Target: >= 300 steps/s at 64 px.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from envs import TASKS
from envs.franka_env import EnvConfig
from envs.policies import make_policy


def measure(task: str, size: int, steps: int, control_hz: float) -> tuple[float, float, float]:
    env = TASKS[task][1](config=EnvConfig(image_size=size, control_hz=control_hz))
    policy = make_policy(task, "random")
    obs, info = env.reset(seed=0)
    policy.reset(np.random.default_rng(0))
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        obs, _, _, truncated, info = env.step(policy(obs, info))
        if truncated:
            obs, info = env.reset()
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    tick = time.perf_counter()
    for _ in range(200):
        env.render()
    render = (time.perf_counter() - tick) / 200
    env.close()
    return steps / total, steps / cpu, render * 1e3


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=600, help="env steps timed per row")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="image sizes (pixels)")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--control-hz", type=float, default=4.0, help="control rate (physics sub-steps per step scale as 1/rate)")
    args = p.parse_args(argv)
    # steps per CPU-second (all threads of this process) does not depend on how busy the machine is.
    print("| task | image px | control Hz | env steps/s (wall) | steps per CPU-second | render ms/frame |")
    print("|---|---|---|---|---|---|")
    for task in args.tasks:
        for size in args.sizes:
            rate, cpu_rate, render_ms = measure(task, size, args.steps, args.control_hz)
            print(f"| {task} | {size} | {args.control_hz:g} | {rate:.0f} | {cpu_rate:.0f} | {render_ms:.2f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
