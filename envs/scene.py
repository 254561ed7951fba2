"""The MuJoCo scene: low-poly Franka Panda on a table, an optional object (cube "box" or cylinder "cup"),
exterior and wrist cameras.

`build_model` assembles the model from `assets/franka_table.xml` with `mujoco.MjSpec` (cameras and the object are
added here so their placement lives next to the constants that describe it). `Robot` gives named access to the
arm's joints, gripper, end-effector site and object in an `MjData`. Colours and exterior-camera poses are model
fields that can change between episodes without recompiling (`set_object_rgba`, `set_camera_pose`).
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
FINGER_GEOMS = ("left_pad", "right_pad")

TABLE_TOP = 0.0  # the robot base stands on the table surface


@dataclass(frozen=True)
class ObjectShape:
    """A graspable object: one collision geom (plus optional visual-only details) on a free joint."""

    geom: int  # mujoco.mjtGeom
    size: tuple[float, float, float]  # MuJoCo geom size
    half_height: float  # centre above the table when resting upright (metres)
    half_width: float  # half its extent across the fingers when grasped (metres)
    rgba: tuple[float, float, float, float]  # default colour
    yaw_period: float  # rotations about z that leave it unchanged (cube pi/2; a cylinder any: 0)


# The paper's two objects (V-JEPA 2-AC, Table 2): a box and a cup. Both about 4 px wide at 64 px.
OBJECTS = {
    "cube": ObjectShape(mujoco.mjtGeom.mjGEOM_BOX, (0.025, 0.025, 0.025), 0.025, 0.025,
                        (0.1, 0.75, 0.2, 1.0), np.pi / 2),
    "cup": ObjectShape(mujoco.mjtGeom.mjGEOM_CYLINDER, (0.03, 0.035, 0.0), 0.035, 0.03,
                       (0.15, 0.35, 0.9, 1.0), 0.0),
}
CUBE_HALF = OBJECTS["cube"].half_height  # 5 cm cube

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


def yaw_quat(yaw: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation by `yaw` about the base z axis."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def build_model(object_shape: str | None) -> mujoco.MjModel:
    """Compile the scene; `object_shape` ("cube", "cup" or None) adds a free object named "object"."""
    spec = mujoco.MjSpec.from_file(str(ASSET))
    for name, cam in CAMERAS.items():
        spec.worldbody.add_camera(name=name, pos=cam["pos"], quat=look_at_quat(cam["pos"], cam["target"]),
                                  fovy=cam["fovy"])
    if object_shape is not None:
        if object_shape not in OBJECTS:
            raise ValueError(f"object: expected one of {sorted(OBJECTS)}, got {object_shape!r}")
        shape = OBJECTS[object_shape]
        body = spec.worldbody.add_body(name="object", pos=(0.5, 0.0, TABLE_TOP + shape.half_height))
        body.add_freejoint(name="object")
        body.add_geom(name="object", type=shape.geom, size=list(shape.size), mass=0.05, rgba=shape.rgba,
                      friction=(0.5, 0.01, 0.001), condim=4, solref=(0.008, 1.0),  # stiff, like the fingers
                      solimp=(0.95, 0.99, 0.001, 0.5, 2.0))
        if object_shape == "cup":  # a dark disc on top reads as the cup's opening; visual only
            body.add_geom(name="cup_opening", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                          size=[shape.size[0] - 0.005, 0.001, 0.0], pos=(0.0, 0.0, shape.half_height),
                          rgba=(0.08, 0.08, 0.1, 1.0), contype=0, conaffinity=0, mass=0.001)
    return spec.compile()


def set_camera_pose(model: mujoco.MjModel, camera: str, offset=(0.0, 0.0, 0.0),
                    target_offset=(0.0, 0.0, 0.0)) -> None:
    """Move exterior camera `camera` by `offset` and make it look at its target moved by `target_offset`
    (base frame, metres); zero offsets restore the default pose. Takes effect at the next kinematics call."""
    default = CAMERAS[camera]
    pos = np.asarray(default["pos"], float) + np.asarray(offset, float)
    target = np.asarray(default["target"], float) + np.asarray(target_offset, float)
    cam = model.camera(camera).id
    model.cam_pos[cam] = pos
    model.cam_quat[cam] = look_at_quat(pos, target)


@dataclass
class SceneConfig:
    """A complete configuration of the scene at rest: what a reset, a goal or a sub-goal image is rendered from.

    Sampled configurations are kinematic (object upright on the table, gripper open or closed on nothing);
    configurations with a grasped object are snapshots of a physics simulation (`Robot.snapshot`), so the
    fingers press on the object exactly as they did when it was held.
    """

    joints: np.ndarray  # [7] arm joint angles (rad)
    gripper: float  # measured closedness in [0, 1]: sets the finger opening
    object_pos: np.ndarray | None = None  # [3] object centre, base frame
    object_quat: np.ndarray | None = None  # [4] (w, x, y, z); None: upright, yaw 0
    gripper_command: float | None = None  # closedness the gripper servo is commanded to; None: = gripper
    # [2] exact finger positions of a physics snapshot (the coupling between the fingers is a soft constraint,
    # so a pinch is not quite symmetric); None: both fingers at the opening `gripper` implies.
    finger_qpos: np.ndarray | None = None


class Robot:
    """Index bookkeeping for the arm, gripper, end-effector site and object of a compiled scene."""

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
        self.finger_geoms = {model.geom(g).id for g in FINGER_GEOMS}
        self.table_geom = model.geom("table").id
        self.has_object = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "object") >= 0
        if self.has_object:
            self.object_qpos = int(model.joint("object").qposadr[0])
            self.object_dof = int(model.joint("object").dofadr[0])
            self.object_geom = model.geom("object").id

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

    def object_pos(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self.object_qpos:self.object_qpos + 3].copy()

    def object_quat(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self.object_qpos + 3:self.object_qpos + 7].copy()

    def object_speed(self, data: mujoco.MjData) -> float:
        """Linear speed of the object (m/s)."""
        return float(np.linalg.norm(data.qvel[self.object_dof:self.object_dof + 3]))

    def object_touches(self, data: mujoco.MjData) -> set[int]:
        """Ids of the geoms in contact with the object (after the last physics step or mj_forward)."""
        touching = set()
        for geom1, geom2 in zip(data.contact.geom1[:data.ncon], data.contact.geom2[:data.ncon]):
            if geom1 == self.object_geom:
                touching.add(int(geom2))
            elif geom2 == self.object_geom:
                touching.add(int(geom1))
        return touching

    def holds_object(self, data: mujoco.MjData) -> bool:
        """Held = both finger pads touch the object (it is pinched between the fingers)."""
        return self.finger_geoms <= self.object_touches(data)

    def snapshot(self, data: mujoco.MjData, gripper_command: float) -> SceneConfig:
        """The scene as it is now in `data` (e.g. after physics settled a grasp), as a SceneConfig."""
        return SceneConfig(self.joints(data), self.gripper(data),
                           self.object_pos(data) if self.has_object else None,
                           self.object_quat(data) if self.has_object else None, gripper_command,
                           data.qpos[self.finger_qpos].copy())

    # --- writing ---------------------------------------------------------------------------------------------
    def set_config(self, data: mujoco.MjData, config: SceneConfig) -> None:
        """Place the scene in `config` at rest, with the actuators holding it there."""
        data.qvel[:] = 0.0
        data.qacc_warmstart[:] = 0.0
        data.qpos[self.arm_qpos] = config.joints
        if config.finger_qpos is None:
            data.qpos[self.finger_qpos] = FINGER_TRAVEL * (1.0 - float(np.clip(config.gripper, 0.0, 1.0)))
        else:
            data.qpos[self.finger_qpos] = config.finger_qpos
        data.ctrl[self.arm_actuators] = config.joints
        command = config.gripper if config.gripper_command is None else config.gripper_command
        data.ctrl[self.gripper_actuator] = FINGER_TRAVEL * (1.0 - float(np.clip(command, 0.0, 1.0)))
        if self.has_object and config.object_pos is not None:
            quat = np.array([1.0, 0.0, 0.0, 0.0]) if config.object_quat is None else config.object_quat
            data.qpos[self.object_qpos:self.object_qpos + 3] = config.object_pos
            data.qpos[self.object_qpos + 3:self.object_qpos + 7] = quat / np.linalg.norm(quat)
        mujoco.mj_forward(self.model, data)

    def set_object_rgba(self, rgba) -> None:
        """Colour of the object (model field: applies to every MjData of this model, goal renders included)."""
        self.model.geom_rgba[self.object_geom] = rgba
