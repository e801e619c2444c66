"""QuasarNET training: box/offset targets, per-spectrum loss, sample weights, Adam(amsgrad).

The training set is a *prepared dataset*: a float32 ``.npz`` (``allow_pickle=False``) with the
normalised network inputs and the labels needed to build targets:

========== ==================== =====================================================
key        shape / dtype        meaning
========== ==================== =====================================================
X          (n, n_pix) float32   preprocessed inputs (quasarnet.md §3)
Z          (n,) float64         true redshift
CLASS      (n,) int8            0 STAR, 1 GALAXY, 2 QSO, 3 BAD (:data:`CLASS_CODES`)
BAL        (n,) int8            +1 BAL, -1 confident non-BAL, 0 unknown (quasarnet.md §2.1)
TARGETID   (n,) int64           join key
GRID       (n_pix,) float64     wavelength grid of X (lower bin edges, Å)
========== ==================== =====================================================

It is made from DESI coadd files plus a mock truth file by :func:`prepare_dataset`
(``surveynet quasar train coadd-*.fits --truth truth.fits --cache train.npz ...``) so repeated
runs do not re-read or re-simulate anything.

Targets follow ``ngbusca/QuasarNET:py/quasarnet/io.py`` ``box_offset``/``objective``
(quasarnet.md §2.2); the loss is the per-spectrum ``custom_loss`` of both QuasarNET repositories
at HEAD (§2.3); optimisation is Adam with amsgrad, lr 1e-3, batch 256 (Farr et al. 2020, §2.4).
This module imports torch: it is never used for inference.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import ConfigError, InputError

log = logging.getLogger(__name__)

CLASS_CODES = {"STAR": 0, "GALAXY": 1, "QSO": 2, "BAD": 3}
"""Integer class codes of the prepared dataset."""

EPS = 1e-7
"""Loss epsilon of ``custom_loss`` (Keras ``K.epsilon()``)."""


# --------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------
def line_position(
    z: NDArray[Any], rest_wave: float, grid: NDArray[Any], n_boxes: int
) -> NDArray[np.float64]:
    """Box coordinate ``pos = idx(λ_rest (1+z)) · n_boxes / n_pix`` of a line; -1 off the grid.

    ``idx`` is the linear interpolation in λ (not log λ) of the pixel index over ``grid``
    (quasarnet.md §2.2, ``ngbusca/QuasarNET:py/quasarnet/io.py`` ``box_offset``).

    Examples
    --------
    >>> grid = 10 ** (np.log10(3600) + 1e-3 * np.arange(443))
    >>> pos = line_position(np.array([2.0, 0.5]), 1215.67, grid, 13)
    >>> [round(float(p), 4) for p in pos]
    [0.1653, -1.0]
    """
    g = np.asarray(grid, dtype=np.float64)
    lam = rest_wave * (1.0 + np.asarray(z, dtype=np.float64))
    idx = np.interp(lam, g, np.arange(g.size, dtype=np.float64), left=-1.0, right=-1.0)
    return np.where(idx >= 0, idx * n_boxes / g.size, -1.0)


def objective(
    z: NDArray[Any],
    is_qso: NDArray[Any],
    bal: NDArray[Any],
    grid: NDArray[Any],
    line_waves: Sequence[float],
    bal_waves: Sequence[float],
    n_boxes: int = 13,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Box/offset targets and per-head sample weights.

    Parameters
    ----------
    z : ndarray of shape (n,)
        True redshifts.
    is_qso : ndarray of bool, shape (n,)
        True quasars; every other class gets an all-zero box row (trained as a negative).
    bal : ndarray of int, shape (n,)
        BAL label: +1 BAL, -1 confident non-BAL, 0 unknown.
    grid : ndarray of shape (n_pix,)
        Wavelength grid (Å, lower bin edges).
    line_waves, bal_waves : sequence of float
        Rest wavelengths of the emission-line heads and the BAL heads.
    n_boxes : int
        Boxes per head.

    Returns
    -------
    targets : ndarray of shape (n, n_heads, 2 * n_boxes), float32
        ``[box(n_boxes), offset(n_boxes)]`` per head, emission lines first, BAL heads last.
    weights : ndarray of shape (n, n_heads), float32
        1 for emission-line heads; for BAL heads ``[bal != 0]`` (the visual flag and BI_CIV agree).

    Examples
    --------
    >>> grid = 10 ** (np.log10(3600) + 1e-3 * np.arange(443))
    >>> z, qso, bal = np.array([2.0]), np.array([True]), np.array([1])
    >>> t, w = objective(z, qso, bal, grid, [1215.67], [1548.2049])
    >>> t.shape, int(t[0, 0, :13].sum()), w.tolist()
    ((1, 2, 26), 1, [[1.0, 1.0]])
    """
    z = np.asarray(z, dtype=np.float64)
    n = z.size
    qso = np.asarray(is_qso, dtype=bool)
    bal = np.asarray(bal)
    waves = [*line_waves, *bal_waves]
    nl = len(line_waves)
    targets = np.zeros((n, len(waves), 2 * n_boxes), dtype=np.float32)
    weights = np.ones((n, len(waves)), dtype=np.float32)
    rows = np.arange(n)
    for h, lr in enumerate(waves):
        pos = line_position(z, lr, grid, n_boxes)
        ok = pos >= 0
        ipos = np.clip(np.floor(pos).astype(np.int64), 0, n_boxes - 1)
        off = pos - np.floor(pos)
        keep = ok & qso
        if h >= nl:
            keep &= bal == 1
            weights[:, h] = (bal != 0).astype(np.float32)
        targets[rows[keep], h, ipos[keep]] = 1.0
        targets[rows[ok], h, n_boxes + ipos[ok]] = off[ok]
    return targets, weights


