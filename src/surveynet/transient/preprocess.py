"""Cutouts to network inputs: braai's triplet preprocessing, alert packets, normalisations.

Conventions
-----------
- Network inputs are torch layout ``(N, C, H, W)`` float32.
- Triplet channel order is braai's ``[science, reference (template), difference]``
  (dmitryduev/braai ``make_triplet``); a cutout array is indexed ``[row, column]`` exactly as
  read from its FITS file (no flip): this is the orientation of the ZTF alert cutouts and of the
  BTSbot triplets (both are checked by the golden tests).
- ``norm="l2"`` (braai, models >= d6_m9): NaN -> 0, each channel divided by its L2 norm computed
  **in float32** (``np.linalg.norm`` of the float32 FITS data, as braai does); a channel whose
  norm overflows to infinity (a template carrying the float32 maximum as a mask value) becomes an
  all-zero channel, a channel of norm 0 stays zero. ``norm="rows"`` is
  ``tf.keras.utils.normalize`` (row-wise L2 along the last axis, braai <= d6_m7), kept distinct;
  ``norm="none"`` is gmadet's raw ADU/s.
- Cutouts smaller than the network size are padded at the bottom/right with 1e-9 (braai).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from numpy.typing import NDArray

from surveynet.errors import InputError

__all__ = [
    "ALERT_CUTOUTS",
    "BRAAI_PAD_VALUE",
    "decode_alert_cutout",
    "l2_normalise",
    "make_triplet",
    "normalise_channel",
    "read_alert",
    "rows_normalise",
    "to_network",
    "zscore_normalise",
]

#: Alert packet fields of the three cutouts, in braai's channel order.
ALERT_CUTOUTS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
#: braai's padding value for cutouts smaller than 63 x 63 (braai.py make_triplet).
BRAAI_PAD_VALUE = 1e-9


def l2_normalise(a: NDArray[Any]) -> NDArray[np.float32]:
    """The braai L2 normalisation of one channel (NaN -> 0, norm in float32).

    Parameters
    ----------
    a : ndarray of shape (H, W)
        Cutout (any float dtype; cast to float32 first, as FITS stamps are).

    Returns
    -------
    ndarray of shape (H, W), float32
        ``a / ||a||``; all zero when the norm is 0 or overflows float32.

    Examples
    --------
    >>> l2_normalise(np.array([[3.0, 4.0]]))
    array([[0.6, 0.8]], dtype=float32)
    >>> l2_normalise(np.array([[np.finfo(np.float32).max, 1.0]]))
    array([[0., 0.]], dtype=float32)
    """
    x = np.nan_to_num(np.asarray(a, dtype=np.float32), nan=0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        norm = np.linalg.norm(x)
    if not np.isfinite(norm) or norm == 0:
        return np.zeros_like(x)
    return (x / norm).astype(np.float32)


def rows_normalise(a: NDArray[Any]) -> NDArray[np.float32]:
    """``tf.keras.utils.normalize(a)``: L2 along the last axis (braai <= d6_m7).

    Parameters
    ----------
    a : ndarray of shape (H, W)
        Cutout.

    Returns
    -------
    ndarray of shape (H, W), float32
    """
    x = np.nan_to_num(np.asarray(a, dtype=np.float32), nan=0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        n = np.linalg.norm(x, axis=-1, keepdims=True)
    n = np.where(np.isfinite(n) & (n > 0), n, 1.0)
    return (x / n).astype(np.float32)


def zscore_normalise(a: NDArray[Any]) -> NDArray[np.float32]:
    """Robust z-score: ``(a - median) / (1.4826 MAD)``, NaN -> 0 (keeps the S/N scale).

    The bundled models use it: unlike L2 it keeps the amplitude in units of the cutout's noise,
    so faint and bright candidates are told apart; unlike raw ADU/s it does not tie a model to
    one depth and exposure. A flat cutout (MAD 0) falls back to its standard deviation, then 1.

    Parameters
    ----------
    a : ndarray of shape (H, W)
        Cutout.

    Returns
    -------
    ndarray of shape (H, W), float32

    Examples
    --------
    >>> np.round(zscore_normalise(np.array([[1.0, 2.0, 3.0]])), 4)
    array([[-0.6745,  0.    ,  0.6745]], dtype=float32)
    """
    x = np.asarray(a, dtype=np.float64)
    x = np.where(np.isfinite(x), x, np.nan)
    if np.all(np.isnan(x)):
        return np.zeros(x.shape, dtype=np.float32)
    med = np.nanmedian(x)
    mad = 1.4826 * np.nanmedian(np.abs(x - med))
    if not mad > 0:
        mad = float(np.nanstd(x)) or 1.0
    return np.nan_to_num((x - med) / mad, nan=0.0).astype(np.float32)


def normalise_channel(a: NDArray[Any], norm: str) -> NDArray[np.float32]:
    """Apply one of the per-channel normalisations.

    Parameters
    ----------
    a : ndarray of shape (H, W)
        Cutout.
    norm : {"l2", "rows", "zscore", "none"}
        braai L2, Keras row-wise, robust z-score, or raw values (NaN -> 0 in all cases).

    Returns
    -------
    ndarray of shape (H, W), float32

    Raises
    ------
    ValueError
        Unknown ``norm``.
    """
    if norm == "l2":
        return l2_normalise(a)
    if norm == "rows":
        return rows_normalise(a)
    if norm == "zscore":
        return zscore_normalise(a)
    if norm == "none":
        x = np.asarray(a, dtype=np.float32)
        return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    raise ValueError(f"unknown normalisation {norm!r}; use l2, rows, zscore or none")


def _pad(a: NDArray[np.float32], size: int, value: float) -> NDArray[np.float32]:
    """Pad or crop to ``size`` x ``size`` (padding at bottom/right, as braai)."""
    h, w = a.shape
    a = a[:size, :size]
    if (h, w) == (size, size):
        return a
    out = np.full((size, size), value, dtype=np.float32)
    out[: a.shape[0], : a.shape[1]] = a
    return out


def make_triplet(
    science: NDArray[Any],
    reference: NDArray[Any],
    difference: NDArray[Any],
    *,
    norm: str = "l2",
    size: int = 63,
    pad_value: float = BRAAI_PAD_VALUE,
) -> NDArray[np.float32]:
    """The braai triplet: normalise each channel, pad to ``size``, stack ``[sci, ref, diff]``.

    Parameters
    ----------
    science, reference, difference : ndarray of shape (H, W)
        The three cutouts, as read from FITS.
    norm : {"l2", "rows", "none"}
        Per-channel normalisation (:func:`normalise_channel`).
    size : int
        Network input side (63 for braai).
    pad_value : float
        Fill of the padding (1e-9 in braai).

    Returns
    -------
    ndarray of shape (3, size, size), float32
        Torch layout (channels first).
    """
    chans = [
        _pad(normalise_channel(c, norm), size, pad_value) for c in (science, reference, difference)
    ]
    return np.stack(chans).astype(np.float32)


def decode_alert_cutout(field: Any, *, where: str = "") -> NDArray[np.float32]:
    """Decode one alert cutout (base64 of a gzipped FITS file) to an array.

    Parameters
    ----------
    field : dict or str or bytes
        ``alert[cutoutX]`` (``{"stampData": {"$binary": "..."}}`` as exported from Kowalski),
        its ``stampData``, or the raw bytes.
    where : str
        Field name for error messages.

    Returns
    -------
    ndarray of shape (H, W), float32

    Raises
    ------
    InputError
        Missing or undecodable data.
    """
    data = field
    try:
        if isinstance(data, dict):
            data = data.get("stampData", data)
        if isinstance(data, dict):
            data = data["$binary"]
        if isinstance(data, dict):  # extended JSON v2: {"$binary": {"base64": ...}}
            data = data["base64"]
        raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        with warnings.catch_warnings():
            # ZTF stamps carry a SIMPLE card astropy calls non-standard; the data are fine
            warnings.simplefilter("ignore", VerifyWarning)
            with fits.open(io.BytesIO(raw)) as hdul:
                arr = np.asarray(hdul[0].data, dtype=np.float32)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise InputError(f"cannot decode the cutout ({exc})", column=where or None) from exc
    if arr.ndim != 2:
        raise InputError(f"cutout has shape {arr.shape}, expected 2-D", column=where or None)
    return arr


def read_alert(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ZTF alert packet (JSON) and decode its three cutouts.

    Parameters
    ----------
    path : path
        JSON alert (Kowalski BSON-JSON export).

    Returns
    -------
    dict
        ``candid``, ``objectId``, ``science``, ``reference``, ``difference`` (float32 arrays as
        read from FITS) and ``candidate`` (the candidate dict).

    Raises
    ------
    InputError
        Unreadable JSON or a missing cutout field (names the file and field).
    """
    p = Path(path)
    try:
        alert = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable alert packet ({exc})", path=p) from exc
    out: dict[str, Any] = {
        "candid": alert.get("candid"),
        "objectId": alert.get("objectId"),
        "candidate": alert.get("candidate", {}),
    }
    for key, name in zip(ALERT_CUTOUTS, ("science", "reference", "difference"), strict=True):
        if key not in alert:
            raise InputError("missing cutout field", path=p, column=key)
        try:
            out[name] = decode_alert_cutout(alert[key], where=key)
        except InputError as exc:
            raise InputError(str(exc), path=p) from exc
    return out


