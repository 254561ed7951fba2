"""Collect OGBench visual-cube episodes with OGBench's own scripted oracles, in DROID's raw layout.

    vjepa-collect-ogbench --env visual-cube-single-v0 --episodes 100 --out data/ogbench/cube_single
    vjepa-collect-ogbench --env visual-cube-double-v0 --episodes 50 --oracle markov --out data/ogbench/cube_double

Needs the optional dependency: pip install 'vjepa-ac[ogbench]'. Episodes go to <out>/<env>_<index>/ (trajectory.h5
with the 7-D proprioceptive state, metadata JSON, one MP4); the recording rate is 20 Hz / --action-repeat.
Episodes are deterministic for a seed; folders already complete are kept, so an interrupted run resumes.
See docs/ogbench.md.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from vjepa_ac.cli import ArgumentParser, need, run_cli

ENV_CHOICES = ("visual-cube-single-v0", "visual-cube-double-v0")


def parse_args(argv=None) -> argparse.Namespace:
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; read when mujoco is imported
    p = ArgumentParser(prog="vjepa-collect-ogbench", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="visual-cube-single-v0", choices=ENV_CHOICES, help="OGBench env id")
    p.add_argument("--episodes", type=int, required=True, help="number of episodes to collect")
    p.add_argument("--out", required=True, help="output folder; one sub-folder per episode")
    p.add_argument("--seed", type=int, default=0, help="base seed; every episode's seed derives from it")
    p.add_argument("--oracle", default="plan", choices=("plan", "markov"),
                   help="OGBench oracle: plan (its 'play' data: noisy pre-computed plans) or markov (its 'noisy' "
                        "data: closed loop with Gaussian action noise)")
    p.add_argument("--noise", type=float, default=0.1, help="oracle noise level (OGBench's default 0.1)")
    p.add_argument("--frames", type=int, default=40, help="recorded frames per episode (default 40 = 10 s at 4 Hz)")
    p.add_argument("--image-size", type=int, default=64, help="square render size in pixels (default 64)")
    p.add_argument("--action-repeat", type=int, default=5,
                   help="native 20 Hz steps per recorded frame (default 5: 4 Hz, V-JEPA 2-AC's rate)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (also: VJEPA_AC_DEBUG=1)")
    args = p.parse_args(argv)
    need(args.episodes >= 1, "--episodes", "a number of episodes >= 1", args.episodes)
    need(args.frames >= 2, "--frames", "a number of frames >= 2", args.frames)
    need(args.image_size >= 16, "--image-size", "a size >= 16 pixels", args.image_size)
    need(args.action_repeat >= 1, "--action-repeat", "an integer >= 1", args.action_repeat)
    need(args.noise >= 0, "--noise", "a noise level >= 0", args.noise)
    need(not Path(args.out).exists() or Path(args.out).is_dir(), "--out", "a folder (new or existing)", args.out)
    return args


def _main(argv: list[str]) -> int:
    args = parse_args(argv)
    from envs.ogbench_collect import collect_ogbench

    start = time.perf_counter()
    paths = collect_ogbench(args.env, args.episodes, args.out, args.seed, oracle=args.oracle, noise=args.noise,
                            image_size=args.image_size, action_repeat=args.action_repeat, frames=args.frames)
    print(f"{len(paths)} episodes in {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":  # python -m vjepa_ac.cli.collect_ogbench
    raise SystemExit(main())
