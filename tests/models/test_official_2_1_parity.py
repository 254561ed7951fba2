"""The V-JEPA 2.1 encoder against outputs of the official facebookresearch/vjepa2 2.1 code.

The fixture ``data/official_2_1_parity.pt`` was generated once, outside this repository, by running the
official ``VisionTransformer`` of ``app/vjepa_2_1/models/vision_transformer.py`` (upstream commit
204698b4, the V-JEPA 2.1 release) on CPU in float32, with a one-line stand-in for ``timm``'s
``drop_path`` (identity at inference) and for ``einops`` (unused by the encoder) on PYTHONPATH. Each
case builds a tiny official encoder (depth 12, LayerNorm eps 1e-6 and qkv bias as the official
factories; the stored ``kwargs`` are the other constructor options), fills its state dict with random
values (rounded to fp16 and stored as fp16; the official outputs were computed from exactly these values
and fp16-rounded inputs in float32) and stores it with the ``module.backbone.`` prefix under the entry
the released files use. Cases: the hub's options (image tokenizer, modality tokens, interpolated RoPE,
four output norms) on a non-square video, an image, two masks, another grid, the deep-supervision
output and ``out_layers``; and plain options (no modality tokens, one distillation output, RoPE on the
construction grid). The generator imports the official code and is not committed.
"""

from functools import partial
from pathlib import Path
from unittest import mock

import torch
from torch import nn

from vjepa_ac.checkpoint import load_pretrained
from vjepa_ac.models import VisionTransformer21
from vjepa_ac.models import vision_transformer_2_1 as vt21

FIXTURE = torch.load(Path(__file__).parent / "data" / "official_2_1_parity.pt", weights_only=True)["cases"]
TOL = 1e-5


def _build(case, **overrides):
    options = {**case["kwargs"], **overrides}
    model = VisionTransformer21(norm_layer=partial(nn.LayerNorm, eps=1e-6), **options).eval()
    state = {k: v.float() for k, v in case["state_dict"].items()}
    load_pretrained(model, {case["key"]: state, "epoch": 1}, case["key"])
    return model


def _diff(ours, official):
    assert ours.shape == official.shape
    return (ours - official).abs().max().item()


@torch.no_grad()
def test_hub_options_match_official():
    case = FIXTURE["hub_options"]
    model = _build(case)
    x = case["x"].float()
    assert _diff(model(x), case["out"]) <= TOL
    assert _diff(model(case["image"].float()), case["out_image"]) <= TOL  # image tokenizer
    assert _diff(model(case["image"].float()[:, :, 0]), case["out_image"]) <= TOL  # [B, C, H, W] too
    assert _diff(model(x, masks=case["masks"]), case["out_masked"]) <= TOL
    assert _diff(model(case["x_big"].float()), case["out_big"]) <= TOL
    assert _diff(model(x, training=True), case["out_hierarchical"]) <= TOL
    model.out_layers = case["out_layers_ids"]
    for ours, official in zip(model(x), case["out_layers"], strict=True):
        assert _diff(ours, official) <= TOL


@torch.no_grad()
def test_plain_options_match_official():
    case = FIXTURE["plain_options"]
    model = _build(case)
    x = case["x"].float()
    assert _diff(model(x), case["out"]) <= TOL
    assert _diff(model(x, training=True), case["out_hierarchical"]) <= TOL


@torch.no_grad()
def test_the_fixture_tells_the_2_1_differences_apart():
    """V-JEPA 2's tiled RoPE frequencies or un-interpolated positions would not pass the tests above."""
    case = FIXTURE["hub_options"]
    x = case["x"].float()
    assert _diff(_build(case, interpolate_rope=False)(x), case["out"]) > 1e-2
    tiled = vt21.rope_table
    with mock.patch.object(vt21, "rope_table", lambda *a, interleaved: tiled(*a, interleaved=False)):
        assert _diff(_build(case)(x), case["out"]) > 1e-2
