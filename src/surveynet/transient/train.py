"""``train``: the real/bogus CNN on a datacube, through the core driver (:mod:`surveynet.nn.train`).

:class:`RealBogusTask` supplies the hooks: the cube's channels are selected
(``model.channels``: ``diff`` as gmadet, ``triplet`` as braai) and normalised per cutout
(``model.norm``), a seeded validation split is drawn (``train.val_fraction``), and the loss is
binary cross-entropy on the logit (``sigmoid`` head) or cross-entropy (``softmax``), with random
flips and 90-degree rotations of each batch when ``train.flips`` (drawn from torch's generator,
which the driver reseeds every epoch). Unlabelled rows (label -1) are dropped.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from surveynet.errors import InputError
from surveynet.io.model import arrays_sha256
from surveynet.nn.loop import Batch
from surveynet.nn.train import Optimisation, TrainData, TrainTask, run_training, split_indices
from surveynet.transient.config import TransientConfig
from surveynet.transient.data import read_cube
from surveynet.transient.preprocess import to_network

__all__ = ["RealBogusTask", "arch_config_for", "train"]

log = logging.getLogger(__name__)


def arch_config_for(config: TransientConfig, in_channels: int, size: int) -> dict[str, Any]:
    """Builder arguments of ``config.model.architecture`` for inputs (in_channels, size, size).

    Parameters
    ----------
    config : TransientConfig
        The pipeline config.
    in_channels, size : int
        Network input.

    Returns
    -------
    dict
    """
    m = config.model
    if m.architecture == "rb_cnn":
        return {
            "in_channels": in_channels,
            "size": size,
            "filters": list(m.filters),
            "dense": m.dense,
            "dropout": m.dropout,
            "head": "sigmoid",
        }
    if m.architecture == "gmadet_cnn":
        return {"in_channels": in_channels, "size": size, "dropout": m.dropout, "head": "softmax"}
    if m.architecture == "braai_vgg6":
        return {"in_channels": in_channels, "size": size, "head": "sigmoid"}
    raise InputError(f"unknown architecture {m.architecture!r}", column="model.architecture")


def _augment(x: torch.Tensor) -> torch.Tensor:
    """Random flips and 90-degree rotations of a batch (one draw per batch)."""
    k = int(torch.randint(0, 4, (1,)).item())
    if k:
        x = torch.rot90(x, k, dims=(2, 3))
    if bool(torch.rand(1).item() < 0.5):
        x = torch.flip(x, dims=(3,))
    return x


class RealBogusTask(TrainTask):
    """Training hooks of the real/bogus CNN.

    Parameters
    ----------
    config : TransientConfig
        The pipeline config.
    cube : path
        Datacube (:func:`surveynet.transient.data.read_cube`).

    Attributes
    ----------
    x : ndarray of shape (N, C, H, W)
        Network inputs (normalised).
    y : ndarray of shape (N,)
        Labels (float32, 1 = real).
    """

    pipeline = "transient"

    def __init__(self, config: TransientConfig, cube: str | os.PathLike[str]) -> None:
        super().__init__(config, config.model.architecture)
        d = read_cube(cube)
        lab = np.asarray(d["labels"])
        ok = lab >= 0
        if ok.sum() < 2 or len(np.unique(lab[ok])) < 2:
            raise InputError(
                "the datacube needs labelled real and bogus cutouts", path=cube, column="labels"
            )
        x = d["x"][ok]
        if config.model.channels == "triplet" and x.shape[1] != 3:
            raise InputError(
                f"model.channels=triplet needs a 3-channel cube, got {x.shape[1]}",
                path=cube,
                column="cube",
            )
        chans = "diff" if config.model.channels == "diff" else "triplet"
        self.x = to_network(x, channels=chans, norm=config.model.norm)
        self.y = lab[ok].astype(np.float32)
        self.cube_path = Path(cube)

    def optimisation(self) -> Optimisation:
        """Optimisation settings from ``train``.

        Returns
        -------
        Optimisation
        """
        t = self.config.train
        return Optimisation(
            epochs=t.epochs,
            batch_size=t.batch_size,
            seed=t.seed,
            patience=t.patience,
            lr=t.lr,
            lr_schedule=t.lr_schedule,
            lr_min=t.lr_min,
            max_batches=t.max_batches,
            device=t.device,
        )

    def arch_config(self) -> dict[str, Any]:
        """Builder arguments.

        Returns
        -------
        dict
        """
        return arch_config_for(self.config, int(self.x.shape[1]), int(self.x.shape[2]))

    def setup(self, model: torch.nn.Module, rng: np.random.Generator) -> TrainData:
        """Split and define the steps.

        Parameters
        ----------
        model : torch.nn.Module
            The model.
        rng : numpy.random.Generator
            Seeded generator (split first).

        Returns
        -------
        TrainData
        """
        tr, va = split_indices(len(self.y), self.config.train.val_fraction, rng)
        head = getattr(model, "head", "sigmoid")
        flips = self.config.train.flips

        def loss(m: torch.nn.Module, batch: Batch, augment: bool) -> torch.Tensor:
            xb, yb = batch
            if augment:
                xb = _augment(xb)
            z = m(xb)
            if head == "softmax":
                return F.cross_entropy(z, yb.long())
            return F.binary_cross_entropy_with_logits(z[:, 0], yb)

        def training_step(m: torch.nn.Module, batch: Batch) -> torch.Tensor:
            return loss(m, batch, flips)

        def validation_step(m: torch.nn.Module, batch: Batch) -> torch.Tensor:
            return loss(m, batch, False)

        return TrainData(
            train=[self.x[tr], self.y[tr]],
            val=[self.x[va], self.y[va]] if len(va) else None,
            training_step=training_step,
            validation_step=validation_step,
            data_hash=arrays_sha256([self.x, self.y]),
            info={
                "n_train": len(tr),
                "n_val": len(va),
                "n_real": int(self.y.sum()),
                "cube": self.cube_path.name,
            },
        )

    def metadata(self) -> dict[str, Any]:
        """Preprocessing and label names for ``config.json``.

        Returns
        -------
        dict
        """
        m = self.config.model
        order = ["difference"] if m.channels == "diff" else ["science", "reference", "difference"]
        return {
            "preprocessing": {
                "channels": m.channels,
                "channel_order": order,
                "norm": m.norm,
                "size": int(self.x.shape[2]),
            },
            "label_names": ["bogus", "real"],
        }


def train(
    config: TransientConfig,
    cube: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    resume: bool = False,
    quiet: bool = True,
    command: str = "",
    name: str | None = None,
) -> Path:
    """Train a real/bogus model and write its model directory.

    Parameters
    ----------
    config : TransientConfig
        The pipeline config (``model``, ``train``).
    cube : path
        Datacube.
    out : path
        Model directory.
    overwrite, resume, quiet : bool
        Driver options.
    command : str
        Recorded command line.
    name : str, optional
        Model name.

    Returns
    -------
    Path
    """
    task = RealBogusTask(config, cube)
    return run_training(
        task, out, overwrite=overwrite, resume=resume, quiet=quiet, command=command, name=name
    )
