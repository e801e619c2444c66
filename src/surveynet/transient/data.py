"""``convert``: cutouts -> the npz datacube of gmadet (realbogus.md §1.5), and reading it back.

Keys (the anchor's, plus extras): ``cube`` float32 ``(N, H, W, C)`` channels-last (C = 1:
difference only, as gmadet; C = 3: ``[science, reference, difference]``), ``labels`` (int16,
1 real, 0 bogus, -1 unlabelled), ``mags``, ``errmags`` (candidate magnitudes on the difference),
``filters`` (str), ``candids`` (int64); extras ``snr`` (S/N on the difference), ``truth_mags``,
``kinds`` (truth kind), ``edge``, ``channels`` (names), ``sources`` (index of the cutouts folder
each row came from, when several are merged). Strings are fixed-width unicode, so the file loads
with ``np.load(..., allow_pickle=False)``.

Several cutouts folders (e.g. a base mock and a supplement rich in hosts) are merged in the order
given before the edge cut and the balancing; ``CANDID`` and ``FILE`` are only unique within one
folder, ``sources`` tells them apart.

Class balance (``data.frac_true`` > 0): with n = min(N_true, N_false), floor(2 n frac_true) true
and floor(2 n (1 - frac_true)) false cutouts drawn **at random with ``data.seed``** (gmadet takes
them in glob order). ``EDGE`` cutouts are left out first (``data.skip_edge``), so the counts are
exact.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table, vstack
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.io.fits import atomic_path
from surveynet.transient.config import DataConfig
from surveynet.transient.cutouts import read_cutouts

__all__ = ["CUBE_KEYS", "convert_cutouts", "read_cube"]

log = logging.getLogger(__name__)

#: The anchor's datacube keys (dcorre/gmadet cnn/convert.py).
CUBE_KEYS = ("cube", "labels", "mags", "errmags", "filters", "candids")
CHANNEL_NAMES = ("science", "reference", "difference")


def _read_many(
    paths: list[str | os.PathLike[str]],
) -> tuple[NDArray[np.float32], Table, NDArray[np.int16]]:
    """Cutouts of several folders, stacked in order, with the folder index of every row."""
    cubes: list[NDArray[np.float32]] = []
    tabs: list[Table] = []
    src: list[NDArray[np.int16]] = []
    for k, p in enumerate(paths):
        cube, cands, _ = read_cutouts(p)
        if tabs and ("LABEL" in cands.colnames) != ("LABEL" in tabs[0].colnames):
            raise InputError("cannot merge labelled and unlabelled cutouts", path=p)
        if cubes and cube.shape[1:] != cubes[0].shape[1:]:
            raise InputError(
                f"cutouts of shape {cube.shape[1:]} do not match {cubes[0].shape[1:]}", path=p
            )
        cubes.append(cube)
        tabs.append(cands)
        src.append(np.full(len(cands), k, np.int16))
    if len(paths) == 1:
        return cubes[0], tabs[0], src[0]
    nonempty = [t for t in tabs if len(t)]
    cands = (
        vstack(nonempty, join_type="exact", metadata_conflicts="silent") if nonempty else tabs[0]
    )
    return np.concatenate(cubes), cands, np.concatenate(src)


def convert_cutouts(
    cutouts: str | os.PathLike[str] | list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    config: DataConfig,
    *,
    channels: str = "triplet",
    overwrite: bool = False,
) -> Path:
    """Write the npz datacube of a cutouts file.

    Parameters
    ----------
    cutouts : path or list of paths
        ``cutouts.fits`` or its folder; several are merged in the order given.
    out : path
        ``CUBE.npz``.
    config : DataConfig
        Balance, edge policy, seed.
    channels : {"triplet", "diff"}
        Keep the three channels, or only the difference (gmadet's cube).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        No cutouts left, or balancing asked for unlabelled cutouts.
    """
    outp = Path(out)
    if outp.exists() and not overwrite:
        raise FileExistsError(f"{outp} exists; pass --overwrite to replace it")
    paths = list(cutouts) if isinstance(cutouts, list | tuple) else [cutouts]
    if not paths:
        raise InputError("no cutouts given")
    cube, cands, sources = _read_many(paths)
    n = len(cands)
    labels = (
        np.asarray(cands["LABEL"], np.int16)
        if "LABEL" in cands.colnames
        else np.full(n, -1, np.int16)
    )
    keep = np.ones(n, dtype=bool)
    if config.skip_edge and n:
        keep &= ~np.asarray(cands["EDGE"], bool)
    idx = np.nonzero(keep)[0]
    if config.frac_true > 0:
        if (labels[idx] < 0).any():
            raise InputError(
                "data.frac_true needs labelled cutouts (cutouts --training)", path=paths[0]
            )
        rng = np.random.default_rng(config.seed)
        t = idx[labels[idx] == 1]
        f = idx[labels[idx] == 0]
        m = min(len(t), len(f))
        nt, nf = int(2 * m * config.frac_true), int(2 * m * (1 - config.frac_true))
        idx = np.sort(np.concatenate([rng.permutation(t)[:nt], rng.permutation(f)[:nf]]))
    if len(idx) == 0:
        raise InputError(
            "no cutouts left to convert (empty candidate list or all at the edge)", path=paths[0]
        )
    c = cube[idx]
    if channels == "diff":
        c = c[:, 2:3]
        names = ["difference"]
    elif channels == "triplet":
        names = list(CHANNEL_NAMES)
    else:
        raise ValueError(f"unknown channels {channels!r}; use triplet or diff")
    sub = cands[idx]

    def col(name: str, default: Any, dtype: Any) -> NDArray[Any]:
        return (
            np.asarray(sub[name], dtype)
            if name in sub.colnames
            else np.full(len(sub), default, dtype)
        )

    arrays: dict[str, NDArray[Any]] = {
        "cube": np.ascontiguousarray(c.transpose(0, 2, 3, 1)).astype(np.float32),
        "labels": labels[idx],
        "mags": col("MAG", 99.0, np.float64),
        "errmags": col("MAGERR", 99.0, np.float64),
        "filters": col("FILTER", "", "U8"),
        "candids": col("CANDID", -1, np.int64),
        "snr": col("SNR", np.nan, np.float64),
        "truth_mags": col("TRUTH_MAG", 99.0, np.float64),
        "kinds": col("TRUTH_KIND", "", "U16"),
        "edge": col("EDGE", False, bool),
        "files": col("FILE", "", "U80"),
        "channels": np.asarray(names, "U16"),
        "sources": sources[idx],
    }
    with atomic_path(outp, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle kw
    log.info("datacube %s: %d cutouts (%d real)", outp, len(idx), int((labels[idx] == 1).sum()))
    return outp


def read_cube(path: str | os.PathLike[str]) -> dict[str, NDArray[Any]]:
    """Read a datacube (no pickle) and check its keys and shapes.

    Parameters
    ----------
    path : path
        ``CUBE.npz``.

    Returns
    -------
    dict
        The arrays; ``cube`` is also returned torch-layout as ``x`` ``(N, C, H, W)``.

    Raises
    ------
    InputError
        Missing key, wrong shapes.
    """
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable datacube ({exc})", path=p) from exc
    for k in CUBE_KEYS:
        if k not in d:
            raise InputError("missing key", path=p, column=k)
    cube = d["cube"]
    if cube.ndim != 4:
        raise InputError(
            f"cube has shape {cube.shape}, expected (N, H, W, C)", path=p, column="cube"
        )
    if len(d["labels"]) != len(cube):
        raise InputError("labels and cube lengths differ", path=p, column="labels")
    if "channels" not in d:
        d["channels"] = np.asarray(
            ["difference"] if cube.shape[-1] == 1 else list(CHANNEL_NAMES), "U16"
        )
    d["x"] = np.ascontiguousarray(cube.transpose(0, 3, 1, 2))
    return d
