"""The watchdog stops an arm that keeps moving when the client falls silent.

The simulator never moves between commands, so a hold check against it cannot fail; this arm coasts on after
every step (as a real arm does while an asynchronous motion is in flight) and only a stop holds it. The
second test runs the same silence with the watchdog out of reach, to show that the first one can fail.
"""
import time

import numpy as np
from robot_fakes import CoastingController, serving

from robot.client import FrankaClient
from robot.safety import SafetyLimits
from robot.server import FrankaServer

SPEED = 0.1  # m/s: a 1 cm step over a 0.1 s period, coasting on


def silent_client(watchdog_ms: float):
    """One step, then 0.8 s of silence. Returns (metres coasted from the step to the end of the silence,
    metres moved in the 0.3 s after it, while the arm should hold, the server's counts)."""
    robot = CoastingController(step_period_s=0.1)
    server = FrankaServer(robot, SafetyLimits(watchdog_ms=watchdog_ms))
    with serving(server) as endpoint, FrankaClient(endpoint, timeout_s=5.0) as client:
        after_step = client.step([0.01, 0, 0, 0, 0, 0, 0]).state
        time.sleep(0.8)
        held = client.observe(images=False)["state"]
        time.sleep(0.3)
        later = client.observe(images=False)["state"]
    return (float(np.linalg.norm(held[:3] - after_step[:3])), float(np.linalg.norm(later[:3] - held[:3])),
            dict(server.counts))


def test_watchdog_stops_a_coasting_arm_within_its_timeout():
    coasted, drift, counts = silent_client(watchdog_ms=200.0)
    assert counts.get("watchdog") == 1
    assert drift == 0.0  # held
    # Stopped after the 0.2 s timeout plus the loop's 5 ms poll (0.25 s allowed for a busy machine), not later.
    assert SPEED * 0.2 * 0.95 <= coasted <= SPEED * (0.2 + 0.25), coasted


def test_the_same_silence_without_the_watchdog_lets_the_arm_run_on():
    coasted, drift, counts = silent_client(watchdog_ms=60_000.0)
    assert counts.get("watchdog", 0) == 0
    assert drift >= SPEED * 0.3 * 0.9 and coasted >= SPEED * 0.8 * 0.9  # both checks above would fail
