"""Truth tables of the spectral mocks: TRUTH, DLA_META, TRUTH_QSO, and the FIBERMAP.

TRUTH has one row per spectrum (:data:`TRUTH_COLUMNS`), DLA_META one row per inserted DLA
(TARGETID, Z_DLA, NHI, DLAID = TARGETID * 1000 + k, Z_QSO), TRUTH_QSO the quasar rows with their
BAL and line metadata.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from surveynet.sim.quasars import QSO_INFO_COLUMNS

__all__ = [
    "TRUTH_COLUMNS",
    "dla_table",
    "empty_truth",
    "fibermap_table",
    "truth_qso_table",
    "truth_table",
]

#: TRUTH columns and their dtypes.
TRUTH_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("TARGETID", np.int64),
    ("OBJTYPE", "U6"),
    ("SUBTYPE", "U10"),
    ("SOURCETYPE", "U6"),
    ("Z", np.float64),
    ("MAG", np.float32),
    ("MAGFILTER", "U8"),
    ("IS_BAL", bool),
    ("BI_CIV", np.float32),
    ("AI_CIV", np.float32),
    ("LOBAL", bool),
    ("N_DLA", np.int16),
    ("N_LLS", np.int16),
    ("TEFF", np.float32),
    ("D4000", np.float32),
    ("ALPHA", np.float32),
    ("CIV_SHIFT", np.float32),
    ("TEMPLATEID", np.int64),
    ("FOREST_IN_TEMPLATE", bool),
    ("EXPFACTOR", np.float32),
    ("DEAD_FIBRE", bool),
    ("Z_CONF", np.int16),
    ("SNR_MEDIAN", np.float32),
    ("SNR_1420", np.float32),
)

#: Columns left NaN (not 0) when they do not apply.
_NAN_COLUMNS = ("TEFF", "D4000", "ALPHA")


def empty_truth(n: int) -> dict[str, NDArray[Any]]:
    """TRUTH columns of ``n`` rows with their fill values.

    Parameters
    ----------
    n : int
        Number of rows.

    Returns
    -------
    dict of str to ndarray
        NaN for TEFF, D4000, ALPHA; -1 for TEMPLATEID; 0 (or empty strings) elsewhere.

    Examples
    --------
    >>> t = empty_truth(2)
    >>> t["TEMPLATEID"].tolist(), bool(np.isnan(t["TEFF"]).all()), t["N_DLA"].dtype.name
    ([-1, -1], True, 'int16')
    """
    t: dict[str, NDArray[Any]] = {}
    for name, dt in TRUTH_COLUMNS:
        if name in ("TEFF", "D4000", "ALPHA", "BI_CIV", "AI_CIV", "CIV_SHIFT"):
            t[name] = np.full(n, np.nan if name in _NAN_COLUMNS else 0.0, dtype=dt)
        elif name == "TEMPLATEID":
            t[name] = np.full(n, -1, dtype=dt)
        else:
            t[name] = np.zeros(n, dtype=dt)
    return t


def truth_table(tcols: dict[str, NDArray[Any]]) -> Table:
    """The TRUTH table (with units) from its columns.

    Parameters
    ----------
    tcols : dict of str to ndarray
        At least the :data:`TRUTH_COLUMNS` (extra keys are ignored).

    Returns
    -------
    astropy.table.Table
    """
    tab = Table({name: np.asarray(tcols[name], dtype=dt) for name, dt in TRUTH_COLUMNS})
    tab["MAG"].unit = "mag"
    tab["BI_CIV"].unit = "km/s"
    tab["AI_CIV"].unit = "km/s"
    tab["CIV_SHIFT"].unit = "km/s"
    tab["TEFF"].unit = "K"
    return tab


def dla_table(rows: list[dict[str, Any]]) -> Table:
    """The DLA_META table of DLA rows.

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`surveynet.sim.absorbers.insert_dlas`.

    Returns
    -------
    astropy.table.Table
        Columns TARGETID, Z_DLA, NHI, DLAID, Z_QSO.

    Examples
    --------
    >>> len(dla_table([])), dla_table([]).colnames[:2]
    (0, ['TARGETID', 'Z_DLA'])
    """
    return Table(
        {
            "TARGETID": np.array([r["TARGETID"] for r in rows], dtype=np.int64),
            "Z_DLA": np.array([r["Z_DLA"] for r in rows], dtype=np.float64),
            "NHI": np.array([r["NHI"] for r in rows], dtype=np.float64),
            "DLAID": np.array([r["DLAID"] for r in rows], dtype=np.int64),
            "Z_QSO": np.array([r["Z_QSO"] for r in rows], dtype=np.float64),
        }
    )


def fibermap_table(tcols: dict[str, NDArray[Any]], n: int, start: int) -> Table:
    """DESI-like FIBERMAP of simulated rows.

    Parameters
    ----------
    tcols : dict of str to ndarray
        Truth columns with ``TARGETID`` and the private ``_RA``, ``_DEC``, ``_FIBERSTATUS``,
        ``_FLUX`` (n, 3) g/r/z fluxes.
    n : int
        Number of rows.
    start : int
        Run row of the first one (FIBER = row mod 5000).

    Returns
    -------
    astropy.table.Table
        TARGETID, TARGET_RA, TARGET_DEC, FIBER, OBJTYPE, COADD_FIBERSTATUS, FLUX_G/R/Z.
    """
    fm = Table()
    fm["TARGETID"] = np.asarray(tcols["TARGETID"], dtype=np.int64)
    fm["TARGET_RA"] = np.asarray(tcols["_RA"], dtype=np.float64)
    fm["TARGET_DEC"] = np.asarray(tcols["_DEC"], dtype=np.float64)
    fm["FIBER"] = (start + np.arange(n, dtype=np.int32)) % 5000
    fm["OBJTYPE"] = np.full(n, "TGT", dtype="U3")
    fm["COADD_FIBERSTATUS"] = np.asarray(tcols["_FIBERSTATUS"], dtype=np.int32)
    flux = np.asarray(tcols["_FLUX"], dtype=np.float32).reshape(n, 3)
    for k, b in enumerate("GRZ"):
        fm[f"FLUX_{b}"] = flux[:, k]
    fm["TARGET_RA"].unit = "deg"
    fm["TARGET_DEC"].unit = "deg"
    return fm


def truth_qso_table(truth: Table) -> Table:
    """TRUTH_QSO: the quasar rows of TRUTH with BAL and line metadata.

    Parameters
    ----------
    truth : astropy.table.Table
        The TRUTH table.

    Returns
    -------
    astropy.table.Table
        Rows with SOURCETYPE QSO; TARGETID, Z, MAG, the QSO info columns and SNR_1420
        (QuasarNET BAL label: BI_CIV > 0).
    """
    q = truth[truth["SOURCETYPE"] == "QSO"]
    cols = ["TARGETID", "Z", "MAG", *QSO_INFO_COLUMNS, "SNR_1420"]
    return Table(q[cols], copy=True)
