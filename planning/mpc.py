"""Receding-horizon control: plan, execute the first k actions, observe, re-plan.

`MPC` turns a world model and a planner into a policy: ``mpc.set_goal(...)`` once per episode, then
``mpc.act(obs)`` returns the next actions to execute. Two loops drive it:

* `run_episode(env, mpc)` for the gymnasium envs of `envs` (stops on ``info["is_success"]``, termination or
  truncation, or a step budget);
* `run_controller(controller, mpc, goal_image)` for a `FrankaController` (``observe()`` / ``step(action)``),
  the simulator's or a real robot's, which has no notion of success: it stops on the budget or on an
  optional ``stop(obs)`` callback.

The planner sees the current image and proprioceptive state, and the *goal image* — never the goal pose.
The one exception is the ORACLE mode (``MPC(..., oracle=True)`` with `OracleWorldModel`): latents are then
features of the true current state and of the goal observation's true state, to test the loop itself.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from planning.common import PlannerBase, PlanResult
from planning.world_model import OracleWorldModel, WorldModel


def _state_tensor(obs: dict, device) -> torch.Tensor:
    state = np.asarray(obs["state"], dtype=np.float32)
    if state.shape != (7,):
        raise ValueError(f"observation field 'state': expected shape (7,), got {state.shape}")
    return torch.from_numpy(state)[None].to(device)


def _image_batch(image, field_name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{field_name}: expected a uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    return image[None]


class MPC:
    """A world model + planner as a receding-horizon policy.

    Args:
        world_model: any `WorldModel` (or `OracleWorldModel` with ``oracle=True``).
        planner: a `CEMPlanner`, `MPPIPlanner` or `GradientPlanner`.
        execute: how many planned actions to execute before re-planning (1 = classic MPC).
        oracle: ORACLE mode — encode true states instead of images (needs an `OracleWorldModel`).
        device: where planning happens (default: wherever the world model returns its latents).
    """

    def __init__(self, world_model: WorldModel, planner: PlannerBase, execute: int = 1, oracle: bool = False,
                 device: str | torch.device | None = None):
        if not 1 <= execute <= planner.config.horizon:
            raise ValueError(f"MPC: execute must be in [1, horizon={planner.config.horizon}], got {execute}")
        if oracle and not isinstance(world_model, OracleWorldModel):
            raise TypeError(f"MPC: oracle=True needs an OracleWorldModel, got {type(world_model).__name__}")
        self.world_model, self.planner, self.execute, self.oracle = world_model, planner, execute, oracle
        self.device = None if device is None else torch.device(device)
        self.goal: torch.Tensor | None = None

    def _place(self, latents: torch.Tensor) -> torch.Tensor:
        return latents if self.device is None else latents.to(self.device)

    def encode_observation(self, obs: dict) -> torch.Tensor:
        """Latents [1, N, D] of the current observation (its image; its true state in oracle mode)."""
        if self.oracle:
            return self._place(self.world_model.encode_states(obs["state"]))
        return self._place(self.world_model.encode(_image_batch(obs["rgb"], "observation field 'rgb'")))

    def set_goal(self, goal_image: np.ndarray | None = None, *, oracle_goal_state=None, seed: int | None = None):
        """Start an episode towards a goal image (or, in oracle mode only, the goal observation's true state)."""
        if self.oracle:
            if oracle_goal_state is None:
                raise ValueError("MPC.set_goal: oracle mode needs oracle_goal_state (the goal observation's state)")
            self.goal = self._place(self.world_model.encode_states(oracle_goal_state))
        else:
            if goal_image is None:
                raise ValueError("MPC.set_goal: a goal image is required")
            if oracle_goal_state is not None:
                raise ValueError("MPC.set_goal: the goal state is only accepted in oracle mode")
            self.goal = self._place(self.world_model.encode(_image_batch(goal_image, "goal image")))
        self.planner.reset(seed)

    def set_goal_from_info(self, info: dict, seed: int | None = None) -> None:
        """Goal of an `envs` episode: ``info["goal_rgb"]``; in oracle mode ``info["goal_state"]`` (labelled)."""
        if self.oracle:
            self.set_goal(oracle_goal_state=info["goal_state"], seed=seed)
        else:
            self.set_goal(info["goal_rgb"], seed=seed)

    def plan(self, obs: dict) -> PlanResult:
        if self.goal is None:
            raise RuntimeError("MPC.plan: call set_goal(...) first")
        context = self.encode_observation(obs)
        return self.planner.plan(self.world_model, context, _state_tensor(obs, context.device), self.goal)

    def act(self, obs: dict) -> tuple[np.ndarray, PlanResult]:
        """Plan from `obs`; return the first `execute` actions [k, 7] (float32) and the plan."""
        result = self.plan(obs)
        self.planner.shift(self.execute)
        return result.actions[: self.execute].detach().cpu().numpy().astype(np.float32), result


@dataclass
class EpisodeResult:
    success: bool
    steps: int
    final_distance: float | None  # metres, from the simulator (evaluation only), None for a controller
    plan_seconds: list[float] = field(default_factory=list)  # wall time of every planning call
    actions: list[np.ndarray] = field(default_factory=list)  # executed actions
    frames: list[np.ndarray] = field(default_factory=list)  # observed images (start + after every step)
    goal_image: np.ndarray | None = None  # info["goal_rgb"], kept with the frames
    distances: list[float] = field(default_factory=list)  # simulator distance to goal after every step
    energies: list[float] = field(default_factory=list)  # best planning energy of every plan

    @property
    def seconds_per_action(self) -> float:
        return float(sum(self.plan_seconds) / max(len(self.actions), 1))


def run_episode(env, mpc: MPC, seed: int | None = None, max_steps: int | None = None,
                record_frames: bool = False) -> EpisodeResult:
    """One closed-loop episode on a gymnasium env of `envs`: reset, set the goal from info, plan/act until
    ``info["is_success"]``, termination/truncation or `max_steps` env steps."""
    obs, info = env.reset(seed=seed)
    mpc.set_goal_from_info(info, seed=seed)
    result = EpisodeResult(success=bool(info.get("is_success", False)), steps=0,
                           final_distance=info.get("distance"))
    if record_frames:
        result.frames.append(np.asarray(obs["rgb"]))
        result.goal_image = np.asarray(info["goal_rgb"])
    done = result.success
    while not done:
        start = time.perf_counter()
        actions, plan = mpc.act(obs)
        result.plan_seconds.append(time.perf_counter() - start)
        result.energies.append(plan.best_energy)
        for action in actions:
            obs, _, terminated, truncated, info = env.step(action)
            result.steps += 1
            result.actions.append(action)
            result.distances.append(float(info["distance"]) if "distance" in info else float("nan"))
            if record_frames:
                result.frames.append(np.asarray(obs["rgb"]))
            result.success = bool(info.get("is_success", False))
            done = result.success or terminated or truncated or (max_steps is not None and result.steps >= max_steps)
            if done:
                break
    result.final_distance = info.get("distance", result.final_distance)
    return result


def run_controller(controller, mpc: MPC, goal_image: np.ndarray, max_steps: int, stop=None,
                   seed: int | None = None, on_step=None) -> EpisodeResult:
    """Closed loop on a `FrankaController` (``observe()``, ``step(action)``): plan from each observation,
    execute `execute` actions, stop after `max_steps` actions or when ``stop(obs)`` is true.
    ``on_step(obs, action, step_result)`` is called after every executed action (e.g. to log an episode)."""
    mpc.set_goal(goal_image, seed=seed)
    result = EpisodeResult(success=False, steps=0, final_distance=None)
    obs = controller.observe()
    while result.steps < max_steps and not (stop is not None and stop(obs)):
        start = time.perf_counter()
        actions, plan = mpc.act(obs)
        result.plan_seconds.append(time.perf_counter() - start)
        result.energies.append(plan.best_energy)
        for action in actions:
            step_result = controller.step(action)
            result.steps += 1
            result.actions.append(action)
            obs = controller.observe()
            if on_step is not None:
                on_step(obs, action, step_result)
            if result.steps >= max_steps or (stop is not None and stop(obs)):
                break
    result.success = bool(stop is not None and stop(obs))
    return result
