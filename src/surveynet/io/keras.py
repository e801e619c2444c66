"""Read Keras 2.x full-model HDF5 files with h5py (no TensorFlow): graph, weights, attributes.

A ``model.save(...)`` file holds the graph as the ``model_config`` JSON attribute and the
weights under ``model_weights/<layer>``. :func:`open_keras_model` returns a
:class:`KerasModelFile` that answers questions about the graph (layer classes and configs,
inbound and consuming layers, outputs) and reads a layer's weights, root attributes and extra
datasets; :func:`source_record` is the provenance entry of a converted file (name, sha256,
format, Keras version). Nothing here knows a particular network: the QuasarNET converter built on
it is :mod:`surveynet.quasar.convert`.

Bad input raises :class:`~surveynet.errors.InputError` naming the file and the layer (as the
``hdu``) at fault.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.io.model import file_sha256

__all__ = [
    "KerasModelFile",
    "LayerWeights",
    "inbound_layers",
    "lambda_constants",
    "open_keras_model",
    "source_record",
]


def inbound_layers(layer: dict[str, Any]) -> list[str]:
    """Names of the layers feeding ``layer``.

    Parameters
    ----------
    layer : dict
        One entry of ``model_config["config"]["layers"]`` (Keras 2.x ``inbound_nodes`` lists, or
        the Keras 3 ``args``/``keras_history`` form).

    Returns
    -------
    list of str

    Examples
    --------
    >>> inbound_layers({"inbound_nodes": [[["conv1d", 0, 0, {}]]]})
    ['conv1d']
    """
    names: list[str] = []
    for node in layer.get("inbound_nodes", []):
        if isinstance(node, dict):  # Keras 3 style
            for arg in node.get("args", []):
                hist = arg.get("config", {}).get("keras_history") if isinstance(arg, dict) else None
                if hist:
                    names.append(hist[0])
            continue
        for item in node:
            if isinstance(item, (list, tuple)) and item:
                names.append(str(item[0]))
    return names


def lambda_constants(layer: dict[str, Any]) -> tuple[float, float] | None:
    r"""(shift, scale) of ``lambda x: shift + scale * x`` from a marshalled Lambda body, if found.

    The code object's constants are ``(None, shift, scale)``; marshal writes that tuple as ``)``
    (small tuple, possibly with the FLAG_REF bit) of 3, ``N``, then two binary floats ``g``. The
    bytes are searched, never unmarshalled or executed.

    Parameters
    ----------
    layer : dict
        A ``Lambda`` layer entry of ``model_config``.

    Returns
    -------
    tuple of float or None
        None when the body is absent or the pattern is not found.

    Examples
    --------
    >>> body = b")\x03Ng" + struct.pack("<d", -0.1) + b"g" + struct.pack("<d", 1.2)
    >>> lambda_constants({"config": {"function": [base64.b64encode(body).decode()]}})
    (-0.1, 1.2)
    """
    fn = layer.get("config", {}).get("function")
    blob = fn[0] if isinstance(fn, (list, tuple)) and fn else fn
    if not isinstance(blob, str):
        return None
    try:
        raw = base64.b64decode(blob)
    except (ValueError, TypeError):
        return None
    m = re.search(rb"[)\xa9]\x03N[g\xe7](.{8})[g\xe7](.{8})", raw, flags=re.DOTALL)
    if not m:
        return None
    a = struct.unpack("<d", m.group(1))[0]
    b = struct.unpack("<d", m.group(2))[0]
    if not (np.isfinite(a) and np.isfinite(b)):
        return None
    return float(a), float(b)


class LayerWeights(dict[str, NDArray[Any]]):
    """The datasets of one layer by short name (``kernel``, ``bias``, ``gamma``, ...).

    A missing one raises :class:`InputError` naming the file and layer.

    Parameters
    ----------
    data : dict of str to ndarray
        The datasets.
    layer : str
        Layer name.
    path : Path
        The file.
    """

    def __init__(self, data: dict[str, NDArray[Any]], layer: str, path: Path) -> None:
        super().__init__(data)
        self.layer, self.path = layer, path

    def __missing__(self, key: str) -> NDArray[Any]:
        """Raise :class:`InputError` for a weight the layer does not have."""
        raise InputError(
            f"layer {self.layer!r} has no {key!r} weight (found {sorted(self)})",
            path=self.path,
            hdu=f"model_weights/{self.layer}",
        )


class KerasModelFile:
    """An open Keras 2.x full-model HDF5 file (see :func:`open_keras_model`).

    Parameters
    ----------
    h5 : h5py.File
        The open file.
    path : Path
        Its path (for messages).

    Attributes
    ----------
    path : Path
        The file.
    model_config : dict
        The parsed ``model_config`` attribute.
    keras_version : str
        The ``keras_version`` attribute ("" if absent).
    layers : dict of str to dict
        Layer entries by name, in graph order.
    outputs : list of str
        Names of the output layers.

    Raises
    ------
    InputError
        No ``model_config`` attribute, or one that is not JSON.
    """

    def __init__(self, h5: Any, path: Path) -> None:
        self._h5 = h5
        self.path = path
        raw = h5.attrs.get("model_config")
        if raw is None:
            raise InputError(
                "no model_config attribute (not a Keras full-model file)", path=path, hdu="/"
            )
        if isinstance(raw, bytes):
            raw = raw.decode()
        try:
            self.model_config: dict[str, Any] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"model_config is not JSON ({exc})", path=path, hdu="/") from exc
        kv = h5.attrs.get("keras_version", b"")
        self.keras_version = kv.decode() if isinstance(kv, bytes) else str(kv)
        graph = self.model_config.get("config", {})
        self.layers: dict[str, dict[str, Any]] = {
            lay.get("config", {}).get("name", lay.get("name")): lay
            for lay in graph.get("layers", [])
        }
        self.outputs: list[str] = [o[0] for o in graph.get("output_layers", [])]
        self._consumers: dict[str, list[str]] = {n: [] for n in self.layers}
        for n, lay in self.layers.items():
            for src in inbound_layers(lay):
                self._consumers.setdefault(src, []).append(n)

    def class_name(self, name: str) -> str:
        """Keras class of layer ``name`` (e.g. ``"Conv1D"``).

        Parameters
        ----------
        name : str
            Layer name.

        Returns
        -------
        str
        """
        return str(self.layers[name].get("class_name", ""))

    def layer_config(self, name: str) -> dict[str, Any]:
        """A copy of the ``config`` dict of layer ``name``.

        Parameters
        ----------
        name : str
            Layer name.

        Returns
        -------
        dict
        """
        return dict(self.layers[name].get("config", {}))

    def layers_of_class(self, class_name: str) -> list[str]:
        """Names of the layers of one Keras class, in graph order.

        Parameters
        ----------
        class_name : str
            E.g. ``"Dense"``.

        Returns
        -------
        list of str
        """
        return [n for n in self.layers if self.class_name(n) == class_name]

    def inbound(self, name: str) -> list[str]:
        """Names of the layers feeding layer ``name``.

        Parameters
        ----------
        name : str
            Layer name.

        Returns
        -------
        list of str
        """
        return inbound_layers(self.layers[name])

    def consumers(self, name: str) -> list[str]:
        """Names of the layers fed by layer ``name``.

        Parameters
        ----------
        name : str
            Layer name.

        Returns
        -------
        list of str
        """
        return list(self._consumers.get(name, []))

    def weights(self, layer: str) -> LayerWeights:
        """Datasets of one layer: ``{"kernel": ..., "bias": ..., "gamma": ...}``.

        Parameters
        ----------
        layer : str
            Layer name.

        Returns
        -------
        LayerWeights

        Raises
        ------
        InputError
            No ``model_weights`` group, no group for the layer, or a listed weight absent.
        """
        h5, path = self._h5, self.path
        if "model_weights" not in h5:
            raise InputError(
                "no model_weights group (not a full-model Keras HDF5 file)",
                path=path,
                hdu="model_weights",
            )
        grp = h5["model_weights"]
        if layer not in grp:
            raise InputError(
                f"no weights for layer {layer!r}", path=path, hdu=f"model_weights/{layer}"
            )
        out: dict[str, NDArray[Any]] = {}
        g = grp[layer]
        names = [
            n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])
        ]
        if not names:  # fall back to walking the group

            def visit(name: str, obj: Any) -> None:
                """Collect the name of ``obj`` if it is a dataset.

                Parameters
                ----------
                name : str
                    Path inside the group.
                obj : h5py object
                    Group or dataset.
                """
                if hasattr(obj, "shape"):
                    names.append(name)

            g.visititems(visit)
        for n in names:
            key = n.split("/")[-1].split(":")[0]
            rel = n[len(layer) + 1 :] if n.startswith(layer + "/") else n
            if n in g:
                ds = g[n]
            elif rel in g:
                ds = g[rel]
            else:
                raise InputError(
                    f"weight {n!r} listed but absent", path=path, hdu=f"model_weights/{layer}"
                )
            out[key] = np.asarray(ds[()])
        return LayerWeights(out, layer, path)

    def root_attr(self, name: str) -> Any:
        """A root attribute of the file (bytes decoded to str), or None.

        Parameters
        ----------
        name : str
            Attribute name.

        Returns
        -------
        Any
        """
        value = self._h5.attrs.get(name)
        return value.decode() if isinstance(value, bytes) else value

    def dataset(self, name: str) -> NDArray[Any] | None:
        """A root-level dataset outside the Keras layout (e.g. a stored input grid), or None.

        Parameters
        ----------
        name : str
            Dataset name.

        Returns
        -------
        ndarray or None
        """
        return np.asarray(self._h5[name][()]) if name in self._h5 else None


@contextmanager
def open_keras_model(path: str | os.PathLike[str]) -> Iterator[KerasModelFile]:
    """Open a Keras 2.x full-model HDF5 file.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.h5`` file.

    Yields
    ------
    KerasModelFile
        Valid inside the ``with`` block.

    Raises
    ------
    InputError
        Not an HDF5 file, or no / unreadable ``model_config``.
    """
    import h5py

    p = Path(path)
    try:
        h5 = h5py.File(p, "r")
    except OSError as exc:
        raise InputError(f"cannot open as HDF5 ({exc})", path=p) from exc
    with h5:
        yield KerasModelFile(h5, p)


def source_record(
    path: str | os.PathLike[str], *, keras_version: str, **extra: Any
) -> dict[str, Any]:
    """Provenance of a model converted from a Keras file, for the model's ``config.json``.

    Parameters
    ----------
    path : str or os.PathLike
        The Keras file.
    keras_version : str
        Its ``keras_version`` attribute.
    **extra
        Further entries (e.g. ``layer_map``).

    Returns
    -------
    dict
        ``file`` (name), ``sha256`` (of the whole file, 64 hex digits), ``format``
        (``keras_hdf5``), ``keras_version`` and ``extra``.
    """
    p = Path(path)
    return {
        "file": p.name,
        "sha256": file_sha256(p, n=64),
        "format": "keras_hdf5",
        "keras_version": keras_version,
        **extra,
    }
