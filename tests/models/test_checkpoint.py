"""load_pretrained / clean_state_dict / atomic_save."""

import os
import threading
import time
from pathlib import Path

import pytest
import torch

from vjepa_ac import checkpoint
from vjepa_ac.checkpoint import (
    CheckpointError,
    atomic_save,
    clean_state_dict,
    load_checkpoint,
    load_pretrained,
    remove_stale_temps,
)
from vjepa_ac.models import VisionTransformer, vit_ac_predictor


def _encoder(**kw):
    opts = {"img_size": 16, "patch_size": 8, "num_frames": 2, "embed_dim": 16, "depth": 1, "num_heads": 2}
    return VisionTransformer(**{"use_rope": True, **opts, **kw}).eval()


class _NotATensor:
    pass


def test_round_trip_through_an_official_layout_file(tmp_path):
    src, dst = _encoder(), _encoder()
    x = torch.randn(1, 3, 2, 16, 16)
    assert not torch.allclose(src(x), dst(x))
    ckpt = {"encoder": {f"module.backbone.{k}": v for k, v in src.state_dict().items()}, "epoch": 3}
    path = atomic_save(ckpt, tmp_path / "run" / "latest.pt")
    assert load_pretrained(dst, path, "encoder") is dst
    torch.testing.assert_close(dst(x), src(x), atol=0, rtol=0)


def test_prefixes_are_stripped():
    sd = {"module.backbone.a": 1, "module.b": 2, "backbone.c": 3, "_orig_mod.module.d": 4, "e.module.f": 5}
    assert clean_state_dict(sd) == {"a": 1, "b": 2, "c": 3, "d": 4, "e.module.f": 5}
    with pytest.raises(ValueError, match="collide"):
        clean_state_dict({"module.a": 1, "a": 2})


def test_ac_predictor_with_module_prefix_loads_strictly():
    opts = {
        "img_size": 16,
        "patch_size": 8,
        "embed_dim": 8,
        "predictor_embed_dim": 16,
        "depth": 1,
        "num_heads": 2,
    }
    src, dst = vit_ac_predictor(**opts), vit_ac_predictor(**opts)
    load_pretrained(dst, {"predictor": {f"module.{k}": v for k, v in src.state_dict().items()}}, "predictor")
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v)


def test_mismatch_error_lists_missing_unexpected_and_shapes():
    model = _encoder()
    sd = _encoder(embed_dim=32).state_dict()  # every weight has another width
    del sd["norm.bias"]
    sd["blocks.0.attn.extra"] = torch.zeros(1)
    with pytest.raises(RuntimeError) as err:
        load_pretrained(model, {"target_encoder": sd}, "target_encoder")
    msg = str(err.value)
    assert "['target_encoder'] does not fit VisionTransformer" in msg
    assert "1 missing keys: norm.bias" in msg
    assert "1 unexpected keys: blocks.0.attn.extra" in msg
    assert "patch_embed.proj.weight: checkpoint [32, 3, 2, 8, 8] vs model [16, 3, 2, 8, 8]" in msg


def test_selection_and_file_errors(tmp_path):
    model = _encoder()
    with pytest.raises(KeyError, match=r"no entry 'encoder'; available: \['epoch', 'predictor'\]"):
        load_pretrained(model, {"predictor": {}, "epoch": 1}, "encoder")
    with pytest.raises(ValueError, match=r"pass key= one of \['encoder'\]"):
        load_pretrained(model, {"encoder": model.state_dict(), "epoch": 1})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained(model, tmp_path / "nope.pt", "encoder")


def test_files_are_read_weights_only(tmp_path):
    model = _encoder()
    path = tmp_path / "unsafe.pt"
    torch.save({"encoder": model.state_dict(), "extra": _NotATensor()}, path)
    with pytest.raises(CheckpointError, match="unsafe.pt: not a plain checkpoint"):
        load_pretrained(model, path, "encoder")


def test_leftover_sincos_table_is_ignored_only_for_rope_models():
    rope = _encoder()
    sd = dict(rope.state_dict(), pos_embed=torch.zeros(1, 4, 16))
    load_pretrained(rope, sd)
    sincos = _encoder(use_rope=False)
    sd = sincos.state_dict()
    del sd["pos_embed"]
    with pytest.raises(RuntimeError, match="missing keys: pos_embed"):
        load_pretrained(sincos, sd)


