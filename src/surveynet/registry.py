"""Registries: model architectures and pipeline command-line steps.

Plain dicts filled by decorators (as timm's ``register_model``); duplicates raise. Each pipeline
registers explicitly in its ``__init__``; :func:`load_pipelines` imports the known pipeline
packages (no package walking).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_ARCHITECTURES: dict[str, Callable[..., Any]] = {}
_NUMPY_ENGINES: dict[str, Callable[..., Any]] = {}


def register_architecture(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a torch model builder under ``name`` (lower_snake); duplicates raise."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _ARCHITECTURES:
            raise KeyError(f"architecture {name!r} is already registered")
        _ARCHITECTURES[name] = fn
        return fn

    return deco


def register_numpy_engine(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a numpy-engine builder for architecture ``name``; duplicates raise."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _NUMPY_ENGINES:
            raise KeyError(f"numpy engine {name!r} is already registered")
        _NUMPY_ENGINES[name] = fn
        return fn

    return deco


def get_architecture(name: str) -> Callable[..., Any]:
    """Return the torch builder registered as ``name``."""
    load_pipelines()
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {sorted(_ARCHITECTURES)}") from None


def get_numpy_engine(name: str) -> Callable[..., Any]:
    """Return the numpy-engine builder registered for architecture ``name``."""
    load_pipelines()
    try:
        return _NUMPY_ENGINES[name]
    except KeyError:
        raise KeyError(f"no numpy engine for {name!r}; known: {sorted(_NUMPY_ENGINES)}") from None


def list_architectures() -> list[str]:
    """Names of the registered torch architectures."""
    load_pipelines()
    return sorted(_ARCHITECTURES)


@dataclass(frozen=True)
class Step:
    """A command-line step ``surveynet <group> <name>``.

    Attributes
    ----------
    group, name : str
        Command group (pipeline, ``simulate``, ...) and step name.
    help : str
        One-line help.
    add_arguments : callable
        ``add_arguments(parser)`` adds the step's options.
    run : callable
        ``run(args) -> int`` does the work.
    """

    group: str
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


_STEPS: dict[tuple[str, str], Step] = {}
_GROUP_HELP: dict[str, str] = {}


def register_group(group: str, help: str) -> None:
    """Declare a command group with its help line (idempotent)."""
    _GROUP_HELP.setdefault(group, help)


def add_step(
    group: str,
    name: str,
    help: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
) -> None:
    """Register a CLI step; a duplicate ``(group, name)`` raises."""
    key = (group, name)
    if key in _STEPS:
        raise KeyError(f"step {group} {name} is already registered")
    _GROUP_HELP.setdefault(group, group)
    _STEPS[key] = Step(group, name, help, add_arguments, run)


def list_steps() -> list[Step]:
    """All registered steps, sorted by group then name."""
    load_pipelines()
    return [_STEPS[k] for k in sorted(_STEPS)]


def group_help(group: str) -> str:
    """Help line of a command group."""
    return _GROUP_HELP.get(group, group)


# Packages that register steps and architectures on import, in CLI order. A package that does not
# exist yet is skipped (pipelines land one by one); any other import error propagates.
PIPELINE_MODULES = (
    "surveynet.sim.cli",
    "surveynet.quasar",
    "surveynet.dla",
    "surveynet.sysnet",
    "surveynet.transient",
)

_LOADED = False


def load_pipelines() -> None:
    """Import every pipeline package once so that its registrations run."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in PIPELINE_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name is not None and mod.startswith(exc.name):
                continue
            raise
