"""Run by test_ddp.py under `torchrun --nproc_per_node=2`: the full train() loop with gloo on CPU.

Each rank writes its final encoder / predictor / target-encoder parameters and the first batch it saw
to OUT/rank<r>.pt, so the test can compare ranks.
"""
import sys

import torch

from vjepa_ac import distributed
from vjepa_ac.config import from_dict
from vjepa_ac.pretrain import JEPATrainingConfig, train
from vjepa_ac.video_data import build_dataset, build_loader

torch.set_num_threads(1)
out = sys.argv[1]
cfg = from_dict(JEPATrainingConfig, {
    "data": {"source": "synthetic", "frames_per_clip": 2, "crop_size": 32, "synthetic_size": 16, "batch_size": 2},
    "model": {"name": "custom", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8,
              "predictor_embed_dim": 32, "predictor_depth": 1, "predictor_num_heads": 2, "num_mask_tokens": 4},
    "optim": {"lr": 1e-3, "start_lr": 1e-3, "final_lr": 1e-4, "warmup_epochs": 0, "epochs": 2, "steps_per_epoch": 2,
              "ema_start": 0.9, "ema_end": 0.99},
    "loss": {"normalize_reps": True},
    "run": {"out": out, "device": "cpu", "log_every": 1, "stats_every": 2, "use_bfloat16": False},
}, source="ddp_worker")
trainer = train(cfg)
info = distributed.init_distributed("cpu")
first = next(iter(build_loader(build_dataset(cfg.data), cfg.data.batch_size, cfg.run.seed, info.rank, info.world_size, 0)))
torch.save({
    "world_size": distributed.get_world_size(),
    "encoder": trainer.encoder.state_dict(),
    "predictor": trainer.predictor.state_dict(),
    "target": trainer.ema.get_target_encoder().state_dict(),
    "first_batch": first,
    "step": trainer.global_step,
}, f"{out}/rank{info.rank}.pt")
distributed.cleanup()
