"""YAML / dict -> frozen dataclass: the one config loader of the project (no torch).

``from_dict(cls, values, where)`` builds dataclass ``cls`` from a plain (nested) mapping, as
``yaml.safe_load`` gives it, guided by the field type hints:

* a field whose type is a dataclass is built recursively from its sub-mapping (``None`` or a
  missing key keeps that field's default);
* a ``tuple[...]`` field given a list becomes a tuple, element-wise by the tuple's own hints, so
  ``tuple[tuple[str, float], ...]`` turns ``[["a", 1]]`` into ``(("a", 1.0),)``;
* a ``float`` field given an int becomes a float (``2`` and ``2.0`` load the same config);
* a key the dataclass does not know is a ``ValueError`` naming the file and the dotted key path
  (a typo must not silently fall back to a default).

``read_yaml_mapping(path)`` reads a YAML file whose top level is a mapping (a missing file is a
``FileNotFoundError`` naming it); ``load_yaml(cls, path, section=None)`` combines the two.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """The top-level mapping of YAML file ``path`` (an empty file gives ``{}``)."""
    try:
        with open(path, encoding="utf-8") as fh:
            values = yaml.safe_load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: config file not found") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: top level of a config must be a mapping")
    return values


def _convert(hint: Any, value: Any, where: str, key: str) -> Any:
    """``value`` shaped by type ``hint`` (dataclass, tuple, float); anything else unchanged."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, where, key)
    if typing.get_origin(hint) is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, where, key) for v in value)
        if args and len(args) == len(value):
            return tuple(_convert(a, v, where, key) for a, v in zip(args, value))
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _build(cls: type[T], values: Any, where: str, prefix: str) -> T:
    if values is None:
        values = {}
    location = where or cls.__name__
    if not isinstance(values, dict):
        raise ValueError(f"{location}: config section {prefix or cls.__name__!r} must be a "
                         f"mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names), key=str)
    if unknown:
        dotted = [f"{prefix}.{k}" if prefix else str(k) for k in unknown]
        raise ValueError(f"{location}: unknown config key(s) {dotted}; known"
                         f"{' in ' + prefix if prefix else ''}: {sorted(names)}")
    kwargs = {name: _convert(hints[name], value, where, f"{prefix}.{name}" if prefix else name)
              for name, value in values.items()}
    return cls(**kwargs)


def from_dict(cls: type[T], values: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) mapping; ``where`` (e.g. the file) prefixes errors."""
    return _build(cls, values, where, "")


def load_yaml(cls: type[T], path: str | os.PathLike, section: str | None = None) -> T:
    """Load ``cls`` from YAML file ``path``; with ``section``, from that top-level key when present
    (``priors: {...}``) and from the whole file otherwise."""
    values = read_yaml_mapping(path)
    if section is not None and section in values:
        return _build(cls, values[section], str(path), section)
    return from_dict(cls, values, str(path))


__all__ = ["from_dict", "load_yaml", "read_yaml_mapping"]
