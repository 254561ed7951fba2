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
