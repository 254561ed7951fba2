"""Typed dataclass configs <-> YAML, with presets and command-line overrides.

- ``from_dict(cls, data, source)`` builds a (possibly nested) dataclass and checks every value
  against the field's type annotation; errors name the source file, the dotted field, the expected
  type and the actual value. Unknown keys are errors (no silently ignored typos).
- ``load_config(cls, name_or_path, preset_dir, overrides)``: a YAML path, or the name of a preset
  ``<preset_dir>/<name>.yaml``. A YAML file may start from another preset with ``base: <name>``
  (deep-merged, the file's own keys win). ``overrides`` are ``dotted.key=value`` strings whose values
  are parsed as YAML (``lr=3e-4``, ``mask.num_blocks=[8,2]``).
- ``to_dict`` / ``save_yaml`` write a config back out (e.g. next to checkpoints).

PyYAML reads ``1e-3`` (no dot) as a string; float fields accept such strings.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value does not fit its field."""


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check (and lightly coerce: int→float, list→tuple, dict→dataclass) ``value`` against ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def fail(extra: str = "") -> typing.NoReturn:
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__}){extra}")

    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        fail()
    if origin is typing.Literal:
        if value in args:
            return value
        fail()
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            fail()
        return _build(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        fail()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        fail()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        fail()
    if tp is str:
        if isinstance(value, str):
            return value
        fail()
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            fail()
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                fail(f"; expected {len(args)} items, got {len(value)}")
            return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            fail()
        ktp, vtp = args if args else (Any, Any)
        return {_convert(k, ktp, f"{where}.<key>"): _convert(v, vtp, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        fail()
    return value


def _build(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown} for {cls.__name__}; "
                          f"valid fields are {sorted(fields)}")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "<dict>") -> T:
    """Build ``cls`` from a mapping; errors read '<source>: <cls>.<field>: expected ..., got ...'."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of fields for {cls.__name__}, got {type(data).__name__}")
    return _build(cls, data, f"{source}: {cls.__name__}")


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-Python (YAML-safe) dict of a dataclass; tuples become lists."""
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


def list_presets(preset_dir: str | os.PathLike) -> list[str]:
    return sorted(p.stem for p in Path(preset_dir).glob("*.yaml"))


def resolve_preset(name_or_path: str | os.PathLike, preset_dir: str | os.PathLike) -> Path:
    """A YAML path as given, or ``<preset_dir>/<name>.yaml``; the error lists the known presets."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise FileNotFoundError(f"config file {p} does not exist")
        return p
    candidate = Path(preset_dir) / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(f"config {str(name_or_path)!r} is neither a YAML file nor a preset in {preset_dir}; "
                            f"presets: {list_presets(preset_dir)}")


def _deep_merge(base: dict, top: Mapping) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def read_yaml_with_base(path: Path, preset_dir: str | os.PathLike, _seen: tuple = ()) -> dict:
    """Load a YAML mapping, resolving a ``base: <preset or path>`` key recursively."""
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself ({[str(s) for s in _seen]})")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at top level, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a preset name or YAML path, got {base!r}")
    base_path = resolve_preset(base, preset_dir)
    return _deep_merge(read_yaml_with_base(base_path, preset_dir, _seen + (path.resolve(),)), data)


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[1,2]"]`` -> ``{"a": {"b": 1}, "c": [1, 2]}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected 'field=value' (e.g. lr=3e-4 or mask.num_blocks=8)")
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def load_config(cls: type[T], name_or_path: str | os.PathLike, preset_dir: str | os.PathLike,
                overrides: Iterable[str] = ()) -> T:
    """Preset name or YAML path (+ ``base:`` inheritance) + ``dotted.key=value`` overrides -> ``cls``."""
    path = resolve_preset(name_or_path, preset_dir)
    data = read_yaml_with_base(path, preset_dir)
    data = _deep_merge(data, parse_overrides(overrides))
    return from_dict(cls, data, source=str(path))
