"""Network `FrankaController`: talks to `scripts/franka_server.py` over ZeroMQ (REQ socket, msgpack).

Every request has a timeout. A request without reply within it raises `ServerUnavailable` and the socket is
replaced by a fresh one (a ZeroMQ REQ socket is unusable after a lost reply), so the next call reconnects on
its own once the server is back. Motion commands are never re-sent automatically: a lost reply may belong to
a command that was executed. Refusals by the server raise `CommandRefused` with the server's error code.
"""
from __future__ import annotations

import itertools
import os
import time

import numpy as np
import zmq

from robot import protocol
from robot.interface import FrankaController, StepResult, as_action


class ServerUnavailable(ConnectionError):
    """No reply from the robot server within the timeout."""


class CommandRefused(RuntimeError):
    """The server answered with an error; `code` is one of the error codes of robot.protocol."""

    def __init__(self, cmd: str, code: str, message: str):
        super().__init__(f"robot server refused '{cmd}' ({code}): {message}")
        self.cmd = cmd
        self.code = code
        self.message = message


class FrankaClient(FrankaController):
    """`FrankaController` backed by a robot server at `address` (e.g. "tcp://127.0.0.1:5555").

    timeout_s: per request (observe, step, gripper, stop, ping); a real arm's step waits up to its control period
    (0.25 s by default) on the server, so keep it above that. home_timeout_s: for `home`, which blocks on the
    server while it walks the arm home at the safe home speed (docs/deployment.md). token: the server's shared secret (default: $FRANKA_SERVER_TOKEN).
    """

    backend = "network"
    RATE_MARGIN_S = 0.003

    def __init__(self, address: str, *, token: str | None = None, timeout_s: float = 0.75,
                 home_timeout_s: float = 30.0, connect: bool = True):
        if not address.startswith("tcp://"):
            raise ValueError(f"FrankaClient address: expected 'tcp://HOST:PORT', got {address!r}")
        self.address = address
        self.token = token if token is not None else os.environ.get("FRANKA_SERVER_TOKEN")
        self.timeout_s = timeout_s
        self.home_timeout_s = home_timeout_s
        self._ids = itertools.count()
        self._context = zmq.Context()
        self._socket = None
        self.server_info: dict = {}
        # Latest moment (client clock) at which the server can have time-stamped the previous motion command.
        self._last_motion = -float("inf")
        if connect:
            self.server_info = self.ping()

    def _motion_request(self, cmd: str, timeout_s: float | None = None, **fields) -> dict:
        """A motion command (step, gripper, home), sent no earlier than the server's command-rate limit admits it.

        The server refuses motion commands closer than 1 / max_rate_hz to the previous one, timed when it
        accepts each (it stays the enforcer); a fast planner should wait for its slot rather than be refused.
        The server's stamp of a command lies between our send and our receipt of its reply, minus the
        ``handled_s`` it reports (the time it spent executing). Pacing from that upper bound stays admissible
        however late a busy server picked the previous command up, without adding its execution time.
        """
        max_rate_hz = self.server_info.get("limits", {}).get("max_rate_hz")
        if max_rate_hz:
            wait = self._last_motion + 1.0 / max_rate_hz + self.RATE_MARGIN_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        sent = time.monotonic()
        try:
            reply = self.request(cmd, timeout_s=timeout_s, **fields)
        finally:  # refused or unanswered: the server may still have stamped it, so assume it did, just now
            self._last_motion = time.monotonic()
        handled = reply.get("handled_s")
        if isinstance(handled, (int, float)) and handled > 0:  # an older server sends none: keep the receipt
            self._last_motion -= min(float(handled), self._last_motion - sent)
        return reply

    # ---- transport --------------------------------------------------------------------------------------
    def _open(self):
        socket = self._context.socket(zmq.REQ)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(self.address)
        return socket

    def reconnect(self) -> None:
        """Drop the current socket; the next request opens a new one."""
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None

    def request(self, cmd: str, timeout_s: float | None = None, **fields) -> dict:
        """Send one request and return the reply's fields; raises ServerUnavailable or CommandRefused."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        if self._socket is None:
            self._socket = self._open()
        request_id = next(self._ids)
        self._socket.send(protocol.encode_request(cmd, request_id, self.token, **fields))
        if not self._socket.poll(int(1000 * timeout_s), zmq.POLLIN):
            self.reconnect()
            raise ServerUnavailable(
                f"robot server at {self.address} did not answer '{cmd}' within {timeout_s:.2f} s "
                f"(is scripts/franka_server.py running and reachable?)")
        reply = protocol.decode_reply(self._socket.recv())
        if reply.get("id") not in (request_id, None):
            self.reconnect()
            raise ServerUnavailable(f"reply id {reply.get('id')} does not match request id {request_id} for '{cmd}'")
        if not reply["ok"]:
            error = reply.get("error", {})
            raise CommandRefused(cmd, error.get("code", "unknown"), error.get("message", ""))
        return reply

    # ---- FrankaController ---------------------------------------------------------------------------------
    def ping(self) -> dict:
        reply = self.request("ping")
        if reply.get("version") != protocol.PROTOCOL_VERSION:
            raise ConnectionError(f"robot server at {self.address} speaks protocol version {reply.get('version')}, "
                                  f"this client speaks {protocol.PROTOCOL_VERSION}")
        return reply

    def observe(self, images: bool = True) -> dict:
        return protocol.unpack_observation(self.request("observe", images=images)["obs"])

    def step(self, action) -> StepResult:
        action = as_action(action, "FrankaClient.step")
        reply = self._motion_request("step", action=action.tolist())
        return StepResult(applied=np.asarray(reply["applied"], dtype=np.float64), limited=tuple(reply["limited"]),
                          state=np.asarray(reply["obs"]["state"], dtype=np.float64))

    def set_gripper(self, position: float) -> float:
        return float(self._motion_request("gripper", position=float(position))["applied"])

    def home(self) -> dict:
        return protocol.unpack_observation(self._motion_request("home", timeout_s=self.home_timeout_s)["obs"])

    def stop(self) -> None:
        self.request("stop")

    def close(self) -> None:
        self.reconnect()
        if not self._context.closed:
            self._context.term()