def to_network(
    cutouts: NDArray[Any], *, channels: str = "diff", norm: str = "none"
) -> NDArray[np.float32]:
    """Stack of cutouts ``(N, C, H, W)`` -> network input with a per-channel normalisation.

    Parameters
    ----------
    cutouts : ndarray of shape (N, C, H, W)
        Raw cutouts with channels ``[science, reference, difference]`` (C = 3) or difference
        only (C = 1).
    channels : {"diff", "triplet"}
        Keep only the difference channel, or all three.
    norm : {"l2", "rows", "none"}
        Per-channel normalisation of every cutout.

    Returns
    -------
    ndarray of shape (N, C', H, W), float32

    Raises
    ------
    ValueError
        Wrong number of dimensions or channels.
    """
    x = np.asarray(cutouts)
    if x.ndim != 4:
        raise ValueError(f"cutouts must be (N, C, H, W), got shape {x.shape}")
    if channels == "diff":
        x = x[:, -1:]
    elif channels == "triplet":
        if x.shape[1] != 3:
            raise ValueError(f"triplet models need 3 channels, got {x.shape[1]}")
    else:
        raise ValueError(f"unknown channels {channels!r}; use diff or triplet")
    out = np.empty(x.shape, dtype=np.float32)
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[i, c] = normalise_channel(x[i, c], norm)
    return out
