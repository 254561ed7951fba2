"""Builders for the released V-JEPA 2 / 2.1 models (same architectures and settings as the official hub).

Each V-JEPA 2 builder returns ``(encoder, predictor)``; the V-JEPA 2.1 builders return the encoder only
(the 2.1 multi-level pretraining predictor is not part of this package). Pass ``checkpoint`` as a local
path or a URL (for example ``CHECKPOINT_URLS["vitl"]``) to load released weights strictly; ``None``
leaves the random initialisation. Extra keyword options go to both networks (as in the official hub),
e.g. ``use_activation_checkpointing=True``.

    encoder, predictor = vjepa2_ac_vit_giant(CHECKPOINT_URLS["vjepa2-ac-vitg"])
    encoder = vjepa2_1_vit_large_384(CHECKPOINT_URLS["vjepa2_1_vitl_dist_vitG_384"])

``RELEASES`` describes every released file (hub name -> file, encoder factory, resolution, entry the hub
loads); ``find_release`` resolves a hub name or a file name, which is what ``--arch`` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import models
from .checkpoint import load_checkpoint, load_pretrained
from .models import vit_2_1, vit_ac_predictor, vit_predictor

VJEPA2_BASE_URL = "https://dl.fbaipublicfiles.com/vjepa2"


@dataclass(frozen=True)
class Release:
    """One released checkpoint: its file name (without ``.pt``), the official factory of its encoder,
    the resolution the hub builds it at and the entry of the file the official hub loads the encoder from."""

    file: str
    factory: str
    img_size: int
    encoder_key: str = "encoder"
    version: str = "2"  # "2" or "2.1"
    action_conditioned: bool = False


RELEASES = {
    "vjepa2_vit_large": Release("vitl", "vit_large", 256),
    "vjepa2_vit_huge": Release("vith", "vit_huge", 256),
    "vjepa2_vit_giant": Release("vitg", "vit_giant_xformers", 256),
    "vjepa2_vit_giant_384": Release("vitg-384", "vit_giant_xformers", 384),
    "vjepa2_ac_vit_giant": Release("vjepa2-ac-vitg", "vit_giant_xformers", 256, action_conditioned=True),
    # V-JEPA 2.1: ViT-B and ViT-L are distilled from the ViT-G teacher; the hub reads their EMA weights.
    "vjepa2_1_vit_base_384": Release("vjepa2_1_vitb_dist_vitG_384", "vit_base", 384, "ema_encoder", "2.1"),
    "vjepa2_1_vit_large_384": Release("vjepa2_1_vitl_dist_vitG_384", "vit_large", 384, "ema_encoder", "2.1"),
    "vjepa2_1_vit_giant_384": Release(
        "vjepa2_1_vitg_384", "vit_giant_xformers", 384, "target_encoder", "2.1"
    ),
    "vjepa2_1_vit_gigantic_384": Release(
        "vjepa2_1_vitG_384", "vit_gigantic_xformers", 384, "target_encoder", "2.1"
    ),
}
CHECKPOINT_URLS = {release.file: f"{VJEPA2_BASE_URL}/{release.file}.pt" for release in RELEASES.values()}

# Shared by every released model: 16 px patches, tubelets of 2 frames, 3-D RoPE.
_COMMON = {"patch_size": 16, "tubelet_size": 2, "num_frames": 64, "use_sdpa": True, "use_rope": True}
# V-JEPA 2.1 hub additions: the 1-frame image tokenizer and RoPE positions interpolated to the 256 px grid.
_COMMON_2_1 = {"img_temporal_dim_size": 1, "interpolate_rope": True}
# The hub's AC predictor (official droid-256px-8f config): width 1024, depth 24, 16 heads, block-causal,
# 7-D actions and states, no extrinsics, GELU MLP.
AC_PREDICTOR_OPTIONS = {
    "predictor_embed_dim": 1024,
    "depth": 24,
    "num_heads": 16,
    "is_frame_causal": True,
    "action_embed_dim": 7,
    "use_extrinsics": False,
}


def find_release(name: str) -> tuple[str, Release] | None:
    """``(hub name, Release)`` for a hub name (``vjepa2_vit_large``) or a file name (``vitl``, ``vitl.pt``)."""
    stem = name.removesuffix(".pt")
    if stem in RELEASES:
        return stem, RELEASES[stem]
    for hub_name, release in RELEASES.items():
        if release.file == stem:
            return hub_name, release
    return None


def release_encoder(release: Release, **kwargs):
    """The encoder of ``release`` with the official hub's options (random weights); ``kwargs`` override them."""
    options = {**_COMMON, "img_size": (release.img_size, release.img_size), **kwargs}
    if release.version == "2.1":
        return vit_2_1(release.factory, **{**_COMMON_2_1, "uniform_power": False, **options})
    return getattr(models, release.factory)(**options)


def ac_predictor_for(encoder, **kwargs):
    """The hub's AC predictor for ``encoder`` (random weights); ``kwargs`` override the hub's options."""
    options = {
        **_COMMON,
        "img_size": (encoder.img_height, encoder.img_width),
        "embed_dim": encoder.embed_dim,
        **AC_PREDICTOR_OPTIONS,
        **kwargs,
    }
    return vit_ac_predictor(**options)


