"""Train a V-JEPA 2-AC action-conditioned predictor on a frozen encoder (vjepa_ac.ac_train).

    vjepa-train-ac                                   # tiny default: simulator episodes, random tiny encoder
    vjepa-train-ac --config ac-droid-256px-8f --data.path /data/droid_raw --run.out runs/droid
        --model.encoder_checkpoint vitg.pt          # (one command line)
    torchrun --nproc_per_node=8 scripts/train_ac.py --config ac-droid-256px-8f ...

Without --data.path it trains on simulator episodes in DROID format, generated on first use into
$VJEPA_AC_CACHE (default ~/.cache/vjepa_ac). Without --model.encoder_checkpoint the encoder is randomly
initialised and saved to RUN_OUT/random_encoder.pt. The run folder (--run.out) holds latest.pt (resumed
automatically), metrics.csv, tb/, eval/ and features.zarr. See docs/ac_training.md.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from vjepa_ac.cli import run_cli

DEFAULT_TASK = "FrankaReach-v0"
DEFAULT_EPISODES = 120


def default_cache_dir() -> Path:
    return Path(os.environ.get("VJEPA_AC_CACHE", Path.home() / ".cache" / "vjepa_ac"))


def default_sim_data() -> Path:
    """Simulator episodes in DROID raw format, collected once by rank 0 (the envs package does the work)."""
    root = default_cache_dir() / "sim" / DEFAULT_TASK
    done = root / ".complete"
    if int(os.environ.get("RANK", "0")) != 0:
        while not done.exists():  # other torchrun ranks wait for rank 0's collection
            time.sleep(2)
        return root
    if not done.exists():
        from envs.collect import collect_episodes

        print(f"generating {DEFAULT_EPISODES} {DEFAULT_TASK} episodes into {root} (first run only)")
        collect_episodes(DEFAULT_TASK, DEFAULT_EPISODES, seed=0, out=root)
        done.touch()
    return root


def parse(argv=None):
    from vjepa_ac.ac_train import PRESET_DIR, ACTrainingConfig
    from vjepa_ac.config import parse_cli

    return parse_cli(ACTrainingConfig, argv, PRESET_DIR, default="ac-tiny", prog="vjepa-train-ac",
                     description=__doc__)


def _main(argv: list[str]) -> int:
    from vjepa_ac.ac_train import run

    cfg = parse(argv)
    if cfg.data.path is None:
        cfg = replace(cfg, data=replace(cfg.data, path=str(default_sim_data())))
    run(cfg)
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":  # python -m vjepa_ac.cli.train_ac
    raise SystemExit(main())
