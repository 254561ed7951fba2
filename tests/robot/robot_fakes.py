"""In-process fake Franka for unit tests: exact kinematic integration, tiny images that encode the state."""
from __future__ import annotations

import msgpack
import numpy as np
from hypothesis import strategies as st

from droid_data.conventions import integrate_actions
from robot import protocol
from robot.interface import FrankaController, StepResult, as_action

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
        self.moving = False
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
        self.moving = True
        return StepResult(applied=action, state=self.state.copy())

    def set_gripper(self, position: float) -> float:
        self.gripper_commands.append(position)
        self.state[6] = position
        return position

    def home(self) -> dict:
        self.state = HOME_STATE.copy()
        return self.observe(images=False)

    def stop(self) -> None:
        self.stops += 1
        self.moving = False


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
