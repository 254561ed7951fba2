"""In-process fake Franka arms for unit tests: exact kinematic integration, tiny images that encode the state."""
from __future__ import annotations

import contextlib
import threading
import time

import msgpack
import numpy as np
from hypothesis import strategies as st

from droid_data.conventions import integrate_actions
from robot import protocol
from robot.interface import FrankaController, StepResult, as_action
from robot.safety import SafetyLimits
from robot.server import FrankaServer

HOME_STATE = np.array([0.5, 0.0, 0.4, np.pi, 0.0, 0.0, 0.0])


class KinematicController(FrankaController):
    """Moves exactly as commanded; records calls so tests can see what reached the 'robot'."""

    backend = "fake"

    def __init__(self, state=HOME_STATE):
        self.state = np.array(state, dtype=np.float64)
        self.joints = np.zeros(7)
        self.executed: list[np.ndarray] = []  # every action that reached the robot
        self.gripper_commands: list[float] = []
        self.stops = 0
        self.homes = 0  # calls of the backend's own home motion
        self.commanded = False  # a motion command came since the last stop
        self.fail_next_step = False

    def observe(self, images: bool = True) -> dict:
        obs = {"state": self.state.copy(), "joints": self.joints.copy()}
        if images:
            obs["rgb"] = np.full((4, 6, 3), int(255 * self.state[6]), dtype=np.uint8)
        return obs

    def step(self, action) -> StepResult:
        action = as_action(action, "KinematicController.step")
        if self.fail_next_step:
            self.fail_next_step = False
            raise RuntimeError("simulated reflex error")
        self.executed.append(action)
        self.state = integrate_actions(self.state, action[None])[-1]
        self.commanded = True
        return StepResult(applied=action, state=self.state.copy())

    def set_gripper(self, position: float) -> float:
        self.gripper_commands.append(position)
        self.state[6] = position
        return position

    def home_state(self) -> np.ndarray:
        return HOME_STATE.copy()

    def home(self) -> dict:
        self.homes += 1
        self.state = HOME_STATE.copy()
        return self.observe(images=False)

    def stop(self) -> None:
        self.stops += 1
        self.commanded = False


class CoastingController(KinematicController):
    """A fake arm whose motion keeps going: each step moves it exactly, then it coasts on at the step's velocity
    (action / step_period_s) until `stop()`, `home()` or the next step.

    Like a real arm with an asynchronous motion in flight (franky's step returns after its control period,
    possibly before the arm arrives), it never comes to rest by itself, so only a stop holds it. The coasting
    is integrated from `clock` whenever the arm is looked at or commanded.
    """

    backend = "fake-coasting"

    def __init__(self, state=HOME_STATE, step_period_s: float = 0.1, clock=time.monotonic):
        super().__init__(state)
        self.step_period_s = step_period_s
        self.clock = clock
        self.velocity = np.zeros(3)  # m/s
        self._since = clock()

    def _coast(self) -> None:
        now = self.clock()
        self.state[:3] += self.velocity * (now - self._since)
        self._since = now

    def observe(self, images: bool = True) -> dict:
        self._coast()
        return super().observe(images)

    def step(self, action) -> StepResult:
        self._coast()
        result = super().step(action)
        self.velocity = np.asarray(action, dtype=np.float64)[:3] / self.step_period_s
        return result

    def home(self) -> dict:
        self._coast()
        self.velocity = np.zeros(3)  # a blocking joint motion ends at rest
        return super().home()

    def stop(self) -> None:
        self._coast()
        self.velocity = np.zeros(3)
        super().stop()

    def is_moving(self) -> bool:
        return bool(np.any(self.velocity))


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def make_server(token=None, robot=None, **limits):
    """A FrankaServer on a fake arm (default: KinematicController) with a hand-driven clock."""
    robot = KinematicController() if robot is None else robot
    clock = FakeClock()
    return FrankaServer(robot, SafetyLimits(**limits), token=token, clock=clock), robot, clock


def call(server, cmd=None, raw=None, **fields):
    """Send one request (or raw bytes) to `server.handle` and decode the reply."""
    frames = [raw] if raw is not None else [protocol.encode_request(cmd, 7, **fields)]
    return protocol.decode_reply(server.handle(frames))


@contextlib.contextmanager
def serving(server: FrankaServer):
    """Run `server.serve` (the real socket loop, watchdog included) in a thread on a free loopback port.

    Yields the endpoint; the loop is stopped (and the arm with it) on exit.
    """
    ready, stop = threading.Event(), threading.Event()
    endpoints = []

    def on_ready(endpoint):
        endpoints.append(endpoint)
        ready.set()

    thread = threading.Thread(target=server.serve, args=("tcp://127.0.0.1:0", stop), kwargs={"on_ready": on_ready},
                              daemon=True)
    thread.start()
    try:
        assert ready.wait(10), "server did not start"
        yield endpoints[0]
    finally:
        stop.set()
        thread.join(10)


# Hostile requests for fuzzing: random bytes, any msgpack value, and maps that look like real commands.
_ints = st.integers(-2**63, 2**64 - 1)  # msgpack's integer range
hostile_values = st.recursive(
    st.none() | st.booleans() | _ints | st.floats() | st.text(max_size=8) | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=8)
    | st.dictionaries(st.text(max_size=8) | _ints, children, max_size=4),
    max_leaves=20)
hostile_requests = st.one_of(
    st.binary(max_size=64),
    hostile_values.map(lambda v: msgpack.packb(v, use_bin_type=True)),
    st.fixed_dictionaries(
        {"cmd": st.sampled_from(protocol.COMMANDS + ("bogus",))},
        optional={"action": hostile_values | st.lists(st.floats() | _ints, min_size=7, max_size=7),
                  "position": hostile_values, "images": hostile_values, "id": hostile_values,
                  "token": hostile_values, "extra": hostile_values},
    ).map(lambda v: msgpack.packb(v, use_bin_type=True)),
)
# Steps whose every field is inside the protocol's domain: these reach the safety layer and move the arm.
plausible_steps = st.tuples(
    st.lists(st.floats(-1, 1), min_size=3, max_size=3),
    st.lists(st.floats(-3.14, 3.14), min_size=3, max_size=3),
    st.floats(-1, 1),
).map(lambda p: msgpack.packb({"cmd": "step", "action": p[0] + p[1] + [p[2]]}))
wild_numbers = st.one_of(
    st.fixed_dictionaries({"cmd": st.just("step"), "action": st.lists(st.floats() | _ints, min_size=7, max_size=7)}),
    st.fixed_dictionaries({"cmd": st.just("gripper"), "position": st.floats() | _ints}),
).map(lambda v: msgpack.packb(v))
fuzz_messages = st.one_of(hostile_requests, plausible_steps, wild_numbers)
