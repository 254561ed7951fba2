"""Protocol validation and server request handling in process, against the kinematic fake."""
import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from robot_fakes import (  # tests/robot is on sys.path (conftest)
    HOME_STATE,
    call,
    hostile_requests,
    make_server,
)

from robot import protocol


def test_ping_observe_step_roundtrip():
    server, robot, _ = make_server()
    pong = call(server, "ping")
    assert pong["ok"] and pong["version"] == protocol.PROTOCOL_VERSION and pong["backend"] == "fake"
    assert pong["limits"]["max_translation"] == pytest.approx(0.075)
    obs = protocol.unpack_observation(call(server, "observe")["obs"])
    np.testing.assert_allclose(obs["state"], HOME_STATE)
    assert obs["rgb"].shape == (4, 6, 3) and obs["rgb"].dtype == np.uint8
    reply = call(server, "step", action=[0.01, 0, 0, 0, 0, 0, 0.5])
    assert reply["ok"] and reply["id"] == 7 and reply["limited"] == []
    np.testing.assert_allclose(reply["obs"]["state"][:3], HOME_STATE[:3] + [0.01, 0, 0])
    assert len(robot.executed) == 1


def test_oversized_step_is_clipped_and_reported():
    server, robot, _ = make_server()
    reply = call(server, "step", action=[0.5, 0, 0, 0, 0, 0, 0])
    assert reply["ok"] and "max_translation" in reply["limited"]
    assert reply["applied"][0] == pytest.approx(0.075)
    assert robot.executed[0][0] == pytest.approx(0.075)


@pytest.mark.parametrize("fields, code", [
    ({"action": [0.0] * 6}, protocol.BAD_FIELD),
    ({"action": [float("nan")] + [0.0] * 6}, protocol.OUT_OF_RANGE),
    ({"action": [float("inf")] + [0.0] * 6}, protocol.OUT_OF_RANGE),
    ({"action": [5.0] + [0.0] * 6}, protocol.OUT_OF_RANGE),  # 5 m per step: a units bug, refused
    ({"action": [0, 0, 0, 4.0, 0, 0, 0]}, protocol.OUT_OF_RANGE),
    ({"action": ["0"] * 7}, protocol.BAD_FIELD),
    ({"action": [True] * 7}, protocol.BAD_FIELD),
    ({"action": [2**64 - 1] + [0] * 6}, protocol.OUT_OF_RANGE),
    ({}, protocol.BAD_FIELD),
    ({"action": [0.0] * 7, "acton": 1}, protocol.BAD_FIELD),
])
def test_bad_steps_are_refused_and_never_executed(fields, code):
    server, robot, _ = make_server()
    reply = call(server, "step", **fields)
    assert not reply["ok"] and reply["error"]["code"] == code, reply
    assert robot.executed == []


@pytest.mark.parametrize("raw, code", [
    (b"\xc1", protocol.MALFORMED),
    (msgpack.packb([1, 2, 3]), protocol.MALFORMED),
    (msgpack.packb({"cmd": "fly"}), protocol.UNKNOWN_COMMAND),
    (msgpack.packb({"cmd": 3}), protocol.BAD_FIELD),
    (msgpack.packb({"cmd": "ping", "id": -1}), protocol.BAD_FIELD),
    (msgpack.packb({"cmd": "gripper", "position": 1.5}), protocol.OUT_OF_RANGE),
    (msgpack.packb({"cmd": "observe", "images": "yes"}), protocol.BAD_FIELD),
    (b"\x00" * (protocol.MAX_REQUEST_BYTES + 1), protocol.MALFORMED),
])
def test_malformed_requests(raw, code):
    server, _, _ = make_server()
    reply = call(server, raw=raw)
    assert not reply["ok"] and reply["error"]["code"] == code, reply
    assert reply["error"]["message"]


def test_multipart_message_is_malformed():
    server, _, _ = make_server()
    reply = protocol.decode_reply(server.handle([b"a", b"b"]))
    assert reply["error"]["code"] == protocol.MALFORMED


def test_token_is_required_when_configured():
    server, robot, _ = make_server(token="s3cret")
    assert call(server, "ping")["error"]["code"] == protocol.UNAUTHORIZED
    assert call(server, "step", action=[0.01] + [0] * 6, token="wrong")["error"]["code"] == protocol.UNAUTHORIZED
    assert robot.executed == []
    assert call(server, "ping", token="s3cret")["ok"]


def test_rate_limit_refuses_fast_commands():
    server, robot, clock = make_server(max_rate_hz=10.0)
    assert call(server, "step", action=[0.01] + [0] * 6)["ok"]
    clock.now = 0.05
    reply = call(server, "step", action=[0.01] + [0] * 6)
    assert reply["error"]["code"] == protocol.RATE_LIMITED and len(robot.executed) == 1
    clock.now = 0.11
    assert call(server, "step", action=[0.01] + [0] * 6)["ok"] and len(robot.executed) == 2


def test_watchdog_stops_a_silent_client():
    server, robot, clock = make_server(watchdog_ms=200.0)
    assert not server.check_watchdog()  # nothing commanded: nothing to stop
    call(server, "step", action=[0.01] + [0] * 6)
    clock.now = 0.15
    assert not server.check_watchdog() and robot.commanded
    clock.now = 0.25
    assert server.check_watchdog() and robot.stops == 1 and not robot.commanded
    assert call(server, "ping")["holding"] is True
    clock.now = 5.0
    assert not server.check_watchdog() and robot.stops == 1  # trips once per silence
    assert call(server, "step", action=[0.01] + [0] * 6)["ok"]  # a fresh command resumes
    assert call(server, "ping")["holding"] is False


def test_backend_failure_is_reported_and_stops_the_arm():
    server, robot, _ = make_server()
    robot.fail_next_step = True
    reply = call(server, "step", action=[0.01] + [0] * 6)
    assert reply["error"]["code"] == protocol.ROBOT_ERROR and "simulated reflex" in reply["error"]["message"]
    assert robot.stops == 1


def test_gripper_home_stop():
    server, robot, clock = make_server(gripper_max=0.7)
    reply = call(server, "gripper", position=1.0)
    assert reply["applied"] == pytest.approx(0.7) and reply["limited"] == ["gripper_range"]
    assert robot.gripper_commands == [0.7]
    clock.now = 1.0
    call(server, "step", action=[0.05] + [0] * 6)
    clock.now = 2.0  # home is a motion command: rate-limited like the step before it
    np.testing.assert_allclose(call(server, "home")["obs"]["state"], HOME_STATE)
    assert call(server, "stop")["ok"] and robot.stops == 1


@settings(max_examples=300, deadline=None)  # the 1000-example fuzz runs over loopback
@given(hostile_requests)
def test_fuzzed_requests_in_process(raw):
    server, robot, _ = make_server(max_rate_hz=1e9)
    reply = protocol.decode_reply(server.handle([raw]))
    assert isinstance(reply["ok"], bool)
    for action in robot.executed:  # whatever got through respects the limits
        assert np.linalg.norm(action[:3]) <= server.limits.max_translation + 1e-9
