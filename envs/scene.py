"""The MuJoCo scene: low-poly Franka Panda on a table, optional cube, exterior and wrist cameras.

`build_model` assembles the model from `assets/franka_table.xml` with `mujoco.MjSpec` (cameras and the cube are
added here so their placement lives next to the constants that describe it). `Robot` gives named access to the
arm's joints, gripper and end-effector site in an `MjData`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

ASSET = Path(__file__).parent / "assets" / "franka_table.xml"

ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
# DROID's reset pose (droid/franka/robot.py): gripper pointing down, EE at about (0.36, 0, 0.39) m.
HOME_JOINTS = np.array([0.0, -np.pi / 5, 0.0, -4 * np.pi / 5, 0.0, 3 * np.pi / 5, 0.0])
FINGER_TRAVEL = 0.04  # metres per finger; closedness g maps to a finger opening of FINGER_TRAVEL * (1 - g)

CUBE_HALF = 0.025  # 5 cm cube: about 4 px wide at 64 px
TABLE_TOP = 0.0  # the robot base stands on the table surface

# Exterior cameras placed like DROID's tripod cameras: beside and in front of the table, looking at the
# workspace from 30 degrees above, 1 m away, so the reachable workspace fills the frame. Base frame, metres.
CAMERAS = {
    "ext1": {"pos": (0.947, -0.709, 0.75), "target": (0.45, 0.0, 0.25), "fovy": 50.0},
    "ext2": {"pos": (0.947, 0.709, 0.75), "target": (0.45, 0.0, 0.25), "fovy": 50.0},
}
CAMERA_NAMES = (*CAMERAS, "wrist")


def look_at_quat(pos, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Quaternion (w, x, y, z) of a MuJoCo camera at `pos` looking at `target` (MuJoCo cameras look along -z)."""
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    rot = np.stack([right, cam_up, -forward], axis=1)  # columns: camera x, y, z in the world frame
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, rot.reshape(-1))
    return quat


def build_model(with_cube: bool) -> mujoco.MjModel:
    """Compile the scene; `with_cube` adds a free 4 cm cube (push / pick-and-place)."""
    spec = mujoco.MjSpec.from_file(str(ASSET))
    for name, cam in CAMERAS.items():
        spec.worldbody.add_camera(name=name, pos=cam["pos"], quat=look_at_quat(cam["pos"], cam["target"]),
                                  fovy=cam["fovy"])
    if with_cube:
        cube = spec.worldbody.add_body(name="cube", pos=(0.5, 0.0, TABLE_TOP + CUBE_HALF))
        cube.add_freejoint(name="cube")
        cube.add_geom(name="cube", type=mujoco.mjtGeom.mjGEOM_BOX, size=[CUBE_HALF] * 3, mass=0.05,
                      rgba=(0.1, 0.75, 0.2, 1.0), friction=(1.0, 0.01, 0.001), condim=4)
    return spec.compile()


@dataclass
class SceneConfig:
    """A complete kinematic configuration of the scene: what a reset or a goal image is rendered from."""

    joints: np.ndarray  # [7] arm joint angles (rad)
    gripper: float  # closedness in [0, 1]
    cube_pos: np.ndarray | None = None  # [3] cube centre, base frame
    cube_yaw: float = 0.0


class Robot:
    """Index bookkeeping for the arm, gripper, end-effector site and cube of a compiled scene."""

    def __init__(self, model: mujoco.MjModel):
        self.model = model
        self.arm_qpos = np.array([model.joint(j).qposadr[0] for j in ARM_JOINTS])
        self.arm_dof = np.array([model.joint(j).dofadr[0] for j in ARM_JOINTS])
        self.finger_qpos = np.array([model.joint(j).qposadr[0] for j in ("finger_left", "finger_right")])
        self.finger_dof = np.array([model.joint(j).dofadr[0] for j in ("finger_left", "finger_right")])
        self.joint_low = model.jnt_range[[model.joint(j).id for j in ARM_JOINTS], 0].copy()
        self.joint_high = model.jnt_range[[model.joint(j).id for j in ARM_JOINTS], 1].copy()
        self.arm_actuators = np.array([model.actuator(f"act{i}").id for i in range(1, 8)])
        # a slice when the actuators are contiguous (they are in the asset): cheaper in the sub-step loop
        contiguous = np.array_equal(self.arm_actuators, np.arange(self.arm_actuators[0], self.arm_actuators[0] + 7))
        self.arm_ctrl = slice(self.arm_actuators[0], self.arm_actuators[0] + 7) if contiguous else self.arm_actuators
        self.gripper_actuator = model.actuator("gripper").id
        self.ee_site = model.site("ee").id
        self.has_cube = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "cube") >= 0
        if self.has_cube:
            joint = model.joint("cube")
            self.cube_qpos = int(joint.qposadr[0])
            self.cube_dof = int(joint.dofadr[0])

    # --- reading ---------------------------------------------------------------------------------------------
    def joints(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self.arm_qpos].copy()

    def gripper(self, data: mujoco.MjData) -> float:
        """Measured closedness: 0 with both fingers fully open, 1 with them touching."""
        opening = data.qpos[self.finger_qpos].sum() / (2 * FINGER_TRAVEL)
        return float(np.clip(1.0 - opening, 0.0, 1.0))

    def ee_pose(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position [3] and rotation matrix [3, 3] in the base frame (needs kinematics done)."""
        return data.site_xpos[self.ee_site].copy(), data.site_xmat[self.ee_site].reshape(3, 3).copy()

    def cube_pos(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self.cube_qpos:self.cube_qpos + 3].copy()

    # --- writing ---------------------------------------------------------------------------------------------
    def set_config(self, data: mujoco.MjData, config: SceneConfig) -> None:
        """Place the scene kinematically in `config` at rest, with the actuators holding it there."""
        data.qvel[:] = 0.0
        data.qacc_warmstart[:] = 0.0
        data.qpos[self.arm_qpos] = config.joints
        opening = FINGER_TRAVEL * (1.0 - float(np.clip(config.gripper, 0.0, 1.0)))
        data.qpos[self.finger_qpos] = opening
        data.ctrl[self.arm_actuators] = config.joints
        data.ctrl[self.gripper_actuator] = opening
        if self.has_cube and config.cube_pos is not None:
            data.qpos[self.cube_qpos:self.cube_qpos + 3] = config.cube_pos
            half = 0.5 * config.cube_yaw
            data.qpos[self.cube_qpos + 3:self.cube_qpos + 7] = (np.cos(half), 0.0, 0.0, np.sin(half))
        mujoco.mj_forward(self.model, data)
