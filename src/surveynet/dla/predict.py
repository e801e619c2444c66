"""DLA prediction with the numpy engines (never torch): sightlines -> catalogue.

The chain, for each sightline (:func:`catalog_with_stages`):

1. finder: :class:`DLAFinder` wraps a saved model (window CNN or FCN) and its preprocessing and
   returns, for every pixel of a sightline's search range, the confidence, offset and log N_HI
   (:func:`predict_sightlines` routes each sightline to the finder of its S/N range);
2. postprocess: vote peaks -> absorber rows (:func:`surveynet.dla.postprocess.peak_rows`,
   dla.md §5);
3. refine: second-stage localisers move every row, in turn (:mod:`surveynet.dla.refine`);
4. vet: the absorber vetter sets DLA_CONFIDENCE and drops improbable rows
   (:mod:`surveynet.dla.vet`);
5. catalogue: core-overlap merge and typing
   (:func:`surveynet.dla.postprocess.type_absorbers`), then the DLACAT and QSOCAT tables
   (:func:`surveynet.dla.catalog.catalog_from_rows`).

:func:`predict_file` runs the chain on one coadd file (module level, for
:func:`surveynet.runner.run_batch`); :func:`predict_files` runs it on many files through the core
driver :func:`surveynet.predict.predict_over_files`, writing one merged catalogue atomically with
its provenance (one numbered card group per model used), a ``FAILED`` HDU when some inputs failed
(exit code 3 of ``surveynet dla predict``) and the resolved config as JSON beside it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.config import config_sidecar, from_dict, save_config, to_dict
from surveynet.dla.catalog import (
    Catalog,
    add_source_columns,
    catalog_from_rows,
    merge_catalogs,
    write_catalog,
)
from surveynet.dla.config import DataConfig, DLAConfig, PredictConfig
from surveynet.dla.data import pixel_labels, read_sightlines, read_spectra_file
from surveynet.dla.postprocess import (
    SightlinePrediction,
    peak_rows,
    searched_predictions,
    type_absorbers,
)
from surveynet.dla.preprocess import InputSpec, padded_input
from surveynet.dla.refine import DEFAULT_REFINERS, DLARefiner
from surveynet.dla.sightline import Sightline, search_pixels
from surveynet.dla.vet import DLAVetter, resolve_vetter, row_features
from surveynet.errors import InputError, ModelFormatError
from surveynet.io.model import (
    FromSaved,
    SavedModel,
    bundled_models_dir,
    load_model,
    resolve_model_path,
)
from surveynet.predict import ModelCard, PredictResult, check_output, predict_over_files
from surveynet.registry import get_numpy_engine

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODELS",
    "DLAFinder",
    "EnsembleFinder",
    "Finder",
    "catalog_with_stages",
    "load_finder",
    "load_finders",
    "merge_catalogs",
    "model_cards_of",
    "nhi_bias",
    "offset_bias",
    "predict_config_for",
    "predict_file",
    "predict_files",
    "predict_sightlines",
    "quasarnet_redshifts",
    "resolve_refiner",
    "route",
]

#: Bundled model names used when ``--model`` is not given (high S/N, low S/N).
DEFAULT_MODELS = ("dla_fcn", "dla_fcn_lowsnr")

#: TARGETID -> sightline on a refiner's own grid; one such mapping (or None) per refiner.
RefineGrids = Mapping[int, Sightline] | Sequence[Mapping[int, Sightline] | None] | None


def _sigmoid(x: NDArray[Any]) -> NDArray[np.float64]:
    x = np.asarray(x, dtype=np.float64)
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))


class DLAFinder(FromSaved):
    """A saved DLA model with its numpy engine and preprocessing.

    Parameters
    ----------
    saved : SavedModel
        The loaded model (:meth:`from_saved` reads a directory or bundled name).
    dtype : numpy dtype
        Engine precision.
    batch_size : int
        Sightlines per FCN batch.
    """

    PIPELINE = "dla"

    def __init__(self, saved: SavedModel, *, dtype: Any = np.float32, batch_size: int = 16) -> None:
        self.saved = saved
        self.architecture = saved.architecture
        if self.architecture not in ("dla_window_cnn", "dla_fcn"):
            raise ModelFormatError(
                f"{saved.path}: architecture {self.architecture!r} is not a DLA finder"
            )
        self.engine = get_numpy_engine(self.architecture)(saved.tensors, saved.config, dtype=dtype)
        pre = saved.preprocessing
        self.spec = InputSpec.from_dict(pre.get("input", {}))
        self.data = from_dict(DataConfig, pre["data"]) if "data" in pre else DataConfig()
        self.s2n_range = tuple(pre.get("s2n_range", (0.0, 1e9)))
        self.context = int(pre.get("context", 0))
        self.batch_size = batch_size
        self.offset_bias = np.asarray(pre.get("offset_bias", [0.0]), dtype=np.float64).reshape(-1)
        self.nhi_bias = float(pre.get("nhi_bias", 0.0))
        if len(self.spec.channels) != self.engine.config.in_channels:
            raise ModelFormatError(
                f"{saved.path}: preprocessing has {len(self.spec.channels)} channels, "
                f"model expects {self.engine.config.in_channels}"
            )

    @property
    def name(self) -> str:
        """Model name."""
        return str(self.saved.name)

    @property
    def samplerange(self) -> int:
        """Positive half-width of the model's labels (sets the vote normalisation)."""
        return self.spec.samplerange

    @property
    def members(self) -> list[DLAFinder]:
        """The networks whose outputs this finder returns: itself (see :class:`EnsembleFinder`)."""
        return [self]

    def predict(
        self, sightlines: Sequence[Sightline], *, calibrated: bool = True
    ) -> list[SightlinePrediction]:
        """Per-pixel outputs of each sightline (empty when no pixel is in the search range).

        With ``calibrated`` the model's ``preprocessing.offset_bias`` (median offset residual of
        its validation split, one value per output sub-pixel phase ``(pixel - first) % len``,
        measured at training time by :func:`offset_bias`) is subtracted from the offsets, and
        ``preprocessing.nhi_bias`` (median log N_HI residual, :func:`nhi_bias`) from the N_HI.

        Parameters
        ----------
        sightlines : sequence of Sightline
            Sightlines read with the model's data config.
        calibrated : bool
            Subtract the stored offset and N_HI biases.

        Returns
        -------
        list of SightlinePrediction
            One per sightline, at its searched pixels.
        """
        if self.architecture == "dla_fcn":
            preds = self._predict_fcn(sightlines)
        else:
            preds = [self._predict_windows(sl) for sl in sightlines]
        if calibrated and np.any(self.offset_bias != 0):
            b = self.offset_bias
            for p in preds:
                if p.pixel.size:
                    p.offset = p.offset - b[(p.pixel - p.pixel[0]) % b.size]
        if calibrated and self.nhi_bias != 0:
            for p in preds:
                p.nhi = p.nhi - self.nhi_bias
        return preds

    @property
    def source(self) -> str:
        """Where the model was loaded from (directory)."""
        return str(self.saved.path)

    @property
    def weights_hashes(self) -> list[str]:
        """sha256 of the weights (one per network)."""
        return [str(self.saved.weights_hash)]

    def _predict_windows(self, sl: Sightline) -> SightlinePrediction:
        w = self.engine.config.window
        half = w // 2
        pix = search_pixels(sl, self.spec.rest_range)
        if pix.size == 0:
            return SightlinePrediction(pix, *(np.zeros(0),) * 3)
        x = padded_input(sl, self.spec, half, sl.n_pix + w)
        view = np.lib.stride_tricks.sliding_window_view(x, w, axis=1)  # (C, n_start, w)
        out = np.empty((pix.size, 3))
        step = 1024
        for i in range(0, pix.size, step):
            p = pix[i : i + step]
            out[i : i + step] = self.engine(np.ascontiguousarray(view[:, p, :].transpose(1, 0, 2)))
        return SightlinePrediction(pix, _sigmoid(out[:, 0]), out[:, 1], out[:, 2])

    def _predict_fcn(self, sightlines: Sequence[Sightline]) -> list[SightlinePrediction]:
        f = self.engine.config.factor
        ctx = self.context
        results: list[SightlinePrediction | None] = [None] * len(sightlines)
        jobs = []
        for i, sl in enumerate(sightlines):
            pix = search_pixels(sl, self.spec.rest_range)
            if pix.size == 0:
                results[i] = SightlinePrediction(pix, *(np.zeros(0),) * 3)
            else:
                jobs.append((i, sl, pix))
        jobs.sort(key=lambda j: j[2].size)  # similar lengths share a batch
        for b in range(0, len(jobs), self.batch_size):
            chunk = jobs[b : b + self.batch_size]
            need = max(p.size for _, _, p in chunk) + 2 * ctx
            length = -(-need // f) * f
            x = np.empty((len(chunk), len(self.spec.channels), length), np.float32)
            for k, (_, sl, pix) in enumerate(chunk):
                full = padded_input(sl, self.spec, ctx + length, sl.n_pix + 2 * (ctx + length))
                s0 = length + int(pix[0])
                x[k] = full[:, s0 : s0 + length]
            y = self.engine(x)
            for k, (i, _, pix) in enumerate(chunk):
                seg = y[k, :, ctx : ctx + pix.size]
                results[i] = SightlinePrediction(
                    pix, _sigmoid(seg[0]), seg[1].astype(np.float64), seg[2].astype(np.float64)
                )
        return [r for r in results if r is not None]


def _positive_residuals(
    finder: DLAFinder, sightlines: Sequence[Sightline], field: str
) -> list[tuple[NDArray[np.int64], NDArray[np.float64]]]:
    """Per sightline: (pixel - first searched pixel, prediction - label) of ``field``.

    ``field`` is "offset" or "nhi"; on the labelled positive pixels, from the uncalibrated
    outputs.
    """
    out = []
    for sl, p in zip(sightlines, finder.predict(sightlines, calibrated=False), strict=True):
        if p.pixel.size:
            lab = pixel_labels(sl, finder.spec)
            pos = lab.classification[p.pixel] == 1
            r = getattr(p, field)[pos] - getattr(lab, field)[p.pixel][pos]
            out.append(((p.pixel - p.pixel[0])[pos], r))
    return out


def _median(parts: Sequence[NDArray[np.float64]]) -> float:
    v = np.concatenate(parts) if len(parts) else np.zeros(0)
    return float(np.median(v)) if v.size else 0.0


def offset_bias(
    finder: DLAFinder, sightlines: Sequence[Sightline], phases: int | None = None
) -> list[float]:
    """Median offset residual (predicted - label) on labelled positive pixels, per phase.

    ``phases`` defaults to the FCN up-sampling factor (the per-pixel outputs of one coarse pixel
    come from one feature vector centred on its first pixel) or 1 for the window CNN. Measure it on
    sightlines not used for the gradient steps (the training validation split).

    Parameters
    ----------
    finder : DLAFinder
        The model.
    sightlines : sequence of Sightline
        Labelled sightlines (``dlas``).
    phases : int, optional
        Output phases.

    Returns
    -------
    list of float
        Median residual per phase (pixels).
    """
    if phases is None:
        fcn = finder.architecture == "dla_fcn"
        phases = int(getattr(finder.engine.config, "factor", 1)) if fcn else 1
    res = _positive_residuals(finder, sightlines, "offset")
    return [_median([r[d % phases == k] for d, r in res]) for k in range(phases)]


class EnsembleFinder:
    """Finders of one input and S/N range whose per-pixel outputs are averaged.

    The members must read the same sightlines (data config), search the same rest range and
    share the label half-width, so that their outputs are defined on the same pixels and vote
    alike; the ensemble is routed by its first member's S/N range (a low-S/N model may be
    averaged with a high-S/N one). Each member's own calibration (offset and N_HI bias) is
    applied before the average. The confidence, offset and log N_HI of a pixel are the members'
    means. ``surveynet dla predict --model A+B`` builds one.
    """

    def __init__(self, members: Sequence[DLAFinder]) -> None:
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two finders")
        first = members[0]
        for m in members[1:]:
            for what, a, b in (
                ("data config", m.data, first.data),
                ("rest range", m.spec.rest_range, first.spec.rest_range),
                ("label half-width", m.samplerange, first.samplerange),
            ):
                if a != b:
                    raise ModelFormatError(
                        f"ensemble {m.source} + {first.source}: {what} differs ({a} vs {b})"
                    )
        self.members = list(members)
        self.data = first.data
        self.spec = first.spec
        self.s2n_range = first.s2n_range

    @property
    def name(self) -> str:
        """Member names joined by '+'."""
        return "+".join(m.name for m in self.members)

    @property
    def source(self) -> str:
        """Member directories joined by '+' (what :func:`load_finders` reads back)."""
        return "+".join(m.source for m in self.members)

    @property
    def weights_hashes(self) -> list[str]:
        """The members' weight hashes."""
        return [h for m in self.members for h in m.weights_hashes]

    @property
    def samplerange(self) -> int:
        """Positive half-width of the members' labels."""
        return self.members[0].samplerange

    def predict(
        self, sightlines: Sequence[Sightline], *, calibrated: bool = True
    ) -> list[SightlinePrediction]:
        """Members' per-pixel outputs, averaged pixel by pixel.

        The constructor's checks make every member predict on the same pixels.

        Parameters
        ----------
        sightlines : sequence of Sightline
            Sightlines read with the members' data config.
        calibrated : bool
            Apply each member's calibration.

        Returns
        -------
        list of SightlinePrediction
        """
        outs = [m.predict(sightlines, calibrated=calibrated) for m in self.members]
        return [
            SightlinePrediction(
                preds[0].pixel,
                np.mean([p.confidence for p in preds], axis=0),
                np.mean([p.offset for p in preds], axis=0),
                np.mean([p.nhi for p in preds], axis=0),
            )
            for preds in zip(*outs, strict=True)
        ]


Finder = DLAFinder | EnsembleFinder


def nhi_bias(finder: DLAFinder, sightlines: Sequence[Sightline]) -> float:
    """Median log N_HI residual (predicted - label) on the labelled positive pixels.

    Measure it on sightlines not used for the gradient steps (the training validation split); it is
    stored as ``preprocessing.nhi_bias`` and subtracted at prediction time.

    Parameters
    ----------
    finder : DLAFinder
        The model.
    sightlines : sequence of Sightline
        Labelled sightlines (``dlas``).

    Returns
    -------
    float
        Median residual (dex).
    """
    return _median([r for _, r in _positive_residuals(finder, sightlines, "nhi")])


def load_finder(model: str | os.PathLike[str]) -> Finder:
    """One finder: a model directory or bundled name, or several joined by '+'.

    Several make an :class:`EnsembleFinder`; an existing directory whose name holds '+' is read
    as one model.

    Parameters
    ----------
    model : str or os.PathLike
        Directory, bundled name, or ``A+B`` names.

    Returns
    -------
    DLAFinder or EnsembleFinder
    """
    text = str(model)
    if "+" in text and not Path(text).exists():
        return EnsembleFinder([DLAFinder.from_saved(m) for m in text.split("+") if m])
    return DLAFinder.from_saved(model)


def load_finders(models: Sequence[str | os.PathLike[str]] | None) -> list[Finder]:
    """Load the given models (:func:`load_finder`), or the bundled defaults that exist.

    The defaults are high- then low-S/N (:data:`DEFAULT_MODELS`).

    Parameters
    ----------
    models : sequence of str or os.PathLike, or None
        Models; None or empty: the bundled defaults.

    Returns
    -------
    list of DLAFinder or EnsembleFinder
    """
    if models:
        return [load_finder(m) for m in models]
    found: list[Finder] = [
        DLAFinder.from_saved(m) for m in DEFAULT_MODELS if (bundled_models_dir() / m).is_dir()
    ]
    if not found:
        raise ModelFormatError(
            f"no bundled DLA model ({', '.join(DEFAULT_MODELS)}); pass --model DIR"
        )
    return found


def resolve_refiner(
    refiner: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    **kwargs: Any,
) -> list[DLARefiner]:
    """The refiners to apply in turn.

    Parameters
    ----------
    refiner : str, path, sequence of them, or None
        None: the bundled :data:`~surveynet.dla.refine.DEFAULT_REFINERS` that are installed;
        "none": no refinement; else model directories or bundled names (a list, or one string
        with comma-separated names).
    **kwargs
        Passed to :class:`~surveynet.dla.refine.DLARefiner` (``iterations``, ``nhi_weight``,
        ``shifts``).

    Returns
    -------
    list of DLARefiner
    """
    if refiner is None:
        names: list[str | os.PathLike[str]] = [
            m for m in DEFAULT_REFINERS if (bundled_models_dir() / m).is_dir()
        ]
    elif isinstance(refiner, (str, os.PathLike)):
        if str(refiner).lower() == "none":
            return []
        names = [p for p in str(refiner).split(",") if p] if isinstance(refiner, str) else [refiner]
    else:
        names = list(refiner)
    return [DLARefiner.from_saved(m, **kwargs) for m in names]


def route(finders: Sequence[Finder], s2n: float) -> Finder:
    """The finder whose S/N range contains ``s2n`` (the first one when none or several do).

    Parameters
    ----------
    finders : sequence of Finder
        Candidates, in order.
    s2n : float
        The sightline's S/N.

    Returns
    -------
    Finder
    """
    for fd in finders:
        if fd.s2n_range[0] <= s2n < fd.s2n_range[1]:
            return fd
    return finders[0]


def predict_config_for(finder: Finder, base: PredictConfig | None = None) -> PredictConfig:
    """The catalogue-step config with the model's label half-width (the vote normalisation).

    Parameters
    ----------
    finder : Finder
        The finder whose outputs vote.
    base : PredictConfig, optional
        The run's config (default :class:`~surveynet.dla.config.PredictConfig`).

    Returns
    -------
    PredictConfig
        ``base`` with ``samplerange`` = the finder's.
    """
    return dataclasses.replace(base or PredictConfig(), samplerange=finder.samplerange)


def catalog_with_stages(
    sightlines: Sequence[Sightline],
    predictions: Sequence[SightlinePrediction],
    config: PredictConfig | None = None,
    *,
    rest_range: tuple[float, float] | None = (900.0, 1346.0),
    refiner: Any = None,
    refine_sightlines: RefineGrids = None,
    vetter: DLAVetter | None = None,
) -> Catalog:
    """Finder outputs -> vote peaks -> refine -> vet -> catalogue (steps 2-5 of the module doc).

    Parameters
    ----------
    sightlines : sequence of Sightline
        The sightlines.
    predictions : sequence of SightlinePrediction
        One per sightline, same order (window centres, or per-pixel outputs).
    config : PredictConfig, optional
        Peak finding, vetter features and typing.
    rest_range : tuple of float or None
        Only predictions at pixels with rest wavelength in this range vote; None keeps all.
    refiner : DLARefiner or sequence of them, optional
        Second-stage localisers (anything with a ``refine(items)`` method) applied in turn to
        the vote peaks before the vetter and the core-overlap merge.
    refine_sightlines : mapping or sequence of mappings, optional
        TARGETID -> the sightline on the refiner's own grid (when its data config differs from
        the finder's), one mapping per refiner; default: the finder's sightline.
    vetter : DLAVetter, optional
        Replaces DLA_CONFIDENCE by its probability and drops the rows below its threshold.

    Returns
    -------
    Catalog

    Raises
    ------
    ValueError
        Mismatched numbers of sightlines and predictions, or of refiners and grids.
    """
    cfg = config or PredictConfig()
    searched = searched_predictions(sightlines, predictions, rest_range)
    rows = [peak_rows(sl, pred, cfg) for sl, pred in zip(sightlines, searched, strict=True)]
    refiners = [] if refiner is None else [refiner] if hasattr(refiner, "refine") else refiner
    grids = (
        list(refine_sightlines)
        if isinstance(refine_sightlines, (list, tuple))
        else [refine_sightlines] * len(refiners)
    )
    if len(grids) != len(refiners):
        raise ValueError(f"{len(refiners)} refiners but {len(grids)} refine_sightlines")
    for ref, grid in zip(refiners, grids, strict=True):
        on = grid or {}
        ref.refine([(on.get(sl.targetid, sl), r) for sl, r in zip(sightlines, rows, strict=True)])
    if vetter is not None or cfg.vet_features:
        for k, (sl, pred, r) in enumerate(zip(sightlines, searched, rows, strict=True)):
            for row, f in zip(r, row_features(sl, pred, r), strict=True):
                row["FEATURES"] = f
            if vetter is not None:
                rows[k] = vetter.vet(r)
    rows = [type_absorbers(r, cfg) for r in rows]
    cat = catalog_from_rows(sightlines, searched, rows, vet_features=cfg.vet_features)
    log.info(
        "%d absorbers (%d DLA) in %d sightlines",
        len(cat.dlas),
        int(np.sum(cat.dlas["ABSORBER_TYPE"] == "DLA")),
        len(cat.qsos),
    )
    return cat


def predict_sightlines(
    sightlines: Sequence[Sightline],
    finders: Sequence[Finder],
    config: PredictConfig | None = None,
    *,
    refiner: DLARefiner | Sequence[DLARefiner] | None = None,
    refine_sightlines: RefineGrids = None,
    vetter: DLAVetter | None = None,
) -> Catalog:
    """Absorber catalogue of preprocessed sightlines (DLACAT + QSOCAT tables).

    Each sightline goes to the finder of its S/N range (:func:`route`); its per-pixel outputs go
    through :func:`catalog_with_stages` with the vote normalisation of that model's label
    half-width.

    Parameters
    ----------
    sightlines : sequence of Sightline
        Sightlines read with the finders' data config.
    finders : sequence of Finder
        S/N-routed finders.
    config : PredictConfig, optional
        The catalogue step.
    refiner : DLARefiner or sequence of them, optional
        Second-stage localisers, applied in turn.
    refine_sightlines : mapping or sequence of mappings, optional
        TARGETID -> sightline on each refiner's grid (one mapping per refiner).
    vetter : DLAVetter, optional
        The absorber vetter.

    Returns
    -------
    Catalog
    """
    groups: dict[int, list[int]] = {}
    for i, sl in enumerate(sightlines):
        groups.setdefault(id(route(finders, sl.s2n)), []).append(i)
    by_id = {id(f): f for f in finders}
    parts = []
    for fid, idx in groups.items():
        fd = by_id[fid]
        sub = [sightlines[i] for i in idx]
        parts.append(
            catalog_with_stages(
                sub,
                fd.predict(sub),
                predict_config_for(fd, config),
                rest_range=fd.spec.rest_range,
                refiner=refiner,
                refine_sightlines=refine_sightlines,
                vetter=vetter,
            )
        )
    return merge_catalogs(parts)


def predict_file(
    path: str,
    *,
    models: Sequence[str] | None = None,
    qso_catalog: str,
    truth: str | None = None,
    config: dict[str, Any] | None = None,
    skip_bal: bool = False,
    refiner: str | Sequence[str] | None = None,
    vetter: str | None = None,
) -> Catalog:
    """Catalogue of one DESI spectra/coadd file (module level, for the Dask runner).

    Models may read their sightlines differently (camera, pixel size): each S/N-routed finder
    gets the sightlines of its own data config (the S/N does not depend on the camera) and each
    refiner crops sightlines on its own grid; the file is read once.

    Parameters
    ----------
    path : str
        Spectra or coadd file.
    models : sequence of str, optional
        Finder directories or bundled names (default :data:`DEFAULT_MODELS`).
    qso_catalog : str
        Redshift source: QuasarNET catalogue, zbest/redrock or truth file.
    truth : str, optional
        Truth file whose DLA_META absorbers are attached (not used by the finder).
    config : dict, optional
        :class:`~surveynet.dla.config.PredictConfig` fields of the catalogue step (its
        ``models``, ``refiner``, ``vetter`` and ``skip_bal`` are not read here: the arguments
        below are the resolved ones). Its ``bal`` keys choose what happens to BAL quasars:
        ``bal="mask"`` masks their troughs in every sightline read
        (:func:`surveynet.dla.bal_mask.apply_bal_mask`), ``bal="skip"`` acts as ``skip_bal``.
    skip_bal : bool
        Leave out quasars ``qso_catalog`` flags as BAL (``DataConfig.skip_bal``); overrides
        ``bal="mask"``.
    refiner : str or sequence of str, optional
        Second-stage localisers applied in turn (model directories or bundled names); None: none.
    vetter : str, optional
        Absorber vetter (model directory or bundled name, :mod:`surveynet.dla.vet`); None: none.

    Returns
    -------
    Catalog
        Both tables with SOURCE (the file name) and ROW, and PLATE, MJD, FIBERID for SDSS files
        (:func:`surveynet.dla.catalog.add_source_columns`).
    """
    finders = load_finders(models)
    pc = from_dict(PredictConfig, config or {})
    refs = resolve_refiner(
        "none" if not refiner else refiner,
        iterations=pc.refine_iterations,
        nhi_weight=pc.refine_nhi_weight,
        shifts=pc.refine_shifts,
    )
    vet = None if vetter is None else resolve_vetter(vetter, pc.vet_threshold)
    skip_bal = skip_bal or pc.bal == "skip"
    run_data: dict[str, Any] = {"skip_bal": skip_bal}
    if pc.z_qso_min is not None:
        run_data["z_qso_min"] = float(pc.z_qso_min)
    data_of = {id(fd): dataclasses.replace(fd.data, **run_data) for fd in finders}
    configs = list(dict.fromkeys(data_of.values()))
    ref_data = [dataclasses.replace(r.data, **run_data) for r in refs]
    spectra = read_spectra_file(path, resolution=False)
    read = {d: read_sightlines(spectra, qso_catalog, d, truth_path=truth) for d in configs}
    for d in ref_data:
        if d not in read:
            read[d] = read_sightlines(spectra, qso_catalog, d)
    troughs = None
    if pc.bal in ("mask", "veto") and not skip_bal:
        from surveynet.dla import bal_mask

        zq = {sl.targetid: sl.z_qso for sls in read.values() for sl in sls}
        troughs = bal_mask.file_troughs(spectra, zq, qso_catalog=qso_catalog, config=pc)
        if pc.bal == "mask":
            keys = list(read)
            rr = finders[0].spec.rest_range if finders else (900.0, 1346.0)
            masked = bal_mask.apply_bal_mask(
                spectra,
                [read[k] for k in keys],
                qso_catalog=qso_catalog,
                config=pc,
                rest_range=rr,
                troughs=troughs,
            )
            read = dict(zip(keys, masked, strict=True))
    grids = [{sl.targetid: sl for sl in read[d]} for d in ref_data]
    parts = []
    for d in configs:
        sls = read[d]
        if len(configs) > 1:
            sls = [sl for sl in sls if data_of[id(route(finders, sl.s2n))] == d]
        log.info("%s: %d sightlines (camera %s)", path, len(sls), d.camera)
        parts.append(
            predict_sightlines(sls, finders, pc, refiner=refs, refine_sightlines=grids, vetter=vet)
        )
    cat = parts[0] if len(parts) == 1 else merge_catalogs(parts)
    if pc.bal == "veto" and troughs:
        from surveynet.dla.bal_mask import LINE_SETS, veto_catalog

        cat = veto_catalog(
            cat, troughs, lines=LINE_SETS[pc.bal_lines], margin_kms=pc.bal_margin_kms
        )
    return add_source_columns(cat, spectra.fibermap, Path(path).name)


def _model_dirs(models: Sequence[str]) -> list[str]:
    """Resolved directories of model names/paths ('+' joins ensemble members).

    Unknown ones are kept as given.
    """
    out = []
    for m in models:
        parts = []
        for part in str(m).split("+"):
            try:
                parts.append(str(resolve_model_path(part).resolve()))
            except ModelFormatError:
                parts.append(part)
        out.append("+".join(parts))
    return out


def model_cards_of(
    finders: Sequence[Finder], refiners: Sequence[DLARefiner], vetter: DLAVetter | None
) -> list[ModelCard]:
    """One :class:`~surveynet.predict.ModelCard` per model used, in the order applied.

    Every finder (role ``finder``; each member of an ensemble on its own card, role
    ``finder (ensemble i)`` with ``i`` the ensemble's position among the finders), then the
    refiners (``refiner``), then the vetter (``vetter``); each with its weights hash.

    Parameters
    ----------
    finders : sequence of Finder
        S/N-routed finders (:class:`DLAFinder` or :class:`EnsembleFinder`).
    refiners : sequence of DLARefiner
        Second-stage localisers.
    vetter : DLAVetter or None
        The absorber vetter.

    Returns
    -------
    list of ModelCard
    """
    cards = [
        ModelCard(
            "finder" if len(f.members) == 1 else f"finder (ensemble {i})",
            m.name,
            m.saved.weights_hash,
        )
        for i, f in enumerate(finders, start=1)
        for m in f.members
    ]
    cards += [ModelCard("refiner", r.name, r.saved.weights_hash) for r in refiners]
    if vetter is not None:
        cards.append(ModelCard("vetter", vetter.name, vetter.saved.weights_hash))
    return cards


def predict_files(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    qso_catalog: str | os.PathLike[str] | None = None,
    config: DLAConfig | None = None,
    models: Sequence[str] | None = None,
    truth: str | os.PathLike[str] | None = None,
    workers: int = 0,
    scheduler: str | None = None,
    quiet: bool = False,
    overwrite: bool = False,
    skip_bal: bool | None = None,
    refiner: str | os.PathLike[str] | None = None,
    vetter: str | os.PathLike[str] | None = None,
) -> PredictResult:
    """Run the finder chain over many files and write one merged catalogue atomically.

    :func:`predict_file` runs on every input through the core driver
    :func:`surveynet.predict.predict_over_files` (Dask runner with ``workers > 0``): the
    outputs are checked before any work (refused unless ``overwrite``); bad files are reported
    and skipped, the others complete, and the catalogue gets a ``FAILED`` HDU listing each bad
    file with its reason (``surveynet dla predict`` then exits with 3). The resolved config
    (``config`` with the arguments below applied to its ``predict`` section) is written beside
    the catalogue (:func:`surveynet.config.config_sidecar`), its hash and a summary into the
    header, with one numbered card group per model used (:func:`model_cards_of`) besides the
    ``MODEL`` / ``MODELHSH`` summary.

    Parameters
    ----------
    inputs : sequence of path
        Spectra or coadd files.
    out : path
        Catalogue to write.
    qso_catalog : path, optional
        Redshift source: QuasarNET catalogue, zbest/redrock or truth file. None: the quasar
        pipeline's registered ``predict`` step runs QuasarNET (``predict.qso_model``, default the
        bundled ``qn_mock_6layer``) on the inputs first (:func:`quasarnet_redshifts`); the
        catalogue header then names it (``ZSOURCE = 'QuasarNET'`` and a model card with role
        ``redshifts`` and its weights hash).
    config : DLAConfig, optional
        The resolved config (its ``predict`` section; default :class:`DLAConfig`).
    models : sequence of str, optional
        Finders (overrides ``predict.models``; default: the bundled ``dla_fcn`` +
        ``dla_fcn_lowsnr``).
    truth : path, optional
        Truth file whose DLA_META absorbers are attached.
    workers, scheduler : int, str
        Local Dask worker processes (0 runs in this process) or an existing scheduler's address.
    quiet : bool
        Hide the progress bar.
    overwrite : bool
        Replace an existing catalogue (and its config JSON).
    skip_bal : bool, optional
        Leave out BAL-flagged quasars (overrides ``predict.skip_bal``; see :func:`predict_file`).
    refiner : str or path, optional
        Second-stage localisers (overrides ``predict.refiner``; :func:`resolve_refiner`: None =
        the bundled ``dla_refiner,dla_refiner_wide``, "none" = no refinement).
    vetter : str or path, optional
        Absorber vetter (overrides ``predict.vetter``;
        :func:`surveynet.dla.vet.resolve_vetter`: None = the bundled ``dla_vetter``, "none" =
        none).

    Returns
    -------
    surveynet.predict.PredictResult
        ``path`` (the catalogue written), ``results`` (per-input outcome), ``failures``,
        ``merged`` (the :class:`~surveynet.dla.catalog.Catalog`) and ``exit_code`` (0, or 3 when
        some inputs failed).

    Raises
    ------
    FileExistsError
        The catalogue or its config JSON exists and ``overwrite`` is False.
    InputError
        No input, or every input failed (nothing is written).
    """
    cfg = config or DLAConfig()
    given: dict[str, Any] = {}
    if models is not None:
        given["models"] = tuple(str(m) for m in models)
    if skip_bal is not None:
        given["skip_bal"] = bool(skip_bal)
    if refiner is not None:
        given["refiner"] = str(refiner)
    if vetter is not None:
        given["vetter"] = str(vetter)
    pc = dataclasses.replace(cfg.predict, **given)
    cfg = dataclasses.replace(cfg, predict=pc)
    outp = check_output(out, overwrite)
    cfg_path = check_output(config_sidecar(outp), overwrite)
    if not inputs:
        raise InputError("no input files")
    finders = load_finders(pc.models)  # fail early on a bad model
    refs = resolve_refiner(pc.refiner)
    vet = resolve_vetter(pc.vetter, pc.vet_threshold)
    model_paths = [f.source for f in finders]
    cards = model_cards_of(finders, refs, vet)
    qn_model = None
    if qso_catalog is None:
        qn_model = load_model(pc.qso_model, pipeline="quasar")  # fail early on a bad model
        cards.insert(0, ModelCard("redshifts", qn_model.name, qn_model.weights_hash))
        zcard = ("QuasarNET", f"z from {qn_model.name}"[:40])
    else:
        zcard = (Path(qso_catalog).name[:60], "redshift source (catalogue)")
    if vet is not None:
        learnt = [list(vet.saved.config.get(k, [])) for k in ("finders", "refiners")]
        used = [model_paths, [str(r.saved.path) for r in refs]]
        if [_model_dirs(x) for x in learnt] != [_model_dirs(x) for x in used]:
            log.warning(
                "vetter %s learnt from the absorbers of %s + refiners %s, this run uses %s + "
                "refiners %s: its probabilities may be miscalibrated (--vetter none turns it off)",
                vet.name,
                *learnt,
                *used,
            )
    # short summary cards (FITS cards are 80 characters; full paths and hashes are logged)
    names = list(pc.models) if pc.models else [f.name for f in finders]
    names += [r.name for r in refs] + ([] if vet is None else [vet.name])
    short = "+".join(Path(n).name for n in names)[:68]
    hashes_full = [c.sha256 for c in cards]
    # (at most 23 characters: the MODELHSH card and its comment fill 80)
    width = max(3, min(16, (24 - len(hashes_full)) // len(hashes_full)))
    hashes = "+".join(h[:width] for h in hashes_full)[:33]
    extra = "".join(f" + refiner {r.saved.path}" for r in refs)
    extra += "" if vet is None else f" + vetter {vet.saved.path}"
    log.info("models %s%s (sha256 %s)", model_paths, extra, hashes_full)

    def write(path: Path, merged: Catalog, failed: Any) -> Path:
        written = write_catalog(
            path,
            merged,
            config=cfg,
            model_name=short,
            model_hash=hashes,
            failed=failed,
            overwrite=overwrite,
            models=cards,
            n_inputs=len(inputs),
            config_file=cfg_path,
            extra_cards={"ZSOURCE": zcard},
        )
        save_config(cfg, cfg_path)
        return written

    def _predict_over(zsrc: str | os.PathLike[str]) -> PredictResult:
        return predict_over_files(
            predict_file,
            inputs,
            outp,
            merge=merge_catalogs,
            write=write,
            workers=workers,
            scheduler=scheduler,
            quiet=quiet,
            overwrite=overwrite,
            desc="dla predict",
            models=model_paths,
            qso_catalog=str(zsrc),
            truth=None if truth is None else str(truth),
            config=to_dict(pc),
            skip_bal=pc.skip_bal,
            refiner=[str(r.saved.path) for r in refs],
            vetter=None if vet is None else str(vet.saved.path),
        )

    if qn_model is None:
        assert qso_catalog is not None
        return _predict_over(qso_catalog)
    with tempfile.TemporaryDirectory(prefix=".dla-redshifts-", dir=outp.parent) as tmp:
        zfile = quasarnet_redshifts(
            inputs,
            Path(tmp) / "qn_catalog.fits",
            model=str(qn_model.path),
            workers=workers,
            scheduler=scheduler,
        )
        return _predict_over(zfile)


def quasarnet_redshifts(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: str = "qn_mock_6layer",
    workers: int = 0,
    scheduler: str | None = None,
) -> Path:
    """Quasar redshifts of spectra files from QuasarNET, through the quasar pipeline's CLI step.

    The pipelines are independent (no import of :mod:`surveynet.quasar` here): the step
    ``surveynet quasar predict`` is looked up in the registry
    (:func:`surveynet.registry.list_steps`) and run on ``inputs`` with ``--model MODEL``; its
    catalogue (``TARGETID``, ``Z_QN``, ``IS_QSO_QN``, ``IS_BAL_QN``) is a redshift source of
    :func:`surveynet.dla.data.read_qso_redshifts`.

    Parameters
    ----------
    inputs : sequence of path
        Spectra files.
    out : path
        QuasarNET catalogue to write (must not exist).
    model : str
        QuasarNET model directory or bundled name.
    workers, scheduler : int, str
        Runner settings passed to the step.

    Returns
    -------
    Path
        The QuasarNET catalogue written (``out``).

    Raises
    ------
    InputError
        The step is not registered, or it wrote no catalogue (every input failed).
    """
    import argparse

    from surveynet.registry import list_steps

    step = next((s for s in list_steps() if (s.group, s.name) == ("quasar", "predict")), None)
    if step is None:
        raise InputError("no redshift source given and the quasar predict step is not available")
    parser = argparse.ArgumentParser(prog="surveynet quasar predict")
    parser.add_argument("--quiet", action="store_true")  # added by the root parser in the CLI
    step.add_arguments(parser)
    argv = [*map(str, inputs), "--out", str(out), "--model", str(model), "--quiet"]
    argv += ["--workers", str(workers)] + (["--scheduler", scheduler] if scheduler else [])
    log.info("no redshift source: running QuasarNET %s on %d file(s)", model, len(inputs))
    try:
        rc = step.run(parser.parse_args(argv))
    except InputError as exc:
        raise InputError(f"QuasarNET redshifts failed: {exc}") from exc
    if rc not in (0, 3) or not Path(out).exists():
        raise InputError(f"QuasarNET redshifts failed (quasar predict exit code {rc})")
    return Path(out)
