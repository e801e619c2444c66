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
    "BALMODE": "predict.bal",
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
        return cls(dlas=_empty_dlacat(), qsos=_qsocat([], [], []))


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
    sightlines: Sequence[Sightline],
    rows: Sequence[Sequence[dict[str, Any]]],
    *,
    vet_features: bool = False,
) -> Table:
    """DLACAT table of the finished absorber rows of many sightlines, each sorted by Z_DLA.

    One table is built for all sightlines (a table per sightline cost more than the network on
    a few hundred sightlines).

    Parameters
    ----------
    sightlines : sequence of Sightline
        The sightlines (TARGETID, Z_QSO, S2N, TARGET_RA, TARGET_DEC).
    rows : sequence of sequences of dict
        Per sightline, :func:`surveynet.dla.postprocess.type_absorbers` rows (``WAVE``, ``NHI``,
        ``NHI_STD``, ``DLA_CONFIDENCE``, ``ABSORBER_TYPE``; ``FEATURES`` with ``vet_features``).
    vet_features : bool
        Add the vetter features as columns ``VET_<NAME>``.

    Returns
    -------
    Table
        :data:`DLA_COLUMNS` (and the feature columns), one row per absorber, sightlines in
        input order.
    """
    ordered: list[dict[str, Any]] = []
    owner: list[Sightline] = []
    dlaid: list[str] = []
    for sl, r in zip(sightlines, rows, strict=True):
        z = [row["WAVE"] / LYA_REST - 1.0 for row in r]
        for k, i in enumerate(np.argsort(z, kind="stable")):
            ordered.append(r[i])
            owner.append(sl)
            dlaid.append(f"{sl.targetid}{k:03d}")
    if not ordered:
        t = _empty_dlacat()
        if vet_features:
            for name in VET_FEATURES:
                t[VET_COLUMN_PREFIX + name.upper()] = np.zeros(0)
        return t
    t = Table(
        {
            "TARGETID": np.array([sl.targetid for sl in owner], np.int64),
            "Z_QSO": np.array([sl.z_qso for sl in owner], float),
            "Z_DLA": np.array([row["WAVE"] for row in ordered], float) / LYA_REST - 1.0,
            "NHI": np.array([row["NHI"] for row in ordered], float),
            "NHI_STD": np.array([row["NHI_STD"] for row in ordered], float),
            "DLA_CONFIDENCE": np.array([row["DLA_CONFIDENCE"] for row in ordered], float),
            "ABSORBER_TYPE": np.array([row["ABSORBER_TYPE"] for row in ordered], dtype="U6"),
            "S2N": np.array([sl.s2n for sl in owner], float),
            "DLAID": np.array(dlaid, dtype="U32"),
            "TARGET_RA": np.array([sl.ra for sl in owner], float),
            "TARGET_DEC": np.array([sl.dec for sl in owner], float),
        }
    )
    if vet_features:
        feats = np.array([row["FEATURES"] for row in ordered], float).reshape(len(ordered), -1)
        for j, name in enumerate(VET_FEATURES):
            t[VET_COLUMN_PREFIX + name.upper()] = feats[:, j]
    return t


def _qsocat(
    sightlines: Sequence[Sightline],
    predictions: Sequence[SightlinePrediction],
    rows: Sequence[Sequence[dict[str, Any]]],
) -> Table:
    """QSOCAT rows: each searched sightline with its DLA count and searched observed range."""
    q: dict[str, list[Any]] = {k: [] for k in QSO_COLUMNS}
    for sl, pred, r in zip(sightlines, predictions, rows, strict=True):
        w = sl.wave
        q["TARGETID"].append(sl.targetid)
        q["Z_QSO"].append(sl.z_qso)
        q["S2N"].append(sl.s2n)
        q["TARGET_RA"].append(sl.ra)
        q["TARGET_DEC"].append(sl.dec)
        q["N_DLA"].append(sum(1 for row in r if row["ABSORBER_TYPE"] == "DLA"))
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
    dlas = rows_table(sightlines, rows, vet_features=vet_features)
    return Catalog(dlas=dlas, qsos=_qsocat(sightlines, predictions, rows))


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
