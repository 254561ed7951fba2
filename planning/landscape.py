"""Energy-landscape metrics: does the planning energy fall as the arm approaches the goal?

A planner can only descend an energy that tracks physical distance. Two measurements, for any encoder (a
`WorldModel`'s ``encode``, a random encoder, raw pixels) and any `planning.energy.Energy`:

* `goal_distance_correlation`: over random (goal frame, other frame) pairs of recorded frames with known
  end-effector positions, the Spearman rank correlation between ``energy(z_frame, z_goal)`` and the true
  end-effector distance, averaged over goals (1 = the energy ranks positions exactly by distance to the goal).
* `straight_path`: in the simulator, the arm moves from an episode's start to its goal position in equal
  straight-line steps; the energy of every observed frame against the goal image, relative to the start
  (a good energy falls monotonically to its minimum at the goal).

Both use true positions for *measuring* only; the energies see images (latents) alone.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.stats import spearmanr

Encode = Callable[[np.ndarray], torch.Tensor]  # uint8 images [B, H, W, 3] -> latents [B, N, D]


def pixel_latents(images: np.ndarray, size: int = 16) -> torch.Tensor:
    """Raw-pixel baseline "latents": images area-downsampled to size x size, [B, size*size, 3] in [0, 1]."""
    x = torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float() / 255.0
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="area")
    return x.flatten(2).transpose(1, 2).contiguous()


@torch.no_grad()
def encode_all(encode: Encode, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    return torch.cat([encode(images[i:i + batch]).cpu() for i in range(0, len(images), batch)])


@torch.no_grad()
def goal_distance_correlation(latents: torch.Tensor, positions: np.ndarray, energy, goals: int = 20,
                              others: int = 60, seed: int = 0) -> dict:
    """Mean per-goal Spearman correlation between energy and true distance (see module).

    latents [F, N, D] of F frames, positions [F, 3] their end-effector positions (metres).
    """
    positions = np.asarray(positions, dtype=np.float64)
    if len(latents) != len(positions) or len(latents) < others + 1:
        raise ValueError(f"goal_distance_correlation: need matching latents/positions with more than others={others} "
                         f"frames, got {len(latents)} latents and {len(positions)} positions")
    rng = np.random.default_rng(seed)
    rhos = []
    for g in rng.choice(len(latents), size=goals, replace=False):
        pool = np.delete(np.arange(len(latents)), g)
        idx = rng.choice(pool, size=others, replace=False)
        e = energy(latents[idx][:, None], latents[g][None]).cpu().numpy()
        d = np.linalg.norm(positions[idx] - positions[g], axis=1)
        rhos.append(float(spearmanr(e, d).statistic))
    rhos = np.asarray(rhos)
    return {"spearman_mean": float(np.nanmean(rhos)), "spearman_std": float(np.nanstd(rhos)),
            "goals": goals, "others": others}


def _path_frames(env, seed: int, points: int) -> tuple[list[np.ndarray], np.ndarray, list[float]]:
    """Reset `env` with `seed`, step the EE in `points - 1` equal xyz steps to the goal position."""
    obs, info = env.reset(seed=seed)
    start, goal = np.asarray(obs["state"][:3], float), np.asarray(info["goal_state"][:3], float)
    step = np.zeros(7, dtype=np.float32)
    frames, distances = [obs["rgb"]], [float(info["distance"])]
    for k in range(1, points):
        target = start + (goal - start) * k / (points - 1)
        step[:3] = target - np.asarray(obs["state"][:3], float)  # from the measured pose: no drift accumulates
        obs, _, _, _, info = env.step(step)
        frames.append(obs["rgb"])
        distances.append(float(info["distance"]))
    return frames, info["goal_rgb"], distances


@torch.no_grad()
def straight_path(env, encoders: dict[str, tuple[Encode, object]], seeds, points: int = 11) -> dict:
    """Energy along straight paths to the goal, for several (encode, energy) pairs on the same frames.

    Returns per name: ``relative_energy`` [points] (mean over seeds of E_k / E_0), ``monotone`` (share of steps
    where the energy fell), ``spearman`` (mean over seeds of the rank correlation of energy and remaining
    distance) and, shared, ``distance_m`` [points] (mean true distance to the goal).
    """
    out = {name: {"relative": [], "monotone": [], "spearman": []} for name in encoders}
    dists = []
    for seed in seeds:
        frames, goal_rgb, distances = _path_frames(env, seed, points)
        dists.append(distances)
        images = np.stack(frames + [goal_rgb])
        for name, (encode, energy) in encoders.items():
            z = encode(images)
            e = energy(z[:-1][:, None], z[-1:]).cpu().numpy()
            out[name]["relative"].append(e / max(e[0], 1e-12))
            out[name]["monotone"].append(float(np.mean(np.diff(e) < 0)))
            out[name]["spearman"].append(float(spearmanr(e, distances).statistic))
    result = {"distance_m": np.mean(dists, 0).tolist(), "seeds": list(seeds), "points": points}
    for name, v in out.items():
        result[name] = {"relative_energy": np.mean(v["relative"], 0).tolist(),
                        "monotone": float(np.mean(v["monotone"])), "spearman": float(np.nanmean(v["spearman"]))}
    return result
