"""The train-ac command (scripts/train_ac.py, vjepa-train-ac) end to end on tiny synthetic DROID-format episodes."""
import dataclasses
import shutil

import pytest
import torch

from droid_data.synthetic import write_synthetic_episode
from vjepa_ac.ac_train import ACTrainingConfig
from vjepa_ac.cli import train_ac as cli


def test_help_documents_every_flag(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per flag
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--data.path", "--model.encoder_checkpoint", "--config", "--run.out", "--run.max_steps"):
        assert flag in text
    flat = " ".join(text.split())
    for group in dataclasses.fields(ACTrainingConfig):
        for field in dataclasses.fields(getattr(ACTrainingConfig(), group.name)):
            # "--group.field TYPE <help text> (default: ...)", the help text from the field's comment
            entry = flat.rsplit(f" --{group.name}.{field.name} ", 1)[1].split(" --", 1)[0]
            assert "(default:" in entry and len(entry.split("(default:")[0].split()) >= 3, (field.name, entry)


def test_train_then_resume_from_the_feature_store(tmp_path):
    for i in range(4):
        write_synthetic_episode(tmp_path / "data" / f"ep{i}", length=20, size=(40, 48), seed=i)
    out = tmp_path / "run"
    assert cli.main(["--data.path", str(tmp_path / "data"), "--config", "ac-smoke", "--run.out", str(out),
                     "--run.max_steps", "6"]) == 0
    first = torch.load(out / "latest.pt", weights_only=True)
    assert first["step"] == 6 and (out / "features.zarr").is_dir() and (out / "random_encoder.pt").is_file()
    # A second invocation resumes; the feature store of the first run can be passed as --data.
    shutil.rmtree(tmp_path / "data")
    assert cli.main(["--data.path", str(out / "features.zarr"), "--config", "ac-smoke", "--run.out", str(out),
                     "--run.max_steps", "4"]) == 0
    second = torch.load(out / "latest.pt", weights_only=True)
    assert second["step"] == 10
    assert (out / "eval" / "horizon_errors.png").is_file()
    assert second["config"]["encoder_checkpoint"] == str(out / "random_encoder.pt")
    torch.testing.assert_close(second["encoder"], first["encoder"])
    # A new run on that store takes the encoder the store was made with (not a fresh random one).
    other = tmp_path / "other"
    assert cli.main(["--data.path", str(out / "features.zarr"), "--config", "ac-smoke", "--run.out", str(other),
                     "--run.max_steps", "2"]) == 0
    third = torch.load(other / "latest.pt", weights_only=True)
    assert third["config"]["encoder_checkpoint"] == str(out / "random_encoder.pt")
    assert not (other / "random_encoder.pt").exists()
    torch.testing.assert_close(third["encoder"], first["encoder"])


def test_on_the_fly_encoding_without_a_feature_store(tmp_path):
    for i in range(4):
        write_synthetic_episode(tmp_path / "data" / f"ep{i}", length=20, size=(40, 48), seed=i)
    (tmp_path / "otf.yaml").write_text("base: ac-smoke\ndata: {feature_cache: false, batch_size: 2}\n"
                                       "optim: {total_steps: 4}\nrun: {eval_every: 4}\n")
    out = tmp_path / "run"
    assert cli.main(["--data.path", str(tmp_path / "data"), "--config", str(tmp_path / "otf.yaml"),
                     "--run.out", str(out)]) == 0
    assert not (out / "features.zarr").exists()
    ckpt = torch.load(out / "latest.pt", weights_only=True)
    assert ckpt["step"] == 4 and ckpt["config"]["frame_step"] == 4  # 15 fps synthetic video at 4 fps
    assert (out / "eval" / "horizon_errors.json").is_file()
