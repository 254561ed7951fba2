"""Typed dataclass configs: YAML presets, command-line overrides and ``--help``, on draccus.

Every stage (pretraining, AC training, the demo) has one config dataclass whose groups are dataclasses too
(the trainers share the groups ``data``, ``model``, ``optim``, ``loss`` and ``run``). draccus (the library
LeRobot uses) turns it into a command line: one flag per field with dotted names (``--optim.lr 3e-4`` or
``--optim.lr=3e-4``), values parsed as YAML (``--data.cameras '[left, wrist]'``), ``--help`` listing every
field with the comment written beside it in the dataclass.

- ``parse_cli(cls, argv, preset_dir, default)``: ``--config NAME_OR_YAML`` picks a preset (``<preset_dir>/
  <name>.yaml``) or file; the other flags override it; ``--print-config`` prints the resolved YAML and exits.
- ``load_config(cls, name_or_path, preset_dir, overrides)``: the same from Python (``overrides`` a nested dict).
- A YAML file may start from another preset with ``base: <name or path>`` (deep-merged, the file's own keys win).
- ``from_dict`` / ``to_dict`` / ``save_yaml`` convert both ways (e.g. the ``config`` stored in checkpoints).

Every error is a ``ConfigError`` naming the file, the dotted field, what was expected and what was found.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import draccus
import draccus.argparsing
import yaml

from droid_data.cli import UsageError, read_yaml_file

T = TypeVar("T")


class ConfigError(UsageError):
    """A config value, file or flag that does not fit; the message names file, field, expected and actual.

    A usage error: the command-line wrapper (``droid_data.cli.run_cli``) exits with code 2."""


def need(ok: bool, field: str, expected: str, actual) -> None:
    """The configs' own checks (``__post_init__``): ``ValueError('<field>: expected <expected>, got <actual>')``."""
    if not ok:
        raise ValueError(f"{field}: expected {expected}, got {actual!r}")


def finite_nonnegative(value: float) -> bool:
    """Learning rates, weight decays and the like: a number, not inf / nan, not negative."""
    return math.isfinite(value) and value >= 0


def _reason(exc: BaseException) -> str:
    """The innermost message of a draccus error (its own wrapper only says the class could not be built)."""
    while exc.__cause__ is not None and not isinstance(exc, draccus.utils.DecodingError):
        exc = exc.__cause__
    if isinstance(exc, draccus.utils.DecodingError):
        return f"{'.'.join(map(str, exc.key_path))}: {exc.message}" if exc.key_path else exc.message
    return str(exc)


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "<dict>") -> T:
    """Build ``cls`` from a (nested) mapping; errors read '<source>: <field>: <what is wrong>'."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of fields for {cls.__name__}, got {type(data).__name__}")
    try:
        return draccus.decode(cls, dict(data))
    except (draccus.utils.DraccusException, ValueError, TypeError) as e:
        raise ConfigError(f"{source}: {_reason(e)}") from None


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-Python (YAML-safe, ``weights_only``-safe) dict of a dataclass; tuples become lists."""
    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v) if f.init}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v
    return plain(obj)


def save_yaml(obj: Any, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(to_dict(obj), sort_keys=False))
    os.replace(tmp, path)


def list_presets(preset_dir: str | os.PathLike, cls: type | None = None) -> list[str]:
    """Preset names in ``preset_dir``; with ``cls`` only those that are valid configs of that class."""
    names = sorted(p.stem for p in Path(preset_dir).glob("*.yaml"))
    if cls is None:
        return names
    valid = []
    for name in names:
        try:
            load_config(cls, name, preset_dir)
        except ConfigError:
            continue  # a preset of another stage (the folder holds all of them)
        valid.append(name)
    return valid


