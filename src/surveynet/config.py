"""Frozen-dataclass configurations: JSON/YAML round trips, ``--set`` overrides and hashes.

Each pipeline defines ``@dataclass(frozen=True, kw_only=True)`` configs with a default for every
field, possibly nested. :func:`from_dict` rejects unknown keys; :func:`apply_overrides` applies
``section.key=value`` strings (values parsed as JSON, else kept as strings).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from surveynet.errors import ConfigError

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """Return a JSON-serialisable nested dict of a dataclass config (tuples become lists)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        return v

    return conv(config)  # type: ignore[no-any-return]


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, _where=where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} does not match {tp}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if args and len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
        return (
            tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=False))
            if args
            else tuple(value)
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} not one of {args}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, _where: str = "") -> T:
    """Build a (nested) frozen dataclass from a dict, rejecting unknown keys.

    Parameters
    ----------
    cls : type
        The dataclass type.
    data : dict
        Values; missing keys take the defaults.

    Returns
    -------
    config : cls

    Raises
    ------
    ConfigError
        On an unknown key or a value of the wrong type.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = _where + "." if _where else ""
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}"
            f"; valid keys: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for k, v in data.items():
        kwargs[k] = _coerce(hints[k], v, f"{_where}.{k}" if _where else k)
    try:
        return cls(**kwargs)  # type: ignore[return-value]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from exc


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        low = text.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        if low in ("none", "null"):
            return None
        return text


def apply_overrides(config: T, overrides: list[str] | tuple[str, ...]) -> T:
    """Apply ``section.key=value`` overrides to a dataclass config.

    Values are parsed as JSON (``3``, ``0.5``, ``[1,2]``, ``true``), otherwise taken as strings.

    Examples
    --------
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Train:
    ...     lr: float = 1e-3
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Cfg:
    ...     train: Train = dataclasses.field(default_factory=Train)
    >>> apply_overrides(Cfg(), ["train.lr=0.01"]).train.lr
    0.01
    """
    data = to_dict(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        key, _, text = item.partition("=")
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"override {item!r}: unknown section {p!r}")
            node = node[p]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {key!r}")
        node[parts[-1]] = _parse_value(text)
    return from_dict(type(config), data)


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON or YAML config file into a dict."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file ({exc.strerror})") from exc
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}: invalid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    return data


def resolve_config(
    cls: type[T], path: str | os.PathLike[str] | None, overrides: list[str] | None
) -> T:
    """Defaults, then the file at ``path`` (if any), then ``overrides``."""
    config = from_dict(cls, load_config_file(path)) if path else cls()
    return apply_overrides(config, overrides or [])


def config_hash(config: Any) -> str:
    """SHA-256 (first 16 hex digits) of the canonical JSON of a config (dataclass or dict)."""
    data = config if isinstance(config, dict) else to_dict(config)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
