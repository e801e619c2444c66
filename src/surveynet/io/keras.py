"""Convert Keras 2.x HDF5 QuasarNET files to the surveynet model format (h5py, no TensorFlow).

Driven by the file's ``model_config`` JSON (spec quasarnet.md §5.1-5.2), never by layer-name
conventions:

- conv layers are the ``Conv1D`` layers in graph order (``filters``, ``kernel_size``, ``strides``,
  ``padding`` read from each; all must agree);
- every ``BatchNormalization`` is paired with the Conv1D/Dense that feeds it through
  ``inbound_nodes`` (Keras auto-names differ between files: ``batch_normalization`` ... ``_4``
  in the small test file, ``_1`` ... ``_7`` in the 6-layer one), and its ``epsilon`` and
  ``momentum`` are kept;
- heads are traced from the model outputs: each output is a ``Concatenate`` of a box Dense and an
  offset path; the offset path is a Dense, optionally through a ``Lambda`` -- whatever its name
  (``lambda`` or ``lambda_0`` ...) -- which is the QuasarNET rescale ``-0.1 + 1.2 x``. The
  constants are read from the marshalled Lambda body when they can be found there (it is never
  executed), else the published (-0.1, 1.2) are used;
- ``Dropout`` rates are recorded (identity at inference);
- an optional root ``model_grid`` dataset / ``grid_spacing`` attribute (QuasarNP
  ``scripts/post_process_weights.py``) gives the grid; otherwise the 443-bin log grid.

Kernels are transposed to torch layout: conv (K, C_in, C_out) -> (C_out, C_in, K) (no flip: both
cross-correlate), dense (in, out) -> (out, in). The flatten stays channels-last, which is the
convention of the surveynet QuasarNET ``fc_common`` weight.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import InputError

log = logging.getLogger(__name__)

#: QuasarNET offset rescale (ngbusca/QuasarNET:py/quasarnet/models.py, Lambda after fc_offset_i).
DEFAULT_OFFSET_RESCALE = (-0.1, 1.2)


@dataclass
class KerasQuasarNet:
    """What was read from a Keras QuasarNET file.

    Attributes
    ----------
    tensors : dict of str to ndarray
        surveynet ``state_dict`` (torch layout, float32).
    config : dict
        ``to_dict(QuasarNetConfig)`` of the network.
    grid : dict
        ``to_dict(GridConfig)`` of the input grid.
    keras_version : str
        From the file's root attributes.
    layer_map : dict of str to str
        surveynet tensor prefix -> Keras layer name (provenance).
    """

    tensors: dict[str, NDArray[Any]]
    config: dict[str, Any]
    grid: dict[str, Any]
    keras_version: str = ""
    layer_map: dict[str, str] = field(default_factory=dict)


def _inbound(layer: dict[str, Any]) -> list[str]:
    """Names of the layers feeding ``layer`` (Keras 2.x ``inbound_nodes`` format)."""
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


def _lambda_constants(layer: dict[str, Any]) -> tuple[float, float] | None:
    """(shift, scale) of ``lambda x: shift + scale * x`` from a marshalled Lambda body, if found.

    The code object's constants are ``(None, shift, scale)``; marshal writes that tuple as ``)``
    (small tuple, possibly with the FLAG_REF bit) of 3, ``N``, then two binary floats ``g``. The
    bytes are searched, never unmarshalled or executed.
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


def _weights(h5: Any, layer: str, path: Path) -> _Weights:
    """Datasets of one layer: ``{"kernel": ..., "bias": ..., "gamma": ...}``."""
    if "model_weights" not in h5:
        raise InputError(
            "no model_weights group (not a full-model Keras HDF5 file)",
            path=path,
            hdu="model_weights",
        )
    grp = h5["model_weights"]
    if layer not in grp:
        raise InputError(f"no weights for layer {layer!r}", path=path, hdu=f"model_weights/{layer}")
    out: dict[str, NDArray[Any]] = {}
    g = grp[layer]
    names = [
        n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])
    ]
    if not names:  # fall back to walking the group

        def visit(name: str, obj: Any) -> None:
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
    return _Weights(out, layer, path)


class _Weights(dict[str, NDArray[Any]]):
    """The datasets of one layer; a missing one raises :class:`InputError` naming the layer."""

    def __init__(self, data: dict[str, NDArray[Any]], layer: str, path: Path) -> None:
        super().__init__(data)
        self.layer, self.path = layer, path

    def __missing__(self, key: str) -> NDArray[Any]:
        raise InputError(
            f"layer {self.layer!r} has no {key!r} weight (found {sorted(self)})",
            path=self.path,
            hdu=f"model_weights/{self.layer}",
        )


