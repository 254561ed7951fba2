"""AdamW with the V-JEPA 2 parameter grouping.

For modules ``{"encoder": enc, "predictor": pred}`` the groups come in the official order:
1. encoder weights (decayed), 2. predictor weights (decayed),
3. encoder biases / 1-D params (no decay), 4. predictor biases / 1-D params (no decay).
Each group carries ``name``, ``lr_scale`` (read by ``schedules.LRScheduler``) and ``WD_exclude``
(read by ``schedules.WDScheduler``). Parameters with ``requires_grad=False`` are left out, so a
frozen encoder simply contributes no groups.

Like the official code, the predictor's 3-D ``mask_tokens`` are weight-decayed: the grouping must match
exactly so that an official optimizer state (``opt`` in a checkpoint) loads into ours for a cooldown.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn


def is_decayed(name: str, param: torch.Tensor) -> bool:
    """The official rule: decay every parameter except biases and 1-D parameters (norms)."""
    return param.ndim != 1 and "bias" not in name


def param_groups(
    modules: Mapping[str, nn.Module], lr_scales: Mapping[str, float] | None = None
) -> list[dict]:
    """Decayed groups for every module first, then the non-decayed ones (empty groups are dropped)."""
    lr_scales = dict(lr_scales or {})
    unknown = set(lr_scales) - set(modules)
    if unknown:
        raise ValueError(f"lr_scales: names {sorted(unknown)} are not among the modules {sorted(modules)}")
    decayed, not_decayed = [], []
    for module_name, module in modules.items():
        trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        scale = float(lr_scales.get(module_name, 1.0))
        decayed.append({
            "name": f"{module_name}.decay",
            "params": [p for n, p in trainable if is_decayed(n, p)],
            "lr_scale": scale,
        })
        not_decayed.append({
            "name": f"{module_name}.no_decay",
            "params": [p for n, p in trainable if not is_decayed(n, p)],
            "lr_scale": scale,
            "WD_exclude": True,
            "weight_decay": 0.0,
        })
    return [g for g in decayed + not_decayed if g["params"]]


def build_adamw(
    modules: Mapping[str, nn.Module],
    lr: float,
    weight_decay: float,
    lr_scales: Mapping[str, float] | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    """AdamW over ``param_groups(modules, lr_scales)``; schedulers overwrite lr / wd every step."""
    groups = param_groups(modules, lr_scales)
    if not groups:
        raise ValueError(f"build_adamw: no trainable parameters in modules {sorted(modules)}")
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)


class TrainingDiverged(FloatingPointError):
    """The weights went bad; raised before anything is saved, so the last good checkpoint survives."""


class DivergenceGuard:
    """Check the weights after every optimiser step, so a diverged run never writes a checkpoint.

    The check is on the global L2 norm of the trainable parameters, one fused reduction per step:
    - non-finite (NaN / inf anywhere): the step diverged;
    - more than ``max_growth`` times the norm before the step: the update exploded into finite garbage
      (e.g. lr = 1e9). AdamW moves every weight by at most about lr per step and weight decay pulls the
      norm down, so with any sane learning rate one step changes the norm by a few per cent; a tenfold
      jump in a single step is never training.
    ``check_optimizer`` (before each save) also refuses non-finite optimizer moments.
    """

    def __init__(self, params, max_growth: float = 10.0):
        self.params = [p for p in params if p.requires_grad]
        self.max_growth = max_growth
        self.reset()

    def reset(self) -> None:
        """Take the current weights as the reference (after loading a checkpoint)."""
        self.norm = self._norm()
        if not math.isfinite(self.norm):
            raise TrainingDiverged(f"the starting weights are not finite (global norm {self.norm})")

    def _norm(self) -> float:
        from vjepa_ac.sharding import global_norm

        return global_norm(self.params)  # FSDP: the norm over every rank's shards, the same on every rank

    def check(self, step: int) -> None:
        """Raise ``TrainingDiverged`` if the step left non-finite or exploded weights."""
        norm = self._norm()
        if not math.isfinite(norm):
            raise TrainingDiverged(f"step {step}: the weights are not finite after the optimiser step "
                                   f"(global norm {norm}); stopped before saving")
        if norm > self.max_growth * self.norm:
            raise TrainingDiverged(f"step {step}: the global weight norm jumped from {self.norm:.4g} to {norm:.4g} "
                                   f"(> {self.max_growth:g}x in one step: an exploding update, e.g. a learning rate "
                                   f"far too high); stopped before saving")
        self.norm = norm

    @staticmethod
    def check_optimizer(optimizer: torch.optim.Optimizer, step: int) -> None:
        from vjepa_ac.sharding import all_ranks_any, local

        bad = [name for state in optimizer.state.values() for name, value in state.items()
               if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(local(value)).all()]
        sharded = any(hasattr(p, "to_local") for g in optimizer.param_groups for p in g["params"])
        if all_ranks_any(bool(bad)) if sharded else bad:  # FSDP: each rank sees its own shards; all stop together
            raise TrainingDiverged(f"step {step}: optimizer state {bad[0] if bad else 'on another rank'!r} is not "
                                   "finite; stopped before saving")
