"""Reading the SYSNet input: the table FITS or the two-file form, with validation.

The table (sysnetdev ``MyDataLoader``): one row per HEALPix pixel with ``hpix`` (or the older
``hpind``), ``label``, ``fracgood`` and a vector column ``features``; column names are matched
case-insensitively. Feature names come from header cards ``FEAT<i>`` (written by
:mod:`surveynet.sim.sysmaps`) or default to ``f0, f1, ...``. ``NSIDE`` and ``ORDERING`` header
keywords are used when present. The two-file form is a features table plus a HEALPix label map,
given as two explicit arguments (sysnetdev guessed it from a 2-element path list).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from surveynet.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class SysnetData:
    """A regression table in memory.

    Attributes
    ----------
    hpix : ndarray of int64, shape (n,)
        Pixel numbers in ``ordering``.
    label : ndarray of float64, shape (n,)
        Counts (or normalised density) per pixel.
    fracgood : ndarray of float64, shape (n,)
        Completeness in (0, 1].
    features : ndarray of float64, shape (n, k)
        Imaging maps.
    feature_names : list of str
    nside : int
    nest : bool
        True for NESTED ordering.
    path : str
        Source file(s).
    truth : dict of str to ndarray
        Optional truth columns of mocks (``F_TRUE``, ``DELTA``, ...), aligned with ``hpix``.
    cl_truth : dict of str to ndarray
        Optional true angular power spectra of mocks (``ELL``, ``CL_DELTA_FOOT``, ...).
    """

    hpix: NDArray[np.int64]
    label: NDArray[np.float64]
    fracgood: NDArray[np.float64]
    features: NDArray[np.float64]
    feature_names: list[str]
    nside: int
    nest: bool = False
    path: str = ""
    truth: dict[str, NDArray[Any]] = field(default_factory=dict)
    cl_truth: dict[str, NDArray[Any]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of pixels."""
        return len(self.hpix)

    def ring_hpix(self) -> NDArray[np.int64]:
        """Pixel numbers in RING ordering."""
        if not self.nest:
            return self.hpix
        import healpy as hp

        return np.asarray(hp.nest2ring(self.nside, self.hpix), dtype=np.int64)

    def nest_hpix(self) -> NDArray[np.int64]:
        """Pixel numbers in NESTED ordering."""
        if self.nest:
            return self.hpix
        import healpy as hp

        return np.asarray(hp.ring2nest(self.nside, self.hpix), dtype=np.int64)

    def select(self, axes: tuple[int, ...] | None) -> SysnetData:
        """A copy with only the feature columns ``axes`` (None: all)."""
        if axes is None:
            return self
        k = self.features.shape[1]
        bad = [a for a in axes if not -k <= a < k]
        if bad:
            raise InputError(
                f"axes {bad} out of range for {k} feature columns",
                path=self.path,
                column="features",
            )
        return SysnetData(
            self.hpix,
            self.label,
            self.fracgood,
            self.features[:, list(axes)],
            [self.feature_names[a] for a in axes],
            self.nside,
            self.nest,
            self.path,
            self.truth,
            self.cl_truth,
        )


def _col(names: list[str], *wanted: str) -> str | None:
    """The first column of ``names`` matching one of ``wanted`` (case-insensitive), or None."""
    low = {n.lower(): n for n in names}
    for w in wanted:
        if w in low:
            return low[w]
    return None


def _is_pow2(n: int) -> bool:
    """Whether ``n`` is a positive power of two."""
    return n > 0 and (n & (n - 1)) == 0


def check_nside(hpix: NDArray[np.int64], nside: int | None, path: str) -> int:
    """Validate (or infer) nside against pixel numbers.

    Parameters
    ----------
    hpix : ndarray of int
        Pixel numbers.
    nside : int or None
        Declared nside; None infers the smallest power of two holding ``max(hpix)``.
    path : str
        File named in errors.

    Returns
    -------
    int

    Raises
    ------
    InputError
        nside not a power of two, or pixel numbers outside ``[0, 12 nside^2)``.

    Examples
    --------
    >>> check_nside(np.array([0, 700]), None, "t.fits")
    8
    """
    hmax = int(hpix.max()) if len(hpix) else 0
    if int(hpix.min(initial=0)) < 0:
        raise InputError("negative pixel numbers", path=path, column="hpix")
    if nside is None:
        nside = 1
        while 12 * nside * nside <= hmax:
            nside *= 2
        log.info("%s: no NSIDE given; inferred nside %d from the pixel numbers", path, nside)
        return nside
    if not _is_pow2(int(nside)):
        raise InputError(f"nside {nside} is not a power of two", path=path, column="hpix")
    if hmax >= 12 * nside * nside:
        raise InputError(
            f"pixel number {hmax} does not exist at nside {nside} (max {12 * nside * nside - 1});"
            " wrong nside?",
            path=path,
            column="hpix",
        )
    return int(nside)


