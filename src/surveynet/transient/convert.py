"""braai's Keras HDF5 weights -> the surveynet model format (``braai_vgg6``).

The ``.h5`` is read with h5py only (no TensorFlow, nothing unpickled): the layer list comes from
the ``model_config`` attribute (Keras JSON) and is checked against
:func:`surveynet.transient.arch.braai_vgg6_layers`; the weights from ``model_weights/<layer>/``.
Layout changes: Conv2D kernels ``(kh, kw, in, out)`` -> torch ``(out, in, kh, kw)``; Dense
kernels ``(in, out)`` -> ``(out, in)``; the first Dense after Flatten has its input rows permuted
from Keras' channels-last flatten order ``(H, W, C)`` to torch's ``(C, H, W)``. The file's
sha256 is recorded as ``source``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import ModelFormatError
from surveynet.io.model import file_sha256, save_model
from surveynet.transient.arch import braai_vgg6_layers

__all__ = ["convert_braai", "read_keras_sequential"]


def read_keras_sequential(
    path: str | os.PathLike[str],
) -> tuple[list[dict[str, Any]], dict[str, dict[str, NDArray[np.float32]]], dict[str, str]]:
    """Read the layers and weights of a Keras (2.x, HDF5) Sequential model with h5py.

    Parameters
    ----------
    path : path
        The ``.h5`` file.

    Returns
    -------
    layers : list of dict
        ``{"class_name", "config"}`` per layer, from the ``model_config`` attribute.
    weights : dict
        Layer name -> {"kernel": ..., "bias": ...}.
    attrs : dict
        ``keras_version`` and ``backend``.

    Raises
    ------
    ModelFormatError
        Not a Keras HDF5 model, or not a Sequential one.
    """
    import h5py

    p = Path(path)
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ModelFormatError(f"{p}: not an HDF5 file ({exc})") from exc
    with f:
        if "model_config" not in f.attrs or "model_weights" not in f:
            raise ModelFormatError(f"{p}: no Keras model_config/model_weights")
        raw = f.attrs["model_config"]
        cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        if cfg.get("class_name") != "Sequential":
            raise ModelFormatError(f"{p}: Keras model is {cfg.get('class_name')}, not Sequential")
        layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
        weights: dict[str, dict[str, NDArray[np.float32]]] = {}
        grp = f["model_weights"]
        for name in grp:
            entry: dict[str, NDArray[np.float32]] = {}

            def visit(n: str, obj: Any, entry: dict[str, NDArray[np.float32]] = entry) -> None:
                if isinstance(obj, h5py.Dataset):
                    key = n.rsplit("/", 1)[-1].split(":")[0]
                    entry[key] = np.asarray(obj[()], dtype=np.float32)

            grp[name].visititems(visit)
            if entry:
                weights[name] = entry
        attrs = {
            k: (v.decode() if isinstance(v, bytes) else str(v))
            for k, v in f.attrs.items()
            if k in ("keras_version", "backend")
        }
    return layers, weights, attrs


def convert_braai(
    h5: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    name: str | None = None,
) -> Path:
    """Convert a braai VGG6 Keras ``.h5`` into a surveynet model directory.

    Parameters
    ----------
    h5 : path
        braai model (e.g. ``braai_d6_m9.h5``).
    out : path
        Model directory to write.
    overwrite : bool
        Replace an existing directory.
    name : str, optional
        Model name (default: the file stem).

    Returns
    -------
    Path
        The model directory.

    Raises
    ------
    ModelFormatError
        The Keras network is not the VGG6 layout (layer classes, filters, kernel, padding,
        pools, units, activations).
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    """
    src = Path(h5)
    outp = Path(out)
    if outp.exists() and not overwrite:
        raise FileExistsError(f"{outp} exists; pass --overwrite to replace it")
    klayers, weights, attrs = read_keras_sequential(src)
    convs = [lay for lay in klayers if lay["class_name"] == "Conv2D"]
    pools = [lay for lay in klayers if lay["class_name"] == "MaxPooling2D"]
    denses = [lay for lay in klayers if lay["class_name"] == "Dense"]
    drops = [lay for lay in klayers if lay["class_name"] == "Dropout"]
    if len(convs) != 4 or len(pools) != 2 or len(denses) != 2:
        raise ModelFormatError(f"{src}: not a VGG6 network ({[x['class_name'] for x in klayers]})")
    first = convs[0]["config"]
    shape = first.get("batch_input_shape") or [None, 63, 63, 3]
    size, in_ch = int(shape[1]), int(shape[3])
    for c in convs:
        cc = c["config"]
        if (
            list(cc["kernel_size"]) != [3, 3]
            or cc["padding"] != "valid"
            or cc["activation"] != "relu"
            or list(cc.get("strides", [1, 1])) != [1, 1]
            or cc.get("data_format", "channels_last") != "channels_last"
        ):
            raise ModelFormatError(f"{src}: layer {cc['name']} is not a 3x3 valid ReLU conv")
    if denses[-1]["config"]["activation"] != "sigmoid" or denses[-1]["config"]["units"] != 1:
        raise ModelFormatError(f"{src}: the output layer is not Dense(1, sigmoid)")
    config: dict[str, Any] = {
        "in_channels": in_ch,
        "size": size,
        "filters": [int(convs[0]["config"]["filters"]), int(convs[2]["config"]["filters"])],
        "pools": [int(p["config"]["pool_size"][0]) for p in pools],
        "dense": int(denses[0]["config"]["units"]),
        "dropout": [float(d["config"]["rate"]) for d in drops],
        "head": "sigmoid",
    }
    layers = braai_vgg6_layers(**config)
    tensors: dict[str, NDArray[np.float32]] = {}
    kconv = iter(convs)
    kdense = iter(denses)
    spatial = size
    for i, lay in enumerate(layers):
        if lay.kind == "conv":
            kname = next(kconv)["config"]["name"]
            w = weights[kname]
            tensors[f"net.{i}.weight"] = np.ascontiguousarray(w["kernel"].transpose(3, 2, 0, 1))
            tensors[f"net.{i}.bias"] = w["bias"]
            spatial -= 2
        elif lay.kind == "maxpool":
            spatial //= lay.k
        elif lay.kind == "dense":
            kname = next(kdense)["config"]["name"]
            w = weights[kname]
            k = w["kernel"]
            if k.shape != (lay.n_in, lay.n_out):
                raise ModelFormatError(
                    f"{src}: {kname} kernel {k.shape} != {(lay.n_in, lay.n_out)}"
                )
            if i > 0 and layers[i - 1].kind == "flatten":
                nch = lay.n_in // (spatial * spatial)
                k = k.reshape(spatial, spatial, nch, -1).transpose(2, 0, 1, 3).reshape(lay.n_in, -1)
            tensors[f"net.{i}.weight"] = np.ascontiguousarray(k.T)
            tensors[f"net.{i}.bias"] = w["bias"]
    return save_model(
        outp,
        tensors,
        pipeline="transient",
        architecture="braai_vgg6",
        config=config,
        preprocessing={
            "channels": "triplet",
            "channel_order": ["science", "reference", "difference"],
            "norm": "l2",
            "pad_value": 1e-9,
            "size": size,
            "orientation": "rows and columns as read from the alert FITS stamps (no flip)",
        },
        label_names=["bogus", "real"],
        source={
            "file": src.name,
            "sha256": file_sha256(src, n=64),
            "format": "Keras HDF5",
            **attrs,
            "origin": "dmitryduev/braai models/ (MIT, Copyright (c) 2019 Dmitry Duev)",
        },
        name=name or src.stem,
        overwrite=overwrite,
    )
