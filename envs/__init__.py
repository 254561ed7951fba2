"""envs: MuJoCo Franka Panda tasks in DROID's action convention, with goal images (see docs/envs.md).

`import envs` registers FrankaReach-v0, FrankaPush-v0 and FrankaPickPlace-v0 with gymnasium.
"""
import gymnasium as gym

from envs.controller import CartesianController, ControllerConfig
from envs.franka_env import EnvConfig, FrankaEnv
from envs.scene import HOME_JOINTS, SceneConfig
from envs.tasks import FrankaPickPlaceEnv, FrankaPushEnv, FrankaReachEnv

TASKS = {
    "reach": ("FrankaReach-v0", FrankaReachEnv),
    "push": ("FrankaPush-v0", FrankaPushEnv),
    "pick_place": ("FrankaPickPlace-v0", FrankaPickPlaceEnv),
}

for _env_id, _cls in TASKS.values():
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point=f"{_cls.__module__}:{_cls.__name__}",
                     max_episode_steps=None, disable_env_checker=False)

__all__ = [
    "HOME_JOINTS",
    "TASKS",
    "CartesianController",
    "ControllerConfig",
    "EnvConfig",
    "FrankaEnv",
    "FrankaPickPlaceEnv",
    "FrankaPushEnv",
    "FrankaReachEnv",
    "SceneConfig",
]
