"""surveynet.transient: the transient real/bogus pipeline. All its registrations, in one place.

Architectures (torch builders), numpy engines, the config root, the ``surveynet transient``
steps, the ``surveynet bench transient`` figures and the ``surveynet demo`` stage are registered
here. Nothing heavy is imported (never torch, never the engines, not even the config): every
builder imports its module when called, every step its library code when it runs.

Modules, in dependency order: ``config`` (:class:`TransientConfig`), ``arch`` (layer lists),
``preprocess`` (braai triplets, alerts, normalisations), ``psf`` (empirical PSF), ``subtract``
(registration, PSF-matched subtraction), ``catalog`` (candidate tables), ``detect``, ``inject``,
``cutouts``, ``data`` (npz datacube), ``engine`` (numpy), ``model`` and ``train`` (torch),
``predict``, ``evaluate`` (checksim, checkinfer), ``plots``, ``convert`` (braai Keras import),
``cli``, ``bench``, ``demo``. The image simulator is :mod:`surveynet.sim.images`.
"""

from __future__ import annotations

from typing import Any

from surveynet.bench import register_bench
from surveynet.demo import register_demo
from surveynet.registry import (
    ArchitectureExample,
    add_step,
    register_architecture,
    register_config,
    register_example,
    register_group,
    register_numpy_engine,
)

register_group(
    "transient", "transient real/bogus: simulate, inject, subtract, detect, cutouts, CNN"
)


def _config_root() -> type:
    """The config root :class:`surveynet.transient.config.TransientConfig`."""
    from surveynet.transient.config import TransientConfig

    return TransientConfig


register_config("transient", _config_root)


# ----------------------------------------------------------------------------- architectures
def _torch_builder(name: str) -> Any:
    """A registry builder of the torch model ``name`` (imports torch when called)."""

    def build(**config: Any) -> Any:
        from surveynet.transient.model import build as _build

        return _build(name, **config)

    build.__doc__ = f"Torch builder of ``{name}`` (:func:`surveynet.transient.model.build`)."
    return build


def _engine_builder(name: str) -> Any:
    """A registry numpy-engine builder of ``name``."""

    def build(tensors: Any, config: Any, **options: Any) -> Any:
        from surveynet.transient.engine import build_engine

        return build_engine(name, tensors, config, **options)

    build.__doc__ = f"Numpy engine of ``{name}`` (:func:`surveynet.transient.engine.build_engine`)."
    return build


def _torch_proba(model: Any, inputs: Any) -> Any:
    """P(real) of the torch model in eval mode, float64 (registry-wide tests)."""
    import numpy as np
    import torch

    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        return model.proba_real(x).double().numpy()


#: Tiny configs and input shapes of the registry-wide tests (tests/test_registry.py).
_EXAMPLES: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "rb_cnn": ({"in_channels": 3, "size": 16, "filters": [4, 8], "dense": 8}, (3, 3, 16, 16)),
    "gmadet_cnn": (
        {"in_channels": 1, "size": 16, "filters": [4, 4, 8, 8], "dense": [8, 4]},
        (3, 1, 16, 16),
    ),
    "braai_vgg6": ({"size": 21, "filters": [4, 8], "dense": 8}, (3, 3, 21, 21)),
}


def _example_factory(name: str) -> Any:
    """The :class:`ArchitectureExample` factory of ``name`` (random inputs, seed 0)."""

    def factory() -> ArchitectureExample:
        import numpy as np

        config, shape = _EXAMPLES[name]
        return ArchitectureExample(
            config=dict(config),
            inputs=np.random.default_rng(0).standard_normal(shape),
            torch_forward=_torch_proba,
            numpy_forward=lambda engine, a: engine(a),
            atol=1e-5,
        )

    factory.__doc__ = f"Tiny ``{name}`` example for the registry-wide tests."
    return factory


for _name in ("rb_cnn", "gmadet_cnn", "braai_vgg6"):
    register_architecture(_name)(_torch_builder(_name))
    register_numpy_engine(_name)(_engine_builder(_name))
    register_example(_name)(_example_factory(_name))


# ----------------------------------------------------------------------------- CLI steps
def _lazy(fn: str) -> Any:
    """A step callable that imports :mod:`surveynet.transient.cli` when called."""

    def call(arg: Any) -> Any:
        from surveynet.transient import cli

        return getattr(cli, fn)(arg)

    call.__doc__ = f"``surveynet.transient.cli.{fn}``."
    return call


_STEPS = (
    ("simulate", "simulate", "science/reference FITS pairs with WCS, transients, artefacts, truth"),
    ("inject", "inject", "inject point sources with each image's own PSF -> positions file"),
    ("detect", "detect", "register, PSF-matched subtraction, sep detection -> candidate tables"),
    ("checksim", "checksim", "recovered fraction of the real sources vs magnitude and S/N"),
    ("cutouts", "cutouts", "candidate cutouts [science, reference, difference]; --training labels"),
    (
        "convert",
        "convert",
        "cutouts -> npz datacube (cube, labels, mags, errmags, filters, candids)",
    ),
    ("train", "train", "train the real/bogus CNN (difference-only or triplets)"),
    ("predict", "predict", "score cutouts (numpy engine) -> INFER.fits + infer_results.dat"),
    ("checkinfer", "checkinfer", "probability histograms, ROC, TPR/FPR tables, error gallery"),
    ("convert-keras", "convert_keras", "braai Keras .h5 -> surveynet model directory"),
)
for _step, _fn, _help in _STEPS:
    add_step("transient", _step, _help, _lazy(f"{_fn}_args"), _lazy(f"{_fn}_run"))


# ----------------------------------------------------------------------------- bench, demo
@register_bench("transient")
def _bench_transient(quick: bool) -> dict[str, Any]:
    """``surveynet bench transient`` (:func:`surveynet.transient.bench.bench_transient`)."""
    from surveynet.transient.bench import bench_transient

    return bench_transient(quick)


@register_demo("transient", order=40)
def _demo(ctx: Any) -> Any:
    """``surveynet demo`` stage (:func:`surveynet.transient.demo.run_demo`)."""
    from surveynet.transient.demo import run_demo

    return run_demo(ctx)
