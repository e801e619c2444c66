"""Windows and labels for the DLA CNNs (dla.md sections 1.5 and 3).

One window is centred on **every** pixel whose rest wavelength lies in ``data.rest_range``
(900-1346 A). A window centred on pixel ``j`` covers pixels ``[j - L//2, j + L//2)``; parts off
the spectrum are padded with the mean flux of the first/last ``pad_npix`` pixels
(cosmodesi/desi-dlas:desidlas/datasets/datasetting.py ``split_sightline_into_samples``).

Labels per pixel ``j`` (:func:`label_sightline`), ``s = samplerange`` (60 for 400 px, 90 for 600):

- class 0; then -1 ("border", never trained) where ``|j - ix_DLA| <= border_factor * s`` and
  ``|j - ix_LyB| <= s``; then +1 where ``|j - ix_DLA| <= s`` (all ranges clipped to [0, n)).
- offset = ``ix_DLA - j`` of the nearest absorber for positives (> 0: absorber redward), 0 else.
- N_HI = log N of that absorber for positives, 0 else.

Smoothed datasets (:func:`make_smoothdatasets`) have channels ``[raw, medfilt 3, medfilt 7,
medfilt 15]`` in that order, as ``(n, C, L)`` arrays (channel axis second, the torch layout; the
anchor's ``reshape`` interleaved them). The median filters run on the padded whole sightline, so a
window's channels equal the fully-convolutional model's input sliced at the same pixels.

Datasets are stored as ``.npz`` (``allow_pickle=False``) or FITS (image HDU ``FLUX`` + table
``LABELS``), never pickles.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.signal import medfilt

from surveynet.dla.config import LYA_REST, LYB_REST, DataConfig, DatasetConfig
from surveynet.dla.sightline import Sightline
from surveynet.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "PixelLabels",
    "WindowDataset",
    "extract_windows",
    "label_sightline",
    "load_dataset",
    "make_datasets",
    "make_smoothdatasets",
    "padded_channels",
    "rest_range_pixels",
    "save_dataset",
]


@dataclass
class PixelLabels:
    """Per-pixel labels of one sightline.

    Attributes
    ----------
    classification : ndarray of shape (n_pix,), int8
        1 (absorber within +-s), 0 (negative) or -1 (border, not trained).
    offset : ndarray of shape (n_pix,), float32
        ``ix_DLA - j`` for positives, 0 elsewhere.
    nhi : ndarray of shape (n_pix,), float32
        log N_HI for positives, 0 elsewhere.
    """

    classification: NDArray[np.int8]
    offset: NDArray[np.float32]
    nhi: NDArray[np.float32]


@dataclass
class WindowDataset:
    """Windows with their labels, ready for training or prediction.

    Attributes
    ----------
    flux : ndarray of shape (n, C, L), float32
        Window flux, channels first (C = 1 raw, or 4 = raw + median filters 3, 7, 15).
    labels_classifier : ndarray of shape (n,), int8
        1, 0 or -1 (border).
    labels_offset : ndarray of shape (n,), float32
    col_density : ndarray of shape (n,), float32
    targetid : ndarray of shape (n,), int64
        Sightline of each window.
    pixel : ndarray of shape (n,), int32
        Window-centre pixel in its sightline.
    """

    flux: NDArray[np.float32]
    labels_classifier: NDArray[np.int8]
    labels_offset: NDArray[np.float32]
    col_density: NDArray[np.float32]
    targetid: NDArray[np.int64]
    pixel: NDArray[np.int32]

    def __post_init__(self) -> None:
        n = len(self.flux)
        if np.ndim(self.flux) != 3:
            raise ValueError(
                f"WindowDataset.flux must be (n, C, L), got shape {np.shape(self.flux)}"
            )
        for f in fields(self)[1:]:
            if len(getattr(self, f.name)) != n:
                raise ValueError(
                    f"WindowDataset.{f.name} has {len(getattr(self, f.name))} rows, flux {n}"
                )

    def __len__(self) -> int:
        return len(self.flux)

    @property
    def n_channels(self) -> int:
        """Number of channels C."""
        return int(self.flux.shape[1])

    @property
    def kernel(self) -> int:
        """Window length L."""
        return int(self.flux.shape[2])

    @classmethod
    def concatenate(
        cls, parts: Sequence[WindowDataset], *, n_channels: int = 1, kernel: int = 400
    ) -> WindowDataset:
        """Concatenate datasets (an empty dataset of the given shape when ``parts`` is empty)."""
        if not parts:
            return cls(
                flux=np.zeros((0, n_channels, kernel), np.float32),
                labels_classifier=np.zeros(0, np.int8),
                labels_offset=np.zeros(0, np.float32),
                col_density=np.zeros(0, np.float32),
                targetid=np.zeros(0, np.int64),
                pixel=np.zeros(0, np.int32),
            )
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )


# ----------------------------------------------------------------------------- labels


def rest_range_pixels(
    sightline: Sightline, rest_range: tuple[float, float] = (900.0, 1346.0)
) -> NDArray[np.intp]:
    """Indices of the pixels with rest wavelength in ``rest_range`` (inclusive; window centres)."""
    rest = sightline.rest_wave
    return np.flatnonzero((rest >= rest_range[0]) & (rest <= rest_range[1]))


def _fractional_pixel(loglam: NDArray[np.float64], wave: float) -> float:
    """Pixel coordinate of ``wave`` on ``loglam`` (linear extrapolation beyond the ends)."""
    x = np.log10(wave)
    n = loglam.size
    if x < loglam[0]:
        return float((x - loglam[0]) / (loglam[1] - loglam[0]))
    if x > loglam[-1]:
        return float(n - 1 + (x - loglam[-1]) / (loglam[-1] - loglam[-2]))
    return float(np.interp(x, loglam, np.arange(n)))


def label_sightline(
    sightline: Sightline,
    config: DatasetConfig | None = None,
    *,
    kernel: int | None = None,
    rest_range: tuple[float, float] = (900.0, 1346.0),
) -> PixelLabels:
    """Per-pixel class/offset/N_HI labels of a sightline from its ``dlas``.

    Absorbers are labelled when ``rest_range[0] < lambda_rest < rest_range[1]`` and
    ``lambda_obs >= label_wave_min``; their pixel may lie just off the spectrum (labels are
    clipped to [0, n), the anchor's negative-start slices and IndexError are avoided).

    Examples
    --------
    >>> import numpy as np
    >>> from surveynet.dla.sightline import Sightline, Dla
    >>> ll = np.log10(3600.0) + 1e-4 * np.arange(3000)
    >>> dla = Dla(10 ** ll[1500] / 1215.6701 - 1, 21.0)
    >>> sl = Sightline(1, 3.0, ll, np.ones(3000), np.ones(3000), 5.0, [dla])
    >>> lab = label_sightline(sl)
    >>> lab.classification[[1500, 1561, 1621]].tolist(), float(lab.offset[1440])
    ([1, -1, 0], 60.0)
    """
    cfg = config or DatasetConfig()
    s = cfg.half_width(kernel)
    n = sightline.n_pix
    cls = np.zeros(n, np.int8)
    off = np.zeros(n, np.float32)
    nhi = np.zeros(n, np.float32)
    best = np.full(n, np.inf)
    ll = np.asarray(sightline.loglam, dtype=np.float64)
    j = np.arange(n)
    dlas = []
    for d in sightline.dlas:
        lam = d.central_wavelength
        rest = lam / (1.0 + sightline.z_qso)
        if not (rest_range[0] < rest < rest_range[1]) or lam < cfg.label_wave_min:
            continue
        dlas.append((round(_fractional_pixel(ll, lam)), d))
    for ix, d in dlas:
        lo, hi = max(ix - cfg.border_factor * s, 0), min(ix + cfg.border_factor * s + 1, n)
        if lo < hi:
            cls[lo:hi] = -1
        if cfg.lyb_border:
            iy = round(_fractional_pixel(ll, d.central_wavelength * LYB_REST / LYA_REST))
            lo, hi = max(iy - s, 0), min(iy + s + 1, n)
            if lo < hi:
                cls[lo:hi] = -1
    for ix, d in dlas:
        lo, hi = max(ix - s, 0), min(ix + s + 1, n)
        if lo >= hi:
            continue
        sl = slice(lo, hi)
        dist = np.abs(ix - j[sl]).astype(float)
        closer = dist < best[sl]
        cls[sl] = 1
        off[sl] = np.where(closer, ix - j[sl], off[sl])
        nhi[sl] = np.where(closer, d.nhi, nhi[sl])
        best[sl] = np.where(closer, dist, best[sl])
    return PixelLabels(classification=cls, offset=off, nhi=nhi)


# ----------------------------------------------------------------------------- windows


def padded_channels(
    sightline: Sightline, kernel: int, medfilt_sizes: Sequence[int] = (), *, pad_npix: int = 50
) -> tuple[NDArray[np.float32], int]:
    """Flux channels of the whole sightline, padded by ``kernel // 2`` pixels on each side.

    Returns
    -------
    channels : ndarray of shape (1 + len(medfilt_sizes), n_pix + 2 * (kernel // 2)), float32
        ``[raw, medfilt k1, medfilt k2, ...]`` (``scipy.signal.medfilt`` of the padded raw flux).
    pad : int
        Number of padded pixels on the left: sightline pixel ``j`` is column ``j + pad``.
    """
    f = np.asarray(sightline.flux, dtype=np.float64)
    f = np.where(np.isfinite(f), f, 0.0)
    pad = kernel // 2
    left = np.full(pad, f[:pad_npix].mean())
    right = np.full(pad, f[-pad_npix:].mean())
    raw = np.concatenate([left, f, right])
    chans = [raw] + [medfilt(raw, int(k)) for k in medfilt_sizes]
    return np.stack(chans).astype(np.float32), pad


def extract_windows(
    sightline: Sightline,
    pixels: NDArray[np.integer],
    kernel: int,
    medfilt_sizes: Sequence[int] = (),
    *,
    pad_npix: int = 50,
) -> NDArray[np.float32]:
    """Windows of ``kernel`` pixels centred on ``pixels``: array of shape (n, C, kernel).

    Window ``i`` covers sightline pixels ``[p - kernel//2, p - kernel//2 + kernel)``, p = pixels[i].
    """
    chans, pad = padded_channels(sightline, kernel, medfilt_sizes, pad_npix=pad_npix)
    px = np.asarray(pixels, dtype=np.intp)
    starts = px + pad - kernel // 2
    if chans.shape[1] < kernel:  # tiny spectrum: pad more on the right
        chans = np.pad(chans, ((0, 0), (0, kernel - chans.shape[1])), mode="edge")
    view = np.lib.stride_tricks.sliding_window_view(chans, kernel, axis=1)  # (C, n_start, kernel)
    return np.ascontiguousarray(view[:, starts, :].transpose(1, 0, 2))


def _make(
    sightlines: Sequence[Sightline],
    kernel: int,
    medfilt_sizes: Sequence[int],
    config: DatasetConfig,
    data: DataConfig,
    balanced: bool,
    rng: np.random.Generator,
) -> WindowDataset:
    parts = []
    for sl in sightlines:
        lab = label_sightline(sl, config, kernel=kernel, rest_range=data.rest_range)
        px = rest_range_pixels(sl, data.rest_range)
        if balanced:
            c = lab.classification[px]
            pos, neg = px[c == 1], px[c == 0]
            k = min(pos.size, neg.size)
            if k == 0:
                continue  # a DLA-free sightline contributes nothing (anchor behaviour)
            px = np.sort(
                np.concatenate(
                    [rng.choice(pos, k, replace=False), rng.choice(neg, k, replace=False)]
                )
            )
        if px.size == 0:
            continue
        parts.append(
            WindowDataset(
                flux=extract_windows(sl, px, kernel, medfilt_sizes, pad_npix=config.pad_npix),
                labels_classifier=lab.classification[px],
                labels_offset=lab.offset[px],
                col_density=lab.nhi[px],
                targetid=np.full(px.size, sl.targetid, np.int64),
                pixel=px.astype(np.int32),
            )
        )
    ds = WindowDataset.concatenate(parts, n_channels=1 + len(medfilt_sizes), kernel=kernel)
    logger.info(
        "%d windows from %d sightlines (kernel %d, %d channels, balanced=%s)",
        len(ds),
        len(sightlines),
        kernel,
        1 + len(medfilt_sizes),
        balanced,
    )
    return ds


def make_datasets(
    sightlines: Sequence[Sightline],
    config: DatasetConfig | None = None,
    *,
    data: DataConfig | None = None,
    balanced: bool | None = None,
    rng: np.random.Generator | None = None,
) -> WindowDataset:
    """Single-channel windows (``config.kernel`` = 400 px) with labels.

    Parameters
    ----------
    sightlines : sequence of Sightline
    config : DatasetConfig, optional
    data : DataConfig, optional
        Supplies ``rest_range`` (window centres).
    balanced : bool, optional
        True: per sightline min(#pos, #neg) random positives and negatives, borders dropped
        (training); False: every window of the rest range (validation/prediction). Default
        ``config.balanced``.
    rng : numpy.random.Generator, optional
        Sampling randomness (default ``default_rng(config.seed)``).

    Returns
    -------
    WindowDataset
        ``flux`` of shape (n, 1, kernel).
    """
    cfg = config or DatasetConfig()
    return _make(
        sightlines,
        cfg.kernel,
        (),
        cfg,
        data or DataConfig(),
        cfg.balanced if balanced is None else balanced,
        rng or np.random.default_rng(cfg.seed),
    )


def make_smoothdatasets(
    sightlines: Sequence[Sightline],
    config: DatasetConfig | None = None,
    *,
    data: DataConfig | None = None,
    balanced: bool | None = None,
    rng: np.random.Generator | None = None,
) -> WindowDataset:
    """Smoothed 4-channel windows (``smooth_kernel`` = 600 px, channels [raw, mf3, mf7, mf15]).

    The positive half-width is ``int(0.3 * 600 / 2) = 90`` unless ``config.samplerange`` is set.
    Parameters as :func:`make_datasets`; ``flux`` has shape (n, 1 + len(medfilt_sizes), 600).
    """
    cfg = config or DatasetConfig()
    return _make(
        sightlines,
        cfg.smooth_kernel,
        cfg.medfilt_sizes,
        cfg,
        data or DataConfig(),
        cfg.balanced if balanced is None else balanced,
        rng or np.random.default_rng(cfg.seed),
    )


# ----------------------------------------------------------------------------- storage

_LABEL_COLS = ("labels_classifier", "labels_offset", "col_density", "targetid", "pixel")


def save_dataset(
    path: str | os.PathLike[str], dataset: WindowDataset, *, overwrite: bool = False
) -> Path:
    """Write a dataset atomically as ``.npz`` (compressed, no pickle) or ``.fits``.

    FITS layout: primary HDU with a provenance header, image HDU ``FLUX`` (n, C, L) and table
    HDU ``LABELS`` with LABELS_CLASSIFIER, LABELS_OFFSET, COL_DENSITY, TARGETID, PIXEL.
    """
    from surveynet.io.fits import atomic_path

    p = Path(path)
    if p.suffix == ".npz":
        with atomic_path(p, overwrite=overwrite) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh, flux=dataset.flux, **{c: getattr(dataset, c) for c in _LABEL_COLS}
                )
        return p
    if p.suffix in (".fits", ".fit") or p.name.endswith(".fits.gz"):
        from astropy.io import fits
        from astropy.table import Table

        from surveynet.io.fits import provenance_header, table_hdu, write_hdulist

        img = fits.ImageHDU(dataset.flux, name="FLUX")
        tab = table_hdu(Table({c.upper(): getattr(dataset, c) for c in _LABEL_COLS}), "LABELS")
        return write_hdulist(
            p,
            [fits.PrimaryHDU(header=provenance_header(pipeline="dla")), img, tab],
            overwrite=overwrite,
        )
    raise ValueError(f"{p}: dataset files must end in .npz or .fits")


def load_dataset(path: str | os.PathLike[str]) -> WindowDataset:
    """Read a dataset written by :func:`save_dataset`.

    Raises
    ------
    InputError
        Missing array/HDU/column or unreadable file.
    """
    p = Path(path)
    if p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                missing = [k for k in ("flux", *_LABEL_COLS) if k not in z.files]
                if missing:
                    raise InputError(f"missing array(s) {missing}", path=p)
                return WindowDataset(flux=z["flux"], **{c: z[c] for c in _LABEL_COLS})
        except (OSError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"cannot read npz ({exc})", path=p) from exc
    from astropy.io import fits

    try:
        with fits.open(p, memmap=False) as hdul:
            names = [h.name for h in hdul]
            for h in ("FLUX", "LABELS"):
                if h not in names:
                    raise InputError("missing HDU", path=p, hdu=h)
            flux = np.asarray(hdul["FLUX"].data, dtype=np.float32)
            lab = hdul["LABELS"].data
            kw = {}
            for c in _LABEL_COLS:
                if c.upper() not in lab.columns.names:
                    raise InputError("missing column", path=p, hdu="LABELS", column=c.upper())
                kw[c] = np.asarray(lab[c.upper()])
    except OSError as exc:
        raise InputError(f"cannot read FITS ({exc})", path=p) from exc
    return WindowDataset(flux=flux, **kw)
