"""Pretraining checkpoints never run code, a diverged run keeps its last good checkpoint, temps are cleaned."""
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vjepa_ac.checkpoint import CheckpointError
from vjepa_ac.optim import TrainingDiverged
from vjepa_ac.pretrain import train
from vjepa_ac.runtime import load_pretrain_encoder


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _plant(path: Path, marker: Path) -> None:
    torch.save({"encoder": {}, "opt": _Payload(marker), "epoch": 1}, path)


def test_planted_payloads_never_run_on_resume_anneal_or_probe(tiny, tmp_path):
    marker = tmp_path / "payload_ran"
    run = tmp_path / "run"
    run.mkdir()
    _plant(run / "latest.pt", marker)
    cfg = tiny(epochs=1, steps_per_epoch=2, output_dir=str(run))
    with pytest.raises(CheckpointError, match=r"run/latest.pt: not a plain checkpoint"):
        train(cfg)
    _plant(tmp_path / "anneal.pt", marker)
    with pytest.raises(CheckpointError, match=r"anneal.pt: not a plain checkpoint"):
        train(replace(cfg, run=replace(cfg.run, out=str(tmp_path / "cool")),
                      optim=replace(cfg.optim, anneal_ckpt=str(tmp_path / "anneal.pt"))))
    with pytest.raises(CheckpointError, match=r"anneal.pt: not a plain checkpoint"):
        load_pretrain_encoder(tmp_path / "anneal.pt")
    assert not marker.exists()


@pytest.mark.parametrize("bad_lr", [math.inf, 1e9])
def test_divergence_at_an_epoch_end_keeps_the_previous_latest(tiny, tmp_path, blow_up_lr, bad_lr):
    cfg = tiny(epochs=2, steps_per_epoch=3, output_dir=str(tmp_path))
    blow_up_lr(6, bad_lr)  # the last step of epoch 2, right before its checkpoint
    with pytest.raises(TrainingDiverged, match="step 6"):
        train(cfg)
    state = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert state["epoch"] == 1 and state["step"] == 3
    assert all(torch.isfinite(v).all() for key in ("encoder", "predictor", "target_encoder")
               for v in state[key].values())


@pytest.mark.parametrize("field, value", [("lr", math.inf), ("lr", math.nan), ("start_lr", -1.0),
                                          ("weight_decay", math.inf), ("final_weight_decay", -0.1)])
def test_non_finite_or_negative_rates_are_refused(tiny, field, value):
    with pytest.raises(ValueError, match=f"{field}: expected"):
        tiny(**{field: value})


def test_a_restart_removes_stale_temp_files(tiny, tmp_path):
    stale = tmp_path / ".latest.pt.999999999.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    train(tiny(epochs=1, steps_per_epoch=1, output_dir=str(tmp_path)))
    assert not stale.exists() and (tmp_path / "latest.pt").is_file()
