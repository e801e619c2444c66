"""Absorber vetter: the probability that a catalogue absorber is real.

The first stage's ``DLA_CONFIDENCE`` (min(1, summed votes)) is 1 for most absorbers and says
little about the weak ones; false DLAs gather where the spectrum is noisiest (the blue end of
the B camera) and at low S/N. The vetter is a logistic regression on per-absorber features that
the catalogue step has at hand. It is trained on the catalogue absorbers of training mocks
(``surveynet dla train --set model.architecture=dla_vetter``): label 1 when a truth absorber
(any log N_HI) lies within the matching tolerance (:func:`surveynet.dla.evaluate.match_absorbers`,
10 A). In ``surveynet dla predict`` it replaces ``DLA_CONFIDENCE`` by that probability, after the
refiners and before the core-overlap merge, and drops absorbers below its threshold
(``CatalogConfig.vet_threshold``; the model's own by default).

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

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import InputError, ModelFormatError

if TYPE_CHECKING:
    from surveynet.dla.catalog import SightlinePrediction
    from surveynet.dla.sightline import Sightline

FEATURES: tuple[str, ...] = (
    "log_votes",
    "pix_conf_max",
    "pix_conf_mean",
    "nhi",
    "nhi_std",
    "log_err",
    "flux",
    "core_flux",
    "core_signif",
    "refine_logit",
    "refine_shift",
    "log_s2n",
    "log_wave",
    "rest_wave",
    "n_peaks",
    "log_err_rel",
    "voigt_lr",
)

#: catalogue column of feature ``name`` (``CatalogConfig.vet_features``)
COLUMN_PREFIX = "VET_"

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
    """
    from surveynet.dla.config import LYA_REST
    from surveynet.sim.voigt import voigt_tau

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

    ``rows`` are :func:`surveynet.dla.catalog.peak_rows` dicts (``pix``, ``VOTES``, ``NHI``,
    ``NHI_STD``, ``WAVE``), possibly refined (``WAVE_FIRST``, ``REFINE_P``); ``prediction`` is
    the per-pixel output restricted to the searched range. Missing values become 0.
    """
    from surveynet.dla.refine import pixel_position

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
    """P(real) of (n, n_features) features under ``dla_vetter`` tensors (:func:`fit_logistic`)."""
    z = ((np.asarray(x, np.float64) - tensors["mean"]) / tensors["scale"]) @ tensors["weight"]
    return 1.0 / (1.0 + np.exp(-(z + float(np.asarray(tensors["bias"]).reshape(-1)[0]))))


def fit_logistic(
    x: NDArray[np.floating[Any]], y: NDArray[Any], *, l2: float = 1e-3, max_iter: int = 100
) -> dict[str, NDArray[np.float64]]:
    """Logistic regression by Newton's method on standardised features (deterministic).

    The penalty is l2 x n x |w|^2 / 2 on the weights (not the intercept). Returns the tensors
    of a ``dla_vetter`` model: ``mean``, ``scale`` (feature standardisation), ``weight``,
    ``bias``.

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


