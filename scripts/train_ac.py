#!/usr/bin/env python
"""Train a V-JEPA 2-AC action-conditioned predictor on a frozen encoder.

    python scripts/train_ac.py --data PATH --encoder-checkpoint CKPT --config PRESET_OR_YAML --out DIR [--max-steps N]

With no arguments it runs the small default: simulator-recorded DROID-format episodes (generated on first use
into a cache directory), a randomly initialised tiny encoder and the ``ac-tiny`` preset. Multi-process:
``torchrun --nproc_per_node=N scripts/train_ac.py ...``. See docs/ac_training.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

DEFAULT_TASK = "FrankaReach-v0"
DEFAULT_EPISODES = 120


def default_cache_dir() -> Path:
    return Path(os.environ.get("VJEPA_AC_CACHE", Path.home() / ".cache" / "vjepa_ac"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None,
                   help="training data: a DROID raw episode root folder, an index file (CSV/text, one episode "
                        "folder per line, as the official trainer takes) or a feature store written by a previous "
                        f"run (DIR/features.zarr). Default: {DEFAULT_EPISODES} simulator episodes of "
                        f"{DEFAULT_TASK}, generated on first use into $VJEPA_AC_CACHE (default ~/.cache/vjepa_ac)")
    p.add_argument("--encoder-checkpoint", default=None,
                   help="checkpoint holding the frozen encoder: a pretraining/cooldown checkpoint of "
                        "scripts/pretrain.py or an official one (e.g. vitg.pt); the key read is the config's "
                        "encoder_checkpoint_key (target_encoder). Default: a randomly initialised encoder, "
                        "saved to DIR/random_encoder.pt")
    p.add_argument("--config", default="ac-tiny",
                   help="preset name (ac-tiny, ac-smoke, ac-droid-256px-8f = the official V-JEPA 2-AC values) or a "
                        "YAML file (may start with 'base: <preset>'). Default: ac-tiny")
    p.add_argument("--out", default=None,
                   help="run directory: latest.pt (checkpoint, resumed automatically when present), metrics.csv, "
                        "tb/ (TensorBoard), eval/ (per-horizon table and plot), features.zarr (feature store). "
                        "Default: runs/<config name>")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many optimiser steps in this invocation (the schedule still spans the "
                        "config's total_steps, so a later run resumes where this one stopped). Default: run to "
                        "total_steps")
    return p.parse_args(argv)


def default_sim_data() -> Path:
    """Simulator episodes in DROID raw format, collected once by rank 0 (the envs package does the work)."""
    root = default_cache_dir() / "sim" / DEFAULT_TASK
    done = root / ".complete"
    if int(os.environ.get("RANK", "0")) != 0:
        while not done.exists():  # other torchrun ranks wait for rank 0's collection
            time.sleep(2)
        return root
    if not done.exists():
        os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering
        from envs.collect import collect_episodes

        print(f"generating {DEFAULT_EPISODES} {DEFAULT_TASK} episodes into {root} (first run only)")
        collect_episodes(DEFAULT_TASK, DEFAULT_EPISODES, seed=0, out=root)
        done.touch()
    return root


def main(argv=None) -> int:
    args = parse_args(argv)
    from vjepa_ac.ac_train import run

    data = Path(args.data) if args.data else default_sim_data()
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    run(data, args.encoder_checkpoint, args.config, out, max_steps=args.max_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
