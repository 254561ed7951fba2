"""The low-poly Panda has Franka's published kinematics and joint limits; IK respects them."""
import numpy as np
import pytest

from envs.controller import CartesianController
from envs.scene import HOME_JOINTS, build_model

# Franka's modified-DH table (a, d, alpha) per joint, flange offset and datasheet joint limits — written out
# independently of the MJCF so the test can catch a wrong body offset or rotation in the asset.
DH = [(0, 0.333, 0), (0, 0, -np.pi / 2), (0, 0.316, np.pi / 2), (0.0825, 0, np.pi / 2),
      (-0.0825, 0.384, -np.pi / 2), (0, 0, np.pi / 2), (0.088, 0, np.pi / 2)]
FLANGE, TCP = 0.107, 0.1034
LIMITS = [(-2.8973, 2.8973), (-1.7628, 1.7628), (-2.8973, 2.8973), (-3.0718, -0.0698),
          (-2.8973, 2.8973), (-0.0175, 3.7525), (-2.8973, 2.8973)]


def _craig(a, d, alpha, theta):
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array([[ct, -st, 0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca], [0, 0, 0, 1]])


def dh_forward(q):
    """TCP pose from the DH table: flange, then the hand turned -45 degrees about z, then 0.1034 m along z."""
    pose = np.eye(4)
    for (a, d, alpha), theta in zip(DH, q):
        pose = pose @ _craig(a, d, alpha, theta)
    pose = pose @ _craig(0, FLANGE, 0, -np.pi / 4) @ _craig(0, TCP, 0, 0)
    return pose[:3, 3], pose[:3, :3]


@pytest.fixture(scope="module")
def controller():
    return CartesianController(build_model(object_shape=None))


def test_forward_kinematics_matches_the_dh_table(controller):
    rng = np.random.default_rng(0)
    low, high = np.array(LIMITS).T
    for q in [np.zeros(7), HOME_JOINTS, *rng.uniform(low, high, size=(20, 7))]:
        pos, rot = controller.forward(q)
        ref_pos, ref_rot = dh_forward(q)
        np.testing.assert_allclose(pos, ref_pos, atol=1e-6)
        np.testing.assert_allclose(rot, ref_rot, atol=1e-6)


def test_home_pose_points_the_gripper_down_in_front_of_the_robot(controller):
    pos, rot = controller.forward(HOME_JOINTS)
    assert 0.3 < pos[0] < 0.45 and abs(pos[1]) < 1e-6 and 0.3 < pos[2] < 0.45
    np.testing.assert_allclose(rot[:, 2], [0, 0, -1], atol=1e-6)  # tool z axis straight down


def test_joint_limits_are_the_datasheet_values(controller):
    robot = controller.robot
    np.testing.assert_allclose(np.stack([robot.joint_low, robot.joint_high], 1), LIMITS)
    model = controller._model
    np.testing.assert_allclose(model.actuator_ctrlrange[robot.arm_actuators], LIMITS)


def test_ik_reaches_a_pose_and_stays_within_limits(controller):
    start_pos, start_rot = controller.forward(HOME_JOINTS)
    target = start_pos + np.array([0.15, -0.1, -0.2])
    q, pos_err, rot_err = controller.solve_ik(HOME_JOINTS, target, start_rot, iterations=200)
    assert pos_err < 1e-3 and rot_err < 1e-3
    np.testing.assert_allclose(controller.forward(q)[0], target, atol=1e-3)
    # An unreachable target: IK gives up with a large error instead of leaving the joint limits.
    q, pos_err, _ = controller.solve_ik(HOME_JOINTS, np.array([2.0, 0.0, 0.3]), start_rot, iterations=100)
    assert pos_err > 0.5
    assert np.all(q >= controller.robot.joint_low) and np.all(q <= controller.robot.joint_high)
