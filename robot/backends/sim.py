"""`SimController`: the simulated arm of an `envs` task behind the `FrankaController` interface.

The robot server's `--backend sim` (and any in-process caller) drives the MuJoCo Franka with the same calls
as the real arm, so the whole deployment path is tested without a robot.
"""
from __future__ import annotations

import numpy as np

from envs.franka_env import state_from_pose
from envs.scene import HOME_JOINTS, SceneConfig
from robot.interface import FrankaController, StepResult, as_action


class SimController(FrankaController):
    """The simulated arm of an `envs` task, driven through the env's public low-level operations.

    The simulator advances only inside commands: `step` runs one control period of physics and returns once
    the arm has settled, so between commands nothing moves (`is_moving()` is always False). `stop` re-targets
    the joint servos to the measured joints, which is what holding position means for the sim.
    """

    backend = "sim"

    def __init__(self, env="FrankaReach-v0", *, seed: int | None = 0, **env_options):
        if isinstance(env, str):
            import gymnasium as gym

            import envs  # noqa: F401  registers the Franka tasks

            env = gym.make(env, **env_options).unwrapped
            env.reset(seed=seed)
        elif env_options:
            raise TypeError(f"SimController: env options {sorted(env_options)} only apply when env is an id string")
        self.env = env

    def observe(self, images: bool = True) -> dict:
        # float64 state and joints either way (the env's observation dict holds float32 copies).
        exact = {"state": self.env.state(), "joints": self.env.robot.joints(self.env.data)}
        return {**self.env.observe(), **exact} if images else exact

    def step(self, action) -> StepResult:
        action = as_action(action, "SimController.step")
        # The gripper delta is relative to the *measured* closedness (the state), as on the real arm; the env
        # adds it to its last gripper command, which differs while the fingers are blocked by an object.
        measured = self.env.state()[6]
        command = action.copy()
        command[6] = float(np.clip(measured + action[6], 0.0, 1.0)) - self.env.gripper_command
        executed = np.asarray(self.env.apply_delta(command), dtype=np.float64)
        applied = np.concatenate([executed[:6], [self.env.gripper_command - measured]])
        limited = () if np.allclose(applied, action) else ("sim_controller",)
        return StepResult(applied=applied, limited=limited, state=self.env.state())

    def set_gripper(self, position: float) -> float:
        position = float(np.clip(position, 0.0, 1.0))
        self.env.set_gripper(position)
        return position

    def home_state(self) -> np.ndarray:
        import mujoco  # not at the top: envs (imported above) must set the headless MUJOCO_GL default first

        data = mujoco.MjData(self.env.model)  # a scratch copy: forward kinematics only, the arm does not move
        self.env.robot.set_config(data, SceneConfig(joints=HOME_JOINTS, gripper=0.0))
        position, rotation = self.env.robot.ee_pose(data)
        return state_from_pose(position, rotation, 0.0)

    def home(self) -> dict:
        self.env.go_home(HOME_JOINTS)
        self.env.set_gripper(0.0)  # DROID's reset opens the gripper
        return self.observe(images=False)

    def stop(self) -> None:
        robot, data = self.env.robot, self.env.data
        data.ctrl[robot.arm_actuators] = robot.joints(data)

    def close(self) -> None:
        self.env.close()
