"""Base gymnasium env: a Franka Panda on a table, DROID-convention Cartesian deltas, goal images.

Tasks (envs/tasks.py) only say how to sample a start and a goal configuration and when the episode succeeded;
everything else — physics, control, rendering, observations, goal images — lives here.

The low-level operations are public so other code can drive the simulated arm like a real one (e.g. the
robot server's sim backend, `robot.backends.sim`): `apply_delta`, `set_gripper`, `go_home`, `observe`, `set_config`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from droid_data.conventions import matrix_to_euler_xyz
from envs.controller import CartesianController, ControllerConfig
from envs.scene import CAMERA_NAMES, FINGER_TRAVEL, HOME_JOINTS, Robot, SceneConfig, build_model


@dataclass
class EnvConfig:
    image_size: int = 64  # square renders, pixels
    camera: str = "ext1"  # exterior camera for obs["rgb"]: "ext1" (front right) or "ext2" (front left)
    wrist_camera: bool = False  # also return obs["wrist_rgb"]
    control_hz: float = 4.0  # V-JEPA 2-AC samples DROID at 4 fps; 4-15 Hz supported
    max_steps: int | None = None  # step budget before truncation; None = the task's default
    controller: ControllerConfig = field(default_factory=ControllerConfig)


def state_from_pose(pos: np.ndarray, rot: np.ndarray, gripper: float) -> np.ndarray:
    """7-D DROID state [xyz, euler xyz, gripper closedness] (float64)."""
    return np.concatenate([pos, matrix_to_euler_xyz(rot), [gripper]])


class FrankaEnv(gym.Env):
    """Shared machinery of the Franka tasks. Subclasses implement `sample_episode` and `is_success`."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 4}
    with_cube = False
    default_max_steps = 50
    task_name = "franka"

    def __init__(self, render_mode: str | None = "rgb_array", config: EnvConfig | None = None, **overrides):
        for key in overrides:  # gym.make(..., image_size=128, control_hz=10) etc.
            if key not in EnvConfig.__dataclass_fields__:  # Python's wording: wrappers (torchrl) match on it
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {key!r}; options "
                                f"are {sorted(EnvConfig.__dataclass_fields__)}")
        config = dataclasses.replace(config or EnvConfig(), **overrides)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode: expected 'rgb_array' or None, got {render_mode!r}")
        if config.camera not in CAMERA_NAMES[:-1]:
            raise ValueError(f"camera: expected one of {CAMERA_NAMES[:-1]}, got {config.camera!r}")
        if not 1.0 <= config.control_hz <= 50.0:
            raise ValueError(f"control_hz: expected a rate in [1, 50] Hz (4-15 is DROID-like), got {config.control_hz}")
        if int(config.image_size) < 16:
            raise ValueError(f"image_size: expected >= 16 pixels, got {config.image_size}")
        self.config = config
        self.render_mode = render_mode
        self.max_steps = int(config.max_steps or self.default_max_steps)
        self.metadata = {**self.metadata, "render_fps": config.control_hz}

        self.model = build_model(self.with_cube)
        self.data = mujoco.MjData(self.model)
        self.goal_data = mujoco.MjData(self.model)  # the goal configuration, only ever rendered
        self.robot = Robot(self.model)
        self.controller = CartesianController(self.model, config.controller, config.control_hz)
        self.n_substeps = max(1, round(1.0 / (config.control_hz * self.model.opt.timestep)))
        size = int(config.image_size)
        # An offscreen buffer no larger than the image: clearing a bigger one costs time on software GL.
        self.model.vis.global_.offwidth = self.model.vis.global_.offheight = size
        self._renderer = mujoco.Renderer(self.model, size, size)

        image = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        spaces = {
            "rgb": image,
            # xyz within reach of the base, Euler angles in matrix_to_euler_xyz's ranges, gripper in [0, 1].
            "state": gym.spaces.Box(np.array([-1.5, -1.5, -1.0, -np.pi, -np.pi / 2, -np.pi, 0.0], np.float32),
                                    np.array([1.5, 1.5, 1.5, np.pi, np.pi / 2, np.pi, 1.0], np.float32)),
            # joint limits plus a margin for the soft limit constraint
            "joints": gym.spaces.Box((self.robot.joint_low - 0.05).astype(np.float32),
                                     (self.robot.joint_high + 0.05).astype(np.float32)),
        }
        if config.wrist_camera:
            spaces["wrist_rgb"] = image
        self.observation_space = gym.spaces.Dict(spaces)
        ctl = self.controller
        limit = np.array([ctl.max_translation] * 3 + [ctl.max_rotation] * 3 + [ctl.config.max_gripper_delta],
                         np.float32)
        self.action_space = gym.spaces.Box(-limit, limit, dtype=np.float32)

        self.gripper_command = 0.0
        self.goal_config: SceneConfig | None = None
        self.goal_state = np.zeros(7)
        self.goal_rgb = np.zeros((size, size, 3), np.uint8)
        self.steps = 0

    # --- task interface ------------------------------------------------------------------------------------------
    def sample_episode(self, rng: np.random.Generator) -> tuple[SceneConfig, SceneConfig]:
        """(start, goal) scene configurations for a new episode."""
        raise NotImplementedError

    def is_success(self) -> bool:
        raise NotImplementedError

    def distance_to_goal(self) -> float:
        """Metres between what the task moves (EE or cube) and its goal; the reward is its negative."""
        raise NotImplementedError

    def task_info(self) -> dict:
        """Privileged extras for scripted policies and evaluation (object pose, ...)."""
        return {}

    # --- low-level operations (public: a sim robot backend wraps these) ----------------------------------------
    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.robot.ee_pose(self.data)

    def state(self) -> np.ndarray:
        """Current 7-D state (float64): measured EE pose and gripper closedness."""
        pos, rot = self.ee_pose()
        return state_from_pose(pos, rot, self.robot.gripper(self.data))

    def set_config(self, config: SceneConfig) -> None:
        """Teleport the scene to `config` (arm at rest, servos holding it, gripper command = its closedness)."""
        self.robot.set_config(self.data, config)
        self.gripper_command = float(np.clip(config.gripper, 0.0, 1.0))

    def apply_delta(self, action) -> np.ndarray:
        """Execute one control period of a DROID-convention delta; returns the clamped action actually applied."""
        action = self.controller.clamp(action)
        pos, rot = self.ee_pose()
        current = self.robot.joints(self.data)
        joints = current  # where no fraction of the move is reachable, the arm holds still
        for fraction in (1.0, 0.5, 0.25):  # at the edge of the reachable space, take a shorter step
            move = np.concatenate([action[:6] * fraction, [0.0]])
            target_pos, target_rot = self.controller.target_pose(pos, rot, move)
            solution, pos_err, rot_err = self.controller.solve_ik(current, target_pos, target_rot)
            if pos_err < self.controller.config.ik_accept and rot_err < 10 * self.controller.config.ik_accept:
                joints = solution
                break
        self.gripper_command = float(np.clip(self.gripper_command + action[6], 0.0, 1.0))
        self._track(joints)
        return action

    def set_gripper(self, closedness: float) -> None:
        """Command an absolute gripper closedness and hold the arm for one control period."""
        self.gripper_command = float(np.clip(closedness, 0.0, 1.0))
        self._track(self.data.ctrl[self.robot.arm_actuators].copy())

    def go_home(self, joints: np.ndarray = HOME_JOINTS, periods: int = 4) -> None:
        """Move the arm to `joints` (default DROID's reset pose) over `periods` control periods, with physics."""
        start = self.robot.joints(self.data)
        for k in range(1, periods + 1):
            self._track(start + (np.asarray(joints) - start) * k / periods)

    def observe(self) -> dict:
        obs = {
            "rgb": self.render_camera(self.config.camera),
            "state": self.state().astype(np.float32),
            "joints": self.robot.joints(self.data).astype(np.float32),
        }
        if self.config.wrist_camera:
            obs["wrist_rgb"] = self.render_camera("wrist")
        return obs

    def render_camera(self, camera: str, data: mujoco.MjData | None = None) -> np.ndarray:
        self._renderer.update_scene(self.data if data is None else data, camera)
        return self._renderer.render()

    def camera_pose(self, camera: str, data: mujoco.MjData | None = None) -> np.ndarray:
        """Camera pose [xyz, euler xyz] in the base frame, OpenCV axes (x right, y down, z forward) as DROID's."""
        data = self.data if data is None else data
        cam = self.model.camera(camera).id
        rot = data.cam_xmat[cam].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])  # MuJoCo cameras look along -z
        return np.concatenate([data.cam_xpos[cam], matrix_to_euler_xyz(rot)])

    def _track(self, joints: np.ndarray) -> None:
        """Servo the arm to `joints` and the gripper to its command over one control period of physics.

        The joint target ramps linearly, sub-step by sub-step, over the first 60% of the period (no jerk that
        could shake a grasped object loose) and is then held, so the arm has settled on the target when the
        period ends and the next observation is taken.
        """
        robot, model, data = self.robot, self.model, self.data
        data.ctrl[robot.gripper_actuator] = FINGER_TRAVEL * (1.0 - self.gripper_command)
        ramp = max(1, int(0.6 * self.n_substeps))
        start = data.ctrl[robot.arm_actuators].copy()
        targets = start + np.outer(np.arange(1, ramp + 1) / ramp, joints - start)
        arm = robot.arm_ctrl
        for target in targets:
            data.ctrl[arm] = target
            mujoco.mj_step(model, data)
        if self.n_substeps > ramp:
            mujoco.mj_step(model, data, nstep=self.n_substeps - ramp)

    # --- gymnasium API -------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        start, goal = self.sample_episode(self.np_random)
        mujoco.mj_resetData(self.model, self.data)
        self.set_config(start)
        self.set_goal(goal)
        self.steps = 0
        return self.observe(), self._info()

    def set_goal(self, goal: SceneConfig) -> None:
        """Render the goal image and record the goal state for configuration `goal`."""
        self.goal_config = goal
        mujoco.mj_resetData(self.model, self.goal_data)
        self.robot.set_config(self.goal_data, goal)
        pos, rot = self.robot.ee_pose(self.goal_data)
        self.goal_state = state_from_pose(pos, rot, self.robot.gripper(self.goal_data))
        self.goal_rgb = self.render_camera(self.config.camera, self.goal_data)

    def step(self, action):
        applied = self.apply_delta(action)
        self.steps += 1
        obs, info = self.observe(), self._info()
        info["applied_action"] = applied  # after validation and the per-step clamps
        truncated = self.steps >= self.max_steps
        return obs, -self.distance_to_goal(), False, truncated, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self.render_camera(self.config.camera)

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _info(self) -> dict:
        return {
            "goal_rgb": self.goal_rgb.copy(),
            "goal_state": self.goal_state.astype(np.float32),
            "is_success": bool(self.is_success()),
            "distance": float(self.distance_to_goal()),
            "gripper_command": self.gripper_command,
            **self.task_info(),
        }
