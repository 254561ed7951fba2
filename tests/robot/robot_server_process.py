"""Start the robot server (`python -m robot.cli`, = vjepa-franka-server) as a real process on loopback for tests, and always clean it up."""
from __future__ import annotations

import contextlib
import os
import pathlib
import select
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]  # run from here, so `-m robot.cli` is this checkout's code


@contextlib.contextmanager
def running_server(*args: str, port: int = 0, startup_timeout_s: float = 60.0, log_path=None):
    """Yields (process, endpoint). Default: sim backend, 32 px images, a free port on 127.0.0.1."""
    command = [sys.executable, "-m", "robot.cli", "--backend", "sim", "--host", "127.0.0.1", "--port", str(port),
               "--image-size", "32", "--log-level", "WARNING", *args]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "OMP_NUM_THREADS": "1"}
    env.pop("FRANKA_SERVER_TOKEN", None)
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(log_path, "w")) if log_path else subprocess.DEVNULL
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT)
        stack.callback(_stop, process)
        yield _wait_ready(process, command, startup_timeout_s)


def _wait_ready(process, command, startup_timeout_s):
    deadline = time.monotonic() + startup_timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            raise RuntimeError(f"server did not start (exit code {process.poll()}): {' '.join(command)}")
        ready, _, _ = select.select([process.stdout], [], [], min(remaining, 1.0))
        if ready:
            line = process.stdout.readline()
            if line.startswith("READY "):
                return process, line.split()[1]


def _stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    process.stdout.close()