def _ordering(header: fits.Header, ordering: str) -> bool:
    """True for NESTED: explicit ``ordering`` or the ``ORDERING`` keyword (RING default)."""
    if ordering == "nested":
        return True
    if ordering == "ring":
        return False
    val = str(header.get("ORDERING", "RING")).strip().upper()
    if val not in ("RING", "NESTED", "NEST"):
        raise InputError(f"ORDERING keyword {val!r} is neither RING nor NESTED")
    return val.startswith("NEST")


def _feature_names(header: fits.Header, k: int) -> list[str]:
    """Feature names from ``FEAT<i>`` header cards (default ``f<i>``)."""
    names = [str(header.get(f"FEAT{i}", f"f{i}")) for i in range(k)]
    return names


def validate(data: SysnetData, *, check_features: bool = True) -> SysnetData:
    """Check a table; raise naming the column at fault.

    Checks: finite non-negative ``label``; ``fracgood`` in (0, 1]; finite features without a
    constant column; no duplicated pixel.

    Parameters
    ----------
    data : SysnetData
    check_features : bool
        Also check the feature columns.

    Returns
    -------
    SysnetData
        ``data`` itself.

    Raises
    ------
    InputError
    """
    p = data.path
    if not np.all(np.isfinite(data.label)):
        bad = int(np.sum(~np.isfinite(data.label)))
        raise InputError(f"{bad} NaN/inf counts", path=p, column="label")
    if np.any(data.label < 0):
        raise InputError(f"{int(np.sum(data.label < 0))} negative counts", path=p, column="label")
    fg = data.fracgood
    if not np.all(np.isfinite(fg)) or np.any(fg <= 0) or np.any(fg > 1):
        bad = int(np.sum(~(np.isfinite(fg) & (fg > 0) & (fg <= 1))))
        raise InputError(f"{bad} values outside (0, 1]", path=p, column="fracgood")
    uniq, counts = np.unique(data.hpix, return_counts=True)
    if np.any(counts > 1):
        dup = uniq[counts > 1][:5].tolist()
        raise InputError(f"duplicated pixels {dup}", path=p, column="hpix")
    if check_features:
        x = data.features
        if not np.all(np.isfinite(x)):
            cols = np.where(~np.all(np.isfinite(x), axis=0))[0]
            names = [data.feature_names[c] for c in cols]
            raise InputError(f"NaN/inf in feature column(s) {names}", path=p, column="features")
        const = np.where(np.ptp(x, axis=0) == 0)[0] if len(x) else np.array([], int)
        if len(const):
            names = [f"{c} ({data.feature_names[c]})" for c in const]
            raise InputError(
                f"constant feature column(s) {', '.join(names)}: drop them with axes",
                path=p,
                column="features",
            )
    return data


def read_table(
    path: str | os.PathLike[str],
    *,
    ordering: str = "auto",
    nside: int | None = None,
    hdu: int | str = 1,
) -> SysnetData:
    """Read a sysnetdev table FITS (any nside and ordering), validated.

    Parameters
    ----------
    path : path
        FITS file with ``hpix``/``hpind``, ``label``, ``fracgood`` and ``features``.
    ordering : {"auto", "ring", "nested"}
        Pixel ordering (auto: ``ORDERING`` keyword, default RING).
    nside : int, optional
        nside (default: ``NSIDE`` keyword, else inferred).
    hdu : int or str
        The table HDU.

    Returns
    -------
    SysnetData

    Raises
    ------
    InputError
        Unreadable file, missing column or invalid values (the column is named).
    """
    p = Path(path)
    try:
        with fits.open(p, memmap=False) as hl:
            if hdu == 1 and len(hl) > 1 and "SYSNET" in [h.name for h in hl]:
                hdu = "SYSNET"
            h = hl[hdu]
            arr = np.asarray(h.data)
            header = h.header.copy()
            truth: dict[str, NDArray[Any]] = {}
            cl: dict[str, NDArray[Any]] = {}
            if "TRUTH" in hl:
                t = hl["TRUTH"].data
                truth = {n.upper(): np.asarray(t[n]) for n in t.names}
            if "CL_TRUE" in hl:
                t = hl["CL_TRUE"].data
                cl = {n.upper(): np.asarray(t[n]) for n in t.names}
    except (OSError, KeyError, IndexError, TypeError) as exc:
        raise InputError(f"cannot read table HDU {hdu} ({exc})", path=p) from exc
    if arr.dtype.names is None:
        raise InputError("HDU is not a table", path=p)
    names = list(arr.dtype.names)
    need = {
        "hpix": _col(names, "hpix", "hpind"),
        "label": _col(names, "label"),
        "fracgood": _col(names, "fracgood"),
        "features": _col(names, "features"),
    }
    for k, v in need.items():
        if v is None:
            raise InputError(f"missing column (have {names})", path=p, column=k)
    hpix = np.asarray(arr[need["hpix"]], dtype=np.int64)
    feats = np.asarray(arr[need["features"]], dtype=np.float64)
    if feats.ndim == 1:
        feats = feats[:, None]
    nside = nside if nside is not None else header.get("NSIDE")
    data = SysnetData(
        hpix=hpix,
        label=np.asarray(arr[need["label"]], dtype=np.float64),
        fracgood=np.asarray(arr[need["fracgood"]], dtype=np.float64),
        features=feats,
        feature_names=_feature_names(header, feats.shape[1]),
        nside=check_nside(hpix, None if nside is None else int(nside), str(p)),
        nest=_ordering(header, ordering),
        path=str(p),
        truth=truth,
        cl_truth=cl,
    )
    return validate(data)


