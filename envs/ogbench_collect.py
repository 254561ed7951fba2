"""OGBench's own scripted oracles on its visual cube envs, recorded in DROID's raw layout like every source.

    collect_ogbench("visual-cube-single-v0", 100, "data/ogbench/cube_single", seed=0)   # oracle="plan"

As OGBench's data generation (its ``data_gen_scripts/generate_manipspace.py``): the env in
``mode="data_collection"`` (random arm, cube and target poses), an oracle from ``ogbench.manipspace.oracles``
drives it at the native 20 Hz, and a new target is set whenever the oracle is done, so an episode chains
pick-and-place motions. ``plan`` is OGBench's "play" oracle (a pre-computed noisy plan; noise 0.1, smoothing
0.5, its defaults), ``markov`` its closed-loop "noisy" oracle (Gaussian action noise with a per-episode level
uniform in [0, noise]). Every `action_repeat`-th native frame is recorded with the 7-D proprioceptive state
(`envs.ogbench_cube`), so the episode's fps is 20 / action_repeat (4 Hz by default) and its actions are the
DROID deltas between recorded states. Cube poses are not recorded (the model never sees them).
Folders already complete are kept (resume); episodes are reproducible one by one from (seed, index).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from envs.collect import episode_seed
from envs.ogbench_cube import OGBenchCubeEnv, require_ogbench

ORACLES = ("plan", "markov")
NATIVE_HZ = 20.0  # OGBench's control rate (control_timestep 0.05 s)
P_STACK = {"visual-cube-single-v0": (0.0, 0.0), "visual-cube-double-v0": (0.0, 0.25)}  # OGBench's ranges


def make_oracle(kind: str, env: OGBenchCubeEnv, noise: float):
    require_ogbench()
    if kind == "plan":
        from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle

        return CubePlanOracle(env=env.native, noise=noise, noise_smoothing=0.5)
    if kind == "markov":
        from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

        return CubeMarkovOracle(env=env.native, min_norm=0.4)
    raise ValueError(f"oracle: expected one of {ORACLES}, got {kind!r}")


def run_oracle_episode(env: OGBenchCubeEnv, oracle_kind: str, seed: int, frames: int, noise: float = 0.1) -> dict:
    """One data-collection episode of `frames` recorded frames: states [T, 7], rgb [T, H, W, 3], targets reached."""
    np.random.seed(seed % 2**32)  # OGBench's oracles draw their noise and keyframes from numpy's global generator
    rng = np.random.default_rng(seed)
    oracle = make_oracle(oracle_kind, env, noise)
    obs, info = env.reset(seed=seed)
    oracle.reset(None, info["native"])
    low, high = P_STACK[env.env_id]
    p_stack, xi = rng.uniform(low, high), rng.uniform(0, noise)
    states, images, reached = [obs["state"]], [obs["rgb"]], 0
    for _ in range(frames - 1):
        for _ in range(env.action_repeat):
            action = np.asarray(oracle.select_action(None, env.native_info), dtype=np.float64)
            if oracle_kind == "markov":
                action = action + rng.normal(0, [xi, xi, xi, xi * 3, xi * 10])
            success, _ = env.step_native(np.clip(action, -1, 1))
            if oracle.done:
                reached += bool(success)
                _, new_info = env.native.set_new_target(p_stack=p_stack)
                env.native_info = new_info
                oracle.reset(None, new_info)
        obs = env.observe()
        states.append(obs["state"])
        images.append(obs["rgb"])
    return {"states": np.array(states), "rgb": np.stack(images), "targets_reached": reached}


def collect_ogbench(env_id: str, episodes: int, out: str | Path, seed: int = 0, *, oracle: str = "plan",
                    noise: float = 0.1, image_size: int = 64, action_repeat: int = 5, frames: int = 40,
                    progress: bool = True) -> list[Path]:
    """Collect `episodes` oracle episodes of `frames` frames into ``<out>/<env_id>_<index:05d>/`` (DROID raw
    layout, camera serial ``ogbench_front``); complete folders already there are kept."""
    from droid_data import write_episode

    if oracle not in ORACLES:
        raise ValueError(f"oracle: expected one of {ORACLES}, got {oracle!r}")
    if episodes < 1 or frames < 2:
        raise ValueError(f"episodes / frames: expected >= 1 episodes of >= 2 frames, got {episodes} / {frames}")
    if not noise >= 0:
        raise ValueError(f"noise: expected >= 0, got {noise}")
    out = Path(out)
    paths = [out / f"{env_id}_{i:05d}" for i in range(episodes)]
    todo = [i for i, p in enumerate(paths) if not (p / "trajectory.h5").exists()]
    if not todo:
        return paths
    env = OGBenchCubeEnv(env_id, image_size=image_size, action_repeat=action_repeat, mode="data_collection",
                         max_steps=frames)
    try:
        for i in tqdm(todo, desc=f"collect {env_id}", unit="ep", disable=not progress):
            seed_i = episode_seed(seed, i)
            ep = run_oracle_episode(env, oracle, seed_i, frames, noise)
            write_episode(paths[i], ep["states"][:, :6], ep["states"][:, 6], {"ogbench_front": ep["rgb"]},
                          camera_roles={"ogbench_front": "ext1"}, fps=NATIVE_HZ / action_repeat,
                          metadata={"lab": "ogbench", "current_task": "pick up the cube and place it at the target",
                                    "success": ep["targets_reached"] > 0, "ogbench_env": env_id,
                                    "ogbench_oracle": oracle, "ogbench_noise": noise, "sim_seed": seed_i,
                                    "ogbench_action_repeat": action_repeat,
                                    "ogbench_targets_reached": ep["targets_reached"]})
    finally:
        env.close()
    return paths
