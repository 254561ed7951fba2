"""Builders of the released models: architectures (built on the meta device) and checkpoint sources."""

import pytest
import torch

from vjepa_ac import hub
from vjepa_ac.models import VisionTransformer


def test_ac_giant_matches_the_released_layout():
    with torch.device("meta"):
        encoder, predictor = hub.vjepa2_ac_vit_giant()
    enc, pred = encoder.state_dict(), predictor.state_dict()
    assert encoder.embed_dim == 1408 and encoder.num_heads == 22 and len(encoder.blocks) == 40
    assert enc["patch_embed.proj.weight"].shape == (1408, 3, 2, 16, 16) and "pos_embed" not in enc
    assert pred["predictor_embed.weight"].shape == (1024, 1408)
    assert pred["predictor_proj.weight"].shape == (1408, 1024)
    assert pred["extrinsics_encoder.weight"].shape == (1024, 6)
    assert (
        pred["predictor_blocks.23.mlp.fc1.weight"].shape == (4096, 1024)
        and "predictor_blocks.24.norm1.weight" not in pred
    )
    assert predictor.is_frame_causal and not predictor.use_extrinsics and predictor.num_heads == 16


@pytest.mark.parametrize(
    ("builder", "dim", "img"),
    [
        ("vjepa2_vit_large", 1024, 256),
        ("vjepa2_vit_huge", 1280, 256),
        ("vjepa2_vit_giant", 1408, 256),
        ("vjepa2_vit_giant_384", 1408, 384),
    ],
)
def test_pretrained_pairs(builder, dim, img):
    with torch.device("meta"):
        encoder, predictor = getattr(hub, builder)()
    pred = predictor.state_dict()
    assert encoder.embed_dim == dim and encoder.img_height == img and encoder.use_rope
    assert pred["predictor_embed.weight"].shape == (384, dim)
    assert "mask_tokens.9" in pred and "mask_tokens.10" not in pred and len(predictor.predictor_blocks) == 12


def _tiny_pair():
    opts = {
        "img_size": 16,
        "patch_size": 8,
        "num_frames": 2,
        "embed_dim": 16,
        "depth": 1,
        "num_heads": 2,
        "use_rope": True,
    }
    return VisionTransformer(**opts), VisionTransformer(**opts)


def test_load_models_from_path_and_url(tmp_path, monkeypatch):
    src, dst = _tiny_pair()
    ckpt = {"encoder": {f"module.backbone.{k}": v for k, v in src.state_dict().items()}}
    torch.save(ckpt, tmp_path / "w.pt")
    hub.load_models(tmp_path / "w.pt", [(dst, "encoder")])
    assert all(torch.equal(v, dst.state_dict()[k]) for k, v in src.state_dict().items())

    seen = {}

    def fake_download(url, **kwargs):
        seen.update(kwargs, url=url)
        return ckpt

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    _, dst2 = _tiny_pair()
    hub.load_models(hub.CHECKPOINT_URLS["vitl"], [(dst2, "encoder")])
    assert seen["url"] == "https://dl.fbaipublicfiles.com/vjepa2/vitl.pt" and seen["weights_only"] is True
    assert all(torch.equal(v, dst2.state_dict()[k]) for k, v in src.state_dict().items())
    with pytest.raises(FileNotFoundError, match="local .pt file or an http"):
        hub.read_checkpoint(tmp_path / "missing.pt")
