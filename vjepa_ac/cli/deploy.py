"""Run V-JEPA 2-AC model-predictive control on a Franka served by `vjepa-franka-server`, and record it.

Runs on the GPU workstation; the server runs on the robot computer. Example (or `python scripts/deploy.py`):

  vjepa-deploy --controller tcp://172.16.0.1:5555 --goal-image goal.png \\
      --checkpoint runs/ac/latest.pt --max-steps 40 --out deployments/
  vjepa-deploy ... --checkpoint runs/demo/ac/latest.pt --energy runs/demo/energy.yaml   # the run's energy file

Every observation and command is recorded: the episode is written in the DROID raw layout (so deployment
data can be trained on) with a deploy_log.jsonl of every command, what the server executed and what it
refused. The episode is written even when the run stops early (Ctrl-C, lost server); the robot is stopped
first. Docs: docs/deployment.md. Bad flags and files are one line naming them (exit code 2 for flags, 1 for
files), checked before the model loads or the robot is contacted; a lost server ends the run with exit code 1.
"""
from __future__ import annotations

import argparse
import datetime
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from planning.common import ActionSpace
from planning.mpc import MPC, run_controller
from planning.registry import PLANNERS, build_planner
from robot.cli import read_token
from robot.client import CommandRefused, FrankaClient
from robot.recording import RecordingController
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

log = logging.getLogger("deploy")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(prog="vjepa-deploy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--controller", required=True, help="robot server address, tcp://HOST:PORT")
    p.add_argument("--goal-image", required=True, type=Path, help="goal image (PNG/JPEG) from the exterior camera")
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="AC checkpoint: this project's or an official V-JEPA 2-AC file (docs/checkpoints.md)")
    p.add_argument("--arch", help="architecture of an official AC file: a released model (vjepa2-ac-vitg)")
    p.add_argument("--arch-config", type=Path, help="architecture of an official AC file: YAML/JSON of the "
                                                    "official constructor kwargs, sections encoder and predictor")
    p.add_argument("--out", type=Path, default=Path("deployments"),
                   help="folder receiving the episode folder (default %(default)s)")
    p.add_argument("--max-steps", type=int, default=40, help="actions to execute (default %(default)s)")
    p.add_argument("--fps", type=float, default=4.0,
                   help="recorded frame rate: the rate the planned actions stand for (default 4, V-JEPA 2-AC's)")
    p.add_argument("--camera-extrinsics", type=float, nargs=6, metavar=("X", "Y", "Z", "RX", "RY", "RZ"),
                   help="pose of the exterior camera in the robot base frame (m, Euler 'xyz' rad, OpenCV axes), "
                        "recorded with the episode as DROID's camera_extrinsics")
    p.add_argument("--token-file", type=Path, help="shared secret of the server (default: $FRANKA_SERVER_TOKEN)")
    p.add_argument("--timeout", type=float, default=0.75,
                   help="per-request timeout, seconds; a lost server is reported after it (default %(default)s)")
    p.add_argument("--no-home", action="store_true", help="start from the current pose instead of homing first")

    g = p.add_argument_group("planner")
    g.add_argument("--planner", choices=sorted(PLANNERS), default="cem")
    g.add_argument("--horizon", type=int, help="planning horizon, steps (default: the planner's)")
    g.add_argument("--samples", type=int, help="action sequences per iteration (default: the planner's)")
    g.add_argument("--iterations", type=int, help="optimisation iterations per plan (default: the planner's)")
    g.add_argument("--execute", type=int, default=1, help="planned actions executed before re-planning")
    g.add_argument("--maxnorm", type=float, default=ActionSpace.maxnorm,
                   help="planned xyz delta box, metres per step (default %(default)s, official)")
    g.add_argument("--plan-rotation", action="store_true", help="also plan the rotation deltas (official: off)")
    g.add_argument("--seed", type=int, default=0)
    add_energy_flags(g)
    g.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (also: VJEPA_AC_DEBUG=1)")
    args = p.parse_args(argv)
    need(args.controller.startswith("tcp://"), "--controller", "tcp://HOST:PORT", args.controller)
    need(args.max_steps >= 1, "--max-steps", "a number of actions >= 1", args.max_steps)
    need(0 < args.fps < float("inf"), "--fps", "a finite frame rate > 0", args.fps)
    need(0 < args.timeout < float("inf"), "--timeout", "finite seconds > 0", args.timeout)
    check_planner_flags(args)
    check_device(args.device)
    check_arch_config(args.arch_config)
    args.energy_fn = energy_from_flags(args)  # None: the named latent distance
    return args


