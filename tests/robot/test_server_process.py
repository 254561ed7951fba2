"""A real robot server process (`python -m robot.cli`) on the sim backend, driven over loopback."""
import socket
import time

import msgpack
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from robot_fakes import fuzz_messages
from robot_server_process import running_server
from scipy.spatial.transform import Rotation

from envs.controller import ControllerConfig
from robot import protocol
from robot.client import CommandRefused, FrankaClient, ServerUnavailable

# A small box around the sim's home pose (EE near (0.36, 0, 0.39)) so that fuzzed steps hit its walls.
BOX = ("--workspace-low", "0.30", "-0.08", "0.30", "--workspace-high", "0.45", "0.08", "0.45")
LOW, HIGH = np.array([0.30, -0.08, 0.30]), np.array([0.45, 0.08, 0.45])
MAX_T, MAX_R = 0.03, 0.1
TOL = 0.01  # the simulated servo's tracking lag carried into the next step, metres / radians
# Where the sim's IK cannot reach a target exactly (near joint limits) it executes the best solution within
# ik_accept metres / 10 * ik_accept radians of it, so the arm can turn up to that much more than commanded
# (measured: up to 0.028 rad in about 1 % of random clamped steps). The server clamps commands; the motion
# bound of the simulated arm is the clamp plus this IK acceptance.
ROT_TOL = TOL + 10 * ControllerConfig.ik_accept


def rotation_between(a, b):
    return float((Rotation.from_euler("xyz", b[3:6]) * Rotation.from_euler("xyz", a[3:6]).inv()).magnitude())


def sent_cmd(message: bytes):
    try:
        return msgpack.unpackb(message, raw=False).get("cmd")
    except Exception:  # noqa: BLE001  not a msgpack map: no command
        return None


@pytest.fixture(scope="module")
def fuzz_server():
    limits = (*BOX, "--max-translation", str(MAX_T), "--max-rotation", str(MAX_R), "--max-rate-hz", "100000",
              "--gripper-range", "0.0", "0.8")
    with running_server(*limits) as (_, endpoint), FrankaClient(endpoint, timeout_s=5.0) as client:
        client.home()
        yield endpoint, client


def test_roundtrip_and_out_of_bounds_is_clipped(fuzz_server):
    _, client = fuzz_server
    client.home()
    obs = client.observe()
    assert obs["rgb"].shape == (32, 32, 3) and obs["rgb"].dtype == np.uint8
    assert obs["state"].shape == (7,) and obs["joints"].shape == (7,)
    before = obs["state"]
    result = client.step([0.2, 0, 0, 0, 0, 0, 0])  # inside the protocol's domain, beyond the per-step limit
    assert "max_translation" in result.limited and result.applied[0] == pytest.approx(MAX_T)
    assert np.linalg.norm(result.state[:3] - before[:3]) <= MAX_T + TOL
    for _ in range(10):  # push against the +x wall of the box
        result = client.step([MAX_T, 0, 0, 0, 0, 0, 0])
    assert "workspace" in result.limited and result.state[0] <= HIGH[0] + TOL
    with pytest.raises(CommandRefused) as refused:
        client.request("step", action=[5.0, 0, 0, 0, 0, 0, 0])  # outside the domain: refused, not clipped
    assert refused.value.code == protocol.OUT_OF_RANGE
    np.testing.assert_allclose(client.observe(images=False)["state"], result.state, atol=1e-6)
    assert client.set_gripper(1.0) == pytest.approx(0.8)  # gripper range clips
    assert client.observe(images=False)["state"][6] <= 0.8 + 0.05


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=fuzz_messages)
def test_fuzzed_messages_never_crash_or_exceed_limits(fuzz_server, message):
    endpoint, client = fuzz_server
    before = client.observe(images=False)["state"]
    raw = zmq.Context.instance().socket(zmq.REQ)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(endpoint)
    try:
        raw.send(message)
        assert raw.poll(5000), "the server stopped answering"
        reply = msgpack.unpackb(raw.recv(), raw=False)
    finally:
        raw.close(0)
    assert isinstance(reply, dict) and isinstance(reply["ok"], bool)
    after = client.observe(images=False)["state"]
    # A dispatched `home` walks several limited steps (test_home.py); it may end in robot_error when the arm
    # cannot settle within its step budget, after having walked. Any other command moves one step at most.
    home_walked = sent_cmd(message) == "home" and (
        reply["ok"] or reply.get("error", {}).get("code") == protocol.ROBOT_ERROR)
    if not home_walked:
        assert np.linalg.norm(after[:3] - before[:3]) <= MAX_T + TOL
        assert rotation_between(before, after) <= MAX_R + ROT_TOL
    assert np.all(after[:3] >= LOW - TOL) and np.all(after[:3] <= HIGH + TOL)
    assert after[6] <= 0.8 + 0.05


