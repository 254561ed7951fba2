"""Recognise every checkpoint layout the package reads, in one place, and build strict, eval-mode models.

    encoder = load_encoder("vitl.pt")                                   # any format below
    encoder, info = load_encoder_with_info("facebook-vjepa2-vitl-fpc64-256/")
    encoder, predictor, info = load_ac_model("vjepa2-ac-vitg.pt", arch="vjepa2-ac-vitg")
    info = detect_format("latest.pt")                                   # reads the file, builds nothing

Formats (``CheckpointInfo.format``), checked in this order (table with examples: docs/checkpoints.md):

- ``hf``: a Hugging Face V-JEPA 2 folder (``VJEPA2Model`` / ``VJEPA2ForVideoClassification``): ``config.json``
  with ``model_type: vjepa2`` and ``model.safetensors`` (or shards, or ``pytorch_model.bin``); architecture
  from ``config.json``.
- ``vjepa-ac`` / ``vjepa-pretrain``: this project's AC / pretraining checkpoints: a ``config`` entry with
  ``encoder`` + ``predictor`` specs / with ``model`` + ``data``; architecture from that entry.
- ``official-ac``: the hub's ``vjepa2-ac-vitg.pt`` layout, ``encoder`` + a ``predictor`` with
  ``action_encoder.*``; ``official-ac-train``: the same plus ``opt`` / ``scaler`` / ``epoch`` /
  ``target_encoder`` (an official AC-training checkpoint).
- ``official-2.1``: a V-JEPA 2.1 encoder (keys ``norms_block.*``); ``official``: a V-JEPA 2 encoder
  (``encoder`` / ``target_encoder`` state dicts of the pretraining files and the hub).
- ``state-dict``: a bare encoder state dict (only tensors, with ``patch_embed.proj.weight``).

The encoder entry of a file with several is the first of ``ema_encoder`` (2.1 distilled releases),
``target_encoder`` (the EMA encoder that evaluations, AC training and the current official hub use) and
``encoder``; ``key=`` overrides it. Prefixes ``module.`` / ``backbone.`` / ``_orig_mod.`` are stripped.

Architecture rules for official files without ``arch``/``arch_config``:
1. the file name is a released one (``vitl.pt``, ``vitg-384.pt``, ``vjepa2_1_vitb_dist_vitG_384.pt``, ...):
   the hub's settings for it;
2. otherwise the shapes: width (``patch_embed.proj.weight`` rows), depth (number of ``blocks.i``) and MLP
   width must be one official size (tiny .. gigantic). The number of heads cannot be read from any
   shape; the released ViT-g / ViT-G use 22 / 26 heads (the ``_xformers`` factories), which is what this
   rule picks. Patch, tubelet and channels come from the patch-embedding kernel; RoPE always (every
   released V-JEPA 2 / 2.1 model); resolution 256 px (384 px for 2.1) as the hub builds them, which with
   RoPE only matters for ``img_size`` readers; 2.1 options (image tokenizer, modality tokens) from the
   keys present, ``interpolate_rope`` as the hub sets it. Anything else is refused: pass ``arch``.
An official AC predictor is accepted without ``arch`` only if every shape is the released one
(width 1024, 24 blocks, 7-D actions on a ViT-g); its heads (16), block-causal attention and unused
extrinsics are the release's. Otherwise pass ``arch_config``.

``arch``: a hub name or released file name (``vjepa2_vit_large``, ``vitl``, ``vjepa2-ac-vitg``,
``vjepa2_1_vit_large_384``) or an official factory name (``vit_large``, ``vit_giant_xformers``; the 2.1
factory when the file holds a 2.1 encoder) built with the hub's settings. ``arch_config``: a YAML or JSON
file of the official constructor keyword arguments with sections ``encoder`` and (for AC models)
``predictor``; ``encoder.model_name`` may name an official factory, otherwise the section is the
``VisionTransformer`` options (LayerNorm eps 1e-6 and qkv bias, as every official factory); the
predictor section is ``vit_ac_predictor``'s options (``embed_dim`` defaults to the encoder's).

Hugging Face folders load with ``handle_nonsquare_inputs=False``: transformers' VJEPA2 splits token
indices into (t, row, column) on the config's ``crop_size`` grid, so inputs of another size give the
same outputs as ``VJEPA2Model`` (the official code uses the input's grid; at ``crop_size`` both agree).
Models are built on the ``meta`` device and take the file's tensors (files are memory-mapped), so a
4 GB checkpoint is not held twice.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import hub, models
from .checkpoint import clean_state_dict, load_checkpoint, load_pretrained
from .models import ARCHITECTURES_2_1, VisionTransformer, VisionTransformer21, vit_2_1, vit_ac_predictor
from .models.specs import build_encoder, build_predictor, encoder_spec_from_pretrain_config

log = logging.getLogger(__name__)

FORMATS = {
    "hf": "Hugging Face V-JEPA 2 folder",
    "vjepa-ac": "vjepa-ac AC checkpoint (scripts/train_ac.py)",
    "vjepa-pretrain": "vjepa-ac pretraining checkpoint (scripts/pretrain.py)",
    "official-ac": "official V-JEPA 2-AC file (hub layout)",
    "official-ac-train": "official V-JEPA 2-AC training checkpoint",
    "official-2.1": "official V-JEPA 2.1 checkpoint",
    "official": "official V-JEPA 2 pretraining checkpoint",
    "state-dict": "bare encoder state dict",
}
ENCODER_KEYS = ("ema_encoder", "target_encoder", "encoder")  # preference order
_TRAINING_ENTRIES = ("opt", "scaler", "epoch", "target_encoder")
_HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
# Official factories an official file may hold, in the order shape inference tries them (the released
# ViT-g / ViT-G are the 22 / 26-head "_xformers" variants).
_INFERABLE = (
    "vit_tiny",
    "vit_small",
    "vit_base",
    "vit_large",
    "vit_huge",
    "vit_giant_xformers",
    "vit_gigantic_xformers",
)


class CheckpointFormatError(ValueError):
    """A file or folder no loader accepts; the message names it, what was found and what was expected."""


@dataclass
class CheckpointInfo:
    """What ``detect_format`` / the loaders found. ``runtime`` holds what a world model needs to encode
    frames as in training (``normalize_reps``, ``img_size``, ``tubelet_size``, ``crop_aspect``; AC formats)."""

    format: str
    source: str
    entries: list[str]
    encoder_key: str | None = None
    arch: str | None = None
    runtime: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return FORMATS[self.format]

    def summary(self) -> str:
        """One line: source, format, entry and architecture."""
        parts = [f"{self.source}: {self.description}"]
        if self.encoder_key:
            parts.append(f"encoder from '{self.encoder_key}'")
        if self.arch:
            parts.append(f"architecture: {self.arch}")
        return "; ".join(parts + self.notes)


# ---------------------------------------------------------------------------------------------------
# Reading and recognising
# ---------------------------------------------------------------------------------------------------


def _hf_folder(path: Path) -> Path | None:
    """The Hugging Face folder ``path`` is or points into (its config.json or weights file), else None."""
    folder = path if path.is_dir() else path.parent
    if path.is_file() and path.name not in (*_HF_WEIGHT_FILES, "config.json"):
        return None
    return folder if (folder / "config.json").is_file() else None


def _torch_load(path: Path):
    """Weights-only load (``vjepa_ac.checkpoint.load_checkpoint``, one line naming the file on any failure);
    zip-format files are memory-mapped (nothing is read until used)."""
    return load_checkpoint(path, mmap=zipfile.is_zipfile(path), expected="a V-JEPA checkpoint", any_object=True)


def _is_state_dict(obj) -> bool:
    return (
        isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _entries(obj) -> list[str]:
    return sorted(str(k) for k in obj) if isinstance(obj, Mapping) else [type(obj).__name__]


def _shown(names, limit=12) -> str:
    names = list(names)
    return str(names[:limit])[:-1] + (f", ... ({len(names) - limit} more)]" if len(names) > limit else "]")


_EXPECTED = (
    "expected an official V-JEPA checkpoint (an 'encoder', 'target_encoder' or 'ema_encoder' state dict), "
    "a vjepa-ac checkpoint (with a 'config' entry), an encoder state dict, or a Hugging Face V-JEPA 2 folder "
    "(config.json + model.safetensors)"
)


def _classify(obj, source: str, key: str | None) -> CheckpointInfo:
    """Recognise an already loaded torch checkpoint."""
    entries = _entries(obj)
    if not isinstance(obj, Mapping):
        raise CheckpointFormatError(f"{source}: found a {entries[0]}, {_EXPECTED}")
    if _is_state_dict(obj):
        if "patch_embed.proj.weight" not in clean_state_dict(obj):
            raise CheckpointFormatError(
                f"{source}: found a state dict without 'patch_embed.proj.weight' (keys {_shown(entries)}), {_EXPECTED}"
            )
        return CheckpointInfo("state-dict", source, entries)
    config = obj.get("config")
    if isinstance(config, Mapping):
        if "encoder" in config and "predictor" in config:
            return CheckpointInfo("vjepa-ac", source, entries, key or "encoder", "checkpoint config")
        if "model" in config and "data" in config:
            return CheckpointInfo(
                "vjepa-pretrain", source, entries, key or _encoder_key(obj), "checkpoint config"
            )
        raise CheckpointFormatError(
            f"{source}: its 'config' entry has keys {_shown(sorted(config))}, expected 'encoder' + 'predictor' "
            "(vjepa-ac AC checkpoint) or 'model' + 'data' (vjepa-ac pretraining checkpoint)"
        )
    encoder_key = key or _encoder_key(obj)
    if encoder_key is None:
        raise CheckpointFormatError(f"{source}: found entries {_shown(entries)}, {_EXPECTED}")
    if encoder_key not in obj or not _is_state_dict(obj[encoder_key]):
        raise CheckpointFormatError(
            f"{source}: key '{encoder_key}' is not a state dict of tensors; found entries {_shown(entries)}"
        )
    predictor = obj.get("predictor")
    if _is_state_dict(predictor) and any(k.endswith("action_encoder.weight") for k in predictor):
        training = any(e in obj for e in _TRAINING_ENTRIES)
        return CheckpointInfo(
            "official-ac-train" if training else "official-ac", source, entries, encoder_key
        )
    encoder = clean_state_dict(obj[encoder_key])
    if any(k.startswith("norms_block.") for k in encoder):
        return CheckpointInfo("official-2.1", source, entries, encoder_key)
    if "patch_embed.proj.weight" in encoder:
        return CheckpointInfo("official", source, entries, encoder_key)
    raise CheckpointFormatError(
        f"{source}['{encoder_key}']: keys {_shown(sorted(encoder))} are not a V-JEPA encoder's "
        "(expected patch_embed.proj.weight, blocks.*, norm.* or norms_block.*)"
    )


def _encoder_key(obj: Mapping) -> str | None:
    return next((k for k in ENCODER_KEYS if _is_state_dict(obj.get(k))), None)


def _open(source: str | os.PathLike, key: str | None):
    """-> (info, loaded object or HF folder). One read of the file."""
    path = Path(source)
    folder = _hf_folder(path) if path.exists() else None
    if folder is not None:
        config = _read_hf_config(folder)
        files = sorted(p.name for p in folder.iterdir())
        return CheckpointInfo("hf", str(folder), files, None, "config.json"), (folder, config)
    if path.is_dir():
        files = sorted(p.name for p in path.iterdir())
        raise CheckpointFormatError(f"{path}: a folder with {_shown(files)}; {_EXPECTED}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file or folder")
    obj = _torch_load(path)
    return _classify(obj, str(path), key), obj


def detect_format(source: str | os.PathLike, key: str | None = None) -> CheckpointInfo:
    """Recognise ``source`` (file or Hugging Face folder) without building a model."""
    return _open(source, key)[0]


# ---------------------------------------------------------------------------------------------------
# Building (on the meta device) and loading strictly
# ---------------------------------------------------------------------------------------------------


def _materialize(build, state: Mapping[str, torch.Tensor], where: str) -> nn.Module:
    """Build on the meta device and adopt ``state`` (strict; prefixes stripped; floats cast to float32)."""
    try:
        with torch.device("meta"):
            model = build()
    except (TypeError, ValueError) as exc:
        raise CheckpointFormatError(f"{where}: cannot build the model: {exc}") from exc
    try:
        load_pretrained(model, dict(state), assign=True)
    except RuntimeError as exc:
        # One line: "does not fit <Class>; N missing keys: ...; M shape mismatches: ...".
        reason = str(exc).replace("load_pretrained: the given state dict ", "").replace("\n  ", "; ")
        raise CheckpointFormatError(f"{where}: {reason}") from exc
    return model.eval()


def read_arch_config(path: str | os.PathLike) -> dict[str, dict]:
    """The ``encoder`` / ``predictor`` sections of a YAML or JSON file of official constructor kwargs."""
    from droid_data.cli import read_yaml_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such arch-config file")
    if path.suffix == ".json":  # (YAML 1.1 would read JSON's 1e-5 as a string)
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointFormatError(f"{path}: not a JSON file of constructor kwargs ({e})") from None
    else:
        data = read_yaml_file(path, "a YAML file of official constructor kwargs")
    if not isinstance(data, Mapping) or not data or set(data) - {"encoder", "predictor"}:
        found = _entries(data) if isinstance(data, Mapping) else type(data).__name__
        raise CheckpointFormatError(
            f"{path}: found top-level keys {found}, expected 'encoder' and/or 'predictor' (official constructor kwargs)"
        )
    for name, section in data.items():
        if not isinstance(section, Mapping):
            raise CheckpointFormatError(
                f"{path}: '{name}' must be a mapping of constructor kwargs, got {section!r}"
            )
    return {name: dict(section) for name, section in data.items()}


def _encoder_from_kwargs(section: dict, v2_1: bool, where: str):
    """A builder for the encoder described by an arch-config ``encoder`` section."""
    options = dict(section)
    factory = options.pop("model_name", None)
    if factory is not None:
        valid = ARCHITECTURES_2_1 if v2_1 else _factories()
        if factory not in valid:
            raise CheckpointFormatError(
                f"{where}: encoder.model_name {factory!r} is not one of {sorted(valid)}"
            )
        if v2_1:
            return partial(vit_2_1, factory, **options)
        return partial(getattr(models, factory), **options)
    cls = VisionTransformer21 if v2_1 else VisionTransformer
    return partial(cls, **{"qkv_bias": True, "norm_layer": partial(nn.LayerNorm, eps=1e-6), **options})


def _family_release(v2_1: bool) -> hub.Release:
    """A release of the family, for the hub's resolution (256 px for V-JEPA 2, 384 px for 2.1) and version."""
    return hub.RELEASES["vjepa2_1_vit_large_384" if v2_1 else "vjepa2_vit_large"]


