"""Closed-loop evaluation: success rate with a 95% Wilson interval, final distances, planning time per action,
per-stage results of tasks with sub-goals, episode videos (observation beside the goal planned toward at that
step) and the energy landscape around a true action.

`evaluate(make_env, mpc, episodes, seed, out_dir)` runs the episodes (seeds ``seed, seed+1, ...``) with a
progress bar and writes ``report.json``, ``episode_XXX.mp4|gif`` and, on request, ``energy_landscape.png``
and ``energy_landscape.json`` into `out_dir`. Success and distances come from the simulator (evaluation
only); the planner never sees them.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from planning.mpc import MPC, EpisodeResult, run_episode


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% for the default z)."""
    if trials <= 0:
        raise ValueError(f"wilson_interval: trials must be > 0, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"wilson_interval: successes must be in [0, {trials}], got {successes}")
    p = successes / trials
    denom = 1.0 + z * z / trials
    center = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def side_by_side(frames, goal: np.ndarray) -> np.ndarray:
    """Frames [T, H, W, 3] and the goal image [H, W, 3] — or one goal per frame [T, H, W, 3], e.g. the
    sub-goal planned toward at that step — -> [T, H, 2W, 3] (observation left, goal right)."""
    frames = np.asarray(frames, dtype=np.uint8)
    goal = np.asarray(goal, dtype=np.uint8)
    if goal.shape not in (frames.shape[1:], frames.shape):
        raise ValueError(f"side_by_side: frames {frames.shape[1:]} and goal {goal.shape} must have the same size")
    return np.concatenate([frames, np.broadcast_to(goal, frames.shape)], axis=2)


def save_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 4.0) -> Path:
    """Write uint8 frames [T, H, W, 3] as .mp4 (H.264 via PyAV) or .gif (Pillow), chosen by the suffix."""
    path = Path(path)
    frames = np.asarray(frames, dtype=np.uint8)
    if path.suffix == ".mp4":
        from droid_data.video import encode_video

        h, w = frames.shape[1:3]
        encode_video(path, frames[:, : h - h % 2, : w - w % 2], fps=fps)  # yuv420p needs even sizes
    elif path.suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    else:
        raise ValueError(f"save_video: {path}: expected a .mp4 or .gif file name")
    return path


@torch.no_grad()
def energy_landscape(env, mpc: MPC, seed: int, grid: int = 5, extent: float = 0.075,
                     true_action: np.ndarray | None = None) -> dict:
    """Energy of one-step predictions over a grid of xyz deltas around a true action (official notebook check).

    The env is reset with `seed`; the true action (default: a random xyz delta in the box, seeded) is executed
    and the resulting image becomes the goal. Every delta of a ``grid^3`` lattice over [-extent, extent]^3
    (rotation and gripper 0) is rolled out one step from the start frame and scored against that goal.
    A good world model has its minimum at the true action.
    """
    obs, _ = env.reset(seed=seed)
    if true_action is None:
        rng = np.random.default_rng(seed)
        true_action = np.zeros(7, dtype=np.float32)
        true_action[:3] = rng.uniform(-extent, extent, size=3) * 0.8
    true_action = np.asarray(true_action, dtype=np.float32)
    next_obs, *_ = env.step(true_action)
    if mpc.oracle:
        mpc.set_goal(oracle_goal_state=next_obs["state"])
    else:
        mpc.set_goal(next_obs["rgb"])
    context = mpc.encode_observation(obs)
    state = torch.as_tensor(np.asarray(obs["state"], dtype=np.float32))[None].to(context.device)

    axis = torch.linspace(-extent, extent, grid)
    dx, dy, dz = torch.meshgrid(axis, axis, axis, indexing="ij")
    actions = torch.zeros(grid ** 3, 1, 7)
    actions[:, 0, 0], actions[:, 0, 1], actions[:, 0, 2] = dx.flatten(), dy.flatten(), dz.flatten()
    preds = mpc.world_model.rollout(context, state, actions.to(context.device))
    energies = mpc.planner.energy(preds, mpc.goal).reshape(grid, grid, grid).cpu()
    best = actions[int(energies.argmin()), 0, :3].numpy()
    return {
        "seed": seed,
        "axis": axis.tolist(),
        "energies": energies.tolist(),  # [dx][dy][dz]
        "true_action": true_action.tolist(),
        "argmin_action": best.tolist(),
        "argmin_error_m": float(np.linalg.norm(best - true_action[:3])),
    }


