"""V-JEPA 2.1 Vision Transformer encoder.

Same constructor options, defaults (except ``use_rope``, see below) and ``state_dict()`` keys as the
official ``VisionTransformer`` of ``app/vjepa_2_1/models/vision_transformer.py`` (facebookresearch/vjepa2),
so the released 2.1 encoders load strictly and outputs match to float precision. What differs from the
V-JEPA 2 encoder in ``vision_transformer.py``:

- **RoPE frequencies**: both elements of a rotated pair use the same frequency (interleaved layout);
  V-JEPA 2 tiles the frequency list instead. Same axes split (time, height, width), same positions.
- **Multi-modal tokenizer**: a video clip goes through ``patch_embed`` (Conv3d tubelets of
  ``tubelet_size`` frames). With ``img_temporal_dim_size`` set (the released models use 1), a clip of
  exactly that many frames is an image and goes through ``patch_embed_img`` (Conv3d over 1 frame).
  A learned modality token, ``video_mod_embed`` or ``img_mod_embed`` ``[1, 1, D]``, is added to every token.
- **Layer-output norms instead of one final norm**: there is no ``norm``; four LayerNorms ``norms_block``
  belong to the "hierarchical" layers, the last block of each quarter of the depth (for depth 12 / 24 /
  40 / 48: [2, 5, 8, 11], [5, 11, 17, 23], [9, 19, 29, 39], [11, 23, 37, 47]). The output is
  ``norms_block[3]`` applied to the last block. ``out_layers`` (a subset of the hierarchical layers)
  returns those layers' normed outputs; ``forward(x, training=True)`` returns the deep-supervision output:
  the normed outputs of the last ``n_output_distillation`` hierarchical layers concatenated along
  channels ``[B, N, n * D]`` (the official argument name; it does not depend on ``module.training``).
- **interpolate_rope** (set by the official hub): row and column positions are rescaled to the 256 px
  pretraining grid, ``i * (256/p - 1) / (h - 1)``, so a 384 px input sees the positions it was trained on.
- RoPE only: the official class has no sin-cos table (it crashes with ``use_rope=False``), so
  ``use_rope`` defaults to True here and False is refused.

Deliberate differences, only where upstream crashes: unknown options raise a TypeError; depths outside
the four official ones use the last block of each quarter (upstream leaves the layers undefined);
``n_output_distillation`` may be 1..4; an image ``[B, C, H, W]`` is accepted (image tokenizer when the
model has one, else repeated to ``tubelet_size`` frames); with ``interpolate_rope`` a grid of one row or
column gets position 0 (upstream divides by zero).

Tokens are ordered time-major, then row, then column: index = t*h*w + i*w + j.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.utils.checkpoint
from torch import nn

from .modules import (
    apply_masks,
    as_mask_list,
    init_weights,
    make_blocks,
    pop_hub_misspellings,
    reject_unknown_options,
    rescale_blocks,
    rope_table,
    split_token_ids,
)
from .vision_transformer import PatchEmbed

# Hierarchical layers (end of each quarter of the depth) of the official depths; note 37, not 35, for 48.
_HIERARCHICAL_LAYERS = {12: [2, 5, 8, 11], 24: [5, 11, 17, 23], 40: [9, 19, 29, 39], 48: [11, 23, 37, 47]}
# interpolate_rope maps positions onto the grid of the 256 px pretraining resolution (252 px for 14 px patches).
_ROPE_REFERENCE_PIXELS = 256


def hierarchical_layers(depth: int) -> list[int]:
    """Indices of the blocks whose outputs have their own norm (``norms_block``)."""
    if depth in _HIERARCHICAL_LAYERS:
        return list(_HIERARCHICAL_LAYERS[depth])
    if depth < 4:
        raise ValueError(
            f"VisionTransformer21: depth must be at least 4 (four hierarchical layers), got {depth}"
        )
    return [depth * k // 4 - 1 for k in range(1, 5)]


class VisionTransformer21(nn.Module):
    """V-JEPA 2.1 ViT encoder for videos (tubelets) and, with ``img_temporal_dim_size``, images."""

    def __init__(
        self,
        img_size=(224, 224),
        patch_size=16,
        num_frames=1,
        tubelet_size=2,
        in_chans=3,
        embed_dim=768,
        depth=12,
        num_heads=12,
        mlp_ratio=4.0,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.0,
        norm_layer=nn.LayerNorm,
        init_std=0.02,
        out_layers=None,
        uniform_power=False,
        use_silu=False,
        wide_silu=True,
        use_sdpa=True,
        use_activation_checkpointing=False,
        use_rope=True,
        handle_nonsquare_inputs=True,
        img_temporal_dim_size=None,
        interpolate_rope=False,
        modality_embedding=True,
        n_output_distillation=4,
        **unknown,
    ):
        super().__init__()
        aliases = pop_hub_misspellings("VisionTransformer21", unknown)
        use_silu, wide_silu = aliases.get("use_silu", use_silu), aliases.get("wide_silu", wide_silu)
        reject_unknown_options(VisionTransformer21, unknown)
        if not use_rope:
            raise ValueError("VisionTransformer21: use_rope must be True (V-JEPA 2.1 has no position table)")
        if embed_dim % num_heads:
            raise ValueError(
                f"VisionTransformer21: embed_dim {embed_dim} is not divisible by num_heads {num_heads}"
            )
        if img_temporal_dim_size is not None and not isinstance(img_temporal_dim_size, int):
            raise ValueError(
                f"VisionTransformer21: img_temporal_dim_size must be an int or None, got {img_temporal_dim_size!r}"
            )
        if not 1 <= n_output_distillation <= 4:
            raise ValueError(
                f"VisionTransformer21: n_output_distillation must be 1..4, got {n_output_distillation}"
            )

        self.num_features = self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.out_layers = out_layers
        self.handle_nonsquare_inputs = handle_nonsquare_inputs
        if isinstance(img_size, int):
            img_size = (img_size, img_size)
        self.img_height, self.img_width = img_size
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.is_video = num_frames > 1
        self.uniform_power = uniform_power  # accepted for compatibility; no effect with RoPE
        self.use_rope = True
        self.interpolate_rope = interpolate_rope
        self.img_temporal_dim_size = img_temporal_dim_size
        self.use_activation_checkpointing = use_activation_checkpointing
        self.init_std = init_std

        self.patch_embed = PatchEmbed(patch_size, tubelet_size, in_chans, embed_dim, video=self.is_video)
        grid_t = num_frames // tubelet_size if self.is_video else 1
        self.num_patches = grid_t * (self.img_height // patch_size) * (self.img_width // patch_size)
        self.patch_embed_img = None
        if img_temporal_dim_size is not None:
            self.patch_embed_img = PatchEmbed(patch_size, 1, in_chans, embed_dim, video=True)

        self.blocks = make_blocks(
            depth,
            embed_dim,
            num_heads,
            drop_path_rate,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            drop=drop_rate,
            attn_drop=attn_drop_rate,
            use_silu=use_silu,
            wide_silu=wide_silu,
            norm_layer=norm_layer,
            use_sdpa=use_sdpa,
        )
        self.apply(partial(init_weights, std=init_std))
        rescale_blocks(self.blocks)

        self.hierarchical_layers = hierarchical_layers(depth)
        self.out_layers_distillation = self.hierarchical_layers[-n_output_distillation:]
        self.norms_block = nn.ModuleList(norm_layer(embed_dim) for _ in self.hierarchical_layers)
        self.return_hierarchical = False

        self.modality_embedding = modality_embedding
        if modality_embedding:
            self.img_mod_embed = nn.Parameter(torch.zeros(1, 1, embed_dim))
            self.video_mod_embed = nn.Parameter(torch.zeros(1, 1, embed_dim))
            nn.init.normal_(self.img_mod_embed, std=1e-6)
            nn.init.normal_(self.video_mod_embed, std=1e-6)

    def get_num_layers(self):
        return len(self.blocks)

    def no_weight_decay(self):
        return {}

    # -------------------------------------------------------------------------------------------
    # tokenizer
    # -------------------------------------------------------------------------------------------

    def _tokenize(self, x: torch.Tensor):
        """Pixels -> (tokens ``[B, N, D]``, (grid_t, grid_h, grid_w)), choosing the image or video tokenizer."""
        name = "VisionTransformer21.forward: x"
        has_image_tokenizer = self.patch_embed_img is not None
        if (
            x.dim() == 4 and self.is_video
        ):  # an image: its own tokenizer, else a still clip of tubelet_size frames
            x = x.unsqueeze(2)
            if not (has_image_tokenizer and self.img_temporal_dim_size == 1):
                x = x.repeat(1, 1, self.tubelet_size, 1, 1)
        if x.dim() not in (4, 5) or x.size(1) != self.patch_embed.proj.in_channels:
            raise ValueError(
                f"{name}: expected {self.patch_embed.proj.in_channels}-channel pixels [B, C, T, H, W] or "
                f"[B, C, H, W], got shape {tuple(x.shape)}"
            )
        if x.size(-1) % self.patch_size or x.size(-2) % self.patch_size:
            raise ValueError(
                f"{name}: height and width must be multiples of patch_size {self.patch_size}, "
                f"got {x.size(-2)}x{x.size(-1)}"
            )
        grid_h, grid_w = x.size(-2) // self.patch_size, x.size(-1) // self.patch_size
        if has_image_tokenizer and x.dim() == 5 and x.size(2) == self.img_temporal_dim_size:
            return self._add_modality(self.patch_embed_img(x), video=False), (x.size(2), grid_h, grid_w)
        if not self.is_video:  # an image model (Conv2d patches); upstream tags its tokens as video
            if x.dim() == 5 and x.size(2) == 1:
                x = x.squeeze(2)
            if x.dim() != 4:
                raise ValueError(f"{name}: this image model expects [B, C, H, W], got shape {tuple(x.shape)}")
            return self._add_modality(self.patch_embed(x), video=True), (1, grid_h, grid_w)
        if x.dim() != 5 or x.size(2) % self.tubelet_size:
            image = f" or {self.img_temporal_dim_size} (an image)" if has_image_tokenizer else ""
            raise ValueError(
                f"{name}: expected [B, C, T, H, W] with T a multiple of tubelet_size {self.tubelet_size}{image}, "
                f"got shape {tuple(x.shape)}"
            )
        tokens = self._add_modality(self.patch_embed(x), video=True)
        return tokens, (x.size(2) // self.tubelet_size, grid_h, grid_w)

    def _add_modality(self, tokens, video: bool):
        if not self.modality_embedding:
            return tokens
        return tokens + (self.video_mod_embed if video else self.img_mod_embed)

    def _rope(self, ids: torch.Tensor, grid_h: int, grid_w: int):
        """cos/sin tables for flat token ids on a ``grid_h x grid_w`` frame grid (2.1 frequency layout)."""
        if not self.handle_nonsquare_inputs:  # upstream then assumes the square construction grid
            grid_h = grid_w = self.img_height // self.patch_size
        t, i, j = split_token_ids(ids, grid_h, grid_w)
        if self.interpolate_rope:
            reference = _ROPE_REFERENCE_PIXELS // self.patch_size - 1
            i = i.float() * reference / (grid_h - 1) if grid_h > 1 else i.float()
            j = j.float() * reference / (grid_w - 1) if grid_w > 1 else j.float()
        return rope_table(t, i, j, self.embed_dim // self.num_heads, interleaved=True)

    # -------------------------------------------------------------------------------------------
    # forward
    # -------------------------------------------------------------------------------------------

    def forward(self, x, masks=None, training=False):
        """x: video ``[B, C, T, H, W]``, image ``[B, C, 1, H, W]`` (with the image tokenizer) or ``[B, C, H, W]``.

        masks: a ``[B, K]`` tensor (or a list of them) of token indices to **keep**, stacked mask-major
        along the batch. Returns ``norms_block[-1](x)`` ``[B', N or K, D]``; a list of normed layer outputs
        with ``out_layers``; the concatenated deep-supervision outputs ``[B', N, n*D]`` with ``training=True``
        or ``return_hierarchical``.
        """
        tokens, (grid_t, grid_h, grid_w) = self._tokenize(x)
        if masks is not None:
            masks = as_mask_list(masks, "VisionTransformer21.forward: masks")
            for i, m in enumerate(masks):
                if m.size(0) != tokens.size(0):
                    raise ValueError(
                        f"VisionTransformer21.forward: masks[{i}] has {m.size(0)} rows, expected batch size "
                        f"{tokens.size(0)}"
                    )
            tokens = apply_masks(tokens, masks)
            ids = torch.cat(masks, dim=0)
        else:
            ids = torch.arange(grid_t * grid_h * grid_w, device=tokens.device)
        rope = self._rope(ids, grid_h, grid_w)

        norm_of = dict(zip(self.hierarchical_layers, self.norms_block))
        if self.out_layers is not None and not set(self.out_layers) <= set(norm_of):
            raise ValueError(
                f"VisionTransformer21: out_layers {list(self.out_layers)} must be among the hierarchical "
                f"layers {self.hierarchical_layers} (only those have an output norm)"
            )
        deep = training or self.return_hierarchical
        outs, hier = [], []
        for i, blk in enumerate(self.blocks):
            if self.use_activation_checkpointing and torch.is_grad_enabled():
                tokens = torch.utils.checkpoint.checkpoint(blk, tokens, rope, use_reentrant=False)
            else:
                tokens = blk(tokens, rope)
            if self.out_layers is not None and i in self.out_layers:
                outs.append(norm_of[i](tokens))
            if deep and i in self.out_layers_distillation:
                hier.append(norm_of[i](tokens))
        if self.out_layers is not None:
            return outs
        if deep:
            return torch.cat(hier, dim=2)
        return self.norms_block[-1](tokens)


# ---------------------------------------------------------------------------------------------------
# Sizes (official factory names of app/vjepa_2_1). All use qkv bias and LayerNorm eps 1e-6. Unlike the
# V-JEPA 2 factories, the gigantic ones really get mlp_ratio 64/13 (hidden 8192).
# ---------------------------------------------------------------------------------------------------

ARCHITECTURES_2_1 = {  # name: (embed_dim, depth, num_heads, mlp_ratio)
    "vit_tiny": (192, 12, 3, 4.0),
    "vit_small": (384, 12, 6, 4.0),
    "vit_base": (768, 12, 12, 4.0),
    "vit_large": (1024, 24, 16, 4.0),
    "vit_huge": (1280, 32, 16, 4.0),
    "vit_giant": (1408, 40, 16, 48 / 11),
    "vit_giant_xformers": (1408, 40, 22, 48 / 11),
    "vit_gigantic": (1664, 48, 16, 64 / 13),
    "vit_gigantic_xformers": (1664, 48, 26, 64 / 13),
}


def vit_2_1(arch: str, patch_size=16, **kwargs) -> VisionTransformer21:
    """The official 2.1 factory ``arch`` (``vit_base``, ``vit_large``, ``vit_giant_xformers``, ...)."""
    if arch not in ARCHITECTURES_2_1:
        raise ValueError(
            f"vit_2_1: unknown architecture {arch!r}; expected one of {sorted(ARCHITECTURES_2_1)}"
        )
    embed_dim, depth, num_heads, mlp_ratio = ARCHITECTURES_2_1[arch]
    return VisionTransformer21(
        patch_size=patch_size,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        **kwargs,
    )
