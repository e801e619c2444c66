"""Baselines run on the same table: closed-form linear regression and a regressis-style forest.

- ``linear``: on each partition of the NN (same folds), z-scored features from the training
  split, y_hat = a + x.b fitted in closed form (weighted least squares of the density y/f with
  weights f) on the non-test rows; test rows predicted (every pixel once with k-fold).
- ``forest``: regressis ``RF`` (Chaussidon et al. 2022; echaussidon/regressis): scikit-learn
  ``RandomForestRegressor`` (``min_samples_leaf`` 20, unnormalised features) on the normalised
  density y / (f <y/f>), weighted by f, with geometric k-fold: ``GroupKFold`` over blocks of
  ``1000 (nside/256)^2`` contiguous NESTED pixels; every pixel predicted out of fold.

Both return y_hat in the NN's units (expected count per unit completeness).
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from surveynet.sysnet.data import SysnetData
from surveynet.sysnet.preprocess import Normalizer, Partition, geometric_groups

log = logging.getLogger(__name__)


def fit_linear(
    x: NDArray[np.float64], y: NDArray[np.float64], f: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Closed-form weighted least squares of the density ``y/f`` on ``[1, x]`` with weights f.

    Returns
    -------
    coef : ndarray of shape (k + 1,)
        Intercept first.

    Examples
    --------
    >>> x = np.arange(5.0)[:, None]
    >>> fit_linear(x, 2 + 3 * x[:, 0], np.ones(5)).round(6).tolist()
    [2.0, 3.0]
    """
    a = np.hstack([np.ones((len(x), 1)), x])
    sw = np.sqrt(f)
    coef, *_ = np.linalg.lstsq(a * sw[:, None], (y / f) * sw, rcond=None)
    return np.asarray(coef)


def linear_kfold(
    data: SysnetData, parts: list[Partition], kind: str = "z-score"
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Linear baseline on the NN partitions: ``(rows predicted, y_hat)``."""
    rows, preds = [], []
    floor = 1e-3 * float(np.mean(data.label / data.fracgood))
    for p in parts:
        norm = Normalizer.fit(data.features[p.train], kind)
        fit = np.concatenate([p.train, p.valid])
        coef = fit_linear(norm.transform(data.features[fit]), data.label[fit], data.fracgood[fit])
        xt = norm.transform(data.features[p.test])
        rows.append(p.test)
        preds.append(np.maximum(coef[0] + xt @ coef[1:], floor))
    return np.concatenate(rows), np.concatenate(preds)


def forest_kfold(
    data: SysnetData,
    *,
    nfolds: int = 5,
    n_estimators: int = 100,
    min_samples_leaf: int = 20,
    seed: int = 85,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """regressis-style random forest with geometric GroupKFold: ``(rows, y_hat)`` for all rows."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.model_selection import GroupKFold

    dens = data.label / data.fracgood
    norm = float(np.sum(data.label) / np.sum(data.fracgood))
    target = dens / norm
    groups = geometric_groups(data.nest_hpix(), data.nside)
    k = min(nfolds, len(np.unique(groups)))
    if k < 2:
        raise ValueError("forest baseline: fewer than 2 pixel blocks for the geometric k-fold")
    pred = np.empty(data.n)
    for tr, te in GroupKFold(n_splits=k).split(data.features, target, groups):
        rf = RandomForestRegressor(
            n_estimators=n_estimators,
            min_samples_leaf=min_samples_leaf,
            n_jobs=1,
            random_state=seed,
        )
        rf.fit(data.features[tr], target[tr], sample_weight=data.fracgood[tr])
        pred[te] = rf.predict(data.features[te])
    return np.arange(data.n), np.maximum(pred, 1e-3) * norm
