"""V-JEPA 2 pretraining predictor: fill in masked-out tokens from the encoded context.

Same options, defaults and ``state_dict()`` keys as the official ``VisionTransformerPredictor``.
Additions: ``embed_dim, predictor_embed_dim, depth, num_heads`` may be given positionally (the other
options are keyword-only), ``num_targets`` is an alias of ``num_mask_tokens`` that also turns mask tokens
on, ``use_sdpa`` is honoured, several (context, target) mask pairs are supported, and a predictor built
without mask tokens (upstream crashes) uses a fixed zero target token.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .modules import (
    apply_masks,
    as_mask_list,
    init_weights,
    make_blocks,
    reject_unknown_options,
    rescale_blocks,
    rope_table,
    run_blocks,
    sincos_2d,
    sincos_3d,
    split_token_ids,
)


class VisionTransformerPredictor(nn.Module):
    """Context tokens + learnable mask tokens at the target positions -> predicted target tokens."""

    def __init__(
        self,
        embed_dim=768,
        predictor_embed_dim=384,
        depth=6,
        num_heads=12,
        *,
        img_size=(224, 224),
        patch_size=16,
        num_frames=1,
        tubelet_size=2,
        mlp_ratio=4.0,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.0,
        norm_layer=nn.LayerNorm,
        init_std=0.02,
        uniform_power=False,
        use_mask_tokens=False,
        num_mask_tokens=2,
        zero_init_mask_tokens=True,
        use_silu=False,
        wide_silu=True,
        use_activation_checkpointing=False,
        return_all_tokens=False,
        chop_last_n_tokens=0,
        use_rope=False,
        use_sdpa=True,
        num_targets=None,
        **unknown,
    ):
        super().__init__()
        reject_unknown_options(VisionTransformerPredictor, unknown)
        if num_targets is not None:  # the pretraining issue's name: N learnable target tokens
            use_mask_tokens, num_mask_tokens = True, num_targets
        if predictor_embed_dim % num_heads:
            raise ValueError(
                f"VisionTransformerPredictor: predictor_embed_dim {predictor_embed_dim} is not divisible by "
                f"num_heads {num_heads}"
            )

        self.embed_dim = embed_dim
        self.predictor_embed_dim = predictor_embed_dim
        self.num_heads = num_heads
        self.return_all_tokens = return_all_tokens
        self.chop_last_n_tokens = chop_last_n_tokens
        if isinstance(img_size, int):
            img_size = (img_size, img_size)
        self.img_height, self.img_width = img_size
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.is_video = num_frames > 1
        self.grid_height = self.img_height // patch_size
        self.grid_width = self.img_width // patch_size
        self.grid_depth = num_frames // tubelet_size
        self.num_patches = (self.grid_depth if self.is_video else 1) * self.grid_height * self.grid_width
        self.uniform_power = uniform_power
        self.use_rope = use_rope
        self.use_activation_checkpointing = use_activation_checkpointing
        self.init_std = init_std

        self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim, bias=True)

        # One learnable token per "kind" of target (selected by mask_index in forward).
        self.mask_tokens = None
        self.num_mask_tokens = 0
        if use_mask_tokens:
            self.num_mask_tokens = num_mask_tokens
            self.mask_tokens = nn.ParameterList(
                nn.Parameter(torch.zeros(1, 1, predictor_embed_dim)) for _ in range(num_mask_tokens)
            )

        self.predictor_pos_embed = None
        if not use_rope:
            if self.is_video:
                table = sincos_3d(
                    predictor_embed_dim, self.grid_depth, self.grid_height, self.grid_width, uniform_power
                )
            else:
                table = sincos_2d(predictor_embed_dim, self.grid_height, self.grid_width)
            self.predictor_pos_embed = nn.Parameter(
                torch.from_numpy(table).float().unsqueeze(0), requires_grad=False
            )

        self.predictor_blocks = make_blocks(
            depth,
            predictor_embed_dim,
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
        self.predictor_norm = norm_layer(predictor_embed_dim)
        self.predictor_proj = nn.Linear(predictor_embed_dim, embed_dim, bias=True)

        if self.mask_tokens is not None and not zero_init_mask_tokens:
            for token in self.mask_tokens:
                nn.init.trunc_normal_(token, std=init_std, a=-2.0, b=2.0)
        self.apply(partial(init_weights, std=init_std))
        rescale_blocks(self.predictor_blocks)

    def _pos_table(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of the sin-cos table for token indices ``ids`` ``[B', K]`` -> ``[B', K, D_p]``."""
        if int(ids.max()) >= self.num_patches:
            raise ValueError(
                f"VisionTransformerPredictor: token index {int(ids.max())} is outside the sin-cos table of "
                f"{self.num_patches} positions (img_size={self.img_height}x{self.img_width}, "
                f"num_frames={self.num_frames}); build the predictor for the encoder's input size"
            )
        table = self.predictor_pos_embed.expand(ids.size(0), -1, -1)
        return apply_masks(table, [ids])

    def forward(self, x=None, masks_x=None, masks_y=None, mask_index=1, has_cls=False, **names):
        """Predict the tokens at ``masks_y`` from context tokens ``x`` taken at ``masks_x``.

        x: ``[B * M, Kc, D_enc]`` encoder output for M context masks (mask-major, as the encoder returns it).
        masks_x / masks_y: ``[B, Kc]`` / ``[B, Ky]`` token indices, or lists of M of them (pairs by position).
        mask_index: which learnable mask token to use (modulo ``num_mask_tokens``); upstream's default is 1.
        Returns ``[B * M, Ky, D_enc]`` in ``masks_y`` order (all tokens, sorted, with return_all_tokens).
        The issue's names ``context_repr``, ``masks_enc``, ``masks_pred`` are accepted as keywords too.
        """
        x, masks_x, masks_y = self._inputs(x, masks_x, masks_y, has_cls, names)
        x, order, num_ctx = self._predict_sorted(x, masks_x, masks_y, mask_index)
        if not self.return_all_tokens:
            x = unsort(x, order)[:, num_ctx:]
        return self.predictor_proj(x)

    def _inputs(self, x, masks_x, masks_y, has_cls, names):
        """Check the forward arguments; returns ``(x, masks_x [B*M, Kc], masks_y [B*M, Ky])``."""
        x, masks_x, masks_y = _resolve_forward_names(x, masks_x, masks_y, names)
        if has_cls:
            raise ValueError(
                "VisionTransformerPredictor: has_cls=True is not supported (V-JEPA 2 has no CLS token)"
            )
        masks_x = as_mask_list(masks_x, "VisionTransformerPredictor.forward: masks_x")
        masks_y = as_mask_list(masks_y, "VisionTransformerPredictor.forward: masks_y")
        if len(masks_x) != len(masks_y):
            raise ValueError(
                f"VisionTransformerPredictor.forward: got {len(masks_x)} context masks and {len(masks_y)} "
                "target masks; they must pair up"
            )
        masks_x, masks_y = torch.cat(masks_x, dim=0), torch.cat(masks_y, dim=0)
        if x.dim() != 3 or x.shape[:2] != masks_x.shape:
            raise ValueError(
                f"VisionTransformerPredictor.forward: x must be [B*M, Kc, D] matching masks_x "
                f"{tuple(masks_x.shape)}, got {tuple(x.shape)}"
            )
        if masks_y.size(0) != masks_x.size(0):
            raise ValueError(
                f"VisionTransformerPredictor.forward: masks_y has {masks_y.size(0)} rows in total, masks_x "
                f"{masks_x.size(0)}"
            )
        return x, masks_x, masks_y

    def _predict_sorted(self, x, masks_x, masks_y, mask_index):
        """Embed the context, add the mask tokens at the target positions, sort by position and run the blocks.

        Returns ``(normed tokens in position order, the sorting permutation, number of context tokens)``.
        """
        x = self.predictor_embed(x)
        num_ctx = x.size(1)
        if self.predictor_pos_embed is not None:
            x = x + self._pos_table(masks_x)

        # Target tokens: one shared learnable token (plus its position) at every target slot.
        if self.mask_tokens is not None:
            token = self.mask_tokens[mask_index % self.num_mask_tokens]
        else:
            token = x.new_zeros(1, 1, x.size(-1))
        targets = token.expand(masks_y.size(0), masks_y.size(1), -1)
        if self.predictor_pos_embed is not None:
            targets = targets + self._pos_table(masks_y)

        # Sort context and targets together by position, as upstream does (same argsort call).
        x = torch.cat([x, targets], dim=1)
        ids = torch.cat([masks_x, masks_y], dim=1)
        order = torch.argsort(ids, dim=1)
        ids = torch.gather(ids, 1, order)
        x = torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, x.size(-1)))
        if self.chop_last_n_tokens > 0:
            if not self.return_all_tokens:
                raise ValueError(
                    "VisionTransformerPredictor: chop_last_n_tokens needs return_all_tokens=True"
                )
            x, ids = x[:, : -self.chop_last_n_tokens], ids[:, : -self.chop_last_n_tokens]
        x = self._before_blocks(x)
        rope = self._rope(ids) if self.use_rope else None
        x = run_blocks(self.predictor_blocks, x, rope, checkpointing=self.use_activation_checkpointing)
        return self.predictor_norm(x), order, num_ctx

    def _before_blocks(self, x):
        return x

    def _rope(self, ids):
        # Upstream decomposes positions on the square construction grid (grid_height x grid_height).
        return rope_table(*split_token_ids(ids, self.grid_height, self.grid_height), self.predictor_embed_dim // self.num_heads)


def unsort(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Undo ``x = gather(x, order)`` along dim 1 (tokens back to their input order)."""
    inverse = torch.argsort(order, dim=1)
    return torch.gather(x, 1, inverse.unsqueeze(-1).expand(-1, -1, x.size(-1)))



class VisionTransformerPredictor21(VisionTransformerPredictor):
    """V-JEPA 2.1 predictor (``app/vjepa_2_1/models/predictor.py``): multi-level input fusion, context outputs.

    Same options, defaults and ``state_dict()`` keys as the official class, for the options this project uses
    (no registers, no CLS token, no causal attention, no teacher distillation widths). What differs from the
    V-JEPA 2 predictor:

    - **levels** (``n_output_distillation``, default 4): the encoder hands over its last ``levels``
      hierarchical layers concatenated along channels ``[.., levels * D]``; ``predictor_embed`` fuses them
      with ``Linear(levels*D, D) -> GELU (SiLU with use_silu) -> Linear(D, D_p)`` (a plain linear layer for
      one level), and ``predictor_proj`` predicts all levels at once ``[.., levels * D]`` (deep supervision);
    - **context outputs**: with ``return_all_tokens`` (the official ``predict_all``) the context tokens are
      projected by their own ``predictor_proj_context`` (the dense loss's predictions); ``forward`` always
      returns ``(predicted targets, predicted context or None)``;
    - RoPE only, with the 2.1 frequency layout; ``interpolate_rope`` rescales rows and columns to the 256 px
      (252 px for patch 14) pretraining grid; a learned modality token (``video_mod_embed`` /
      ``img_mod_embed``) when ``img_temporal_dim_size`` is set and ``modality_embedding``.
    """

    def __init__(self, embed_dim=768, predictor_embed_dim=384, depth=6, num_heads=12, *, n_output_distillation=4,
                 use_silu=False, interpolate_rope=False, modality_embedding=True, img_temporal_dim_size=None,
                 use_rope=True, init_std=0.02, **options):
        if not use_rope:
            raise ValueError("VisionTransformerPredictor21: use_rope must be True (2.1 has no position table)")
        if not 1 <= n_output_distillation <= 4:
            raise ValueError(
                f"VisionTransformerPredictor21: n_output_distillation must be 1..4, got {n_output_distillation}"
            )
        super().__init__(embed_dim, predictor_embed_dim, depth, num_heads, use_silu=use_silu, use_rope=True,
                         init_std=init_std, **options)
        if self.chop_last_n_tokens:
            raise ValueError("VisionTransformerPredictor21: chop_last_n_tokens is not supported")
        self.levels = n_output_distillation
        self.interpolate_rope = interpolate_rope
        act = nn.SiLU if use_silu else nn.GELU
        fused = [nn.Linear(embed_dim * self.levels, embed_dim), act(), nn.Linear(embed_dim, predictor_embed_dim)]
        self.predictor_embed = nn.Sequential(*fused) if self.levels > 1 else fused[-1]
        self.predictor_proj = nn.Linear(predictor_embed_dim, embed_dim * self.levels)
        self.predictor_proj_context = None
        if self.return_all_tokens:
            self.predictor_proj_context = nn.Linear(predictor_embed_dim, embed_dim * self.levels)
        for module in (self.predictor_embed, self.predictor_proj, self.predictor_proj_context):
            if module is not None:
                module.apply(partial(init_weights, std=init_std))
        self.modality_embedding = img_temporal_dim_size is not None and modality_embedding
        if self.modality_embedding:
            self.video_mod_embed = nn.Parameter(torch.zeros(1, 1, predictor_embed_dim))
            self.img_mod_embed = nn.Parameter(torch.zeros(1, 1, predictor_embed_dim))
            nn.init.normal_(self.video_mod_embed, std=1e-6)
            nn.init.normal_(self.img_mod_embed, std=1e-6)
        self._mod = "video"

    def forward(self, x=None, masks_x=None, masks_y=None, mod="video", mask_index=1, has_cls=False, **names):
        """``x [B*M, Kc, levels*D]`` at ``masks_x`` -> ``(targets [B*M, Ky, levels*D], context or None)``.

        ``mod``: ``"video"`` or ``"image"`` (which modality token is added). Without ``return_all_tokens`` the
        second output is None; with it, the predicted context tokens ``[B*M, Kc, levels*D]`` in input order.
        """
        if mod not in ("video", "image"):
            raise ValueError(f"VisionTransformerPredictor21.forward: mod must be 'video' or 'image', got {mod!r}")
        x, masks_x, masks_y = self._inputs(x, masks_x, masks_y, has_cls, names)
        if x.size(-1) != self.embed_dim * self.levels:
            raise ValueError(
                f"VisionTransformerPredictor21.forward: x has {x.size(-1)} channels, expected levels x embed_dim "
                f"= {self.levels} x {self.embed_dim} (the encoder's deep-supervision output, training=True)"
            )
        self._mod = mod
        x, order, num_ctx = self._predict_sorted(x, masks_x, masks_y, mask_index)
        x = unsort(x, order)
        context = self.predictor_proj_context(x[:, :num_ctx]) if self.return_all_tokens else None
        return self.predictor_proj(x[:, num_ctx:]), context

    def _before_blocks(self, x):
        if not self.modality_embedding:
            return x
        return x + (self.img_mod_embed if self._mod == "image" else self.video_mod_embed)

    def _rope(self, ids):
        t, i, j = split_token_ids(ids, self.grid_height, self.grid_height)
        if self.interpolate_rope and self.grid_height > 1:
            reference = (252 if self.patch_size == 14 else 256) // self.patch_size - 1
            i, j = i.float() * reference / (self.grid_height - 1), j.float() * reference / (self.grid_height - 1)
        return rope_table(t, i, j, self.predictor_embed_dim // self.num_heads, interleaved=True)

def _resolve_forward_names(x, masks_x, masks_y, names: dict):
    """Accept the issue's keyword names (context_repr, masks_enc, masks_pred) next to the official ones."""
    aliases = {"context_repr": "x", "masks_enc": "masks_x", "masks_pred": "masks_y"}
    unknown = set(names) - set(aliases)
    if unknown:
        raise TypeError(f"VisionTransformerPredictor.forward got unknown argument(s): {sorted(unknown)}")
    given = {"x": x, "masks_x": masks_x, "masks_y": masks_y}
    for alias, official in aliases.items():
        if alias in names:
            if given[official] is not None:
                raise TypeError(f"VisionTransformerPredictor.forward: got both {alias} and {official}")
            given[official] = names[alias]
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise TypeError(
            f"VisionTransformerPredictor.forward: missing {missing} (context tokens and both masks)"
        )
    return given["x"], given["masks_x"], given["masks_y"]


def vit_predictor(**kwargs):
    """Official factory: GELU MLP ratio 4, qkv bias, LayerNorm eps 1e-6."""
    return VisionTransformerPredictor(
        mlp_ratio=4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs
    )


def vit_predictor_2_1(**kwargs):
    """Official 2.1 factory: GELU MLP ratio 4, qkv bias, LayerNorm eps 1e-6."""
    return VisionTransformerPredictor21(
        mlp_ratio=4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs
    )