def resolve_preset(name_or_path: str | os.PathLike, preset_dir: str | os.PathLike) -> Path:
    """A YAML path as given, or ``<preset_dir>/<name>.yaml``; the error lists the known presets."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(f"config file {p}: does not exist (expected a YAML file or a preset name)")
        return p
    candidate = Path(preset_dir) / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    raise ConfigError(f"--config {str(name_or_path)!r}: neither a YAML file nor a preset in {preset_dir}; "
                      f"presets: {list_presets(preset_dir)}")


def deep_merge(base: Mapping, top: Mapping) -> dict:
    """``top`` over ``base``; nested mappings are merged key by key."""
    out = dict(base)
    for k, v in top.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def read_yaml(path: str | os.PathLike) -> dict:
    """A YAML mapping; a syntax error is one line with the file, line and column."""
    try:
        data = read_yaml_file(path, "a YAML config") or {}
    except (OSError, ValueError) as e:
        raise ConfigError(str(e)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping of fields at top level, got {type(data).__name__}")
    return data


def read_yaml_with_base(path: Path, preset_dir: str | os.PathLike, _seen: tuple = ()) -> dict:
    """Load a YAML mapping, resolving a ``base: <preset or path>`` key recursively."""
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: base: the chain loops back to itself ({[str(s) for s in _seen]})")
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a preset name or YAML path, got {base!r}")
    base_path = resolve_preset(base, preset_dir)
    return deep_merge(read_yaml_with_base(base_path, preset_dir, _seen + (path.resolve(),)), data)


def load_config(cls: type[T], name_or_path: str | os.PathLike, preset_dir: str | os.PathLike,
                overrides: Mapping[str, Any] | None = None, convert: Callable[[dict, str], dict] | None = None) -> T:
    """Preset name or YAML path (+ ``base:`` inheritance), deep-merged with a nested ``overrides`` dict.

    ``convert(data, source)`` may translate a foreign layout first (e.g. an official vjepa2 YAML file).
    """
    path = resolve_preset(name_or_path, preset_dir)
    data = read_yaml_with_base(path, preset_dir)
    data = deep_merge(convert(data, str(path)) if convert else data, overrides or {})
    return from_dict(cls, data, source=str(path))


def parse_cli(cls: type[T], argv: Sequence[str] | None, preset_dir: str | os.PathLike, default: str | None,
              prog: str | None = None, description: str | None = None,
              convert: Callable[[dict, str], dict] | None = None) -> T:
    """The command line of a stage: ``--config NAME_OR_YAML`` (default ``default``) + dotted field overrides.

    ``--help`` documents every field; ``--print-config`` prints the resolved config as YAML and exits 0.
    Bad flags or values raise ``ConfigError`` (the CLI wrapper prints it as one line, exit code 2).
    """
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    config, print_config = default, False
    rest = []
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name in ("--config", "--config_path"):
            if not eq:
                if not args:
                    raise ConfigError(f"{name}: expected a preset name or YAML path, got nothing")
                value = args.pop(0)
            config = value
        elif arg == "--print-config":
            print_config = True
        else:
            rest.append(arg)
    preset = {}
    source = "defaults"
    if config is not None:
        path = resolve_preset(config, preset_dir)
        preset, source = read_yaml_with_base(path, preset_dir), str(path)
        preset = convert(preset, source) if convert else preset
    with tempfile.TemporaryDirectory() as tmp:
        resolved = Path(tmp) / "config.yaml"  # the preset, bases merged: draccus reads it under the flags
        resolved.write_text(yaml.safe_dump(preset, sort_keys=False))
        parser = draccus.argparsing.ArgumentParser(cls, config_path=resolved, prog=prog, description=description,
                                        exit_on_error=False)
        _document_config_flag(parser, list_presets(preset_dir, cls), default)
        try:
            cfg = parser.parse_args(rest)
        except (draccus.utils.DraccusException, argparse.ArgumentError, ValueError, TypeError) as e:
            # bad flags, values that do not parse, and the configs' own checks: one line naming the field
            reason = _reason(e)
            raise ConfigError(f"{source}: {reason}" if "unrecognized arguments" not in reason else reason) from None
    if print_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        raise SystemExit(0)
    return cfg


def _document_config_flag(parser, presets: list[str], default) -> None:
    """Replace draccus's own --config_path help line by ours (--config takes presets too)."""
    presets = ", ".join(presets)
    for action in parser.parser._actions:
        if (action.help or "").startswith("Config file for "):  # draccus's per-group file flags: not used here
            action.help = argparse.SUPPRESS
        if "--config_path" in action.option_strings:
            action.option_strings = ["--config"]
            action.help = (f"preset name or YAML file (default: {default}); the other flags override it. "
                           f"Presets: {presets}. --print-config prints the resolved config and exits")
