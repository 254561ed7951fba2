"""Robot-side server: serve a Franka (simulated or real) to `vjepa-deploy` over ZeroMQ, behind safety limits.

Run it on the computer wired to the robot (console script `vjepa-franka-server`, or
`python scripts/franka_server.py`). Examples:

  vjepa-franka-server --backend sim --task FrankaReach-v0          # simulator, loopback only
  FRANKA_SERVER_TOKEN=... vjepa-franka-server --backend franky --robot-ip 172.16.0.2 \\
      --camera rgb=rtsp://10.0.0.5/stream --host 0.0.0.0 --max-translation 0.03 --watchdog-ms 300

Protocol and safety settings: docs/deployment.md. Stop with Ctrl-C (or SIGTERM): the arm is stopped first.
Bad flags or settings are one line naming the flag or file (exit code 2), before anything connects to a robot;
`--debug` (or VJEPA_AC_DEBUG=1) shows the traceback.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import threading
from pathlib import Path

from droid_data.cli import ArgumentParser, UsageError, one_line, run_cli
from robot.safety import SafetyLimits
from robot.server import FrankaServer

DEFAULTS = SafetyLimits()
log = logging.getLogger("franka_server")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(prog="vjepa-franka-server", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("sim", "franky"), required=True,
                   help="'sim': the MuJoCo arm of envs/; 'franky': a real Franka through franky-control")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this computer only; 0.0.0.0 for the network, "
                        "then set a token)")
    p.add_argument("--port", type=int, default=5555, help="TCP port (0: any free port, printed at start)")
    p.add_argument("--image-size", type=int, default=256,
                   help="side of the square observation images, pixels: sim renders, camera crops (default 256)")
    p.add_argument("--token-file", type=Path,
                   help="file holding the shared secret clients must send (default: $FRANKA_SERVER_TOKEN, else none)")

    s = p.add_argument_group("safety limits (enforced here, on the robot side; flags override --limits)")
    s.add_argument("--limits", type=Path,
                   help="YAML file with the cell's safety settings (keys: the field names of robot.safety.SafetyLimits)")
    s.add_argument("--workspace-low", type=float, nargs=3, metavar=("X", "Y", "Z"),
                   help=f"lower corner of the allowed end-effector box, metres, robot base frame "
                        f"(default {DEFAULTS.workspace_low})")
    s.add_argument("--workspace-high", type=float, nargs=3, metavar=("X", "Y", "Z"),
                   help=f"upper corner of the box (default {DEFAULTS.workspace_high})")
    s.add_argument("--max-translation", type=float,
                   help=f"max end-effector translation per step, metres (default {DEFAULTS.max_translation}, "
                        f"DROID at 15 Hz)")
    s.add_argument("--max-rotation", type=float,
                   help=f"max rotation angle per step, radians (default {DEFAULTS.max_rotation}, DROID at 15 Hz)")
    s.add_argument("--gripper-range", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help=f"allowed gripper closedness, 0 open, 1 closed (default "
                        f"{DEFAULTS.gripper_min} {DEFAULTS.gripper_max})")
    s.add_argument("--max-rate-hz", type=float,
                   help=f"motion commands faster than this are refused (default {DEFAULTS.max_rate_hz})")
    s.add_argument("--watchdog-ms", type=float,
                   help=f"stop the arm when no motion command came for this long (default {DEFAULTS.watchdog_ms})")
    s.add_argument("--home-speed-factor", type=float,
                   help=f"'home' walks at this fraction of --max-translation/--max-rotation per step "
                        f"(default {DEFAULTS.home_speed_factor})")

    g = p.add_argument_group("sim backend")
    g.add_argument("--task", default="FrankaReach-v0", help="envs task id (default %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seed of the task's reset (start and goal) (default 0)")
    g.add_argument("--control-hz", type=float, help="sim control rate, Hz (default: the env's, 4 Hz as V-JEPA 2-AC)")

    f = p.add_argument_group("franky backend")
    f.add_argument("--robot-ip", help="FCI address of the Franka control box, e.g. 172.16.0.2")
    f.add_argument("--dynamics-factor", type=float, default=0.05,
                   help="fraction of the arm's velocity/acceleration/jerk limits franky may use (default %(default)s)")
    f.add_argument("--control-period", type=float, default=0.25,
                   help="seconds a step waits for the arm to arrive before replying (default 0.25: one 4 fps frame)")
    f.add_argument("--camera", action="append", default=[], metavar="NAME=SOURCE",
                   help="camera for observations, opened with PyAV (a device, stream URL or file); NAME 'rgb' is the "
                        "exterior camera the planner sees, others must end in '_rgb'. Repeat for more cameras.")
    f.add_argument("--camera-format", help="PyAV input format for device cameras, e.g. v4l2 (default: guess)")

    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (also: VJEPA_AC_DEBUG=1)")
    args = p.parse_args(argv)
    check_flags(args)
    return args


def check_flags(args) -> None:
    """The flags safety limits do not cover; every message names the flag, what it takes and what it got."""
    def need(ok: bool, flag: str, expected: str, actual) -> None:
        if not ok:
            raise UsageError(f"{flag}: expected {expected}, got {actual!r}")

    need(0 <= args.port <= 65535, "--port", "0..65535", args.port)
    need(args.image_size >= 1, "--image-size", "a positive number of pixels", args.image_size)
    need(args.control_hz is None or (math.isfinite(args.control_hz) and args.control_hz > 0), "--control-hz",
         "a finite rate > 0", args.control_hz)
    need(math.isfinite(args.dynamics_factor) and 0 < args.dynamics_factor <= 1, "--dynamics-factor",
         "a fraction in (0, 1]", args.dynamics_factor)
    need(math.isfinite(args.control_period) and args.control_period > 0, "--control-period", "seconds > 0",
         args.control_period)


def build_limits(args) -> SafetyLimits:
    """`--limits` file, then the flags over it; any bad setting is a `UsageError` naming the file or flag."""
    try:
        values = SafetyLimits.from_yaml(args.limits).to_dict() if args.limits else {}
    except (OSError, ValueError) as e:
        raise UsageError(f"--limits {one_line(e)}") from None
    flags = {"workspace_low": args.workspace_low, "workspace_high": args.workspace_high,
             "max_translation": args.max_translation, "max_rotation": args.max_rotation,
             "max_rate_hz": args.max_rate_hz, "watchdog_ms": args.watchdog_ms,
             "home_speed_factor": args.home_speed_factor}
    if args.gripper_range is not None:
        flags["gripper_min"], flags["gripper_max"] = args.gripper_range
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return SafetyLimits.from_dict(values, source="safety limits (--limits file and flags)")
    except ValueError as e:
        raise UsageError(one_line(e)) from None


def read_token(path: Path | None) -> str | None:
    """The shared secret from `--token-file` (default: $FRANKA_SERVER_TOKEN, else none)."""
    if path is None:
        return os.environ.get("FRANKA_SERVER_TOKEN")
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--token-file {path}: cannot read the shared secret ({one_line(e)})") from None
    if not token:
        raise UsageError(f"--token-file {path}: expected a shared secret, got an empty file")
    return token


def build_controller(args):
    if args.backend == "sim":
        import gymnasium as gym

        from robot.backends.sim import SimController

        options = {"image_size": args.image_size}
        if args.control_hz is not None:
            options["control_hz"] = args.control_hz
        try:
            return SimController(args.task, seed=args.seed, **options)
        except (gym.error.Error, ValueError) as e:  # an unknown task, a setting the simulator refuses
            raise UsageError(f"--backend sim --task {args.task} {options}: {one_line(e)}") from None
    if not args.robot_ip:
        raise UsageError("--robot-ip: required with --backend franky (the FCI address, e.g. 172.16.0.2)")
    from robot.backends.franky import FrankyController
    from robot.cameras import PyAVCamera

    cameras = {}
    for spec in args.camera:
        name, _, source = spec.partition("=")
        if not source or not (name == "rgb" or name.endswith("_rgb")):
            raise UsageError(f"--camera: expected NAME=SOURCE with NAME 'rgb' or '*_rgb', got {spec!r}")
        cameras[name] = PyAVCamera(source, size=args.image_size, input_format=args.camera_format)
    if "rgb" not in cameras:
        raise UsageError("--camera: --backend franky needs rgb=SOURCE (the exterior camera the planner sees)")
    return FrankyController(args.robot_ip, cameras=cameras, relative_dynamics_factor=args.dynamics_factor,
                            control_period_s=args.control_period)


def serve(argv: list[str]) -> int:
    """The server command without the error wrapper: flags, limits and token are checked before the robot is
    opened or anything is logged."""
    args = parse_args(argv)
    limits = build_limits(args)
    token = read_token(args.token_file)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        log.warning("binding %s without a token: anyone on that network can move the robot", args.host)
    controller = build_controller(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        FrankaServer(controller, limits, token=token).serve(
            f"tcp://{args.host}:{args.port}", stop_event=stop,
            on_ready=lambda endpoint: print(f"READY {endpoint}", flush=True))
    except KeyboardInterrupt:
        pass  # serve() has stopped the arm in its finally block
    finally:
        controller.close()
    return 0


def main(argv=None) -> int:
    return run_cli(serve, argv)


if __name__ == "__main__":  # python -m robot.cli
    raise SystemExit(main())
