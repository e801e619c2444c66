"""Network inputs of DLA sightlines (numpy only; shared by train and predict).

A sightline's normalised flux is padded on both sides with the mean of its first/last
``pad_npix`` pixels (the anchor's window padding, cosmodesi/desi-dlas:desidlas/datasets/
datasetting.py ``split_sightline_into_samples``); low-S/N inputs add median-filtered channels
[raw, medfilt 3, 7, 15] computed once over the whole sightline (the anchor smooths each 600-px
window separately, ``smooth_flux``); an error channel carries the capped 1-sigma error.
:class:`InputSpec` records how (it is stored as the ``preprocessing.input`` of a saved model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.dla.sightline import Sightline
from surveynet.nn.numpy_ops import medfilt

__all__ = ["ERROR_CHANNEL", "InputSpec", "channel_stack", "padded_input"]

#: channel code of the 1-sigma error in :attr:`InputSpec.channels`
ERROR_CHANNEL = -1


@dataclass(frozen=True)
class InputSpec:
    """How a model's input is built (stored as ``preprocessing`` in the model's config.json).

    Attributes
    ----------
    channels : tuple of int
        0 = raw flux, k > 0 = median filter of size k (e.g. (0, 3, 7, 15)), ``ERROR_CHANNEL``
        (-1) = the flux's 1-sigma error capped at ``clip`` (``clip`` where there is no data).
    pad_npix : int
        Edge padding uses the mean of the first/last ``pad_npix`` pixels.
    rest_range : tuple of float
        Rest-frame range (A) where windows / pixels are evaluated.
    samplerange : int
        Positive label half-width in pixels.
    border_factor : int
        Border (ignored) half-width = border_factor * samplerange.
    label_wave_min : float
        Absorbers are labelled only at observed wavelength >= this (A).
    clip : float
        Input flux clipped to [-clip, clip] (guards against outliers).
    """

    channels: tuple[int, ...] = (0,)
    pad_npix: int = 50
    rest_range: tuple[float, float] = (900.0, 1346.0)
    samplerange: int = 60
    border_factor: int = 2
    label_wave_min: float = 3570.0
    clip: float = 10.0

    def __post_init__(self) -> None:
        bad = [k for k in self.channels if k != ERROR_CHANNEL and (k < 0 or (k > 0 and k % 2 == 0))]
        if bad or not self.channels:
            raise ValueError(
                f"input channels must be 0 (flux), odd median-filter sizes or -1 (error), "
                f"got {list(self.channels)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict.

        Returns
        -------
        dict
            Every field, tuples as lists.
        """
        return {
            "channels": list(self.channels),
            "pad_npix": self.pad_npix,
            "rest_range": list(self.rest_range),
            "samplerange": self.samplerange,
            "border_factor": self.border_factor,
            "label_wave_min": self.label_wave_min,
            "clip": self.clip,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        """Inverse of :meth:`to_dict` (unknown keys ignored, missing ones take the defaults).

        Parameters
        ----------
        d : dict
            A stored ``preprocessing.input``.

        Returns
        -------
        InputSpec

        Examples
        --------
        >>> InputSpec.from_dict(InputSpec(channels=(0, -1)).to_dict()).channels
        (0, -1)
        """
        return cls(
            channels=tuple(int(c) for c in d.get("channels", (0,))),
            pad_npix=int(d.get("pad_npix", 50)),
            rest_range=tuple(float(x) for x in d.get("rest_range", (900.0, 1346.0))),  # type: ignore[arg-type]
            samplerange=int(d.get("samplerange", 60)),
            border_factor=int(d.get("border_factor", 2)),
            label_wave_min=float(d.get("label_wave_min", 3570.0)),
            clip=float(d.get("clip", 10.0)),
        )


def channel_stack(sl: Sightline, spec: InputSpec) -> NDArray[np.float32]:
    """Input channels ``(C, n_pix)`` of a sightline (finite, clipped flux).

    Parameters
    ----------
    sl : Sightline
        The sightline.
    spec : InputSpec
        Channels and clip value.

    Returns
    -------
    ndarray of shape (C, n_pix), float32
        One row per entry of ``spec.channels``.
    """
    f = np.nan_to_num(np.asarray(sl.flux, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    f = np.clip(f, -spec.clip, spec.clip)
    rows = []
    for k in spec.channels:
        if k == ERROR_CHANNEL:
            e = np.asarray(sl.error, dtype=np.float64)
            rows.append(np.where(np.isfinite(e) & (e >= 0), np.minimum(e, spec.clip), spec.clip))
        else:
            rows.append(f if k == 0 else medfilt(f, k))
    return np.asarray(rows, dtype=np.float32)


def padded_input(sl: Sightline, spec: InputSpec, pad_left: int, length: int) -> NDArray[np.float32]:
    """Channels padded to ``(C, length)``: ``pad_left`` edge-mean pixels, sightline, edge mean.

    Parameters
    ----------
    sl : Sightline
        The sightline.
    spec : InputSpec
        Channels, clip value and ``pad_npix``.
    pad_left : int
        Padded pixels before the sightline's first pixel.
    length : int
        Total length.

    Returns
    -------
    ndarray of shape (C, length), float32

    Raises
    ------
    ValueError
        If the sightline does not fit in ``length``.
    """
    x = channel_stack(sl, spec)
    n = x.shape[1]
    if pad_left + n > length:
        raise ValueError(f"sightline {sl.targetid}: {n} px + pad {pad_left} exceed {length}")
    m = spec.pad_npix
    left = x[:, :m].mean(axis=1, keepdims=True)
    right = x[:, -m:].mean(axis=1, keepdims=True)
    out = np.empty((x.shape[0], length), dtype=np.float32)
    out[:, :pad_left] = left
    out[:, pad_left : pad_left + n] = x
    out[:, pad_left + n :] = right
    return out