def plot_energy_landscape(landscape: dict, path: str | os.PathLike) -> Path:
    """Three heat maps (dx-dy, dx-dz, dy-dz) through the grid point nearest the true action."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis = np.asarray(landscape["axis"])
    energies = np.asarray(landscape["energies"])
    true = np.asarray(landscape["true_action"][:3])
    nearest = [int(np.abs(axis - v).argmin()) for v in true]
    names = ["dx", "dy", "dz"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (i, j) in zip(axes, [(0, 1), (0, 2), (1, 2)]):
        k = 3 - i - j
        index = [slice(None)] * 3
        index[k] = nearest[k]
        plane = energies[tuple(index)]  # [axis i, axis j]
        half = (axis[1] - axis[0]) / 2 if len(axis) > 1 else 0.01  # pixel centres on the grid values
        box = [axis[0] - half, axis[-1] + half]
        im = ax.imshow(plane.T, origin="lower", extent=box + box, cmap="viridis")
        ax.scatter([true[i]], [true[j]], marker="*", s=150, c="red", label="true action")
        ax.set_xlabel(f"{names[i]} (m)")
        ax.set_ylabel(f"{names[j]} (m)")
        ax.set_title(f"{names[k]} = {axis[nearest[k]]:+.3f}")
        fig.colorbar(im, ax=ax, shrink=0.8)
    axes[0].legend(loc="upper left", fontsize=7)
    fig.suptitle(f"energy around the true action (argmin error {landscape['argmin_error_m'] * 100:.1f} cm)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _summary(values: list[float]) -> dict:
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return {"mean": None, "median": None, "p95": None}
    return {"mean": float(array.mean()), "median": float(np.median(array)), "p95": float(np.percentile(array, 95))}


def evaluate(make_env, mpc: MPC, episodes: int, seed: int, out_dir: str | os.PathLike, *, videos: int = 2,
             video_format: str = "mp4", max_steps: int | None = None, landscape: bool = True,
             landscape_grid: int = 5, metadata: dict | None = None, progress: bool = True) -> dict:
    """Run `episodes` closed-loop episodes (env seeds ``seed + i``) and write the report into `out_dir`.

    `make_env()` builds a fresh env; the first `videos` episodes are saved as videos (observation | goal).
    Returns the report dict (also written to ``out_dir/report.json``).
    """
    if episodes < 1:
        raise ValueError(f"evaluate: episodes must be >= 1, got {episodes}")
    if video_format not in ("mp4", "gif"):
        raise ValueError(f"evaluate: video_format must be 'mp4' or 'gif', got {video_format!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = make_env()
    results: list[EpisodeResult] = []
    bar = tqdm(range(episodes), desc="episodes", unit="ep", disable=not progress)
    for i in bar:
        record = i < videos
        result = run_episode(env, mpc, seed=seed + i, max_steps=max_steps, record_frames=record)
        if record:
            save_video(out / f"episode_{i:03d}.{video_format}", side_by_side(result.frames, result.goal_frames))
        results.append(result)
        successes = sum(r.success for r in results)
        bar.set_postfix(success=f"{successes}/{len(results)}", dist=f"{result.final_distance or float('nan'):.3f}")

    successes = sum(r.success for r in results)
    low, high = wilson_interval(successes, episodes)
    seconds = [t for r in results for t in r.plan_seconds]
    per_action = [r.seconds_per_action for r in results if r.actions]
    report = {
        **(metadata or {}),
        "episodes": episodes,
        "seed": seed,
        "oracle_mode": mpc.oracle,
        "planner": type(mpc.planner).__name__,
        "planner_config": _plain(mpc.planner.config),
        "execute_per_plan": mpc.execute,
        "successes": successes,
        "success_rate": successes / episodes,
        "success_ci95": [low, high],
        "final_distance_m": _summary([r.final_distance for r in results if r.final_distance is not None]),
        "steps": _summary([r.steps for r in results]),
        "planning_seconds_per_call": _summary(seconds),
        "planning_seconds_per_action": _summary(per_action),
        "stage_reached_rate": _stage_rates(results),
        "per_episode": [
            {"seed": seed + i, "success": r.success, "steps": r.steps, "final_distance_m": r.final_distance,
             "seconds_per_action": r.seconds_per_action, "best_energies": r.energies, "stages": r.stages}
            for i, r in enumerate(results)
        ],
    }
    if landscape:
        land = energy_landscape(env, mpc, seed=seed, grid=landscape_grid)
        (out / "energy_landscape.json").write_text(json.dumps(land))
        plot_energy_landscape(land, out / "energy_landscape.png")
        report["energy_landscape_argmin_error_m"] = land["argmin_error_m"]
    env.close()
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, out / "report.json")
    return report


def _stage_rates(results: list[EpisodeResult]) -> dict:
    """Per goal stage (sub-goals, then "goal"): the fraction of the episodes that got to it which reached it
    by its end (simulator's judgement); stages no episode reached are left out."""
    rates = {}
    for name in dict.fromkeys(stage["name"] for r in results for stage in r.stages):
        reached = [s["reached"] for r in results for s in r.stages if s["name"] == name and s["reached"] is not None]
        if reached:
            rates[name] = {"episodes": len(reached), "reached": sum(reached), "rate": sum(reached) / len(reached)}
    return rates


def _plain(obj):
    """Dataclass configs -> JSON-ready dicts."""
    from dataclasses import asdict, is_dataclass

    return asdict(obj) if is_dataclass(obj) else obj


def table_row(task: str, policy: str, report: dict, seconds_per_action: float | None = None) -> dict:
    """One row of a results table from an `evaluate` / `evaluate_policy` report (the demo's and benchmarks')."""
    return {"task": task, "policy": policy, "episodes": report["episodes"], "successes": report["successes"],
            "success_rate": report["success_rate"], "ci95": report["success_ci95"],
            "final_distance_m": report["final_distance_m"]["mean"], "seconds_per_action": seconds_per_action}
