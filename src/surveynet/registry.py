"""Registries: model architectures, numpy engines, config roots and command-line steps.

Plain dicts filled by decorators (as timm's ``register_model``); duplicates raise. Each pipeline
registers everything in its package ``__init__`` (nothing heavy imported there: builders import
torch or the engine when called); :func:`load_pipelines` imports the known pipeline packages (no
package walking). The root command line (:mod:`surveynet.cli`) is generated from
:func:`list_steps` and :func:`group_help`.

Examples
--------
>>> "quasarnet" in list_architectures()
True
>>> get_config("quasar").__name__
'QuasarConfig'
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_ARCHITECTURES: dict[str, Callable[..., Any]] = {}
_NUMPY_ENGINES: dict[str, Callable[..., Any]] = {}
_CONFIGS: dict[str, Callable[[], type]] = {}
_EXAMPLES: dict[str, Callable[[], ArchitectureExample]] = {}


@dataclass(frozen=True)
class ArchitectureExample:
    """A tiny instance of an architecture, for the registry-wide tests (build, save, parity).

    Attributes
    ----------
    config : dict
        Keyword arguments of the registered torch builder (a small model).
    inputs : ndarray
        A batch of inputs in the layout both ``torch_forward`` and ``numpy_forward`` take.
    torch_forward : callable
        ``torch_forward(model, inputs) -> ndarray`` (the model in eval mode, float64 outputs).
    numpy_forward : callable
        ``numpy_forward(engine, inputs) -> ndarray`` with the numpy engine.
    atol : float
        Absolute tolerance of the parity (float64 numpy engine against float32 torch).
    """

    config: dict[str, Any]
    inputs: Any
    torch_forward: Callable[[Any, Any], Any]
    numpy_forward: Callable[[Any, Any], Any]
    atol: float = 1e-5


def _check_name(kind: str, name: str) -> None:
    if not name or name != name.lower() or not name.replace("_", "").isalnum():
        raise ValueError(f"{kind} name {name!r} must be lower_snake_case")


def register_architecture(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a torch model builder ``builder(**config) -> torch.nn.Module`` as ``name``.

    Parameters
    ----------
    name : str
        lower_snake registry name (stored in every model's ``config.json``).

    Returns
    -------
    callable
        A decorator that registers and returns the builder.

    Raises
    ------
    KeyError
        ``name`` is already registered.
    """
    _check_name("architecture", name)

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _ARCHITECTURES:
            raise KeyError(f"architecture {name!r} is already registered")
        _ARCHITECTURES[name] = fn
        return fn

    return deco


