"""QuasarNET training: box/offset targets, per-spectrum loss, sample weights, Adam(amsgrad).

The training data are a prepared dataset (:mod:`surveynet.quasar.data`). Targets follow
``ngbusca/QuasarNET:py/quasarnet/io.py`` ``box_offset``/``objective`` (quasarnet.md §2.2); the loss
is the per-spectrum ``custom_loss`` of both QuasarNET repositories at HEAD (§2.3); optimisation is
Adam with amsgrad, lr 1e-3, batch 256 (Farr et al. 2020, §2.4). Every setting is a key of
:class:`surveynet.quasar.config.QuasarConfig` (``train.*``, ``model.*``).

:func:`train` writes a model directory (docs/architecture.md)::

    MODEL/
      model.safetensors   weights (torch state_dict keys)
      config.json         pipeline, architecture, config (architecture), preprocessing, label_names,
                          training{command, seed, config (the full resolved QuasarConfig),
                          config_hash, data_hash, data_command, n_train, n_val, classes, device,
                          torch_version, final, init}
      history.json        one row per epoch (epoch, train_loss, val_loss)
    MODEL.work/           resume checkpoint and running history (``--workdir``)

This module imports torch inside its functions: it is never used for inference.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.nn.train import (
    Optimisation,
    TrainData,
    TrainTask,
    check_output_dir,
    run_training,
    split_indices,
    training_command,
)
from surveynet.quasar.data import CLASS_CODES

log = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------------------------
# loss (torch)
# --------------------------------------------------------------------------------------------
def quasarnet_loss(
    outputs: Any, targets: Any, weights: Any, n_boxes: int, offset_weight: float = 1.0
) -> Any:
    """Compute the per-spectrum QuasarNET loss (weighted and batch-averaged per head, summed).

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
    """Compute the pre-2020-05 loss: ``N1``, ``N2`` and the sums run over the whole batch.

    Used by the 2018 paper models (quasarnet.md §2.3, ngbusca/QuasarNET before commit 65a47b2);
    one scalar per head, heads summed. Sample weights multiply each spectrum's contributions;
    ``offset_weight`` multiplies the offset term (1 = the original).

    Parameters
    ----------
    outputs, targets : torch.Tensor of shape (batch, n_heads, 2 * n_boxes)
        Network outputs and targets (:func:`objective`).
    weights : torch.Tensor of shape (batch, n_heads)
        Per-head sample weights.
    n_boxes : int
        Boxes per head.
    offset_weight : float
        Factor on the offset term.

    Returns
    -------
    torch.Tensor
        Scalar loss.
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
# training: the QuasarNET task of the core driver (surveynet.nn.train)
# --------------------------------------------------------------------------------------------
class QuasarTrainTask(TrainTask):
    """QuasarNET's hooks for :func:`surveynet.nn.train.run_training`.

    Parameters
    ----------
    config : surveynet.quasar.config.QuasarConfig
        The resolved config (grid, lines, ``model``, ``train``).
    data : dict
        Prepared dataset (:func:`surveynet.quasar.data.load_dataset`,
        :func:`surveynet.quasar.data.simulate_dataset`).

    Raises
    ------
    InputError
        The dataset's grid differs from ``config.grid``.
    """

    pipeline = "quasar"

    def __init__(self, config: Any, data: dict[str, NDArray[Any]]) -> None:
        super().__init__(config, "quasarnet")
        grid_wave = config.grid.wave()
        dgrid = np.asarray(data["GRID"], dtype=np.float64)
        if dgrid.size != grid_wave.size or not np.allclose(dgrid, grid_wave, rtol=1e-9):
            raise InputError(
                f"dataset grid ({dgrid.size} bins from {dgrid[0]:.2f} A) differs from the config "
                f"grid ({grid_wave.size} bins from {grid_wave[0]:.2f} A)",
                column="GRID",
            )
        self.data = data
        self.grid_wave = grid_wave

    def optimisation(self) -> Optimisation:
        """Adam(amsgrad) settings from ``train.*``."""
        return Optimisation.from_section(self.config.train)

    def arch_config(self) -> dict[str, Any]:
        """``model.*`` as the builder's keyword arguments."""
        from surveynet.config import to_dict

        return to_dict(self.config.model)

    def setup(self, model: Any, rng: np.random.Generator) -> TrainData:
        """Box/offset targets and weights, the seeded split and the loss steps."""
        from surveynet.io.model import arrays_sha256
        from surveynet.quasar.lines import rest_wavelengths

        config, data = self.config, self.data
        tc, mc = config.train, config.model
        x = np.ascontiguousarray(data["X"], dtype=np.float32)
        cls = np.asarray(data["CLASS"])
        targets, weights = objective(
            data["Z"],
            cls == CLASS_CODES["QSO"],
            data["BAL"],
            self.grid_wave,
            rest_wavelengths(config.lines.lines),
            rest_wavelengths(config.lines.lines_bal),
            mc.n_boxes,
        )
        tr, va = split_indices(len(x), tc.val_fraction, rng)
        classes = {k: int((cls == c).sum()) for k, c in CLASS_CODES.items()}
        log.info("training on %d spectra, validating on %d (classes %s)", tr.size, va.size, classes)
        loss_fn = quasarnet_loss if tc.loss == "per_spectrum" else quasarnet_loss_per_batch
        nb, ow = mc.n_boxes, tc.offset_weight

        def step(m: Any, batch: tuple[Any, ...]) -> Any:
            xb, tb, wb = batch
            return loss_fn(m(xb), tb, wb, nb, ow)

        info: dict[str, Any] = {"n_train": int(tr.size), "n_val": int(va.size), "classes": classes}
        if "PROVENANCE" in data:
            info["data_command"] = str(data["PROVENANCE"])
        return TrainData(
            train=[x[tr], targets[tr], weights[tr]],
            val=[x[va], targets[va], weights[va]] if va.size else None,
            training_step=step,
            data_hash=arrays_sha256([x, np.asarray(data["Z"]), cls, np.asarray(data["BAL"])]),
            info=info,
        )

    def metadata(self) -> dict[str, Any]:
        """Grid and line lists as ``preprocessing``; the head order as ``label_names``."""
        from surveynet.quasar.config import preprocessing_metadata

        pre = preprocessing_metadata(self.config.grid, self.config.lines)
        return {"preprocessing": pre, "label_names": list(pre["head_order"])}

    def state_dict_numpy(self, model: Any) -> dict[str, NDArray[Any]]:
        """Float32 weights without BatchNorm counters (:meth:`QuasarNet.state_dict_numpy`)."""
        return dict(model.state_dict_numpy())

    def load_weights(self, model: Any, tensors: dict[str, NDArray[Any]]) -> None:
        """Strict load with shape checks (:meth:`QuasarNet.load_state_dict_numpy`)."""
        model.load_state_dict_numpy(tensors)


