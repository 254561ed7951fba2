"""Robot-side server: exposes one `FrankaController` over ZeroMQ (REP socket, msgpack) behind a safety layer.

Every request is decoded and validated by `robot.protocol` and every motion is limited by `robot.safety`
before the controller sees it; the reply tells the client what was executed. Nothing a client sends can
crash the loop: protocol errors are answered with an error, backend failures stop the arm and are answered
with `robot_error`. A watchdog stops the arm when motion commands stop arriving. `home` is a motion command
like the others: rate-limited, refused while a motion runs, and walked in limited steps inside the box.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter

import numpy as np
import zmq

from robot import protocol
from robot.interface import FrankaController
from robot.protocol import ProtocolError, Request
from robot.safety import (
    HOME_TOLERANCE,
    RateLimiter,
    SafetyLimits,
    Watchdog,
    distance_to,
    limit_gripper,
    limit_home_step,
    limit_step,
)

log = logging.getLogger("franka_server")


class FrankaServer:
    """Request handling (`handle`, `check_watchdog`) separated from the socket loop (`serve`) for testing."""

    def __init__(self, controller: FrankaController, limits: SafetyLimits | None = None, *,
                 token: str | None = None, clock=time.monotonic):
        self.controller = controller
        self.limits = limits or SafetyLimits()
        self.token = token
        self.clock = clock
        self.rate = RateLimiter(self.limits.max_rate_hz)
        self.watchdog = Watchdog(self.limits.watchdog_ms / 1000.0)
        self.holding = True  # nothing commanded yet
        # Replies by outcome ("ok" or an error code), executed steps, limits that acted, watchdog trips.
        self.counts: Counter[str] = Counter()
        self.home_state = self._checked_home(controller.home_state(), self.limits)  # where `home` walks to

    @staticmethod
    def _checked_home(home, limits: SafetyLimits) -> np.ndarray:
        """The backend's home state, which must lie inside the workspace box: `home` walks there."""
        home = np.asarray(home, dtype=np.float64)
        if home.shape != (7,) or not np.all(np.isfinite(home)):
            raise ValueError(f"backend home_state: expected 7 finite numbers, got {home.tolist()}")
        if np.any(home[:3] < limits.workspace_low) or np.any(home[:3] > limits.workspace_high):
            raise ValueError(f"the backend's home pose {np.round(home[:3], 4).tolist()} m lies outside the workspace "
                             f"box {list(limits.workspace_low)}..{list(limits.workspace_high)}; widen the box or "
                             f"change the home joints")
        return home

    # ---- request handling -------------------------------------------------------------------------------
    def handle(self, frames: list[bytes]) -> bytes:
        """Answer one request. Never raises."""
        request_id = None
        try:
            request = protocol.decode_request(frames, self.token)
            request_id = request.id
            reply = self._dispatch(request)
            self.counts["ok"] += 1
            return protocol.ok_reply(request_id, **reply)
        except ProtocolError as exc:
            self.counts[exc.code] += 1
            log.info("refused request: %s", exc)
            return protocol.error_reply(exc.request_id if exc.request_id is not None else request_id,
                                        exc.code, exc.message)
        except Exception as exc:  # the backend failed on a valid command: stop and report, keep serving
            self.counts[protocol.ROBOT_ERROR] += 1
            log.exception("backend failure")
            stop_note = self._stop_after_failure()
            return protocol.error_reply(request_id, protocol.ROBOT_ERROR, f"{type(exc).__name__}: {exc}{stop_note}")

    def _stop_after_failure(self) -> str:
        self.watchdog.disarm()
        self.holding = True
        try:
            self.controller.stop()
            return ""
        except Exception as exc:  # reported to the client, which must not trust the arm any more
            log.exception("stop after failure failed too")
            return f"; stopping the arm failed as well: {type(exc).__name__}: {exc}"

    def _dispatch(self, request: Request) -> dict:
        cmd = request.cmd
        if cmd == "ping":
            return {"version": protocol.PROTOCOL_VERSION, "backend": self.controller.backend,
                    "limits": self.limits.to_dict(), "holding": self.holding, "counts": dict(self.counts)}
        if cmd == "observe":
            obs = self._checked_observation(self.controller.observe(images=request.images))
            return {"obs": protocol.pack_observation(obs, images=request.images), "holding": self.holding}
        if cmd == "stop":
            self.controller.stop()
            self.watchdog.disarm()
            self.holding = True
            return {"obs": self._state_reply()}

        # Motion commands: refused while a motion runs (home only: steps pre-empt), rate limit, limits, robot.
        if cmd == "home" and self.controller.is_moving():
            raise ProtocolError(protocol.BUSY, "cmd 'home' while the arm is still moving; send 'stop' first",
                                request.id)
        now = self.clock()
        if not self.rate.allow(now):
            raise ProtocolError(protocol.RATE_LIMITED,
                                f"cmd '{cmd}' came {1000 * (now - self.rate.last):.1f} ms after the previous motion "
                                f"command; the limit is {self.limits.max_rate_hz:g} Hz", request.id)
        if cmd == "home":
            steps = self._walk_home()
            return {"obs": self._state_reply(), "steps": steps, "handled_s": self.clock() - now}
        if cmd == "step":
            state = self._checked_observation(self.controller.observe(images=False))["state"]
            safe = limit_step(state, request.action, self.limits)
            self.controller.step(safe.action)
            self._moving(now)
            self.counts["steps_executed"] += 1
            self.counts.update(f"limited_{name}" for name in safe.limited)
            return {"applied": safe.action.tolist(), "limited": list(safe.limited), "obs": self._state_reply(),
                    "handled_s": self.clock() - now}
        if cmd == "gripper":
            position, limited = limit_gripper(request.position, self.limits)
            self.controller.set_gripper(position)
            self._moving(now)
            return {"applied": position, "limited": list(limited), "handled_s": self.clock() - now}
        raise AssertionError(f"unhandled command {cmd!r}")  # decode_request admits only known commands

    def _walk_home(self) -> int:
        """Walk to the home pose in steps bounded by the safety limits, then let the backend finish there.

        Returns the number of steps. The arm holds afterwards (watchdog disarmed), as after `stop`.
        """
        self.watchdog.disarm()
        self.holding = True
        state = self._checked_observation(self.controller.observe(images=False))["state"]
        metres, radians = distance_to(state, self.home_state)
        slow = self.limits.home_speed_factor
        # Enough for the distance at the home speed, plus slack for a servo that lags a step behind.
        budget = math.ceil(metres / (slow * self.limits.max_translation)) + math.ceil(
            radians / (slow * self.limits.max_rotation)) + 10
        steps = 0
        while metres > HOME_TOLERANCE[0] or radians > HOME_TOLERANCE[1]:
            if steps == budget:
                raise RuntimeError(f"home: still {metres:.3f} m and {radians:.3f} rad from the home pose after "
                                   f"{steps} steps; the arm is blocked or the backend's home_state is wrong")
            self.controller.step(limit_home_step(state, self.home_state, self.limits).action)
            steps += 1
            state = self._checked_observation(self.controller.observe(images=False))["state"]
            metres, radians = distance_to(state, self.home_state)
        self.controller.home()
        position, limited = limit_gripper(0.0, self.limits)  # home opens the gripper: as far as allowed
        if limited:
            self.controller.set_gripper(position)
        self.counts["homes"] += 1
        self.counts["home_steps"] += steps
        return steps

    def _moving(self, now: float) -> None:
        self.watchdog.feed(now)
        self.holding = False

    def _state_reply(self) -> dict:
        return protocol.pack_observation(self._checked_observation(self.controller.observe(images=False)),
                                         images=False)

    @staticmethod
    def _checked_observation(obs: dict) -> dict:
        for key in ("state", "joints"):
            value = np.asarray(obs[key], dtype=np.float64)
            if value.shape != (7,) or not np.all(np.isfinite(value)):
                raise RuntimeError(f"backend observation '{key}': expected 7 finite numbers, got {value.tolist()}")
        return obs

    def check_watchdog(self) -> bool:
        """Stop the arm if the last motion command is older than the watchdog period. True if it tripped."""
        if not self.watchdog.expired(self.clock()):
            return False
        self.watchdog.disarm()
        self.counts["watchdog"] += 1
        log.warning("watchdog: no motion command for %.0f ms, holding position", self.limits.watchdog_ms)
        try:
            self.controller.stop()
        except Exception:  # keep serving; the next command will report the backend state
            log.exception("watchdog stop failed")
        self.holding = True
        return True

    # ---- socket loop --------------------------------------------------------------------------------------
    def serve(self, address: str = "tcp://127.0.0.1:5555", stop_event: threading.Event | None = None,
              poll_ms: int = 5, on_ready=None) -> None:
        """Answer requests on `address` until `stop_event` is set (or KeyboardInterrupt); then stop the arm.

        Port 0 binds a free port. `on_ready(endpoint)` is called with the bound address once requests can come.
        """
        if address.endswith(":0"):
            address = address[:-2] + ":*"
        context = zmq.Context()
        socket = context.socket(zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, 4 * protocol.MAX_REQUEST_BYTES)  # bigger peers get disconnected
        try:
            socket.bind(address)
            endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
            log.info("serving the %s backend on %s with limits %s", self.controller.backend, endpoint,
                     self.limits.to_dict())
            if on_ready is not None:
                on_ready(endpoint)
            while stop_event is None or not stop_event.is_set():
                if socket.poll(poll_ms, zmq.POLLIN):
                    frames = socket.recv_multipart()
                    socket.send(self.handle(frames))
                self.check_watchdog()
        finally:
            try:
                self.controller.stop()
            finally:
                socket.close(0)
                context.term()
                log.info("server stopped; replies: %s", dict(self.counts))