def bal_labels(is_bal: NDArray[Any], bi_civ: NDArray[Any] | None) -> NDArray[np.int8]:
    """BAL label from a visual/true BAL flag and BI_CIV (quasarnet.md §2.1).

    +1 if flagged and BI_CIV > 0; -1 if not flagged and BI_CIV = 0; 0 otherwise (no weight).

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
# loss (torch)
# --------------------------------------------------------------------------------------------
def quasarnet_loss(
    outputs: Any, targets: Any, weights: Any, n_boxes: int, offset_weight: float = 1.0
) -> Any:
    """Per-spectrum QuasarNET loss, weighted per head, batch-mean per head, summed over heads.

    For each head and spectrum, with ``N1 = Σ b_k + ε`` and ``N2 = Σ (1 - b_k) + ε``::

        L = -(1/N1) Σ b_k log p_k - (1/N2) Σ (1-b_k) log(1-p_k) + w (1/N1) Σ b_k (o_k - ô_k)²

    (quasarnet.md §2.3; ``custom_loss`` in ngbusca/QuasarNET and dylanagreen/QuasarNET at HEAD,
    where w = ``offset_weight`` = 1).

    Parameters
    ----------
    outputs : torch.Tensor of shape (batch, n_heads, 2 * n_boxes)
        Network outputs: sigmoid box confidences then offsets.
    targets : torch.Tensor of shape (batch, n_heads, 2 * n_boxes)
        From :func:`objective`.
    weights : torch.Tensor of shape (batch, n_heads)
        Per-head sample weights.
    n_boxes : int
        Boxes per head.
    offset_weight : float
        Factor ``w`` on the offset term (1 = the original loss).

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    import torch

    p = torch.clamp(outputs[..., :n_boxes], EPS, 1.0 - EPS)
    o = outputs[..., n_boxes:]
    b = targets[..., :n_boxes]
    ot = targets[..., n_boxes:]
    n1 = b.sum(-1) + EPS
    n2 = (1.0 - b).sum(-1) + EPS
    loss = (
        -(b * torch.log(p)).sum(-1) / n1
        - ((1.0 - b) * torch.log(1.0 - p)).sum(-1) / n2
        + offset_weight * (b * (o - ot) ** 2).sum(-1) / n1
    )
    return (loss * weights).mean(0).sum()


def quasarnet_loss_per_batch(
    outputs: Any, targets: Any, weights: Any, n_boxes: int, offset_weight: float = 1.0
) -> Any:
    """The pre-2020-05 loss: ``N1``, ``N2`` and the sums run over the whole (weighted) batch.

    Used by the 2018 paper models (quasarnet.md §2.3, ngbusca/QuasarNET before commit 65a47b2);
    one scalar per head, heads summed. Sample weights multiply each spectrum's contributions;
    ``offset_weight`` multiplies the offset term (1 = the original).
    """
    import torch

    p = torch.clamp(outputs[..., :n_boxes], EPS, 1.0 - EPS)
    o = outputs[..., n_boxes:]
    b = targets[..., :n_boxes] * weights[..., None]
    nb = (1.0 - targets[..., :n_boxes]) * weights[..., None]
    ot = targets[..., n_boxes:]
    n1 = b.sum((0, 2)) + EPS
    n2 = nb.sum((0, 2)) + EPS
    loss = (
        -(b * torch.log(p)).sum((0, 2)) / n1
        - (nb * torch.log(1.0 - p)).sum((0, 2)) / n2
        + offset_weight * (b * (o - ot) ** 2).sum((0, 2)) / n1
    )
    return loss.sum()


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

    ``provenance`` (e.g. the command that made it) is stored as a unicode array ``PROVENANCE``
    and recorded by :func:`train` in the model's ``config.json``.
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

    Raises
    ------
    InputError
        A missing key, mismatched grids or unreadable file (naming the file and key).
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


