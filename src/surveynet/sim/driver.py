"""The spectral-mock driver: batches of rows simulated and assembled into :class:`Spectra`.

A run is a :class:`~surveynet.sim.population.SimPlan` (classes, BAD sources, TARGETIDs drawn from
``default_rng(seed)``) cut into batches of ``batch_size`` rows, each simulated with its own
``default_rng([seed, batch_index])`` (:func:`~surveynet.sim.population.batch_rng`), so that any
range of rows can be produced alone with the same result (:func:`run_rows`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.errors import ConfigError
from surveynet.io.container import Spectra
from surveynet.sim import instrument
from surveynet.sim.config import SpectraSimConfig, apply_mix
from surveynet.sim.galaxies import make_galaxies
from surveynet.sim.instrument import BANDS, N_MASTER
from surveynet.sim.observe import normalise_to_magnitudes, observe
from surveynet.sim.population import (
    SimPlan,
    batch_rng,
    draw_qso_redshifts,
    make_plan,
    power_law_mags,
    sky_positions,
)
from surveynet.sim.quasars import QSO_INFO_COLUMNS, make_qsos
from surveynet.sim.stars import make_stars
from surveynet.sim.templates import TemplateLibrary
from surveynet.sim.truth import (
    TRUTH_COLUMNS,
    dla_table,
    empty_truth,
    fibermap_table,
    truth_table,
)

__all__ = ["BatchResult", "load_templates", "run_rows", "simulate_batch", "simulate_spectra"]


@dataclass
class BatchResult:
    """What one batch returns besides the observed arrays.

    Attributes
    ----------
    truth : dict of str to ndarray
        Truth columns (:data:`~surveynet.sim.truth.TRUTH_COLUMNS` plus the private ``_FLUX``
        and ``_FIBERSTATUS``).
    dlas : list of dict
        DLA rows (:func:`surveynet.sim.absorbers.insert_dlas`).
    model : ndarray of shape (n, 7781), float32
        Noise-free models in flux units before the LSF.
    model_no_dla : ndarray of shape (n, 7781), float32, or None
        The same without the DLAs (when asked for).
    """

    truth: dict[str, NDArray[Any]]
    dlas: list[dict[str, Any]]
    model: NDArray[np.float32]
    model_no_dla: NDArray[np.float32] | None = None


def simulate_batch(
    rng: np.random.Generator,
    cls: NDArray[np.str_],
    src: NDArray[np.str_],
    tid: NDArray[np.int64],
    cfg: SpectraSimConfig,
    templates: Any,
    out_flux: dict[str, NDArray[np.float32]],
    out_ivar: dict[str, NDArray[np.float32]],
    out_mask: dict[str, NDArray[np.int32]],
    *,
    keep_dla_free: bool = False,
) -> BatchResult:
    """Simulate one batch of spectra into the given output arrays.

    Draw order (part of the seeding): quasars (redshifts, magnitudes, models), stars, galaxies,
    then the observation (:func:`surveynet.sim.observe.observe`).

    Parameters
    ----------
    rng : numpy.random.Generator
        The batch generator.
    cls, src : ndarray of str, shape (n,)
        Class and source class of each row.
    tid : ndarray of int64, shape (n,)
        TARGETIDs.
    cfg : SpectraSimConfig
        The configuration.
    templates : TemplateLibrary or None
        Template mode when given.
    out_flux, out_ivar, out_mask : dict of str to ndarray of shape (n, n_pix_arm)
        Views of the run's output arrays (written).
    keep_dla_free : bool
        Also return the models without their DLAs.

    Returns
    -------
    BatchResult
    """
    n = cls.size
    model = np.empty((n, N_MASTER), dtype=np.float32)
    truth = empty_truth(n)
    truth["TARGETID"][:] = tid
    truth["OBJTYPE"][:] = cls
    truth["SOURCETYPE"][:] = src
    truth["MAGFILTER"][:] = "r"
    mags = np.zeros(n)
    dlas: list[dict[str, Any]] = []
    qso_no_dla = None
    # ---- quasars (also the sources of BAD spectra drawn as QSO)
    iq = np.nonzero(src == "QSO")[0]
    if iq.size:
        z, mags[iq] = draw_qso_redshifts(rng, iq.size, cfg)
        m, info = make_qsos(rng, z, tid[iq], cfg, templates, keep_dla_free=keep_dla_free)
        model[iq] = m
        truth["Z"][iq] = z
        truth["SUBTYPE"][iq] = np.where(z >= cfg.qso_z_split, "HZ", "LZ")
        for k in QSO_INFO_COLUMNS:
            truth[k][iq] = info[k]
        dlas = info["DLAS"]
        qso_no_dla = info.get("MODEL_NO_DLA")
    # ---- stars
    js = np.nonzero(src == "STAR")[0]
    if js.size:
        mags[js] = power_law_mags(rng, js.size, *cfg.star_mag_range, cfg.mag_slope)
        m, info = make_stars(rng, js.size, cfg, templates)
        model[js] = m
        for k in ("Z", "TEFF", "SUBTYPE", "TEMPLATEID"):
            truth[k][js] = info[k]
    # ---- galaxies
    jg = np.nonzero(src == "GALAXY")[0]
    if jg.size:
        mags[jg] = power_law_mags(rng, jg.size, *cfg.galaxy_mag_range, cfg.mag_slope)
        m, info = make_galaxies(rng, jg.size, cfg, templates)
        model[jg] = m
        for k in ("Z", "SUBTYPE", "D4000", "TEMPLATEID"):
            truth[k][jg] = info[k]
    no_dla = None
    if keep_dla_free:
        no_dla = model.copy()
        if qso_no_dla is not None:
            no_dla[iq] = qso_no_dla
    # ---- normalise to the drawn r magnitude (synthetic photometry of the noise-free model)
    scale, truth["_FLUX"] = normalise_to_magnitudes(model, mags)
    if no_dla is not None:
        no_dla *= scale[:, None]
    truth["MAG"][:] = mags
    observe(rng, model, cls, src, truth, cfg, out_flux, out_ivar, out_mask)
    return BatchResult(truth=truth, dlas=dlas, model=model, model_no_dla=no_dla)


def load_templates(templates: Any, cfg: SpectraSimConfig) -> Any:
    """The template library of the template mode, or None for the parametric mode.

    Parameters
    ----------
    templates : path-like, TemplateLibrary or None
        Template folder or an already loaded library.
    cfg : SpectraSimConfig
        ``forest_fit`` (used to remove the templates' own mean forest).

    Returns
    -------
    TemplateLibrary or None

    Raises
    ------
    ConfigError
        A widened-template option (``star_library``, ``bal_source``, ``qso_host``,
        ``star_bands``, ``star_cv_lines``) set without templates.
    InputError
        A template file that the configuration needs is missing (named).
    """
    if templates is None:
        if cfg.widened:
            raise ConfigError(
                "star_library, bal_source, qso_host, star_bands and star_cv_lines need the "
                f"template mode (--templates DIR); got star_library={cfg.star_library!r}, "
                f"bal_source={cfg.bal_source!r}, qso_host={cfg.qso_host}, "
                f"star_bands={cfg.star_bands}, star_cv_lines={cfg.star_cv_lines}"
            )
        return None
    lib = (
        templates
        if isinstance(templates, TemplateLibrary)
        else TemplateLibrary.load(templates, forest_fit=cfg.forest_fit)
    )
    lib.require(star_library=cfg.star_library, bal_source=cfg.bal_source, qso_host=cfg.qso_host)
    return lib


def run_rows(
    plan: SimPlan,
    start: int,
    stop: int,
    cfg: SpectraSimConfig,
    lib: Any,
    *,
    return_model: bool = False,
    return_dla_free_model: bool = False,
) -> tuple[Spectra, dict[str, Table]]:
    """Spectra and truth of rows ``start:stop`` of a plan (simulating the batches covering them).

    Parameters
    ----------
    plan : SimPlan
        The run.
    start, stop : int
        Row range.
    cfg : SpectraSimConfig
        The configuration (``batch_size`` fixes the batches).
    lib : TemplateLibrary or None
        From :func:`load_templates`.
    return_model, return_dla_free_model : bool
        As :func:`simulate_spectra`.

    Returns
    -------
    spectra : Spectra
    truth : dict of str to Table
    """
    bs = cfg.batch_size
    b_lo, b_hi = start // bs, (stop + bs - 1) // bs if stop > start else start // bs
    r0 = b_lo * bs
    r1 = min(b_hi * bs, plan.n)
    nrow = max(r1 - r0, 0)
    waves = {b: instrument.arm_wave(b) for b in BANDS}
    flux = {b: np.empty((nrow, waves[b].size), dtype=np.float32) for b in BANDS}
    ivar = {b: np.empty((nrow, waves[b].size), dtype=np.float32) for b in BANDS}
    mask = {b: np.empty((nrow, waves[b].size), dtype=np.int32) for b in BANDS}
    parts = []
    models: list[NDArray[np.float32]] = []
    no_dla: list[NDArray[np.float32]] = []
    for bi in range(b_lo, b_hi):
        s, e = bi * bs, min(plan.n, (bi + 1) * bs)
        rng = batch_rng(plan.seed, bi)
        res = simulate_batch(
            rng,
            plan.cls[s:e],
            plan.src[s:e],
            plan.tid[s:e],
            cfg,
            lib,
            {b: flux[b][s - r0 : e - r0] for b in BANDS},
            {b: ivar[b][s - r0 : e - r0] for b in BANDS},
            {b: mask[b][s - r0 : e - r0] for b in BANDS},
            keep_dla_free=return_dla_free_model,
        )
        res.truth["_RA"], res.truth["_DEC"] = sky_positions(rng, e - s)
        parts.append((res.truth, res.dlas))
        if return_model:
            models.append(res.model)
        if res.model_no_dla is not None:
            no_dla.append(res.model_no_dla)
    keys = (*[c for c, _ in TRUTH_COLUMNS], "_FIBERSTATUS", "_FLUX", "_RA", "_DEC")
    if parts:
        tcols = {k: np.concatenate([p[0][k] for p in parts]) for k in keys}
    else:
        tcols = dict(empty_truth(0))
        tcols.update(
            _FIBERSTATUS=np.zeros(0, np.int32),
            _FLUX=np.zeros((0, 3), np.float32),
            _RA=np.zeros(0),
            _DEC=np.zeros(0),
        )
    # trim to start:stop
    sl = slice(start - r0, stop - r0)
    n = max(stop - start, 0)
    tcols = {k: v[sl] for k, v in tcols.items()}
    flux = {b: flux[b][sl] for b in BANDS}
    ivar = {b: ivar[b][sl] for b in BANDS}
    mask = {b: mask[b][sl] for b in BANDS}
    resolution = None
    if cfg.resolution:
        resolution = {
            b: np.broadcast_to(
                instrument.resolution_data(cfg.lsf_sigma(b), waves[b].size),
                (n, instrument.N_DIAG, waves[b].size),
            )
            for b in BANDS
        }
    keep = set(np.asarray(tcols["TARGETID"]).tolist())
    spectra = Spectra(
        bands=BANDS,
        wave=waves,
        flux=flux,
        ivar=ivar,
        fibermap=fibermap_table(tcols, n, start),
        mask=mask,
        resolution=resolution,
        meta={"SIMSEED": plan.seed, "SIMMODE": "template" if lib is not None else "parametric"},
        source=None,
    )
    truth = {
        "TRUTH": truth_table(tcols),
        "DLA_META": dla_table([r for p in parts for r in p[1] if r["TARGETID"] in keep]),
    }
    if return_model or return_dla_free_model:
        empty = np.zeros((0, N_MASTER), np.float32)
        truth["MODEL"] = Table()
        if return_model:
            truth["MODEL"]["FLUX"] = (np.concatenate(models) if models else empty)[sl]
        if return_dla_free_model:
            truth["MODEL"]["FLUX_NO_DLA"] = (np.concatenate(no_dla) if no_dla else empty)[sl]
    return spectra, truth


def simulate_spectra(
    n: int,
    seed: int,
    *,
    config: SpectraSimConfig | None = None,
    mix: dict[str, float] | None = None,
    templates: str | os.PathLike[str] | Any | None = None,
    return_model: bool = False,
    return_dla_free_model: bool = False,
) -> tuple[Spectra, dict[str, Table]]:
    """Simulate ``n`` DESI-like spectra.

    Parameters
    ----------
    n : int
        Number of spectra.
    seed : int
        Seed of the ``numpy.random.Generator``; also fixes the TARGETIDs
        (:func:`~surveynet.sim.population.targetid_base`).
    config : SpectraSimConfig, optional
        Defaults to ``SpectraSimConfig()``.
    mix : dict, optional
        Class fractions ``{"qso": .., "star": .., "galaxy": .., "bad": ..}`` overriding the
        config's; without ``bad`` the BAD share stays ``config.frac_bad`` and the others are
        rescaled.
    templates : path-like, optional
        Template folder (e.g. ``../shared/data/templates``) for the template mode, or a loaded
        :class:`surveynet.sim.templates.TemplateLibrary`.
    return_model : bool
        Also return the noise-free model before the LSF, on the 3600-9824 A master grid
        (:func:`surveynet.sim.instrument.master_wave`), as ``truth["MODEL"]["FLUX"]`` (n, 7781); for
        tests.
    return_dla_free_model : bool
        Also return, as ``truth["MODEL"]["FLUX_NO_DLA"]`` (n, 7781), the same noise-free model
        without the DLAs (everything else, forest, BALs and Lyman-limit systems included, is
        kept; equal to the model for spectra without DLAs). The DLAs' own signal is the
        difference; the draws, and so the spectra, are unchanged.

    Returns
    -------
    spectra : Spectra
        Bands b/r/z, flux and ivar in 1e-17 erg/s/cm^2/A (float32), mask (int32), resolution
        (n, 11, n_pix) float32 (shared rows, read-only view) unless ``config.resolution`` is False.
    truth : dict of str to Table
        ``TRUTH`` (one row per spectrum: TARGETID, OBJTYPE QSO/STAR/GALAXY/BAD, SUBTYPE, SOURCETYPE,
        Z, MAG, MAGFILTER, IS_BAL, BI_CIV, AI_CIV, LOBAL, N_DLA, N_LLS, TEFF, D4000, ALPHA,
        CIV_SHIFT, TEMPLATEID, FOREST_IN_TEMPLATE, EXPFACTOR, DEAD_FIBRE, Z_CONF, SNR_MEDIAN,
        SNR_1420) and
        ``DLA_META`` (TARGETID, Z_DLA, NHI, DLAID = TARGETID * 1000 + k, Z_QSO); ``MODEL`` when
        asked for.

    Examples
    --------
    >>> spec, truth = simulate_spectra(4, seed=1)
    >>> spec.n_spec, spec.flux["b"].shape
    (4, (4, 2751))
    """
    cfg = apply_mix(config or SpectraSimConfig(), mix)
    lib = load_templates(templates, cfg)
    plan = make_plan(n, seed, cfg)
    return run_rows(
        plan,
        0,
        n,
        cfg,
        lib,
        return_model=return_model,
        return_dla_free_model=return_dla_free_model,
    )
