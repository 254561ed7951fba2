"""load_pretrained / clean_state_dict / atomic_save."""

import threading

import pytest
import torch

from vjepa_ac.checkpoint import CheckpointError, atomic_save, clean_state_dict, load_pretrained
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
