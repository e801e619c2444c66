"""Seeded DESI-like spectral mocks: quasars (forest, DLAs, BALs), stars, galaxies and bad spectra.

This module is the public front of the simulator: :func:`simulate_spectra` returns a
:class:`~surveynet.io.spectra.Spectra` on the DESI B/R/Z grids (0.8 A) plus truth tables;
:func:`simulate_to_files` writes DESI coadd files and ``truth.fits``; :class:`SpectraSimConfig`,
:func:`preset_config` and :func:`parse_mix` configure them. Physics follows simulation.md
sections 2-5 (constants cited there and in :mod:`surveynet.constants`,
:mod:`surveynet.sim.instrument` and :mod:`surveynet.sim.igm`). Two modes:

- **parametric** (default, no external file): broken power-law quasar continua with Vanden Berk et
  al. (2001) emission lines, Planck stars with absorption lines, two-population galaxies with D4000
  and nebular lines;
- **template** (``templates=PATH``, e.g. ``../shared/data/templates``): quasar continua = real BOSS
  PCA coefficients @ the SDSS eigenspectra (redrock ``rrtemplate-QSO-None-v0.1.fits``), Pickles
  stars, KC96 and desisim LRG galaxies (see :mod:`surveynet.sim.templates`). Three switches widen
  it (template mode only; defaults off): ``star_library`` (redrock A-M, WD and CV archetype
  stars), ``bal_source="templates"`` (real desisim BAL troughs) and ``qso_host`` (KC96 host light
  under low-z quasars); see :class:`SpectraSimConfig`.

The implementation is split by concern:

=================================  =====================================================
:mod:`surveynet.sim.config`        :class:`SpectraSimConfig`, presets, class mixes
:mod:`surveynet.sim.population`    class quotas, TARGETIDs, redshifts, magnitudes, seeding
:mod:`surveynet.sim.grid`          the master grid (cached) and line profiles on it
:mod:`surveynet.sim.quasars`       quasar continua and emission lines
:mod:`surveynet.sim.absorbers`     forest, Lyman-limit systems, BALs, DLAs
:mod:`surveynet.sim.stars`         stars
:mod:`surveynet.sim.galaxies`      galaxies
:mod:`surveynet.sim.observe`       magnitudes, exposure, LSF, noise, masks, BAD modes
:mod:`surveynet.sim.truth`         TRUTH, DLA_META, TRUTH_QSO and the FIBERMAP
:mod:`surveynet.sim.driver`        batches and :func:`simulate_spectra`
:mod:`surveynet.sim.files`         :func:`simulate_to_files`
=================================  =====================================================

Randomness: run-level draws (class quotas, BAD sources) come from ``default_rng(seed)``; each batch
of ``batch_size`` spectra has its own ``default_rng([seed, batch_index])``, vectorised over its
spectra. A given (seed, n, config) is therefore bit-reproducible, any batch can be regenerated on
its own, and :func:`simulate_to_files` streams file by file with the same result as one in-memory
run. TARGETIDs are ``targetid_base(seed) + row``. Nothing is computed at import.

The DLAs' own signal is available without touching the simulator's internals:
``simulate_spectra(..., return_model=True, return_dla_free_model=True)`` returns the noise-free
model with and without them.
"""

from __future__ import annotations

from surveynet.sim.config import PRESETS, SpectraSimConfig, apply_mix, parse_mix, preset_config
from surveynet.sim.driver import simulate_spectra
from surveynet.sim.files import simulate_to_files
from surveynet.sim.galaxies import GALAXY_SUBTYPES
from surveynet.sim.observe import (
    BAD_MODES,
    FIBERSTATUS_DEAD,
    MASK_BADFIBER,
    MASK_BADPIX,
    MASK_COSMIC,
)
from surveynet.sim.population import CLASSES, draw_zmag, load_zmag_table, targetid_base
from surveynet.sim.quasars import QSO_INFO_COLUMNS, QSO_LINES, qso_line_profile
from surveynet.sim.stars import BALMER, CA_HK, HC_OVER_K, MG_B, NA_D, TIO_HEADS
from surveynet.sim.truth import truth_qso_table

__all__ = [
    "BAD_MODES",
    "BALMER",
    "CA_HK",
    "CLASSES",
    "FIBERSTATUS_DEAD",
    "GALAXY_SUBTYPES",
    "HC_OVER_K",
    "MASK_BADFIBER",
    "MASK_BADPIX",
    "MASK_COSMIC",
    "MG_B",
    "NA_D",
    "PRESETS",
    "QSO_INFO_COLUMNS",
    "QSO_LINES",
    "TIO_HEADS",
    "SpectraSimConfig",
    "apply_mix",
    "draw_zmag",
    "load_zmag_table",
    "parse_mix",
    "preset_config",
    "qso_line_profile",
    "simulate_spectra",
    "simulate_to_files",
    "targetid_base",
    "truth_qso_table",
]
