"""`home` obeys the safety layer: rate limit, refusal while moving, a walk inside the box at the home speed."""
import math

import numpy as np
import pytest
from robot_fakes import HOME_STATE, CoastingController, FakeClock, KinematicController, call, make_server
from scipy.spatial.transform import Rotation

from envs.scene import HOME_JOINTS, SceneConfig
from robot import protocol
from robot.backends.sim import SimController
from robot.interface import StepResult
from robot.safety import HOME_TOLERANCE, SafetyLimits, distance_to, limit_home_step
from robot.server import FrankaServer

LIMITS = SafetyLimits()
SLOW_T = LIMITS.home_speed_factor * LIMITS.max_translation  # metres per step on the way home
SLOW_R = LIMITS.home_speed_factor * LIMITS.max_rotation  # radians per step
# Far from home but inside the default box: 0.47 m away, turned 0.8 rad, gripper closed.
FAR = HOME_STATE + np.array([-0.25, 0.35, -0.20, 0.0, 0.0, 0.8, 1.0])


def rotation_angle(euler):
    return float(Rotation.from_euler("xyz", euler).magnitude())


def test_home_walks_straight_home_in_steps_within_the_home_speed():
    server, robot, _ = make_server(robot=KinematicController(FAR))
    reply = call(server, "home")
    assert reply["ok"], reply
    distance = float(np.linalg.norm(FAR[:3] - HOME_STATE[:3]))
    assert reply["steps"] == len(robot.executed) >= math.ceil(distance / SLOW_T)
    low, high = np.array(LIMITS.workspace_low), np.array(LIMITS.workspace_high)
    direction = (HOME_STATE[:3] - FAR[:3]) / distance
    position = FAR[:3].copy()
    for action in robot.executed:
        assert np.linalg.norm(action[:3]) <= SLOW_T + 1e-9
        assert rotation_angle(action[3:6]) <= SLOW_R + 1e-9
        position = position + action[:3]
        assert np.all(position >= low) and np.all(position <= high)
        off_line = (position - FAR[:3]) - np.dot(position - FAR[:3], direction) * direction
        assert np.linalg.norm(off_line) < 1e-9  # on the segment from the start to home
    assert robot.homes == 1  # the backend's own motion only finishes the way, from within the tolerance
    np.testing.assert_allclose(reply["obs"]["state"], HOME_STATE)
    assert server.counts["home_steps"] == reply["steps"]


def test_home_is_rate_limited_like_every_motion_command():
    server, robot, clock = make_server(max_rate_hz=10.0)
    assert call(server, "home")["ok"]
    clock.now = 0.01
    assert call(server, "home")["error"]["code"] == protocol.RATE_LIMITED
    clock.now = 0.05
    assert call(server, "step", action=[0.01] + [0] * 6)["error"]["code"] == protocol.RATE_LIMITED
    clock.now = 0.11
    assert call(server, "home")["ok"] and robot.homes == 2
    clock.now = 0.15
    assert call(server, "step", action=[0.01] + [0] * 6)["error"]["code"] == protocol.RATE_LIMITED
    assert robot.executed == []  # nothing moved but the two accepted homes (already at home: no walk)


def test_home_is_refused_while_a_motion_runs():
    clock = FakeClock()
    robot = CoastingController(clock=clock)
    server = FrankaServer(robot, SafetyLimits(), clock=clock)
    assert call(server, "step", action=[0.01] + [0] * 6)["ok"]
    clock.now = 1.0
    reply = call(server, "home")
    assert reply["error"]["code"] == protocol.BUSY and "stop" in reply["error"]["message"]
    assert robot.homes == 0 and len(robot.executed) == 1
    assert call(server, "stop")["ok"] and not robot.is_moving()
    clock.now = 2.0
    assert call(server, "home")["ok"] and robot.homes == 1


def test_a_home_pose_outside_the_box_stops_the_server_from_starting():
    with pytest.raises(ValueError, match=r"home pose \[0.5, 0.0, 0.4\] m lies outside the workspace box"):
        FrankaServer(KinematicController(), SafetyLimits(workspace_high=(0.8, 0.45, 0.35)))


def test_a_home_that_never_arrives_is_a_robot_error_and_stops_the_arm():
    class Stuck(KinematicController):
        def step(self, action):
            self.executed.append(action)  # blocked: the arm does not move
            return StepResult(applied=np.zeros(7), state=self.state.copy())

    server, robot, _ = make_server(robot=Stuck(FAR))
    reply = call(server, "home")
    assert reply["error"]["code"] == protocol.ROBOT_ERROR and "from the home pose after" in reply["error"]["message"]
    assert robot.homes == 0 and robot.stops == 1
    assert len(robot.executed) < 100  # a bounded number of tries


def test_home_respects_the_gripper_range():
    server, robot, _ = make_server(robot=KinematicController(FAR), gripper_min=0.2)
    assert call(server, "home")["ok"]
    assert robot.gripper_commands == [0.2] and robot.state[6] == pytest.approx(0.2)


def test_limit_home_step_from_outside_the_box_comes_back_first():
    outside = HOME_STATE.copy()
    outside[2] = LIMITS.workspace_high[2] + 0.3
    state = outside
    for _ in range(40):
        safe = limit_home_step(state, HOME_STATE, LIMITS)
        assert np.linalg.norm(safe.action[:3]) <= SLOW_T + 1e-12
        state = safe.target
    assert distance_to(state, HOME_STATE)[0] < 1e-9


class TrackedSim(SimController):
    """The simulator, remembering where the end effector is after every command."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.path = []

    def step(self, action):
        result = super().step(action)
        self.path.append(self.env.state())
        return result

    def home(self):
        obs = super().home()
        self.path.append(self.env.state())
        return obs


def test_sim_home_from_far_moves_in_bounded_steps_inside_the_box():
    """Before, one `home` moved the simulated arm 0.42 m in one command; now it is a walk at the home speed.

    The start lies inside the sim's own IK box too (envs.controller.ControllerConfig), which would otherwise pull
    the first step in by itself.
    """
    sim = TrackedSim("FrankaReach-v0", seed=1, image_size=32)
    try:
        far = HOME_JOINTS + np.array([-0.4, 0.8, -0.4, 0.0, 0.1, 0.5, 0.2])  # EE near (0.28, -0.29, 0.10)
        sim.env.set_config(SceneConfig(joints=far, gripper=0.8))
        start = sim.env.state()
        home = sim.home_state()
        assert np.linalg.norm(start[:3] - home[:3]) > 0.4
        server = FrankaServer(sim, LIMITS)
        reply = call(server, "home")
        assert reply["ok"], reply
        path = np.array([start] + sim.path)
        tol = 0.01  # the simulated servo's tracking lag, as in test_server_process
        moves = np.linalg.norm(np.diff(path[:, :3], axis=0), axis=1)
        assert moves.max() <= SLOW_T + tol, moves.round(4)
        low, high = np.array(LIMITS.workspace_low), np.array(LIMITS.workspace_high)
        assert np.all(path[:, :3] >= low - 1e-9) and np.all(path[:, :3] <= high + 1e-9)
        before_settle = path[-2]
        assert distance_to(before_settle, home)[0] <= HOME_TOLERANCE[0]
        np.testing.assert_allclose(sim.env.robot.joints(sim.env.data), HOME_JOINTS, atol=0.02)
        assert reply["obs"]["state"][6] < 0.05  # opened
    finally:
        sim.close()
