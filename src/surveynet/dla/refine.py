"""Second-stage localiser of catalogue absorbers (the ``dla_refiner`` model).

The vote peaks of the first stage (dla.md §5) place most absorbers within a few pixels, but in a
dense Lyman-alpha forest the peak of a strong DLA wanders 10-40 A from the centre of its black
core. The refiner is a small CNN (:class:`surveynet.dla.model.Refiner`, numpy twin
:class:`surveynet.dla.engine.RefinerEngine`) that looks at a crop of the sightline centred on the
catalogue position and predicts the offset to the nearest absorber (and its log N_HI and a
logit that there is one within ``reach``); the catalogue position is moved by the offset and the
crop taken again, ``iterations`` times (:meth:`DLARefiner.refine`). Optionally the last round
averages over crops shifted by a few pixels (test-time augmentation, ``shifts``): each shifted
crop gives its own estimate of the position (crop centre + offset).

Training crops (:func:`refiner_arrays`) are centred on the truth absorbers with a jitter (half
Gaussian, half uniform over +-``reach``) plus random searched pixels, so the refiner never sees
the first stage's outputs and can follow any finder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.config import from_dict
from surveynet.dla.config import DataConfig, RefinerConfig
from surveynet.dla.sightline import Sightline, pixel_position, search_pixels
from surveynet.errors import ModelFormatError
from surveynet.io.model import FromSaved, SavedModel
from surveynet.registry import get_numpy_engine

__all__ = [
    "DEFAULT_REFINER",
    "DEFAULT_REFINERS",
    "DLARefiner",
    "RefinerArrays",
    "refiner_arrays",
    "refiner_input",
    "refiner_targets",
]

#: The bundled fine-grid refiner.
DEFAULT_REFINER = "dla_refiner"
#: Bundled refiners applied in turn by ``surveynet dla predict`` unless ``--refiner none``.
DEFAULT_REFINERS: tuple[str, ...] = (DEFAULT_REFINER, "dla_refiner_wide")


def refiner_input(sl: Sightline, centres: NDArray[np.integer[Any]], cfg: RefinerConfig) -> Any:
    """Crops ``(n, 3, cfg.crop)`` of ``sl`` with pixel ``centres[i]`` at index ``crop // 2``.

    Channels: flux (non-finite -> 0, clipped to +-10), 1-sigma error capped at ``error_cap``,
    and (rest wavelength - ``rest_center``) / ``rest_scale``. Outside the sightline the flux is 0,
    the error ``error_cap`` and the rest wavelength continues the log grid.

    Parameters
    ----------
    sl : Sightline
        The sightline.
    centres : ndarray of int
        Crop-centre pixels.
    cfg : RefinerConfig
        Crop length, error cap, rest-wavelength scaling.

    Returns
    -------
    ndarray of shape (n, 3, cfg.crop), float32
    """
    centres = np.asarray(centres, dtype=np.int64).reshape(-1)
    half = cfg.crop // 2
    n = sl.n_pix
    f = np.clip(np.nan_to_num(np.asarray(sl.flux, float), nan=0.0, posinf=0.0, neginf=0.0), -10, 10)
    e = np.asarray(sl.error, float)
    e = np.where(np.isfinite(e) & (e > 0), np.minimum(e, cfg.error_cap), cfg.error_cap)
    fp = np.concatenate([np.zeros(cfg.crop), f, np.zeros(cfg.crop)]).astype(np.float32)
    ep = np.concatenate([np.full(cfg.crop, cfg.error_cap), e, np.full(cfg.crop, cfg.error_cap)])
    idx = centres[:, None] - half + np.arange(cfg.crop)[None, :]  # sightline pixel of each cell
    inside = np.clip(idx, -cfg.crop, n + cfg.crop - 1) + cfg.crop
    step = float(sl.loglam[1] - sl.loglam[0])
    rest = 10.0 ** (sl.loglam[0] + idx * step) / (1.0 + sl.z_qso)
    x = np.empty((centres.size, 3, cfg.crop), np.float32)
    x[:, 0] = fp[inside]
    x[:, 1] = ep[inside]
    x[:, 2] = (rest - cfg.rest_center) / cfg.rest_scale
    return x


def refiner_targets(
    sl: Sightline, centres: NDArray[np.integer[Any]], cfg: RefinerConfig
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Labels of crops centred at ``centres``: (has target, offset px, log N_HI).

    The target is the truth absorber of ``sl.dlas`` with log N_HI >= ``nhi_min`` nearest to the
    centre, if within ``reach`` pixels; offset = its pixel position - centre (0 when none).

    Parameters
    ----------
    sl : Sightline
        The sightline with its truth absorbers.
    centres : ndarray of int
        Crop-centre pixels.
    cfg : RefinerConfig
        ``nhi_min`` and ``reach``.

    Returns
    -------
    cls, offset, nhi : ndarray of shape (n,), float32
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1)
    cls = np.zeros(centres.size, np.float32)
    off = np.zeros(centres.size, np.float32)
    nhi = np.zeros(centres.size, np.float32)
    strong = [
        (pixel_position(sl, d.central_wavelength), d.nhi) for d in sl.dlas if d.nhi >= cfg.nhi_min
    ]
    if not strong:
        return cls, off, nhi
    pos = np.array([p for p, _ in strong])
    lognh = np.array([h for _, h in strong])
    d = pos[None, :] - centres[:, None]
    k = np.argmin(np.abs(d), axis=1)
    best = d[np.arange(centres.size), k]
    ok = np.abs(best) <= cfg.reach
    cls[ok] = 1.0
    off[ok] = best[ok]
    nhi[ok] = lognh[k[ok]]
    return cls, off, nhi


@dataclass
class RefinerArrays:
    """Training crops and labels of :func:`refiner_arrays`."""

    x: NDArray[np.float32]
    cls: NDArray[np.float32]
    offset: NDArray[np.float32]
    nhi: NDArray[np.float32]


def refiner_arrays(
    sightlines: Sequence[Sightline],
    cfg: RefinerConfig,
    rng: np.random.Generator,
    rest_range: tuple[float, float] = (900.0, 1346.0),
) -> RefinerArrays:
    """Training crops: jittered around the truth absorbers, plus random searched pixels.

    Around every truth absorber (log N_HI >= ``nhi_min``) inside the searched range
    (``strong_crops`` more for log N_HI >= ``strong_nhi``), plus ``negatives_per_sightline``
    random searched pixels per sightline.

    Parameters
    ----------
    sightlines : sequence of Sightline
        Labelled sightlines.
    cfg : RefinerConfig
        Crop settings.
    rng : numpy.random.Generator
        Jitter and negative positions.
    rest_range : tuple of float
        Searched rest-frame range (A).

    Returns
    -------
    RefinerArrays
    """
    xs, labels = [], []
    for sl in sightlines:
        pix = search_pixels(sl, rest_range)
        if pix.size == 0:
            continue
        centres: list[float] = []
        for d in sl.dlas:
            p = pixel_position(sl, d.central_wavelength)
            if d.nhi < cfg.nhi_min or not pix[0] <= p <= pix[-1]:
                continue
            n_jit = cfg.crops_per_absorber // 2
            if cfg.strong_nhi is not None and d.nhi >= cfg.strong_nhi:
                n_jit += cfg.strong_crops // 2
            centres += list(p + rng.normal(0.0, cfg.jitter_sigma, n_jit))
            # reach - 0.5: the rounded centre stays within reach
            centres += list(p + rng.uniform(0.5 - cfg.reach, cfg.reach - 0.5, n_jit))
        c = np.concatenate([np.rint(centres), rng.choice(pix, cfg.negatives_per_sightline)]).astype(
            np.int64
        )
        xs.append(refiner_input(sl, c, cfg))
        labels.append(np.stack(refiner_targets(sl, c, cfg)))
    if not xs:
        z = np.zeros(0, np.float32)
        return RefinerArrays(np.zeros((0, 3, cfg.crop), np.float32), z, z.copy(), z.copy())
    lab = np.concatenate(labels, axis=1)
    return RefinerArrays(np.concatenate(xs), lab[0], lab[1], lab[2])


class DLARefiner(FromSaved):
    """A saved ``dla_refiner`` model with its numpy engine.

    Parameters
    ----------
    saved : SavedModel
        The loaded model (:meth:`from_saved` reads a directory or bundled name).
    iterations : int
        Crop-predict-move rounds per absorber.
    nhi_weight : float
        Weight of the refiner's log N_HI in the refined row's ``NHI`` (0: keep the first stage's).
    shifts : int
        The last round averages the refiner over crops shifted by -``shifts``..+``shifts`` pixels
        (``predict.refine_shifts``); 0: one crop.
    dtype : numpy dtype
        Engine precision.
    """

    PIPELINE = "dla"

    def __init__(
        self,
        saved: SavedModel,
        *,
        iterations: int = 3,
        nhi_weight: float = 0.7,
        shifts: int = 0,
        dtype: Any = np.float32,
    ) -> None:
        if saved.architecture != "dla_refiner":
            raise ModelFormatError(
                f"{saved.path}: architecture {saved.architecture!r} is not dla_refiner"
            )
        self.saved = saved
        self.engine = get_numpy_engine("dla_refiner")(saved.tensors, saved.config, dtype=dtype)
        self.config: RefinerConfig = self.engine.config
        pre = saved.preprocessing
        self.data = from_dict(DataConfig, pre["data"]) if "data" in pre else DataConfig()
        self.iterations = int(iterations)
        self.nhi_weight = float(nhi_weight)
        self.shifts = int(shifts)
        self.n_crops = 0  # crops evaluated so far (the benchmark's FLOP count)
        if self.iterations < 1 or not 0.0 <= self.nhi_weight <= 1.0 or self.shifts < 0:
            raise ValueError(
                "refiner: iterations must be >= 1, nhi_weight in [0, 1] and shifts >= 0"
            )

    @property
    def name(self) -> str:
        """Model name."""
        return str(self.saved.name)

    def refine(self, items: Sequence[tuple[Sightline, list[dict[str, Any]]]]) -> None:
        """Move each absorber row (``WAVE``, observed Lyman-alpha wavelength in A) in place.

        Each round crops every absorber at its current pixel, predicts the offset to the nearest
        absorber (clipped to +-``reach``) and moves the position by it; the last round takes the
        mean of the position estimates (and outputs) of the crops shifted by
        -``shifts``..+``shifts`` pixels. The rows get
        ``WAVE`` (refined), ``WAVE_FIRST`` (the first stage's, kept through a chain of
        refiners), ``REFINE_P`` (probability of an absorber within ``reach`` at the last round)
        and ``REFINE_NHI``; ``NHI`` becomes (1 - ``nhi_weight``) x NHI + ``nhi_weight`` x
        REFINE_NHI. With ``config.apply_nhi_min`` set, rows of lower ``NHI`` are left as they are.

        Parameters
        ----------
        items : sequence of (Sightline, list of dict)
            Each sightline (on this refiner's grid) with its absorber rows.
        """
        cfg = self.config
        if cfg.apply_nhi_min is not None:
            items = [(sl, [r for r in rows if r["NHI"] >= cfg.apply_nhi_min]) for sl, rows in items]
        todo: list[tuple[Sightline, dict[str, Any]]] = []
        spans = []  # each sightline's rows are one slice of ``todo``: one crop call
        for sl, rows in items:
            if rows:
                spans.append((sl, len(todo), len(todo) + len(rows)))
                todo += [(sl, r) for r in rows]
        if not todo:
            return
        shifts = np.arange(-self.shifts, self.shifts + 1)
        self.n_crops += (self.iterations - 1 + shifts.size) * len(todo)
        pos = np.array([pixel_position(sl, r["WAVE"]) for sl, r in todo])
        out = np.zeros((len(todo), 3))
        for it in range(self.iterations):
            centre = np.rint(pos).astype(np.int64)
            last = it == self.iterations - 1
            est, outs = [], []
            for s in shifts if last else np.zeros(1, np.int64):
                x = np.concatenate([refiner_input(sl, centre[a:b] + s, cfg) for sl, a, b in spans])
                o = np.asarray(self.engine(x), dtype=np.float64)
                outs.append(o)
                est.append(centre + s + np.clip(o[:, 1], -cfg.reach, cfg.reach))
            out = np.mean(outs, axis=0)
            pos = np.mean(est, axis=0)
        for (sl, r), p, o in zip(todo, pos, out, strict=True):
            r.setdefault("WAVE_FIRST", r["WAVE"])
            r["WAVE"] = float(10.0 ** (sl.loglam[0] + p * (sl.loglam[1] - sl.loglam[0])))
            r["REFINE_P"] = float(1.0 / (1.0 + np.exp(-o[0])))
            r["REFINE_NHI"] = float(o[2])
            r["NHI"] = (1.0 - self.nhi_weight) * float(r["NHI"]) + self.nhi_weight * float(o[2])
