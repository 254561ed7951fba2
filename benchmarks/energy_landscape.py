#!/usr/bin/env python
"""Is the pure latent distance a planning energy? V-JEPA 2 vs V-JEPA 2.1 objective, untrained, pixels.

    MUJOCO_GL=egl python benchmarks/energy_landscape.py [--out runs/energy_landscape] [--epochs 8]

Stages (each resumes from what it finds in --out; rerun the command after an interruption):
1. data: scripted episodes of reach, push and grasp (envs.collect, mixed policies, 64 px) for pretraining;
2. held-out: other episodes of the same tasks (other seeds) with the end-effector and, on the cube tasks
   (FrankaPush-v0, FrankaGrasp-v0), the object's simulator position per frame. The positions are used to
   *measure* only, never by an energy;
3. pretraining: the demo's encoder (ViT 128 x 4 blocks, patch 16, 64 px) with the V-JEPA 2 objective
   (preset demo-pretrain) and with the V-JEPA 2.1 objective (demo-2_1-pretrain: deep self-supervision and the
   dense context loss), the same data, steps, batch, schedules and seed;
4. landscape: for every held-out task, random (goal frame, other frame) pairs; the Spearman rank correlation
   between the pure latent energy (mean L1 between the layer-normed latents of the two frames, no head) and the
   true distance between their end-effector (EE) or object positions, averaged over goals
   (planning.landscape.goal_distance_correlation, the measure of `make demo`'s landscape stage).

Rows: features (untrained encoders of both architectures at the same size, the two trained ones, 16 x 16
pixels) x token pooling: per-patch (every token, the planning energy), mean-pooled (the token average), and the
per-patch output of an intermediate block (the second of four). Prints one markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import torch
import torch.nn.functional as F

TASKS = {"reach": "FrankaReach-v0", "push": "FrankaPush-v0", "grasp": "FrankaGrasp-v0"}
PRESETS = {"V-JEPA 2 objective": "demo-pretrain", "V-JEPA 2.1 objective": "demo-2_1-pretrain"}
HELD_OUT_SEED = 1000  # training episodes use seed 0; collection seeds are per (seed, index), so no overlap
POOLINGS = ("last layer, per-patch", "last layer, mean-pooled", "block 2 of 4, per-patch")


def log(msg: str) -> None:
    print(f"[energy_landscape {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------------------
# 1-2. data


def collect_training(out: Path, episodes: int) -> Path:
    from envs.collect import collect_episodes

    data = out / "data"
    for task in TASKS:
        collect_episodes(task, episodes, seed=0, out=data / task, image_size=64, progress=False)
    return data


def held_out(out: Path, task: str, episodes: int) -> dict[str, np.ndarray]:
    """Frames [F, 64, 64, 3], EE positions [F, 3] and (cube tasks) object positions [F, 3]; cached in --out."""
    from envs.collect import collect_episodes

    cache = out / f"held_out_{task}_{episodes}.npz"
    if cache.exists():
        return dict(np.load(cache))
    eps = list(collect_episodes(task, episodes, seed=HELD_OUT_SEED, image_size=64, progress=False))
    arrays = {"frames": np.concatenate([e.frames["ext1"] for e in eps]),
              "ee": np.concatenate([e.states[:, :3] for e in eps])}
    if eps[0].object_positions is not None:
        arrays["object"] = np.concatenate([e.object_positions for e in eps])
    np.savez(cache, **arrays)
    return arrays


# ---------------------------------------------------------------------------------------------------------------
# 3. pretraining


def pretrain_config(preset: str, out: Path, data: Path, args):
    from vjepa_ac.pretrain import load_pretrain_config

    return load_pretrain_config(preset, {
        "data": {"path": str(data)},
        "optim": {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch},
        "run": {"out": str(out), "seed": args.seed, "threads": args.threads, "save_every_epochs": 10_000}})


def pretrain_all(out: Path, data: Path, args) -> dict[str, Path]:
    from vjepa_ac.pretrain import train

    checkpoints = {}
    for name, preset in PRESETS.items():
        run = out / preset
        cfg = pretrain_config(preset, run, data, args)
        start = time.perf_counter()
        train(cfg)  # resumes from run/latest.pt; a finished run returns at once
        log(f"{name} ({preset}): {cfg.optim.total_steps} steps, {time.perf_counter() - start:.0f} s this call")
        checkpoints[name] = run / "latest.pt"
    return checkpoints


# ---------------------------------------------------------------------------------------------------------------
# 4. landscape


@torch.no_grad()
def layer_latents(encoder, frames: np.ndarray, layers: list[int], tubelet_size: int) -> list[torch.Tensor]:
    """Layer-normed outputs [F, N, D] of the encoder's blocks ``layers`` for single frames (one tubelet each,
    as AC training and planning encode them)."""
    from vjepa_ac.runtime import normalize_images

    encoder.out_layers = layers
    outs = []
    try:
        for start in range(0, len(frames), 128):
            x = normalize_images(torch.from_numpy(np.ascontiguousarray(frames[start:start + 128])))
            outs.append(encoder(x.unsqueeze(2).expand(-1, -1, tubelet_size, -1, -1)))
    finally:
        encoder.out_layers = None
    return [F.layer_norm(torch.cat(o).float(), (o[0].size(-1),)) for o in zip(*outs)]


def encoders(checkpoints: dict[str, Path], out: Path, data: Path, args) -> dict:
    """name -> encoder in eval mode: untrained V-JEPA 2 / 2.1 architectures (seeded) and the trained ones."""
    from vjepa_ac.pretrain import build_encoder
    from vjepa_ac.runtime import load_pretrain_encoder

    result = {}
    for name, preset in PRESETS.items():
        torch.manual_seed(args.seed + 1)
        arch = "2.1" if "2.1" in name else "2"
        result[f"untrained encoder (V-JEPA {arch} architecture)"] = build_encoder(
            pretrain_config(preset, out, data, args)).eval()
    for name, path in checkpoints.items():
        result[name] = load_pretrain_encoder(path)[0]
    return result


def features(encoder, frames: np.ndarray) -> dict[str, torch.Tensor]:
    depth = len(encoder.blocks)
    mid, last = layer_latents(encoder, frames, [depth // 2 - 1, depth - 1], encoder.tubelet_size)
    return {POOLINGS[0]: last, POOLINGS[1]: last.mean(dim=1, keepdim=True), POOLINGS[2]: mid}


def pixel_features(frames: np.ndarray) -> dict[str, torch.Tensor]:
    from planning.landscape import pixel_latents

    pix = pixel_latents(frames)
    return {POOLINGS[0]: pix, POOLINGS[1]: pix.mean(dim=1, keepdim=True)}


def columns(held: dict[str, dict[str, np.ndarray]]) -> list[tuple[str, str, str]]:
    """(header, task, target) for every measured correlation: EE distance everywhere, object distance on cubes."""
    cols = []
    for task, arrays in held.items():
        cols.append((f"{task} EE", task, "ee"))
        if "object" in arrays:
            cols.append((f"{task} object", task, "object"))
    return cols


def correlations(latents_per_task: dict[str, torch.Tensor], held, cols, args) -> list[float]:
    from planning.energy import LatentDistance
    from planning.landscape import goal_distance_correlation

    energy = LatentDistance("l1")
    out = []
    for _, task, target in cols:
        z = latents_per_task[task]
        r = goal_distance_correlation(z, held[task][target], energy, goals=args.goals,
                                      others=min(args.others, len(z) - 1), seed=args.seed)
        out.append(r["spearman_mean"])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/energy_landscape", help="working folder (every stage resumes from it)")
    p.add_argument("--train-episodes", type=int, default=40, help="pretraining episodes per task (reach, push, grasp)")
    p.add_argument("--held-out-episodes", type=int, default=10, help="held-out episodes per task")
    p.add_argument("--epochs", type=int, default=8, help="pretraining epochs (both objectives)")
    p.add_argument("--steps-per-epoch", type=int, default=50, help="pretraining steps per epoch (both objectives)")
    p.add_argument("--goals", type=int, default=30, help="goal frames per correlation")
    p.add_argument("--others", type=int, default=60, help="frames compared with each goal")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these tiny models)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    data = collect_training(out, args.train_episodes)
    held = {task: held_out(out, task, args.held_out_episodes) for task in TASKS}
    log(f"data ready ({time.perf_counter() - t0:.0f} s): "
        + ", ".join(f"{t} {len(a['frames'])} held-out frames" for t, a in held.items()))
    checkpoints = pretrain_all(out, data, args)
    log(f"pretraining done ({time.perf_counter() - t0:.0f} s)")

    cols = columns(held)
    rows = []
    for name, encoder in encoders(checkpoints, out, data, args).items():
        per_task = {task: features(encoder, arrays["frames"]) for task, arrays in held.items()}
        for pooling in POOLINGS:
            rows.append((name, pooling, correlations({t: f[pooling] for t, f in per_task.items()}, held, cols, args)))
    per_task = {task: pixel_features(arrays["frames"]) for task, arrays in held.items()}
    for pooling in POOLINGS[:2]:
        rows.append(("pixels 16 x 16", pooling.replace("last layer, ", ""),
                     correlations({t: f[pooling] for t, f in per_task.items()}, held, cols, args)))

    print(f"\nSpearman correlation of the pure latent L1 energy with the true distance to the goal frame "
          f"({args.goals} goals x {args.others} frames per column; held-out episodes: {args.held_out_episodes} "
          f"per task; pretraining: {args.epochs} x {args.steps_per_epoch} steps per objective)\n")
    print("| features | pooling | " + " | ".join(c[0] for c in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for name, pooling, values in rows:
        print(f"| {name} | {pooling} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    (out / "landscape.json").write_text(json.dumps(
        {"columns": [c[0] for c in cols], "rows": [{"features": n, "pooling": pl, "spearman": v} for n, pl, v in rows],
         "args": vars(args)}, indent=2))
    log(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