def test_oversized_messages_and_raw_tcp_garbage_do_not_hurt_the_server(fuzz_server):
    endpoint, client = fuzz_server
    big = zmq.Context.instance().socket(zmq.REQ)
    big.setsockopt(zmq.LINGER, 0)
    big.connect(endpoint)
    try:
        big.send(b"\x00" * 1_000_000)  # above the transport limit: ZeroMQ drops this peer, nothing reaches handle()
        assert not big.poll(500)
    finally:
        big.close(0)
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as raw:  # not even ZeroMQ
        raw.sendall(bytes(range(256)) * 64)
    assert client.ping()["ok"]
    assert client.observe(images=False)["state"].shape == (7,)


def test_fuzzing_reached_the_robot_and_every_limit(fuzz_server):
    """Runs after the fuzz test: the fuzzed steps really moved the arm and met every limit."""
    counts = fuzz_server[1].ping()["counts"]
    assert counts["steps_executed"] >= 50, counts
    for name in ("max_translation", "max_rotation", "workspace", "gripper_range"):
        assert counts.get(f"limited_{name}", 0) > 0, counts
    for code in (protocol.MALFORMED, protocol.BAD_FIELD, protocol.OUT_OF_RANGE, protocol.UNKNOWN_COMMAND):
        assert counts.get(code, 0) > 0, counts


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    """A server with a token, a 10 Hz command-rate limit and a 300 ms watchdog."""
    token = tmp_path_factory.mktemp("secret") / "token"
    token.write_text("s3cret\n")
    with running_server("--token-file", str(token), "--watchdog-ms", "300", "--max-rate-hz", "10") as (_, endpoint):
        yield endpoint


def test_watchdog_holds_a_silent_arm(guarded_server):
    with FrankaClient(guarded_server, token="s3cret", timeout_s=5.0) as client:
        client.home()
        trips = client.ping()["counts"].get("watchdog", 0)
        for _ in range(4):  # a live client keeps the arm enabled
            client.step([0.01, 0, 0, 0, 0, 0, 0])
            time.sleep(0.12)
            assert client.ping()["holding"] is False
        time.sleep(0.7)
        pong = client.ping()
        assert pong["holding"] is True and pong["counts"]["watchdog"] == trips + 1  # the watchdog stopped the arm
        held = client.observe(images=False)["state"]
        time.sleep(0.2)
        np.testing.assert_allclose(client.observe(images=False)["state"], held, atol=1e-9)
        client.step([0.01, 0, 0, 0, 0, 0, 0])  # a fresh command resumes
        assert client.ping()["holding"] is False


def test_a_burst_of_homes_is_rate_limited(guarded_server):
    """Before, 20 `home` commands in 0.14 s were all accepted; now home shares the 10 Hz motion-command limit."""
    with FrankaClient(guarded_server, token="s3cret", timeout_s=5.0) as client:
        time.sleep(0.15)
        outcomes = []
        start = time.monotonic()
        for _ in range(20):
            try:
                client.request("home", timeout_s=30.0)  # raw requests: no client-side pacing
                outcomes.append("ok")
            except CommandRefused as refused:
                outcomes.append(refused.code)
        elapsed = time.monotonic() - start
    assert set(outcomes) <= {"ok", protocol.RATE_LIMITED}, outcomes
    assert 1 <= outcomes.count("ok") <= 1 + elapsed * 10, (outcomes, elapsed)


def test_token_and_rate_limit_over_the_wire(guarded_server):
    with pytest.raises(CommandRefused, match="unauthorized"):
        FrankaClient(guarded_server, token="wrong", timeout_s=5.0)
    with FrankaClient(guarded_server, token="s3cret", timeout_s=5.0) as client:
        time.sleep(0.15)
        client.step([0.01, 0, 0, 0, 0, 0, 0])
        with pytest.raises(CommandRefused) as refused:  # a raw request skips the client's pacing
            client.request("step", action=[0.01, 0, 0, 0, 0, 0, 0])  # within 100 ms of the previous one
        assert refused.value.code == protocol.RATE_LIMITED


def test_client_paces_motion_commands_to_the_server_rate(guarded_server):
    """A planner faster than the server's rate limit waits for its slot instead of being refused."""
    with FrankaClient(guarded_server, token="s3cret", timeout_s=5.0) as client:
        time.sleep(0.15)
        start = time.monotonic()
        for _ in range(3):
            client.step([0.005, 0, 0, 0, 0, 0, 0])  # refused commands would raise CommandRefused
        assert time.monotonic() - start >= 2 * 0.1  # 10 Hz: at least two full intervals between three steps


def test_killed_server_gives_a_client_error_within_a_second_then_reconnects():
    with running_server("--max-rate-hz", "100") as (process, endpoint):
        client = FrankaClient(endpoint, timeout_s=0.5)
        client.home()
        for _ in range(3):
            client.step([0.01, 0, 0, 0, 0, 0, 0])
            time.sleep(0.02)
        process.kill()
        process.wait(timeout=10)
        start = time.monotonic()
        with pytest.raises(ServerUnavailable, match="did not answer 'step'"):
            client.step([0.01, 0, 0, 0, 0, 0, 0])
        assert time.monotonic() - start < 1.0
    port = int(endpoint.rsplit(":", 1)[1])
    with running_server(port=port):  # the robot side comes back: the same client object works again
        assert client.ping()["backend"] == "sim"
        assert client.observe(images=False)["state"].shape == (7,)
    client.close()
