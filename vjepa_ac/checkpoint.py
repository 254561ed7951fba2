"""Load official-layout V-JEPA 2 checkpoints strictly; save any checkpoint atomically.

Official checkpoints are dicts with ``encoder``, ``predictor``, ``target_encoder``, ``opt``, ``epoch``, ...
whose module state dicts carry DDP/wrapper prefixes (``module.backbone.`` for pretraining, ``module.``
for AC training). ``load_pretrained`` selects one entry, strips those prefixes and loads it strictly:
upstream loads with ``strict=False`` and so silently keeps random weights on any mismatch.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

# Wrapper prefixes: DDP ("module."), upstream's MultiSeqWrapper ("backbone."), torch.compile ("_orig_mod.").
_PREFIXES = ("module.", "backbone.", "_orig_mod.")
# Fixed sin-cos tables that released RoPE checkpoints may still carry (upstream's hub comments on it).
_POSITION_TABLES = ("pos_embed", "predictor_pos_embed")
_MAX_LISTED = 20


def clean_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip leading ``module.`` / ``backbone.`` / ``_orig_mod.`` prefixes (in any order, repeated)."""
    cleaned = {}
    for key, value in state_dict.items():
        new = key
        while new.startswith(_PREFIXES):
            new = new[new.index(".") + 1 :]
        if new in cleaned:
            raise ValueError(f"clean_state_dict: keys collide after stripping prefixes: '{key}' -> '{new}'")
        cleaned[new] = value
    return cleaned


def _describe(source) -> str:
    return f"'{source}'" if isinstance(source, (str, os.PathLike)) else "the given state dict"


def _read(path_or_state_dict, key: str | None) -> dict[str, torch.Tensor]:
    """Load the checkpoint (weights only) and select ``key`` -> a flat name->tensor state dict."""
    src = _describe(path_or_state_dict)
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        path = Path(path_or_state_dict)
        if not path.is_file():
            raise FileNotFoundError(f"load_pretrained: checkpoint file {src} does not exist")
        obj = torch.load(path, map_location="cpu", weights_only=True)
    elif isinstance(path_or_state_dict, Mapping):
        obj = path_or_state_dict
    else:
        raise TypeError(
            f"load_pretrained: expected a checkpoint path or a dict, got {type(path_or_state_dict).__name__}"
        )
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            available = sorted(obj) if isinstance(obj, Mapping) else type(obj).__name__
            raise KeyError(f"load_pretrained: checkpoint {src} has no entry '{key}'; available: {available}")
        obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        entries = (
            sorted(k for k, v in obj.items() if isinstance(v, Mapping)) if isinstance(obj, Mapping) else []
        )
        raise ValueError(
            f"load_pretrained: {src}"
            + (f"['{key}']" if key else "")
            + " is not a state dict of tensors"
            + (f"; pass key= one of {entries}" if entries else "")
        )
    return dict(obj)


def load_pretrained(
    model: nn.Module, path_or_state_dict, key: str | None = None, *, assign: bool = False
) -> nn.Module:
    """Load an official-layout checkpoint into ``model`` strictly.

    path_or_state_dict: a file written by ``torch.save`` (read with ``weights_only=True``), a full
    checkpoint dict, or a state dict. key: the entry to use (``encoder``, ``target_encoder``,
    ``predictor``); ``None`` means the object itself is the state dict.
    assign: adopt the checkpoint's tensors instead of copying into the model's (floating ones cast to
    the model's dtype), so a model built on the ``meta`` device costs no memory before loading.
    Raises ``RuntimeError`` listing missing keys, unexpected keys and shape mismatches.
    Returns ``model``.
    """
    src = _describe(path_or_state_dict) + (f"['{key}']" if key else "")
    state = clean_state_dict(_read(path_or_state_dict, key))
    expected = model.state_dict()

    # A RoPE model has no position table; a leftover sin-cos table in the file is harmless.
    for name in _POSITION_TABLES:
        if name in state and name not in expected and getattr(model, "use_rope", False):
            log.info("load_pretrained: ignoring '%s' from %s (the model uses RoPE)", name, src)
            del state[name]

    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: checkpoint {list(state[k].shape)} vs model {list(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = [f"load_pretrained: {src} does not fit {type(model).__name__}"]
        for title, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if items:
                shown = ", ".join(items[:_MAX_LISTED]) + (
                    f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
                )
                parts.append(f"{len(items)} {title}: {shown}")
        raise RuntimeError("\n  ".join(parts))
    if assign:
        state = {k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=assign)
    return model


def atomic_save(obj, path) -> Path:
    """``torch.save`` to a temp file in the same directory, fsync, then ``os.replace`` onto ``path``.

    A crash at any point leaves either the old file or the new one, never a truncated file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load_encoder(source, *, arch=None, arch_config=None, key=None, device="cpu"):
    """Eval-mode encoder (normalised video ``[B, C, T, H, W]`` in) from any supported checkpoint or folder.

    Official V-JEPA 2 / 2.1 / 2-AC files, this project's checkpoints, bare state dicts and Hugging Face
    V-JEPA 2 folders; the format found is logged. See ``vjepa_ac.formats`` for the formats, the
    ``arch`` / ``arch_config`` rules and ``load_encoder_with_info`` (which also returns what was found).
    """
    # Imported here: formats builds models and reads the hub's presets, which themselves use this module.
    from vjepa_ac.formats import load_encoder as load

    return load(source, arch=arch, arch_config=arch_config, key=key, device=device)
