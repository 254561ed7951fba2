"""JEPA regression losses on the predicted tokens, and VICReg variance/covariance terms.

``regression_loss(pred, target, kind, loss_exp)`` with ``kind``:
- ``"lp"``: mean(|pred − target|^p) / p — the official loss; p = ``loss_exp`` (1 → L1, 2 → ½·MSE);
- ``"smooth_l1"``: Huber-like smooth-L1 with ``beta``;
- ``"l2"``: mean squared error.
``pred`` and ``target`` hold only the masked (predicted) tokens, so the mean is over those.

``variance_covariance(z)`` is the VICReg regulariser (also used by C-JEPA): a hinge keeping each
dimension's std above ``gamma`` and a penalty on off-diagonal covariances, over all rows of ``z``.
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
