"""YAML / dict / ``--set`` -> frozen dataclass: the one config loader of the project (no torch).

``from_dict(cls, values, where)`` builds dataclass ``cls`` from a plain (nested) mapping, as
``yaml.safe_load`` gives it, checking every value against the field's type hint:

* a field whose type is a dataclass is built recursively from its sub-mapping (``None`` or a
  missing key keeps that field's default);
* ``int``, ``float``, ``bool``, ``str``, ``tuple[...]``, ``X | None``, ``Literal[...]`` and
  ``Enum`` fields are checked and converted: ``2`` becomes ``2.0`` for a float, the string
  ``"1e-3"`` (which PyYAML leaves a string) becomes ``0.001``, ``1000.0`` becomes ``1000`` for an
  int, a list becomes a tuple element-wise (``[["a", 1]]`` -> ``(("a", 1.0),)``); NaN and
  infinity are refused for float fields; anything else is a ``ConfigError`` naming the file, the
  dotted key and the expected type;
* a key the dataclass does not know is a ``ConfigError`` naming the file, the dotted key path and
  the closest known key (a typo must not silently fall back to a default).

``read_yaml_mapping(path)`` reads a YAML file whose top level is a mapping (a missing file is a
``FileNotFoundError`` naming it, bad YAML a ``ConfigError`` with its line), with YAML 1.2
numbers (``1e-3`` a float, ``010`` ten); ``load_yaml(cls, path, section=None)`` combines the
two and adds the line of an offending key to the error.

``apply_overrides(cfg, ["train.lr=1e-3", ...])`` applies ``--set KEY=VALUE`` overrides to a
config, each value parsed for the target field's type (a str field takes the text as it is; a
tuple field takes ``[a, b]`` or ``a,b``; an optional field takes ``none``).

``ConfigError`` (``mcpc_builder.errors``) is a ``ValueError``; ``cli_entry`` prints it as one line.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import os
import re
import types
import typing
from typing import Any, TypeVar

import yaml

from .errors import ConfigError

T = TypeVar("T")
SET = "--set"


# ------------------------------------------------------------------------------------ reading
class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 numbers: ``1e-3`` is a float (PyYAML's YAML 1.1 rules
    leave it a string) and ``010`` is ten (YAML 1.1: octal eight)."""


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _INT]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
ConfigLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
ConfigLoader.add_implicit_resolver(
    _FLOAT, re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))
ConfigLoader.add_constructor(_INT, lambda loader, node: int(loader.construct_scalar(node)))


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """The top-level mapping of YAML file ``path`` (an empty file gives ``{}``)."""
    try:
        with open(path, encoding="utf-8") as fh:
            values = yaml.load(fh, Loader=ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, "is a directory, not a YAML config file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(path, f"not a UTF-8 text file (byte {err.start})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        raise ConfigError(path, f"invalid YAML: {problem}", where) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(path, "top level of a config must be a mapping")
    return values


# ---------------------------------------------------------------------------- type checking
def _union_args(hint: Any) -> tuple | None:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return None


def describe(hint: Any) -> str:
    """The type ``hint`` in a user's words (``a number``, ``a list of strings``)."""
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a finite number"
    if hint is str:
        return "a string"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in hint)
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    union = _union_args(hint)
    if union is not None:
        parts = [describe(a) for a in union if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in union else "")
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of ({describe(args[0])})"
        return f"a list of {len(args)} values ({'; '.join(describe(a) for a in args)})"
    if dataclasses.is_dataclass(hint):
        return "a mapping (config section)"
    return getattr(hint, "__name__", str(hint))


class _Mismatch(Exception):
    """Internal: value does not fit the hint (turned into a ConfigError with the key)."""


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _scalar(hint: Any, value: Any) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _Mismatch
    if hint is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            text = value.strip()
            try:
                return int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    raise _Mismatch from None
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        raise _Mismatch
    if hint is float:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise _Mismatch from None
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise _Mismatch
            return float(value)
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # `split: 2017` means the name "2017"
        raise _Mismatch
    raise AssertionError(hint)


def _convert(hint: Any, value: Any, where: str, key: str) -> Any:
    """``value`` checked against and shaped by type ``hint``; a ConfigError when it does not fit."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, where, key)
    try:
        return _shape(hint, value, where, key)
    except _Mismatch:
        shown = value if not isinstance(value, str) or len(value) < 60 else value[:57] + "..."
        raise ConfigError(where or "config",
                          f"expected {describe(hint)}, got {shown!r}", key) from None


def _shape(hint: Any, value: Any, where: str, key: str) -> Any:
    if hint in (bool, int, float, str):
        return _scalar(hint, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        for member in hint:
            if value == member.value or value == member.name or value is member:
                return member
        raise _Mismatch
    if typing.get_origin(hint) is typing.Literal:
        if value in typing.get_args(hint) and not isinstance(value, bool):
            return value
        raise _Mismatch
    union = _union_args(hint)
    if union is not None:
        if value is None:
            if type(None) in union:
                return None
            raise _Mismatch
        for arg in union:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where, key)
            except ConfigError:
                continue
        raise _Mismatch
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value))
        if args:
            if len(args) != len(value):
                raise _Mismatch
            return tuple(_convert(a, v, where, f"{key}[{i}]")
                         for i, (a, v) in enumerate(zip(args, value)))
        return tuple(value)
    return value  # Any, dict, list, ...: not checked here


def _build(cls: type[T], values: Any, where: str, prefix: str) -> T:
    if values is None:
        values = {}
    location = where or cls.__name__
    if not isinstance(values, dict):
        raise ConfigError(location, f"config section must be a mapping, got "
                                    f"{type(values).__name__} {values!r}"[:200],
                          prefix or None)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(values) - set(names), key=str)
    if unknown:
        dotted = [f"{prefix}.{k}" if prefix else str(k) for k in unknown]
        close = difflib.get_close_matches(str(unknown[0]), names, n=1)
        hint = f" (did you mean {(prefix + '.' if prefix else '') + close[0]!r}?)" if close else ""
        raise ConfigError(location, f"unknown config key{hint}; known"
                                    f"{' in ' + prefix if prefix else ''}: {sorted(names)}",
                          ", ".join(dotted))
    kwargs = {name: _convert(hints[name], value, where, f"{prefix}.{name}" if prefix else name)
              for name, value in values.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:  # a __post_init__ check: name the file and section
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(location, str(err), prefix or None) from None


def from_dict(cls: type[T], values: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) mapping; ``where`` (e.g. the file) prefixes errors."""
    return _build(cls, values, where, "")


