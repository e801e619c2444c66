"""Output tables: ``nn-weights.fits`` (sysnetdev layout) and the ``weights`` step's table.

``nn-weights.fits`` keeps sysnetdev's structured layout, lower-case ``hpix`` (int64) and
``weight`` (float64 vector, one entry per chain, and per snapshot with ``snapshot_ensemble``),
so scripts written for sysnetdev (``fitsio.read(...)['weight']``) read it. ``weight`` is the raw
prediction y_hat (expected count per unit completeness, proportional to nbar F(s)), not a
weight. The table HDU is ``NNWEIGHTS`` (the first extension, where fitsio looks); the header
carries ``NSIDE``, ``ORDERING``, ``METHOD`` and the provenance cards.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.io.fits import provenance_header, write_hdulist


def write_predictions(
    path: str | os.PathLike[str],
    hpix: NDArray[np.int64],
    weight: NDArray[np.float64],
    *,
    nside: int,
    nest: bool,
    method: str = "nn",
    config_hash: str | None = None,
    seed: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write predictions in sysnetdev's ``nn-weights.fits`` layout.

    Parameters
    ----------
    path : path
        Output file.
    hpix : ndarray of int64, shape (n,)
    weight : ndarray of shape (n,) or (n, ncols)
        Raw predictions y_hat per chain.
    nside, nest : int, bool
        Pixelisation.
    method : str
        ``nn``, ``linear`` or ``forest``.
    config_hash, seed
        Provenance.
    overwrite : bool

    Returns
    -------
    Path
    """
    w = np.asarray(weight, np.float64)
    if w.ndim == 1:
        w = w[:, None]
    cols = [
        fits.Column("hpix", "K", array=np.asarray(hpix, np.int64)),
        fits.Column("weight", f"{w.shape[1]}D", array=w),
    ]
    tab = fits.BinTableHDU.from_columns(cols)
    tab.header["EXTNAME"] = "NNWEIGHTS"
    tab.header["NSIDE"] = int(nside)
    tab.header["ORDERING"] = "NESTED" if nest else "RING"
    tab.header["METHOD"] = method
    tab.header["NCOLS"] = (w.shape[1], "chains (x snapshots)")
    hdr = provenance_header(
        pipeline="sysnet", config_hash=config_hash, seed=seed, extra={"METHOD": method}
    )
    return write_hdulist(path, [fits.PrimaryHDU(header=hdr), tab], overwrite=overwrite)


def read_predictions(
    path: str | os.PathLike[str],
) -> tuple[NDArray[np.int64], NDArray[np.float64], dict[str, object]]:
    """Read ``nn-weights.fits`` (ours or sysnetdev's): ``(hpix, weight (n, ncols), header)``."""
    p = Path(path)
    try:
        with fits.open(p, memmap=False) as hl:
            h = hl[1]
            data = np.asarray(h.data)
            hdr = dict(h.header)
    except (OSError, IndexError) as exc:
        raise InputError(f"cannot read predictions ({exc})", path=p) from exc
    names = {n.lower(): n for n in data.dtype.names or ()}
    for k in ("hpix", "weight"):
        if k not in names:
            raise InputError("missing column", path=p, column=k)
    w = np.asarray(data[names["weight"]], np.float64)
    if w.ndim == 1:
        w = w[:, None]
    return np.asarray(data[names["hpix"]], np.int64), w, hdr


def write_weights(
    path: str | os.PathLike[str],
    hpix: NDArray[np.int64],
    selection: NDArray[np.float64],
    weight: NDArray[np.float64],
    *,
    nside: int,
    nest: bool,
    extra: dict[str, object] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the ``weights`` step's table (EXTNAME ``SYSWEIGHTS``).

    Columns: HPIX, SELECTION (normalised F_hat), WEIGHT (1/F_hat after clipping or masking; 0
    where masked).
    """
    tab = fits.BinTableHDU.from_columns(
        [
            fits.Column("HPIX", "K", array=np.asarray(hpix, np.int64)),
            fits.Column("SELECTION", "D", array=np.asarray(selection, np.float64)),
            fits.Column("WEIGHT", "D", array=np.asarray(weight, np.float64)),
        ]
    )
    tab.header["EXTNAME"] = "SYSWEIGHTS"
    tab.header["NSIDE"] = int(nside)
    tab.header["ORDERING"] = "NESTED" if nest else "RING"
    hdr = provenance_header(pipeline="sysnet", extra=extra)
    return write_hdulist(path, [fits.PrimaryHDU(header=hdr), tab], overwrite=overwrite)
