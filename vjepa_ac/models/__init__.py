"""V-JEPA 2 networks with the official class names, options and state-dict keys.

- ``VisionTransformer`` (encoder) and its factories ``vit_tiny`` ... ``vit_gigantic_xformers`` (+ ``*_rope``)
- ``VisionTransformer21`` (V-JEPA 2.1 encoder) and ``vit_2_1(name)`` for its official sizes
- ``VisionTransformerPredictor`` / ``vit_predictor`` (pretraining predictor) and the 2.1 one,
  ``VisionTransformerPredictor21`` / ``vit_predictor_2_1`` (multi-level fusion, context outputs)
- ``VisionTransformerPredictorAC`` / ``vit_ac_predictor`` (action-conditioned predictor) with
  incremental inference: ``new_cache()``, ``forward_next(...)`` and ``FrameKVCache``
"""

from .ac_predictor import FrameKVCache, VisionTransformerPredictorAC, vit_ac_predictor
from .modules import apply_masks, apply_rope, block_causal_mask, rope_table, split_token_ids
from .predictor import (
    VisionTransformerPredictor,
    VisionTransformerPredictor21,
    vit_predictor,
    vit_predictor_2_1,
)
from .vision_transformer import (
    VIT_EMBED_DIMS,
    PatchEmbed,
    VisionTransformer,
    vit_base,
    vit_base_rope,
    vit_giant,
    vit_giant_rope,
    vit_giant_xformers,
    vit_giant_xformers_rope,
    vit_gigantic,
    vit_gigantic_rope,
    vit_gigantic_xformers,
    vit_gigantic_xformers_rope,
    vit_huge,
    vit_huge_rope,
    vit_large,
    vit_large_rope,
    vit_small,
    vit_small_rope,
    vit_synthetic,
    vit_tiny,
    vit_tiny_rope,
)
from .vision_transformer_2_1 import ARCHITECTURES_2_1, VisionTransformer21, vit_2_1

__all__ = [
    "ARCHITECTURES_2_1",
    "VIT_EMBED_DIMS",
    "FrameKVCache",
    "PatchEmbed",
    "VisionTransformer",
    "VisionTransformer21",
    "VisionTransformerPredictor",
    "VisionTransformerPredictor21",
    "VisionTransformerPredictorAC",
    "apply_masks",
    "apply_rope",
    "block_causal_mask",
    "rope_table",
    "split_token_ids",
    "vit_2_1",
    "vit_ac_predictor",
    "vit_base",
    "vit_base_rope",
    "vit_giant",
    "vit_giant_rope",
    "vit_giant_xformers",
    "vit_giant_xformers_rope",
    "vit_gigantic",
    "vit_gigantic_rope",
    "vit_gigantic_xformers",
    "vit_gigantic_xformers_rope",
    "vit_huge",
    "vit_huge_rope",
    "vit_large",
    "vit_large_rope",
    "vit_predictor",
    "vit_predictor_2_1",
    "vit_small",
    "vit_small_rope",
    "vit_synthetic",
    "vit_tiny",
    "vit_tiny_rope",
]
