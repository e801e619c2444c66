"""Registrations of the dla core (architectures, numpy engines, bench). Imports nothing heavy."""

from __future__ import annotations

from typing import Any

from surveynet.bench import register_bench
from surveynet.registry import register_architecture, register_numpy_engine


@register_architecture("dla_window_cnn")
def _build_window_cnn(**config: Any) -> Any:
    """Torch window CNN (lazy torch import)."""
    from surveynet.dla.model import build_window_cnn

    return build_window_cnn(**config)


@register_architecture("dla_fcn")
def _build_fcn(**config: Any) -> Any:
    """Torch fully-convolutional finder (lazy torch import)."""
    from surveynet.dla.model import build_fcn

    return build_fcn(**config)


@register_architecture("dla_refiner")
def _build_refiner(**config: Any) -> Any:
    """Torch second-stage localiser (lazy torch import)."""
    from surveynet.dla.model import build_refiner

    return build_refiner(**config)


@register_numpy_engine("dla_window_cnn")
def _window_engine(tensors: Any, config: Any, **kwargs: Any) -> Any:
    """Numpy engine of the window CNN."""
    from surveynet.dla.engine import build_window_engine

    return build_window_engine(tensors, config, **kwargs)


@register_numpy_engine("dla_fcn")
def _fcn_engine(tensors: Any, config: Any, **kwargs: Any) -> Any:
    """Numpy engine of the fully-convolutional finder."""
    from surveynet.dla.engine import build_fcn_engine

    return build_fcn_engine(tensors, config, **kwargs)


@register_numpy_engine("dla_refiner")
def _refiner_engine(tensors: Any, config: Any, **kwargs: Any) -> Any:
    """Numpy engine of the second-stage localiser."""
    from surveynet.dla.engine import build_refiner_engine

    return build_refiner_engine(tensors, config, **kwargs)


@register_bench("dla")
def _bench_dla(quick: bool) -> dict[str, Any]:
    """``surveynet bench dla``: window CNN vs fully-convolutional finder on the same sightlines."""
    from surveynet.dla.bench import bench_dla

    return bench_dla(quick)
