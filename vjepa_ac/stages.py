"""Stage manifests: the small JSON file each pipeline stage writes and the next stage reads.

A pipeline (the demo, `vjepa_ac.demo`) is a sequence of stages. Each writes ``OUT/manifests/<stage>.json``:

    {"format": "vjepa_ac.stage/1", "stage": "ac", "id": "3f2a9c01b7de",
     "params": {...},    # everything the result depends on: settings, and the ids of the manifests it read
     "outputs": {...}}   # what later stages need: checkpoint, feature store, split, camera, energy file, reports

A later stage reads only ``outputs``, never another stage's private files, and names the manifests it read by
their ``id`` (a hash of their params) in its own params, so a changed stage invalidates everything after it.
`run_stage` reuses a stage whose manifest exists with the same params (a finished stage costs nothing on a
rerun); otherwise it runs the stage (whose own resume logic continues from what it finds) and writes the
manifest last, atomically, so a manifest on disk always describes a finished stage.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

STAGE_FORMAT = "vjepa_ac.stage/1"


def manifest_path(out: str | os.PathLike, stage: str) -> Path:
    return Path(out) / "manifests" / f"{stage}.json"


def _plain(obj: Any) -> Any:
    """As JSON stores it (tuples -> lists, keys -> strings), so params compare equal after a round trip."""
    return json.loads(json.dumps(obj))


def stage_id(params: dict) -> str:
    return hashlib.sha256(json.dumps(_plain(params), sort_keys=True).encode()).hexdigest()[:12]


def write_manifest(out: str | os.PathLike, stage: str, params: dict, outputs: dict) -> dict:
    """Write (atomically) and return the manifest of a finished stage."""
    manifest = {"format": STAGE_FORMAT, "stage": stage, "id": stage_id(params), "params": _plain(params),
                "outputs": _plain(outputs)}
    path = manifest_path(out, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)
    return manifest


def read_manifest(out: str | os.PathLike, stage: str) -> dict:
    """The manifest of ``stage``; a missing or malformed one is one line naming the file and the field."""
    path = manifest_path(out, stage)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest of stage {stage!r} (run that stage first)")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a JSON stage manifest ({e})") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: expected a JSON object (a stage manifest), got "  # noqa: TRY004
                         f"{type(manifest).__name__}")
    for field, expected in (("format", STAGE_FORMAT), ("stage", stage)):
        if manifest.get(field) != expected:
            raise ValueError(f"{path}: {field}: expected {expected!r}, got {manifest.get(field)!r}")
    for field in ("id", "params", "outputs"):
        if field not in manifest:
            raise ValueError(f"{path}: {field}: missing (fields: {sorted(manifest)})")
    return manifest


def run_stage(out: str | os.PathLike, stage: str, params: dict, run: Callable[[], dict],
              log: Callable[[str], None] = print) -> dict:
    """The stage's manifest: reused when one exists with these ``params``, else ``run()``'s outputs, recorded."""
    if manifest_path(out, stage).is_file():
        manifest = read_manifest(out, stage)
        if manifest["params"] == _plain(params):
            log(f"{stage}: finished earlier with these settings, reusing {manifest_path(out, stage)}")
            return manifest
        changed = sorted(k for k in set(manifest["params"]) | set(_plain(params))
                         if manifest["params"].get(k) != _plain(params).get(k))
        log(f"{stage}: settings changed since the last run ({', '.join(changed)}): running it again")
    return write_manifest(out, stage, params, run())
