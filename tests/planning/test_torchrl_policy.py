"""The planner as a torchrl policy (MPCPlannerBase) on a torchrl-wrapped FrankaReach-v0."""
import gymnasium as gym
import pytest
import torch
from torchrl.envs import GymWrapper
from torchrl.envs.libs.gym import default_info_dict_reader
from torchrl.modules.planners import MPCPlannerBase

import envs  # noqa: F401  (registers FrankaReach-v0)
from planning.cem import CEMConfig, CEMPlanner
from planning.mpc import MPC
from planning.torchrl_policy import WorldModelPlanner
from planning.world_model import OracleWorldModel


def _env(keys):
    env = GymWrapper(gym.make("FrankaReach-v0"))
    env.set_info_dict_reader(default_info_dict_reader(keys))
    return env


def _cem():
    return CEMPlanner(CEMConfig(samples=64, topk=8, iterations=4))


def test_oracle_policy_reaches_the_goal_in_a_torchrl_rollout():
    env = _env(["goal_rgb", "goal_state"])
    policy = WorldModelPlanner(env, MPC(OracleWorldModel(), _cem(), oracle=True))
    assert isinstance(policy, MPCPlannerBase)
    env.set_seed(0)
    rollout = env.rollout(10, policy)
    distance = -rollout["next", "reward"].squeeze(-1)  # the env's reward is minus the distance to the goal
    assert distance.min() < 0.04 < float(torch.linalg.norm(rollout["observation"][0, :3]
                                                              - rollout["goal_state"][0, :3]))
    assert torch.all(rollout["action"][:, 3:6] == 0)


def test_image_policy_plans_from_goal_images_and_respects_the_action_spec():
    seen = []

    class PixelModel:  # latents = pooled pixels; no motion (only checks plumbing and shapes)
        def encode(self, images):
            seen.append(images.shape)
            return torch.as_tensor(images).float().mean(dim=(1, 2))[:, None]

        def rollout(self, latents, state, actions):
            return latents[:, None].expand(actions.shape[0], actions.shape[1], -1, -1)

    env = _env(["goal_rgb"])
    policy = WorldModelPlanner(env, MPC(PixelModel(), _cem()))
    env.set_seed(1)
    rollout = env.rollout(3, policy)
    assert rollout["action"].shape == (3, 7)
    assert env.action_spec.is_in(rollout["action"][0])
    assert (1, 64, 64, 3) in seen  # encoded the observation and goal images


def test_missing_goal_key_is_a_clear_error():
    env = GymWrapper(gym.make("FrankaReach-v0"))
    with pytest.raises(KeyError, match="default_info_dict_reader"):
        WorldModelPlanner(env, MPC(OracleWorldModel(), _cem(), oracle=True))
