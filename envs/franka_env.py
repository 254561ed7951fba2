"""Base gymnasium env: a Franka Panda on a table, DROID-convention Cartesian deltas, goal and sub-goal images.

Tasks (envs/tasks.py) only say how to sample an episode (start, goal and sub-goal configurations) and when it
succeeded; everything else — physics, control, rendering, observations, goal images — lives here.

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
from envs.rendering import make_renderer
from envs.scene import (
    CAMERA_NAMES,
    FINGER_TRAVEL,
    HOME_JOINTS,
    OBJECTS,
    Robot,
    SceneConfig,
    build_model,
    set_camera_pose,
)


@dataclass
class EnvConfig:
    image_size: int = 64  # square renders, pixels
    camera: str = "ext1"  # exterior camera for obs["rgb"]: "ext1" (front right) or "ext2" (front left)
    wrist_camera: bool = False  # also return obs["wrist_rgb"]
    control_hz: float = 4.0  # V-JEPA 2-AC samples DROID at 4 fps; 4-15 Hz supported
    max_steps: int | None = None  # step budget before truncation; None = the task's default
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    # Scene variations (object tasks use `object` and `object_rgba`; reach has no object and ignores them).
    object: str = "cube"  # "cube" (the paper's box) or "cup" (a cylinder)
    object_rgba: tuple[float, ...] | None = None  # RGB(A) in [0, 1]; None: the shape's colour (cube green, cup blue)
    camera_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # move the exterior camera (m, base frame) ...
    camera_target_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # ... and the point it looks at

    def __post_init__(self):  # checked here, so a bad setting fails before any environment or episode is made
        if self.camera not in CAMERA_NAMES[:-1]:
            raise ValueError(f"camera: expected one of {CAMERA_NAMES[:-1]}, got {self.camera!r}")
        if not 1.0 <= self.control_hz <= 50.0:
            raise ValueError(f"control_hz: expected a rate in [1, 50] Hz (4-15 is DROID-like), got {self.control_hz}")
        if int(self.image_size) < 16:
            raise ValueError(f"image_size: expected >= 16 pixels, got {self.image_size}")
        if self.max_steps is not None and int(self.max_steps) < 1:
            raise ValueError(f"max_steps: expected None or >= 1 steps, got {self.max_steps}")
        if self.object not in OBJECTS:
            raise ValueError(f"object: expected one of {sorted(OBJECTS)}, got {self.object!r}")


# Scene variations that `reset(options=...)` may change for one episode (the config's value otherwise).
EPISODE_OPTIONS = ("object_rgba", "camera_offset", "camera_target_offset")


@dataclass
class Episode:
    """What a task samples at reset: the start, the final goal and the sub-goals before it (in order)."""

    start: SceneConfig
    goal: SceneConfig
    subgoals: list[SceneConfig] = field(default_factory=list)


def state_from_pose(pos: np.ndarray, rot: np.ndarray, gripper: float) -> np.ndarray:
    """7-D DROID state [xyz, euler xyz, gripper closedness] (float64)."""
    return np.concatenate([pos, matrix_to_euler_xyz(rot), [gripper]])


def _rgba(value, field_name: str = "object_rgba") -> np.ndarray:
    rgba = np.asarray(value, dtype=np.float64).reshape(-1)
    if rgba.shape not in ((3,), (4,)) or not np.all((rgba >= 0) & (rgba <= 1)):
        raise ValueError(f"{field_name}: expected 3 or 4 values in [0, 1] (RGB or RGBA), got {value!r}")
    return np.append(rgba, 1.0) if rgba.shape == (3,) else rgba


def _offset(value, field_name: str) -> np.ndarray:
    offset = np.asarray(value, dtype=np.float64).reshape(-1)
    if offset.shape != (3,) or not np.all(np.isfinite(offset)):
        raise ValueError(f"{field_name}: expected 3 finite numbers (metres, base frame), got {value!r}")
    return offset


class FrankaEnv(gym.Env):
    """Shared machinery of the Franka tasks. Subclasses implement `sample_episode` and `is_success`.

    A task with sub-goals sets `subgoal_steps`: env steps a planner spends on each sub-goal, in order, before
    it turns to the final goal for the rest of the budget (see docs/envs.md).
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 4}
    uses_object = False
    default_max_steps = 50
    subgoal_steps: ClassVar[tuple[int, ...]] = ()
    task_name = "franka"

    def __init__(self, render_mode: str | None = "rgb_array", config: EnvConfig | None = None, **overrides):
        for key in overrides:  # gym.make(..., image_size=128, control_hz=10) etc.
            if key not in EnvConfig.__dataclass_fields__:  # Python's wording: wrappers (torchrl) match on it
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {key!r}; options "
                                f"are {sorted(EnvConfig.__dataclass_fields__)}")
        config = dataclasses.replace(config or EnvConfig(), **overrides)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode: expected 'rgb_array' or None, got {render_mode!r}")
        for name in EPISODE_OPTIONS:  # fail at construction, not at the first reset
            self._episode_option(config, {}, name)
        self.config = config
        self.render_mode = render_mode
        self.max_steps = int(config.max_steps or self.default_max_steps)
        self.metadata = {**self.metadata, "render_fps": config.control_hz}

        self.model = build_model(config.object if self.uses_object else None)
        self.data = mujoco.MjData(self.model)
        self.goal_data = mujoco.MjData(self.model)  # the goal configuration, only ever rendered
        self.robot = Robot(self.model)
        self.controller = CartesianController(self.model, config.controller, config.control_hz)
        self.n_substeps = max(1, round(1.0 / (config.control_hz * self.model.opt.timestep)))
        size = int(config.image_size)
        # An offscreen buffer no larger than the image: clearing a bigger one costs time on software GL.
        self.model.vis.global_.offwidth = self.model.vis.global_.offheight = size
        self._renderer = make_renderer(self.model, size, size)  # one clear error when this machine cannot render

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
        self.subgoal_configs: list[SceneConfig] = []
        self.subgoal_states: list[np.ndarray] = []
        self.subgoal_rgbs: list[np.ndarray] = []
        self.scene_options: dict = {}  # this episode's colour and camera offsets (see reset)
        self.steps = 0

    # --- task interface ------------------------------------------------------------------------------------------
    def sample_episode(self, rng: np.random.Generator) -> Episode:
        """Start, goal and sub-goal configurations of a new episode (may run physics in `self.data`)."""
        raise NotImplementedError

    def is_success(self) -> bool:
        raise NotImplementedError

    def distance_to_goal(self) -> float:
        """Metres between what the task moves (EE or cube) and its goal; the reward is its negative."""
        raise NotImplementedError

    def task_info(self) -> dict:
        """Privileged extras for scripted policies and evaluation (object pose, ...)."""
        return {}

    def subgoal_success(self) -> list[bool]:
        """Per sub-goal: does the scene satisfy it now? (evaluation only; [] for tasks without sub-goals)"""
        return []

    # --- low-level operations (public: a sim robot backend wraps these) ----------------------------------------
    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.robot.ee_pose(self.data)

    def state(self) -> np.ndarray:
        """Current 7-D state (float64): measured EE pose and gripper closedness."""
        pos, rot = self.ee_pose()
        return state_from_pose(pos, rot, self.robot.gripper(self.data))

    def set_config(self, config: SceneConfig) -> None:
        """Teleport the scene to `config` (arm at rest, servos holding it, gripper command as the config's)."""
        self.robot.set_config(self.data, config)
        command = config.gripper if config.gripper_command is None else config.gripper_command
        self.gripper_command = float(np.clip(command, 0.0, 1.0))

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
        """New episode. `options` may set `object_rgba`, `camera_offset` and `camera_target_offset` for this
        episode only (otherwise the config's values apply)."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(EPISODE_OPTIONS))
        if unknown:
            raise ValueError(f"reset options: expected keys among {list(EPISODE_OPTIONS)}, got {unknown}")
        self._apply_scene_options(options)
        mujoco.mj_resetData(self.model, self.data)
        episode = self.sample_episode(self.np_random)
        mujoco.mj_resetData(self.model, self.data)  # forget whatever physics the sampling ran
        self.set_config(episode.start)
        self.set_goal(episode.goal, episode.subgoals)
        self.steps = 0
        return self.observe(), self._info()

    def _apply_scene_options(self, options: dict) -> None:
        offset = self._episode_option(self.config, options, "camera_offset")
        target = self._episode_option(self.config, options, "camera_target_offset")
        set_camera_pose(self.model, self.config.camera, offset, target)
        self.scene_options = {"camera_offset": offset.tolist(), "camera_target_offset": target.tolist()}
        if self.robot.has_object:
            rgba = self._episode_option(self.config, options, "object_rgba")
            self.robot.set_object_rgba(rgba)
            self.scene_options["object_rgba"] = rgba.tolist()

    @staticmethod
    def _episode_option(config: EnvConfig, options: dict, name: str) -> np.ndarray:
        value = options.get(name, getattr(config, name))
        if name == "object_rgba":
            return _rgba(OBJECTS[config.object].rgba if value is None else value)
        return _offset(value, name)

    def set_goal(self, goal: SceneConfig, subgoals: list[SceneConfig] = ()) -> None:
        """Render the goal (and sub-goal) images and record their states for configuration `goal`."""
        if len(subgoals) != len(self.subgoal_steps):
            raise ValueError(f"{self.task_name}: expected {len(self.subgoal_steps)} sub-goal configurations, "
                             f"got {len(subgoals)}")
        self.subgoal_configs = list(subgoals)
        self.subgoal_states, self.subgoal_rgbs = [], []
        for config in self.subgoal_configs:
            state, rgb = self._render_config(config)
            self.subgoal_states.append(state)
            self.subgoal_rgbs.append(rgb)
        self.goal_config = goal
        self.goal_state, self.goal_rgb = self._render_config(goal)

    def _render_config(self, config: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
        """(7-D state, exterior-camera image) of configuration `config` (in the goal's own MjData)."""
        mujoco.mj_resetData(self.model, self.goal_data)
        self.robot.set_config(self.goal_data, config)
        pos, rot = self.robot.ee_pose(self.goal_data)
        state = state_from_pose(pos, rot, self.robot.gripper(self.goal_data))
        return state, self.render_camera(self.config.camera, self.goal_data)

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
            # Sub-goals (pick-and-place; empty lists elsewhere): images in order, and the env steps a planner
            # spends on each before the final goal. The states are for evaluation and ORACLE baselines only.
            "subgoal_rgbs": [image.copy() for image in self.subgoal_rgbs],
            "subgoal_steps": list(self.subgoal_steps),
            "subgoal_states": [state.astype(np.float32) for state in self.subgoal_states],
            "subgoal_success": self.subgoal_success(),
            **self.task_info(),
        }
