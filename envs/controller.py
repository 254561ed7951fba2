"""Cartesian controller in DROID's delta convention: clamp the 7-D action, build the target pose, solve IK.

An action `[dx, dy, dz, drx, dry, drz, dg]` moves the end effector from its *measured* pose to
`p + dxyz` and `R(d_euler) @ R` (rotation delta left-multiplied, base frame; Euler 'xyz' as in
`droid_data.conventions`) and changes the gripper closedness command by `dg`. The target joints come from
damped-least-squares IK on the end-effector site Jacobian, with a weak pull toward the home posture in the
Jacobian's null space so the redundant elbow does not drift over long episodes. The env then tracks them with
the joint position servos over the physics sub-steps of one control period.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from droid_data.conventions import euler_xyz_to_matrix
from envs.scene import HOME_JOINTS, Robot


@dataclass
class ControllerConfig:
    # Speed limits, applied as per-step limits on the norms of the translation and Euler deltas:
    # limit per step = speed / control rate. At the default 4 Hz that is 0.075 m and 0.15 rad per step, the
    # per-tick caps of DROID's IK solver; at higher rates the arm keeps the same top speed (contact-safe).
    max_speed: float = 0.3  # m/s
    max_angular_speed: float = 0.6  # rad/s
    max_gripper_delta: float = 1.0  # closedness per step
    # Safety box for the target end-effector position (base frame, metres): keeps the fingers off the table
    # and the arm inside the region the exterior camera sees.
    workspace_low: tuple[float, float, float] = (0.25, -0.35, 0.015)
    workspace_high: tuple[float, float, float] = (0.7, 0.35, 0.5)
    ik_damping: float = 0.02
    ik_iterations: int = 25
    ik_tolerance: float = 2e-4  # metres and radians: IK stops iterating below this error
    ik_accept: float = 3e-3  # metres (x10 in radians): a worse IK solution is not executed (unreachable target)
    posture_gain: float = 0.05  # null-space pull toward HOME_JOINTS per IK iteration


def validate_action(action, field: str = "action") -> np.ndarray:
    """A finite float64 array of shape [7], or a ValueError that names the field, expected and actual."""
    array = np.asarray(action, dtype=np.float64)
    if array.shape != (7,):
        raise ValueError(f"{field}: expected shape [7] (dxyz, d_euler_xyz, d_gripper), got {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{field}: expected finite values, got {array.tolist()}")
    return array


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector of `target @ current.T` (base frame), i.e. the rotation still to apply."""
    quat, vel = np.empty(4), np.empty(3)
    mujoco.mju_mat2Quat(quat, (target @ current.T).reshape(-1))
    mujoco.mju_quat2Vel(vel, quat, 1.0)
    return vel


class CartesianController:
    """Turns DROID-convention deltas into joint targets for one robot model (stateless between calls)."""

    def __init__(self, model: mujoco.MjModel, config: ControllerConfig | None = None, control_hz: float = 4.0):
        self.config = config or ControllerConfig()
        self.max_translation = self.config.max_speed / control_hz  # metres per step
        self.max_rotation = self.config.max_angular_speed / control_hz  # radians per step
        self.robot = Robot(model)
        self._model = model
        self._scratch = mujoco.MjData(model)  # IK works on its own copy, never on the simulated state
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def clamp(self, action) -> np.ndarray:
        """Validate and clamp an action to the per-step limits (xyz norm, rotation angle, gripper).

        The rotation is limited by its true angle, not by the norm of its Euler vector: Euler angles such as
        (pi - 0.05, pi, pi) describe a 0.05 rad rotation, and scaling that vector would command a different one.
        """
        action = validate_action(action).copy()
        cfg = self.config
        norm = np.linalg.norm(action[:3])
        if norm > self.max_translation:
            action[:3] *= self.max_translation / norm
        rotvec = Rotation.from_euler("xyz", action[3:6]).as_rotvec()
        angle = np.linalg.norm(rotvec)
        if angle > self.max_rotation:
            action[3:6] = Rotation.from_rotvec(rotvec * (self.max_rotation / angle)).as_euler("xyz")
        action[6] = np.clip(action[6], -cfg.max_gripper_delta, cfg.max_gripper_delta)
        return action

    def target_pose(self, pos: np.ndarray, rot: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Target position (clipped to the workspace box) and rotation for an already clamped action."""
        target_pos = np.clip(pos + action[:3], self.config.workspace_low, self.config.workspace_high)
        target_rot = euler_xyz_to_matrix(action[3:6]) @ rot
        return target_pos, target_rot

    def solve_ik(self, joints: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray,
                 iterations: int | None = None) -> tuple[np.ndarray, float, float]:
        """Joint angles reaching the target pose from `joints` -> (joints, position error m, rotation error rad).

        Damped least squares, clipped to the joint limits after every iteration.
        """
        cfg, robot, data = self.config, self.robot, self._scratch
        q = np.clip(np.asarray(joints, float).copy(), robot.joint_low, robot.joint_high)
        damping = cfg.ik_damping ** 2 * np.eye(6)
        for _ in range(iterations or cfg.ik_iterations):
            err = self._pose_error(q, target_pos, target_rot)
            if max(np.linalg.norm(err[:3]), np.linalg.norm(err[3:])) < cfg.ik_tolerance:
                break
            mujoco.mj_comPos(self._model, data)
            mujoco.mj_jacSite(self._model, data, self._jacp, self._jacr, robot.ee_site)
            jac = np.vstack([self._jacp[:, robot.arm_dof], self._jacr[:, robot.arm_dof]])
            pinv = jac.T @ np.linalg.inv(jac @ jac.T + damping)
            dq = pinv @ err
            dq += (np.eye(7) - pinv @ jac) @ (cfg.posture_gain * (HOME_JOINTS - q))
            q = np.clip(q + dq, robot.joint_low, robot.joint_high)
        err = self._pose_error(q, target_pos, target_rot)
        return q, float(np.linalg.norm(err[:3])), float(np.linalg.norm(err[3:]))

    def _pose_error(self, q: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray) -> np.ndarray:
        """[position error, rotation-vector error] of joints `q`; leaves the scratch data's kinematics at `q`."""
        self._scratch.qpos[self.robot.arm_qpos] = q
        mujoco.mj_kinematics(self._model, self._scratch)
        pos, rot = self.robot.ee_pose(self._scratch)
        return np.concatenate([target_pos - pos, rotation_error(target_rot, rot)])

    def forward(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position and rotation for arm joint angles (forward kinematics)."""
        self._scratch.qpos[self.robot.arm_qpos] = joints
        mujoco.mj_kinematics(self._model, self._scratch)
        return self.robot.ee_pose(self._scratch)