def read_keras_quasarnet(path: str | os.PathLike[str]) -> KerasQuasarNet:
    """Read a Keras 2.x full-model HDF5 QuasarNET into surveynet tensors and config.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.h5`` file (``model.save(...)`` output with ``model_config`` and ``model_weights``).

    Returns
    -------
    KerasQuasarNet

    Raises
    ------
    InputError
        Not an HDF5 file, no ``model_config``, a graph that is not QuasarNET-shaped, or weights
        whose
        shapes disagree with the config (the message names the file and layer).
    """
    import h5py

    from surveynet.config import to_dict
    from surveynet.quasar.config import GridConfig, QuasarNetConfig

    p = Path(path)
    try:
        h5 = h5py.File(p, "r")
    except OSError as exc:
        raise InputError(f"cannot open as HDF5 ({exc})", path=p) from exc
    with h5:
        raw = h5.attrs.get("model_config")
        if raw is None:
            raise InputError(
                "no model_config attribute (not a Keras full-model file)", path=p, hdu="/"
            )
        if isinstance(raw, bytes):
            raw = raw.decode()
        try:
            mc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"model_config is not JSON ({exc})", path=p, hdu="/") from exc
        kv = h5.attrs.get("keras_version", b"")
        keras_version = kv.decode() if isinstance(kv, bytes) else str(kv)
        layers = mc.get("config", {}).get("layers", [])
        by_name = {lay.get("config", {}).get("name", lay.get("name")): lay for lay in layers}
        order = list(by_name)
        consumers: dict[str, list[str]] = {n: [] for n in order}
        for n in order:
            for src in _inbound(by_name[n]):
                consumers.setdefault(src, []).append(n)

        def cls(n: str) -> str:
            return str(by_name[n].get("class_name", ""))

        def cfg(n: str) -> dict[str, Any]:
            return dict(by_name[n].get("config", {}))

        def bn_after(n: str) -> str:
            bns = [c for c in consumers.get(n, []) if cls(c) == "BatchNormalization"]
            if len(bns) != 1:
                raise InputError(
                    f"layer {n!r} is not followed by exactly one BatchNormalization",
                    path=p,
                    hdu="model_config",
                )
            return bns[0]

        convs = [n for n in order if cls(n) == "Conv1D"]
        if not convs:
            raise InputError("no Conv1D layers: not a QuasarNET model", path=p, hdu="model_config")
        conv_cfg = [cfg(n) for n in convs]

        def scalar(v: Any) -> Any:
            return v[0] if isinstance(v, (list, tuple)) else v

        filters = {int(c["filters"]) for c in conv_cfg}
        kernels = {int(scalar(c["kernel_size"])) for c in conv_cfg}
        strides = {int(scalar(c.get("strides", 1))) for c in conv_cfg}
        paddings = {str(c.get("padding", "valid")) for c in conv_cfg}
        if len(filters) != 1 or len(kernels) != 1 or len(strides) != 1 or len(paddings) != 1:
            raise InputError(
                f"conv layers differ (filters {filters}, kernel {kernels}, strides {strides}, "
                f"padding {paddings}); "
                "QuasarNET uses identical blocks",
                path=p,
                hdu="model_config",
            )
        padding = paddings.pop()
        if padding not in ("valid", "same"):
            raise InputError(f"unsupported padding {padding!r}", path=p, hdu="model_config")
        for c in conv_cfg:
            if c.get("data_format", "channels_last") != "channels_last":
                raise InputError(
                    "only channels_last Conv1D is supported", path=p, hdu="model_config"
                )
            if c.get("activation", "linear") != "linear":
                raise InputError(
                    "QuasarNET conv layers are linear (activation after BatchNorm)",
                    path=p,
                    hdu="model_config",
                )
            if int(scalar(c.get("dilation_rate", 1))) != 1:
                raise InputError(
                    "dilated convolutions are not supported", path=p, hdu="model_config"
                )

        inputs = [n for n in order if cls(n) == "InputLayer"]
        n_input = None
        if inputs:
            shape = cfg(inputs[0]).get("batch_input_shape") or cfg(inputs[0]).get("batch_shape")
            if shape:
                n_input = int(shape[1])
        if n_input is None:
            raise InputError(
                "cannot find the input length (InputLayer batch_input_shape)",
                path=p,
                hdu="model_config",
            )

        dropouts = {float(cfg(n).get("rate", 0.0)) for n in order if cls(n) == "Dropout"}
        dropout = max(dropouts) if dropouts else 0.0

        outputs = [o[0] for o in mc.get("config", {}).get("output_layers", [])]
        if not outputs:
            raise InputError("model_config has no output_layers", path=p, hdu="model_config")
        heads: list[tuple[str, str, str | None]] = []  # (box dense, offset dense, lambda)
        for out in outputs:
            if cls(out) != "Concatenate":
                raise InputError(
                    f"output {out!r} is a {cls(out)}, expected Concatenate(box, offset)",
                    path=p,
                    hdu="model_config",
                )
            srcs = _inbound(by_name[out])
            if len(srcs) != 2:
                raise InputError(
                    f"output {out!r} concatenates {len(srcs)} tensors, expected 2",
                    path=p,
                    hdu="model_config",
                )
            box, off = srcs
            lam = None
            if cls(off) == "Lambda":
                lam = off
                (off,) = _inbound(by_name[off])
            if cls(box) != "Dense" or cls(off) != "Dense":
                raise InputError(
                    f"output {out!r}: box/offset branches must be Dense layers",
                    path=p,
                    hdu="model_config",
                )
            heads.append((box, off, lam))
        lambdas = {h[2] is not None for h in heads}
        if len(lambdas) != 1:
            raise InputError(
                "some heads have the offset rescale Lambda and others not",
                path=p,
                hdu="model_config",
            )
        rescale = lambdas.pop()
        shift, scale = DEFAULT_OFFSET_RESCALE
        if rescale:
            consts = {_lambda_constants(by_name[h[2]]) for h in heads if h[2]}
            found = {c for c in consts if c is not None}
            if len(found) == 1 and None not in consts:
                shift, scale = found.pop()
            else:
                log.warning(
                    "%s: offset Lambda constants not readable; using %s", p, DEFAULT_OFFSET_RESCALE
                )
        for box, off, _ in heads:
            for d in (box, off):
                if cfg(d).get("activation") != "sigmoid":
                    raise InputError(
                        f"head layer {d!r} has activation {cfg(d).get('activation')!r}, "
                        "expected sigmoid",
                        path=p,
                        hdu="model_config",
                    )

        # fc_common: the Dense fed (through Flatten) by the conv stack, feeding the heads.
        dense_trunk = [n for n in order if cls(n) == "Dense" and all(n not in h[:2] for h in heads)]
        if len(dense_trunk) != 1:
            raise InputError(
                f"expected one shared Dense layer before the heads, found {dense_trunk}",
                path=p,
                hdu="model_config",
            )
        fc = dense_trunk[0]
        n_fc = int(cfg(fc)["units"])
        n_boxes = {int(cfg(d)["units"]) for h in heads for d in h[:2]}
        if len(n_boxes) != 1:
            raise InputError(
                f"heads have different numbers of boxes {n_boxes}", path=p, hdu="model_config"
            )

        bn_layers = [bn_after(c) for c in convs] + [bn_after(fc)]
        eps = {float(cfg(b).get("epsilon", 1e-3)) for b in bn_layers}
        mom = {float(cfg(b).get("momentum", 0.99)) for b in bn_layers}
        if len(eps) != 1:
            raise InputError(f"BatchNorm epsilons differ {eps}", path=p, hdu="model_config")

        n_heads = len(heads)
        n_bal = 1 if n_heads > 1 else 0
        config = QuasarNetConfig(
            n_input=n_input,
            n_layers=len(convs),
            n_filters=filters.pop(),
            kernel_size=kernels.pop(),
            stride=strides.pop(),
            padding=padding,  # type: ignore[arg-type]
            n_fc=n_fc,
            n_boxes=n_boxes.pop(),
            n_lines=n_heads - n_bal,
            n_bal=n_bal,
            dropout=dropout,
            offset_rescale=rescale,
            offset_shift=shift,
            offset_scale=scale,
            bn_eps=eps.pop(),
            bn_momentum=mom.pop() if len(mom) == 1 else 0.99,
        )

        tensors: dict[str, NDArray[Any]] = {}
        layer_map: dict[str, str] = {}

        def put_bn(prefix: str, name: str) -> None:
            w = _weights(h5, name, p)
            c = config.n_fc if prefix == "bn_fc" else config.n_filters
            gamma = w.get("gamma", np.ones(c))
            beta = w.get("beta", np.zeros(c))
            for key, arr in (
                ("weight", gamma),
                ("bias", beta),
                ("running_mean", w["moving_mean"]),
                ("running_var", w["moving_variance"]),
            ):
                tensors[f"{prefix}.{key}"] = np.asarray(arr, dtype=np.float32)
            layer_map[prefix] = name

        def put_dense(prefix: str, name: str) -> None:
            w = _weights(h5, name, p)
            tensors[f"{prefix}.weight"] = np.ascontiguousarray(
                np.asarray(w["kernel"], dtype=np.float32).T
            )
            tensors[f"{prefix}.bias"] = np.asarray(
                w.get("bias", np.zeros(w["kernel"].shape[1])), dtype=np.float32
            )
            layer_map[prefix] = name

        for i, c in enumerate(convs):
            w = _weights(h5, c, p)
            k = np.asarray(w["kernel"], dtype=np.float32)  # (K, C_in, C_out)
            tensors[f"convs.{i}.weight"] = np.ascontiguousarray(np.transpose(k, (2, 1, 0)))
            tensors[f"convs.{i}.bias"] = np.asarray(
                w.get("bias", np.zeros(k.shape[2])), dtype=np.float32
            )
            layer_map[f"convs.{i}"] = c
            put_bn(f"bns.{i}", bn_layers[i])
        put_dense("fc_common", fc)
        put_bn("bn_fc", bn_layers[-1])
        for h, (box, off, _) in enumerate(heads):
            put_dense(f"box.{h}", box)
            put_dense(f"offset.{h}", off)

        grid = GridConfig.log()
        if "model_grid" in h5:
            grid = GridConfig.from_wave(np.asarray(h5["model_grid"][()]))
            spacing = h5.attrs.get("grid_spacing")
            if isinstance(spacing, bytes):
                spacing = spacing.decode()
            if (
                spacing is not None
                and {"linear": "linear", "logarithmic": "log"}.get(str(spacing)) != grid.kind
            ):
                raise InputError(
                    f"grid_spacing {spacing!r} disagrees with model_grid", path=p, hdu="model_grid"
                )
        if grid.n_bins != config.n_input:
            raise InputError(
                f"input length {config.n_input} does not match the grid ({grid.n_bins} bins)",
                path=p,
                hdu="model_config",
            )

    from surveynet.errors import ModelFormatError
    from surveynet.quasar.engine import check_state_dict

    try:
        check_state_dict(tensors, config)
    except ModelFormatError as exc:
        raise InputError(f"weights do not match model_config: {exc}", path=p) from exc
    return KerasQuasarNet(
        tensors=tensors,
        config=to_dict(config),
        grid=to_dict(grid),
        keras_version=keras_version,
        layer_map=layer_map,
    )


