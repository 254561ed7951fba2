"""FrankyController against a stand-in `franky` module that records calls (the real one needs an arm).

Checks the conversions, which are ours: base-frame DROID deltas -> absolute franky targets, gripper
closedness <-> width, and the order of operations in home/stop.
"""
import sys
import types

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from droid_data.conventions import integrate_actions


class Affine:
    def __init__(self, translation=(0, 0, 0), quaternion=(0, 0, 0, 1)):
        self.translation, self.quaternion = np.asarray(translation, float), np.asarray(quaternion, float)


def make_franky(calls, pose, width=0.08):
    franky = types.ModuleType("franky")
    franky.Affine = Affine
    franky.ReferenceType = types.SimpleNamespace(Absolute="absolute", Relative="relative")
    franky.CartesianMotion = lambda target, reference: ("cartesian", target, reference)
    franky.CartesianStopMotion = lambda: ("cartesian_stop",)
    franky.JointMotion = lambda joints: ("joint", list(joints))
    franky.Frame = types.SimpleNamespace(EndEffector="end_effector", Flange="flange")

    class Model:
        def pose(self, frame, q, F_T_EE, EE_T_K):
            calls.append(("model_pose", frame, list(q), F_T_EE, EE_T_K))
            return Affine([0.31, 0.0, 0.49], Rotation.from_euler("xyz", [np.pi, 0.0, 0.0]).as_quat())

    class Robot:
        def __init__(self, ip):
            calls.append(("robot", ip))
            self.relative_dynamics_factor = 1.0
            self.current_cartesian_state = types.SimpleNamespace(
                pose=types.SimpleNamespace(end_effector_pose=pose))
            self.current_joint_state = types.SimpleNamespace(position=np.arange(7.0))
            self.state = types.SimpleNamespace(F_T_EE="flange_to_ee", EE_T_K="ee_to_k")
            self.model = Model()
            self.is_in_control = False

        def recover_from_errors(self):
            calls.append(("recover",))

        def move(self, motion, asynchronous=False):
            calls.append(("move", motion, asynchronous))

        def join_motion(self, timeout=None):
            calls.append(("join", timeout))
            return True

        def stop(self):
            calls.append(("hard_stop",))

    class Gripper:
        max_width = 0.08

        def __init__(self, ip):
            self.width = width

        def move_async(self, w, speed):
            calls.append(("gripper_move", w))

        def grasp_async(self, w, speed, force, epsilon_outer):
            calls.append(("gripper_grasp", w, epsilon_outer))

        def open(self, speed):
            calls.append(("gripper_open",))

    franky.Robot, franky.Gripper = Robot, Gripper
    return franky


@pytest.fixture
def robot(monkeypatch):
    calls = []
    rotation = Rotation.from_euler("xyz", [np.pi - 0.2, 0.1, 0.4])
    pose = Affine([0.45, -0.1, 0.3], rotation.as_quat())
    monkeypatch.setitem(sys.modules, "franky", make_franky(calls, pose, width=0.06))
    from robot.backends.franky import FrankyController

    return FrankyController("172.16.0.2", relative_dynamics_factor=0.1), calls


def test_state_and_step_target_follow_the_droid_convention(robot):
    controller, calls = robot
    state = controller.observe(images=False)["state"]
    np.testing.assert_allclose(state[:3], [0.45, -0.1, 0.3])
    np.testing.assert_allclose(Rotation.from_euler("xyz", state[3:6]).as_quat(),
                               Rotation.from_euler("xyz", [np.pi - 0.2, 0.1, 0.4]).as_quat(), atol=1e-12)
    assert state[6] == pytest.approx(1 - 0.06 / 0.08)

    action = np.array([0.02, -0.01, 0.03, 0.05, -0.04, 0.1, 0.0])
    controller.step(action)
    kind, target, reference = next(c[1] for c in calls if c[0] == "move")
    assert kind == "cartesian" and reference == "absolute"
    expected = integrate_actions(state, action[None])[-1]  # the project's definition of the action
    np.testing.assert_allclose(target.translation, expected[:3], atol=1e-12)
    got = Rotation.from_quat(target.quaternion)
    assert (got * Rotation.from_euler("xyz", expected[3:6]).inv()).magnitude() < 1e-9
    assert calls[-1] == ("join", controller.control_period_s)  # waits for the arm within the period


def test_gripper_moves_or_grasps(robot):
    controller, calls = robot
    controller.set_gripper(0.5)
    controller.set_gripper(1.0)
    assert ("gripper_move", pytest.approx(0.04)) in calls
    assert ("gripper_grasp", 0.0, 0.08) in calls


def test_home_recovers_then_moves_and_opens(robot):
    controller, calls = robot
    calls.clear()
    controller.home()
    names = [c[0] for c in calls]
    assert names.index("recover") < names.index("move") < names.index("gripper_open")
    assert calls[names.index("move")][1][0] == "joint"
    calls.clear()
    controller.stop()
    assert calls[0][1] == ("cartesian_stop",) and calls[1][0] == "join"


def test_home_state_and_motion_flag_for_the_server(robot):
    controller, calls = robot
    home = controller.home_state()  # forward kinematics of the home joints with the EE configured on the robot
    _, frame, q, f_t_ee, ee_t_k = next(c for c in calls if c[0] == "model_pose")
    assert frame == "end_effector" and (f_t_ee, ee_t_k) == ("flange_to_ee", "ee_to_k")
    np.testing.assert_allclose(q, controller.home_joints)
    np.testing.assert_allclose(home[:3], [0.31, 0.0, 0.49])
    assert Rotation.from_euler("xyz", home[3:6]).magnitude() == pytest.approx(np.pi) and home[6] == 0.0
    assert controller.is_moving() is False
    controller.robot.is_in_control = True  # an asynchronous motion still running
    assert controller.is_moving() is True


def test_missing_franky_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "franky", None)  # import franky -> ImportError
    from robot.backends.franky import FrankyController

    with pytest.raises(ImportError, match="franky-control"):
        FrankyController("172.16.0.2")
