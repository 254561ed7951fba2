"""V-JEPA 2-AC action-conditioned predictor, with incremental (KV-cached) inference.

Same options, defaults and ``state_dict()`` keys as the official ``VisionTransformerPredictorAC``
(including ``extrinsics_encoder``, which exists even when extrinsics are unused).

Per frame t the token sequence is ``[action_t, state_t, (extrinsics_t), patch_0 ... patch_{hw-1}]``.
Attention is block-causal between frames: every token sees all tokens of its own and earlier frames.
The output at frame t's patch slots is the prediction of frame t+1.

Because earlier frames never see later ones, their keys/values never change: ``forward_next`` keeps
them in a ``FrameKVCache`` and processes only the newest frame, so a rollout of H steps costs O(H)
block passes instead of O(H^2) for re-running the whole prefix as the official planner does.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from .modules import (
    block_causal_mask,
    init_weights,
    make_blocks,
    pop_hub_misspellings,
    reject_unknown_options,
    rescale_blocks,
    rope_signed_tables,
    rope_table,
    run_blocks,
    split_token_ids,
)


class FrameKVCache:
    """Per-layer keys and values ``[B, heads, L, head_dim]`` of the frames processed so far.

    By default ``forward_next`` replaces the stored tensors with extended ones (never writes into them), so
    gradients flow through a cached rollout and a cache copied with ``repeat_interleave`` is independent.
    With a ``capacity`` (in frames) and autograd off, it instead writes each frame's keys/values into buffers
    allocated once for that many frames: a planning rollout then never copies its past (the stored tensors
    are views of the buffers). With autograd on, a capacity is ignored.
    """

    def __init__(self, depth: int, capacity: int | None = None):
        if capacity is not None and capacity < 1:
            raise ValueError(f"FrameKVCache: capacity must be >= 1 frame or None, got {capacity}")
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * depth
        self.num_frames = 0
        self.grid: tuple[int, int] | None = None  # patch grid (h, w) of the stored frames
        self.capacity = capacity
        self.buffers: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # allocated by the first frame

    def layer_buffers(self, batch: int, heads: int, frame_tokens: int, head_dim: int, like: torch.Tensor):
        """Per-layer (keys, values) buffers for ``capacity`` frames, or None (no capacity, or autograd on)."""
        if self.capacity is None or torch.is_grad_enabled():
            return None
        if self.num_frames >= self.capacity:
            raise ValueError(f"FrameKVCache: full ({self.capacity} frames); make the cache with a larger capacity")
        if self.buffers is None:
            if self.num_frames:  # the first frames were fed with autograd on: keep concatenating
                return None
            shape = (batch, heads, self.capacity * frame_tokens, head_dim)
            self.buffers = [(like.new_empty(shape), like.new_empty(shape)) for _ in self.layers]
        return self.buffers

    @property
    def batch_size(self) -> int | None:
        return None if self.layers[0] is None else self.layers[0][0].size(0)

    def repeat_interleave(self, n: int) -> FrameKVCache:
        """New cache with every batch row repeated ``n`` times (one context shared by n samples)."""
        out = FrameKVCache(len(self.layers))
        out.layers = [
            None if kv is None else (kv[0].repeat_interleave(n, dim=0), kv[1].repeat_interleave(n, dim=0))
            for kv in self.layers
        ]
        out.num_frames, out.grid = self.num_frames, self.grid
        return out

    def __repr__(self):
        return f"FrameKVCache(num_frames={self.num_frames}, batch_size={self.batch_size}, grid={self.grid})"


class VisionTransformerPredictorAC(nn.Module):
    """Predict next-frame latents from frame latents, actions and proprioceptive states."""

    def __init__(
        self,
        img_size=(224, 224),
        patch_size=16,
        num_frames=1,
        tubelet_size=2,
        embed_dim=768,
        predictor_embed_dim=1024,
        depth=24,
        num_heads=16,
        mlp_ratio=4.0,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.0,
        norm_layer=nn.LayerNorm,
        init_std=0.02,
        uniform_power=True,
        use_silu=False,
        wide_silu=True,
        is_frame_causal=True,
        use_activation_checkpointing=False,
        use_rope=True,
        action_embed_dim=7,
        use_extrinsics=False,
        use_sdpa=True,
        **unknown,
    ):
        super().__init__()
        aliases = pop_hub_misspellings("VisionTransformerPredictorAC", unknown)
        use_silu, wide_silu = aliases.get("use_silu", use_silu), aliases.get("wide_silu", wide_silu)
        reject_unknown_options(VisionTransformerPredictorAC, unknown)
        if predictor_embed_dim % num_heads:
            raise ValueError(
                f"VisionTransformerPredictorAC: predictor_embed_dim {predictor_embed_dim} is not divisible by "
                f"num_heads {num_heads}"
            )

        self.embed_dim = embed_dim
        self.predictor_embed_dim = predictor_embed_dim
        self.num_heads = num_heads
        self.is_frame_causal = is_frame_causal
        self.use_extrinsics = use_extrinsics
        self.action_embed_dim = action_embed_dim
        self.cond_tokens = 3 if use_extrinsics else 2  # action, state, (extrinsics) per frame
        if isinstance(img_size, int):
            img_size = (img_size, img_size)
        self.img_height, self.img_width = img_size
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.is_video = num_frames > 1
        self.grid_height = self.img_height // patch_size
        self.grid_width = self.img_width // patch_size
        self.uniform_power = uniform_power  # accepted for compatibility; no effect (no sin-cos table here)
        self.use_rope = use_rope
        self.use_activation_checkpointing = use_activation_checkpointing
        self.init_std = init_std
        self._rope_memo: dict = {}  # forward_next's RoPE tables per (frame, grid, device)

        self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim, bias=True)
        self.action_encoder = nn.Linear(action_embed_dim, predictor_embed_dim, bias=True)
        self.state_encoder = nn.Linear(action_embed_dim, predictor_embed_dim, bias=True)
        self.extrinsics_encoder = nn.Linear(action_embed_dim - 1, predictor_embed_dim, bias=True)

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

        self.apply(partial(init_weights, std=init_std))
        rescale_blocks(self.predictor_blocks)

    # -------------------------------------------------------------------------------------------
    # helpers shared by forward and forward_next
    # -------------------------------------------------------------------------------------------

    def _frame_grid(self, tokens_per_frame: int, where: str) -> tuple[int, int]:
        """Patch grid of a frame: the construction grid, or else a square grid of that many tokens."""
        if tokens_per_frame == self.grid_height * self.grid_width:
            return self.grid_height, self.grid_width
        side = math.isqrt(tokens_per_frame)
        if side * side == tokens_per_frame:
            return side, side
        raise ValueError(
            f"{where}: {tokens_per_frame} tokens per frame is neither the construction grid "
            f"{self.grid_height}x{self.grid_width} (img_size {self.img_height}x{self.img_width}, patch "
            f"{self.patch_size}) nor a square grid"
        )

    def _check_conditioning(self, where, batch, steps, actions, states, extrinsics):
        """actions/states ``[B, *steps, A]``; extrinsics ``[B, *steps, A-1]`` when the model uses them."""
        expected = [("actions", actions, self.action_embed_dim), ("states", states, self.action_embed_dim)]
        if self.use_extrinsics:
            if extrinsics is None:
                raise ValueError(
                    f"{where}: this predictor was built with use_extrinsics=True; pass extrinsics"
                )
            expected.append(("extrinsics", extrinsics, self.action_embed_dim - 1))
        for name, value, dim in expected:
            shape = (batch, *steps, dim)
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"{where}: {name} must have shape {list(shape)}, got {got}")

    def _interleave(self, x, actions, states, extrinsics):
        """x ``[B, T, hw, Dp]`` -> ``[B, T, cond + hw, Dp]`` with the conditioning tokens first in each frame."""
        cond = [self.action_encoder(actions).unsqueeze(2), self.state_encoder(states).unsqueeze(2)]
        if self.use_extrinsics:
            cond.append(self.extrinsics_encoder(extrinsics).unsqueeze(2))
        return torch.cat([*cond, x], dim=2)

    def _rope(self, first_frame: int, num_frames: int, grid_h: int, grid_w: int, device):
        """RoPE tables for frames first_frame.. in the per-frame layout [cond..., patches].

        Patches get (t, row, column), with row/column rescaled to the construction grid as upstream does
        (row * grid_height/h, column * grid_height/w). Conditioning tokens get (t, 0, 0): upstream rotates
        only their time dims, which is the same thing since angle 0 leaves a pair unchanged.
        """
        if not self.use_rope:
            return None
        _, rows, cols = split_token_ids(torch.arange(grid_h * grid_w, device=device), grid_h, grid_w)
        zeros = torch.zeros(self.cond_tokens, device=device)
        rows = torch.cat([zeros, rows.float() * (self.grid_height / grid_h)]).repeat(num_frames)
        cols = torch.cat([zeros, cols.float() * (self.grid_height / grid_w)]).repeat(num_frames)
        per_frame = self.cond_tokens + grid_h * grid_w
        frames = torch.arange(first_frame, first_frame + num_frames, device=device).float()
        frames = frames.repeat_interleave(per_frame)
        return rope_table(frames, rows, cols, self.predictor_embed_dim // self.num_heads)

    def _layout(self, per_frame: int):
        """Token layout for the qkv grouping upstream uses in its RoPE attention (plain attention: none)."""
        return (self.cond_tokens, per_frame) if self.use_rope else None

    def _readout(self, x):
        """Drop the conditioning tokens of ``[B, T, cond + hw, Dp]`` -> ``[B, T*hw, D_enc]``."""
        x = x[:, :, self.cond_tokens :].flatten(1, 2)
        return self.predictor_proj(self.predictor_norm(x))

    # -------------------------------------------------------------------------------------------
    # full forward (training; matches the official forward)
    # -------------------------------------------------------------------------------------------

    def forward(self, x, actions, states, extrinsics=None):
        """x ``[B, T*h*w, D_enc]`` frame latents, actions/states ``[B, T, 7]``, extrinsics ``[B, T, 6]``.

        Returns ``[B, T*h*w, D_enc]``: at frame t's slots the prediction of frame t+1. T comes from
        ``actions``; the frame grid is the construction grid or, for other inputs, a square grid.
        Extrinsics are ignored unless the model was built with ``use_extrinsics=True`` (as upstream).
        """
        where = "VisionTransformerPredictorAC.forward"
        if x.dim() != 3 or actions.dim() != 3:
            raise ValueError(
                f"{where}: expected x [B, T*h*w, D] and actions [B, T, A], got {tuple(x.shape)} and "
                f"{tuple(actions.shape)}"
            )
        batch, num_tokens, _ = x.shape
        steps = actions.size(1)
        self._check_conditioning(where, batch, (steps,), actions, states, extrinsics)
        if steps == 0 or num_tokens % steps:
            raise ValueError(
                f"{where}: x has {num_tokens} tokens, not a whole number of frames for {steps} actions"
            )
        grid_h, grid_w = self._frame_grid(
            num_tokens // steps, f"{where} (x: {num_tokens} tokens, {steps} actions)"
        )

        x = self.predictor_embed(x).view(batch, steps, grid_h * grid_w, -1)
        x = self._interleave(x, actions, states, extrinsics)
        per_frame = x.size(2)
        attn_mask = block_causal_mask(steps, per_frame, x.device) if self.is_frame_causal else None
        rope = self._rope(0, steps, grid_h, grid_w, x.device)
        x = run_blocks(
            self.predictor_blocks,
            x.flatten(1, 2),
            rope,
            attn_mask,
            checkpointing=self.use_activation_checkpointing,
            frame_layout=self._layout(per_frame),
        )
        return self._readout(x.view(batch, steps, per_frame, -1))

    # -------------------------------------------------------------------------------------------
    # incremental inference (planning rollouts)
    # -------------------------------------------------------------------------------------------

    def new_cache(self, capacity: int | None = None) -> FrameKVCache:
        """An empty key/value store for ``forward_next``; ``capacity`` frames preallocate it (no-grad rollouts)."""
        return FrameKVCache(len(self.predictor_blocks), capacity)

    def _rope_signed(self, frame: int, grid: tuple[int, int], device):
        """``rope_signed_tables`` of one frame, memoised: a planning rollout asks for the same few many times."""
        if not self.use_rope:
            return None
        key = (frame, grid, str(device))
        if key not in self._rope_memo:
            self._rope_memo[key] = rope_signed_tables(self._rope(frame, 1, *grid, device))
        return self._rope_memo[key]

    def forward_next(self, frame_tokens, action, state, cache: FrameKVCache, extrinsics=None):
        """Feed frame t = ``cache.num_frames`` and return the prediction of frame t+1.

        frame_tokens ``[B, h*w, D_enc]`` (encoded or previously predicted latents of frame t; batch 1 is
        shared by all B samples and embedded once), action and state ``[B, 7]`` at frame t, extrinsics
        ``[B, 6]`` if used. The cache is extended in place with frame t's keys/values. Equals the last frame of
        ``forward`` on frames 0..t.
        """
        where = "VisionTransformerPredictorAC.forward_next"
        if not self.is_frame_causal:
            raise ValueError(
                f"{where}: needs is_frame_causal=True (otherwise earlier frames depend on later ones)"
            )
        if not isinstance(cache, FrameKVCache) or len(cache.layers) != len(self.predictor_blocks):
            raise ValueError(f"{where}: cache must come from this predictor's new_cache()")
        if frame_tokens.dim() != 3 or frame_tokens.size(-1) != self.embed_dim:
            raise ValueError(
                f"{where}: frame_tokens must be [B, h*w, {self.embed_dim}], got {tuple(frame_tokens.shape)}"
            )
        batch = action.size(0) if isinstance(action, torch.Tensor) and action.dim() == 2 else frame_tokens.size(0)
        if frame_tokens.size(0) not in (1, batch):
            raise ValueError(f"{where}: frame_tokens has batch {frame_tokens.size(0)}, expected 1 or the batch "
                             f"of action ({batch})")
        self._check_conditioning(where, batch, (), action, state, extrinsics)
        grid = self._frame_grid(frame_tokens.size(1), where)
        if cache.num_frames and (cache.batch_size != batch or cache.grid != grid):
            raise ValueError(
                f"{where}: cache holds batch {cache.batch_size} with grid {cache.grid}, got batch {batch} with "
                f"grid {grid} (use cache.repeat_interleave(n) to share a context among n samples)"
            )

        x = self.predictor_embed(frame_tokens).unsqueeze(1).expand(batch, -1, -1, -1)
        extra = extrinsics.unsqueeze(1) if self.use_extrinsics else None
        x = self._interleave(x, action.unsqueeze(1), state.unsqueeze(1), extra).flatten(1, 2)
        rope = self._rope_signed(cache.num_frames, grid, x.device)
        heads = self.num_heads
        buffers = cache.layer_buffers(batch, heads, x.size(1), self.predictor_embed_dim // heads, x)
        layers = []
        for i, (blk, past) in enumerate(zip(self.predictor_blocks, cache.layers)):
            x, kv = blk.forward_cached(x, rope, past, None if buffers is None else buffers[i])
            layers.append(kv)
        # Commit only after every layer succeeded, so a failed call leaves the cache untouched.
        cache.layers, cache.grid = layers, grid
        cache.num_frames += 1
        return self._readout(x.unsqueeze(1))


def vit_ac_predictor(**kwargs):
    """Official factory: GELU MLP ratio 4, qkv bias, LayerNorm eps 1e-6."""
    return VisionTransformerPredictorAC(
        mlp_ratio=4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs
    )
