"""The three Franka tasks: where starts and goals are sampled and when an episode counts as solved.

Regions are in the robot base frame (metres) and lie where the exterior camera sees the arm well. Start and goal
are sampled a meaningful distance apart (reach 8-25 cm, push 8-20 cm, pick-and-place 10-25 cm).
"""
from __future__ import annotations

import numpy as np

from droid_data.conventions import euler_xyz_to_matrix, matrix_to_euler_xyz
from envs.franka_env import FrankaEnv
from envs.scene import CUBE_HALF, HOME_JOINTS, TABLE_TOP, SceneConfig

REACH_LOW, REACH_HIGH = np.array([0.35, -0.2, 0.08]), np.array([0.65, 0.2, 0.38])
CUBE_LOW, CUBE_HIGH = np.array([0.4, -0.17]), np.array([0.63, 0.17])
ARM_START_LOW, ARM_START_HIGH = np.array([0.35, -0.15, 0.15]), np.array([0.55, 0.15, 0.3])
MAX_YAW_OFFSET = 0.5  # rad, random yaw of start / reach-goal orientations around the home orientation
REACH_SUCCESS, OBJECT_SUCCESS = 0.04, 0.05  # metres
# Finger axis (hand y) of the home orientation points along -45 degrees in the base xy-plane.
HOME_FINGER_ANGLE = -np.pi / 4


def wrap_quarter_turn(angle: float) -> float:
    """Angle modulo pi/2 into [-pi/4, pi/4): a square's orientation as seen by a parallel gripper."""
    return (angle + np.pi / 4) % (np.pi / 2) - np.pi / 4


class _TaskBase(FrankaEnv):
    def _home_rotation(self) -> np.ndarray:
        return self.controller.forward(HOME_JOINTS)[1]

    def _rotation_with_yaw(self, yaw: float) -> np.ndarray:
        return euler_xyz_to_matrix(np.array([0.0, 0.0, yaw])) @ self._home_rotation()

    def _arm_config(self, pos: np.ndarray, yaw: float) -> np.ndarray | None:
        """Joints putting the EE at `pos` with the home orientation turned by `yaw`, or None if IK fails."""
        joints, pos_err, rot_err = self.controller.solve_ik(HOME_JOINTS, pos, self._rotation_with_yaw(yaw),
                                                            iterations=200)
        return joints if pos_err < 1e-3 and rot_err < 1e-2 else None

    def _sample_pair(self, rng, low, high, min_dist, max_dist) -> tuple[np.ndarray, np.ndarray]:
        """Two uniform points in the box [low, high] whose distance lies in [min_dist, max_dist]."""
        for _ in range(1000):
            a, b = rng.uniform(low, high), rng.uniform(low, high)
            if min_dist <= np.linalg.norm(a - b) <= max_dist:
                return a, b
        raise RuntimeError(f"{self.task_name}: could not sample two points {min_dist}-{max_dist} m apart in "
                           f"[{low}, {high}]")

    def _sample_arm(self, rng, low=ARM_START_LOW, high=ARM_START_HIGH) -> np.ndarray:
        for _ in range(100):
            joints = self._arm_config(rng.uniform(low, high), rng.uniform(-MAX_YAW_OFFSET, MAX_YAW_OFFSET))
            if joints is not None:
                return joints
        raise RuntimeError(f"{self.task_name}: IK failed for 100 sampled start poses in [{low}, {high}]")


class FrankaReachEnv(_TaskBase):
    """Move the end effector to a goal pose. Success: EE within 4 cm of the goal position."""

    default_max_steps = 30
    task_name = "reach"

    def sample_episode(self, rng):
        for _ in range(100):
            start_pos, goal_pos = self._sample_pair(rng, REACH_LOW, REACH_HIGH, 0.08, 0.25)
            yaws = rng.uniform(-MAX_YAW_OFFSET, MAX_YAW_OFFSET, size=2)
            start, goal = self._arm_config(start_pos, yaws[0]), self._arm_config(goal_pos, yaws[1])
            if start is not None and goal is not None:
                return SceneConfig(start, 0.0), SceneConfig(goal, 0.0)
        raise RuntimeError("reach: IK failed for 100 sampled start/goal pairs")

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self.ee_pose()[0] - self.goal_state[:3]))

    def is_success(self) -> bool:
        return self.distance_to_goal() < REACH_SUCCESS


class _CubeTask(_TaskBase):
    with_cube = True
    min_goal_dist, max_goal_dist = 0.08, 0.2

    def goal_arm_pose(self, cube_start: np.ndarray, goal_spot: np.ndarray, cube_yaw: float) -> tuple:
        """(EE position, yaw, gripper) of the arm in the goal image: a plausible pose at the end of the task."""
        raise NotImplementedError

    def sample_episode(self, rng):
        for _ in range(100):
            cube_xy, goal_xy = self._sample_pair(rng, CUBE_LOW, CUBE_HIGH, self.min_goal_dist, self.max_goal_dist)
            cube_yaw = rng.uniform(-np.pi / 4, np.pi / 4)
            cube = np.array([*cube_xy, TABLE_TOP + CUBE_HALF])
            goal_spot = np.array([*goal_xy, TABLE_TOP + CUBE_HALF])
            ee_pos, ee_yaw, gripper = self.goal_arm_pose(cube, goal_spot, cube_yaw)
            goal_joints = self._arm_config(ee_pos, ee_yaw)
            if goal_joints is not None:
                start = SceneConfig(self._sample_arm(rng), 0.0, cube, cube_yaw)
                return start, SceneConfig(goal_joints, gripper, goal_spot, cube_yaw)
        raise RuntimeError(f"{self.task_name}: IK failed for 100 sampled goal arm poses")

    def object_pos(self) -> np.ndarray:
        return self.robot.cube_pos(self.data)

    def object_yaw(self) -> float:
        body = self.model.body("cube").id
        return float(matrix_to_euler_xyz(self.data.xmat[body].reshape(3, 3))[2])

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self.object_pos() - self.goal_config.cube_pos))

    def is_success(self) -> bool:
        return self.distance_to_goal() < OBJECT_SUCCESS

    def task_info(self) -> dict:
        return {"object_pos": self.object_pos(), "object_yaw": self.object_yaw(),
                "goal_object_pos": self.goal_config.cube_pos.copy()}


def grasp_yaw(cube_yaw: float) -> float:
    """EE yaw offset (from the home orientation) that puts the finger axis across a pair of cube faces."""
    return wrap_quarter_turn(cube_yaw - HOME_FINGER_ANGLE)


class FrankaPushEnv(_CubeTask):
    """Push the cube to a goal spot on the table. Success: cube centre within 5 cm of the spot."""

    default_max_steps = 60
    task_name = "push"

    def goal_arm_pose(self, cube_start, goal_spot, cube_yaw):
        direction = (goal_spot - cube_start) / np.linalg.norm(goal_spot - cube_start)
        ee = goal_spot - direction * (CUBE_HALF + 0.03)  # just behind the cube, where a push ends
        ee[2] = TABLE_TOP + 0.03
        return ee, grasp_yaw(cube_yaw), 1.0


class FrankaPickPlaceEnv(_CubeTask):
    """Lift the cube and place it at a goal spot. Success: cube centre within 5 cm of the spot."""

    default_max_steps = 80
    task_name = "pick_place"
    min_goal_dist, max_goal_dist = 0.1, 0.25

    def goal_arm_pose(self, cube_start, goal_spot, cube_yaw):
        ee = goal_spot.copy()
        ee[2] = TABLE_TOP + 0.13  # hovering above the cube it just released
        return ee, grasp_yaw(cube_yaw), 0.0
