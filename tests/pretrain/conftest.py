"""A tiny pretraining config shared by the tests of this folder."""
import pytest
import torch

from vjepa_ac.config import from_dict
from vjepa_ac.pretrain import JEPATrainingConfig


def tiny_config(**overrides) -> JEPATrainingConfig:
    """ViT 48 wide x 2 blocks, patch 8 on 32 px, 4-frame clips (2x4x4 = 32 tokens), fp32 on CPU."""
    data = {"source": "synthetic", "frames_per_clip": 4, "crop_size": 32, "random_resized_crop": [1.0, 1.0],
            "aspect_ratio": [1.0, 1.0], "synthetic_size": 16}
    data.update(overrides.pop("data", {}))
    cfg = {
        "predictor_embed_dim": 32, "predictor_depth": 1, "predictor_num_heads": 2, "num_mask_tokens": 4,
        "lr": 1e-3, "start_lr": 1e-3, "final_lr": 1e-4, "warmup_epochs": 0, "epochs": 1, "steps_per_epoch": 100,
        "batch_size": 4, "use_bfloat16": False, "ema_start": 0.99, "ema_end": 0.999, "normalize_reps": True,
        "model": {"name": "custom", "embed_dim": 48, "depth": 2, "num_heads": 2, "patch_size": 8},
        "data": data, "log_every": 2, "stats_every": 2,
    }
    cfg.update(overrides)
    return from_dict(JEPATrainingConfig, cfg, source="tests")


@pytest.fixture
def tiny():
    torch.set_num_threads(1)
    return tiny_config
