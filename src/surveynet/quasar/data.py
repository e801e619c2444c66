"""Quasar training data: spectra files and truth (or a fresh mock) -> a prepared dataset.

A *prepared dataset* is a float32 ``.npz`` (``allow_pickle=False``) with the normalised network
inputs and the labels needed to build targets (:func:`surveynet.quasar.train.objective`):

========== ==================== =====================================================
key        shape / dtype        meaning
========== ==================== =====================================================
X          (n, n_pix) float32   preprocessed inputs (quasarnet.md §3)
Z          (n,) float64         true redshift
CLASS      (n,) int8            0 STAR, 1 GALAXY, 2 QSO, 3 BAD (:data:`CLASS_CODES`)
BAL        (n,) int8            +1 BAL, -1 confident non-BAL, 0 unknown (quasarnet.md §2.1)
TARGETID   (n,) int64           join key
GRID       (n_pix,) float64     wavelength grid of X (lower bin edges, Å)
PROVENANCE () str, optional     the command that made it
========== ==================== =====================================================

It is made from DESI coadd (or cframe, BOSS spPlate) files plus a mock truth file by
:func:`prepare_from_files`, or simulated in memory by :func:`simulate_dataset`
(``surveynet quasar prepare``; ``quasar train --cache``), so repeated runs do not re-read or
re-simulate anything. Nothing here imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.quasar.config import DataConfig

CLASS_CODES = {"STAR": 0, "GALAXY": 1, "QSO": 2, "BAD": 3}
"""Integer class codes of the prepared dataset."""


def bal_labels(is_bal: NDArray[Any], bi_civ: NDArray[Any] | None) -> NDArray[np.int8]:
    """Return the BAL label from a visual/true BAL flag and BI_CIV (quasarnet.md §2.1).

    +1 if flagged and BI_CIV > 0; -1 if not flagged and BI_CIV = 0; 0 otherwise (no weight).

    Parameters
    ----------
    is_bal : ndarray of shape (n,)
        BAL flag (truthy = BAL).
    bi_civ : ndarray of shape (n,) or None
        Balnicity index of CIV in km/s (NaN = unknown); None trusts the flag alone.

    Returns
    -------
    ndarray of int8, shape (n,)
        +1, -1 or 0.

    Examples
    --------
    >>> bal_labels(np.array([1, 0, 1, 0]), np.array([500.0, 0.0, 0.0, 20.0])).tolist()
    [1, -1, 0, 0]
    """
    f = np.asarray(is_bal).astype(bool)
    if bi_civ is None:
        return np.where(f, 1, -1).astype(np.int8)
    bi = np.nan_to_num(np.asarray(bi_civ, dtype=np.float64), nan=-1.0)
    return np.where(f & (bi > 0), 1, np.where(~f & (bi == 0), -1, 0)).astype(np.int8)


# --------------------------------------------------------------------------------------------
# prepared datasets
# --------------------------------------------------------------------------------------------
DATASET_KEYS = ("X", "Z", "CLASS", "BAL", "TARGETID", "GRID")


def save_dataset(
    path: str | os.PathLike[str],
    data: dict[str, NDArray[Any]],
    *,
    overwrite: bool = True,
    provenance: str | None = None,
) -> Path:
    """Write a prepared dataset ``.npz`` atomically (keys :data:`DATASET_KEYS`).

    Parameters
    ----------
    path : path
        The ``.npz`` to write.
    data : dict
        Dataset arrays (:data:`DATASET_KEYS`, optionally ``PROVENANCE``).
    overwrite : bool
        Replace an existing file.
    provenance : str, optional
        E.g. the command that made it; stored as a unicode array ``PROVENANCE`` and recorded by
        :func:`surveynet.quasar.train.train` in the model's ``config.json``
        (``training.data_command``). Default: ``data["PROVENANCE"]`` if present.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        A key of :data:`DATASET_KEYS` is missing.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    from surveynet.io.fits import atomic_path

    missing = [k for k in DATASET_KEYS if k not in data]
    if missing:
        raise ValueError(f"dataset lacks {missing}")
    p = Path(path)
    with atomic_path(p, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            arrays = {k: np.asarray(data[k]) for k in DATASET_KEYS}
            prov = provenance if provenance is not None else data.get("PROVENANCE")
            if prov is not None:
                arrays["PROVENANCE"] = np.asarray(str(prov))
            np.savez(fh, **arrays)
    return p


def load_dataset(paths: Sequence[str | os.PathLike[str]]) -> dict[str, NDArray[Any]]:
    """Read and concatenate prepared ``.npz`` datasets (``allow_pickle=False``).

    Parameters
    ----------
    paths : sequence of path
        Datasets written by :func:`save_dataset`, on the same grid.

    Returns
    -------
    dict
        The concatenated arrays; ``PROVENANCE`` joins theirs with ``" ; "``.

    Raises
    ------
    InputError
        A missing key, mismatched grids or unreadable file (naming the file and key).
    ValueError
        No path given.
    """
    parts: list[dict[str, NDArray[Any]]] = []
    grid = None
    for path in paths:
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                d = {k: z[k] for k in (*DATASET_KEYS, "PROVENANCE") if k in z.files}
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable prepared dataset ({exc})", path=p) from exc
        for k in DATASET_KEYS:
            if k not in d:
                raise InputError("missing array in prepared dataset", path=p, column=k)
        n = len(d["X"])
        for k in ("Z", "CLASS", "BAL", "TARGETID"):
            if len(d[k]) != n:
                raise InputError(f"length {len(d[k])} != {n} rows of X", path=p, column=k)
        if d["X"].ndim != 2 or d["X"].shape[1] != d["GRID"].size:
            raise InputError(
                f"X has shape {d['X'].shape}, GRID has {d['GRID'].size} bins", path=p, column="X"
            )
        if grid is not None and (grid.size != d["GRID"].size or not np.allclose(grid, d["GRID"])):
            raise InputError("grid differs from the first dataset's", path=p, column="GRID")
        grid = d["GRID"]
        parts.append(d)
    if not parts:
        raise ValueError("no dataset given")
    out = {k: np.concatenate([d[k] for d in parts]) for k in DATASET_KEYS if k != "GRID"}
    out["GRID"] = parts[0]["GRID"]
    provs = [str(d["PROVENANCE"]) for d in parts if "PROVENANCE" in d]
    if provs:
        out["PROVENANCE"] = np.asarray(" ; ".join(provs))
    return out


def class_codes(objtype: NDArray[Any], path: str | None = None) -> NDArray[np.int8]:
    """Return the :data:`CLASS_CODES` of truth ``OBJTYPE`` strings.

    Parameters
    ----------
    objtype : ndarray of str, shape (n,)
        STAR, GALAXY, QSO or BAD (case and surrounding blanks ignored).
    path : str, optional
        The truth file, named in the error.

    Returns
    -------
    ndarray of int8, shape (n,)
        Class codes.

    Raises
    ------
    InputError
        An unknown class name.

    Examples
    --------
    >>> class_codes(np.array(["qso", " STAR", "GALAXY"])).tolist()
    [2, 0, 1]
    """
    names = np.char.strip(np.char.upper(np.asarray(objtype).astype(str)))
    codes = np.full(names.size, -1, dtype=np.int8)
    for name, c in CLASS_CODES.items():
        codes[names == name] = c
    if (codes < 0).any():
        bad = sorted(set(names[codes < 0].tolist()))
        raise InputError(
            f"unknown OBJTYPE values {bad[:5]}; expected {list(CLASS_CODES)}",
            path=path,
            hdu="TRUTH",
            column="OBJTYPE",
        )
    return codes


def dataset_from_spectra(spectra: Any, truth: Any, grid: Any) -> dict[str, NDArray[Any]]:
    """Preprocess spectra and attach their truth labels.

    Parameters
    ----------
    spectra : surveynet.io.spectra.Spectra
        Input spectra.
    truth : astropy.table.Table
        Truth rows with TARGETID, OBJTYPE, Z and optionally IS_BAL, BI_CIV.
    grid : surveynet.quasar.config.GridConfig
        Model grid.

    Returns
    -------
    dict
        Dataset arrays (:data:`DATASET_KEYS`); dropped spectra (no data, zero rms) are left out.

    Raises
    ------
    InputError
        A kept spectrum has no truth row, or an unknown OBJTYPE.
    """
    from surveynet.quasar.preprocess import preprocess

    pre = preprocess(spectra, grid)
    tid = spectra.targetid[pre.kept]
    ttid = np.asarray(truth["TARGETID"], dtype=np.int64)
    order = np.argsort(ttid)
    pos = np.clip(np.searchsorted(ttid, tid, sorter=order), 0, max(len(ttid) - 1, 0))
    rows = order[pos] if len(ttid) else np.zeros(0, dtype=np.int64)
    if len(tid) and (len(ttid) == 0 or np.any(ttid[rows] != tid)):
        raise InputError("spectra with no truth row", path=spectra.source, column="TARGETID")
    t = truth[rows]
    is_bal = np.asarray(t["IS_BAL"]) if "IS_BAL" in t.colnames else np.zeros(len(t), bool)
    bi = np.asarray(t["BI_CIV"], dtype=np.float64) if "BI_CIV" in t.colnames else None
    objtype = t["OBJTYPE"] if "OBJTYPE" in t.colnames else np.full(len(t), "QSO")
    return {
        "X": pre.x.astype(np.float32),
        "Z": np.asarray(t["Z"], dtype=np.float64),
        "CLASS": class_codes(np.asarray(objtype), spectra.source),
        "BAL": bal_labels(is_bal, bi),
        "TARGETID": tid.astype(np.int64),
        "GRID": grid.wave(),
    }


def _concat(parts: list[dict[str, NDArray[Any]]], grid: NDArray[Any]) -> dict[str, NDArray[Any]]:
    out = {k: np.concatenate([d[k] for d in parts]) for k in DATASET_KEYS if k != "GRID"}
    out["GRID"] = np.asarray(grid)
    return out


def prepare_from_files(
    files: Sequence[str | os.PathLike[str]], truth: str | os.PathLike[str], grid: Any
) -> dict[str, NDArray[Any]]:
    """Prepare a dataset from spectra files (DESI coadd, cframe, BOSS spPlate) and a truth file.

    Parameters
    ----------
    files : sequence of path
        Spectra files.
    truth : path
        Truth file (HDU TRUTH with TARGETID, OBJTYPE, Z, optionally IS_BAL, BI_CIV).
    grid : surveynet.quasar.config.GridConfig
        Model grid.

    Returns
    -------
    dict
        Dataset arrays (:data:`DATASET_KEYS`), files in the given order.
    """
    from surveynet.io.spectra import read_spectra
    from surveynet.io.truth import read_truth

    tt = read_truth(truth).targets
    parts = [dataset_from_spectra(read_spectra(f), tt, grid) for f in files]
    return _concat(parts, grid.wave())


def _simulate_chunk(
    index: str, *, n: int, seed: int, chunk: int, grid: dict[str, Any]
) -> dict[str, NDArray[Any]]:
    """Simulate chunk ``index`` of :func:`simulate_dataset` (a :func:`run_batch` task).

    Chunk ``k`` holds ``min(chunk, n - k * chunk)`` spectra simulated with seed
    ``SeedSequence(seed).spawn(n_chunks)[k]`` (as an int); its TARGETIDs are offset by
    ``k * 10**8``.
    """
    from astropy.table import Table

    from surveynet.config import from_dict
    from surveynet.quasar.config import GridConfig
    from surveynet.sim.spectra import SpectraSimConfig, simulate_spectra

    k = int(index)
    n_chunks = max(1, -(-n // chunk))
    chunk_seed = int(np.random.SeedSequence(seed).spawn(n_chunks)[k].generate_state(1)[0])
    size = min(chunk, n - k * chunk)
    g = from_dict(GridConfig, grid)
    # no resolution matrices: they are not used by QuasarNET and cost ~90 % of the memory
    spectra, truth = simulate_spectra(size, chunk_seed, config=SpectraSimConfig(resolution=False))
    t = Table(truth["TRUTH"])
    if (
        "TRUTH_QSO" in truth
        and "BI_CIV" not in t.colnames
        and "BI_CIV" in truth["TRUTH_QSO"].colnames
    ):
        from astropy.table import join

        q = Table(truth["TRUTH_QSO"])["TARGETID", "BI_CIV"]
        t = join(t, q, keys="TARGETID", join_type="left")
        t["BI_CIV"] = np.nan_to_num(np.ma.filled(np.asarray(t["BI_CIV"], dtype=float), 0.0))
    d = dataset_from_spectra(spectra, t, g)
    d["TARGETID"] = d["TARGETID"] + k * 10**8
    return d


def simulate_dataset(
    n: int,
    seed: int,
    grid: Any,
    *,
    chunk: int = DataConfig.chunk,
    workers: int = 0,
    scheduler: str | None = None,
    quiet: bool = True,
) -> dict[str, NDArray[Any]]:
    """Simulate a prepared dataset with :func:`surveynet.sim.spectra.simulate_spectra`, in chunks.

    The chunks are tasks of :func:`surveynet.runner.run_batch` (in process with ``workers=0``,
    else on Dask distributed). Chunk ``k`` is simulated with seed
    ``SeedSequence(seed).spawn(n_chunks)[k]`` (as an int), so the result depends on
    ``(n, seed, chunk)`` only, not on ``workers``. TARGETIDs are offset by ``k * 10**8`` to stay
    unique.

    Parameters
    ----------
    n : int
        Number of spectra (``data.simulate``).
    seed : int
        Simulation seed (``data.seed``).
    grid : surveynet.quasar.config.GridConfig
        Model grid.
    chunk : int
        Spectra per chunk (``data.chunk``).
    workers, scheduler : int, str
        :func:`surveynet.runner.run_batch` settings.
    quiet : bool
        No progress bar.

    Returns
    -------
    dict
        Dataset arrays (:data:`DATASET_KEYS`), chunks in order.

    Raises
    ------
    RuntimeError
        A chunk failed (its reason is given).
    """
    from surveynet.config import to_dict
    from surveynet.runner import run_batch

    if n < 1 or chunk < 1:
        raise ValueError(f"simulate_dataset needs n >= 1 and chunk >= 1, got {n}, {chunk}")
    n_chunks = max(1, -(-n // chunk))
    results = run_batch(
        _simulate_chunk,
        [str(k) for k in range(n_chunks)],
        workers=workers,
        scheduler=scheduler,
        quiet=quiet,
        desc="simulate",
        unit="chunk",
        n=n,
        seed=seed,
        chunk=chunk,
        grid=to_dict(grid),
    )
    bad = [r for r in results if not r.ok]
    if bad:
        raise RuntimeError(f"simulation chunk {bad[0].input} of {n_chunks} failed: {bad[0].error}")
    return _concat([r.value for r in results], grid.wave())
