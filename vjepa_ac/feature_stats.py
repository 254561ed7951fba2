"""Collapse diagnostics for representations: per-dimension std and effective rank.

A collapsed JEPA encoder maps every input to (nearly) the same vector (std → 0) or to a low-dimensional
subspace (effective rank → 1). Both are cheap to measure on a batch of tokens.

- ``per_dim_std``: std of each feature dimension over all tokens, then averaged over dimensions.
  For layer-normed features a healthy value is O(1); collapse drives it to 0.
- ``effective_rank``: exp of the entropy of the normalised singular values of the centred feature
  matrix (Roy & Vetterli, 2007); between 1 and min(num_tokens, dim).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch


def _as_matrix(features: torch.Tensor) -> torch.Tensor:
    if features.ndim < 2:
        raise ValueError(f"features: expected shape [..., D] with at least 2 dims, got {tuple(features.shape)}")
    return features.detach().reshape(-1, features.shape[-1]).float()


def per_dim_std(features: torch.Tensor) -> float:
    """Mean over dimensions of the std over all tokens (features ``[..., D]``)."""
    x = _as_matrix(features)
    if x.shape[0] < 2:
        raise ValueError(f"features: need at least 2 vectors to measure a std, got {x.shape[0]}")
    return x.std(dim=0).mean().item()


def effective_rank(features: torch.Tensor, max_samples: int = 4096) -> float:
    """exp(entropy of normalised singular values) of the centred ``[..., D]`` features.

    At most ``max_samples`` evenly spaced rows are used, which keeps the SVD cheap.
    """
    x = _as_matrix(features)
    if x.shape[0] > max_samples:
        idx = torch.linspace(0, x.shape[0] - 1, max_samples).long()
        x = x[idx]
    x = x - x.mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(x)
    total = s.sum()
    if total <= 0:
        return 1.0
    p = s / total
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum()).item()


@dataclass(frozen=True)
class FeatureStats:
    std: float
    rank: float
    dim: int

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}_std": self.std, f"{prefix}_rank": self.rank}


def feature_stats(features: torch.Tensor) -> FeatureStats:
    return FeatureStats(std=per_dim_std(features), rank=effective_rank(features), dim=features.shape[-1])


def collapse_message(stats: FeatureStats, name: str, std_threshold: float, rank_threshold: float) -> str | None:
    """A human-readable warning if ``stats`` is below a threshold, else None.

    ``rank_threshold`` is a fraction of the feature dimension (e.g. 0.01 → rank < 1% of D warns).
    """
    problems = []
    if stats.std < std_threshold:
        problems.append(f"per-dim std {stats.std:.3g} < {std_threshold:g}")
    if stats.rank < rank_threshold * stats.dim:
        problems.append(f"effective rank {stats.rank:.3g} < {rank_threshold:g}·D = {rank_threshold * stats.dim:.3g}")
    if not problems:
        return None
    return f"possible representation collapse of {name} features: " + "; ".join(problems)


class CollapseWarning(UserWarning):
    """Raised through ``warnings.warn`` when features look collapsed."""


def warn_if_collapsed(stats: FeatureStats, name: str, std_threshold: float, rank_threshold: float) -> bool:
    msg = collapse_message(stats, name, std_threshold, rank_threshold)
    if msg is not None:
        warnings.warn(msg, CollapseWarning, stacklevel=2)
    return msg is not None
