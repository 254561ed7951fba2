"""Receding-horizon control: plan, execute the first k actions, observe, re-plan.

`MPC` turns a world model and a planner into a policy: ``mpc.set_goal(...)`` once per episode, then
``mpc.act(obs)`` returns the next actions to execute. Two loops drive it:

* `run_episode(env, mpc)` for the gymnasium envs of `envs` (stops on ``info["is_success"]``, termination or
  truncation, or a step budget). It follows the episode's goal schedule (`goal_schedule`): a task with
  sub-goals (``info["subgoal_rgbs"]``, ``info["subgoal_steps"]``) is planned toward sub-goal 1 for its steps,
  then sub-goal 2, ..., then the final goal for the rest of the budget. Goals switch by step count only,
  never by what the simulator knows;
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


@dataclass
class GoalStage:
    """One goal of an episode's schedule: plan toward `image` for `steps` env steps (None: the rest)."""

    name: str  # "subgoal_1", "subgoal_2", ..., "goal"
    image: np.ndarray  # uint8 [H, W, 3]
    state: np.ndarray | None  # the goal observation's true state: ORACLE mode only
    steps: int | None


def goal_schedule(info: dict) -> list[GoalStage]:
    """The sub-goals of ``info`` (``subgoal_rgbs`` with ``subgoal_steps``, and ``subgoal_states`` for the
    ORACLE mode), in order, then the final goal (``goal_rgb`` / ``goal_state``) for the remaining steps."""
    images, steps = list(info.get("subgoal_rgbs") or []), list(info.get("subgoal_steps") or [])
    states = list(info.get("subgoal_states") or [None] * len(images))
    if not len(images) == len(steps) == len(states):
        raise ValueError(f"info: expected as many subgoal_steps ({len(steps)}) and subgoal_states ({len(states)}) "
                         f"as subgoal_rgbs ({len(images)})")
    if any(int(n) < 1 for n in steps):
        raise ValueError(f"info field 'subgoal_steps': expected positive step counts, got {steps}")
    stages = [GoalStage(f"subgoal_{k + 1}", image, state, int(n))
              for k, (image, state, n) in enumerate(zip(images, states, steps))]
    return stages + [GoalStage("goal", info["goal_rgb"], info.get("goal_state"), None)]


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
        """Final goal of an `envs` episode: ``info["goal_rgb"]``; in oracle mode ``info["goal_state"]``."""
        self.set_stage(goal_schedule(info)[-1], seed=seed)

    def set_stage(self, stage: GoalStage, seed: int | None = None) -> None:
        """Plan toward one stage of a goal schedule: its image; in oracle mode its true state (labelled)."""
        if self.oracle:
            self.set_goal(oracle_goal_state=stage.state, seed=seed)
        else:
            self.set_goal(stage.image, seed=seed)

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
    goal_frames: list[np.ndarray] = field(default_factory=list)  # the goal planned toward, with each frame
    distances: list[float] = field(default_factory=list)  # simulator distance to goal after every step
    energies: list[float] = field(default_factory=list)  # best planning energy of every plan
    plan_stages: list[int] = field(default_factory=list)  # index of the goal stage of every plan
    # Per stage of the goal schedule: name, first_step, scheduled_steps (None: the rest), executed_steps and
    # reached (simulator, evaluation only: the sub-goal condition — info["subgoal_success"] — at the stage's
    # end, or task success for the final goal; None where the env does not report it).
    stages: list[dict] = field(default_factory=list)

    @property
    def seconds_per_action(self) -> float:
        return float(sum(self.plan_seconds) / max(len(self.actions), 1))


def run_episode(env, mpc: MPC, seed: int | None = None, max_steps: int | None = None,
                record_frames: bool = False) -> EpisodeResult:
    """One closed-loop episode on a gymnasium env of `envs`: reset, then plan/act toward each goal of the
    episode's schedule (`goal_schedule`) for its steps, until ``info["is_success"]``, termination/truncation or
    `max_steps` env steps. A plan's actions are cut at a stage boundary so goals switch exactly on schedule."""
    obs, info = env.reset(seed=seed)
    schedule = goal_schedule(info)
    ends = np.cumsum([stage.steps for stage in schedule[:-1]]).tolist() + [float("inf")]
    result = EpisodeResult(success=bool(info.get("is_success", False)), steps=0,
                           final_distance=info.get("distance"))
    if record_frames:
        result.frames.append(np.asarray(obs["rgb"]))
        result.goal_frames.append(np.asarray(schedule[0].image))
        result.goal_image = np.asarray(info["goal_rgb"])
    done, stage = result.success, -1
    while not done:
        if stage < 0 or result.steps >= ends[stage]:  # start the next stage (one per boundary crossed)
            if stage >= 0:
                _close_stage(result, info, stage)
            stage += 1
            mpc.set_stage(schedule[stage], seed=seed)
            result.stages.append({"name": schedule[stage].name, "first_step": result.steps,
                                  "scheduled_steps": schedule[stage].steps})
        start = time.perf_counter()
        actions, plan = mpc.act(obs)
        result.plan_seconds.append(time.perf_counter() - start)
        result.energies.append(plan.best_energy)
        result.plan_stages.append(stage)
        left_in_stage = ends[stage] - result.steps
        for action in actions[: int(min(len(actions), left_in_stage))]:
            obs, _, terminated, truncated, info = env.step(action)
            result.steps += 1
            result.actions.append(action)
            result.distances.append(float(info["distance"]) if "distance" in info else float("nan"))
            if record_frames:
                result.frames.append(np.asarray(obs["rgb"]))
                result.goal_frames.append(np.asarray(schedule[stage].image))
            result.success = bool(info.get("is_success", False))
            done = result.success or terminated or truncated or (max_steps is not None and result.steps >= max_steps)
            if done:
                break
    if stage >= 0:
        _close_stage(result, info, stage)
    result.final_distance = info.get("distance", result.final_distance)
    return result


def _close_stage(result: EpisodeResult, info: dict, stage: int) -> None:
    record = result.stages[-1]
    record["executed_steps"] = result.steps - record["first_step"]
    if record["name"] == "goal":
        record["reached"] = bool(info.get("is_success", False))
    else:
        reached = info.get("subgoal_success") or []
        record["reached"] = bool(reached[stage]) if stage < len(reached) else None


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