# ------------------------------------------------------------------------ lines of YAML keys
def key_line(path: str | os.PathLike, dotted: str) -> int | None:
    """1-based line of key ``a.b.c`` in YAML file ``path`` (None when it cannot be found)."""
    try:
        with open(path, encoding="utf-8") as fh:
            node = yaml.compose(fh)
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    line = None
    for part in dotted.split("[")[0].split("."):
        if not isinstance(node, yaml.MappingNode):
            return line
        for k, v in node.value:
            if str(k.value) == part:
                line, node = k.start_mark.line + 1, v
                break
        else:
            return line
    return line


def _with_line(err: ConfigError, path: str | os.PathLike) -> ConfigError:
    """``err`` with ``line N`` of its key in ``path`` added to the record."""
    key = err.record.split(", ")[0] if err.record else None
    line = key_line(path, key) if key else None
    if line is None:
        return err
    record = f"line {line}: {err.record}" if err.record else f"line {line}"
    return ConfigError(err.path, err.message, record)


def load_yaml(cls: type[T], path: str | os.PathLike, section: str | None = None) -> T:
    """Load ``cls`` from YAML file ``path``; with ``section``, from that top-level key when present
    (``priors: {...}``) and from the whole file otherwise."""
    values = read_yaml_mapping(path)
    try:
        if section is not None and section in values:
            return _build(cls, values[section], str(path), section)
        return from_dict(cls, values, str(path))
    except ConfigError as err:
        raise _with_line(err, path) from None


# ----------------------------------------------------------------------------- --set values
def field_paths(cls: type) -> dict[str, Any]:
    """Every settable dotted key of dataclass ``cls`` -> its type hint (sections recursed)."""
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            out.update({f"{f.name}.{k}": h for k, h in field_paths(hint).items()})
        else:
            out[f.name] = hint
    return out


def _sections(cls: type) -> set[str]:
    out = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            out.add(f.name)
            out.update(f"{f.name}.{s}" for s in _sections(hint))
    return out


def parse_value(hint: Any, text: str, key: str, where: str = SET) -> Any:
    """The value of ``--set key=text`` for a field of type ``hint``."""
    union = _union_args(hint)
    if union is not None and type(None) in union and text.strip().lower() in ("none", "null", "~", ""):
        return None
    plain = [a for a in union if a is not type(None)] if union is not None else [hint]
    if len(plain) == 1 and plain[0] in (bool, int, float, str):
        # straight from the text: YAML would read `010` as octal 8 and leave `1e-3` a string
        return _convert(plain[0], text, where, key)
    if typing.get_origin(hint) is tuple and not text.lstrip().startswith("["):
        value: Any = [part.strip() for part in text.split(",")] if text.strip() else []
    else:
        try:
            value = yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError:
            value = text
    return _convert(hint, value, where, key)


def parse_overrides(cls: type, items: list[str], where: str = SET) -> dict[str, Any]:
    """``["train.lr=1e-3", ...]`` -> ``{"train.lr": 0.001}``, each value typed for ``cls``."""
    paths = field_paths(cls)
    sections = _sections(cls)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(where, f"expected KEY=VALUE (e.g. train.lr=1e-3), got {item!r}")
        if key in sections:
            inside = sorted(k for k in paths if k.startswith(key + "."))
            raise ConfigError(where, f"is a config section; set one of its keys: {inside}", key)
        if key not in paths:
            close = difflib.get_close_matches(key, list(paths), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {sorted(paths)}"
            raise ConfigError(where, f"unknown config key; {hint}", key)
        out[key] = parse_value(paths[key], text, key, where)
    return out


def replace_path(cfg: T, changes: dict[str, Any], _prefix: str = "") -> T:
    """A copy of nested frozen dataclass ``cfg`` with dotted-key values replaced."""
    top: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            top.setdefault(head, {})[rest] = value
        else:
            flat[head] = value
    for head, sub in top.items():
        flat[head] = replace_path(getattr(cfg, head), sub, f"{_prefix}{head}.")
    try:
        return dataclasses.replace(cfg, **flat)
    except (ValueError, TypeError) as err:  # a __post_init__ check of the config class
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(SET, str(err), ", ".join(_prefix + k for k in sorted(changes))) from None


def apply_overrides(cfg: T, items: list[str], where: str = SET) -> T:
    """``cfg`` with ``--set KEY=VALUE`` overrides applied, each value typed (see module doc)."""
    if not items:
        return cfg
    return replace_path(cfg, parse_overrides(type(cfg), list(items), where))


__all__ = ["apply_overrides", "describe", "field_paths", "from_dict", "key_line", "load_yaml",
           "parse_overrides", "parse_value", "read_yaml_mapping", "replace_path"]
