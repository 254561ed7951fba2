"""Multi-block masks for JEPA pretraining: 3-D (video, V-JEPA 2) and 2-D (images, I-JEPA).

Tokens are indexed as the encoder orders them: ``index = t·h·w + i·w + j`` on a
``duration × height × width`` grid (duration = frames / tubelet size).

A mask sampler returns ``(masks_enc, masks_pred)``: two lists of ``[B, K]`` int64 tensors of
**sorted** token indices — the context the encoder sees and the tokens the predictor must predict.
``JEPATrainer.train_step`` pairs them up: ``masks_enc[i]`` with ``masks_pred[i]``, or, when there is a
single context mask and several target masks (I-JEPA), the one context with every target.

Every mask in a batch must have the same length K (they are stacked). The official code cuts every
mask to the batch minimum by keeping the *lowest* indices, so late frames and bottom rows are dropped
more often. Here the surplus is removed at random: whole "tubes" (one spatial position in every
frame) go first, in a random order, so a mask stays the same through time wherever possible and no
position is favoured (see ``equalize``).

Randomness comes from a ``torch.Generator`` seeded with ``(seed, step, rank)``, so the masks of a
step are reproducible and an exact resume needs nothing but the step counter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MaskConfig:
    """One 3-D multi-block mask generator (the official ``mask`` config entries).

    Per batch one block size is drawn: ``t = max(1, int(duration·U(temporal_scale)))``,
    ``area = height·width·U(spatial_scale)``, aspect ``U(aspect_ratio)``. Per sample ``num_blocks``
    blocks of that size are placed uniformly; their union is predicted, the rest is context.
    ``max_temporal_keep < 1`` additionally hides every frame from ``max(1, int(duration·r))`` on.
    """

    num_blocks: int = 8
    spatial_scale: tuple[float, float] = (0.15, 0.15)
    temporal_scale: tuple[float, float] = (1.0, 1.0)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    max_temporal_keep: float = 1.0

    def __post_init__(self):
        if self.num_blocks < 1:
            raise ValueError(f"MaskConfig.num_blocks: expected >= 1, got {self.num_blocks}")
        for name, lo_bound in (("spatial_scale", 0.0), ("temporal_scale", 0.0), ("aspect_ratio", 0.0)):
            lo, hi = getattr(self, name)
            if not lo_bound < lo <= hi or (name != "aspect_ratio" and hi > 1.0):
                bound = "(0, ∞)" if name == "aspect_ratio" else "(0, 1]"
                raise ValueError(f"MaskConfig.{name}: expected lo <= hi within {bound}, got {(lo, hi)}")
        if not 0.0 < self.max_temporal_keep <= 1.0:
            raise ValueError(f"MaskConfig.max_temporal_keep: expected in (0, 1], got {self.max_temporal_keep}")


# The two generators of every official V-JEPA 2 pretrain/cooldown config: 8 small + 2 large blocks.
VJEPA2_MASKS = (
    MaskConfig(num_blocks=8, spatial_scale=(0.15, 0.15)),
    MaskConfig(num_blocks=2, spatial_scale=(0.7, 0.7)),
)


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


def _randint(g: torch.Generator, high: int) -> int:
    """Uniform integer in [0, high)."""
    return int(torch.randint(high, (), generator=g).item())


def _block_shape(area: float, aspect: float, height: int, width: int) -> tuple[int, int]:
    bh = min(height, max(1, round(math.sqrt(area * aspect))))
    bw = min(width, max(1, round(math.sqrt(area / aspect))))
    return bh, bw


def equalize(index_sets: list[torch.Tensor], spatial_size: int, g: torch.Generator) -> torch.Tensor:
    """Cut every 1-D index set to the smallest length, dropping random whole tubes first; -> ``[B, K]``.

    Each spatial position gets one random key shared by all its frames (plus a tiny per-token jitter),
    and each set keeps its ``K`` lowest-key tokens, sorted by index.
    """
    k = min(len(s) for s in index_sets)
    if k == 0:
        raise ValueError("equalize: a mask in the batch is empty; cannot build equal-length masks")
    out = []
    for s in index_sets:
        if len(s) > k:
            tube_key = torch.rand(spatial_size, generator=g)
            key = tube_key[s % spatial_size] + 1e-3 * torch.rand(len(s), generator=g)
            s = s[key.argsort()[:k]].sort().values
        out.append(s)
    return torch.stack(out)


class MultiBlockMask3D:
    """Samples context / prediction masks for video clips from one or more ``MaskConfig``s."""

    def __init__(self, configs, duration: int, height: int, width: int, max_tries: int = 50):
        self.configs = tuple(configs)
        if not self.configs:
            raise ValueError("MultiBlockMask3D: expected at least one MaskConfig, got none")
        if min(duration, height, width) < 1:
            raise ValueError(f"MultiBlockMask3D: grid must be positive, got {(duration, height, width)}")
        self.duration, self.height, self.width = duration, height, width
        self.max_tries = max_tries

    @property
    def num_tokens(self) -> int:
        return self.duration * self.height * self.width

    def _sample_one(self, cfg: MaskConfig, block: tuple[int, int, int], g: torch.Generator) -> torch.Tensor:
        t, bh, bw = block
        for _ in range(self.max_tries):
            keep = torch.ones(self.duration, self.height, self.width, dtype=torch.bool)
            for _ in range(cfg.num_blocks):
                start = _randint(g, self.duration - t + 1)
                top = _randint(g, self.height - bh + 1)
                left = _randint(g, self.width - bw + 1)
                keep[start:start + t, top:top + bh, left:left + bw] = False
            if cfg.max_temporal_keep < 1.0:
                keep[max(1, int(self.duration * cfg.max_temporal_keep)):] = False
            if keep.any():
                return keep.flatten()
        raise RuntimeError(f"MultiBlockMask3D: {cfg} hid every token of a {self.duration}x{self.height}x"
                           f"{self.width} grid in {self.max_tries} tries; use fewer or smaller blocks")

    def __call__(self, batch_size: int, g: torch.Generator) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        masks_enc, masks_pred = [], []
        hw = self.height * self.width
        for cfg in self.configs:
            t = max(1, int(self.duration * _uniform(g, *cfg.temporal_scale)))
            area = self.height * self.width * _uniform(g, *cfg.spatial_scale)
            bh, bw = _block_shape(area, _uniform(g, *cfg.aspect_ratio), self.height, self.width)
            keeps = [self._sample_one(cfg, (t, bh, bw), g) for _ in range(batch_size)]
            masks_enc.append(equalize([k.nonzero().squeeze(1) for k in keeps], hw, g))
            masks_pred.append(equalize([(~k).nonzero().squeeze(1) for k in keeps], hw, g))
        return masks_enc, masks_pred


class MultiBlockMask2D:
    """I-JEPA masks on an ``height × width`` grid: one context mask, ``num_targets`` target masks.

    Target blocks: scale ``target_scale`` of the grid, aspect ``target_aspect`` (size shared by the
    batch). Context: one block of scale ``context_scale`` and aspect ``context_aspect`` minus the
    union of the targets, with at least ``min_keep`` tokens (else redrawn).
    """

    def __init__(self, height: int, width: int, num_targets: int = 4,
                 target_scale: tuple[float, float] = (0.15, 0.2), target_aspect: tuple[float, float] = (0.75, 1.5),
                 context_scale: tuple[float, float] = (0.85, 1.0), context_aspect: tuple[float, float] = (1.0, 1.0),
                 min_keep: int = 4, max_tries: int = 50):
        if num_targets < 1:
            raise ValueError(f"MultiBlockMask2D.num_targets: expected >= 1, got {num_targets}")
        self.height, self.width, self.num_targets = height, width, num_targets
        self.target_scale, self.target_aspect = target_scale, target_aspect
        self.context_scale, self.context_aspect = context_scale, context_aspect
        self.min_keep, self.max_tries = min_keep, max_tries

    def _block(self, bh: int, bw: int, g: torch.Generator) -> torch.Tensor:
        m = torch.zeros(self.height, self.width, dtype=torch.bool)
        top, left = _randint(g, self.height - bh + 1), _randint(g, self.width - bw + 1)
        m[top:top + bh, left:left + bw] = True
        return m

    def __call__(self, batch_size: int, g: torch.Generator) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        hw = self.height * self.width
        t_shape = _block_shape(hw * _uniform(g, *self.target_scale), _uniform(g, *self.target_aspect),
                               self.height, self.width)
        c_shape = _block_shape(hw * _uniform(g, *self.context_scale), _uniform(g, *self.context_aspect),
                               self.height, self.width)
        contexts, targets = [], [[] for _ in range(self.num_targets)]
        for _ in range(batch_size):
            for _ in range(self.max_tries):
                blocks = [self._block(*t_shape, g) for _ in range(self.num_targets)]
                context = self._block(*c_shape, g) & ~torch.stack(blocks).any(0)
                if context.sum() >= self.min_keep:
                    break
            else:
                raise RuntimeError(f"MultiBlockMask2D: context kept fewer than min_keep={self.min_keep} tokens "
                                   f"in {self.max_tries} tries; use smaller/fewer targets")
            contexts.append(context.flatten().nonzero().squeeze(1))
            for i, b in enumerate(blocks):
                targets[i].append(b.flatten().nonzero().squeeze(1))
        return [equalize(contexts, hw, g)], [equalize(t, hw, g) for t in targets]


def mask_generator(step: int, seed: int, rank: int = 0) -> torch.Generator:
    """The RNG for the masks of one step: a pure function of (seed, step, rank)."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + step * 4_099 + rank) % (2**63))
    return g