def test_atomic_save_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "ckpt.pt"
    atomic_save({"step": 1}, path)
    with pytest.raises(TypeError, match="pickle"):
        atomic_save({"step": 2, "bad": threading.Lock()}, path)  # locks cannot be pickled
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]  # no temp files left behind


class _Payload:
    """Unpickling this creates a file: the planted code of a hostile checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_planted_pickle_payload_never_runs_and_the_error_names_the_file(tmp_path):
    marker = tmp_path / "payload_ran"
    torch.save({"encoder": {}, "config": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    msg = str(e.value)
    assert "evil.pt: not a plain checkpoint" in msg and "\n" not in msg and "weights_only" not in msg


@pytest.mark.parametrize("content, reason", [(b"", "empty file"), (b"hello: not a checkpoint\n", "not a"),
                                             ("truncated", "truncated")])
def test_bad_files_get_one_line_naming_the_file_and_what_was_expected(tmp_path, content, reason):
    path = tmp_path / "bad.pt"
    if content == "truncated":
        torch.save({"w": torch.ones(100)}, path)
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, expected="an AC-training checkpoint")
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and reason in msg and "an AC-training checkpoint" in msg and "\n" not in msg


def test_missing_keys_and_non_dicts_are_named(tmp_path):
    torch.save({"encoder": {}}, tmp_path / "a.pt")
    with pytest.raises(KeyError, match=r"a.pt: not an AC checkpoint: missing keys \['predictor'\]"):
        load_checkpoint(tmp_path / "a.pt", expected="an AC checkpoint", required=("encoder", "predictor"))
    torch.save([1, 2], tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="b.pt: holds a list"):
        load_checkpoint(tmp_path / "b.pt")
    with pytest.raises(FileNotFoundError, match="c.pt: no such checkpoint file"):
        load_checkpoint(tmp_path / "c.pt")


def test_restart_removes_only_stale_temp_files(tmp_path):
    now = time.time()
    dead_pid = _dead_pid()
    me, other = checkpoint._WRITER, "robot-pc-2~4026531836"
    files = {
        "crashed_here": f".latest.pt.{me}.{dead_pid}.k1l2m3.tmp",  # this machine, writer gone: stale at once
        "live_here": f".latest.pt.{me}.{os.getppid()}.n4o5p6.tmp",  # a running process: never removed
        "other_machine_fresh": f".latest.pt.{other}.{dead_pid}.q7r8s9.tmp",  # its pid means nothing here
        "other_machine_old": f".latest.pt.{other}.{dead_pid}.t1u2v3.tmp",  # untouched for 2 hours: stale
        "dead_writer_old": f".latest.pt.{dead_pid}.a1b2c3.tmp",  # older name, crashed, untouched 10 min: stale
        "dead_writer_fresh": f".latest.pt.{dead_pid}.d4e5f6.tmp",  # older name, touched 10 s ago: kept
        "live_writer": f".latest.pt.{os.getppid()}.g7h8i9.tmp",
        "no_pid_old": ".latest.pt.zq9x8w7v.tmp",  # written before pids were in the name, 2 hours old: stale
        "no_pid_fresh": ".e3.pt.zq9x8w7v.tmp",
        "not_a_temp": "latest.pt",
    }
    ages = {"crashed_here": 1, "live_here": 600, "other_machine_fresh": 60, "other_machine_old": 7200,
            "dead_writer_old": 600, "dead_writer_fresh": 10, "live_writer": 600, "no_pid_old": 7200,
            "no_pid_fresh": 60, "not_a_temp": 7200}
    for key, name in files.items():
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (now - ages[key], now - ages[key]))
    removed = remove_stale_temps(tmp_path, now=now)
    stale = ("crashed_here", "other_machine_old", "dead_writer_old", "no_pid_old")
    assert sorted(p.name for p in removed) == sorted(files[k] for k in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files[k] for k in files if k not in stale)


def test_atomic_save_puts_its_writer_and_pid_in_the_temp_name(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(Path(src).name)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_save({"step": 1}, tmp_path / "latest.pt")
    assert seen and seen[0].startswith(f".latest.pt.{checkpoint._WRITER}.{os.getpid()}.") and seen[0].endswith(".tmp")
    assert checkpoint._temp_writer(seen[0]) == (checkpoint._WRITER, os.getpid())


def _dead_pid() -> int:
    """A pid with no running process (the child has exited and been reaped)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
