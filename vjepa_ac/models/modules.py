"""Building blocks shared by the V-JEPA 2 encoder and predictors.

Layer names (``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1`` ...) follow the official
facebookresearch/vjepa2 code so that its checkpoints load without renaming. The numerics follow it too,
including the RoPE frequency-tiling quirk that the released weights were trained with.
"""

from __future__ import annotations

import difflib
import inspect
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

# ---------------------------------------------------------------------------------------------------
# Constructor options
# ---------------------------------------------------------------------------------------------------

# The official hub passes these misspellings; upstream silently drops them. We honour them as aliases.
_HUB_MISSPELLINGS = {"use_SiLU": "use_silu", "wide_SiLU": "wide_silu"}


def pop_hub_misspellings(cls_name: str, unknown: dict) -> dict:
    """Take the official hub's ``use_SiLU``/``wide_SiLU`` out of ``unknown``, returned under the right names."""
    resolved = {}
    for wrong, right in _HUB_MISSPELLINGS.items():
        if wrong in unknown:
            resolved[right] = unknown.pop(wrong)
            warnings.warn(
                f"{cls_name}: '{wrong}' is the official hub's misspelling of '{right}' (upstream ignores it); "
                f"using {right}={resolved[right]!r}",
                stacklevel=3,
            )
    return resolved


def reject_unknown_options(cls: type, unknown: dict) -> None:
    """Raise a TypeError naming every unknown option (the official classes swallow them silently)."""
    if not unknown:
        return
    params = inspect.signature(cls.__init__).parameters.values()
    valid = [p.name for p in params if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]
    hints = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, valid, n=1)
        hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    raise TypeError(
        f"{cls.__name__} got unknown option(s): {', '.join(hints)}. Valid options: {', '.join(valid)}"
    )


# ---------------------------------------------------------------------------------------------------
# Token selection
# ---------------------------------------------------------------------------------------------------


def as_mask_list(masks, name: str = "masks") -> list[torch.Tensor]:
    """Accept a ``[B, K]`` index tensor or a list of them; check dtype and rank."""
    masks = list(masks) if isinstance(masks, (list, tuple)) else [masks]
    if not masks:
        raise ValueError(
            f"{name}: expected a [B, K] index tensor or a non-empty list of them, got an empty list"
        )
    for i, m in enumerate(masks):
        if (
            not isinstance(m, torch.Tensor)
            or m.dim() != 2
            or m.dtype.is_floating_point
            or m.dtype == torch.bool
        ):
            desc = f"{tuple(m.shape)} {m.dtype}" if isinstance(m, torch.Tensor) else type(m).__name__
            raise ValueError(f"{name}[{i}]: expected integer token indices of shape [B, K], got {desc}")
        if m.shape != masks[0].shape:
            raise ValueError(
                f"{name}[{i}]: every mask must have the shape of {name}[0] {list(masks[0].shape)}, "
                f"got {list(m.shape)}"
            )
    return masks


