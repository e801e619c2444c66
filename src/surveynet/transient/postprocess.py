"""Scores to catalogue rows: P(real) and P(bogus), the REAL decision, the anchor's layout.

``LABEL0`` = P(bogus) and ``LABEL1`` = P(real), as gmadet's ``infer_results``; ``REAL`` is
``LABEL1 >= threshold`` (``predict.threshold``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

#: Candidate columns carried into the scores table when present.
CARRIED_COLUMNS = (
    "CANDID",
    "FILE",
    "X",
    "Y",
    "RA",
    "DEC",
    "MAG",
    "MAGERR",
    "SNR",
    "FWHM",
    "FWHMPSF",
    "EDGE",
    "FLAGS",
    "LABEL",
    "TRUTH_KIND",
    "TRUTH_MAG",
)


def score_rows(candidates: Table, prob: NDArray[Any], threshold: float, source: str) -> Table:
    """Return the ``SCORES`` rows of one input.

    Parameters
    ----------
    candidates : astropy.table.Table
        The cutouts' candidate rows (:data:`CARRIED_COLUMNS` are kept when present).
    prob : ndarray of shape (n,)
        P(real) of every cutout.
    threshold : float
        ``REAL`` threshold on P(real).
    source : str
        The input file (``SOURCE``).

    Returns
    -------
    astropy.table.Table
        Carried columns, ``LABEL0``, ``LABEL1``, ``REAL``, ``SOURCE``, ``ROW``.

    Examples
    --------
    >>> t = score_rows(Table({"CANDID": [7, 8]}), np.array([0.9, 0.2]), 0.5, "c.fits")
    >>> t["REAL"].tolist(), t["LABEL0"].round(2).tolist()
    ([True, False], [0.1, 0.8])
    """
    t = Table()
    for c in CARRIED_COLUMNS:
        if c in candidates.colnames:
            t[c] = candidates[c]
    t["LABEL0"] = 1.0 - prob
    t["LABEL1"] = prob
    t["REAL"] = prob >= threshold
    t["SOURCE"] = np.array([source] * len(t), "U200")
    t["ROW"] = np.arange(len(t), dtype=np.int64)
    return t


def anchor_table(t: Table) -> Table:
    """Return the anchor's ``infer_results.dat`` columns (gmadet/O'TRAIN names) of ``t``.

    Parameters
    ----------
    t : astropy.table.Table
        Scores rows (:func:`score_rows`).

    Returns
    -------
    astropy.table.Table
        ``filename``, ``RA``, ``Dec``, ..., ``label0`` (P(bogus)), ``label1`` (P(real)).
    """
    n = len(t)

    def col(name: str, default: Any) -> Any:
        return t[name] if name in t.colnames else np.full(n, default)

    return Table(
        {
            "filename": col("SOURCE", ""),
            "RA": col("RA", np.nan),
            "Dec": col("DEC", np.nan),
            "originalFile": col("FILE", ""),
            "Xpos": col("X", np.nan),
            "Ypos": col("Y", np.nan),
            "mag": col("MAG", 99.0),
            "magerr": col("MAGERR", 99.0),
            "FWHM": col("FWHM", np.nan),
            "FWHMPSF": col("FWHMPSF", np.nan),
            "cand_ID": col("CANDID", -1),
            "label0": col("LABEL0", np.nan),
            "label1": col("LABEL1", np.nan),
        }
    )
