"""scripts/train_ac.py end to end on tiny synthetic DROID-format episodes."""
import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

from droid_data.synthetic import write_synthetic_episode

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_ac.py"


@pytest.fixture(scope="module")
def cli():
    spec = importlib.util.spec_from_file_location("train_ac_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_documents_every_flag(cli, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--data", "--encoder-checkpoint", "--config", "--out", "--max-steps"):
        assert flag in text
    assert text.count("Default") >= 5  # every flag says what happens without it


def test_train_then_resume_from_the_feature_store(cli, tmp_path):
    for i in range(4):
        write_synthetic_episode(tmp_path / "data" / f"ep{i}", length=20, size=(40, 48), seed=i)
    out = tmp_path / "run"
    assert cli.main(["--data", str(tmp_path / "data"), "--config", "ac-smoke", "--out", str(out),
                     "--max-steps", "6"]) == 0
    first = torch.load(out / "latest.pt", weights_only=True)
    assert first["step"] == 6 and (out / "features.zarr").is_dir() and (out / "random_encoder.pt").is_file()
    # A second invocation resumes; the feature store of the first run can be passed as --data.
    shutil.rmtree(tmp_path / "data")
    assert cli.main(["--data", str(out / "features.zarr"), "--config", "ac-smoke", "--out", str(out),
                     "--max-steps", "4"]) == 0
    second = torch.load(out / "latest.pt", weights_only=True)
    assert second["step"] == 10
    assert (out / "eval" / "horizon_errors.png").is_file()
    assert second["config"]["encoder_checkpoint"] == str(out / "random_encoder.pt")
    torch.testing.assert_close(second["encoder"], first["encoder"])
    # A new run on that store takes the encoder the store was made with (not a fresh random one).
    other = tmp_path / "other"
    assert cli.main(["--data", str(out / "features.zarr"), "--config", "ac-smoke", "--out", str(other),
                     "--max-steps", "2"]) == 0
    third = torch.load(other / "latest.pt", weights_only=True)
    assert third["config"]["encoder_checkpoint"] == str(out / "random_encoder.pt")
    assert not (other / "random_encoder.pt").exists()
    torch.testing.assert_close(third["encoder"], first["encoder"])


def test_on_the_fly_encoding_without_a_feature_store(cli, tmp_path):
    for i in range(4):
        write_synthetic_episode(tmp_path / "data" / f"ep{i}", length=20, size=(40, 48), seed=i)
    (tmp_path / "otf.yaml").write_text("base: ac-smoke\nfeature_cache: false\nbatch_size: 2\ntotal_steps: 4\neval_every: 4\n")
    out = tmp_path / "run"
    assert cli.main(["--data", str(tmp_path / "data"), "--config", str(tmp_path / "otf.yaml"), "--out", str(out)]) == 0
    assert not (out / "features.zarr").exists()
    ckpt = torch.load(out / "latest.pt", weights_only=True)
    assert ckpt["step"] == 4 and ckpt["config"]["frame_step"] == 4  # 15 fps synthetic video at 4 fps
    assert (out / "eval" / "horizon_errors.json").is_file()