def _infer_encoder(state: Mapping[str, torch.Tensor], v2_1: bool, where: str):
    """(builder, description) of the official size whose shapes ``state`` has (see the module docstring)."""
    weight = state["patch_embed.proj.weight"]
    width = weight.shape[0]
    depth = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("blocks.")), default=-1)
    hidden = state["blocks.0.mlp.fc1.weight"].shape[0] if "blocks.0.mlp.fc1.weight" in state else None
    if "blocks.0.mlp.fc3.weight" in state:
        raise CheckpointFormatError(
            f"{where}: a SwiGLU encoder (mlp.fc3) is no released size; pass arch or arch_config"
        )
    options = {
        "patch_size": weight.shape[-1],
        "in_chans": weight.shape[1],
        "num_frames": 64 if weight.dim() == 5 else 1,
        "use_rope": True,
        "use_sdpa": True,
        "uniform_power": False,
    }
    if weight.dim() == 5:
        options["tubelet_size"] = weight.shape[2]
    if v2_1:
        options["img_temporal_dim_size"] = 1 if "patch_embed_img.proj.weight" in state else None
        options["modality_embedding"] = "video_mod_embed" in state
        options["interpolate_rope"] = True
    size = _family_release(v2_1).img_size
    options["img_size"] = (size, size)
    for name in _INFERABLE:
        build = partial(vit_2_1, name, **options) if v2_1 else partial(getattr(models, name), **options)
        with torch.device("meta"):
            candidate = build()
        if (candidate.embed_dim, len(candidate.blocks), candidate.blocks[0].mlp.fc1.out_features) == (
            width,
            depth,
            hidden,
        ):
            return build, f"{name} (inferred from shapes; {candidate.num_heads} heads)"
    raise CheckpointFormatError(
        f"{where}: width {width}, depth {depth} and MLP width {hidden} match no official "
        f"{'2.1 ' if v2_1 else ''}size ({', '.join(_INFERABLE)}); pass arch or arch_config"
    )