def convert_keras_quasarnet(
    path: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    lines: tuple[str, ...] | None = None,
    lines_bal: tuple[str, ...] | None = None,
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert a Keras QuasarNET ``.h5`` into a surveynet model directory.

    Parameters
    ----------
    path : str or os.PathLike
        Keras HDF5 file.
    outdir : str or os.PathLike
        Model directory to write (``model.safetensors`` + ``config.json``).
    lines, lines_bal : tuple of str, optional
        Head-to-line mapping; default the published convention (LYA, CIV(1548), CIII(1909),
        MgII(2796), Hbeta, Halpha; BAL: CIV(1548)). The Keras file does not store it.
    name : str, optional
        Model name (default: the directory name).
    overwrite : bool
        Replace an existing directory.

    Returns
    -------
    Path
        ``outdir``.
    """
    from surveynet.config import from_dict
    from surveynet.io.model import file_sha256, save_model
    from surveynet.quasar.config import GridConfig, LinesConfig, preprocessing_metadata

    k = read_keras_quasarnet(path)
    lc = LinesConfig()
    lc = LinesConfig(
        lines=tuple(lines) if lines else lc.lines,
        lines_bal=tuple(lines_bal) if lines_bal is not None else lc.lines_bal,
    )
    n_heads = k.config["n_lines"] + k.config["n_bal"]
    if len(lc.lines) + len(lc.lines_bal) != n_heads:
        raise InputError(
            f"the model has {n_heads} heads but {len(lc.lines)} lines + "
            f"{len(lc.lines_bal)} BAL lines were given",
            path=path,
        )
    k.config["n_lines"], k.config["n_bal"] = len(lc.lines), len(lc.lines_bal)
    p = Path(path)
    return save_model(
        outdir,
        k.tensors,
        pipeline="quasar",
        architecture="quasarnet",
        config=k.config,
        preprocessing=preprocessing_metadata(from_dict(GridConfig, k.grid), lc),
        label_names=list(lc.lines) + [f"{n}_BAL" for n in lc.lines_bal],
        source={
            "file": p.name,
            "sha256": file_sha256(p, n=64),
            "format": "keras_hdf5",
            "keras_version": k.keras_version,
            "layer_map": k.layer_map,
        },
        name=name,
        overwrite=overwrite,
    )
