"""``sysnet predict``: apply trained models to a features table (numpy engine, no torch).

``predict_table(table, model, out)`` reads a features table (``hpix``/``hpind`` and
``features``; ``label`` and ``fracgood`` are not needed), finds the model directories of
``model`` -- a ``sysnet train`` run folder (every ``models/fold<p>/chain<c>``, in fold then
chain order) or one model directory (``model.safetensors`` + ``config.json``) -- and writes one
y_hat column per model directory in the anchor's ``nn-weights.fits`` layout (``hpix``,
``weight[ncols]``; :mod:`surveynet.sysnet.catalog`), atomically, with provenance cards naming
every model (``MODEL<i>``, ``MODHSH<i>``). Every pixel is predicted by every model: unlike the
k-fold ``nn-weights.fits`` of ``sysnet train`` (test pixels of each fold only), these are
in-sample for the training pixels of each fold; for weights of new pixels (a new footprint, a
deeper release of the same maps) combine the columns with ``sysnet weights``.

Features are matched by name when the table's ``FEAT<i>`` cards and the model's
``preprocessing.feature_names`` are both present, else by position (the model's ``axes``
applied); a count mismatch is an error naming both.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from surveynet.errors import InputError, ModelFormatError

log = logging.getLogger(__name__)


def model_dirs(model: str | os.PathLike[str]) -> list[Path]:
    """Model directories of a run folder (fold then chain order) or ``[model]`` itself."""
    p = Path(model)
    if (p / "model.safetensors").exists():
        return [p]

    def key(d: Path) -> tuple[int, int]:
        """(fold, chain) numbers of ``models/fold<p>/chain<c>``."""
        return int(d.parent.name[4:]), int(d.name[5:])

    found = [
        d.parent
        for d in (p / "models").glob("fold*/chain*/model.safetensors")
        if d.parent.parent.name[4:].isdigit() and d.parent.name[5:].isdigit()
    ]
    if not found:
        raise ModelFormatError(f"{p}: neither a model directory nor a run folder with models/")
    return sorted(found, key=key)


def read_features(
    path: str | os.PathLike[str], *, ordering: str = "auto", nside: int | None = None
) -> dict[str, Any]:
    """Read ``hpix`` and ``features`` (+ names, nside, ordering) of a sysnet table.

    Returns
    -------
    dict
        ``hpix`` (int64), ``features`` (n, k), ``names`` (list or None), ``nside``, ``nest``.
    """
    from surveynet.sysnet.data import _col, _ordering, check_nside

    p = Path(path)
    try:
        with fits.open(p, memmap=False) as hl:
            h = hl["SYSNET"] if "SYSNET" in [x.name for x in hl] else hl[1]
            arr = np.asarray(h.data)
            header = h.header.copy()
    except (OSError, KeyError, IndexError, TypeError) as exc:
        raise InputError(f"cannot read the features table ({exc})", path=p) from exc
    names = list(arr.dtype.names or ())
    hcol, fcol = _col(names, "hpix", "hpind"), _col(names, "features")
    for k, v in (("hpix", hcol), ("features", fcol)):
        if v is None:
            raise InputError(f"missing column (have {names})", path=p, column=k)
    hpix = np.asarray(arr[hcol], np.int64)
    x = np.asarray(arr[fcol], np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if not np.all(np.isfinite(x)):
        raise InputError("non-finite feature values", path=p, column="features")
    k = x.shape[1]
    fnames = [str(header[f"FEAT{i}"]) for i in range(k)] if f"FEAT{k - 1}" in header else None
    ns = nside if nside is not None else header.get("NSIDE")
    return {
        "hpix": hpix,
        "features": x,
        "names": fnames,
        "nside": check_nside(hpix, None if ns is None else int(ns), str(p)),
        "nest": _ordering(header, ordering),
    }


def _columns(table: dict[str, Any], pre: dict[str, Any], where: Path) -> NDArray[np.float64]:
    """The model's feature columns of the table (by name when both sides name them)."""
    x = table["features"]
    want = pre.get("feature_names")
    have = table["names"]
    if want and have and set(want) <= set(have):
        return x[:, [have.index(n) for n in want]]
    axes = pre.get("axes")
    if axes is not None and x.shape[1] > len(want or axes):
        x = x[:, list(axes)]
    if x.shape[1] != len(pre.get("loc", [])):
        raise ModelFormatError(
            f"{where}: model expects {len(pre.get('loc', []))} features "
            f"({want}), the table has {x.shape[1]} ({have})"
        )
    return x


def predict_table(
    table: str | os.PathLike[str],
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    ordering: str = "auto",
    nside: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Predict y_hat for every pixel of ``table`` with every model directory of ``model``.

    Parameters
    ----------
    table : path
        Features table (sysnetdev layout; ``label``/``fracgood`` optional).
    model : path
        ``sysnet train`` run folder or one model directory.
    out : path
        Output predictions table (``nn-weights.fits`` layout, ``METHOD = 'nn-predict'``).
    ordering, nside
        As :func:`surveynet.sysnet.data.read_table`.
    overwrite : bool
        Replace ``out`` (checked before any work).

    Returns
    -------
    Path
        ``out``.
    """
    from surveynet.io.fits import provenance_header, write_hdulist
    from surveynet.io.model import load_model
    from surveynet.sysnet.engine import build

    outp = Path(out)
    if outp.exists() and not overwrite:
        raise FileExistsError(f"{outp} exists; pass --overwrite to replace")
    dirs = model_dirs(model)
    tab = read_features(table, ordering=ordering, nside=nside)
    cols, hashes = [], []
    for d in dirs:
        saved = load_model(d, pipeline="sysnet")
        pre = saved.preprocessing
        if "nside" in pre and int(pre["nside"]) != tab["nside"]:
            log.warning("%s: trained at nside %s, table nside %d", d, pre["nside"], tab["nside"])
        x = _columns(tab, pre, d)
        loc = np.asarray(pre["loc"], np.float64)
        scale = np.asarray(pre["scale"], np.float64)
        cols.append(build(saved.tensors, saved.config)((x - loc) / scale))
        hashes.append(saved.weights_hash)
    w = np.stack(cols, axis=1)
    hdr = provenance_header(pipeline="sysnet", extra={"METHOD": "nn-predict", "NMODELS": len(dirs)})
    hdr["INPUT"] = str(table)[-68:]  # features table (no comment: long paths fill the card)
    for i, (d, hsh) in enumerate(zip(dirs[:100], hashes[:100], strict=True)):
        hdr[f"MODEL{i}"] = str(d)[-68:]
        if hsh:
            hdr[f"MODHSH{i}"] = (hsh, f"sha256 of MODEL{i} weights (16 hex)")
    t = fits.BinTableHDU.from_columns(
        [
            fits.Column("hpix", "K", array=tab["hpix"]),
            fits.Column("weight", f"{w.shape[1]}D", array=w),
        ]
    )
    t.header["EXTNAME"] = "NNWEIGHTS"
    t.header["NSIDE"] = int(tab["nside"])
    t.header["ORDERING"] = "NESTED" if tab["nest"] else "RING"
    t.header["METHOD"] = "nn-predict"
    t.header["NCOLS"] = (w.shape[1], "model directories (fold x chain)")
    return write_hdulist(outp, [fits.PrimaryHDU(header=hdr), t], overwrite=overwrite)
