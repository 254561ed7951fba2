"""Our planners as a torchrl policy: `WorldModelPlanner`, a `torchrl.modules.planners.MPCPlannerBase`.

    from torchrl.envs import GymWrapper
    from torchrl.envs.libs.gym import default_info_dict_reader
    env = GymWrapper(gymnasium.make("FrankaReach-v0"))
    env.set_info_dict_reader(default_info_dict_reader(["goal_rgb"]))   # the goal image enters the tensordict
    policy = WorldModelPlanner(env, MPC(world_model, CEMPlanner()))
    rollout = env.rollout(50, policy)

torchrl's own planners imagine trajectories by stepping a batch-unlocked model env. Ours roll candidates out
through the world model (batched and KV-cached), so `MPCPlannerBase` only needs the real env's *specs*:
which observation keys to read and the action spec to project onto. `WorldModelPlanner` therefore hands the
base class a spec view of the env (`PlanningSpecs`), never the env itself to step. Each call plans from the
current image and state towards the goal image in the tensordict, re-planning at every step (receding
horizon); a new goal image starts a new episode for the planner. In ORACLE mode (``MPC(..., oracle=True)``)
the goal is read from ``goal_state`` instead — for testing the loop only.
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torch import nn
from torchrl.modules.planners import MPCPlannerBase

from planning.mpc import MPC


class PlanningSpecs(nn.Module):
    """The part of an env `MPCPlannerBase` reads: observation/action specs and device. It cannot be stepped."""

    batch_locked = False

    def __init__(self, env):
        super().__init__()
        self.observation_spec = env.observation_spec.clone()
        self.action_spec = env.action_spec.clone()
        self.device = env.device

    def forward(self, *args, **kwargs):
        raise RuntimeError("PlanningSpecs: a spec view for MPCPlannerBase; planners roll out in the world model")


class WorldModelPlanner(MPCPlannerBase):
    """Receding-horizon planning with a `planning.mpc.MPC` as a torchrl policy (writes ``action_key``).

    Args:
        env: the torchrl env the policy will act in (e.g. ``GymWrapper(gymnasium.make("FrankaReach-v0"))``
            with an info reader adding ``goal_rgb``, or ``goal_state`` in oracle mode).
        mpc: world model + planner. One action is used per call (``mpc.execute`` is ignored).
        rgb_key, state_key, goal_key: tensordict keys. ``state_key`` defaults to ``"state"`` or, when the
            wrapper renamed it (torchrl's gym wrappers call it ``"observation"``), to ``"observation"``.
    """

    def __init__(self, env, mpc: MPC, rgb_key: str = "rgb", state_key: str | None = None,
                 goal_key: str | None = None, action_key: str = "action"):
        super().__init__(PlanningSpecs(env), action_key=action_key)
        keys = set(env.observation_spec.keys(True, True))
        if state_key is None:
            state_key = "state" if "state" in keys else "observation"
        if goal_key is None:
            goal_key = "goal_state" if mpc.oracle else "goal_rgb"
        needed = [goal_key, state_key] if mpc.oracle else [rgb_key, state_key, goal_key]
        missing = [k for k in needed if k not in keys]
        if missing:
            raise KeyError(f"WorldModelPlanner: env observation spec lacks {missing} (has {sorted(map(str, keys))}); "
                           f"add the goal with env.set_info_dict_reader(default_info_dict_reader([{goal_key!r}]))")
        self.mpc, self.rgb_key, self.state_key, self.goal_key = mpc, rgb_key, state_key, goal_key
        self._goal: torch.Tensor | None = None

    def planning(self, td: TensorDictBase) -> torch.Tensor:
        if td.batch_dims == 0:
            return self._plan_one(td)
        flat = td.reshape(-1)
        return torch.stack([self._plan_one(flat[i]) for i in range(flat.shape[0])]).reshape(
            *td.batch_size, -1)

    def _plan_one(self, td: TensorDictBase) -> torch.Tensor:
        goal = td.get(self.goal_key)
        if self._goal is None or goal.shape != self._goal.shape or not torch.equal(goal, self._goal):
            self._goal = goal.clone()
            if self.mpc.oracle:
                self.mpc.set_goal(oracle_goal_state=goal.cpu().numpy())
            else:
                self.mpc.set_goal(goal.cpu().numpy())
        obs = {"state": td.get(self.state_key).cpu().numpy()}
        if not self.mpc.oracle:
            obs["rgb"] = td.get(self.rgb_key).cpu().numpy()
        result = self.mpc.plan(obs)
        self.mpc.planner.shift(1)
        return result.actions[0].to(device=self.action_spec.device, dtype=self.action_spec.dtype)