def read_checkpoint(path_or_url: str | Path) -> dict:
    """Load a checkpoint dict (weights only) from a local file or an http(s) URL (cached by torch.hub)."""
    source = str(path_or_url)
    if source.startswith(("http://", "https://")):
        return torch.hub.load_state_dict_from_url(
            source, map_location="cpu", weights_only=True, progress=True
        )
    if not Path(source).is_file():
        raise FileNotFoundError(
            f"checkpoint '{source}' does not exist (pass a local .pt file or an http(s) URL)"
        )
    return load_checkpoint(source)


def load_models(checkpoint, models_and_keys) -> None:
    """Read ``checkpoint`` once and strictly load each ``(model, key)`` pair from it."""
    if checkpoint is None:
        return
    state = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    for model, key in models_and_keys:
        load_pretrained(model, state, key)


def _pretrained_pair(hub_name, checkpoint, encoder_key, kwargs):
    """Encoder + pretraining predictor (12 x 384, 12 heads, 10 mask tokens) as in the official hub."""
    encoder = release_encoder(RELEASES[hub_name], **{"uniform_power": False, **kwargs})
    predictor = vit_predictor(
        **{
            **_COMMON,
            "img_size": (encoder.img_height, encoder.img_width),
            "uniform_power": False,
            **kwargs,
            "embed_dim": encoder.embed_dim,
            "predictor_embed_dim": 384,
            "depth": 12,
            "num_heads": 12,
            "use_mask_tokens": True,
            "num_mask_tokens": 10,
        }
    )
    load_models(checkpoint, [(encoder, encoder_key), (predictor, "predictor")])
    return encoder, predictor


def vjepa2_vit_large(checkpoint=None, *, encoder_key="encoder", **kwargs):
    """ViT-L/16 at 256 px (``vitl.pt``) and its pretraining predictor."""
    return _pretrained_pair("vjepa2_vit_large", checkpoint, encoder_key, kwargs)


def vjepa2_vit_huge(checkpoint=None, *, encoder_key="encoder", **kwargs):
    """ViT-H/16 at 256 px (``vith.pt``) and its pretraining predictor."""
    return _pretrained_pair("vjepa2_vit_huge", checkpoint, encoder_key, kwargs)


def vjepa2_vit_giant(checkpoint=None, *, encoder_key="encoder", **kwargs):
    """ViT-g/16 (22 heads) at 256 px (``vitg.pt``) and its pretraining predictor."""
    return _pretrained_pair("vjepa2_vit_giant", checkpoint, encoder_key, kwargs)


def vjepa2_vit_giant_384(checkpoint=None, *, encoder_key="encoder", **kwargs):
    """ViT-g/16 (22 heads) at 384 px (``vitg-384.pt``) and its pretraining predictor."""
    return _pretrained_pair("vjepa2_vit_giant_384", checkpoint, encoder_key, kwargs)


def vjepa2_ac_vit_giant(checkpoint=None, **kwargs):
    """V-JEPA 2-AC: ViT-g/16 encoder + action-conditioned predictor (``vjepa2-ac-vitg.pt``)."""
    encoder = release_encoder(RELEASES["vjepa2_ac_vit_giant"], **kwargs)
    predictor = ac_predictor_for(encoder, **kwargs)
    load_models(checkpoint, [(encoder, "encoder"), (predictor, "predictor")])
    return encoder, predictor


def _encoder_2_1(hub_name, checkpoint, encoder_key, kwargs):
    encoder = release_encoder(RELEASES[hub_name], **kwargs)
    load_models(checkpoint, [(encoder, encoder_key or RELEASES[hub_name].encoder_key)])
    return encoder


def vjepa2_1_vit_base_384(checkpoint=None, *, encoder_key=None, **kwargs):
    """V-JEPA 2.1 ViT-B/16 at 384 px, distilled from ViT-G (``vjepa2_1_vitb_dist_vitG_384.pt``, ``ema_encoder``)."""
    return _encoder_2_1("vjepa2_1_vit_base_384", checkpoint, encoder_key, kwargs)


def vjepa2_1_vit_large_384(checkpoint=None, *, encoder_key=None, **kwargs):
    """V-JEPA 2.1 ViT-L/16 at 384 px, distilled from ViT-G (``vjepa2_1_vitl_dist_vitG_384.pt``, ``ema_encoder``)."""
    return _encoder_2_1("vjepa2_1_vit_large_384", checkpoint, encoder_key, kwargs)


def vjepa2_1_vit_giant_384(checkpoint=None, *, encoder_key=None, **kwargs):
    """V-JEPA 2.1 ViT-g/16 (22 heads) at 384 px (``vjepa2_1_vitg_384.pt``, ``target_encoder``)."""
    return _encoder_2_1("vjepa2_1_vit_giant_384", checkpoint, encoder_key, kwargs)


def vjepa2_1_vit_gigantic_384(checkpoint=None, *, encoder_key=None, **kwargs):
    """V-JEPA 2.1 ViT-G/16 (26 heads, MLP 8192) at 384 px (``vjepa2_1_vitG_384.pt``, ``target_encoder``)."""
    return _encoder_2_1("vjepa2_1_vit_gigantic_384", checkpoint, encoder_key, kwargs)
