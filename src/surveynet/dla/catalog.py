"""DLA catalogue tables: columns, units, the :class:`Catalog` container, FITS writing and reading.

The FITS catalogue (:func:`write_catalog`) has EXTNAME ``DLACAT`` with the columns picca reads
(TARGETID, Z_QSO, Z_DLA, NHI, DLA_CONFIDENCE, ABSORBER_TYPE, S2N, DLAID; never ``Z``), plus
NHI_STD, TARGET_RA, TARGET_DEC, and ``QSOCAT`` listing every searched sightline (TARGETID, Z_QSO,
S2N, N_DLA, WAVE_MIN, WAVE_MAX: the observed range searched), used by the evaluation to know
which truth absorbers could have been found. Both tables end with SOURCE (input file name) and
ROW (the spectrum's row in it), and PLATE, MJD, FIBERID when the input is an SDSS file
(:func:`add_source_columns`). When some input files failed, a ``FAILED`` table
(SOURCE, ERROR) lists them.

The absorber rows come from :mod:`surveynet.dla.postprocess` (vote peaks, then typing);
:func:`catalog_from_rows` tabulates them. :func:`catalog_from_predictions` is the plain chain
finder outputs -> vote peaks -> catalogue, without the refine and vet stages that
:mod:`surveynet.dla.predict` adds between the peaks and the typing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from surveynet.config import config_hash, header_cards
from surveynet.constants import LYA_REST
from surveynet.dla.config import VET_COLUMN_PREFIX, VET_FEATURES, DLAConfig, PredictConfig
from surveynet.dla.postprocess import (
    SightlinePrediction,
    peak_rows,
    searched_predictions,
    type_absorbers,
)
from surveynet.dla.sightline import Sightline
from surveynet.errors import InputError
from surveynet.io.fits import provenance_header, table_hdu, write_hdulist
from surveynet.io.sdss import SDSS_ID_COLUMNS, with_fiberid
from surveynet.predict import ModelCard, model_cards

__all__ = [
    "DLA_COLUMNS",
    "HEADER_KEYS",
    "QSO_COLUMNS",
    "Catalog",
    "add_source_columns",
    "catalog_from_predictions",
    "catalog_from_rows",
    "merge_catalogs",
    "read_catalog",
    "rows_table",
    "write_catalog",
]

#: Columns of the DLACAT table, in order.
DLA_COLUMNS = (
    "TARGETID",
    "Z_QSO",
    "Z_DLA",
    "NHI",
    "NHI_STD",
    "DLA_CONFIDENCE",
    "ABSORBER_TYPE",
    "S2N",
    "DLAID",
    "TARGET_RA",
    "TARGET_DEC",
)
_UNITS = {"TARGET_RA": "deg", "TARGET_DEC": "deg", "WAVE_MIN": "Angstrom", "WAVE_MAX": "Angstrom"}
#: Column comments (log quantities have no FITS-standard unit, so they are described here).
_COMMENTS = {
    "NHI": "log10 N_HI [cm-2]",
    "NHI_STD": "std of window log10 N_HI [dex]",
    "Z_DLA": "absorber redshift (Lyman-alpha)",
    "DLA_CONFIDENCE": "P(real) of the vetter, else min(1, votes)",
    "S2N": "median flux/error, rest 1420-1480 A",
    "WAVE_MIN": "bluest searched window centre",
    "WAVE_MAX": "reddest searched window centre",
}


#: Primary-header cards summarising the resolved config (with ``CFGHASH``, its hash).
HEADER_KEYS = {
    "PEAKTHR": "predict.peak_thresh",
    "PEAKDIP": "predict.dip",
    "LEVEL1": "predict.level1",
    "NHIRAD": "predict.nhi_radius",
    "SKIPBAL": "predict.skip_bal",
    "MERGECOR": "predict.merge_core",
    "VETTHR": "predict.vet_threshold",
}

#: Columns of the QSOCAT table, in order.
QSO_COLUMNS = (
    "TARGETID",
    "Z_QSO",
    "S2N",
    "TARGET_RA",
    "TARGET_DEC",
    "N_DLA",
    "WAVE_MIN",
    "WAVE_MAX",
)


@dataclass
class Catalog:
    """A DLA catalogue: absorbers (``dlas``, DLACAT) and searched sightlines (``qsos``, QSOCAT).

    Attributes
    ----------
    dlas : Table
        One row per absorber (:data:`DLA_COLUMNS`, plus ``VET_*`` feature columns on request).
    qsos : Table
        One row per searched sightline (:data:`QSO_COLUMNS`).
    """

    dlas: Table
    qsos: Table

    def __len__(self) -> int:
        return len(self.dlas)

    @classmethod
    def empty(cls) -> Catalog:
        """A catalogue without absorbers or sightlines.

        Returns
        -------
        Catalog
            Empty DLACAT and QSOCAT tables with their columns.
        """
        return cls(dlas=_empty_dlacat(), qsos=_qsocat([], []))


def _empty_dlacat() -> Table:
    return Table(
        {
            "TARGETID": np.zeros(0, np.int64),
            "Z_QSO": np.zeros(0),
            "Z_DLA": np.zeros(0),
            "NHI": np.zeros(0),
            "NHI_STD": np.zeros(0),
            "DLA_CONFIDENCE": np.zeros(0),
            "ABSORBER_TYPE": np.zeros(0, "U6"),
            "S2N": np.zeros(0),
            "DLAID": np.zeros(0, "U32"),
            "TARGET_RA": np.zeros(0),
            "TARGET_DEC": np.zeros(0),
        }
    )


def rows_table(
    sightline: Sightline, rows: Sequence[dict[str, Any]], *, vet_features: bool = False
) -> Table:
    """DLACAT table of one sightline's finished absorber rows, sorted by Z_DLA.

    Parameters
    ----------
    sightline : Sightline
        The sightline (TARGETID, Z_QSO, S2N, TARGET_RA, TARGET_DEC).
    rows : sequence of dict
        :func:`surveynet.dla.postprocess.type_absorbers` rows (``WAVE``, ``NHI``, ``NHI_STD``,
        ``DLA_CONFIDENCE``, ``ABSORBER_TYPE``; ``FEATURES`` with ``vet_features``).
    vet_features : bool
        Add the vetter features as columns ``VET_<NAME>``.

    Returns
    -------
    Table
        :data:`DLA_COLUMNS` (and the feature columns), one row per absorber.
    """
    z = [r["WAVE"] / LYA_REST - 1.0 for r in rows]
    order = np.argsort(z, kind="stable")
    n = len(rows)
    t = Table(
        {
            "TARGETID": np.full(n, sightline.targetid, np.int64),
            "Z_QSO": np.full(n, sightline.z_qso),
            "Z_DLA": np.array(z, float)[order],
            "NHI": np.array([rows[i]["NHI"] for i in order], float),
            "NHI_STD": np.array([rows[i]["NHI_STD"] for i in order], float),
            "DLA_CONFIDENCE": np.array([rows[i]["DLA_CONFIDENCE"] for i in order], float),
            "ABSORBER_TYPE": np.array([rows[i]["ABSORBER_TYPE"] for i in order], dtype="U6"),
            "S2N": np.full(n, sightline.s2n),
            "DLAID": np.array([f"{sightline.targetid}{k:03d}" for k in range(n)], dtype="U32"),
            "TARGET_RA": np.full(n, sightline.ra),
            "TARGET_DEC": np.full(n, sightline.dec),
        }
    )
    if vet_features:
        for j, name in enumerate(VET_FEATURES):
            t[VET_COLUMN_PREFIX + name.upper()] = np.array(
                [rows[i]["FEATURES"][j] for i in order], float
            )
    return t


def _qsocat(
    sightlines: Sequence[Sightline],
    parts: Sequence[tuple[SightlinePrediction, Table]],
) -> Table:
    """QSOCAT rows: each searched sightline with its DLA count and searched observed range."""
    q: dict[str, list[Any]] = {k: [] for k in QSO_COLUMNS}
    for sl, (pred, t) in zip(sightlines, parts, strict=True):
        w = sl.wave
        q["TARGETID"].append(sl.targetid)
        q["Z_QSO"].append(sl.z_qso)
        q["S2N"].append(sl.s2n)
        q["TARGET_RA"].append(sl.ra)
        q["TARGET_DEC"].append(sl.dec)
        q["N_DLA"].append(int(np.sum(t["ABSORBER_TYPE"] == "DLA")))
        q["WAVE_MIN"].append(float(w[pred.pixel[0]]) if pred.pixel.size else np.nan)
        q["WAVE_MAX"].append(float(w[pred.pixel[-1]]) if pred.pixel.size else np.nan)
    return Table(
        {
            "TARGETID": np.array(q["TARGETID"], np.int64),
            "Z_QSO": np.array(q["Z_QSO"], float),
            "S2N": np.array(q["S2N"], float),
            "TARGET_RA": np.array(q["TARGET_RA"], float),
            "TARGET_DEC": np.array(q["TARGET_DEC"], float),
            "N_DLA": np.array(q["N_DLA"], np.int32),
            "WAVE_MIN": np.array(q["WAVE_MIN"], float),
            "WAVE_MAX": np.array(q["WAVE_MAX"], float),
        }
    )


def catalog_from_rows(
    sightlines: Sequence[Sightline],
    predictions: Sequence[SightlinePrediction],
    rows: Sequence[Sequence[dict[str, Any]]],
    *,
    vet_features: bool = False,
) -> Catalog:
    """The catalogue of a set of sightlines from their finished absorber rows.

    Parameters
    ----------
    sightlines : sequence of Sightline
        The searched sightlines.
    predictions : sequence of SightlinePrediction
        Each sightline's predictions at its searched pixels (their first and last pixels give
        QSOCAT's WAVE_MIN and WAVE_MAX).
    rows : sequence of lists of dict
        Each sightline's :func:`surveynet.dla.postprocess.type_absorbers` rows.
    vet_features : bool
        Add the vetter features as ``VET_<NAME>`` columns.

    Returns
    -------
    Catalog
    """
    parts = []
    for sl, pred, r in zip(sightlines, predictions, rows, strict=True):
        parts.append((pred, rows_table(sl, r, vet_features=vet_features)))
    tables = [t for _, t in parts]
    dlas = vstack([t for t in tables if len(t)]) if any(len(t) for t in tables) else _empty_dlacat()
    return Catalog(dlas=dlas, qsos=_qsocat(sightlines, parts))


def catalog_from_predictions(
    sightlines: Sequence[Sightline],
    predictions: Sequence[SightlinePrediction],
    config: PredictConfig | None = None,
    *,
    rest_range: tuple[float, float] | None = (900.0, 1346.0),
) -> Catalog:
    """Finder outputs -> vote peaks -> catalogue (no refine or vet stage).

    :func:`surveynet.dla.predict.catalog_with_stages` is the same chain with the refiners and
    the vetter between the peaks and the typing.

    Parameters
    ----------
    sightlines : sequence of Sightline
        The sightlines.
    predictions : sequence of SightlinePrediction
        One per sightline, same order. Window CNN: ``pixel`` = window-centre pixels; fully
        convolutional model: :meth:`SightlinePrediction.from_pixels` of the per-pixel outputs.
    config : PredictConfig, optional
        Peak finding and typing.
    rest_range : tuple of float or None
        Only predictions at pixels with rest wavelength in this range vote; None keeps all.

    Returns
    -------
    Catalog
    """
    cfg = config or PredictConfig()
    searched = searched_predictions(sightlines, predictions, rest_range)
    rows = [
        type_absorbers(peak_rows(sl, pred, cfg), cfg)
        for sl, pred in zip(sightlines, searched, strict=True)
    ]
    return catalog_from_rows(sightlines, searched, rows)


def merge_catalogs(parts: Sequence[Catalog]) -> Catalog:
    """Concatenate catalogues.

    Parameters
    ----------
    parts : sequence of Catalog
        Catalogues (None entries are skipped).

    Returns
    -------
    Catalog
        Their rows in order (an empty catalogue when ``parts`` is empty).
    """
    parts = [p for p in parts if p is not None]
    if not parts:
        return Catalog.empty()
    dl = [p.dlas for p in parts if len(p.dlas)]
    return Catalog(
        dlas=_filled(vstack(dl)) if dl else parts[0].dlas,
        qsos=_filled(vstack([p.qsos for p in parts])),
    )


def _filled(t: Table) -> Table:
    """``t`` with masked cells (columns absent from some stacked parts) filled: -1 or ''."""
    for c in t.colnames:
        if getattr(t[c], "mask", None) is not None and np.any(t[c].mask):
            kind = t[c].dtype.kind
            t[c] = t[c].filled(np.nan if kind == "f" else "" if kind in "US" else -1)
    return t




def add_source_columns(catalog: Catalog, fibermap: Table, source: str) -> Catalog:
    """Add SOURCE, ROW (and PLATE, MJD, FIBERID for SDSS inputs) to both tables, by TARGETID.

    Parameters
    ----------
    catalog : Catalog
        The catalogue of one input file.
    fibermap : astropy.table.Table
        That file's FIBERMAP (``Spectra.fibermap``): ROW is the row of the TARGETID in it;
        PLATE, MJD and FIBERID are copied when present.
    source : str
        The input file name (column SOURCE).

    Returns
    -------
    Catalog
        The same catalogue, its tables with the new columns appended.
    """
    tid = np.asarray(fibermap["TARGETID"], np.int64)
    row_of = {int(t): i for i, t in enumerate(tid)}
    fibermap = with_fiberid(fibermap)
    ids = [c for c in SDSS_ID_COLUMNS if c in fibermap.colnames]
    for t in (catalog.dlas, catalog.qsos):
        rows = np.array([row_of.get(int(x), -1) for x in t["TARGETID"]], dtype=np.int32)
        t["SOURCE"] = np.array([source] * len(t), dtype=f"U{max(len(source), 1)}")
        t["ROW"] = rows
        for c in ids:
            v = np.asarray(fibermap[c], np.int64)
            t[c] = np.where(rows >= 0, v[np.maximum(rows, 0)], -1).astype(np.int32)
    return catalog


def write_catalog(
    path: str | os.PathLike[str],
    catalog: Catalog,
    *,
    config: Any = None,
    model_name: str | None = None,
    model_hash: str | None = None,
    seed: int | None = None,
    failed: Table | None = None,
    overwrite: bool = False,
    models: Sequence[ModelCard] = (),
    n_inputs: int | None = None,
    config_file: str | os.PathLike[str] | None = None,
    extra_cards: dict[str, tuple[Any, str]] | None = None,
) -> Path:
    """Write a catalogue as FITS (DLACAT + QSOCAT [+ FAILED], provenance header), atomically.

    Parameters
    ----------
    path : str or os.PathLike
        File to write.
    catalog : Catalog
        The catalogue.
    config : DLAConfig, PredictConfig or dict, optional
        Resolved configuration; its hash goes into the header (``CFGHASH``) and, for a
        :class:`~surveynet.dla.config.DLAConfig` (or its ``predict`` section), a summary of the
        catalogue step (:data:`HEADER_KEYS`).
    model_name, model_hash : str, optional
        Provenance cards ``MODEL`` and ``MODELHSH``.
    seed : int, optional
        Provenance card ``SEED``.
    failed : Table, optional
        Input files that failed (``SOURCE``, ``ERROR``): written as the ``FAILED`` HDU
        (:func:`surveynet.predict.failed_table`).
    overwrite : bool
        Replace an existing file (default: refuse).
    models : sequence of ModelCard
        Every model used, in the order applied: one numbered group of cards each (``NMODELS``,
        ``MODEL<i>``, ``MODHSH<i>``, ``MODROL<i>``; :func:`surveynet.predict.model_cards`).
    n_inputs : int, optional
        Cards ``NINPUT`` (input files) and ``NFAILED`` (those in ``failed``).
    config_file : path, optional
        Card ``CFGFILE``: the resolved config saved beside the catalogue.
    extra_cards : dict, optional
        More primary-header cards, keyword -> (value, comment) (e.g. ``ZSOURCE``, the redshift
        source).

    Returns
    -------
    Path
        ``path``.
    """
    if isinstance(config, PredictConfig):
        config = DLAConfig(predict=config)
    extra: dict[str, Any] = {}
    if isinstance(config, DLAConfig):
        extra = header_cards(config, HEADER_KEYS)
    if n_inputs is not None:
        extra["NINPUT"] = (int(n_inputs), "input files")
        extra["NFAILED"] = (0 if failed is None else len(failed), "input files that failed")
    if config_file is not None:
        extra["CFGFILE"] = (Path(config_file).name[:60], "resolved config (JSON)")
    if models:
        extra.update({k: (v, c) for k, v, c in model_cards(models)})
    extra.update(extra_cards or {})
    hdr = provenance_header(
        pipeline="dla",
        model_name=model_name,
        model_hash=model_hash,
        config_hash=config_hash(config) if config is not None else None,
        seed=seed,
        extra=extra,
    )
    hdus: list[Any] = [fits.PrimaryHDU(header=hdr)]
    tables = [("DLACAT", catalog.dlas), ("QSOCAT", catalog.qsos)]
    if failed is not None and len(failed):
        tables.append(("FAILED", failed))
    for name, t in tables:
        hdu = table_hdu(Table(t, copy=True), name)
        for k, col in enumerate(hdu.columns.names, start=1):
            if col in _UNITS:
                hdu.header[f"TUNIT{k}"] = _UNITS[col]
            if col in _COMMENTS:
                hdu.header.comments[f"TTYPE{k}"] = _COMMENTS[col]
        hdus.append(hdu)
    return write_hdulist(path, hdus, overwrite=overwrite)


def read_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Read a catalogue written by :func:`write_catalog` (QSOCAT optional).

    Parameters
    ----------
    path : str or os.PathLike
        The FITS file.

    Returns
    -------
    Catalog
        DLACAT (ABSORBER_TYPE stripped) and QSOCAT (TARGETID of DLACAT when absent); units
        dropped.

    Raises
    ------
    InputError
        No DLACAT HDU or a missing required column (TARGETID, Z_DLA, NHI).
    """
    p = Path(path)
    try:
        with fits.open(p, memmap=False) as hdul:
            names = [h.name for h in hdul]
    except OSError as exc:
        raise InputError(f"cannot read FITS ({exc})", path=p) from exc
    if "DLACAT" not in names:
        raise InputError(f"no DLACAT HDU (HDUs: {', '.join(names)})", path=p, hdu="DLACAT")
    dlas = Table.read(p, hdu="DLACAT")
    for c in ("TARGETID", "Z_DLA", "NHI"):
        if c not in dlas.colnames:
            raise InputError("missing column", path=p, hdu="DLACAT", column=c)
    if "ABSORBER_TYPE" in dlas.colnames:
        dlas["ABSORBER_TYPE"] = np.char.strip(np.asarray(dlas["ABSORBER_TYPE"]).astype(str))
    qsos = (
        Table.read(p, hdu="QSOCAT")
        if "QSOCAT" in names
        else Table({"TARGETID": np.unique(np.asarray(dlas["TARGETID"], np.int64))})
    )
    for t in (dlas, qsos):
        for c in t.colnames:
            t[c].unit = None
    return Catalog(dlas=dlas, qsos=qsos)