def _encoder_builder(state, info: CheckpointInfo, arch: str | None, arch_config: str | None):
    """(builder, description) for the encoder of an official-layout ``state``."""
    v2_1 = any(k.startswith("norms_block.") for k in state)
    family = "V-JEPA 2.1" if v2_1 else "V-JEPA 2"
    if arch_config is not None:
        sections = read_arch_config(arch_config)
        if "encoder" not in sections:
            raise CheckpointFormatError(f"{arch_config}: no 'encoder' section (found {sorted(sections)})")
        return _encoder_from_kwargs(sections["encoder"], v2_1, str(arch_config)), f"arch-config {arch_config}"
    if arch is not None:
        found = hub.find_release(arch)
        if found is not None:
            name, release = found
            if (release.version == "2.1") != v2_1:
                raise CheckpointFormatError(
                    f"{info.source}: arch {arch!r} is a V-JEPA {release.version} model but the file holds a {family} "
                    f"encoder ({'with' if v2_1 else 'without'} norms_block.* keys)"
                )
            return partial(hub.release_encoder, release), f"preset {name}"
        factories = ARCHITECTURES_2_1 if v2_1 else _factories()
        if arch not in factories:
            raise CheckpointFormatError(
                f"{info.source}: unknown arch {arch!r}; expected a released model "
                f"({', '.join(sorted(hub.RELEASES))}, or their file names) or a {family} factory ({', '.join(sorted(factories))})"
            )
        hub_size = _family_release(v2_1)
        release = hub.Release(f"{arch}.pt", arch, hub_size.img_size, version=hub_size.version)
        return partial(hub.release_encoder, release), f"factory {arch} with the hub's settings"
    found = hub.find_release(Path(info.source).name)
    if found is not None and (found[1].version == "2.1") == v2_1:
        return partial(hub.release_encoder, found[1]), f"preset {found[0]} (by file name)"
    return _infer_encoder(state, v2_1, info.source)


