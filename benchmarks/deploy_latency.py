"""Round-trip latency of the robot-server protocol: FrankaClient -> scripts/franka_server.py (sim backend).

Starts the server as a separate process on a free loopback port and times each request type (median and
95th percentile over --repeats calls), then prints a table. The sim's `step` includes one control period of
MuJoCo physics; with a real arm (franky backend) a step also waits up to --control-period for the motion.

    python benchmarks/deploy_latency.py                    # 256 px images, 200 calls per request type
    python benchmarks/deploy_latency.py --image-size 64 --repeats 50
"""
from __future__ import annotations

import argparse
import os
import pathlib
import select
import subprocess
import sys
import time

import numpy as np

from robot.client import FrankaClient

SERVER = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "franka_server.py"


def start_server(image_size: int) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, str(SERVER), "--backend", "sim", "--port", "0", "--image-size", str(image_size),
               "--max-rate-hz", "100000", "--log-level", "WARNING"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if select.select([process.stdout], [], [], 1.0)[0]:
            line = process.stdout.readline()
            if line.startswith("READY "):
                return process, line.split()[1]
    process.kill()
    raise RuntimeError("the server did not start")


def timed(fn, repeats: int) -> np.ndarray:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * np.array(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args()

    process, endpoint = start_server(args.image_size)
    try:
        with FrankaClient(endpoint, timeout_s=5.0) as client:
            client.home()
            rng = np.random.default_rng(0)
            small = lambda: np.concatenate([rng.uniform(-0.01, 0.01, 3), [0, 0, 0, 0]])
            rows = [
                ("ping", timed(client.ping, args.repeats)),
                ("observe (state only)", timed(lambda: client.observe(images=False), args.repeats)),
                (f"observe ({args.image_size} px image)", timed(client.observe, args.repeats)),
                ("step (sim physics)", timed(lambda: client.step(small()), args.repeats)),
            ]
            client.home()
    finally:
        process.terminate()
        process.wait(timeout=30)

    print(f"FrankaClient -> franka_server (sim), loopback, {args.repeats} calls each")
    print(f"{'request':<28}{'median ms':>12}{'p95 ms':>10}")
    for name, ms in rows:
        print(f"{name:<28}{np.median(ms):>12.2f}{np.percentile(ms, 95):>10.2f}")


if __name__ == "__main__":
    main()
