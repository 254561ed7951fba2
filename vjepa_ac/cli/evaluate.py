"""Closed-loop evaluation of a world model + planner on a simulator task (planning.evaluate does the work).

    vjepa-evaluate --checkpoint runs/ac/latest.pt --task FrankaReach-v0 --episodes 30 --seed 0 \\
        --out results/reach
    vjepa-evaluate --checkpoint runs/demo/ac/latest.pt --energy runs/demo/energy.yaml ...   # a run's energy file
    vjepa-evaluate --world-model oracle --task FrankaReach-v0 --episodes 30 --out results/oracle
    vjepa-evaluate --checkpoint runs/ac/latest.pt --task FrankaPickPlace-v0 --env-options '{object: cup}' \\
        --out results/pick_place_cup

Writes OUT/report.json (success rate with 95% Wilson interval, final distances, planning time per action),
OUT/episode_XXX.mp4 (observation | goal) and OUT/energy_landscape.{png,json}. The planner sees the current
image and state and the goal image; ``--world-model oracle`` instead plans on true end-effector positions of
the current and goal observations (ORACLE mode: tests the loop, not a model; it moves the end effector but
cannot see the object nor plan the gripper, see docs/envs.md). Tasks with sub-goals (FrankaPickPlace-v0) are
planned toward each sub-goal image for its scheduled steps, then the final goal; report.json has per-stage
results.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from planning.common import ActionSpace
from planning.registry import PLANNERS, build_planner
from vjepa_ac.cli import (
    ArgumentParser,
    UsageError,
    add_energy_flags,
    check_arch_config,
    check_device,
    check_planner_flags,
    energy_from_flags,
    energy_names,
    need,
    one_line,
    run_cli,
)


def parse_args(argv=None):
    p = ArgumentParser(prog="vjepa-evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="AC checkpoint: this project's or an official V-JEPA 2-AC file "
                                        "(docs/checkpoints.md)")
    p.add_argument("--arch", help="architecture of an official AC file: a released model (vjepa2-ac-vitg)")
    p.add_argument("--arch-config", help="architecture of an official AC file: YAML/JSON of the official "
                                         "constructor kwargs, sections encoder and predictor")
    p.add_argument("--world-model", choices=["vjepa", "oracle"], default="vjepa",
                   help="vjepa: the checkpoint's encoder + predictor; oracle: true EE positions (ORACLE mode)")
    p.add_argument("--task", default="FrankaReach-v0", help="gymnasium id registered by `import envs`")
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--seed", type=int, default=0, help="episode i uses env seed SEED+i")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--max-steps", type=int, default=None, help="env steps per episode (default: the task's)")
    p.add_argument("--env-options", type=env_options, default={}, metavar="YAML",
                   help="gymnasium.make options as a YAML mapping, e.g. '{image_size: 128, control_hz: 10}'")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="run the world model under bfloat16 autocast (CUDA)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's; 1 is fastest on a loaded shared machine)")
    p.add_argument("--videos", type=int, default=2, help="save the first N episodes as videos")
    p.add_argument("--video-format", choices=["mp4", "gif"], default="mp4")
    p.add_argument("--no-landscape", action="store_true", help="skip the energy-landscape plot")
    p.add_argument("--landscape-grid", type=int, default=5,
                   help="grid points per axis of the landscape over +-7.5 cm (official notebook: 5)")
    p.add_argument("--crop-aspect", type=float, default=None,
                   help="center-crop aspect for encoding (default: the checkpoint's training value)")
    # planner
    p.add_argument("--planner", choices=sorted(PLANNERS), default="cem")
    p.add_argument("--horizon", type=int, default=None, help="planning horizon, steps (default: 2)")
    p.add_argument("--samples", type=int, default=None,
                   help="candidates per iteration (default: cem/mppi 400, gradient 8 parallel starts)")
    p.add_argument("--iterations", type=int, default=None, help="default: cem/mppi 10, gradient 30")
    p.add_argument("--topk", type=int, default=None, help="CEM elites (default: 10)")
    p.add_argument("--momentum-mean", type=float, default=None, help="CEM mean momentum, xyz/rotation (default: 0.15)")
    p.add_argument("--momentum-std", type=float, default=None, help="CEM std momentum, xyz/rotation (default: 0.15)")
    p.add_argument("--temperature", type=float, default=None, help="MPPI temperature, x energy std (default: 0.1)")
    p.add_argument("--lr", type=float, default=None, help="gradient planner Adam step size (default: 0.01)")
    p.add_argument("--maxnorm", type=float, default=0.05, help="max xyz delta per coordinate and step (m)")
    p.add_argument("--plan-rotation", action="store_true", help="plan all 7 dims (official: rotation fixed 0)")
    p.add_argument("--max-rotation", type=float, default=0.15, help="rotation delta box with --plan-rotation")
    add_energy_flags(p)
    p.add_argument("--warm-start", action="store_true", help="start from the previous plan, shifted")
    p.add_argument("--stop-std", type=float, default=None,
                   help="CEM early exit: stop once every xyz sampling std is below this (m); default: off (official)")
    p.add_argument("--execute", type=int, default=1, help="planned actions executed before re-planning")
    p.add_argument("--planner-seed", type=int, default=0)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (also: VJEPA_AC_DEBUG=1)")
    args = p.parse_args(argv)
    need(args.episodes >= 1, "--episodes", "an integer >= 1", args.episodes)
    need(args.max_steps is None or args.max_steps >= 1, "--max-steps", "an integer >= 1", args.max_steps)
    need(args.videos >= 0, "--videos", "an integer >= 0", args.videos)
    need(args.landscape_grid >= 2, "--landscape-grid", "an integer >= 2", args.landscape_grid)
    need(args.threads is None or args.threads >= 1, "--threads", "an integer >= 1", args.threads)
    need(args.crop_aspect is None or 0 < args.crop_aspect < float("inf"), "--crop-aspect", "a finite ratio > 0",
         args.crop_aspect)
    check_planner_flags(args)
    check_device(args.device)
    check_arch_config(args.arch_config)
    args.energy_fn = energy_from_flags(args)  # None: the named latent distance
    return args


def planner_from_flags(args):
    """The chosen planner; flags left unset keep the planner's own defaults (planning.registry)."""
    space = ActionSpace(maxnorm=args.maxnorm, max_rotation=args.max_rotation, plan_rotation=args.plan_rotation)
    try:
        return build_planner(args.planner, {
            "horizon": args.horizon, "samples": args.samples, "iterations": args.iterations, "topk": args.topk,
            "momentum_mean": args.momentum_mean, "momentum_std": args.momentum_std,
            "temperature": args.temperature, "lr": args.lr, "action_space": space,
            **energy_names(args), "warm_start": args.warm_start, "stop_std": args.stop_std,
            "seed": args.planner_seed},
            energy=args.energy_fn)
    except ValueError as exc:
        raise UsageError(f"--planner {args.planner}: {one_line(exc)}") from None