def train(
    config: Any,
    data: dict[str, NDArray[Any]],
    out: str | os.PathLike[str],
    *,
    workdir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    quiet: bool = False,
    command: str | None = None,
    name: str | None = None,
    overwrite: bool = False,
    init: str | os.PathLike[str] | None = None,
) -> Path:
    """Train QuasarNET on a prepared dataset and write a surveynet model directory.

    A thin wrapper over the core driver :func:`surveynet.nn.train.run_training` with
    :class:`QuasarTrainTask`.

    Parameters
    ----------
    config : surveynet.quasar.config.QuasarConfig
        The resolved config: grid, lines, architecture (``model``) and training (``train``:
        ``seed`` seeds the split, the initialisation, the shuffling and the dropout of each epoch;
        ``lr_schedule``, ``lr_decay_start``, ``lr_min``, ``device``, ``max_batches``).
    data : dict
        Prepared dataset (:func:`surveynet.quasar.data.load_dataset`,
        :func:`surveynet.quasar.data.simulate_dataset`).
    out : path
        Model directory to write (``model.safetensors``, ``config.json``, ``history.json``).
    workdir : path, optional
        Where the resume checkpoint and running history go (default ``<out>.work``).
    resume : bool
        Continue from the checkpoint in ``workdir`` (from its start when there is none).
    quiet : bool
        No progress bar.
    command : str, optional
        The command line recorded in ``config.json`` (default: ``sys.argv``).
    name : str, optional
        Model name (default: the directory name).
    overwrite : bool
        Replace an existing model directory.
    init : path or bundled name, optional
        Start from this QuasarNET model's weights (fine-tuning); its architecture config must
        equal ``config.model``. Ignored when a checkpoint is resumed.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    FileExistsError
        ``out`` exists and neither ``overwrite`` nor ``resume`` is set (checked first).
    InputError
        The dataset's grid differs from ``config.grid``.
    ConfigError
        ``init``'s architecture differs from ``config.model`` (the differing fields are named).
    """
    check_output_dir(out, overwrite=overwrite, resume=resume)
    task = QuasarTrainTask(config, data)
    return run_training(
        task,
        out,
        workdir=workdir,
        resume=resume,
        init=init,
        overwrite=overwrite,
        quiet=quiet,
        command=command if command is not None else training_command(sys.argv),
        name=name,
    )
