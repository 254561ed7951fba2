"""benchmarks/gpu_check.py: its tiny CPU dry run fills every row, and without CUDA the real run refuses clearly."""
import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_fills_every_row(capsys):
    torch.set_num_threads(1)
    assert _load().main(["--dry-run"]) == 0
    table = capsys.readouterr().out.split("| check | result | s |")[1]
    for row in ("CUDA tests", "bf16 autocast vs fp32", "SDPA backend", "AC planning", "AC training", "DDP step"):
        assert f"| {row} |" in table
    assert "FAILED" not in table and "s per action" in table and "steps/s" in table and "step ok" in table


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_exits_2_with_one_line(capsys):
    assert _load().main([]) == 2
    err = capsys.readouterr().err.strip()
    assert "no CUDA device" in err and "--dry-run" in err and len(err.splitlines()) == 1
