"""V-JEPA 2 Vision Transformer encoder.

Same constructor options, defaults and ``state_dict()`` keys as the official ``VisionTransformer`` of
facebookresearch/vjepa2, so its checkpoints load as they are and outputs match to float precision.
Differences are deliberate and only where upstream crashes or misbehaves: unknown options raise a
TypeError instead of being swallowed, bad input shapes raise clear errors, and a video model also
accepts a single image ``[B, C, H, W]`` (fed as a clip of ``tubelet_size`` repeated frames, the way
V-JEPA 2-AC encodes frames).

Tokens are ordered time-major, then row, then column: index = t*h*w + i*w + j.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
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
    run_blocks,
    sincos_2d,
    sincos_3d,
    split_token_ids,
)


class PatchEmbed(nn.Module):
    """Conv2d patches (images) or Conv3d tubelets (videos) -> tokens ``[B, N, D]``."""

    def __init__(self, patch_size=16, tubelet_size=2, in_chans=3, embed_dim=768, video=True):
        super().__init__()
        if video:
            kernel = (tubelet_size, patch_size, patch_size)
            self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)
        else:
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """ViT encoder for images (``num_frames == 1``) or videos (tubelets of ``tubelet_size`` frames)."""

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
        use_rope=False,
        handle_nonsquare_inputs=True,
        **unknown,
    ):
        super().__init__()
        aliases = pop_hub_misspellings("VisionTransformer", unknown)
        use_silu, wide_silu = aliases.get("use_silu", use_silu), aliases.get("wide_silu", wide_silu)
        reject_unknown_options(VisionTransformer, unknown)
        if embed_dim % num_heads:
            raise ValueError(
                f"VisionTransformer: embed_dim {embed_dim} is not divisible by num_heads {num_heads}"
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
        self.uniform_power = uniform_power
        self.use_rope = use_rope
        self.use_activation_checkpointing = use_activation_checkpointing
        self.init_std = init_std

        self.patch_embed = PatchEmbed(patch_size, tubelet_size, in_chans, embed_dim, video=self.is_video)
        grid_t = num_frames // tubelet_size if self.is_video else 1
        grid_h, grid_w = self.img_height // patch_size, self.img_width // patch_size
        self.num_patches = grid_t * grid_h * grid_w

        # Fixed (not trained) sin-cos table unless RoPE is used; with RoPE there is no pos_embed key.
        self.pos_embed = None
        if not use_rope:
            if self.is_video:
                table = sincos_3d(embed_dim, grid_t, grid_h, grid_w, uniform_power)
            else:
                table = sincos_2d(embed_dim, grid_h, grid_w)
            self.pos_embed = nn.Parameter(torch.from_numpy(table).float().unsqueeze(0), requires_grad=False)

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
        self.norm = norm_layer(embed_dim)

        self.apply(partial(init_weights, std=init_std))
        rescale_blocks(self.blocks)

    def get_num_layers(self):
        return len(self.blocks)

    def no_weight_decay(self):
        return {}

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Validate the pixel tensor; a video model turns an image into a clip of repeated frames."""
        name = "VisionTransformer.forward: x"
        if self.is_video and x.dim() == 4:
            x = x.unsqueeze(2).repeat(1, 1, self.tubelet_size, 1, 1)
        if not self.is_video and x.dim() == 5 and x.size(2) == 1:
            x = x.squeeze(2)
        expected_dim = 5 if self.is_video else 4
        layout = "[B, C, T, H, W] (or an image [B, C, H, W])" if self.is_video else "[B, C, H, W]"
        if x.dim() != expected_dim:
            raise ValueError(f"{name}: expected {layout}, got shape {tuple(x.shape)}")
        channels = self.patch_embed.proj.in_channels
        if x.size(1) != channels:
            raise ValueError(f"{name}: expected {channels} channels in dim 1, got shape {tuple(x.shape)}")
        if x.size(-1) % self.patch_size or x.size(-2) % self.patch_size:
            raise ValueError(
                f"{name}: height and width must be multiples of patch_size {self.patch_size}, "
                f"got {x.size(-2)}x{x.size(-1)}"
            )
        if self.is_video and x.size(2) % self.tubelet_size:
            raise ValueError(
                f"{name}: number of frames must be a multiple of tubelet_size {self.tubelet_size}, got {x.size(2)}"
            )
        return x

    def forward(self, x, masks=None):
        """x: ``[B, C, T, H, W]`` (video model) or ``[B, C, H, W]``.

        masks: a ``[B, K]`` tensor (or a list of them) of token indices to **keep**; the kept tokens of
        every mask are stacked mask-major along the batch -> ``[B * len(masks), K, D]``.
        Returns ``norm(x)`` ``[B', N or K, D]``, or a list of them for ``out_layers``.
        """
        x = self._check_input(x)
        grid_t = x.size(2) // self.tubelet_size if self.is_video else 1
        grid_h, grid_w = x.size(-2) // self.patch_size, x.size(-1) // self.patch_size

        tokens = self.patch_embed(x)
        if self.pos_embed is not None:
            tokens = tokens + self.interpolate_pos_encoding(x, self.pos_embed)

        if masks is not None:
            masks = as_mask_list(masks, "VisionTransformer.forward: masks")
            for i, m in enumerate(masks):
                if m.size(0) != tokens.size(0):
                    raise ValueError(
                        f"VisionTransformer.forward: masks[{i}] has {m.size(0)} rows, expected batch size "
                        f"{tokens.size(0)}"
                    )
            tokens = apply_masks(tokens, masks)
            ids = torch.cat(masks, dim=0)
        else:
            ids = torch.arange(grid_t * grid_h * grid_w, device=tokens.device)

        rope = None
        if self.use_rope:
            if not self.handle_nonsquare_inputs:  # upstream then assumes the square construction grid
                grid_h = grid_w = self.img_height // self.patch_size
            rope = rope_table(*split_token_ids(ids, grid_h, grid_w), self.embed_dim // self.num_heads)

        out = run_blocks(
            self.blocks,
            tokens,
            rope,
            checkpointing=self.use_activation_checkpointing,
            out_layers=self.out_layers,
            norm=self.norm,
        )
        if self.out_layers is not None:
            return out[1]
        return self.norm(out)

    def interpolate_pos_encoding(self, x, pos_embed):
        """Resize the sin-cos table to the input grid (trilinear for videos, bicubic for images)."""
        _, num, dim = pos_embed.shape
        if self.is_video:
            _, _, t, h, w = x.shape
            if h == self.img_height and w == self.img_width:
                if t == self.num_frames:
                    return pos_embed
                if t < self.num_frames:  # same frame size, fewer frames: keep the first frames' rows
                    return pos_embed[
                        :, : (t // self.tubelet_size) * (h // self.patch_size) * (w // self.patch_size)
                    ]
            grid = (
                self.num_frames // self.tubelet_size,
                self.img_height // self.patch_size,
                self.img_width // self.patch_size,
            )
            target = (t // self.tubelet_size, h // self.patch_size, w // self.patch_size)
            table = pos_embed.reshape(1, *grid, dim).permute(0, 4, 1, 2, 3)
            scale = tuple(a / b for a, b in zip(target, grid))
            table = F.interpolate(table, scale_factor=scale, mode="trilinear")
            return table.permute(0, 2, 3, 4, 1).reshape(1, -1, dim)
        h, w = x.shape[-2:]
        if h == self.img_height and w == self.img_width:
            return pos_embed
        side = int(num**0.5)  # upstream assumes a square table here
        scale = ((h // self.patch_size) * (w // self.patch_size) / num) ** 0.5
        table = pos_embed.reshape(1, side, side, dim).permute(0, 3, 1, 2)
        table = F.interpolate(table, scale_factor=scale, mode="bicubic")
        return table.permute(0, 2, 3, 1).reshape(1, -1, dim)


# ---------------------------------------------------------------------------------------------------
# Factories (official names and sizes). All use qkv bias and LayerNorm eps 1e-6.
# ---------------------------------------------------------------------------------------------------


def _vit(embed_dim, depth, num_heads, mlp_ratio, patch_size=16, **kwargs):
    return VisionTransformer(
        patch_size=patch_size,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        **kwargs,
    )


def vit_synthetic(patch_size=16, **kwargs):
    return _vit(1, 1, 1, 4, patch_size, **kwargs)


def vit_tiny(patch_size=16, **kwargs):
    return _vit(192, 12, 3, 4, patch_size, **kwargs)


def vit_small(patch_size=16, **kwargs):
    return _vit(384, 12, 6, 4, patch_size, **kwargs)


def vit_base(patch_size=16, **kwargs):
    return _vit(768, 12, 12, 4, patch_size, **kwargs)


def vit_large(patch_size=16, **kwargs):
    return _vit(1024, 24, 16, 4, patch_size, **kwargs)


def vit_huge(patch_size=16, **kwargs):
    return _vit(1280, 32, 16, 4, patch_size, **kwargs)


def vit_giant(patch_size=16, **kwargs):
    return _vit(1408, 40, 16, 48 / 11, patch_size, **kwargs)


def vit_giant_xformers(patch_size=16, **kwargs):
    """The released V-JEPA 2 ViT-g (22 heads of 64 dims)."""
    return _vit(1408, 40, 22, 48 / 11, patch_size, **kwargs)


# Upstream's gigantic factories misspell the mlp-ratio option, so their intended 64/13 never applies and
# the MLP stays at ratio 4 (hidden 6656). We build that shape so their state dicts load.
def vit_gigantic(patch_size=16, **kwargs):
    return _vit(1664, 48, 16, 4, patch_size, **kwargs)


def vit_gigantic_xformers(patch_size=16, **kwargs):
    return _vit(1664, 48, 26, 4, patch_size, **kwargs)


def vit_tiny_rope(patch_size=16, **kwargs):
    return vit_tiny(patch_size, use_rope=True, **kwargs)


def vit_small_rope(patch_size=16, **kwargs):
    return vit_small(patch_size, use_rope=True, **kwargs)


def vit_base_rope(patch_size=16, **kwargs):
    return vit_base(patch_size, use_rope=True, **kwargs)


def vit_large_rope(patch_size=16, **kwargs):
    return vit_large(patch_size, use_rope=True, **kwargs)


def vit_huge_rope(patch_size=16, **kwargs):
    return vit_huge(patch_size, use_rope=True, **kwargs)


def vit_giant_rope(patch_size=16, **kwargs):
    return vit_giant(patch_size, use_rope=True, **kwargs)


def vit_giant_xformers_rope(patch_size=16, **kwargs):
    return vit_giant_xformers(patch_size, use_rope=True, **kwargs)


def vit_gigantic_rope(patch_size=16, **kwargs):
    return vit_gigantic(patch_size, use_rope=True, **kwargs)


def vit_gigantic_xformers_rope(patch_size=16, **kwargs):
    return vit_gigantic_xformers(patch_size, use_rope=True, **kwargs)


VIT_EMBED_DIMS = {
    "vit_synthetic": 1,
    "vit_tiny": 192,
    "vit_small": 384,
    "vit_base": 768,
    "vit_large": 1024,
    "vit_huge": 1280,
    "vit_giant": 1408,
    "vit_gigantic": 1664,
}
