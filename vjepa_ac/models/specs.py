"""Networks from specs: the plain dicts checkpoints store to rebuild their models (``config["encoder"]`` etc.).

Kept apart from the runtime so that checkpoint-format detection (``vjepa_ac.formats``) and the runtime can both
build models without importing each other.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from torch import nn


def encoder_spec_from_pretrain_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The encoder spec of a ``scripts/pretrain.py`` config dict (its ``model`` and ``data`` sections).

    ``model.name`` is a factory of ``vjepa_ac.models`` or ``custom`` (width / depth / heads from the config);
    with ``model.app: vjepa_2_1`` a V-JEPA 2.1 encoder of that size (``vit_2_1`` / ``custom_2_1``).
    """
    model, data = config["model"], config["data"]
    kwargs = {"img_size": data["crop_size"], "patch_size": model["patch_size"],
              "num_frames": data["frames_per_clip"], "tubelet_size": model["tubelet_size"],
              "use_rope": model["use_rope"], "use_activation_checkpointing": model["use_activation_checkpointing"]}
    name = model["name"]
    if name == "custom":
        kwargs.update(embed_dim=model["embed_dim"], depth=model["depth"], num_heads=model["num_heads"],
                      mlp_ratio=model["mlp_ratio"])
    if model.get("app", "vjepa") == "vjepa_2_1":  # configs written before 2.1 have no app: V-JEPA 2
        kwargs.update(img_temporal_dim_size=model["img_temporal_dim_size"], interpolate_rope=model["interpolate_rope"],
                      modality_embedding=model["modality_embedding"], n_output_distillation=model["levels_predictor"])
        if name != "custom":
            kwargs["arch"] = name
        name = "custom_2_1" if name == "custom" else "vit_2_1"
    return {"name": name, "kwargs": kwargs}


def build_encoder(spec: Mapping[str, Any]) -> nn.Module:
    """Encoder from a spec ``{"name": ..., "kwargs": {...}}``.

    name: a factory or class of ``vjepa_ac.models`` (``vit_tiny`` ... ``vit_giant_xformers``,
    ``VisionTransformer``; ``vit_2_1`` with ``arch`` for a V-JEPA 2.1 size); ``custom`` / ``custom_2_1``: a
    ``VisionTransformer`` / ``VisionTransformer21`` with the factories' settings (qkv bias, LayerNorm eps 1e-6)
    and the given width / depth / heads; ``pretrain_config`` (AC checkpoints written
    before the runtime existed): kwargs is a whole pretraining config.
    """
    from vjepa_ac import models

    name, kwargs = spec["name"], dict(spec["kwargs"])
    if name == "pretrain_config":
        return build_encoder(encoder_spec_from_pretrain_config(kwargs))
    if name in ("custom", "custom_2_1"):
        cls = models.VisionTransformer21 if name == "custom_2_1" else models.VisionTransformer
        return cls(qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs)
    factory = getattr(models, name, None)
    if factory is None or not (name.startswith("vit_") or name == "VisionTransformer"):
        raise ValueError(f"encoder name {name!r}: not a factory in vjepa_ac.models "
                         f"(expected e.g. vit_tiny, vit_large, vit_giant_xformers, VisionTransformer or custom)")
    return factory(**kwargs)


def build_predictor(spec: Mapping[str, Any]) -> nn.Module:
    """Action-conditioned predictor from ``vit_ac_predictor`` keyword arguments (official names)."""
    from vjepa_ac.models import vit_ac_predictor

    return vit_ac_predictor(**spec)