def make_env(task: str, options: dict):
    """``gym.make(task, **options)``; an unknown task or option, or a bad option value, is a usage error."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the Franka tasks)

    try:
        return gym.make(task, **options)
    except gym.error.Error as exc:
        raise UsageError(f"--task: {one_line(exc)}") from None
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--env-options {options}: {task}: {one_line(exc)}") from None


def env_options(text: str) -> dict:
    """``--env-options`` value: a YAML mapping (the dialect of every config override)."""
    try:
        options = yaml.safe_load(text)
    except yaml.YAMLError:
        options = None
    if not isinstance(options, dict):
        raise argparse.ArgumentTypeError(f"expected a YAML mapping such as '{{image_size: 128}}', got {text!r}")
    return options


def _main(argv: list[str]) -> int:
    args = parse_args(argv)
    from planning.evaluate import evaluate
    from planning.mpc import MPC
    from planning.world_model import OracleWorldModel

    make_env(args.task, args.env_options).close()  # bad options fail here, before the model loads
    planner = planner_from_flags(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.world_model == "oracle":
        world_model, oracle = OracleWorldModel(), True
    else:
        if not args.checkpoint:
            raise UsageError("--checkpoint: required with --world-model vjepa (or use --world-model oracle)")
        from vjepa_ac.runtime import VJEPAWorldModel

        world_model = VJEPAWorldModel.from_checkpoint(args.checkpoint, device=args.device, arch=args.arch,
                                                      arch_config=args.arch_config,
                                                      crop_aspect=args.crop_aspect,
                                                      amp_dtype=torch.bfloat16 if args.bf16 else None)
        oracle = False
    mpc = MPC(world_model, planner, execute=args.execute, oracle=oracle, device=args.device)
    options = args.env_options
    metadata = {"task": args.task, "world_model": args.world_model, "checkpoint": args.checkpoint,
                "arch": args.arch, "arch_config": args.arch_config, "energy": args.energy, "head": args.head,
                "env_options": options, "torch_threads": torch.get_num_threads()}
    report = evaluate(lambda: make_env(args.task, options), mpc, args.episodes, args.seed, args.out,
                      videos=args.videos, video_format=args.video_format, max_steps=args.max_steps,
                      landscape=not args.no_landscape, landscape_grid=args.landscape_grid, metadata=metadata)
    low, high = report["success_ci95"]
    print(f"{args.task} [{args.world_model}, {args.planner}]: success {report['successes']}/{args.episodes} "
          f"= {report['success_rate']:.1%} (95% CI {low:.1%}-{high:.1%}), final distance "
          f"{report['final_distance_m']['mean'] * 100:.1f} cm mean, planning "
          f"{report['planning_seconds_per_action']['mean']:.3f} s/action -> {Path(args.out) / 'report.json'}")
    for name, stage in report.get("stage_reached_rate", {}).items():
        if name != "goal":
            print(f"  {name}: reached {stage['reached']}/{stage['episodes']} by the end of its steps")
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":  # python -m vjepa_ac.cli.evaluate
    raise SystemExit(main())
