"""DLA prediction with the numpy engines (never torch): sightlines -> pixel outputs -> catalogue.

- :class:`DLAFinder` wraps a saved model (window CNN or FCN) and its preprocessing and returns,
  for every pixel of a sightline's search range, the confidence, offset and log N_HI that the
  core's voting and peak finding (:mod:`surveynet.dla.catalog`, dla.md §5) turn into absorbers.
- :func:`predict_sightlines` routes each sightline to the high- or low-S/N model by S/N.
- :func:`predict_file` (one coadd file; module level for :func:`surveynet.runner.run_batch`) and
  :func:`predict_files` (many files, merged catalogue written atomically with provenance).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import vstack
from numpy.typing import NDArray

from surveynet.config import from_dict
from surveynet.dla.catalog import Catalog, RefineGrids, SightlinePrediction
from surveynet.dla.config import CatalogConfig, DataConfig
from surveynet.dla.inputs import InputSpec, padded_input, search_pixels
from surveynet.dla.refine import DEFAULT_REFINERS, DLARefiner
from surveynet.dla.sightline import Sightline
from surveynet.dla.vet import resolve_vetter
from surveynet.errors import InputError, ModelFormatError

log = logging.getLogger(__name__)

#: Bundled model names used when ``--model`` is not given (high S/N, low S/N).
DEFAULT_MODELS = ("dla_fcn", "dla_fcn_lowsnr")


def _sigmoid(x: NDArray[Any]) -> NDArray[np.float64]:
    x = np.asarray(x, dtype=np.float64)
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))


class DLAFinder:
    """A saved DLA model with its numpy engine and preprocessing.

    Parameters
    ----------
    model : str or path
        Model directory or bundled model name (``config.json`` + ``model.safetensors``).
    dtype : numpy dtype
        Engine precision.
    batch_size : int
        Sightlines per FCN batch.
    """

    def __init__(
        self, model: str | os.PathLike[str], *, dtype: Any = np.float32, batch_size: int = 16
    ) -> None:
        from surveynet.io.model import load_model
        from surveynet.registry import get_numpy_engine

        saved = load_model(model, pipeline="dla")
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

    def predict(
        self, sightlines: Sequence[Sightline], *, calibrated: bool = True
    ) -> list[SightlinePrediction]:
        """Per-pixel outputs of each sightline (empty when no pixel is in the search range).

        With ``calibrated`` the model's ``preprocessing.offset_bias`` (median offset residual of
        its validation split, one value per output sub-pixel phase ``(pixel - first) % len``,
        measured at training time by :func:`offset_bias`) is subtracted from the offsets, and
        ``preprocessing.nhi_bias`` (median log N_HI residual, :func:`nhi_bias`) from the N_HI.
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
    """Per sightline: (pixel - first searched pixel, prediction - label) of ``field`` ("offset" or
    "nhi") on the labelled positive pixels, from the uncalibrated outputs."""
    from surveynet.dla.inputs import pixel_labels

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
        """Members' per-pixel outputs, averaged pixel by pixel (the constructor's checks make
        every member predict on the same pixels)."""
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
    """
    return _median([r for _, r in _positive_residuals(finder, sightlines, "nhi")])


def load_finder(model: str | os.PathLike[str]) -> Finder:
    """One finder: a model directory or bundled name, or several joined by '+' (an
    :class:`EnsembleFinder`; an existing directory whose name holds '+' is read as one model)."""
    text = str(model)
    if "+" in text and not Path(text).exists():
        return EnsembleFinder([DLAFinder(m) for m in text.split("+") if m])
    return DLAFinder(model)


def load_finders(models: Sequence[str | os.PathLike[str]] | None) -> list[Finder]:
    """Load the given models (:func:`load_finder`), or the bundled defaults that exist (high-
    then low-S/N)."""
    from surveynet.io.model import bundled_models_dir

    if models:
        return [load_finder(m) for m in models]
    found: list[Finder] = [
        DLAFinder(m) for m in DEFAULT_MODELS if (bundled_models_dir() / m).is_dir()
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
    """The refiners to apply in turn: None = the bundled :data:`DEFAULT_REFINERS` that are
    installed, "none" = no refinement, else model directories or bundled names (a list, or one
    string with comma-separated names). ``kwargs`` go to :class:`DLARefiner`."""
    from surveynet.io.model import bundled_models_dir

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
    return [DLARefiner(m, **kwargs) for m in names]


def route(finders: Sequence[Finder], s2n: float) -> Finder:
    """The finder whose S/N range contains ``s2n`` (the first one when none or several do)."""
    for fd in finders:
        if fd.s2n_range[0] <= s2n < fd.s2n_range[1]:
            return fd
    return finders[0]


def catalog_config_for(finder: Finder, base: CatalogConfig | None = None) -> CatalogConfig:
    """The catalogue config with the model's label half-width (vote normalisation follows it)."""
    from dataclasses import replace

    return replace(base or CatalogConfig(), samplerange=finder.samplerange)


