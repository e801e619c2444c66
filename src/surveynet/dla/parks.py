"""Readers of the Parks et al. (2018) truth and prediction JSON files (the DLA golden data).

Truth layout (DeepIGM/dla_cnn:papers/I/Vetting/data/test_dlas_96629_10000.json): an object keyed by
sightline index ``"0"`` ... ``"9999"``; each value has ``nDLA``, ``sl`` and one entry per absorber
(``"0"``, ``"1"``, ...) with ``NHI`` and ``zabs``. Prediction layout: a list of records in the same
order whose ``id`` ends in ``_ix_NNNN``, with ``z_qso`` and lists ``dlas`` (and in the mix/low-S/N
files ``subdlas`` and ``lyb``) of absorbers with ``z_dla``, ``column_density``, ``dla_confidence``
and ``type``. Both become tables with the column names of the surveynet catalogue (TARGETID =
sightline index) so that :func:`surveynet.dla.evaluate.match_absorbers` can score them.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from surveynet.errors import InputError

__all__ = ["read_parks_predictions", "read_parks_truth"]


def _load_json(path: str | os.PathLike[str]) -> Any:
    p = Path(path)
    try:
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError, EOFError) as exc:
        raise InputError(f"cannot read JSON ({exc})", path=p) from exc


def read_parks_truth(path: str | os.PathLike[str]) -> Table:
    """Injected absorbers of a Parks truth file.

    Parameters
    ----------
    path : str or os.PathLike
        Parks truth JSON (``.json`` or ``.json.gz``).

    Returns
    -------
    Table
        One row per absorber: TARGETID (sightline index, int64), Z_DLA, NHI, DLAID (str
        ``"<index>-<k>"``), SL (the DR5 host sightline index).

    Raises
    ------
    InputError
        Unreadable file or an entry without NHI/zabs.
    """
    data = _load_json(path)
    if not isinstance(data, dict):
        raise InputError("expected a JSON object keyed by sightline index", path=path)
    tid, z, nhi, dlaid, sl = [], [], [], [], []
    for key in sorted(data, key=int):
        entry = data[key]
        n = int(entry.get("nDLA", 0))
        for k in range(n):
            a = entry.get(str(k))
            if a is None or "NHI" not in a or "zabs" not in a:
                raise InputError(
                    f"sightline {key}: absorber {k} lacks NHI/zabs", path=path, column=f"{key}.{k}"
                )
            tid.append(int(key))
            z.append(float(a["zabs"]))
            nhi.append(float(a["NHI"]))
            dlaid.append(f"{key}-{k}")
            sl.append(int(entry.get("sl", -1)))
    return Table(
        {
            "TARGETID": np.array(tid, np.int64),
            "Z_DLA": np.array(z),
            "NHI": np.array(nhi),
            "DLAID": np.array(dlaid, dtype=str),
            "SL": np.array(sl, np.int64),
        }
    )


def read_parks_predictions(path: str | os.PathLike[str]) -> tuple[Table, Table]:
    """Predicted absorbers and searched sightlines of a Parks prediction file.

    Parameters
    ----------
    path : str or os.PathLike
        Parks prediction JSON (``.json`` or ``.json.gz``).

    Returns
    -------
    dlas : Table
        One row per predicted absorber (entries of ``dlas``, ``subdlas`` and ``lyb``, without
        duplicates): TARGETID (from ``_ix_NNNN``), Z_QSO, Z_DLA, NHI (``column_density``), NHI_STD,
        DLA_CONFIDENCE, ABSORBER_TYPE.
    qsos : Table
        One row per sightline: TARGETID, Z_QSO.
    """
    data = _load_json(path)
    if not isinstance(data, list):
        raise InputError("expected a JSON list of sightline records", path=path)
    rows: dict[str, list[Any]] = {
        k: []
        for k in ("TARGETID", "Z_QSO", "Z_DLA", "NHI", "NHI_STD", "DLA_CONFIDENCE", "ABSORBER_TYPE")
    }
    qid, qz = [], []
    for rec in data:
        try:
            t = int(str(rec["id"]).rsplit("_ix_", 1)[1])
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError(
                f"record id {rec.get('id')!r} does not end in _ix_NNNN", path=path, column="id"
            ) from exc
        zq = float(rec.get("z_qso", np.nan))
        qid.append(t)
        qz.append(zq)
        seen = set()
        for key in ("dlas", "subdlas", "lyb"):
            for a in rec.get(key, []) or []:
                sig = (round(float(a["z_dla"]), 8), str(a.get("type", "")))
                if sig in seen:
                    continue
                seen.add(sig)
                rows["TARGETID"].append(t)
                rows["Z_QSO"].append(zq)
                rows["Z_DLA"].append(float(a["z_dla"]))
                rows["NHI"].append(float(a["column_density"]))
                rows["NHI_STD"].append(float(a.get("std_column_density", np.nan)))
                rows["DLA_CONFIDENCE"].append(float(a.get("dla_confidence", np.nan)))
                rows["ABSORBER_TYPE"].append(str(a.get("type", "DLA")))
    dlas = Table(
        {
            "TARGETID": np.array(rows["TARGETID"], np.int64),
            "Z_QSO": np.array(rows["Z_QSO"], float),
            "Z_DLA": np.array(rows["Z_DLA"], float),
            "NHI": np.array(rows["NHI"], float),
            "NHI_STD": np.array(rows["NHI_STD"], float),
            "DLA_CONFIDENCE": np.array(rows["DLA_CONFIDENCE"], float),
            "ABSORBER_TYPE": np.array(rows["ABSORBER_TYPE"], dtype="U6"),
        }
    )
    return dlas, Table({"TARGETID": np.array(qid, np.int64), "Z_QSO": np.array(qz, float)})