class DLAVetter:
    """A saved ``dla_vetter`` model.

    Parameters
    ----------
    model : str or path
        Model directory or bundled name.
    threshold : float, optional
        Absorbers with a probability below this are dropped (default: the model's
        ``config.threshold``).
    """

    def __init__(self, model: str | os.PathLike[str], *, threshold: float | None = None) -> None:
        from surveynet.io.model import load_model

        saved = load_model(model, pipeline="dla")
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
        """Probability that each absorber is real, from its (n, n_features) features."""
        return logistic_probability(self.tensors, features)

    def vet(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Set each row's ``DLA_CONFIDENCE`` to the vetter's probability; return the rows at or
        above the threshold. Each row carries its :func:`row_features` as ``FEATURES``."""
        if not rows:
            return rows
        p = self.probability(np.array([r["FEATURES"] for r in rows]))
        for r, pk in zip(rows, p, strict=True):
            r["DLA_CONFIDENCE"] = float(pk)
        return [r for r in rows if r["DLA_CONFIDENCE"] >= self.threshold]


def resolve_vetter(vetter: Any, threshold: float | None = None) -> DLAVetter | None:
    """A :class:`DLAVetter` from a model name/path, None (the bundled one) or "none" (off)."""
    if isinstance(vetter, DLAVetter):
        return vetter
    if vetter is not None and str(vetter).lower() == "none":
        return None
    return DLAVetter(DEFAULT_VETTER if vetter is None else vetter, threshold=threshold)


def _pair_truths(
    files: Sequence[str | os.PathLike[str]], truths: Sequence[str | os.PathLike[str]]
) -> dict[str, list[str]]:
    """truth file -> its coadd files: the only truth, or the truth in the file's folder."""
    from pathlib import Path

    if not truths:
        raise InputError("the vetter needs --truth (the mocks' TRUTH and DLA_META)")
    groups: dict[str, list[str]] = {str(t): [] for t in truths}
    by_dir = {str(Path(t).resolve().parent): str(t) for t in truths}
    for f in files:
        if len(truths) == 1:
            groups[str(truths[0])].append(str(f))
            continue
        t = by_dir.get(str(Path(f).resolve().parent))
        if t is None:
            raise InputError("no --truth file in the folder of this coadd", path=str(f))
        groups[t].append(str(f))
    return {t: fs for t, fs in groups.items() if fs}


def vetter_training_table(
    files: Sequence[str | os.PathLike[str]],
    truths: Sequence[str | os.PathLike[str]],
    config: Any,
    *,
    quiet: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Features and labels of the catalogue absorbers of mock files (LYB-typed ones left out).

    The catalogue is made as ``surveynet dla predict`` makes it, with the finders and refiners
    of ``config`` (:class:`surveynet.dla.model_config.VetterConfig`) and no vetter; an
    absorber's label is whether :func:`surveynet.dla.evaluate.match_absorbers` (10 A) pairs it
    with a truth absorber inside the searched range.
    """
    from surveynet.config import to_dict
    from surveynet.dla.config import CatalogConfig, MatchConfig
    from surveynet.dla.evaluate import match_absorbers, read_truth_absorbers, searched
    from surveynet.dla.predict import load_finders, merge_catalogs, predict_file
    from surveynet.io.model import resolve_model_path
    from surveynet.runner import report_failures, run_batch

    finders = [str(f.source) for f in load_finders(list(config.finders))]
    refiners = [str(resolve_model_path(r)) for r in config.refiners]
    xs, ys = [], []
    for truth, fs in _pair_truths(files, truths).items():
        results = run_batch(
            predict_file,
            fs,
            workers=config.workers,
            quiet=quiet,
            desc="vetter features",
            models=finders,
            qso_catalog=truth,
            catalog=to_dict(CatalogConfig(vet_features=True)),
            skip_bal=config.skip_bal,
            refiner=refiners,
        )
        if report_failures(results):
            bad = next(r for r in results if not r.ok)
            raise InputError(f"vetter features failed: {bad.error}", path=bad.item)
        cat = merge_catalogs([r.value for r in results])
        tab, _ = read_truth_absorbers(truth)
        res = match_absorbers(tab[searched(tab, cat.qsos)[0]], cat.dlas, MatchConfig())
        keep = np.char.strip(np.asarray(res.pred["ABSORBER_TYPE"]).astype(str)) != "LYB"
        xs.append(
            np.column_stack(
                [np.asarray(res.pred[COLUMN_PREFIX + n.upper()], float) for n in FEATURES]
            )[keep]
        )
        ys.append(np.asarray(res.pred["MATCHED"], bool)[keep])
    return np.concatenate(xs), np.concatenate(ys)


def train_vetter(
    config: Any,
    files: Sequence[str | os.PathLike[str]],
    truths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    quiet: bool = False,
    command: str = "",
    overwrite: bool = True,
) -> Any:
    """Fit and save a ``dla_vetter`` (``surveynet dla train --set model.architecture=dla_vetter``).

    ``config`` is a :class:`surveynet.dla.model_config.DLATrainConfig`; its
    ``model.vetter`` names the finders and refiners whose catalogue absorbers are learned from,
    the L2 penalty and the threshold stored with the model. The fit is deterministic.
    """
    import logging

    from surveynet.config import to_dict
    from surveynet.io.model import save_model

    log = logging.getLogger(__name__)
    vc = config.model.vetter
    x, y = vetter_training_table(files, truths, vc, quiet=quiet)
    log.info("vetter: %d absorbers, %.1f %% real", len(y), 100.0 * y.mean())
    tensors = fit_logistic(x, y, l2=vc.l2)
    p = np.clip(logistic_probability(tensors, x), 1e-12, 1 - 1e-12)
    logloss = float(-np.mean(y * np.log(p) + (~y) * np.log(1 - p)))
    training = {
        "command": command,
        "n_absorbers": len(y),
        "n_real": int(y.sum()),
        "log_loss": logloss,
        "n_files": len(files),
    }
    path = save_model(
        out,
        tensors,
        pipeline="dla",
        architecture="dla_vetter",
        config=to_dict(vc),
        label_names=["real"],
        training=training,
        overwrite=overwrite,
    )
    log.info("saved %s (training log loss %.4f)", path, logloss)
    return path
