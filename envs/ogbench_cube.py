"""OGBench's visual cube tasks (UR5e, goal images) behind the package's own env interface.

    env = OGBenchCubeEnv("visual-cube-single-v0")          # needs `pip install 'vjepa-ac[ogbench]'`
    obs, info = env.reset(seed=0)                           # task id 1 + seed % 5 unless options={"task_id": k}
    obs, reward, terminated, truncated, info = env.step(droid_action)   # 7-D DROID delta

What the adapter decides, and why:

* **Actions: the package's 7-D DROID convention, mapped to OGBench's 5-D one.** The AC predictor, the state
  integration of its rollouts (`droid_data.integrate_actions`), the planners' action box, the DROID episode
  layout and every checkpoint are 7-D; mapping at the env boundary keeps all of them unchanged and lets one
  model format serve both simulators. The map is exact on the axes the UR5e can move: xyz -> (dx, dy, dz),
  the z-rotation delta -> dyaw, the gripper-closedness delta -> OGBench's gripper delta. The x/y rotation
  deltas have no counterpart (OGBench keeps the gripper pointing down) and are ignored; the planners' default
  4-D search (`planning.common.ActionSpace`) never proposes them, and the recorded data never contain them.
* **A 7-D action is the wanted change of the state over one control step** (as in DROID: a_t = s_{t+1} - s_t).
  One step of this env is `action_repeat` native OGBench steps (default 5: 20 Hz -> 4 Hz, V-JEPA 2-AC's rate);
  each native step commands the part of the wanted change not yet made, clipped to OGBench's limits (5 cm and
  0.3 rad per native step), so the arm tracks the target over the step like a Cartesian controller.
* **State** (what the predictor and planners see): the robot's own proprioception only, in the package's 7-D
  layout ``[x, y, z, 0, 0, yaw, gripper closedness]``: the pinch-site position (m, world frame), the yaw of
  the gripper relative to pointing straight down (so roll and pitch are 0 rather than flipping between +-pi),
  and OGBench's "gripper_opening", which despite its name is the closedness (driver joint / 0.8: 0 open,
  1 closed; its oracles command +1 to grasp), as the package's convention wants. Cube poses never enter ``obs``; they appear only in ``info`` for
  evaluation (``distance``), as for the Franka tasks.
* **Goal images** are OGBench's own (``reset(options={"render_goal": True})``), rendered by the same camera.
* **Rendering** at ``image_size`` pixels with ``model.vis.quality.shadowsize = 0`` and ``offsamples = 0``:
  MuJoCo's default 4096-px shadow map makes a 64-px frame ~8-10x slower on a CPU rasteriser. Only the frames
  the adapter returns are rendered (not the `action_repeat - 1` native steps between them).
* **One rendering env per process.** With mujoco's renderer a second env (or closing one) in the same process
  can silently turn the other's frames black; `OGBenchCubeEnv` refuses a second live instance.

``info`` after reset and step: ``goal_rgb`` (task mode), ``is_success`` (OGBench's own ``info["success"]``),
``distance`` (metres from each cube to its goal, the largest; evaluation only), ``task_id``, ``task_name``,
``native`` (OGBench's raw info of the last native step, privileged fields included — for oracles only).
``mode="data_collection"`` gives OGBench's collection scenes (random arm, cubes and targets, no goal image)
for its scripted oracles (`envs.ogbench_collect`).
"""
from __future__ import annotations

import importlib
import weakref
from typing import ClassVar

import gymnasium as gym
import numpy as np

ENV_IDS = ("visual-cube-single-v0", "visual-cube-double-v0")
# OGBench's per-native-step limits of (dx, dy, dz, dyaw, gripper opening): its action_range.
NATIVE_LIMITS = np.array([0.05, 0.05, 0.05, 0.3, 1.0])

SUCCESS_RADIUS = 0.04  # OGBench's cube success: within 4 cm of the target
EXPERT_STEPS = 200  # native oracle steps from which a goal_ahead episode is drawn (the oracle places in ~100)
_LIVE: weakref.WeakSet = weakref.WeakSet()  # live rendering adapters of this process (at most one)


