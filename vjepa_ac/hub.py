"""Builders for the released V-JEPA 2 models (same architectures and settings as the official hub).

Each builder returns ``(encoder, predictor)``. Pass ``checkpoint`` as a local path or a URL (for
example ``CHECKPOINT_URLS["vitl"]``) to load released weights strictly; ``None`` leaves the random
initialisation. Extra keyword options go to both networks (as in the official hub), e.g.
``use_activation_checkpointing=True``.

    encoder, predictor = vjepa2_ac_vit_giant(CHECKPOINT_URLS["vjepa2-ac-vitg"])
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import load_checkpoint, load_pretrained
from .models import vit_ac_predictor, vit_giant_xformers, vit_huge, vit_large, vit_predictor

VJEPA2_BASE_URL = "https://dl.fbaipublicfiles.com/vjepa2"
CHECKPOINT_URLS = {
    name: f"{VJEPA2_BASE_URL}/{name}.pt" for name in ("vitl", "vith", "vitg", "vitg-384", "vjepa2-ac-vitg")
}

# Shared by every released model: 16 px patches, tubelets of 2 frames, 3-D RoPE.
_COMMON = {"patch_size": 16, "tubelet_size": 2, "num_frames": 64, "use_sdpa": True, "use_rope": True}


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


def _pretrained_pair(encoder_factory, img_size, checkpoint, encoder_key, kwargs):
    """Encoder + pretraining predictor (12 x 384, 12 heads, 10 mask tokens) as in the official hub."""
    options = {**_COMMON, "img_size": (img_size, img_size), "uniform_power": False, **kwargs}
    encoder = encoder_factory(**options)
    predictor = vit_predictor(
        **{
            **options,
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
    return _pretrained_pair(vit_large, 256, checkpoint, encoder_key, kwargs)


def vjepa2_vit_huge(checkpoint=None, *, encoder_key="encoder", **kwargs):
    """ViT-H/16 at 256 px (``vith.pt``) and its pretraining predictor."""
    return _pretrained_pair(vit_huge, 256, checkpoint, encoder_key, kwargs)


def vjepa2_vit_giant(checkpoint=None, *, encoder_key="encoder", **kwargs):
    """ViT-g/16 (22 heads) at 256 px (``vitg.pt``) and its pretraining predictor."""
    return _pretrained_pair(vit_giant_xformers, 256, checkpoint, encoder_key, kwargs)


def vjepa2_vit_giant_384(checkpoint=None, *, encoder_key="encoder", **kwargs):
    """ViT-g/16 (22 heads) at 384 px (``vitg-384.pt``) and its pretraining predictor."""
    return _pretrained_pair(vit_giant_xformers, 384, checkpoint, encoder_key, kwargs)


def vjepa2_ac_vit_giant(checkpoint=None, **kwargs):
    """V-JEPA 2-AC: ViT-g/16 encoder + action-conditioned predictor (``vjepa2-ac-vitg.pt``).

    Predictor values of the official ``droid-256px-8f`` config: width 1024, depth 24, 16 heads,
    block-causal, 7-D actions and states, no extrinsics, GELU MLP.
    """
    options = {**_COMMON, "img_size": (256, 256), **kwargs}
    encoder = vit_giant_xformers(**options)
    predictor = vit_ac_predictor(
        **{
            **options,
            "embed_dim": encoder.embed_dim,
            "predictor_embed_dim": 1024,
            "depth": 24,
            "num_heads": 16,
            "is_frame_causal": True,
            "action_embed_dim": 7,
            "use_extrinsics": False,
        }
    )
    load_models(checkpoint, [(encoder, "encoder"), (predictor, "predictor")])
    return encoder, predictor
