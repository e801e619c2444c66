"""``predict``: score cutouts with a real/bogus model on the numpy engine (gmadet-cnn_infer, §1.7).

Inputs: ``cutouts.fits`` files (or their folders) and/or ``.npz`` datacubes; each goes through
the core driver :func:`surveynet.predict.predict_over_files` (a bad input is listed in the
``FAILED`` HDU and the step exits 3). The model's own preprocessing (``config.json``:
channels, per-channel normalisation, input size) is applied; a cutout larger than the network
input is centre-cropped, a smaller one is refused.

Outputs: ``INFER.fits`` with EXTNAME ``SCORES`` (``CANDID``, ``FILE``, ``X``, ``Y``, ``RA``,
``DEC``, ``MAG``, ``MAGERR``, ``SNR``, ``FWHM``, ``FWHMPSF``, ``EDGE``, ``FLAGS``, ``LABEL0`` =
P(bogus), ``LABEL1`` = P(real), ``REAL`` = LABEL1 >= ``predict.threshold``, plus ``LABEL``,
``TRUTH_KIND``, ``TRUTH_MAG`` when the cutouts are labelled, and ``SOURCE``, ``ROW`` to find the
cutout again), and beside it the anchor's ``infer_results.dat`` (``ascii.commented_header``:
``filename RA Dec originalFile Xpos Ypos mag magerr FWHM FWHMPSF cand_ID label0 label1``).
Edge cutouts are scored and keep ``EDGE = True`` (gmadet skips them silently).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.io.fits import atomic_path, provenance_header, table_hdu, write_hdulist
from surveynet.io.model import SavedModel, load_model
from surveynet.predict import ModelCard, model_cards, predict_over_files
from surveynet.transient.postprocess import anchor_table, score_rows
from surveynet.transient.preprocess import to_network

__all__ = ["load_scorer", "predict_files", "prepare_inputs", "score_file"]

log = logging.getLogger(__name__)


def load_scorer(model: str | os.PathLike[str], *, batch_size: int = 512) -> tuple[Any, SavedModel]:
    """The numpy engine of a transient model.

    Parameters
    ----------
    model : str or path
        Model directory or bundled name.
    batch_size : int
        Engine chunk size.

    Returns
    -------
    engine : RealBogusEngine
        Callable ``engine(x) -> P(real)``.
    saved : SavedModel
        The loaded model.
    """
    from surveynet.registry import get_numpy_engine

    saved = load_model(model, pipeline="transient")
    engine = get_numpy_engine(saved.architecture)(
        saved.tensors, saved.config, batch_size=batch_size
    )
    return engine, saved


def prepare_inputs(cube: NDArray[Any], preprocessing: dict[str, Any]) -> NDArray[np.float32]:
    """Raw cutouts ``(N, C, H, W)`` -> the model's inputs (channels, crop, normalisation).

    Parameters
    ----------
    cube : ndarray of shape (N, C, H, W)
        Cutouts with channels ``[science, reference, difference]`` or difference only.
    preprocessing : dict
        The model's ``preprocessing`` block (``channels``, ``norm``, ``size``).

    Returns
    -------
    ndarray of shape (N, C', size, size), float32

    Raises
    ------
    InputError
        Cutouts smaller than the model's input, or a triplet model given one channel.
    """
    size_val: Any = preprocessing.get("size", cube.shape[-1])
    size = int(size_val)
    chans = "diff" if preprocessing.get("channels", "diff") == "diff" else "triplet"
    if chans == "triplet" and cube.shape[1] != 3:
        raise InputError(f"the model needs 3-channel triplets, the cutouts have {cube.shape[1]}")
    h, w = cube.shape[-2:]
    if h < size or w < size:
        raise InputError(f"cutouts are {h}x{w}, the model needs {size}x{size} (cutouts --size)")
    y0, x0 = (h - size) // 2, (w - size) // 2
    cube = cube[:, :, y0 : y0 + size, x0 : x0 + size]
    return to_network(cube, channels=chans, norm=str(preprocessing.get("norm", "none")))


def _read_input(path: Path) -> tuple[NDArray[np.float32], Table]:
    """Cutouts and their rows from a cutouts file/folder or an npz datacube."""
    if path.suffix == ".npz":
        from surveynet.transient.data import read_cube

        d = read_cube(path)
        t = Table()
        t["CANDID"] = d["candids"]
        t["FILE"] = d.get("files", np.full(len(d["candids"]), "", "U80"))
        t["MAG"] = d["mags"]
        t["MAGERR"] = d["errmags"]
        for k, c in (
            ("snr", "SNR"),
            ("edge", "EDGE"),
            ("kinds", "TRUTH_KIND"),
            ("truth_mags", "TRUTH_MAG"),
        ):
            if k in d:
                t[c] = d[k]
        t["LABEL"] = d["labels"]
        x = d["x"]
        if x.shape[1] == 1:  # difference-only cube: zero science/reference channels
            x = np.concatenate([np.zeros_like(x), np.zeros_like(x), x], axis=1)
        return x, t
    from surveynet.transient.cutouts import read_cutouts

    cube, cands, _ = read_cutouts(path)
    return cube, cands


def score_file(path: str, *, model: str, threshold: float = 0.5, batch_size: int = 512) -> Table:
    """Score every cutout of one input (the per-file function of the driver).

    Parameters
    ----------
    path : str
        ``cutouts.fits``, its folder, or an ``.npz`` datacube.
    model : str
        Model directory or bundled name.
    threshold : float
        ``REAL`` threshold on P(real).
    batch_size : int
        Engine chunk size.

    Returns
    -------
    astropy.table.Table
        The ``SCORES`` rows of this input.
    """
    p = Path(path)
    cube, cands = _read_input(p)
    engine, saved = load_scorer(model, batch_size=batch_size)
    x = prepare_inputs(cube, saved.preprocessing)
    prob = engine(x) if len(x) else np.zeros(0)
    return score_rows(cands, prob, threshold, str(p))


def predict_files(
    inputs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: str,
    threshold: float = 0.5,
    batch_size: int = 512,
    overwrite: bool = False,
    workers: int = 0,
    scheduler: str | None = None,
    quiet: bool = True,
) -> Any:
    """Score cutouts/cubes and write ``INFER.fits`` plus ``infer_results.dat``.

    Parameters
    ----------
    inputs : list of path
        Cutout files/folders or datacubes.
    out : path
        ``INFER.fits``.
    model : str
        Model directory or bundled name.
    threshold : float
        ``REAL`` threshold.
    batch_size : int
        Engine chunk size.
    overwrite : bool
        Replace outputs.
    workers, scheduler : int, str
        Runner settings (Dask).
    quiet : bool
        No progress bar.

    Returns
    -------
    surveynet.predict.PredictResult
        ``exit_code`` 0, or 3 when some inputs failed.
    """
    outp = Path(out)
    dat = outp.with_name("infer_results.dat")
    if dat.exists() and not overwrite:
        raise FileExistsError(f"{dat} exists; pass --overwrite to replace it")
    _, saved = load_scorer(model)  # fail early on a bad model

    def merge(tables: list[Table]) -> Table:
        return vstack(tables) if tables else Table()

    def write(path: Path, merged: Table, failed: Table | None) -> Path:
        hdr = provenance_header(
            pipeline="transient", model_name=saved.name, model_hash=saved.weights_hash
        )
        for k, v, c in model_cards([ModelCard("classifier", saved.name, saved.weights_hash)]):
            hdr[k] = (v, c)
        hdr["THRESH"] = (threshold, "REAL = LABEL1 >= THRESH")
        hdus: list[Any] = [fits.PrimaryHDU(header=hdr), table_hdu(merged, "SCORES")]
        if failed is not None:
            hdus.append(table_hdu(failed, "FAILED"))
        write_hdulist(path, hdus, overwrite=overwrite)
        with atomic_path(dat, overwrite=overwrite) as tmp:
            anchor_table(merged).write(tmp, format="ascii.commented_header")
        return path

    return predict_over_files(
        score_file,
        [str(p) for p in inputs],
        outp,
        merge=merge,
        write=write,
        workers=workers,
        scheduler=scheduler,
        quiet=quiet,
        overwrite=overwrite,
        desc="transient predict",
        model=str(saved.path),
        threshold=threshold,
        batch_size=batch_size,
    )