def _factories() -> list[str]:
    """V-JEPA 2 encoder factories that take the hub's options (the ``*_rope`` ones fix use_rope themselves)."""
    excluded = ("vit_2_1", "vit_predictor", "vit_ac_predictor")
    return [
        n for n in models.__all__ if n.startswith("vit_") and not n.endswith("_rope") and n not in excluded
    ]


def _select(obj: Mapping, key: str, source: str) -> dict[str, torch.Tensor]:
    if key not in obj or not _is_state_dict(obj[key]):
        raise CheckpointFormatError(
            f"{source}: no state dict under '{key}'; found entries {_shown(_entries(obj))}"
        )
    return clean_state_dict(obj[key])


# ---------------------------------------------------------------------------------------------------
# Public loaders
# ---------------------------------------------------------------------------------------------------


def load_encoder_with_info(
    source: str | os.PathLike,
    *,
    arch: str | None = None,
    arch_config: str | os.PathLike | None = None,
    key: str | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, CheckpointInfo]:
    """(eval-mode encoder taking normalised video ``[B, C, T, H, W]``, CheckpointInfo) from any format.

    arch / arch_config: see the module docstring (official files only; others carry their architecture).
    key: the entry holding the encoder (default: ema_encoder, then target_encoder, then encoder).
    """
    info, obj = _open(source, key)
    if info.format == "hf":
        if arch is not None or arch_config is not None:
            raise CheckpointFormatError(
                f"{info.source}: a Hugging Face folder's architecture is its config.json; drop arch/arch_config"
            )
        encoder, _, info = _load_hf(*obj, info, with_predictor=False)
    elif info.format == "vjepa-ac":
        encoder = _materialize(
            partial(build_encoder, obj["config"]["encoder"]),
            _select(obj, info.encoder_key, info.source),
            info.source,
        )
    elif info.format == "vjepa-pretrain":
        spec = encoder_spec_from_pretrain_config(obj["config"])
        encoder = _materialize(
            partial(build_encoder, spec), _select(obj, info.encoder_key, info.source), info.source
        )
    else:
        state = obj if info.format == "state-dict" else _select(obj, info.encoder_key, info.source)
        state = clean_state_dict(state)
        build, info.arch = _encoder_builder(state, info, arch, arch_config)
        encoder = _materialize(
            build, state, f"{info.source}['{info.encoder_key}']" if info.encoder_key else info.source
        )
    log.info("load_encoder: %s", info.summary())
    return encoder.to(device), info