def predict_sightlines(
    sightlines: Sequence[Sightline],
    finders: Sequence[Finder],
    catalog: CatalogConfig | None = None,
    *,
    refiner: DLARefiner | Sequence[DLARefiner] | None = None,
    refine_sightlines: RefineGrids = None,
    vetter: Any = None,
) -> Catalog:
    """Absorber catalogue of preprocessed sightlines (DLACAT + QSOCAT tables).

    Each sightline goes to the finder of its S/N range (:func:`route`); its per-pixel outputs are
    turned into absorbers by :func:`surveynet.dla.catalog.catalog_from_predictions` (dla.md §5)
    with the vote normalisation of that model's label half-width; a ``refiner`` (or several,
    in turn) moves every vote peak before the merge (``refine_sightlines``: TARGETID ->
    sightline on its grid, one mapping per refiner); a ``vetter``
    (:class:`surveynet.dla.vet.DLAVetter`) then sets DLA_CONFIDENCE and drops improbable ones.
    """
    from surveynet.dla.catalog import catalog_from_predictions

    groups: dict[int, list[int]] = {}
    for i, sl in enumerate(sightlines):
        groups.setdefault(id(route(finders, sl.s2n)), []).append(i)
    by_id = {id(f): f for f in finders}
    parts = []
    for fid, idx in groups.items():
        fd = by_id[fid]
        sub = [sightlines[i] for i in idx]
        preds = fd.predict(sub)
        parts.append(
            catalog_from_predictions(
                sub,
                preds,
                catalog_config_for(fd, catalog),
                rest_range=fd.spec.rest_range,
                refiner=refiner,
                refine_sightlines=refine_sightlines,
                vetter=vetter,
            )
        )
    return merge_catalogs(parts)


def merge_catalogs(parts: Sequence[Catalog]) -> Catalog:
    """Concatenate catalogues (an empty one when ``parts`` is empty)."""
    from surveynet.dla.catalog import catalog_from_predictions

    parts = [p for p in parts if p is not None]
    if not parts:
        return catalog_from_predictions([], [])
    dl = [p.dlas for p in parts if len(p.dlas)]
    return Catalog(dlas=vstack(dl) if dl else parts[0].dlas, qsos=vstack([p.qsos for p in parts]))


def predict_file(
    path: str,
    *,
    models: Sequence[str] | None = None,
    qso_catalog: str,
    truth: str | None = None,
    catalog: dict[str, Any] | None = None,
    skip_bal: bool = False,
    refiner: str | Sequence[str] | None = None,
    vetter: str | None = None,
) -> Catalog:
    """Catalogue of one DESI spectra/coadd file (module level, for the Dask runner).

    Parameters
    ----------
    path : str
        Spectra or coadd file.
    models : sequence of str, optional
        Model directories or bundled names (default :data:`DEFAULT_MODELS`).
    qso_catalog : str
        Redshift source: QuasarNET catalogue, zbest/redrock or truth file.
    truth : str, optional
        Truth file whose DLA_META absorbers are attached (not used by the finder).
    catalog : dict, optional
        :class:`~surveynet.dla.config.CatalogConfig` fields.
    skip_bal : bool
        Leave out quasars ``qso_catalog`` flags as BAL (``DataConfig.skip_bal``).
    refiner : str or sequence of str, optional
        Second-stage localisers applied in turn (model directories or bundled names); None: none.
    vetter : str, optional
        Absorber vetter (model directory or bundled name, :mod:`surveynet.dla.vet`); None: none.
    """
    import dataclasses

    from surveynet.dla.sightline import read_sightlines
    from surveynet.io.spectra import read_spectra

    finders = load_finders(models)
    ccfg = from_dict(CatalogConfig, catalog or {})
    refs = resolve_refiner(
        "none" if not refiner else refiner,
        iterations=ccfg.refine_iterations,
        nhi_weight=ccfg.refine_nhi_weight,
        shifts=ccfg.refine_shifts,
    )
    # models may read their sightlines differently (camera, pixel size): each S/N-routed model
    # gets the sightlines of its own data config (the S/N does not depend on the camera); the
    # file is read once
    vet = None if vetter is None else resolve_vetter(vetter, ccfg.vet_threshold)
    data_of = {id(fd): dataclasses.replace(fd.data, skip_bal=skip_bal) for fd in finders}
    configs = list(dict.fromkeys(data_of.values()))
    ref_data = [dataclasses.replace(r.data, skip_bal=skip_bal) for r in refs]
    n_reads = len(set(configs) | set(ref_data))
    spectra = read_spectra(path) if n_reads > 1 else path
    read = {d: read_sightlines(spectra, qso_catalog, d, truth_path=truth) for d in configs}
    for d in ref_data:  # each refiner crops sightlines on its own grid
        if d not in read:
            read[d] = read_sightlines(spectra, qso_catalog, d)
    grids = [{sl.targetid: sl for sl in read[d]} for d in ref_data]
    parts = []
    for d in configs:
        sls = read[d]
        if len(configs) > 1:
            sls = [sl for sl in sls if data_of[id(route(finders, sl.s2n))] == d]
        log.info("%s: %d sightlines (camera %s)", path, len(sls), d.camera)
        parts.append(
            predict_sightlines(
                sls, finders, ccfg, refiner=refs, refine_sightlines=grids, vetter=vet
            )
        )
    return parts[0] if len(parts) == 1 else merge_catalogs(parts)