def require_ogbench():
    """Import ogbench (registers its envs) or raise one line saying how to install it."""
    try:
        return importlib.import_module("ogbench.manipspace")
    except ImportError as e:
        raise ImportError(f"OGBench envs need the optional dependency: pip install 'vjepa-ac[ogbench]' ({e})") from e


def wrap_angle(angle):
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def proprio_state(native_info: dict) -> np.ndarray:
    """The package's 7-D state from OGBench's proprioceptive fields only (never the ``privileged/*`` ones)."""
    state = np.zeros(7)
    state[:3] = native_info["proprio/effector_pos"]
    state[5] = float(native_info["proprio/effector_yaw"][0])
    state[6] = float(native_info["proprio/gripper_opening"][0])  # OGBench's name; 0 is open, 1 closed
    return state


def native_action(state: np.ndarray, target: np.ndarray) -> np.ndarray:
    """OGBench's normalised 5-D action that moves `state` toward `target` (both 7-D package states) in one
    native step, within OGBench's limits."""
    delta = np.array([*(target[:3] - state[:3]), wrap_angle(target[5] - state[5]), target[6] - state[6]])
    return np.clip(delta / NATIVE_LIMITS, -1.0, 1.0).astype(np.float32)


def droid_action(state: np.ndarray, next_state: np.ndarray) -> np.ndarray:
    """The 7-D DROID action between two package states of this env (z-rotation only, as the arm moves)."""
    action = np.zeros(7)
    action[:3] = next_state[:3] - state[:3]
    action[5] = wrap_angle(next_state[5] - state[5])
    action[6] = next_state[6] - state[6]
    return action


def _fast_render_class(base: type) -> type:
    """A subclass of OGBench's env class that renders only when asked and without shadows or multisampling."""

    class FastRender(base):
        skip_pixels = False  # set while stepping between the frames the adapter returns

        def post_compilation(self):
            # Before the renderer exists (it is made on the first render, after compilation).
            self._model.vis.quality.shadowsize = 0
            self._model.vis.quality.offsamples = 0
            super().post_compilation()

        def get_pixel_observation(self):
            return None if self.skip_pixels else super().get_pixel_observation()

        @property
        def action_space(self):
            # OGBench's task reset takes two random steps to settle the goal scene with a fresh, unseeded space;
            # seeding it from the env's generator makes reset(seed=...) reproducible (same distribution).
            return gym.spaces.Box(-1.0, 1.0, (5,), np.float32, seed=int(self.np_random.integers(2**31)))

    FastRender.__name__ = f"FastRender{base.__name__}"
    return FastRender