def _class_codes(objtype: NDArray[Any], path: str | None) -> NDArray[np.int8]:
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
    """Preprocess spectra and attach truth labels (rows without truth raise).

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
        "CLASS": _class_codes(np.asarray(objtype), spectra.source),
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
    """Prepared dataset from spectra files (DESI coadd, cframe, BOSS spPlate) and a truth file."""
    from surveynet.io.spectra import read_spectra
    from surveynet.io.truth import read_truth

    tt = read_truth(truth).targets
    parts = [dataset_from_spectra(read_spectra(f), tt, grid) for f in files]
    return _concat(parts, grid.wave())


def _simulate_chunk(args: tuple[int, int, int, dict[str, Any]]) -> dict[str, NDArray[Any]]:
    n, seed, offset, grid_dict = args
    from astropy.table import Table

    from surveynet.config import from_dict
    from surveynet.quasar.config import GridConfig
    from surveynet.sim.spectra import SpectraSimConfig, simulate_spectra

    grid = from_dict(GridConfig, grid_dict)
    # no resolution matrices: they are not used by QuasarNET and cost ~90 % of the memory
    spectra, truth = simulate_spectra(n, seed, config=SpectraSimConfig(resolution=False))
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
    d = dataset_from_spectra(spectra, t, grid)
    d["TARGETID"] = d["TARGETID"] + offset
    return d


def simulate_dataset(
    n: int, seed: int, grid: Any, *, chunk: int = 2000, workers: int = 0, quiet: bool = True
) -> dict[str, NDArray[Any]]:
    """Prepared dataset straight from :func:`surveynet.sim.spectra.simulate_spectra`, in chunks.

    Chunk ``k`` is simulated with seed ``SeedSequence(seed).spawn(n_chunks)[k]`` (as an int), so
    the result depends on ``(n, seed, chunk)`` only, not on ``workers``. TARGETIDs are offset by
    ``k * 10**8`` to stay unique.
    """
    from surveynet.config import to_dict

    n_chunks = max(1, -(-n // chunk))
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n_chunks)]
    sizes = [min(chunk, n - k * chunk) for k in range(n_chunks)]
    jobs = [(sizes[k], seeds[k], k * 10**8, to_dict(grid)) for k in range(n_chunks)]
    from tqdm.auto import tqdm

    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            parts = list(
                tqdm(ex.map(_simulate_chunk, jobs), total=len(jobs), disable=quiet, desc="simulate")
            )
    else:
        parts = [_simulate_chunk(j) for j in tqdm(jobs, disable=quiet, desc="simulate")]
    return _concat(parts, grid.wave())


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
def split_indices(
    n: int, val_fraction: float, seed: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Seeded random train/validation split of ``n`` rows.

    Examples
    --------
    >>> tr, va = split_indices(10, 0.2, 0)
    >>> len(tr), len(va), sorted([*tr, *va]) == list(range(10))
    (8, 2, True)
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = round(val_fraction * n)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


def lr_factor(kind: str, epochs: int, decay_start: int = 0, min_factor: float = 0.0) -> Any:
    """Per-epoch learning-rate multiplier ``f(epoch)`` (epoch counted from 0) for ``LambdaLR``.

    ``"constant"``: 1. ``"cosine"``: 1 for ``epoch < decay_start``, then
    ``m + (1 - m) (1 + cos(π (epoch - decay_start) / (epochs - decay_start))) / 2`` with
    ``m = min_factor``, approaching ``m`` in the last epoch.

    Examples
    --------
    >>> f = lr_factor("cosine", 4, 2, 0.0)
    >>> [round(f(e), 3) for e in range(4)]
    [1.0, 1.0, 1.0, 0.5]
    """
    import math

    if kind not in ("constant", "cosine"):
        raise ValueError(f"lr schedule must be 'constant' or 'cosine', got {kind!r}")
    if kind == "cosine" and not 0 <= decay_start < epochs:
        raise ValueError(f"lr decay start {decay_start} must be in [0, epochs={epochs})")

    def f(epoch: int) -> float:
        if kind == "constant" or epoch < decay_start:
            return 1.0
        t = (epoch - decay_start) / (epochs - decay_start)
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))

    return f


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def train(
    config: Any,
    data: dict[str, NDArray[Any]],
    out: str | os.PathLike[str],
    *,
    workdir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    quiet: bool = False,
    max_batches: int = 0,
    device: str = "cpu",
    command: str | None = None,
    name: str | None = None,
    overwrite: bool = False,
    lr_schedule: str = "constant",
    lr_decay_start: int = 0,
    lr_min: float = 0.0,
    init: str | os.PathLike[str] | None = None,
) -> Path:
    """Train QuasarNET on a prepared dataset and write a surveynet model directory.

    Parameters
    ----------
    config : surveynet.quasar.config.QuasarConfig
        Grid, lines, architecture and training settings (``train.seed`` seeds the split, the
        initialisation and the shuffling).
    data : dict
        Prepared dataset (:func:`load_dataset`, :func:`simulate_dataset`).
    out : path
        Model directory to write (``model.safetensors``, ``config.json``, ``history.json``,
        ``quasar_config.json``).
    workdir : path, optional
        Where the resume checkpoint and running history go (default ``<out>.train`` beside ``out``).
    resume : bool
        Continue from the checkpoint in ``workdir``.
    quiet : bool
        No progress bar.
    max_batches : int
        Stop each epoch after this many batches (smoke tests; 0 = all).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    command : str, optional
        The command line recorded in ``config.json`` (default: ``sys.argv``).
    name : str, optional
        Model name (default: the directory name).
    overwrite : bool
        Replace an existing model directory.
    lr_schedule : {"constant", "cosine"}
        Learning-rate schedule per epoch (see :func:`lr_factor`).
    lr_decay_start : int
        Epochs at constant ``train.lr`` before the cosine decay starts (``"cosine"`` only); so a
        run resumed from a constant-LR checkpoint at that epoch decays from there on.
    lr_min : float
        Learning rate reached at the last epoch (``"cosine"`` only).
    init : path or bundled name, optional
        Start from this QuasarNET model's weights (fine-tuning) instead of a seeded random
        initialisation; its architecture config must equal ``config.model``. Ignored when a
        checkpoint is resumed (the checkpoint already holds the weights).

    Returns
    -------
    Path
        ``out``.
    """
    import torch

    from surveynet.config import config_hash, to_dict
    from surveynet.io.fits import atomic_path
    from surveynet.io.model import arrays_sha256, save_model
    from surveynet.nn.loop import LoopConfig, fit
    from surveynet.quasar.config import preprocessing_metadata
    from surveynet.quasar.lines import rest_wavelengths
    from surveynet.quasar.model import build_quasarnet

    outp = Path(out)
    if outp.exists() and not overwrite and not resume:
        raise FileExistsError(f"{outp} exists; pass overwrite=True (--overwrite) to replace it")
    wd = Path(workdir) if workdir is not None else outp.with_name(outp.name + ".train")
    tc, mc = config.train, config.model
    grid_wave = config.grid.wave()
    dgrid = np.asarray(data["GRID"], dtype=np.float64)
    if dgrid.size != grid_wave.size or not np.allclose(dgrid, grid_wave, rtol=1e-9):
        raise InputError(
            f"dataset grid ({dgrid.size} bins from {dgrid[0]:.2f} A) differs from the config grid "
            f"({grid_wave.size} bins from {grid_wave[0]:.2f} A)",
            column="GRID",
        )
    x = np.ascontiguousarray(data["X"], dtype=np.float32)
    cls = np.asarray(data["CLASS"])
    targets, weights = objective(
        data["Z"],
        cls == CLASS_CODES["QSO"],
        data["BAL"],
        grid_wave,
        rest_wavelengths(config.lines.lines),
        rest_wavelengths(config.lines.lines_bal),
        mc.n_boxes,
    )
    tr, va = split_indices(len(x), tc.val_fraction, tc.seed)
    log.info(
        "training on %d spectra, validating on %d (classes %s)",
        tr.size,
        va.size,
        {k: int((cls == c).sum()) for k, c in CLASS_CODES.items()},
    )
    dev = _resolve_device(device)
    arch = to_dict(mc)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tc.seed)
        model = build_quasarnet(**arch)
    init_meta: dict[str, Any] | None = None
    if init is not None:
        from surveynet.io.model import load_model

        saved = load_model(init, pipeline="quasar")
        if saved.config != arch:
            diff = sorted(
                k for k in set(saved.config) | set(arch) if saved.config.get(k) != arch.get(k)
            )
            raise ConfigError(
                f"--init {init}: its architecture differs from model.* in: {', '.join(diff)}"
            )
        model.load_state_dict_numpy(saved.tensors)
        init_meta = {"model": saved.name, "weights_sha256": saved.weights_hash}
        log.info("initialised from %s (%s)", saved.name, saved.weights_hash)
    model = model.to(dev)
    opt = torch.optim.Adam(
        model.parameters(), lr=tc.lr, amsgrad=tc.amsgrad, weight_decay=tc.weight_decay
    )
    factor = lr_factor(lr_schedule, tc.epochs, lr_decay_start, lr_min / tc.lr if tc.lr else 0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor) if lr_schedule != "constant" else None
    loss_fn = quasarnet_loss if tc.loss == "per_spectrum" else quasarnet_loss_per_batch
    nb = mc.n_boxes

    # Dropout draws from torch's global generator: reseed it at the start of every epoch from
    # (seed, epoch), inside fork_rng so the caller's RNG state is untouched. This makes a resumed
    # run identical to an uninterrupted one.
    n_batches = -(-tr.size // tc.batch_size)
    if max_batches:
        n_batches = min(n_batches, max_batches)
    start_epoch = 0
    ckpt_meta = wd / "checkpoint.json"
    if resume and ckpt_meta.is_file():
        start_epoch = int(json.loads(ckpt_meta.read_text())["epoch"])
    counter = {"steps": 0}

    def step(m: Any, batch: tuple[Any, ...]) -> Any:
        if counter["steps"] % n_batches == 0:
            epoch = start_epoch + counter["steps"] // n_batches
            torch.manual_seed(int(np.random.SeedSequence([tc.seed, epoch]).generate_state(1)[0]))
        counter["steps"] += 1
        xb, tb, wb = (b.to(dev, non_blocking=True) for b in batch)
        return loss_fn(m(xb), tb, wb, nb, tc.offset_weight)

    def val_step(m: Any, batch: tuple[Any, ...]) -> Any:
        xb, tb, wb = (b.to(dev, non_blocking=True) for b in batch)
        return loss_fn(m(xb), tb, wb, nb, tc.offset_weight)

    loop = LoopConfig(
        epochs=tc.epochs,
        batch_size=tc.batch_size,
        seed=tc.seed,
        patience=tc.patience,
        quiet=quiet,
        max_batches=max_batches,
    )
    devices = [torch.cuda.current_device()] if dev.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
        # on resume, fit() fast-forwards the scheduler to the checkpoint epoch before any
        # optimizer step; torch warns about that order, which is intended here
        warnings.filterwarnings(
            "ignore",
            message=r"Detected call of `lr_scheduler.step\(\)` before",
            category=UserWarning,
        )
        history = fit(
            model,
            opt,
            [x[tr], targets[tr], weights[tr]],
            step,
            loop,
            val_data=[x[va], targets[va], weights[va]] if va.size else None,
            validation_step=val_step if va.size else None,
            workdir=wd,
            resume=resume,
            scheduler=sched,
        )
    model = model.to("cpu").eval()
    tensors = model.state_dict_numpy()
    full = to_dict(config)
    training = {
        "command": command if command is not None else " ".join(shlex.quote(a) for a in sys.argv),
        "seed": tc.seed,
        "data_hash": arrays_sha256([x, np.asarray(data["Z"]), cls, np.asarray(data["BAL"])]),
        "n_train": int(tr.size),
        "n_val": int(va.size),
        "classes": {k: int((cls == c).sum()) for k, c in CLASS_CODES.items()},
        "train": full["train"],
        "loss": tc.loss,
        "lr_schedule": {"kind": lr_schedule, "decay_start": lr_decay_start, "lr_min": lr_min},
        "device": dev,
        "torch_version": torch.__version__,
        "config_hash": config_hash(config),
        "final": history.rows[-1] if history.rows else {},
    }
    if init_meta is not None:
        training["init"] = init_meta
    if "PROVENANCE" in data:
        training["data_command"] = str(data["PROVENANCE"])
    save_model(
        outp,
        tensors,
        pipeline="quasar",
        architecture="quasarnet",
        config=to_dict(mc),
        preprocessing=preprocessing_metadata(config.grid, config.lines),
        label_names=list(preprocessing_metadata(config.grid, config.lines)["head_order"]),
        training=training,
        name=name,
        overwrite=True,
    )
    with atomic_path(outp / "history.json", overwrite=True) as tmp:
        tmp.write_text(history.to_json() + "\n")
    with atomic_path(outp / "quasar_config.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(full, indent=1) + "\n")
    log.info("model written to %s", outp)
    return outp
