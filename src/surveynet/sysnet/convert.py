"""Loading sysnetdev checkpoints (``best.pth.tar``) without unpickling arbitrary objects.

A sysnetdev checkpoint is a torch pickle of ``{epoch, state_dict, optim_dict, scheduler_dict,
best_val_loss, stats}`` with ``stats = {'x': (loc, scale), 'y': (loc, scale)}`` as numpy arrays,
which ``torch.load(weights_only=True)`` rejects on torch >= 2.6. We load with
``weights_only=True``; if that fails only because of numpy arrays, we retry still with
``weights_only=True`` but with numpy's array-reconstruction functions added to torch's safe
globals (the restricted unpickler still refuses any other object). Anything else raises
:class:`~surveynet.errors.ModelFormatError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import ModelFormatError

#: Globals a sysnetdev checkpoint may reference besides torch's defaults (numpy arrays/scalars).
NUMPY_GLOBALS = (
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy.core.multiarray.scalar",
    "numpy.ndarray",
    "numpy.dtype",
)


def _numpy_safe_globals(names: list[str]) -> list[Any]:
    """``(object, pickled name)`` pairs for numpy globals; raise on anything else."""
    import importlib

    bad = [n for n in names if n not in NUMPY_GLOBALS and not n.startswith("numpy.dtypes.")]
    if bad:
        raise ModelFormatError(
            f"checkpoint references {bad}: not loadable with weights_only=True; refusing to "
            "unpickle it"
        )
    out: list[Any] = []
    for name in names:
        mod, attr = name.rsplit(".", 1)
        mod = mod.replace("numpy.core.", "numpy._core.")
        out.append((getattr(importlib.import_module(mod), attr), name))
    # dtype classes are built by numpy.dtype's reconstruction without a GLOBAL opcode of their own
    out.extend(getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType"))
    return out


def load_sysnetdev_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
    """Read a sysnetdev ``best.pth.tar`` with weights-only unpickling.

    Parameters
    ----------
    path : path
        The checkpoint.

    Returns
    -------
    state_dict : dict of str to ndarray
    meta : dict
        ``stats`` (``x_loc``, ``x_scale`` as arrays when present), ``epoch``, ``best_val_loss``.

    Raises
    ------
    ModelFormatError
        Not a weights-only-loadable checkpoint, or no ``state_dict``.
    """
    import pickle

    import torch

    p = Path(path)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(p)
            allowed = _numpy_safe_globals(names)
        except ModelFormatError as exc:
            raise ModelFormatError(f"{p}: {exc}") from None
        try:
            with torch.serialization.safe_globals(allowed):
                ckpt = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ModelFormatError(
                f"{p}: not loadable with weights_only=True: {str(exc).splitlines()[0]}"
            ) from None
    except (OSError, RuntimeError, EOFError) as exc:
        raise ModelFormatError(f"{p}: unreadable torch checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ModelFormatError(f"{p}: no 'state_dict' in the checkpoint")
    sd = {
        k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
        for k, v in ckpt["state_dict"].items()
    }
    meta: dict[str, Any] = {"epoch": ckpt.get("epoch"), "best_val_loss": ckpt.get("best_val_loss")}
    stats = ckpt.get("stats")
    if isinstance(stats, dict) and "x" in stats:
        loc, scale = stats["x"]
        meta["x_loc"] = np.asarray(loc, np.float64)
        meta["x_scale"] = np.asarray(scale, np.float64)
    return sd, meta


def structure_from_state_dict(sd: dict[str, Any]) -> tuple[str, int, tuple[int, int]]:
    """``(family, input_dim, nn_structure)`` of a sysnetdev state_dict (family dnn or lin)."""
    if "hl1.weight" in sd:
        return "lin", int(np.shape(sd["hl1.weight"])[1]), (2, 1)
    n_fc = len([k for k in sd if k.startswith("fc.") and k.endswith(".weight")])
    if n_fc < 2:
        raise ModelFormatError(f"unrecognised sysnet state_dict keys: {sorted(sd)[:6]}")
    w0 = np.shape(sd["fc.0.weight"])
    return "dnn", int(w0[1]), (n_fc, int(w0[0]))


def load_any_checkpoint(path: str | os.PathLike[str], model: str) -> dict[str, NDArray[Any]]:
    """State dict from a surveynet model directory or a sysnetdev ``.pth.tar`` file."""
    p = Path(path)
    if p.is_dir():
        from surveynet.io.model import load_model

        return dict(load_model(p, pipeline="sysnet").tensors)
    sd, _ = load_sysnetdev_checkpoint(p)
    return sd


def convert_sysnetdev(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: str = "dnnp",
    feature_names: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert a sysnetdev ``best.pth.tar`` into a surveynet model directory.

    The architecture head (dnn/dnnp/dnnps, lin/linp) cannot be read from the weights and is
    given by ``model``; the structure and input size are read from the tensors.
    """
    from surveynet.io.model import file_sha256, save_model

    sd, meta = load_sysnetdev_checkpoint(path)
    family, k, struct = structure_from_state_dict(sd)
    if (family == "lin") != (model in ("lin", "linp")):
        raise ModelFormatError(f"{path}: weights are a {family} network, not {model!r}")
    pre: dict[str, Any] = {
        "kind": "z-score",
        "loc": meta.get("x_loc", np.zeros(k)).tolist(),
        "scale": meta.get("x_scale", np.ones(k)).tolist(),
        "feature_names": feature_names or [f"f{i}" for i in range(k)],
    }
    return save_model(
        out,
        {kk: np.asarray(v) for kk, v in sd.items()},
        pipeline="sysnet",
        architecture=f"sysnet_{model}",
        config={"model": model, "input_dim": k, "nn_structure": list(struct)},
        preprocessing=pre,
        label_names=["yhat"],
        source={"file": Path(path).name, "sha256": file_sha256(path), "format": "sysnetdev"},
        overwrite=overwrite,
    )