class OGBenchCubeEnv(gym.Env):
    """An OGBench visual cube env with the package's observations, 7-D actions and goal info (module doc)."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"]}

    def __init__(self, env_id: str = "visual-cube-single-v0", image_size: int = 64, action_repeat: int = 5,
                 max_steps: int | None = None, mode: str = "task", goal_ahead: int | None = None,
                 render_frames: bool = True):
        if env_id not in ENV_IDS:
            raise ValueError(f"env_id: expected one of {ENV_IDS}, got {env_id!r}")
        if int(image_size) < 16:
            raise ValueError(f"image_size: expected >= 16 pixels, got {image_size}")
        if int(action_repeat) < 1:
            raise ValueError(f"action_repeat: expected >= 1 native steps per step, got {action_repeat}")
        if mode not in ("task", "data_collection"):
            raise ValueError(f"mode: expected 'task' or 'data_collection', got {mode!r}")
        if goal_ahead is not None and (mode != "data_collection" or int(goal_ahead) < 1):
            raise ValueError(f"goal_ahead: expected >= 1 native steps with mode='data_collection', got {goal_ahead} "
                             f"with mode={mode!r}")
        if any(True for _ in _LIVE):
            raise RuntimeError("OGBenchCubeEnv: one rendering env per process (a second one can turn the first's "
                               "frames black); close the other first")
        require_ogbench()
        spec = gym.spec(env_id)
        module, name = spec.entry_point.split(":")
        kwargs = {**spec.kwargs, "width": int(image_size), "height": int(image_size), "mode": mode,
                  "terminate_at_goal": mode == "task"}
        self.env_id, self.image_size, self.action_repeat, self.mode = env_id, int(image_size), int(action_repeat), mode
        self.goal_ahead = None if goal_ahead is None else int(goal_ahead)
        # False: observations carry no image (rgb None), for policies that never look (random actions, the
        # oracle); rendering is most of a step's cost on a CPU.
        self.render_frames = bool(render_frames)
        self.native = _fast_render_class(getattr(importlib.import_module(module), name))(**kwargs)
        # The budget in this env's steps: OGBench's native budget (200 single, 500 double) / action_repeat.
        self.max_steps = int(max_steps) if max_steps is not None else spec.max_episode_steps // self.action_repeat
        if self.max_steps < 1:
            raise ValueError(f"max_steps: expected >= 1, got {max_steps}")
        self.observation_space = gym.spaces.Dict({
            "rgb": gym.spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8),
            "state": gym.spaces.Box(-np.inf, np.inf, (7,), np.float64),
        })
        self.action_space = gym.spaces.Box(-1.0, 1.0, (7,), np.float32)
        self.num_tasks = len(getattr(self.native, "task_infos", [])) if mode == "task" else 0
        self.native_info: dict = {}
        self.goal_rgb: np.ndarray | None = None
        self.task_id: int | None = None
        self.steps = 0
        self._closed = False
        _LIVE.add(self)

    # --- observations -------------------------------------------------------------------------------------
    def state(self) -> np.ndarray:
        return proprio_state(self.native_info)

    def render(self) -> np.ndarray:
        return np.ascontiguousarray(self.native.render())

    def observe(self) -> dict:
        return {"rgb": self.render() if self.render_frames else None, "state": self.state()}

    def cube_distance(self) -> float:
        """Largest distance (m) from a cube to its target: the quantity OGBench's success thresholds at 4 cm."""
        data = self.native._data
        distances = [np.linalg.norm(data.joint(f"object_joint_{i}").qpos[:3]
                                    - data.mocap_pos[self.native._cube_target_mocap_ids[i]])
                     for i in range(self.native._num_cubes)]
        if self.mode == "data_collection":
            return float(distances[self.native._target_block])
        return float(max(distances))

    def _info(self, success: bool) -> dict:
        info = {"is_success": bool(success), "distance": self.cube_distance(), "task_id": self.task_id,
                "native": self.native_info, "subgoal_rgbs": [], "subgoal_steps": []}
        if self.mode == "task":
            info["task_name"] = self.native.cur_task_info["task_name"]
        if self.goal_rgb is not None:
            info["goal_rgb"] = self.goal_rgb
        return info

    def oracle_info(self) -> dict:
        """OGBench's native info plus the target fields its cube oracles read, in task mode too (the first cube
        not yet at its goal). PRIVILEGED: for the scripted-oracle baseline and data collection only."""
        info = dict(self.native_info)
        if self.mode == "task":
            native, data = self.native, self.native._data
            successes = native._compute_successes()
            block = next((i for i, ok in enumerate(successes) if not ok), 0)
            info["privileged/target_task"] = "cube"
            info["privileged/target_block"] = block
            info["privileged/target_block_pos"] = data.mocap_pos[native._cube_target_mocap_ids[block]].copy()
            info["privileged/target_block_yaw"] = np.zeros(1)
        return info

    # --- gymnasium API --------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        native_options = {}
        if self.mode == "task":
            task_id = int(options.get("task_id", 1 + (0 if seed is None else seed) % self.num_tasks))
            if not 1 <= task_id <= self.num_tasks:
                raise ValueError(f"task_id: expected 1..{self.num_tasks}, got {task_id}")
            native_options = {"task_id": task_id, "render_goal": self.render_frames}
            self.task_id = task_id
        self.native.skip_pixels = True
        try:
            _, self.native_info = self.native.reset(seed=seed, options=native_options)
        finally:
            self.native.skip_pixels = False
        if self.mode == "task" and self.render_frames:
            self.goal_rgb = np.ascontiguousarray(self.native._cur_goal_rendered)
        elif self.goal_ahead is not None:
            self._goal_along_expert(seed)
        self.steps = 0
        return self.observe(), self._info(bool(self.native._success))

    def _goal_along_expert(self, seed: int | None) -> None:
        """stable-worldmodel's protocol on this env: run OGBench's closed-loop oracle from the collection scene
        (`EXPERT_STEPS` native steps, no frames), pick a start step whose cube moves farther than the success
        radius over the next `goal_ahead` steps (a start already at its goal would count as solved at once),
        render the goal there and make the cube position it reached OGBench's success target; restart there."""
        from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

        native, data = self.native, self.native._data
        rng = np.random.default_rng([0 if seed is None else seed, self.goal_ahead])
        np.random.seed(int(rng.integers(2**31)))  # the oracle's final pose comes from numpy's global generator
        oracle = CubeMarkovOracle(env=native, min_norm=0.4)
        oracle.reset(None, self.native_info)
        block = native._target_block
        snapshots, cubes = [], []
        for _ in range(EXPERT_STEPS):
            snapshots.append((data.qpos.copy(), data.qvel.copy(), data.ctrl.copy()))
            cubes.append(data.joint(f"object_joint_{block}").qpos[:3].copy())
            self.step_native(oracle.select_action(None, self.native_info))
        cubes = np.array(cubes)
        moved = np.linalg.norm(cubes[self.goal_ahead:] - cubes[: -self.goal_ahead], axis=1)
        starts = np.flatnonzero(moved > SUCCESS_RADIUS)
        if len(starts) == 0:
            raise RuntimeError(f"goal_ahead: the oracle did not move the cube in {EXPERT_STEPS} steps (seed {seed})")
        start = int(rng.choice(starts))

        def restore(snapshot):
            native.set_state(*snapshot[:2])
            data.ctrl[:] = snapshot[2]

        restore(snapshots[start + self.goal_ahead])
        self.goal_rgb = self.render() if self.render_frames else None
        restore(snapshots[start])
        data.mocap_pos[native._cube_target_mocap_ids[block]] = cubes[start + self.goal_ahead]
        native.post_step()  # OGBench's success flag for the restored scene and the new target
        self.native_info = native.compute_ob_info()

    def step_native(self, action5) -> tuple[bool, bool]:
        """One native OGBench step with its own normalised 5-D action (no frame rendered): (success, terminated).
        For the scripted oracles; `step` is made of these."""
        self.native.skip_pixels = True
        try:
            _, _, terminated, _, self.native_info = self.native.step(np.asarray(action5, dtype=np.float64))
        finally:
            self.native.skip_pixels = False
        return bool(self.native_info["success"]), bool(terminated)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (7,) or not np.isfinite(action).all():
            raise ValueError(f"action: expected 7 finite numbers (DROID delta), got {action.tolist()}")
        target = self.state() + action
        target[6] = np.clip(target[6], 0.0, 1.0)
        return self.run_native(lambda: native_action(self.state(), target))

    def run_native(self, policy) -> tuple:
        """One step of this env driven natively: `action_repeat` native steps of ``policy() -> 5-D action``
        (stops early on success in task mode). Returns the gymnasium step tuple."""
        success = terminated = False
        for _ in range(self.action_repeat):
            success, terminated = self.step_native(policy())
            if terminated:
                break
        self.steps += 1
        truncated = self.steps >= self.max_steps and not terminated
        return self.observe(), float(success), terminated, truncated, self._info(success)

    def close(self):
        if not self._closed:
            self._closed = True
            renderer = getattr(self.native, "_renderer", None)
            if renderer is not None:
                renderer.close()
                self.native._renderer = None
            _LIVE.discard(self)
