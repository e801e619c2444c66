"""Frozen-dataclass configurations: JSON/YAML round trips, ``--set`` overrides, flags and hashes.

Each pipeline defines one ``@dataclass(frozen=True, kw_only=True)`` config root with a default for
every field, in sections (``data``, ``model``, ``train``, ``predict``, ``evaluate`` ...).
:func:`from_dict` rejects unknown keys, naming them; :func:`apply_overrides` applies
``section.key=value`` strings (values parsed as JSON, else kept as strings).

Command-line side (generic, no pipeline knowledge): :func:`add_config_args` adds ``--config FILE``
and repeatable ``--set KEY=VALUE``; :func:`add_config_flag` adds a shortcut flag that sets one key
(``--c-th 0.4`` is ``--set predict.c_th=0.4``; a boolean key gets ``--flag``/``--no-flag``);
:func:`config_from_args` resolves defaults, then the file, then the flags, then ``--set`` (later
wins). :func:`save_config` writes the resolved config as JSON next to an output
(:func:`config_sidecar`), and :func:`header_cards` summarises chosen keys for a FITS header.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import json
import os
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from surveynet.errors import ConfigError

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """Return a JSON-serialisable nested dict of a dataclass config (tuples become lists).

    Parameters
    ----------
    config : dataclass instance
        A (nested) config.

    Returns
    -------
    dict
        Field name -> value, nested dataclasses as dicts.

    Raises
    ------
    TypeError
        ``config`` is not a dataclass instance.

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True)
    ... class Grid:
    ...     edges: tuple[float, ...] = (1.0, 2.0)
    >>> to_dict(Grid())
    {'edges': [1.0, 2.0]}
    """
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

    return conv(config)


def _hints(cls: Any) -> dict[str, Any]:
    """Return the resolved field types of a dataclass, nested sections found via factories too.

    (A dataclass defined in a function or a doctest refers to its section classes by names that
    are not module globals; ``default_factory`` classes resolve them.)
    """
    try:
        return typing.get_type_hints(cls)
    except NameError:
        local: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            factory = f.default_factory
            if isinstance(factory, type):
                local[factory.__name__] = factory
        return typing.get_type_hints(cls, localns=local)


def _suggest(name: str, valid: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` when ``name`` is close to one of ``valid``, else ``""``."""
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
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
        The validated config.

    Raises
    ------
    ConfigError
        On an unknown key (named with its section, with the closest valid key) or a value of the
        wrong type.

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Train:
    ...     epochs: int = 5
    >>> from_dict(Train, {"epochs": 3})
    Train(epochs=3)
    >>> from_dict(Train, {"epoch": 3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    surveynet.errors.ConfigError: unknown config key 'epoch' (did you mean 'epochs'?); ...
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, dict):
        raise ConfigError(f"{_where or cls.__name__}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    names = sorted(f.name for f in dataclasses.fields(cls) if f.init)
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = _where + "." if _where else ""
        what = "key" if len(unknown) == 1 else "keys"
        listed = ", ".join(f"{prefix + k!r}{_suggest(k, names)}" for k in unknown)
        raise ConfigError(f"unknown config {what} {listed}; valid keys: {', '.join(names)}")
    kwargs = {}
    for k, v in data.items():
        kwargs[k] = _coerce(hints[k], v, f"{_where}.{k}" if _where else k)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{_where or cls.__name__}: {exc}") from exc


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


def apply_overrides(config: T, overrides: Sequence[str]) -> T:
    """Apply ``section.key=value`` overrides to a dataclass config.

    Values are parsed as JSON (``3``, ``0.5``, ``[1,2]``, ``true``), otherwise taken as strings;
    later overrides of the same key win.

    Parameters
    ----------
    config : dataclass instance
        The config to start from.
    overrides : sequence of str
        ``section.key=value`` items.

    Returns
    -------
    config : same type as ``config``
        A new, validated config.

    Raises
    ------
    ConfigError
        A malformed item, an unknown section or key (named, with the closest valid one), or a
        value of the wrong type.

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Train:
    ...     lr: float = 1e-3
    ...     amsgrad: bool = True
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Cfg:
    ...     train: Train = dataclasses.field(default_factory=Train)
    >>> apply_overrides(Cfg(), ["train.lr=0.01", "train.amsgrad=false"]).train
    Train(lr=0.01, amsgrad=False)
    >>> apply_overrides(Cfg(), ["train.lrr=0.01"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    surveynet.errors.ConfigError: --set train.lrr=0.01: unknown key 'train.lrr' ...
    """
    data = to_dict(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} is not of the form section.key=value")
        key, _, text = item.partition("=")
        parts = key.strip().split(".")
        node = data
        for i, p in enumerate(parts[:-1]):
            if not isinstance(node.get(p), dict):
                where = ".".join(parts[: i + 1])
                valid = sorted(k for k, v in node.items() if isinstance(v, dict))
                raise ConfigError(
                    f"--set {item}: unknown section {where!r}{_suggest(p, valid)}; "
                    f"valid sections: {', '.join(valid)}"
                )
            node = node[p]
        if parts[-1] not in node:
            raise ConfigError(
                f"--set {item}: unknown key {key.strip()!r}{_suggest(parts[-1], sorted(node))}; "
                f"valid keys: {', '.join(sorted(node))}"
            )
        node[parts[-1]] = _parse_value(text)
    return from_dict(type(config), data)


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON or YAML config file into a dict.

    Parameters
    ----------
    path : path
        ``.json``, ``.yaml`` or ``.yml`` file.

    Returns
    -------
    dict
        The top-level mapping.

    Raises
    ------
    ConfigError
        Unreadable file, invalid JSON/YAML, or a top level that is not a mapping.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file ({exc.strerror})") from exc
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: invalid YAML ({exc})") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}: invalid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    return data


def resolve_config(
    cls: type[T], path: str | os.PathLike[str] | None, overrides: Sequence[str] | None
) -> T:
    """Defaults, then the file at ``path`` (if any), then ``overrides``.

    Parameters
    ----------
    cls : type
        The config root dataclass.
    path : path, optional
        JSON or YAML config file (a partial or full config of ``cls``).
    overrides : sequence of str, optional
        ``section.key=value`` items, applied in order.

    Returns
    -------
    config : cls
        The resolved config.

    Raises
    ------
    ConfigError
        Unknown keys or wrong types, naming the file or the override.
    """
    if path:
        try:
            config = from_dict(cls, load_config_file(path))
        except ConfigError as exc:
            msg = str(exc)
            raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from exc
    else:
        config = cls()
    return apply_overrides(config, list(overrides or []))


def config_hash(config: Any) -> str:
    """Return the SHA-256 (first 16 hex digits) of the canonical JSON of a config.

    Parameters
    ----------
    config : dataclass instance or dict
        The config.

    Returns
    -------
    str
        16 hex digits; key order does not matter, value types do.

    Examples
    --------
    >>> config_hash({"a": 1}) == config_hash({"a": 1.0}), len(config_hash({"a": 1}))
    (False, 16)
    """
    data = config if isinstance(config, dict) else to_dict(config)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def get_key(config: Any, key: str) -> Any:
    """Value of the dotted ``key`` (``"predict.c_th"``) of a dataclass config.

    Parameters
    ----------
    config : dataclass instance or dataclass type
        A config, or its class (then the field's default is returned).
    key : str
        Dotted path of the field.

    Returns
    -------
    Any
        The value (the default when ``config`` is a class).

    Raises
    ------
    ConfigError
        Unknown section or key.

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Train:
    ...     lr: float = 1e-3
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Cfg:
    ...     train: Train = dataclasses.field(default_factory=Train)
    >>> get_key(Cfg, "train.lr"), get_key(Cfg(train=Train(lr=0.1)), "train.lr")
    (0.001, 0.1)
    """
    node = config() if isinstance(config, type) else config
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or part not in {
            f.name for f in dataclasses.fields(node)
        }:
            raise ConfigError(f"unknown config key {key!r}")
        node = getattr(node, part)
    return node


def _field_type(cls: type, key: str) -> Any:
    """Type annotation of the dotted ``key`` of a dataclass type."""
    tp: Any = cls
    for part in key.split("."):
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"unknown config key {key!r}")
        hints = _hints(tp)
        if part not in hints:
            raise ConfigError(f"unknown config key {key!r}")
        tp = hints[part]
    return tp


# ----------------------------------------------------------------------------- command line
_FLAGS_ATTR = "_config_flags"


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE`` and repeatable ``--set section.key=value`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A step's parser.
    """
    parser.add_argument("--config", metavar="FILE", help="config file (JSON or YAML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=5 (repeatable; applied last)",
    )


def add_model_dir_args(parser: argparse.ArgumentParser, data_help: str | None = None) -> None:
    """Add the options of every training step: ``DATA...``, ``--out MODELDIR``, ``--resume``...

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A training step's parser.
    data_help : str, optional
        What the positional ``DATA`` files are (no positional when None).

    Examples
    --------
    >>> p = argparse.ArgumentParser()
    >>> add_model_dir_args(p, "training files")
    >>> a = p.parse_args(["d.npz", "--out", "m", "--resume"])
    >>> a.data, a.out, a.resume, a.overwrite
    (['d.npz'], 'm', True, False)
    """
    if data_help is not None:
        parser.add_argument("data", nargs="+", metavar="DATA", help=data_help)
    parser.add_argument("--out", required=True, metavar="MODELDIR", help="model directory to write")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoint in MODELDIR.work (the training work folder)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing MODELDIR")


def add_predict_io_args(parser: argparse.ArgumentParser, inputs_help: str) -> None:
    """Add the options of every predict step: ``INPUT...``, ``--out CATALOG.fits``, ``--overwrite``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A predict step's parser.
    inputs_help : str
        What the input files are.

    Examples
    --------
    >>> p = argparse.ArgumentParser()
    >>> add_predict_io_args(p, "spectra files")
    >>> a = p.parse_args(["a.fits", "b.fits", "--out", "cat.fits"])
    >>> a.inputs, a.out, a.overwrite
    (['a.fits', 'b.fits'], 'cat.fits', False)
    """
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=inputs_help)
    parser.add_argument("--out", required=True, metavar="CATALOG.fits", help="catalogue to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing catalogue")


def add_config_flag(
    parser: argparse.ArgumentParser,
    *flags: str,
    key: str,
    config_cls: type | None = None,
    help: str = "",
    **kwargs: Any,
) -> None:
    """Add a shortcut flag that sets one config key (``--c-th X`` = ``--set predict.c_th=X``).

    The flag's argparse default is None (not given), so a value from ``--config`` is not
    overwritten by a flag the user did not type. A boolean key gets ``--flag``/``--no-flag``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A step's parser.
    *flags : str
        Option strings, e.g. ``"--c-th"``.
    key : str
        Dotted config key, e.g. ``"predict.c_th"``.
    config_cls : type, optional
        The config root: its field type gives the flag's type (when ``type`` is not in
        ``kwargs``) and its default is shown in the help.
    help : str
        Help text; ``"(config key KEY, default D)"`` is appended.
    **kwargs
        More :meth:`argparse.ArgumentParser.add_argument` arguments (``type``, ``choices``,
        ``metavar``).

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Predict:
    ...     c_th: float = 0.5
    ...     fast: bool = False
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Cfg:
    ...     predict: Predict = dataclasses.field(default_factory=Predict)
    >>> p = argparse.ArgumentParser()
    >>> add_config_args(p)
    >>> add_config_flag(p, "--c-th", key="predict.c_th", config_cls=Cfg)
    >>> add_config_flag(p, "--fast", key="predict.fast", config_cls=Cfg)
    >>> config_from_args(Cfg, p.parse_args(["--c-th", "0.4", "--fast"])).predict
    Predict(c_th=0.4, fast=True)
    >>> config_from_args(Cfg, p.parse_args(["--c-th", "0.4", "--set", "predict.c_th=0.3"])).predict
    Predict(c_th=0.3, fast=False)
    """
    tp = _field_type(config_cls, key) if config_cls is not None else None
    note = f"config key {key}"
    if config_cls is not None:
        note += f", default {get_key(config_cls, key)}"
    text = f"{help} ({note})" if help else note
    if tp is bool:
        kwargs.setdefault("action", argparse.BooleanOptionalAction)
    elif "type" not in kwargs and tp in (int, float, str):
        kwargs["type"] = tp
    kwargs.setdefault("dest", "_cfg_" + key.replace(".", "__"))
    if tp is not bool and "choices" not in kwargs and flags:
        kwargs.setdefault("metavar", flags[0].lstrip("-").upper().replace("-", "_"))
    action = parser.add_argument(*flags, default=None, help=text, **kwargs)
    mapping = dict(parser.get_default(_FLAGS_ATTR) or {})
    mapping[action.dest] = key
    parser.set_defaults(**{_FLAGS_ATTR: mapping})


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """``section.key=value`` items of the shortcut flags that were given (see add_config_flag).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    list of str
        One item per flag given on the command line, as JSON values.
    """
    out = []
    for dest, key in (getattr(args, _FLAGS_ATTR, None) or {}).items():
        value = getattr(args, dest, None)
        if value is not None:
            out.append(f"{key}={json.dumps(value)}")
    return out


def config_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """Resolve a config root from parsed arguments.

    Order (later wins): defaults, ``--config FILE``, shortcut flags, ``--set`` items.

    Parameters
    ----------
    cls : type
        The config root dataclass.
    args : argparse.Namespace
        Parsed arguments of a parser with :func:`add_config_args` (and optionally
        :func:`add_config_flag`).

    Returns
    -------
    config : cls
        The resolved config.

    Raises
    ------
    ConfigError
        Unknown keys or bad values.
    """
    overrides = [*flag_overrides(args), *(getattr(args, "overrides", None) or [])]
    return resolve_config(cls, getattr(args, "config", None), overrides)


# ----------------------------------------------------------------------------- saving
def config_sidecar(output: str | os.PathLike[str]) -> Path:
    """Where the resolved config of ``output`` is saved: ``NAME.config.json`` beside it.

    A directory output keeps it inside, as ``config.json``.

    Parameters
    ----------
    output : path
        The output file (``cat.fits``, ``cat.fits.gz``, ``train.npz``) or directory.

    Returns
    -------
    Path
        The JSON path.

    Examples
    --------
    >>> config_sidecar("out/qn_catalog.fits").as_posix()
    'out/qn_catalog.config.json'
    >>> config_sidecar("out/cat.fits.gz").as_posix()
    'out/cat.config.json'
    """
    p = Path(output)
    if p.is_dir():
        return p / "config.json"
    name = p.name
    for ext in (".gz", ".fz", ".bz2"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return p.with_name(stem + ".config.json")


def save_config(
    config: Any,
    path: str | os.PathLike[str],
    *,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a resolved config as JSON, atomically (temporary file then rename).

    Parameters
    ----------
    config : dataclass instance or dict
        The resolved config.
    path : path
        The JSON file (see :func:`config_sidecar`); replaced if it exists.
    extra : dict, optional
        Top-level keys written next to the config (never read back by :func:`from_dict`; use
        ``{"config": ..., **extra}`` readers only). When given, the file is
        ``{"config": CONFIG, "config_hash": HASH, **extra}``; otherwise it is the config itself, so
        that it can be passed back with ``--config``.

    Returns
    -------
    Path
        ``path``.
    """
    data = config if isinstance(config, dict) else to_dict(config)
    doc = data if extra is None else {"config": data, "config_hash": config_hash(data), **extra}
    p = Path(path)
    tmp = p.with_name(f"{p.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def header_cards(config: Any, keys: dict[str, str]) -> dict[str, tuple[Any, str]]:
    """FITS header cards summarising chosen config keys, plus ``CFGHASH`` of the whole config.

    Parameters
    ----------
    config : dataclass instance
        The resolved config.
    keys : dict
        Card name (at most 8 characters) -> dotted config key.

    Returns
    -------
    dict
        Card name -> (value, comment naming the key); lists become comma-separated strings
        (at most 68 characters).

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Predict:
    ...     c_th: float = 0.5
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Cfg:
    ...     predict: Predict = dataclasses.field(default_factory=Predict)
    >>> header_cards(Cfg(), {"C_TH": "predict.c_th"})["C_TH"]
    (0.5, 'config predict.c_th')
    """
    cards: dict[str, tuple[Any, str]] = {}
    for card, key in keys.items():
        if len(card) > 8:
            raise ValueError(f"FITS card name {card!r} is longer than 8 characters")
        value = get_key(config, key)
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)[:68]
        elif value is None:
            value = ""
        cards[card] = (value, f"config {key}")
    cards["CFGHASH"] = (config_hash(config), "sha256 of the resolved config (first 16 hex)")
    return cards
