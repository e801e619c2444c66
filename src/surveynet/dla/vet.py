"""Absorber vetter: the probability that a catalogue absorber is real.

The first stage's ``DLA_CONFIDENCE`` (min(1, summed votes)) is 1 for most absorbers and says
little about the weak ones; false DLAs gather where the spectrum is noisiest (the blue end of
the B camera) and at low S/N. The vetter is a logistic regression on per-absorber features that
the catalogue step has at hand. It is trained on the catalogue absorbers of training mocks
(``surveynet dla train --set model.architecture=dla_vetter``, whose driver is
:func:`surveynet.dla.train.train_vetter`): label 1 when a truth absorber (any log N_HI) lies
within the matching tolerance (:func:`surveynet.dla.evaluate.match_absorbers`, 10 A). In
``surveynet dla predict`` it replaces ``DLA_CONFIDENCE`` by that probability, after the refiners
and before the core-overlap merge, and drops absorbers below its threshold
(``predict.vet_threshold``; the model's own by default).

Features (:data:`FEATURES`; "peak" is the first stage's vote peak, "position" the absorber's
final pixel after the refiners, on the finder's grid):

- ``log_votes``: ln(0.05 + summed votes at the peak), not clipped at 1;
- ``pix_conf_max``, ``pix_conf_mean``: the per-pixel confidence within +-20 px of the peak;
- ``nhi``, ``nhi_std``: the absorber's log N_HI and the spread of the pixel N_HI values;
- ``log_err``: ln of the median 1-sigma error within +-50 px of the position;
- ``flux``: the median flux there; ``core_flux``: the mean flux within +-5 px;
  ``core_signif``: core_flux / (median error);
- ``refine_logit``: the last refiner's logit that an absorber lies within its reach (0 without
  refiners); ``refine_shift``: how far the refiners moved the absorber (A, absolute);
- ``log_s2n``: ln of the sightline S/N; ``log_wave``: ln of the observed wavelength (A);
  ``rest_wave``: the quasar-frame wavelength (A); ``n_peaks``: vote peaks in the sightline;
- ``log_err_rel``: ln(median error near the position / median error of the sightline);
- ``voigt_lr``: sign(d) ln(1 + |d|), d = chi2(flat) - chi2(Voigt) within +-80 A of the position,
  where the Voigt model has the absorber's z and log N_HI (Lyman-alpha, b = 30 km/s), the
  continuum level is fitted under each hypothesis, and the pixel variance adds a forest term
  (0.3 x model)^2 (with its log-determinant in chi2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.constants import LYA_REST
from surveynet.dla.config import VET_COLUMN_PREFIX, VET_FEATURES
from surveynet.dla.postprocess import SightlinePrediction
from surveynet.dla.sightline import Sightline, pixel_position
from surveynet.errors import InputError, ModelFormatError
from surveynet.io.model import FromSaved, SavedModel
from surveynet.sim.voigt import voigt_tau

__all__ = [
    "COLUMN_PREFIX",
    "DEFAULT_VETTER",
    "FEATURES",
    "TENSORS",
    "DLAVetter",
    "fit_logistic",
    "logistic_probability",
    "resolve_vetter",
    "row_features",
    "voigt_lr",
]

#: The input features, in order (:data:`surveynet.dla.config.VET_FEATURES`).
FEATURES: tuple[str, ...] = VET_FEATURES

#: catalogue column of feature ``name`` (``predict.vet_features``)
COLUMN_PREFIX = VET_COLUMN_PREFIX

#: tensors of a ``dla_vetter`` model (feature standardisation, then the logistic regression)
TENSORS = ("mean", "scale", "weight", "bias")

#: bundled vetter of ``surveynet dla predict``
DEFAULT_VETTER = "dla_vetter"


def voigt_lr(
    sl: Sightline,
    wave: float,
    nhi: float,
    *,
    half_width: float = 80.0,
    forest_sigma: float = 0.3,
) -> float:
    """chi2(flat continuum) - chi2(continuum x Voigt) of the pixels within ``half_width`` A.

    The continuum level c is fitted by weighted least squares under each hypothesis (3
    iterations); the variance of a pixel is error^2 + (forest_sigma x c x model)^2 and its log
    enters chi2, so that a model cannot win by inflating the variance. NaN with fewer than 20
    usable pixels. Larger is more absorber-like.

    Parameters
    ----------
    sl : Sightline
        The sightline.
    wave : float
        Observed Lyman-alpha wavelength of the absorber (A).
    nhi : float
        Its log N_HI (at least 20 in the model).
    half_width : float
        Half-width of the fitted window (A).
    forest_sigma : float
        Relative forest scatter added to the variance.

    Returns
    -------
    float
        chi2(flat) - chi2(Voigt); NaN with fewer than 20 usable pixels.
    """
    w = sl.wave
    m = (np.abs(w - wave) < half_width) & np.isfinite(sl.error) & (sl.error > 0)
    if int(m.sum()) < 20:
        return float("nan")
    f, e = sl.flux[m], sl.error[m]
    shape = np.exp(-voigt_tau(w[m], wave / LYA_REST - 1.0, float(max(nhi, 20.0))))

    def chi2(model: NDArray[np.float64]) -> float:
        high = model > 0.9
        c = max(float(np.median(f[high] if high.sum() > 5 else f)), 1e-3)
        for _ in range(3):
            v = e**2 + (forest_sigma * c * model) ** 2
            c = max(float(np.sum(f * model / v) / np.sum(model**2 / v)), 1e-3)
        v = e**2 + (forest_sigma * c * model) ** 2
        return float(np.sum((f - c * model) ** 2 / v) + np.sum(np.log(v)))

    return chi2(np.ones_like(shape)) - chi2(shape)


def _median(x: NDArray[np.float64]) -> float:
    return float(np.median(x)) if x.size else float("nan")


def row_features(
    sl: Sightline, prediction: SightlinePrediction, rows: Sequence[dict[str, Any]]
) -> NDArray[np.float64]:
    """The :data:`FEATURES` of one sightline's absorber rows, shape (len(rows), n_features).

    ``rows`` are :func:`surveynet.dla.postprocess.peak_rows` dicts (``pix``, ``VOTES``, ``NHI``,
    ``NHI_STD``, ``WAVE``), possibly refined (``WAVE_FIRST``, ``REFINE_P``); ``prediction`` is
    the per-pixel output restricted to the searched range. Missing values become 0.

    Parameters
    ----------
    sl : Sightline
        The sightline (the finder's grid).
    prediction : SightlinePrediction
        Its outputs at the searched pixels.
    rows : sequence of dict
        Its absorber rows.

    Returns
    -------
    ndarray of shape (len(rows), len(FEATURES))
    """
    out = np.zeros((len(rows), len(FEATURES)))
    if not rows:
        return out
    flux, err = np.asarray(sl.flux, float), np.asarray(sl.error, float)
    good = np.isfinite(err) & (err > 0)
    err_sl = _median(err[good])
    n = flux.size
    for k, r in enumerate(rows):
        near = np.abs(prediction.pixel - int(r["pix"])) <= 20
        pc = prediction.confidence[near] if near.any() else np.zeros(1)
        at = int(np.clip(np.rint(pixel_position(sl, float(r["WAVE"]))), 0, n - 1))
        a, b = max(0, at - 50), min(n, at + 51)
        e_loc = _median(err[a:b][good[a:b]])
        ca, cb = max(0, at - 5), min(n, at + 6)
        core = flux[ca:cb][good[ca:cb]]
        core_flux = float(core.mean()) if core.size else float("nan")
        p = float(np.clip(r.get("REFINE_P", 0.5), 1e-4, 1.0 - 1e-4))
        lr = voigt_lr(sl, float(r["WAVE"]), float(r["NHI"]))
        out[k] = (
            np.log(0.05 + max(float(r.get("VOTES", r["DLA_CONFIDENCE"])), 0.0)),
            float(pc.max()),
            float(pc.mean()),
            float(r["NHI"]),
            float(r["NHI_STD"]),
            np.log(e_loc),
            _median(flux[a:b][good[a:b]]),
            core_flux,
            core_flux / e_loc,
            np.log(p / (1.0 - p)),
            abs(float(r["WAVE"]) - float(r.get("WAVE_FIRST", r["WAVE"]))),
            np.log(max(float(sl.s2n), 1e-3)),
            np.log(float(r["WAVE"])),
            float(r["WAVE"]) / (1.0 + float(sl.z_qso)),
            float(len(rows)),
            np.log(e_loc / err_sl),
            np.sign(lr) * np.log1p(abs(lr)),
        )
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def logistic_probability(
    tensors: dict[str, NDArray[Any]], x: NDArray[np.floating[Any]]
) -> NDArray[np.float64]:
    """P(real) of (n, n_features) features under ``dla_vetter`` tensors (:func:`fit_logistic`).

    Parameters
    ----------
    tensors : dict
        ``mean``, ``scale``, ``weight``, ``bias``.
    x : ndarray of shape (n, n_features)
        Features.

    Returns
    -------
    ndarray of shape (n,)
    """
    z = ((np.asarray(x, np.float64) - tensors["mean"]) / tensors["scale"]) @ tensors["weight"]
    return 1.0 / (1.0 + np.exp(-(z + float(np.asarray(tensors["bias"]).reshape(-1)[0]))))


def fit_logistic(
    x: NDArray[np.floating[Any]], y: NDArray[Any], *, l2: float = 1e-3, max_iter: int = 100
) -> dict[str, NDArray[np.float64]]:
    """Logistic regression by Newton's method on standardised features (deterministic).

    The penalty is l2 x n x |w|^2 / 2 on the weights (not the intercept). Returns the tensors
    of a ``dla_vetter`` model: ``mean``, ``scale`` (feature standardisation), ``weight``,
    ``bias``.

    Parameters
    ----------
    x : ndarray of shape (n, k)
        Features.
    y : ndarray of shape (n,), bool
        Labels.
    l2 : float
        Penalty per sample on the standardised weights.
    max_iter : int
        Newton iterations at most.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 2))
    >>> y = rng.random(2000) < 1 / (1 + np.exp(-(2 * x[:, 0] - 1)))
    >>> t = fit_logistic(x, y, l2=0.0)
    >>> bool(abs(t["weight"][0] / t["scale"][0] - 2) < 0.3)
    True
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 2 or len(x) != len(y) or len(x) < 2:
        raise InputError(f"vetter fit: need (n, k) features and n labels, got {x.shape}, {y.shape}")
    if y.min() == y.max():
        raise InputError("vetter fit: the labels are all equal; need real and false absorbers")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    a = np.c_[(x - mean) / scale, np.ones(len(x))]
    pen = np.full(a.shape[1], l2 * len(x))
    pen[-1] = 0.0
    w = np.zeros(a.shape[1])
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) + pen * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(pen) + 1e-9 * np.eye(a.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return {"mean": mean, "scale": scale, "weight": w[:-1].copy(), "bias": w[-1:].copy()}


class DLAVetter(FromSaved):
    """A saved ``dla_vetter`` model.

    Parameters
    ----------
    saved : SavedModel
        The loaded model (:meth:`from_saved` reads a directory or bundled name).
    threshold : float, optional
        Absorbers with a probability below this are dropped (default: the model's
        ``config.threshold``).
    """

    PIPELINE = "dla"

    def __init__(self, saved: SavedModel, *, threshold: float | None = None) -> None:
        if saved.architecture != "dla_vetter":
            raise ModelFormatError(
                f"{saved.path}: architecture {saved.architecture!r} is not dla_vetter"
            )
        feats = tuple(saved.config.get("features", ()))
        if feats != FEATURES:
            raise ModelFormatError(
                f"{saved.path}: config.features {list(feats)} differ from this surveynet's "
                f"{list(FEATURES)}"
            )
        k = len(FEATURES)
        for name, size in zip(TENSORS, (k, k, k, 1), strict=True):
            if name not in saved.tensors or np.size(saved.tensors[name]) != size:
                raise ModelFormatError(
                    f"{saved.path}: tensor {name!r} missing or not of size {size}"
                )
        self.saved = saved
        self.tensors = {k: np.asarray(saved.tensors[k], np.float64) for k in TENSORS}
        self.threshold = float(
            saved.config.get("threshold", 0.0) if threshold is None else threshold
        )

    @property
    def name(self) -> str:
        """Model name."""
        return str(self.saved.name)

    def probability(self, features: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Probability that each absorber is real, from its (n, n_features) features.

        Parameters
        ----------
        features : ndarray of shape (n, n_features)
            :func:`row_features`.

        Returns
        -------
        ndarray of shape (n,)
        """
        return logistic_probability(self.tensors, features)

    def vet(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Set each row's ``DLA_CONFIDENCE`` to the vetter's probability; keep those above.

        Returns the rows at or above the threshold. Each row carries its :func:`row_features` as
        ``FEATURES``.

        Parameters
        ----------
        rows : list of dict
            One sightline's rows with ``FEATURES``.

        Returns
        -------
        list of dict
            The rows at or above the threshold.
        """
        if not rows:
            return rows
        p = self.probability(np.array([r["FEATURES"] for r in rows]))
        for r, pk in zip(rows, p, strict=True):
            r["DLA_CONFIDENCE"] = float(pk)
        return [r for r in rows if r["DLA_CONFIDENCE"] >= self.threshold]


def resolve_vetter(vetter: Any, threshold: float | None = None) -> DLAVetter | None:
    """A :class:`DLAVetter` from a model name/path, None (the bundled one) or "none" (off).

    Parameters
    ----------
    vetter : DLAVetter, str, os.PathLike or None
        A vetter, a model name/path, None (the bundled one) or "none" (off).
    threshold : float, optional
        Overrides the model's threshold.

    Returns
    -------
    DLAVetter or None
    """
    if isinstance(vetter, DLAVetter):
        return vetter
    if vetter is not None and str(vetter).lower() == "none":
        return None
    return DLAVetter.from_saved(DEFAULT_VETTER if vetter is None else vetter, threshold=threshold)
