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


def _console_scripts() -> dict[str, str]:
    section = (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
    return dict(re.findall(r'^([\w-]+) = "([\w.:]+)"$', section, flags=re.MULTILINE))


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # imported already by this file
@pytest.mark.parametrize("module", sorted({t.split(":")[0] for t in _console_scripts().values()}))
def test_python_dash_m_runs_each_command(module, monkeypatch, capsys):
    """``python -m vjepa_ac.cli.<name>`` (run the way ``-m`` runs a module) is the command, not a silent no-op."""
    import runpy

    monkeypatch.setattr("sys.argv", [module, "--help"])
    with pytest.raises(SystemExit) as e:
        runpy.run_module(module, run_name="__main__", alter_sys=False)
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_every_script_is_a_thin_shim_over_a_command():
    """scripts/<name>.py imports ``main`` from a console script's module and runs it: nothing else (read as text;
    tests never load scripts by path)."""
    import ast

    targets = {t.split(":")[0] for t in _console_scripts().values()}
    shims = sorted((ROOT / "scripts").glob("*.py"))
    assert len(shims) == len(targets)
    for shim in shims:
        imports = [n for n in ast.walk(ast.parse(shim.read_text())) if isinstance(n, ast.ImportFrom)]
        assert [(n.module, [a.name for a in n.names]) for n in imports if n.module in targets] == \
            [(imports[-1].module, ["main"])], shim.name
        assert "sys.exit(main())" in shim.read_text(), shim.name


def test_a_shim_runs_as_a_script():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "collect_sim.py"), "--help"], check=False,
                         capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 0 and "usage:" in out.stdout and "--episodes" in out.stdout