def register_numpy_engine(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the numpy-engine builder of architecture ``name``.

    A builder is called as ``builder(tensors, config, **options)``: ``tensors`` the
    ``state_dict``-named arrays, ``config`` the architecture config (the ``config`` block of
    ``config.json``), ``options`` engine options such as ``dtype``.

    Parameters
    ----------
    name : str
        The architecture's registry name.

    Returns
    -------
    callable
        A decorator that registers and returns the builder.

    Raises
    ------
    KeyError
        ``name`` is already registered.
    """
    _check_name("numpy engine", name)

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _NUMPY_ENGINES:
            raise KeyError(f"numpy engine {name!r} is already registered")
        _NUMPY_ENGINES[name] = fn
        return fn

    return deco


def register_config(pipeline: str, factory: Callable[[], type]) -> None:
    """Register the config root of ``pipeline`` (lazily: ``factory()`` returns the class).

    Parameters
    ----------
    pipeline : str
        Pipeline name (``"quasar"``).
    factory : callable
        Returns the config root dataclass; called on first :func:`get_config`, so that
        registering imports nothing.

    Raises
    ------
    KeyError
        ``pipeline`` already has a config root.
    """
    _check_name("pipeline", pipeline)
    if pipeline in _CONFIGS:
        raise KeyError(f"config root of pipeline {pipeline!r} is already registered")
    _CONFIGS[pipeline] = factory


def register_example(name: str) -> Callable[[Callable[[], ArchitectureExample]], Any]:
    """Register the :class:`ArchitectureExample` factory of architecture ``name``.

    Every registered architecture has one; ``tests/test_registry.py`` builds, saves, loads and
    checks the numpy engine of each.

    Parameters
    ----------
    name : str
        The architecture's registry name.

    Returns
    -------
    callable
        The decorator.

    Raises
    ------
    KeyError
        ``name`` already has an example.
    """

    def deco(fn: Callable[[], ArchitectureExample]) -> Callable[[], ArchitectureExample]:
        _check_name("example", name)
        if name in _EXAMPLES:
            raise KeyError(f"example of {name!r} is already registered")
        _EXAMPLES[name] = fn
        return fn

    return deco


def get_example(name: str) -> ArchitectureExample:
    """Return the :class:`ArchitectureExample` of architecture ``name``.

    Parameters
    ----------
    name : str
        The architecture's registry name.

    Returns
    -------
    ArchitectureExample
        A tiny config, inputs and the forward functions.

    Raises
    ------
    KeyError
        No example registered for ``name``.
    """
    load_pipelines()
    try:
        factory = _EXAMPLES[name]
    except KeyError:
        raise KeyError(f"no example for {name!r}; known: {sorted(_EXAMPLES)}") from None
    return factory()


def get_architecture(name: str) -> Callable[..., Any]:
    """Return the torch builder registered as ``name``.

    Parameters
    ----------
    name : str
        Registry name.

    Returns
    -------
    callable
        ``builder(**config)``.

    Raises
    ------
    KeyError
        Unknown name (the known ones are listed).
    """
    load_pipelines()
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {sorted(_ARCHITECTURES)}") from None


def get_numpy_engine(name: str) -> Callable[..., Any]:
    """Return the numpy-engine builder registered for architecture ``name``.

    Parameters
    ----------
    name : str
        Architecture registry name.

    Returns
    -------
    callable
        ``builder(tensors, config, **options)``.

    Raises
    ------
    KeyError
        No engine for ``name``.
    """
    load_pipelines()
    try:
        return _NUMPY_ENGINES[name]
    except KeyError:
        raise KeyError(f"no numpy engine for {name!r}; known: {sorted(_NUMPY_ENGINES)}") from None


def get_config(pipeline: str) -> type:
    """Return the config root dataclass of ``pipeline``.

    Parameters
    ----------
    pipeline : str
        Pipeline name.

    Returns
    -------
    type
        The frozen dataclass that ``--config``/``--set`` resolve.

    Raises
    ------
    KeyError
        No config root registered for ``pipeline``.
    """
    load_pipelines()
    try:
        factory = _CONFIGS[pipeline]
    except KeyError:
        raise KeyError(f"no config root for {pipeline!r}; known: {sorted(_CONFIGS)}") from None
    return factory()


def list_architectures() -> list[str]:
    """Return the names of the registered torch architectures, sorted."""
    load_pipelines()
    return sorted(_ARCHITECTURES)


def list_numpy_engines() -> list[str]:
    """Return the architecture names that have a numpy engine, sorted."""
    load_pipelines()
    return sorted(_NUMPY_ENGINES)


def list_configs() -> list[str]:
    """Return the pipelines that registered a config root, sorted."""
    load_pipelines()
    return sorted(_CONFIGS)


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
        ``add_arguments(parser)`` adds the step's options (called only when the step's parser is
        built, so it may import the pipeline's config).
    run : callable
        ``run(args) -> int`` does the work and returns the exit status.
    """

    group: str
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


_STEPS: dict[tuple[str, str], Step] = {}
_GROUP_HELP: dict[str, str] = {}


def register_group(group: str, help: str) -> None:
    """Declare a command group with its help line.

    Parameters
    ----------
    group : str
        Group name (``quasar``).
    help : str
        One-line help shown by ``surveynet --help``.

    Raises
    ------
    KeyError
        The group was already declared (each pipeline declares its group once, in its
        ``__init__``).
    """
    if group in _GROUP_HELP:
        raise KeyError(f"command group {group!r} is already registered")
    _GROUP_HELP[group] = help


def add_step(
    group: str,
    name: str,
    help: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
) -> None:
    """Register a CLI step ``surveynet GROUP NAME``.

    Parameters
    ----------
    group, name : str
        Group (declared with :func:`register_group` first) and step name.
    help : str
        One-line help.
    add_arguments, run : callable
        See :class:`Step`.

    Raises
    ------
    KeyError
        The group is not declared, or ``(group, name)`` is already registered.
    """
    key = (group, name)
    if group not in _GROUP_HELP:
        raise KeyError(f"command group {group!r} is not declared (call register_group first)")
    if key in _STEPS:
        raise KeyError(f"step {group} {name} is already registered")
    _STEPS[key] = Step(group, name, help, add_arguments, run)


def list_steps() -> list[Step]:
    """Return all registered steps, in pipeline order, then by step name."""
    load_pipelines()
    order = {g: i for i, g in enumerate(_GROUP_HELP)}
    return [_STEPS[k] for k in sorted(_STEPS, key=lambda k: (order.get(k[0], 1 << 30), k))]


def group_help(group: str) -> str:
    """Return the help line of a command group (its name when undeclared).

    Parameters
    ----------
    group : str
        Group name.

    Returns
    -------
    str
        One-line help.
    """
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