def apply_masks(x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """Keep the tokens ``x[b, idx]`` of every mask; results are stacked mask-major along the batch."""
    return torch.cat([torch.gather(x, 1, m.unsqueeze(-1).expand(-1, -1, x.size(-1))) for m in masks], dim=0)


# ---------------------------------------------------------------------------------------------------
# 3-D rotary position embedding
# ---------------------------------------------------------------------------------------------------


def rope_axis_dims(head_dim: int) -> int:
    """Dims per axis (time, height, width); the last ``head_dim - 3*s`` dims are left unrotated."""
    return 2 * ((head_dim // 3) // 2)


def _rope_angles(pos: torch.Tensor, dim: int, interleaved: bool = False) -> torch.Tensor:
    """Angles ``[..., dim]`` for positions ``[...]``.

    V-JEPA 2 *tiles* the half-length frequency list (``[w0..wk, w0..wk]``), so both halves of a rotated
    pair generally use different frequencies. That is the official behaviour (upstream PR #15) and the
    released V-JEPA 2 weights depend on it. V-JEPA 2.1 fixed it: ``interleaved`` gives both elements of
    pair i the frequency w_i (``[w0, w0, w1, w1, ...]``), the textbook rotation its weights were trained with.
    """
    omega = torch.arange(dim // 2, dtype=torch.float32, device=pos.device) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    angles = pos.to(torch.float32).unsqueeze(-1) * omega
    if interleaved:
        return angles.repeat_interleave(2, dim=-1)
    return torch.cat([angles, angles], dim=-1)


def rope_table(t: torch.Tensor, h: torch.Tensor, w: torch.Tensor, head_dim: int, interleaved: bool = False):
    """cos/sin tables ``[..., N, head_dim]`` for per-token positions along time, height and width.

    Angles are computed in float32 (upstream uses the dtype of q, i.e. bf16 under autocast) and cast to
    the query dtype when applied. Unrotated trailing dims get angle 0 (cos 1, sin 0), which leaves them
    bit-exactly unchanged. Batched positions ``[B, N]`` give tables shaped ``[B, 1, N, head_dim]`` so they
    broadcast over heads. ``interleaved``: V-JEPA 2.1's frequency layout (see ``_rope_angles``).
    """
    s = rope_axis_dims(head_dim)
    parts = [_rope_angles(p, s, interleaved) for p in (t, h, w)] if s > 0 else []
    rest = head_dim - 3 * s
    if rest:
        parts.append(t.new_zeros((*t.shape, rest), dtype=torch.float32))
    angles = torch.cat(parts, dim=-1)
    if angles.dim() == 3:
        angles = angles.unsqueeze(1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, rope) -> torch.Tensor:
    """Rotate adjacent pairs: ``out = x*cos + y*sin`` with ``y[2i] = -x[2i+1]``, ``y[2i+1] = x[2i]``."""
    cos, sin = rope
    y = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
    return x * cos.to(x.dtype) + y * sin.to(x.dtype)


def rope_signed_tables(rope):
    """(cos, sin) -> (cos, sin with ``apply_rope``'s pair-swap sign folded in) for ``apply_rope_signed``."""
    cos, sin = rope
    signed = sin.clone()
    signed[..., 0::2] = -signed[..., 0::2]
    return cos, signed


def apply_rope_signed(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """``apply_rope`` with the sign taken from the table: ``x*cos + swap(x)*signed_sin``, swap exchanging the
    elements of each pair. Same values (a negation commutes with the product), two passes fewer than
    negating, stacking and flattening a copy of x; used on the planning path."""
    swapped = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    swapped[..., 0::2] = x[..., 1::2]
    swapped[..., 1::2] = x[..., 0::2]
    return torch.addcmul(swapped.mul_(signed_sin.to(x.dtype)), x, cos.to(x.dtype))


def split_token_ids(ids: torch.Tensor, height: int, width: int):
    """Flat token index (t-major, then row, then column) -> (t, i, j) on a ``height x width`` grid."""
    per_frame = height * width
    t = ids // per_frame
    rest = ids - t * per_frame
    i = rest // width
    return t, i, rest - i * width


def block_causal_mask(num_frames: int, tokens_per_frame: int, device=None) -> torch.Tensor:
    """Bool ``[L, L]`` mask (True = may attend): a token sees every token of its own and earlier frames.

    Built on demand at the needed size and on the right device (upstream pre-builds a float
    [T_max*n, T_max*n] matrix on the host in Python loops and copies a slice every forward).
    """
    frame = torch.arange(num_frames * tokens_per_frame, device=device) // tokens_per_frame
    return frame.unsqueeze(1) >= frame.unsqueeze(0)


# ---------------------------------------------------------------------------------------------------
# Fixed sin-cos position tables (encoder / predictor option when use_rope=False)
# ---------------------------------------------------------------------------------------------------


def sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    """[M, dim] table: sin of pos*omega in the first half, cos in the second."""
    if dim % 2:
        raise ValueError(f"sin-cos position table: dim must be even, got {dim}")
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim: int, height: int, width: int) -> np.ndarray:
    """[height*width, dim] table, half the dims for rows and half for columns."""
    gh, gw = np.meshgrid(
        np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij"
    )
    return np.concatenate([sincos_1d(dim // 2, gh), sincos_1d(dim // 2, gw)], axis=1)


def sincos_3d(dim: int, depth: int, height: int, width: int, uniform_power: bool = False) -> np.ndarray:
    """[depth*height*width, dim] table ordered t, h, w; time takes half the dims unless uniform_power."""
    gd, gh, gw = np.meshgrid(
        np.arange(depth, dtype=np.float64),
        np.arange(height, dtype=np.float64),
        np.arange(width, dtype=np.float64),
        indexing="ij",
    )
    if uniform_power:
        d_dim = h_dim = w_dim = int(np.ceil(dim / 6) * 2)
    else:
        d_dim, h_dim, w_dim = dim // 2, dim // 4, dim // 4
    table = np.concatenate([sincos_1d(d_dim, gd), sincos_1d(h_dim, gh), sincos_1d(w_dim, gw)], axis=1)
    return table[:, :dim]


# ---------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample while training."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class MLP(nn.Module):
    """fc1 -> GELU (exact erf) -> fc2."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class SwiGLUFFN(nn.Module):
    """fc3(silu(fc1 x) * fc2 x); with wide_silu the width is 2/3 of hidden, rounded up to a multiple of 8."""

    def __init__(self, in_features, hidden_features=None, out_features=None, wide_silu=True, drop=0.0):
        super().__init__()
        hidden = hidden_features or in_features
        if wide_silu:
            hidden = (int(2 * hidden / 3) + 7) // 8 * 8
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(in_features, hidden)
        self.fc3 = nn.Linear(hidden, out_features or in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc3(F.silu(self.fc1(x)) * self.fc2(x)))


class Attention(nn.Module):
    """Multi-head self-attention with optional RoPE on q/k and an optional boolean attention mask."""

    def __init__(
        self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0.0, proj_drop=0.0, use_sdpa=True
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"Attention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        # Like upstream, qk_scale only affects the explicit (non-SDPA) path; SDPA uses 1/sqrt(head_dim).
        self.scale = qk_scale or self.head_dim**-0.5
        self.use_sdpa = use_sdpa
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def project(self, x, rope=None, frame_layout=None):
        """x [B, N, C] -> q, k, v [B, heads, N, head_dim] (q and k rotated when rope is given)."""
        # The 3*C outputs are laid out [3, heads, head_dim].
        qkv = self.qkv(x) if frame_layout is None else self._grouped_qkv(x, *frame_layout)
        q, k, v = qkv.unflatten(-1, (3, self.num_heads, self.head_dim)).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        return q, k, v

    def project_signed(self, x, signed_rope=None):
        """``project`` with RoPE tables from ``rope_signed_tables`` ``[N, head_dim]``, rotating q and k in one
        pass over the qkv output (the planning path)."""
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim))  # [B, N, 3, heads, head_dim]
        if signed_rope is None:
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            return q, k, v
        cos, signed_sin = (t[:, None, None] for t in signed_rope)  # broadcast over (q/k, heads)
        qk = apply_rope_signed(qkv[:, :, :2], cos, signed_sin).permute(2, 0, 3, 1, 4)
        return qk[0], qk[1], qkv[:, :, 2].transpose(1, 2)

    def _grouped_qkv(self, x, cond_tokens, frame_len):
        """qkv for frames laid out [cond_0 .. cond_{c-1}, patches ...] (AC predictor).

        Upstream applies the qkv layer to each conditioning slot and to the patch tokens in separate
        matrix products. Mathematically that is one product; doing it the same way keeps the matrix
        shapes, hence the float rounding, identical to upstream (bit-exact outputs, even for deep models).
        """
        frames = x.view(x.size(0), -1, frame_len, x.size(-1))
        parts = [self.qkv(frames[:, :, i : i + 1].flatten(1, 2)).unsqueeze(2) for i in range(cond_tokens)]
        patches = self.qkv(frames[:, :, cond_tokens:].flatten(1, 2))
        parts.append(patches.view(frames.size(0), frames.size(1), frame_len - cond_tokens, -1))
        return torch.cat(parts, dim=2).flatten(1, 2)

    def attend(self, q, k, v, attn_mask=None):
        """Softmax attention of q over (k, v), then the output projection -> [B, Nq, C]."""
        drop = self.attn_drop if self.training else 0.0
        if self.use_sdpa or attn_mask is not None:
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=drop)
        else:
            attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            x = F.dropout(attn, drop) @ v
        return self.proj_drop(self.proj(x.transpose(1, 2).flatten(2)))

    def forward(self, x, rope=None, attn_mask=None, frame_layout=None):
        return self.attend(*self.project(x, rope, frame_layout), attn_mask=attn_mask)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1 x)``, then ``x + mlp(norm2 x)``."""

    def __init__(
        self,
        dim,
        num_heads,
        mlp_ratio=4.0,
        qkv_bias=False,
        qk_scale=None,
        drop=0.0,
        attn_drop=0.0,
        drop_path=0.0,
        use_silu=False,
        wide_silu=True,
        norm_layer=nn.LayerNorm,
        use_sdpa=True,
    ):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop, use_sdpa)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        hidden = int(dim * mlp_ratio)
        if use_silu:
            self.mlp = SwiGLUFFN(dim, hidden, wide_silu=wide_silu, drop=drop)
        else:
            self.mlp = MLP(dim, hidden, drop=drop)

    def forward(self, x, rope=None, attn_mask=None, frame_layout=None):
        x = x + self.drop_path(self.attn(self.norm1(x), rope, attn_mask, frame_layout))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def forward_cached(self, x, rope, past_kv, kv_buffer=None):
        """Process new tokens that may attend to cached keys/values plus themselves (no mask needed).

        Returns the block output and the extended (keys, values) for the cache. q, k and v come from one
        qkv product over all new tokens: the full forward splits it as upstream does (bit-exact parity), but
        here speed matters, and one contiguous product is cheaper than upstream's strided batched ones. The
        two differ only by float rounding.

        ``rope``: ``(cos, signed_sin)`` from ``rope_signed_tables`` (or None). ``kv_buffer``: preallocated
        ``(keys, values)`` ``[B, heads, capacity, head_dim]`` whose first ``past_kv`` length tokens hold the past
        (no autograd): the new keys/values are written after them instead of concatenating a copy of the whole
        past at every step. Without it the past is concatenated, which autograd can follow.
        """
        q, k, v = self.attn.project_signed(self.norm1(x), rope)
        start = 0 if past_kv is None else past_kv[0].size(2)
        if kv_buffer is not None:
            end = start + k.size(2)
            kv_buffer[0][:, :, start:end] = k
            kv_buffer[1][:, :, start:end] = v
            k, v = kv_buffer[0][:, :, :end], kv_buffer[1][:, :, :end]
        elif past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        x = x + self.drop_path(self.attn.attend(q, k, v))
        return x + self.drop_path(self.mlp(self.norm2(x))), (k, v)


def make_blocks(depth, dim, num_heads, drop_path_rate=0.0, **block_options) -> nn.ModuleList:
    """``depth`` identical blocks with a stochastic-depth rate rising linearly from 0 to drop_path_rate."""
    rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # no tensor: works on meta too
    return nn.ModuleList(Block(dim, num_heads, drop_path=rate, **block_options) for rate in rates)


def run_blocks(
    blocks, x, rope=None, attn_mask=None, checkpointing=False, out_layers=None, norm=None, frame_layout=None
):
    """Apply blocks in order, optionally with activation checkpointing; collect ``norm(x)`` at out_layers."""
    outs = []
    for i, blk in enumerate(blocks):
        if checkpointing and torch.is_grad_enabled():
            x = torch.utils.checkpoint.checkpoint(blk, x, rope, attn_mask, frame_layout, use_reentrant=False)
        else:
            x = blk(x, rope, attn_mask, frame_layout)
        if out_layers is not None and i in out_layers:
            outs.append(norm(x))
    return (x, outs) if out_layers is not None else x


# ---------------------------------------------------------------------------------------------------
# Initialisation (same scheme as upstream)
# ---------------------------------------------------------------------------------------------------


def init_weights(module: nn.Module, std: float) -> None:
    """trunc_normal(std) for Linear/Conv weights (bounds +-2, absolute), zero biases, LayerNorm 1/0."""
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d)):
        nn.init.trunc_normal_(module.weight, std=std, a=-2.0, b=2.0)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


@torch.no_grad()
def rescale_blocks(blocks) -> None:
    """Divide attn.proj and mlp.fc2 weights of block i (1-based) by sqrt(2i).

    With SwiGLU this hits fc2 (the value branch), not the output fc3 -- kept as upstream does it.
    """
    for i, blk in enumerate(blocks, start=1):
        blk.attn.proj.weight.div_(math.sqrt(2.0 * i))
        blk.mlp.fc2.weight.div_(math.sqrt(2.0 * i))
