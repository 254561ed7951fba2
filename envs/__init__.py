"""envs: MuJoCo Franka Panda tasks in DROID's action convention, with goal images (see docs/envs.md).

`import envs` registers FrankaReach-v0, FrankaPush-v0, FrankaGrasp-v0, FrankaReachWithObject-v0 and
FrankaPickPlace-v0 with gymnasium.
"""
# First: on import it sets MUJOCO_GL=egl on a Linux machine without a display, before anything imports mujoco.
import envs.rendering  # noqa: I001, F401  (isort: keep first)
import gymnasium as gym

from envs.controller import CartesianController, ControllerConfig
from envs.franka_env import EnvConfig, Episode, FrankaEnv
from envs.scene import HOME_JOINTS, OBJECTS, SceneConfig
from envs.tasks import (
    FrankaGraspEnv,
    FrankaPickPlaceEnv,
    FrankaPushEnv,
    FrankaReachEnv,
    FrankaReachWithObjectEnv,
)

TASKS = {
    "reach": ("FrankaReach-v0", FrankaReachEnv),
    "push": ("FrankaPush-v0", FrankaPushEnv),
    "grasp": ("FrankaGrasp-v0", FrankaGraspEnv),
    "reach_with_object": ("FrankaReachWithObject-v0", FrankaReachWithObjectEnv),
    "pick_place": ("FrankaPickPlace-v0", FrankaPickPlaceEnv),
}

for _env_id, _cls in TASKS.values():
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point=f"{_cls.__module__}:{_cls.__name__}",
                     max_episode_steps=None, disable_env_checker=False)

__all__ = [
    "HOME_JOINTS",
    "OBJECTS",
    "TASKS",
    "CartesianController",
    "ControllerConfig",
    "EnvConfig",
    "Episode",
    "FrankaEnv",
    "FrankaGraspEnv",
    "FrankaPickPlaceEnv",
    "FrankaPushEnv",
    "FrankaReachEnv",
    "FrankaReachWithObjectEnv",
    "SceneConfig",
]