def load_goal_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"--goal-image {path}: no such file (expected a PNG/JPEG from the exterior camera)")
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"), dtype=np.uint8)  # a writable copy
    except (OSError, ValueError) as e:  # PIL: UnidentifiedImageError, truncated files
        raise ValueError(f"--goal-image {path}: not an image PIL can read ({one_line(e)})") from None


def build_mpc(args) -> MPC:
    from vjepa_ac.runtime import VJEPAWorldModel

    space = ActionSpace(maxnorm=args.maxnorm, plan_rotation=args.plan_rotation)
    try:
        planner = build_planner(args.planner, {"horizon": args.horizon, "samples": args.samples,
                                               "iterations": args.iterations, "action_space": space,
                                               "seed": args.seed, **energy_names(args)}, energy=args.energy_fn)
    except ValueError as exc:
        raise UsageError(f"--planner {args.planner}: {one_line(exc)}") from None
    world_model = VJEPAWorldModel.from_checkpoint(args.checkpoint, device=args.device, arch=args.arch,
                                                  arch_config=args.arch_config)
    return MPC(world_model, planner, execute=args.execute, device=args.device)


def deploy(args: argparse.Namespace) -> Path:
    """Plan and act until ``--max-steps``; returns the recorded episode folder. Raises what stopped the run
    (after stopping the arm and writing the episode)."""
    goal = load_goal_image(args.goal_image)
    token = read_token(args.token_file)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    mpc = build_mpc(args)
    try:
        client = FrankaClient(args.controller, token=token, timeout_s=args.timeout)
    except (ConnectionError, CommandRefused) as exc:
        raise ConnectionError(f"--controller {args.controller}: {exc}") from None
    log.info("connected to the %s backend at %s; limits %s", client.server_info["backend"], args.controller,
             client.server_info["limits"])
    robot = RecordingController(client)
    episode = args.out / datetime.datetime.now().strftime("deploy_%Y%m%d_%H%M%S_%f")
    error = None
    try:
        if not args.no_home:
            robot.home()
        result = run_controller(robot, mpc, goal, max_steps=args.max_steps, seed=args.seed,
                                on_step=lambda obs, action, step: log.info(
                                    "step: applied %s limited %s", np.round(step.applied, 4).tolist(),
                                    list(step.limited)))
        log.info("executed %d actions, %.2f s planning per action", result.steps, result.seconds_per_action)
    except BaseException as exc:  # noqa: BLE001  stop the arm and record the episode first; re-raised below
        error = exc
        try:
            client.stop()
        except Exception as stop_error:  # noqa: BLE001  the server may be gone; its watchdog holds the arm
            log.error("could not send stop: %s", stop_error)
    finally:
        if robot.rows:
            metadata = {"goal_image": str(args.goal_image), "checkpoint": str(args.checkpoint),
                        "energy": args.energy, "head": args.head, "controller": args.controller,
                        "planner": args.planner, "server": client.server_info,
                        "error": None if error is None else f"{type(error).__name__}: {error}"}
            extrinsics = {"rgb": args.camera_extrinsics} if args.camera_extrinsics else None
            path = robot.write_episode(episode, fps=args.fps, metadata=metadata, camera_extrinsics=extrinsics)
            Image.fromarray(goal).save(path / "goal.png")
            print(f"episode written to {path}", flush=True)
        client.close()
    if error is not None:
        raise error  # one line by the command-line wrapper (a lost server or a refusal: exit code 1)
    return episode


def _main(argv: list[str]) -> int:
    deploy(parse_args(argv))
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":  # python -m vjepa_ac.cli.deploy
    raise SystemExit(main())
