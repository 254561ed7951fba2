"""`FrankaController` for a real Franka arm through franky (`pip install franky-control`, libfranka/FCI).

Runs on the robot computer (real-time kernel, wired to the arm's control box), behind
`scripts/franka_server.py --backend franky`, which adds the safety layer; never expose this class to a
network directly. franky is imported only when this controller is built.

How the DROID delta becomes a franky motion (all in the robot base frame):
  target position  = measured position + dxyz
  target rotation  = R(d_euler_xyz) @ measured rotation        (left-multiplied, as in docs/architecture.md)
  robot.move(CartesianMotion(Affine(target position, quaternion), ReferenceType.Absolute), asynchronous=True)
franky's own relative motions are expressed in the end-effector frame, so they are not used. Asynchronous
moves pre-empt the previous target, and franky re-plans a jerk-limited trajectory (Ruckig) at 1 kHz, scaled
by `relative_dynamics_factor`. Errors raised by the motion thread (reflexes, collisions) surface on the next
`move`; the controller then needs `home()`, which calls `recover_from_errors()` before moving.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np
from scipy.spatial.transform import Rotation

from robot.interface import FrankaController, StepResult, as_action

log = logging.getLogger("franky_backend")

# DROID's reset joint configuration (gripper down, in front of the base).
DROID_HOME_JOINTS = (0.0, -np.pi / 5, 0.0, -4 * np.pi / 5, 0.0, 3 * np.pi / 5, 0.0)


def _import_franky():
    try:
        import franky
    except ImportError as exc:
        raise ImportError(
            "the 'franky' backend needs franky-control: pip install 'vjepa-ac[franky]' (or franky-control) on the "
            "robot computer, which needs a real-time kernel; see docs/deployment.md") from exc
    return franky


class FrankyController(FrankaController):
    """A real Franka through franky.

    robot_ip: the FCI address of the control box. cameras: observation key ("rgb", "wrist_rgb", ...) ->
    callable returning the latest uint8 [H, W, 3] RGB frame (e.g. robot.cameras.PyAVCamera); "rgb" is the
    exterior camera the world model sees. relative_dynamics_factor: fraction of the arm's velocity,
    acceleration and jerk limits franky may use (start low). gripper_grasp_above: closedness targets at or
    above it become a force-controlled grasp (holds objects), lower ones a width move. control_period_s: how
    long `step` waits for the motion to arrive before returning (the duration one action stands for: 0.25 s
    for a model trained at 4 fps); a motion still running then keeps going until the next command or until
    the server's watchdog stops it. Raise relative_dynamics_factor until steps arrive within the period.
    """

    backend = "franky"

    def __init__(self, robot_ip: str, *, cameras: Mapping[str, Callable[[], np.ndarray]] | None = None,
                 relative_dynamics_factor: float = 0.05, home_joints=DROID_HOME_JOINTS,
                 gripper_speed: float = 0.05, gripper_force: float = 20.0, gripper_grasp_above: float = 0.9,
                 gripper_deadband: float = 0.05, motion_join_timeout_s: float = 1.0, control_period_s: float = 0.25):
        if not 0.0 < relative_dynamics_factor <= 1.0:
            raise ValueError(f"relative_dynamics_factor: expected a value in (0, 1], got {relative_dynamics_factor}")
        if cameras is not None and "rgb" not in cameras:
            raise ValueError(f"cameras: expected an 'rgb' (exterior) camera among the keys, got {sorted(cameras)}")
        self.franky = _import_franky()
        self.cameras = dict(cameras or {})
        self.home_joints = [float(q) for q in home_joints]
        self.gripper_speed = gripper_speed
        self.gripper_force = gripper_force
        self.gripper_grasp_above = gripper_grasp_above
        self.gripper_deadband = gripper_deadband
        self.motion_join_timeout_s = motion_join_timeout_s
        self.control_period_s = control_period_s

        self.robot = self.franky.Robot(robot_ip)
        self.robot.recover_from_errors()
        self.robot.relative_dynamics_factor = relative_dynamics_factor
        self.gripper = self.franky.Gripper(robot_ip)
        self.max_width = float(self.gripper.max_width)
        self._gripper_command: float | None = None  # last closedness sent to the gripper

    # ---- reading ------------------------------------------------------------------------------------------
    def _ee_pose(self) -> tuple[np.ndarray, Rotation]:
        pose = self.robot.current_cartesian_state.pose.end_effector_pose
        return np.asarray(pose.translation, dtype=np.float64), Rotation.from_quat(np.asarray(pose.quaternion))

    def _closedness(self) -> float:
        return float(np.clip(1.0 - float(self.gripper.width) / self.max_width, 0.0, 1.0))

    def observe(self, images: bool = True) -> dict:
        position, rotation = self._ee_pose()
        state = np.concatenate([position, rotation.as_euler("xyz"), [self._closedness()]])
        obs = {"state": state, "joints": np.asarray(self.robot.current_joint_state.position, dtype=np.float64)}
        if images:
            for name, camera in self.cameras.items():
                obs[name] = np.asarray(camera(), dtype=np.uint8)
        return obs

    # ---- commanding ---------------------------------------------------------------------------------------
    def step(self, action) -> StepResult:
        action = as_action(action, "FrankyController.step")
        position, rotation = self._ee_pose()
        target_rotation = Rotation.from_euler("xyz", action[3:6]) * rotation  # R(delta) @ R
        target = self.franky.Affine(position + action[:3], target_rotation.as_quat())
        motion = self.franky.CartesianMotion(target, self.franky.ReferenceType.Absolute)
        self.robot.move(motion, asynchronous=True)
        if action[6] != 0.0:
            self._command_gripper(float(np.clip(self._closedness() + action[6], 0.0, 1.0)))
        # Observations taken after a step should show its result, as in the training data.
        self.robot.join_motion(timeout=self.control_period_s)
        return StepResult(applied=action)

    def _command_gripper(self, closedness: float) -> None:
        # The gripper is slow and each command interrupts the previous one: skip commands that change little.
        if self._gripper_command is not None and abs(closedness - self._gripper_command) < self.gripper_deadband:
            return
        if closedness >= self.gripper_grasp_above:
            # Force-controlled grasp that succeeds at any width between 0 and fully open.
            self.gripper.grasp_async(0.0, self.gripper_speed, self.gripper_force, epsilon_outer=self.max_width)
        else:
            self.gripper.move_async(self.max_width * (1.0 - closedness), self.gripper_speed)
        self._gripper_command = closedness

    def set_gripper(self, position: float) -> float:
        position = float(np.clip(position, 0.0, 1.0))
        self._gripper_command = None  # an explicit command is always sent
        self._command_gripper(position)
        return position

    def stop(self) -> None:
        """Pre-empt the running motion with a Cartesian stop and wait (bounded) for the arm to settle."""
        self.robot.move(self.franky.CartesianStopMotion(), asynchronous=True)
        if not self.robot.join_motion(timeout=self.motion_join_timeout_s):
            self.robot.stop()  # libfranka's hard stop if the stop motion did not finish in time
            raise RuntimeError(f"the arm did not stop within {self.motion_join_timeout_s} s; sent libfranka stop()")

    def is_moving(self) -> bool:
        return bool(self.robot.is_in_control)  # franky's control loop runs exactly while a motion does

    def home_state(self) -> np.ndarray:
        """Forward kinematics of the home joints (libfranka's model, with the end effector set in Desk)."""
        state = self.robot.state
        pose = self.robot.model.pose(self.franky.Frame.EndEffector, np.asarray(self.home_joints), state.F_T_EE,
                                     state.EE_T_K)
        rotation = Rotation.from_quat(np.asarray(pose.quaternion))
        return np.concatenate([np.asarray(pose.translation, dtype=np.float64), rotation.as_euler("xyz"), [0.0]])

    def home(self) -> dict:
        """Recover from errors, move to the home joints (blocking) and open the gripper."""
        try:
            self.robot.join_motion(timeout=self.motion_join_timeout_s)  # let a running stop finish
        except Exception as exc:  # noqa: BLE001  the stored error of a failed motion: home exists to recover
            log.warning("previous motion ended with %s: %s; recovering", type(exc).__name__, exc)
        self.robot.recover_from_errors()
        self.robot.move(self.franky.JointMotion(self.home_joints))
        self.gripper.open(self.gripper_speed)
        self._gripper_command = 0.0
        return self.observe(images=False)

    def close(self) -> None:
        for camera in self.cameras.values():
            if hasattr(camera, "close"):
                camera.close()
