"""A tiny pretraining config shared by the tests of this folder."""
import pytest
import torch

from vjepa_ac.config import from_dict
from vjepa_ac.pretrain import JEPATrainingConfig

# Flat test keywords -> config group (tests read better as tiny(epochs=2, lr=1e-3) than nested dicts).
GROUP = {
    **dict.fromkeys(("lr", "start_lr", "final_lr", "lr_schedule", "warmup_epochs", "epochs", "steps_per_epoch",
                     "weight_decay", "final_weight_decay", "clip_grad", "ema_start", "ema_end", "ema_schedule",
                     "encoder_lr_scale", "is_anneal", "anneal_ckpt"), "optim"),
    **dict.fromkeys(("loss", "loss_exp", "normalize_reps", "vicreg_var_weight", "vicreg_cov_weight", "masks",
                     "predict_all", "weight_distance_loss", "lambda_value_vid", "lambda_progressive",
                     "lambda_start_step", "lambda_end_step", "normalize_predictor"), "loss"),
    **dict.fromkeys(("out", "seed", "use_bfloat16", "use_float16", "log_every", "stats_every", "save_every_epochs",
                     "resume", "threads", "parallel", "device"), "run"),
    **dict.fromkeys(("predictor_embed_dim", "predictor_depth", "predictor_num_heads", "num_mask_tokens", "depth",
                     "app", "levels_predictor"), "model"),
}


def tiny_config(**overrides) -> JEPATrainingConfig:
    """ViT 48 wide x 2 blocks, patch 8 on 32 px, 4-frame clips (2x4x4 = 32 tokens), fp32 on CPU."""
    cfg = {
        "data": {"source": "synthetic", "frames_per_clip": 4, "crop_size": 32, "random_resized_crop": [1.0, 1.0],
                 "aspect_ratio": [1.0, 1.0], "synthetic_size": 16, "batch_size": 4},
        "model": {"name": "custom", "embed_dim": 48, "depth": 2, "num_heads": 2, "patch_size": 8,
                  "predictor_embed_dim": 32, "predictor_depth": 1, "predictor_num_heads": 2, "num_mask_tokens": 4},
        "optim": {"lr": 1e-3, "start_lr": 1e-3, "final_lr": 1e-4, "warmup_epochs": 0, "epochs": 1,
                  "steps_per_epoch": 100, "ema_start": 0.99, "ema_end": 0.999},
        "loss": {"normalize_reps": True},
        "run": {"use_bfloat16": False, "log_every": 2, "stats_every": 2},
    }
    cfg["data"].update(overrides.pop("data", {}))
    if "output_dir" in overrides:
        overrides["out"] = overrides.pop("output_dir")
    for key, value in overrides.items():
        cfg[GROUP[key]][key] = value
    return from_dict(JEPATrainingConfig, cfg, source="tests")


@pytest.fixture
def tiny():
    torch.set_num_threads(1)
    return tiny_config


def run_two_processes(worker, out) -> None:
    """``torchrun --standalone --nproc_per_node=2 worker out`` (gloo on CPU); fails with its stderr's end."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[2]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