def _model_dirs(models: Sequence[str]) -> list[str]:
    """Resolved directories of model names/paths ('+' joins ensemble members); unknown ones kept
    as given."""
    from surveynet.io.model import resolve_model_path

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


def predict_files(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    qso_catalog: str | os.PathLike[str],
    models: Sequence[str] | None = None,
    truth: str | os.PathLike[str] | None = None,
    catalog: CatalogConfig | None = None,
    workers: int = 0,
    scheduler: str | None = None,
    quiet: bool = False,
    overwrite: bool = False,
    skip_bal: bool = False,
    refiner: str | os.PathLike[str] | None = None,
    vetter: str | os.PathLike[str] | None = None,
) -> tuple[Path, int, Catalog]:
    """Run the finder over many files (Dask runner) and write one merged catalogue atomically.

    Bad files are reported (logged) and skipped; the others complete. ``skip_bal`` leaves out
    BAL-flagged quasars (see :func:`predict_file`). ``refiner``: the second-stage localiser
    (:func:`resolve_refiner`: None = the bundled ``dla_refiner``, "none" = no refinement).
    ``vetter``: the absorber vetter (:func:`surveynet.dla.vet.resolve_vetter`: None = the bundled
    ``dla_vetter``, "none" = none).

    Returns
    -------
    path : Path
        The catalogue written.
    n_failed : int
        Number of input files that failed.
    catalog : Catalog
        The merged catalogue.
    """
    from surveynet.config import to_dict
    from surveynet.dla.catalog import write_catalog
    from surveynet.runner import report_failures, run_batch

    if not inputs:
        raise InputError("no input files")
    finders = load_finders(models)  # fail early on a bad model
    refs = resolve_refiner(refiner)
    names = [str(m) for m in models] if models else [f.name for f in finders]
    model_paths = [f.source for f in finders]
    hashes_full = [h for f in finders for h in f.weights_hashes]
    for r in refs:
        names.append(r.name)
        hashes_full.append(r.saved.weights_hash)
    ccfg = catalog or CatalogConfig()
    vet = resolve_vetter(vetter, ccfg.vet_threshold)
    if vet is not None:
        names.append(vet.name)
        hashes_full.append(vet.saved.weights_hash)
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
    results = run_batch(
        predict_file,
        [str(p) for p in inputs],
        workers=workers,
        scheduler=scheduler,
        quiet=quiet,
        desc="dla predict",
        models=model_paths,
        qso_catalog=str(qso_catalog),
        truth=None if truth is None else str(truth),
        catalog=to_dict(ccfg),
        skip_bal=skip_bal,
        refiner=[str(r.saved.path) for r in refs],
        vetter=None if vet is None else str(vet.saved.path),
    )
    n_bad = report_failures(results)
    good = [r.value for r in results if r.ok]
    if not good:
        raise InputError(f"all {len(results)} input files failed (first: {results[0].error})")
    merged = merge_catalogs(good)
    # short header values (FITS cards are 80 characters; full paths and hashes are logged)
    short = "+".join(Path(n).name for n in names)[:68]
    # (at most 23 characters: the MODELHSH card and its comment fill 80)
    width = max(3, min(16, (24 - len(hashes_full)) // len(hashes_full)))
    hashes = "+".join(h[:width] for h in hashes_full)[:33]
    extra = "".join(f" + refiner {r.saved.path}" for r in refs)
    extra += "" if vet is None else f" + vetter {vet.saved.path}"
    log.info("models %s%s (sha256 %s)", model_paths, extra, hashes_full)
    path = write_catalog(
        out, merged, config=ccfg, model_name=short, model_hash=hashes, overwrite=overwrite
    )
    return Path(path), n_bad, merged