def load_encoder(
    source: str | os.PathLike,
    *,
    arch: str | None = None,
    arch_config: str | os.PathLike | None = None,
    key: str | None = None,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """The eval-mode encoder of any supported format (``load_encoder_with_info`` without the info)."""
    return load_encoder_with_info(source, arch=arch, arch_config=arch_config, key=key, device=device)[0]


def load_ac_model(
    source: str | os.PathLike,
    *,
    arch: str | None = None,
    arch_config: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, nn.Module, CheckpointInfo]:
    """(encoder, AC predictor, CheckpointInfo) of a vjepa-ac AC checkpoint or an official AC file, in eval mode.

    ``info.runtime`` holds ``normalize_reps``, ``img_size``, ``tubelet_size`` and ``crop_aspect`` (the
    project's config for its own checkpoints; the official planning setup for official files: layer-normed
    latents, frames center-cropped square to the encoder's resolution, repeated to a 2-frame tubelet).
    """
    info, obj = _open(source, None)
    if info.format == "vjepa-ac":
        if arch is not None or arch_config is not None:
            raise CheckpointFormatError(
                f"{info.source}: a vjepa-ac checkpoint carries its architecture; drop arch/arch_config"
            )
        config = obj["config"]
        encoder = _materialize(
            partial(build_encoder, config["encoder"]), _select(obj, "encoder", info.source), info.source
        )
        predictor = _materialize(
            partial(build_predictor, config["predictor"]), _select(obj, "predictor", info.source), info.source
        )
        info.runtime = dict(config)
    elif info.format in ("official-ac", "official-ac-train"):
        encoder_state = _select(obj, info.encoder_key, info.source)
        predictor_state = _select(obj, "predictor", info.source)
        encoder_build, predictor_build, info.arch = _ac_builders(
            encoder_state, predictor_state, info, arch, arch_config
        )
        encoder = _materialize(encoder_build, encoder_state, f"{info.source}['{info.encoder_key}']")
        predictor = _materialize(
            partial(predictor_build, encoder), predictor_state, f"{info.source}['predictor']"
        )
        info.runtime = official_runtime(encoder)
    else:
        raise CheckpointFormatError(
            f"{info.source}: a {info.description} holds no action-conditioned predictor (entries "
            f"{_shown(info.entries)}); expected a vjepa-ac AC checkpoint or an official AC file ('encoder' + a "
            "'predictor' with action_encoder.*); use it as an encoder (load_encoder / train-ac --model.encoder_checkpoint)"
        )
    log.info("load_ac_model: %s", info.summary())
    return encoder.to(device), predictor.to(device), info


def official_runtime(encoder: nn.Module) -> dict[str, Any]:
    """How the official planning setup encodes frames for an official AC model: layer-normed latents, frames
    center-cropped square to the encoder's resolution, repeated to one tubelet (``VJEPAWorldModel`` options)."""
    return {"normalize_reps": True, "img_size": encoder.img_height, "tubelet_size": encoder.tubelet_size,
            "crop_aspect": 1.0}


def build_ac_architecture(
    arch: str | None = "vjepa2-ac-vitg", arch_config: str | os.PathLike | None = None
) -> tuple[nn.Module, nn.Module, str]:
    """(encoder, AC predictor, description) with random weights, in eval mode: the networks ``load_ac_model``
    builds for an official AC file with the same ``arch`` / ``arch_config``, before any weights arrive (to size
    a model without downloading it: ``benchmarks/full_size_dry_run.py``)."""
    if arch is None and arch_config is None:
        raise ValueError("build_ac_architecture: pass arch (e.g. 'vjepa2-ac-vitg') or arch_config")
    info = CheckpointInfo("official-ac", f"--arch-config {arch_config}" if arch_config else f"--arch {arch}", [])
    # No file: the builders read the states only to infer an architecture, which arch / arch_config make moot.
    encoder_build, predictor_build, description = _ac_builders({}, {}, info, arch, arch_config)
    encoder = encoder_build()
    return encoder.eval(), predictor_build(encoder).eval(), description


def _ac_builders(encoder_state, predictor_state, info, arch, arch_config):
    """(encoder builder, predictor builder taking the encoder, description) of an official AC file."""
    if arch_config is not None:
        sections = read_arch_config(arch_config)
        missing = [s for s in ("encoder", "predictor") if s not in sections]
        if missing:
            raise CheckpointFormatError(
                f"{arch_config}: an AC model needs sections 'encoder' and 'predictor', missing {missing}"
            )
        encoder_build, _ = _encoder_builder(encoder_state, info, None, arch_config)
        options = sections["predictor"]
        return (
            encoder_build,
            lambda encoder: vit_ac_predictor(**{"embed_dim": encoder.embed_dim, **options}),
            f"arch-config {arch_config}",
        )
    if arch is not None:
        found = hub.find_release(arch)
        if found is None or not found[1].action_conditioned:
            ac = [n for n, r in hub.RELEASES.items() if r.action_conditioned]
            raise CheckpointFormatError(
                f"{info.source}: arch {arch!r} is not an action-conditioned release; expected one of "
                f"{ac + [hub.RELEASES[n].file for n in ac]} or --arch-config with 'encoder' and 'predictor'"
            )
        return partial(hub.release_encoder, found[1]), hub.ac_predictor_for, f"preset {found[0]}"
    release = hub.RELEASES["vjepa2_ac_vit_giant"]
    expected = {
        "width": hub.AC_PREDICTOR_OPTIONS["predictor_embed_dim"],
        "depth": hub.AC_PREDICTOR_OPTIONS["depth"],
        "action dim": hub.AC_PREDICTOR_OPTIONS["action_embed_dim"],
        "encoder width": 1408,
    }
    found = {
        "width": predictor_state["predictor_embed.weight"].shape[0]
        if "predictor_embed.weight" in predictor_state
        else None,
        "depth": 1
        + max(
            (int(k.split(".")[1]) for k in predictor_state if k.startswith("predictor_blocks.")), default=-1
        ),
        "action dim": predictor_state["action_encoder.weight"].shape[1],
        "encoder width": encoder_state["patch_embed.proj.weight"].shape[0],
    }
    if found != expected:
        raise CheckpointFormatError(
            f"{info.source}: its AC predictor ({found}) is not the released {release.file} ({expected}); "
            "pass --arch-config with the official 'encoder' and 'predictor' constructor kwargs"
        )
    return (
        partial(hub.release_encoder, release),
        hub.ac_predictor_for,
        f"preset vjepa2_ac_vit_giant (shapes of {release.file})",
    )


# ---------------------------------------------------------------------------------------------------
# Hugging Face folders
# ---------------------------------------------------------------------------------------------------

# transformers' VJEPA2Config defaults, for config.json files that leave a value out.
_HF_DEFAULTS = {
    "patch_size": 16,
    "crop_size": 256,
    "frames_per_clip": 64,
    "tubelet_size": 2,
    "hidden_size": 1024,
    "in_chans": 3,
    "num_attention_heads": 16,
    "num_hidden_layers": 24,
    "mlp_ratio": 4.0,
    "layer_norm_eps": 1e-6,
    "qkv_bias": True,
    "hidden_act": "gelu",
    "pred_hidden_size": 384,
    "pred_num_attention_heads": 12,
    "pred_num_hidden_layers": 12,
    "pred_num_mask_tokens": 10,
    "pred_mlp_ratio": 4.0,
}
# HF name prefix -> official name prefix (first match wins); q/k/v are merged into attn.qkv afterwards.
_HF_RENAMES = (
    ("encoder.embeddings.patch_embeddings.", "encoder", "patch_embed."),
    ("encoder.layernorm.", "encoder", "norm."),
    ("encoder.layer.", "encoder", "blocks."),
    ("predictor.embeddings.predictor_embeddings.", "predictor", "predictor_embed."),
    ("predictor.layernorm.", "predictor", "predictor_norm."),
    ("predictor.layer.", "predictor", "predictor_blocks."),
    ("predictor.proj.", "predictor", "predictor_proj."),
)
_HF_HEADS = ("pooler.", "classifier.")  # VJEPA2ForVideoClassification's head, not part of the encoder


def _read_hf_config(folder: Path) -> dict:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointFormatError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("model_type") != "vjepa2":
        found = config.get("model_type") if isinstance(config, dict) else type(config).__name__
        raise CheckpointFormatError(
            f"{path}: model_type is {found!r}, expected 'vjepa2' (a transformers VJEPA2 model)"
        )
    return {**_HF_DEFAULTS, **config}


def _read_hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if (folder / "model.safetensors").is_file():
        return load_file(folder / "model.safetensors")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return {k: v for shard in shards for k, v in load_file(folder / shard).items()}
    if (folder / "pytorch_model.bin").is_file():
        return _torch_load(folder / "pytorch_model.bin")
    files = sorted(p.name for p in folder.iterdir())
    raise CheckpointFormatError(
        f"{folder}: found {_shown(files)}, expected weights in one of {list(_HF_WEIGHT_FILES)}"
    )


def hf_to_official(state: Mapping[str, torch.Tensor], source: str = "state dict"):
    """Hugging Face VJEPA2 names -> official names: ``(encoder_state, predictor_state, ignored keys)``.

    ``encoder.layer.i.attention.{query,key,value}`` become ``blocks.i.attn.qkv`` (rows q, k, v, as the
    official ``[3, heads, head_dim]`` layout), ``attention.proj`` becomes ``attn.proj``, the stacked
    ``predictor.embeddings.mask_tokens`` ``[n, 1, 1, D]`` become ``mask_tokens.0 .. n-1``. A leading
    ``vjepa2.`` (VJEPA2ForVideoClassification) is removed and its pooler / classifier are ignored.
    """
    parts: dict[str, dict[str, torch.Tensor]] = {"encoder": {}, "predictor": {}}
    ignored, unknown = [], []
    for hf_name, value in state.items():
        name = hf_name.removeprefix("vjepa2.")
        if name.startswith(_HF_HEADS) or name.endswith(
            "position_embeddings"
        ):  # heads; sin-cos tables unused with RoPE
            ignored.append(hf_name)
            continue
        if name == "predictor.embeddings.mask_tokens":
            parts["predictor"].update({f"mask_tokens.{i}": token for i, token in enumerate(value)})
            continue
        for prefix, part, official in _HF_RENAMES:
            if name.startswith(prefix):
                parts[part][official + name[len(prefix) :].replace("attention.", "attn.")] = value
                break
        else:
            unknown.append(hf_name)
    if unknown:
        raise CheckpointFormatError(f"{source}: keys {_shown(unknown)} are not transformers VJEPA2 weights")
    for part in parts.values():
        for name in [n for n in part if ".attn.query." in n]:
            stem, kind = name.split(".attn.query.")
            pieces = [part.pop(f"{stem}.attn.{p}.{kind}", None) for p in ("query", "key", "value")]
            if any(p is None for p in pieces):
                raise CheckpointFormatError(f"{source}: {stem} lacks one of attention.query/key/value.{kind}")
            part[f"{stem}.attn.qkv.{kind}"] = torch.cat(pieces, dim=0)
    return parts["encoder"], parts["predictor"], ignored


def _hf_architecture(config: dict, where: str):
    """(encoder builder, predictor builder) from a transformers VJEPA2 config."""
    if config["hidden_act"] != "gelu":
        raise CheckpointFormatError(
            f"{where}: hidden_act is {config['hidden_act']!r}, only 'gelu' (exact GELU) is supported"
        )
    patch = config["patch_size"]
    if isinstance(patch, (list, tuple)):
        if len(set(patch)) != 1:
            raise CheckpointFormatError(f"{where}: patch_size {patch} is not square")
        patch = patch[0]
    norm = partial(nn.LayerNorm, eps=config["layer_norm_eps"])
    common = {
        "img_size": config["crop_size"],
        "patch_size": patch,
        "num_frames": max(config["frames_per_clip"], 2),  # transformers always uses 3-D tubelets
        "tubelet_size": config["tubelet_size"],
        "qkv_bias": config["qkv_bias"],
        "norm_layer": norm,
        "use_rope": True,
    }
    encoder = partial(
        VisionTransformer,
        **common,
        in_chans=config["in_chans"],
        embed_dim=config["hidden_size"],
        depth=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        mlp_ratio=config["mlp_ratio"],
        handle_nonsquare_inputs=False,  # transformers splits token ids on the crop_size grid
    )
    predictor = partial(
        models.VisionTransformerPredictor,
        config["hidden_size"],
        config["pred_hidden_size"],
        config["pred_num_hidden_layers"],
        config["pred_num_attention_heads"],
        **common,
        mlp_ratio=config["pred_mlp_ratio"],
        use_mask_tokens=True,
        num_mask_tokens=config["pred_num_mask_tokens"],
    )
    return encoder, predictor


def _load_hf(folder: Path, config: dict, info: CheckpointInfo, with_predictor: bool):
    encoder_state, predictor_state, ignored = hf_to_official(_read_hf_weights(folder), str(folder))
    build_encoder, build_predictor = _hf_architecture(config, str(folder / "config.json"))
    encoder = _materialize(build_encoder, encoder_state, f"{folder} (encoder)")
    predictor = None
    if with_predictor:
        if not predictor_state:
            raise CheckpointFormatError(
                f"{folder}: holds no predictor.* weights (expected a VJEPA2Model folder)"
            )
        predictor = _materialize(build_predictor, predictor_state, f"{folder} (predictor)")
    architectures = config.get("architectures") or ["VJEPA2Model"]
    info.arch = f"config.json ({architectures[0]}: {config['hidden_size']} wide, {config['num_hidden_layers']} blocks)"
    if ignored:
        info.notes.append(f"ignored {len(ignored)} classifier/pooler tensors")
    return encoder, predictor, info


def load_hf_vjepa2(folder: str | os.PathLike, *, device: str | torch.device = "cpu"):
    """(encoder, pretraining predictor, CheckpointInfo) of a transformers ``VJEPA2Model`` folder, eval mode.

    The predictor (``VisionTransformerPredictor`` with the config's ``pred_*`` sizes) equals
    ``VJEPA2Model``'s when called with ``mask_index=1`` (transformers' default mask token).
    """
    info, obj = _open(folder, None)
    if info.format != "hf":
        raise CheckpointFormatError(
            f"{folder}: a {info.description}, expected a Hugging Face V-JEPA 2 folder"
        )
    encoder, predictor, info = _load_hf(*obj, info, with_predictor=True)
    log.info("load_hf_vjepa2: %s", info.summary())
    return encoder.to(device), predictor.to(device), info
