"""Every command reports bad input as one line naming file / field, expected and actual (exit 2 usage, 1 data);
the traceback only with --debug. The installed console scripts point at these same functions."""
import importlib
import re
from pathlib import Path

import pytest
import torch

from vjepa_ac.cli import collect, demo, evaluate, linear_probe, pretrain, train_ac

ROOT = Path(__file__).resolve().parents[1]


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "text.pt").write_text("this is not a checkpoint\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"w": torch.ones(1000)}, tmp_path / "full.pt")
    (tmp_path / "truncated.pt").write_bytes((tmp_path / "full.pt").read_bytes()[:300])
    torch.save({"encoder": {}, "predictor": {}, "target_encoder": {}, "opt": {}, "epoch": 1,
                "config": {"model": {"name": "vit_tiny"}, "data": {}}}, tmp_path / "pretrain.pt")
    (tmp_path / "broken.yaml").write_text("optim:\n  lr: [1e-3\n")
    return tmp_path


@pytest.mark.parametrize("name, expect", [("text.pt", "not a readable torch.save file"), ("empty.pt", "empty file"),
                                          ("truncated.pt", "truncated"), ("pretrain.pt", "a vjepa-ac pretraining checkpoint"),
                                          ("missing.pt", "no such checkpoint file")])
def test_evaluate_bad_checkpoints_are_one_line_data_errors(files, capsys, name, expect):
    code = evaluate.main(["--checkpoint", str(files / name), "--out", str(files / "eval"), "--episodes", "1"])
    line = _one_error_line(capsys)
    assert code == 1 and str(files / name) in line and expect in line


@pytest.mark.parametrize("main, argv, expect", [
    (train_ac.main, ["--optim.lr", "fast"], "optim.lr"),
    (train_ac.main, ["--optim.lr", "-1"], "optim.lr: expected a finite learning rate > 0, got -1.0"),
    (train_ac.main, ["--no_such_field", "1"], "unrecognized arguments: --no_such_field"),
    (pretrain.main, ["--config", "nope"], "presets:"),
    (demo.main, ["--eval_episodes", "many"], "eval_episodes"),
    (collect.main, ["--task", "reach", "--episodes", "two", "--out", "x"], "--episodes: invalid int value: 'two'"),
    (evaluate.main, ["--out", "x", "--env-options", "image_size=128"], "expected a YAML mapping"),
    (evaluate.main, ["--out", "x"], "--checkpoint: required"),
])
def test_usage_errors_exit_2_with_one_line(capsys, main, argv, expect):
    assert main(argv) == 2
    assert expect in _one_error_line(capsys)


def test_config_file_errors_name_the_file_and_line(files, capsys):
    assert pretrain.main(["--config", str(files / "broken.yaml")]) == 2
    line = _one_error_line(capsys)
    assert "broken.yaml" in line and "line 3" in line and "YAML syntax error" in line


def test_probe_on_a_bad_checkpoint_is_one_line(files, capsys):
    assert linear_probe.main(["--checkpoint", str(files / "text.pt"), "--data", str(files)]) == 1
    assert str(files / "text.pt") in _one_error_line(capsys)


def test_debug_shows_the_traceback(files, monkeypatch):
    with pytest.raises(Exception, match="text.pt"):
        evaluate.main(["--checkpoint", str(files / "text.pt"), "--out", str(files / "e"), "--debug"])
    monkeypatch.setenv("VJEPA_AC_DEBUG", "1")
    with pytest.raises(Exception, match="optim.lr"):
        train_ac.main(["--optim.lr", "fast"])


def test_console_scripts_point_at_the_commands(capsys):
    section = (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
    scripts = dict(re.findall(r'^([\w-]+) = "([\w.:]+)"$', section, flags=re.MULTILINE))
    assert {"vjepa-collect", "vjepa-pretrain", "vjepa-train-ac", "vjepa-evaluate", "vjepa-demo"} <= set(scripts)
    for name, target in scripts.items():
        module, func = target.split(":")
        with pytest.raises(SystemExit) as e:
            getattr(importlib.import_module(module), func)(["--help"])
        assert e.value.code == 0, name
        assert "usage:" in capsys.readouterr().out
