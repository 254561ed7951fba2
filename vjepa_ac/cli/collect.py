"""Collect scripted simulator episodes in DROID's raw layout (trajectory.h5 + metadata JSON + MP4 per camera).

    vjepa-collect --task push --episodes 50 --out data/sim/push --seed 0
    vjepa-collect --mix reach:200,grasp:100,pick_place:100,push:100,explore_object:100 \\
        --out data/sim/mix --objects cube,cup --random-colors

With --task, episodes go to <out>/<task>_<index>/; with --mix (COMPONENT:COUNT items, or a YAML file of
`component: count`) to <out>/<component>/<task>_<index>/. A component is a task (its mixed policy), a
task/policy pair (e.g. grasp/failed_grasp), explore_object (wandering around the object) or explore (the whole
workspace). Episodes are deterministic for a seed; folders already complete are kept, so an interrupted run
resumes. The recording rate (and the fps stored with each episode) is the control rate. See docs/envs.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from vjepa_ac.cli import ArgumentParser, UsageError, need, one_line, run_cli


def parse_args(argv=None) -> argparse.Namespace:
    from envs.policies import POLICY_KINDS

    p = ArgumentParser(prog="vjepa-collect", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--task", help="reach | push | grasp | reach_with_object | pick_place (or a gymnasium id)")
    what.add_argument("--mix", help="COMPONENT:COUNT,... or a .yaml file, e.g. reach:200,grasp/oracle:50,explore_object:100")
    p.add_argument("--episodes", type=int, help="number of episodes to collect (with --task)")
    p.add_argument("--out", required=True, help="output folder; one sub-folder per episode")
    p.add_argument("--seed", type=int, default=0, help="base seed; every episode's seed derives from it")
    p.add_argument("--policy", default="mixed", choices=POLICY_KINDS,
                   help="with --task: oracle, expert (noisy), failed_grasp, explore_object, random, or mixed "
                        "(default: per episode one of them, the task's mix in envs.policies.MIXES)")
    p.add_argument("--image-size", type=int, default=64, help="square render size in pixels (default 64)")
    p.add_argument("--control-hz", type=float, default=4.0,
                   help="control and recording rate in Hz (default 4, V-JEPA 2-AC's 4 fps; 4-15 sensible)")
    p.add_argument("--max-steps", type=int, default=None, help="steps per episode (default: the task's budget)")
    p.add_argument("--cameras", default="ext1",
                   help="comma-separated cameras to record: one exterior (ext1 or ext2) and optionally wrist")
    p.add_argument("--objects", default="cube", help="object shapes to draw from per episode: cube, cup or cube,cup")
    p.add_argument("--random-colors", action="store_true", help="a random object colour per episode")
    p.add_argument("--camera-jitter", type=float, default=0.0,
                   help="move the exterior camera per episode by up to this many metres per axis (default 0)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (also: VJEPA_AC_DEBUG=1)")
    args = p.parse_args(argv)
    if args.task and args.episodes is None:
        p.error("--task needs --episodes")
    need(args.episodes is None or args.episodes >= 1, "--episodes", "a number of episodes >= 1", args.episodes)
    need(not Path(args.out).exists() or Path(args.out).is_dir(), "--out", "a folder (new or existing)", args.out)
    return args


def settings(args) -> dict:
    """The collection settings from the flags, each checked before the first episode (``UsageError`` naming the
    flag)."""
    import yaml

    from envs.collect import SceneVariation, env_config, parse_mix, task_name

    def checked(flag, make):
        try:
            return make()
        except (ValueError, OSError, yaml.YAMLError) as e:
            raise UsageError(f"{flag}: {one_line(e)}") from None

    objects = tuple(o.strip() for o in args.objects.split(",") if o.strip())
    cameras = tuple(c.strip() for c in args.cameras.split(",") if c.strip())
    if args.mix:
        checked(f"--mix {args.mix}", lambda: parse_mix(args.mix))
    else:
        checked("--task", lambda: task_name(args.task))
    checked("--image-size/--control-hz/--max-steps/--cameras",
            lambda: env_config(args.image_size, args.control_hz, args.max_steps, cameras))
    variation = checked("--objects/--camera-jitter",
                        lambda: SceneVariation(objects, args.random_colors, args.camera_jitter))
    return {"image_size": args.image_size, "control_hz": args.control_hz, "max_steps": args.max_steps,
            "cameras": cameras, "variation": variation}


def _main(argv: list[str]) -> int:
    args = parse_args(argv)
    from envs.collect import collect_episodes, collect_mix

    start = time.perf_counter()
    common = settings(args)
    if args.mix:
        paths = collect_mix(args.mix, args.out, args.seed, **common)
    else:
        paths = collect_episodes(args.task, args.episodes, args.seed, out=args.out, policy=args.policy, **common)
    print(f"{len(paths)} episodes in {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":  # python -m vjepa_ac.cli.collect
    raise SystemExit(main())
