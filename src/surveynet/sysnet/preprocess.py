"""Splits and feature normalisation (sysnetdev ``__split2Kfolds``, ``__split``, ``load_data``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]


@dataclass
class Partition:
    """Row indices of one partition (sorted).

    Attributes
    ----------
    train, valid, test : ndarray of int64
    """

    train: IntArray
    valid: IntArray
    test: IntArray


def kfold_partitions(n: int, nfolds: int = 5, seed: int = 85) -> list[Partition]:
    """K-fold partitions as sysnetdev.

    ``KFold(nfolds, shuffle, seed)``; validation = random subset of the non-test rows of the
    test size (``RandomState(seed).choice``, drawn fold after fold).

    Examples
    --------
    >>> parts = kfold_partitions(100)
    >>> sorted(np.concatenate([p.test for p in parts]).tolist()) == list(range(100))
    True
    >>> [len(p.train) for p in parts]
    [60, 60, 60, 60, 60]
    """
    from sklearn.model_selection import KFold

    if n < 2 * nfolds:
        raise ValueError(f"k-fold needs at least {2 * nfolds} pixels, got {n}")
    rs = np.random.RandomState(seed)
    out = []
    for rest, test in KFold(nfolds, shuffle=True, random_state=seed).split(np.arange(n)):
        valid = rs.choice(rest, size=len(test), replace=False)
        train = np.setdiff1d(rest, valid)
        out.append(Partition(np.sort(train), np.sort(valid), np.sort(test)))
    return out


def geometric_partitions(groups: IntArray, nfolds: int = 5, seed: int = 85) -> list[Partition]:
    """K-fold over spatial blocks (regressis-style ``GroupKFold``).

    Test = the blocks of one fold; validation = randomly chosen whole non-test blocks until it
    holds about as many rows as the test; training = the rest.

    Examples
    --------
    >>> parts = geometric_partitions(np.arange(100) // 4)
    >>> sorted(np.concatenate([p.test for p in parts]).tolist()) == list(range(100))
    True
    >>> all(not set(p.valid // 4) & set(p.train // 4) for p in parts)
    True
    """
    from sklearn.model_selection import GroupKFold

    n = len(groups)
    k = min(nfolds, len(np.unique(groups)))
    if k < 3:
        raise ValueError("geometric k-fold needs at least 3 pixel blocks")
    rs = np.random.RandomState(seed)
    out = []
    for rest, test in GroupKFold(k).split(np.zeros(n), groups=groups):
        blocks = rs.permutation(np.unique(groups[rest]))
        sizes = np.array([np.sum(groups[rest] == b) for b in blocks])
        nval = int(np.searchsorted(np.cumsum(sizes), len(test)) + 1)
        vmask = np.isin(groups[rest], blocks[:nval])
        out.append(Partition(np.sort(rest[~vmask]), np.sort(rest[vmask]), np.sort(test)))
    return out


def single_split(n: int, seed: int = 85) -> list[Partition]:
    """One 60/20/20 split as sysnetdev without ``-k`` (two ``train_test_split`` calls).

    Examples
    --------
    >>> p = single_split(187257)[0]
    >>> len(p.train), len(p.valid), len(p.test)
    (112353, 37452, 37452)
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    rest, test = train_test_split(idx, test_size=0.2, random_state=seed)
    train, valid = train_test_split(rest, test_size=0.25, random_state=seed)
    return [Partition(np.sort(train), np.sort(valid), np.sort(test))]


def make_partitions(
    n: int,
    *,
    do_kfold: bool,
    nfolds: int = 5,
    seed: int = 85,
    split: str = "random",
    nest_hpix: NDArray[np.int64] | None = None,
    nside: int | None = None,
) -> list[Partition]:
    """The partitions of a run: k-fold (random or geometric) or one 60/20/20 split."""
    if not do_kfold:
        return single_split(n, seed)
    if split == "geometric":
        if nest_hpix is None or nside is None:
            raise ValueError("geometric split needs NESTED pixel numbers and nside")
        return geometric_partitions(geometric_groups(nest_hpix, nside), nfolds, seed)
    return kfold_partitions(n, nfolds, seed)


def run_partitions(data: Any, train: Any) -> list[Partition]:
    """The partitions of a run on ``data`` from the config's ``train`` section.

    Parameters
    ----------
    data : surveynet.sysnet.data.SysnetData
        The table (``n``, ``nside``, NESTED pixel numbers for geometric folds).
    train : surveynet.sysnet.config.TrainConfig
        ``do_kfold``, ``nfolds``, ``seed``, ``split``.

    Returns
    -------
    list of Partition
    """
    return make_partitions(
        data.n,
        do_kfold=train.do_kfold,
        nfolds=train.nfolds,
        seed=train.seed,
        split=train.split,
        nest_hpix=data.nest_hpix(),
        nside=data.nside,
    )


def chain_seeds(nchains: int, seed: int = 85) -> list[int]:
    """Sysnetdev chain seeds: ``RandomState(seed).randint(0, 2**32 - 1, nchains) + 1000``.

    Examples
    --------
    >>> chain_seeds(2)[0]
    2664486226
    """
    rs = np.random.RandomState(seed)
    return [int(s) + 1000 for s in rs.randint(0, 2**32 - 1, nchains, dtype=np.int64)]


@dataclass
class Normalizer:
    """Feature scaling fitted on a training split.

    Attributes
    ----------
    kind : {"z-score", "minmax"}
    loc, scale : ndarray of float64, shape (k,)
        x' = (x - loc) / scale (z-score: mean and std with ddof 0; minmax: min and max - min).
    """

    kind: str
    loc: NDArray[np.float64]
    scale: NDArray[np.float64]

    @classmethod
    def fit(cls, x: NDArray[np.float64], kind: str = "z-score") -> Normalizer:
        """Statistics of ``x`` (n, k)."""
        if kind == "z-score":
            loc, scale = x.mean(axis=0), x.std(axis=0)
        elif kind == "minmax":
            loc, scale = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        else:
            raise ValueError(f"unknown normalization {kind!r} (z-score, minmax)")
        scale = np.where(scale > 0, scale, 1.0)
        return cls(kind, np.asarray(loc, np.float64), np.asarray(scale, np.float64))

    def transform(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Scaled features."""
        return (x - self.loc) / self.scale

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {"kind": self.kind, "loc": self.loc.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Normalizer:
        """Inverse of :meth:`to_json`."""
        return cls(
            str(d["kind"]), np.asarray(d["loc"], np.float64), np.asarray(d["scale"], np.float64)
        )


def geometric_groups(nest_hpix: NDArray[np.int64], nside: int, block: int = 1000) -> IntArray:
    """Regressis k-fold groups: blocks of ``block * (nside/256)^2`` contiguous NESTED pixels.

    Examples
    --------
    >>> geometric_groups(np.array([0, 61, 62, 200]), 16).tolist()
    [0, 15, 15, 50]
    """
    size = max(1, round(block * (nside / 256.0) ** 2))
    return np.asarray(nest_hpix // size, dtype=np.int64)
