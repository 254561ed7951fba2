"""The plain train() loop: files it writes, exact resume after an interruption, cooldown, CLI."""
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vjepa_ac.metrics_log import read_metrics
from vjepa_ac.pretrain import load_pretrain_config, train
from vjepa_ac.runtime import load_pretrain_encoder

ROOT = Path(__file__).parents[2]


def test_interrupted_run_resumes_exactly(tiny, tmp_path):
    cfg = tiny(epochs=2, steps_per_epoch=3, save_every_epochs=1, log_every=1, output_dir=str(tmp_path / "a"))
    train(cfg)
    a = tmp_path / "a"
    assert {"latest.pt", "e0.pt", "e1.pt", "metrics.csv", "config.yaml"} <= {p.name for p in a.iterdir()}
    # Simulate a crash after epoch 1: a fresh folder holding only that epoch's checkpoint.
    b = tmp_path / "b"
    b.mkdir()
    shutil.copy(a / "e0.pt", b / "latest.pt")
    train(replace(cfg, run=replace(cfg.run, out=str(b))))
    ma, mb = read_metrics(a / "metrics.csv"), read_metrics(b / "metrics.csv")
    assert ma["step"] == [1, 2, 3, 4, 5, 6] and mb["step"] == [4, 5, 6]
    assert ma["loss"][3:] == mb["loss"] and ma["lr"][3:] == mb["lr"]
    sa, sb = (torch.load(p / "latest.pt", weights_only=True) for p in (a, b))
    for key in ("encoder", "predictor", "target_encoder"):
        assert all(torch.equal(v, sb[key][k]) for k, v in sa[key].items())
    assert sa["step"] == sb["step"] == 6 and sa["epoch"] == sb["epoch"] == 2


def test_metrics_csv_has_the_monitoring_columns(tiny, tmp_path):
    cfg = tiny(epochs=1, steps_per_epoch=4, output_dir=str(tmp_path))
    trainer = train(cfg)
    m = read_metrics(tmp_path / "metrics.csv")
    for col in ("loss", "lr", "wd", "momentum", "grad_norm", "target_std", "target_rank", "context_std",
                "context_rank"):
        assert col in m, col
    assert trainer.global_step == 4 and trainer.last_metrics["loss"] == m["loss"][-1]


def test_cooldown_starts_from_checkpoint_and_anneals_to_final_lr(tiny, tmp_path):
    pre = tiny(epochs=1, steps_per_epoch=3, output_dir=str(tmp_path / "pre"))
    train(pre)
    cool = tiny(epochs=1, steps_per_epoch=4, is_anneal=True, anneal_ckpt=str(tmp_path / "pre" / "latest.pt"),
                lr=5e-4, final_lr=1e-6, output_dir=str(tmp_path / "cool"), log_every=1, data={"frames_per_clip": 6})
    assert cool.optim.lr_schedule == "linear"
    trainer = train(cool)
    lrs = read_metrics(tmp_path / "cool" / "metrics.csv")["lr"]
    assert lrs[-1] == pytest.approx(1e-6) and lrs[0] > lrs[1] > lrs[2] > lrs[3]
    assert trainer.global_step == 4
    enc, spec = load_pretrain_encoder(tmp_path / "cool" / "latest.pt")
    assert spec["kwargs"]["num_frames"] == 6
    assert enc(torch.zeros(1, 3, 2, 32, 32)).shape == (1, 16, 48)


def test_presets_load_and_bad_configs_name_the_field(tmp_path):
    vitg = load_pretrain_config("vitg-cooldown-256px-64f")
    assert (vitg.model.name, vitg.data.frames_per_clip, vitg.data.batch_size, vitg.optim.total_steps) == \
        ("vit_giant_xformers", 64, 6, 120)
    assert vitg.optim.lr == 5.25e-4 and vitg.optim.final_lr == 1e-6 and vitg.optim.is_anneal
    assert vitg.optim.ema_start == 0.99925
    vitl = load_pretrain_config("vitl-pretrain-256px-16f")
    o = vitl.optim
    assert (o.start_lr, o.lr, o.final_lr, o.warmup_steps) == (1e-4, 5.25e-4, 5.25e-4, 12000)
    assert [m.num_blocks for m in vitl.loss.masks] == [8, 2] and vitl.model.num_mask_tokens == 10
    with pytest.raises(ValueError, match=r"optim.warmup_epochs: expected in \[0, epochs=10\], got 40"):
        load_pretrain_config("vitl-pretrain-256px-16f", {"optim": {"epochs": 10}})
    with pytest.raises(ValueError, match="auto_steps"):
        load_pretrain_config("tiny-pretrain", {"loss": {"auto_steps": 2}})
    with pytest.raises(ValueError, match=r"tiny-pretrain.yaml: data.crop_size: .*'big'.* int"):
        load_pretrain_config("tiny-pretrain", {"data": {"crop_size": "big"}})


def test_cli_help_documents_every_flag():
    env = {**os.environ, "COLUMNS": "1000"}  # one line per flag, so names are not broken at hyphens
    out = subprocess.run([sys.executable, "-m", "vjepa_ac.cli.pretrain", "--help"], check=False,
                         capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert out.returncode == 0
    for flag in ("--config", "--run.out", "--run.device", "--run.threads", "--optim.lr", "--data.path",
                 "--loss.masks", "--model.name"):
        assert flag in out.stdout
    assert "peak learning rate" in out.stdout  # field comments are the help texts
    assert "tiny-pretrain" in out.stdout and "vitg-cooldown-256px-64f" in out.stdout
    # AC-training and end-to-end demo presets live in the same folder but are not pretraining configs
    assert "ac-tiny" not in out.stdout and "demo-reach" not in out.stdout and "demo-toy" not in out.stdout
