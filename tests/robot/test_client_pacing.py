"""FrankaClient paces motion commands to the server's rate limit, even when the server picks commands up late."""
import time

import pytest
from robot_fakes import KinematicController, serving

from robot.client import FrankaClient
from robot.safety import SafetyLimits
from robot.server import FrankaServer


class LateServer(FrankaServer):
    """Picks the first motion command up `delay_s` late, as a busy server process does."""

    def __init__(self, *args, delay_s: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.delay_s = delay_s
        self.motion_seen = 0

    def handle(self, frames):
        if b"step" in frames[0]:
            self.motion_seen += 1
            if self.motion_seen == 1:
                time.sleep(self.delay_s)
        return super().handle(frames)


@pytest.fixture
def late_server():
    server = LateServer(KinematicController(), SafetyLimits(max_rate_hz=10.0, watchdog_ms=5000.0), delay_s=0.06)
    with serving(server) as endpoint:
        yield server, endpoint


def test_late_pickup_does_not_get_the_next_command_refused(late_server):
    """Pacing from our send time would send step 2 only ~43 ms after the server's (late) stamp of step 1."""
    server, endpoint = late_server
    with FrankaClient(endpoint, timeout_s=5.0) as client:
        for _ in range(3):
            result = client.step([0.005, 0, 0, 0, 0, 0, 0])  # a refused step raises CommandRefused
            assert result.state[0] > 0
        assert server.counts["steps_executed"] == 3 and server.counts.get("rate_limited", 0) == 0
        reply = client._motion_request("step", action=[0.0] * 7)
        assert 0.0 <= reply["handled_s"] < 1.0  # the server reports its handling time with every motion reply
