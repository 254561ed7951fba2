"""A diverged AC run keeps its last good checkpoint; bad learning rates are refused; old checkpoints resume."""
import math
import os
import time
from dataclasses import replace

import pytest
import torch

from vjepa_ac.ac_train import encoder_spec, train
from vjepa_ac.optim import TrainingDiverged
from vjepa_ac.runtime import build_encoder

TOKENS, DIM, FRAMES = 4, 16, 4


@pytest.fixture
def tiny(ac_config):
    return lambda **changes: ac_config(**{**BASE, **changes})


BASE = {"encoder_name": "VisionTransformer", "encoder_kwargs": {"embed_dim": DIM, "depth": 1, "num_heads": 2},
        "encoder_checkpoint_key": "encoder", "img_size": 32, "patch_size": 16, "predictor_embed_dim": 32,
        "predictor_depth": 1, "predictor_num_heads": 2, "predictor_num_frames": 16, "frames_per_clip": FRAMES,
        "batch_size": 4, "lr": 1e-3, "start_lr": 1e-4, "warmup_steps": 1, "total_steps": 8, "log_every": 1,
        "eval_every": 100, "checkpoint_every": 2, "use_bfloat16": False, "seed": 5}


class Clips(torch.utils.data.Dataset):
    def __init__(self, n=16):
        g = torch.Generator().manual_seed(0)
        self.items = [{"latents": torch.randn(FRAMES, TOKENS, DIM, generator=g),
                       "states": torch.rand(FRAMES, 7, generator=g) * 0.1,
                       "actions": torch.rand(FRAMES - 1, 7, generator=g) * 0.01} for _ in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def run(cfg, out, max_steps=None):
    cfg = replace(cfg, run=replace(cfg.run, out=str(out), max_steps=max_steps))
    torch.manual_seed(cfg.run.seed)
    return train(cfg, Clips(), None, encoder=build_encoder(encoder_spec(cfg)), progress=False)


@pytest.mark.parametrize("bad_lr", [math.inf, 1e9])
def test_a_diverging_checkpoint_step_leaves_the_last_good_latest(tiny, tmp_path, monkeypatch, blow_up_lr, bad_lr):
    cfg = tiny()
    run(cfg, tmp_path, max_steps=4)  # latest.pt at step 4
    good = torch.load(tmp_path / "latest.pt", weights_only=True)
    blow_up_lr(6, bad_lr)  # step 6 is a checkpoint step
    with pytest.raises(TrainingDiverged, match="step 6"):
        run(cfg, tmp_path)
    after = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert after["step"] == 4
    for k, v in good["predictor"].items():
        assert torch.equal(after["predictor"][k], v) and torch.isfinite(v).all()
    monkeypatch.undo()
    assert run(cfg, tmp_path)["step"] == 8  # the run resumes from the good file


@pytest.mark.parametrize("field, value", [("lr", math.inf), ("lr", -1e-3), ("lr", math.nan), ("start_lr", -1.0),
                                          ("weight_decay", math.inf), ("final_weight_decay", -0.1)])
def test_non_finite_or_negative_rates_are_refused(tiny, field, value):
    with pytest.raises(ValueError, match=f"optim.{field}: expected"):
        tiny(**{field: value})


def test_checkpoint_has_the_shared_schema_and_old_optimizer_key_resumes(tiny, tmp_path):
    cfg = tiny(total_steps=4)
    run(cfg, tmp_path / "a", max_steps=2)
    state = torch.load(tmp_path / "a" / "latest.pt", weights_only=True)
    assert {"encoder", "predictor", "opt", "scaler", "epoch", "step", "config"} <= set(state)
    assert "optimizer" not in state and state["step"] == 2 and state["epoch"] == 0
    # A file written before the schema was unified stores the optimizer state under "optimizer".
    state["optimizer"] = state.pop("opt")
    torch.save(state, tmp_path / "a" / "latest.pt")
    run(cfg, tmp_path / "a")
    run(cfg, tmp_path / "b")
    a = torch.load(tmp_path / "a" / "latest.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "latest.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for k in a["predictor"]:
        assert torch.equal(a["predictor"][k], b["predictor"][k]), k


def test_a_restart_removes_stale_temp_files_of_a_crashed_save(tiny, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    stale = tmp_path / ".latest.pt.999999999.abc123.tmp"  # no such pid
    stale.write_bytes(b"half a checkpoint")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    run(tiny(total_steps=2), tmp_path)
    assert not stale.exists() and (tmp_path / "latest.pt").is_file()
