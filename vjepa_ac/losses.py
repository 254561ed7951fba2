"""JEPA regression losses on the predicted tokens, and VICReg variance/covariance terms.

``regression_loss(pred, target, kind, loss_exp)`` with ``kind``:
- ``"lp"``: mean(|pred − target|^p) / p — the official loss; p = ``loss_exp`` (1 → L1, 2 → ½·MSE);
- ``"smooth_l1"``: Huber-like smooth-L1 with ``beta``;
- ``"l2"``: mean squared error.
``pred`` and ``target`` hold only the masked (predicted) tokens, so the mean is over those.

``variance_covariance(z)`` is the VICReg regulariser (also used by C-JEPA): a hinge keeping each
dimension's std above ``gamma`` and a penalty on off-diagonal covariances, over all rows of ``z``.

V-JEPA 2.1 pieces: ``context_distance_weights`` (the dense loss's ``sqrt(distance to the nearest masked token)``),
``layer_norm_levels`` (per-depth target normalisation) and ``level_losses`` (one loss term per supervised depth).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_KINDS = ("lp", "smooth_l1", "l2")


def regression_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "lp", loss_exp: float = 1.0,
                    beta: float = 1.0) -> torch.Tensor:
    if pred.shape != target.shape:
        raise ValueError(f"regression_loss: pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    if kind == "lp":
        if loss_exp <= 0:
            raise ValueError(f"regression_loss: loss_exp must be > 0, got {loss_exp}")
        return (pred - target).abs().pow(loss_exp).mean() / loss_exp
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target, beta=beta)
    if kind == "l2":
        return F.mse_loss(pred, target)
    raise ValueError(f"regression_loss: kind must be one of {LOSS_KINDS}, got {kind!r}")


def variance_covariance(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """VICReg terms of ``z [..., D]`` (flattened to rows): (mean hinge on std, mean squared off-diag cov)."""
    z = z.reshape(-1, z.shape[-1]).float()
    n, d = z.shape
    if n < 2:
        raise ValueError(f"variance_covariance: need at least 2 rows, got {n}")
    z = z - z.mean(dim=0)
    std = torch.sqrt(z.var(dim=0) + eps)
    var_loss = F.relu(gamma - std).mean()
    cov = (z.T @ z) / (n - 1)
    off_diag = cov - torch.diag(torch.diagonal(cov))
    cov_loss = off_diag.pow(2).sum() / d
    return var_loss, cov_loss


# ------------------------------------------------------------------------------------------------------------
# V-JEPA 2.1: dense (context) loss and deep self-supervision (app/vjepa_2_1/train.py, models/utils/masks_dist.py)
# ------------------------------------------------------------------------------------------------------------

def token_positions(ids: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Flat token ids ``[B, K]`` (time-major, then row, then column on a square ``grid_size`` grid) ->
    float ``(t, row, column)`` positions ``[B, K, 3]`` in token units."""
    per_frame = grid_size * grid_size
    t = ids // per_frame
    rest = ids - t * per_frame
    row = rest // grid_size
    return torch.stack([t, row, rest - row * grid_size], dim=-1).float()


def context_distance_weights(masks_pred: torch.Tensor, masks_enc: torch.Tensor, grid_size: int,
                             offset_context_loss: bool = False) -> torch.Tensor:
    """``sqrt(d)`` per context token ``[B, Kc]``: d is the Euclidean distance, in token units over (time, row,
    column), from each context token (``masks_enc``) to the nearest predicted token (``masks_pred``).

    The dense loss divides a context token's error by this, i.e. weights it by ``1 / sqrt(d)``: tokens next to
    the masked region count most. ``offset_context_loss`` first divides d by ``grid_size // 16`` (distances in
    units of a 256 px / patch-16 grid; needs ``grid_size >= 16``). Context and predicted tokens are disjoint,
    so ``d >= 1`` and every weight is at most 1.
    """
    if masks_pred.size(0) != masks_enc.size(0):
        raise ValueError(f"context_distance_weights: masks_pred has {masks_pred.size(0)} rows, masks_enc "
                         f"{masks_enc.size(0)}")
    d = torch.cdist(token_positions(masks_enc, grid_size), token_positions(masks_pred, grid_size)).min(dim=-1).values
    if offset_context_loss:
        if grid_size < 16:
            raise ValueError(f"context_distance_weights: offset_context_loss needs a grid of at least 16 tokens "
                             f"(divides by grid_size // 16), got {grid_size}")
        d = d / (grid_size // 16)
    return d.sqrt()


def layer_norm_levels(h: torch.Tensor, levels: int) -> torch.Tensor:
    """Non-affine layer norm of each of the ``levels`` channel chunks of ``h [..., levels * D]`` on its own
    (the 2.1 targets: every encoder depth is normalised separately)."""
    if h.size(-1) % levels:
        raise ValueError(f"layer_norm_levels: {h.size(-1)} channels do not split into {levels} levels")
    d = h.size(-1) // levels
    return torch.cat([F.layer_norm(c, (d,)) for c in h.split(d, dim=-1)], dim=-1)


def level_losses(pred: torch.Tensor, target: torch.Tensor, levels: int, loss_exp: float = 1.0,
                 weights: torch.Tensor | None = None) -> list[torch.Tensor]:
    """One term per level (deep supervision): ``mean(|pred − target|^p · w) / p`` over the level's channel chunk.

    ``pred``/``target`` ``[B, K, levels * D]``; ``weights`` ``[B, K]`` multiplies each token's error (the dense
    loss passes ``1 / context_distance_weights``). The mean of the terms is the official loss, which takes one
    mean over all channels of all levels.
    """
    if pred.shape != target.shape:
        raise ValueError(f"level_losses: pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    err = (pred - target).abs().pow(loss_exp)
    if weights is not None:
        err = err * weights.unsqueeze(-1)
    return [chunk.mean() / loss_exp for chunk in err.chunk(levels, dim=-1)]
