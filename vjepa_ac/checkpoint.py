"""Load official-layout V-JEPA 2 checkpoints strictly; save any checkpoint atomically.

Official checkpoints are dicts with ``encoder``, ``predictor``, ``target_encoder``, ``opt``, ``epoch``, ...
whose module state dicts carry DDP/wrapper prefixes (``module.backbone.`` for pretraining, ``module.``
for AC training). ``load_pretrained`` selects one entry, strips those prefixes and loads it strictly:
upstream loads with ``strict=False`` and so silently keeps random weights on any mismatch.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import socket
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
        obj = load_checkpoint(path)
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

    A crash at any point leaves either the old file or the new one, never a truncated file (only a temp file
    ``.<name>.<writer>.<pid>.<random>.tmp``, which ``remove_stale_temps`` deletes when the run restarts).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Who writes is in the name (this machine and pid namespace, and the pid), so a restart can tell its own
    # crashed writers' temps from a live writer's (remove_stale_temps).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_WRITER}.{os.getpid()}.", suffix=".tmp")
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


class CheckpointError(ValueError, KeyError):
    """A file that is not the checkpoint it should be. The message is one line naming the file.

    A ``KeyError`` too, so callers that looked for missing keys keep working.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def load_checkpoint(path: str | os.PathLike, map_location="cpu", expected: str = "a checkpoint",
                    required: tuple[str, ...] = (), *, mmap: bool = False, any_object: bool = False):
    """Read a checkpoint dict written with ``torch.save``, safely; the one loader every module uses.

    Loads with ``weights_only=True``: tensors, numbers, strings and plain containers only, so a file cannot
    run code. Whatever goes wrong is one ``CheckpointError`` line naming the file and what was ``expected``:
    a missing, empty, truncated or non-torch file, a pickle that safe loading refuses (Python objects), a
    file that is not a dict (unless ``any_object``), or a dict without the ``required`` keys.
    (``FileNotFoundError`` for a missing file.) ``mmap`` memory-maps zip-format files (nothing read until used).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file (expected {expected})")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not {expected}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        if "weights only load failed" in str(e).lower():
            raise CheckpointError(f"{path}: not a plain checkpoint (it holds Python objects, which safe loading "
                                  f"does not run); expected {expected} of tensors and plain values") from None
        raise CheckpointError(f"{path}: not a torch.save file (unreadable pickle); expected {expected}") from None
    except (RuntimeError, EOFError, KeyError, IndexError, ValueError, TypeError, AttributeError) as e:
        # what torch.load raises on truncated zips, text and other formats (e.g. "pop from empty list")
        reason = str(e).split(". ")[0].splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path}: not a readable torch.save file (truncated or another format: "
                              f"{reason}); expected {expected}") from None
    if any_object:
        return obj
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, expected {expected} (a dict)")
    missing = [k for k in required if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: not {expected}: missing keys {missing}; it has {sorted(map(str, obj))}")
    return obj


def _writer_id() -> str:
    """This machine and pid namespace as a file-name token (no dots): pids are only comparable within it."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino  # Linux: containers sharing a host name differ here
    except OSError:
        namespace = 0
    return f"{host}~{namespace}"


_WRITER = _writer_id()
# Temp files of writers this process cannot check (another machine sharing the disk, names without a
# writer) are removed once nothing has touched them for an hour; an older name with only a pid, whose process
# is gone here, after 5 minutes.
STALE_TEMP_ANY_S = 3600
STALE_TEMP_DEAD_PID_S = 300


def remove_stale_temps(folder: str | os.PathLike, now: float | None = None) -> list[Path]:
    """Delete temp files that a crashed ``atomic_save`` left in ``folder``; returns what was removed.

    Only ``.<name>.<writer>.<pid>.<random>.tmp`` files (and older ``.<name>[.<pid>].<random>.tmp``) are
    considered, and only when their writer cannot still be writing them:
    - written on this machine and pid namespace by a process that is no longer running: removed at once, so a
      crash loop never piles up temp files;
    - only a pid in the name (older files), no process with it here and untouched for 5 minutes: removed;
    - anything else (another machine's writer on a shared disk) untouched for an hour: removed.
    A live writer keeps its file, and so does this process.
    """
    import time

    folder = Path(folder)
    now = time.time() if now is None else now
    removed = []
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
        try:
            age = now - tmp.stat().st_mtime
        except FileNotFoundError:  # its writer renamed it meanwhile
            continue
        writer, pid = _temp_writer(tmp.name)
        gone = pid is not None and pid != os.getpid() and not _pid_running(pid)
        if (writer == _WRITER and gone) or (writer is None and gone and age >= STALE_TEMP_DEAD_PID_S) \
                or age >= STALE_TEMP_ANY_S:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _temp_writer(name: str) -> tuple[str | None, int | None]:
    """(writer, pid) from a temp name ``.<name>.<writer>.<pid>.<random>.tmp``; older names have no writer."""
    parts = name[1:-len(".tmp")].split(".")  # <name parts>[.<writer>][.<pid>].<random>
    pid = int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None
    writer = parts[-3] if pid is not None and len(parts) >= 4 and "~" in parts[-3] else None
    return writer, pid


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def load_encoder(source, *, arch=None, arch_config=None, key=None, device="cpu"):
    """Eval-mode encoder (normalised video ``[B, C, T, H, W]`` in) from any supported checkpoint or folder.

    Official V-JEPA 2 / 2.1 / 2-AC files, this project's checkpoints, bare state dicts and Hugging Face
    V-JEPA 2 folders; the format found is logged. See ``vjepa_ac.formats`` for the formats, the
    ``arch`` / ``arch_config`` rules and ``load_encoder_with_info`` (which also returns what was found).
    """
    # Imported here: formats builds models and reads the hub's presets, which themselves use this module.
    from vjepa_ac.formats import load_encoder as load

    return load(source, arch=arch, arch_config=arch_config, key=key, device=device)
