"""Collect scripted simulator episodes in DROID's raw layout (trajectory.h5 + metadata JSON + MP4 per camera).

    vjepa-collect --task push --episodes 50 --out data/sim/push --seed 0

Episodes are written to <out>/<task>_<index>/ and are deterministic for a seed; folders already complete are
kept, so an interrupted run resumes. The recording rate (and the fps stored with each episode) is the control
rate. See docs/envs.md.
"""
from __future__ import annotations

import argparse
import os
import time

from vjepa_ac.cli import ArgumentParser, run_cli


def parse_args(argv=None) -> argparse.Namespace:
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; read when mujoco is imported
    from envs.policies import POLICY_KINDS

    p = ArgumentParser(prog="vjepa-collect", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True,
                   help="reach | push | pick_place (or the gymnasium id, e.g. FrankaPush-v0)")
    p.add_argument("--episodes", type=int, required=True, help="number of episodes to collect")
    p.add_argument("--out", required=True, help="output folder; one sub-folder per episode")
    p.add_argument("--seed", type=int, default=0, help="base seed; episode i uses a seed derived from (seed, i)")
    p.add_argument("--policy", default="mixed", choices=POLICY_KINDS,
                   help="oracle: noise-free expert; expert: noisy expert (speed, noise and random bursts vary); "
                        "random: smoothed random exploration; mixed (default): per episode 15%% oracle, 55%% "
                        "noisy expert, 30%% random — successes and failures, like DROID's play data")
    p.add_argument("--image-size", type=int, default=64, help="square render size in pixels (default 64)")
    p.add_argument("--control-hz", type=float, default=4.0,
                   help="control and recording rate in Hz (default 4, V-JEPA 2-AC's 4 fps; 4-15 sensible)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="steps per episode (default: the task's budget, reach 30 / push 60 / pick_place 80)")
    p.add_argument("--cameras", default="ext1",
                   help="comma-separated cameras to record: one exterior (ext1 or ext2) and optionally wrist")
    return p.parse_args(argv)


def _main(argv: list[str]) -> int:
    args = parse_args(argv)
    from envs.collect import collect_episodes

    start = time.perf_counter()
    paths = collect_episodes(args.task, args.episodes, args.seed, out=args.out, policy=args.policy,
                             image_size=args.image_size, control_hz=args.control_hz, max_steps=args.max_steps,
                             cameras=tuple(c.strip() for c in args.cameras.split(",") if c.strip()))
    print(f"{len(paths)} episodes in {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)