def read_two_files(
    features_path: str | os.PathLike[str],
    label_path: str | os.PathLike[str],
    *,
    ordering: str = "auto",
    nside: int | None = None,
) -> SysnetData:
    """The two-file form: a features table plus a HEALPix label map.

    The features table has ``hpix``/``hpind`` and ``features`` (``fracgood`` optional, default
    1); the label is the map value at ``hpix`` (read by healpy in the table's ordering).

    Parameters
    ----------
    features_path, label_path : path
        The two files, named explicitly.
    ordering, nside
        As :func:`read_table`.

    Returns
    -------
    SysnetData

    Raises
    ------
    InputError
        Missing columns, or a label map whose nside differs from the table's.
    """
    import healpy as hp

    p = Path(features_path)
    try:
        with fits.open(p, memmap=False) as hl:
            arr = np.asarray(hl[1].data)
            header = hl[1].header.copy()
    except (OSError, IndexError) as exc:
        raise InputError(f"cannot read features table ({exc})", path=p) from exc
    names = list(arr.dtype.names or [])
    hcol, fcol = _col(names, "hpix", "hpind"), _col(names, "features")
    for k, v in (("hpix", hcol), ("features", fcol)):
        if v is None:
            raise InputError(f"missing column (have {names})", path=p, column=k)
    nest = _ordering(header, ordering)
    try:
        m = hp.read_map(str(label_path), nest=nest, dtype=np.float64)
    except Exception as exc:  # healpy raises several types
        raise InputError(f"cannot read HEALPix label map ({exc})", path=label_path) from exc
    map_nside = hp.npix2nside(len(m))
    nside = nside if nside is not None else int(header.get("NSIDE", map_nside))
    if nside != map_nside:
        raise InputError(
            f"label map nside {map_nside} differs from the table nside {nside}", path=label_path
        )
    hpix = np.asarray(arr[hcol], dtype=np.int64)
    check_nside(hpix, nside, str(p))
    fgcol = _col(names, "fracgood")
    feats = np.asarray(arr[fcol], dtype=np.float64)
    if feats.ndim == 1:
        feats = feats[:, None]
    data = SysnetData(
        hpix=hpix,
        label=np.asarray(m[hpix], dtype=np.float64),
        fracgood=(np.asarray(arr[fgcol], np.float64) if fgcol else np.ones(len(hpix))),
        features=feats,
        feature_names=_feature_names(header, feats.shape[1]),
        nside=nside,
        nest=nest,
        path=f"{p},{label_path}",
    )
    return validate(data)


def read_input(
    input_path: str | os.PathLike[str],
    label_path: str | os.PathLike[str] | None = None,
    *,
    ordering: str = "auto",
    nside: int | None = None,
    axes: tuple[int, ...] | None = None,
) -> SysnetData:
    """Read the table (or the two-file form when ``label_path`` is given) and select ``axes``.

    sysnetdev normalises all columns before selecting; the constant-column check covers every
    column as its ``ImagingData`` assert did.
    """
    if not str(input_path):
        raise InputError("no input table given (data.input_path / input_path)")
    if label_path:
        data = read_two_files(input_path, label_path, ordering=ordering, nside=nside)
    else:
        data = read_table(input_path, ordering=ordering, nside=nside)
    return data.select(axes)
