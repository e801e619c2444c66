"""Convert Keras 2.x HDF5 QuasarNET files to the surveynet model format (h5py, no TensorFlow).

Driven by the file's ``model_config`` JSON (spec quasarnet.md §5.1-5.2, read with
:mod:`surveynet.io.keras`), never by layer-name conventions:

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

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.config import from_dict, to_dict
from surveynet.errors import InputError, ModelFormatError
from surveynet.io.keras import KerasModelFile, lambda_constants, open_keras_model, source_record
from surveynet.io.model import save_model
from surveynet.quasar.config import (
    GridConfig,
    LinesConfig,
    QuasarNetConfig,
    preprocessing_metadata,
)
from surveynet.quasar.engine import check_state_dict

__all__ = [
    "DEFAULT_OFFSET_RESCALE",
    "KerasQuasarNet",
    "convert_keras_quasarnet",
    "read_keras_quasarnet",
]

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


@dataclass(frozen=True)
class _Head:
    """One output head: its box Dense, its offset Dense and the optional rescale Lambda."""

    box: str
    offset: str
    rescale: str | None


def _graph_error(km: KerasModelFile, message: str) -> InputError:
    """Build an :class:`InputError` about the graph of ``km`` (HDU ``model_config``).

    Parameters
    ----------
    km : KerasModelFile
        The open file.
    message : str
        What is wrong.

    Returns
    -------
    InputError
    """
    return InputError(message, path=km.path, hdu="model_config")


def _scalar(v: Any) -> Any:
    """First element of a Keras list-valued hyperparameter (``kernel_size=[10]``), else ``v``.

    Parameters
    ----------
    v : Any
        Hyperparameter value.

    Returns
    -------
    Any

    Examples
    --------
    >>> _scalar([10]), _scalar(2)
    (10, 2)
    """
    return v[0] if isinstance(v, (list, tuple)) else v


def _conv_stack(km: KerasModelFile) -> tuple[list[str], dict[str, Any]]:
    """The Conv1D layers and their shared hyperparameters.

    Parameters
    ----------
    km : KerasModelFile
        The open file.

    Returns
    -------
    convs : list of str
        Conv1D layer names in graph order.
    hyper : dict
        ``n_filters``, ``kernel_size``, ``stride``, ``padding``.

    Raises
    ------
    InputError
        No Conv1D, convs that differ, or an unsupported padding, layout, activation or dilation.
    """
    convs = km.layers_of_class("Conv1D")
    if not convs:
        raise _graph_error(km, "no Conv1D layers: not a QuasarNET model")
    conv_cfg = [km.layer_config(n) for n in convs]
    filters = {int(c["filters"]) for c in conv_cfg}
    kernels = {int(_scalar(c["kernel_size"])) for c in conv_cfg}
    strides = {int(_scalar(c.get("strides", 1))) for c in conv_cfg}
    paddings = {str(c.get("padding", "valid")) for c in conv_cfg}
    if len(filters) != 1 or len(kernels) != 1 or len(strides) != 1 or len(paddings) != 1:
        raise _graph_error(
            km,
            f"conv layers differ (filters {filters}, kernel {kernels}, strides {strides}, "
            f"padding {paddings}); "
            "QuasarNET uses identical blocks",
        )
    padding = paddings.pop()
    if padding not in ("valid", "same"):
        raise _graph_error(km, f"unsupported padding {padding!r}")
    for c in conv_cfg:
        if c.get("data_format", "channels_last") != "channels_last":
            raise _graph_error(km, "only channels_last Conv1D is supported")
        if c.get("activation", "linear") != "linear":
            raise _graph_error(km, "QuasarNET conv layers are linear (activation after BatchNorm)")
        if int(_scalar(c.get("dilation_rate", 1))) != 1:
            raise _graph_error(km, "dilated convolutions are not supported")
    hyper = {
        "n_filters": filters.pop(),
        "kernel_size": kernels.pop(),
        "stride": strides.pop(),
        "padding": padding,
    }
    return convs, hyper


def _input_length(km: KerasModelFile) -> int:
    """Input length from the InputLayer's ``batch_input_shape`` (or Keras 3 ``batch_shape``).

    Parameters
    ----------
    km : KerasModelFile
        The open file.

    Returns
    -------
    int

    Raises
    ------
    InputError
        No InputLayer shape.
    """
    inputs = km.layers_of_class("InputLayer")
    if inputs:
        cfg = km.layer_config(inputs[0])
        shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
        if shape:
            return int(shape[1])
    raise _graph_error(km, "cannot find the input length (InputLayer batch_input_shape)")


def _heads(km: KerasModelFile) -> list[_Head]:
    """Trace the output heads: each output is ``Concatenate(box Dense, [Lambda] offset Dense)``.

    Parameters
    ----------
    km : KerasModelFile
        The open file.

    Returns
    -------
    list of _Head
        In output order.

    Raises
    ------
    InputError
        No outputs, or an output that is not such a concatenation of Dense layers.
    """
    if not km.outputs:
        raise _graph_error(km, "model_config has no output_layers")
    heads: list[_Head] = []
    for out in km.outputs:
        if km.class_name(out) != "Concatenate":
            raise _graph_error(
                km, f"output {out!r} is a {km.class_name(out)}, expected Concatenate(box, offset)"
            )
        srcs = km.inbound(out)
        if len(srcs) != 2:
            raise _graph_error(km, f"output {out!r} concatenates {len(srcs)} tensors, expected 2")
        box, off = srcs
        lam = None
        if km.class_name(off) == "Lambda":
            lam = off
            (off,) = km.inbound(off)
        if km.class_name(box) != "Dense" or km.class_name(off) != "Dense":
            raise _graph_error(km, f"output {out!r}: box/offset branches must be Dense layers")
        heads.append(_Head(box=box, offset=off, rescale=lam))
    return heads


def _check_head_activations(km: KerasModelFile, heads: list[_Head]) -> None:
    """Raise :class:`InputError` unless every head Dense layer is a sigmoid.

    Parameters
    ----------
    km : KerasModelFile
        The open file.
    heads : list of _Head
        From :func:`_heads`.
    """
    for h in heads:
        for d in (h.box, h.offset):
            activation = km.layer_config(d).get("activation")
            if activation != "sigmoid":
                raise _graph_error(
                    km, f"head layer {d!r} has activation {activation!r}, expected sigmoid"
                )


def _offset_rescale(km: KerasModelFile, heads: list[_Head]) -> tuple[bool, float, float]:
    """Whether the offsets are rescaled, and the (shift, scale) of the rescale Lambda.

    Parameters
    ----------
    km : KerasModelFile
        The open file.
    heads : list of _Head
        From :func:`_heads`.

    Returns
    -------
    rescale : bool
    shift, scale : float
        Read from the Lambda bodies when found (and identical), else
        :data:`DEFAULT_OFFSET_RESCALE` (with a warning).

    Raises
    ------
    InputError
        Only some heads have the rescale Lambda.
    """
    present = {h.rescale is not None for h in heads}
    if len(present) != 1:
        raise _graph_error(km, "some heads have the offset rescale Lambda and others not")
    rescale = present.pop()
    shift, scale = DEFAULT_OFFSET_RESCALE
    if rescale:
        consts = {lambda_constants(km.layers[h.rescale]) for h in heads if h.rescale}
        found = {c for c in consts if c is not None}
        if len(found) == 1 and None not in consts:
            shift, scale = found.pop()
        else:
            log.warning(
                "%s: offset Lambda constants not readable; using %s",
                km.path,
                DEFAULT_OFFSET_RESCALE,
            )
    return rescale, shift, scale


def _trunk_dense(km: KerasModelFile, heads: list[_Head]) -> str:
    """``fc_common``: the one Dense fed (through Flatten) by the conv stack, feeding the heads.

    Parameters
    ----------
    km : KerasModelFile
        The open file.
    heads : list of _Head
        From :func:`_heads`.

    Returns
    -------
    str
        Layer name.

    Raises
    ------
    InputError
        Not exactly one such layer.
    """
    in_heads = {n for h in heads for n in (h.box, h.offset)}
    trunk = [n for n in km.layers_of_class("Dense") if n not in in_heads]
    if len(trunk) != 1:
        raise _graph_error(km, f"expected one shared Dense layer before the heads, found {trunk}")
    return trunk[0]


def _batch_norm_after(km: KerasModelFile, layer: str) -> str:
    """The one BatchNormalization consuming ``layer``.

    Parameters
    ----------
    km : KerasModelFile
        The open file.
    layer : str
        A Conv1D or Dense layer.

    Returns
    -------
    str
        The BatchNormalization layer's name.

    Raises
    ------
    InputError
        None or several BatchNormalizations follow ``layer``.
    """
    bns = [c for c in km.consumers(layer) if km.class_name(c) == "BatchNormalization"]
    if len(bns) != 1:
        raise _graph_error(km, f"layer {layer!r} is not followed by exactly one BatchNormalization")
    return bns[0]


def _network_config(
    km: KerasModelFile,
    convs: list[str],
    hyper: dict[str, Any],
    heads: list[_Head],
    fc: str,
    **fixed: Any,
) -> tuple[QuasarNetConfig, list[str]]:
    """The :class:`QuasarNetConfig` of the graph and its BatchNorm layers.

    Parameters
    ----------
    km : KerasModelFile
        The open file.
    convs : list of str
        Conv1D layers (:func:`_conv_stack`).
    hyper : dict
        Their shared hyperparameters.
    heads : list of _Head
        Output heads (:func:`_heads`).
    fc : str
        The shared Dense layer (:func:`_trunk_dense`).
    **fixed
        Fields found before: ``n_input``, ``dropout``, ``offset_rescale``, ``offset_shift``,
        ``offset_scale``.

    Returns
    -------
    config : QuasarNetConfig
    bn_layers : list of str
        The BatchNorm after each conv, then the one after ``fc``.

    Raises
    ------
    InputError
        Heads with different box counts or BatchNorms with different epsilons.
    """
    n_boxes = {int(km.layer_config(d)["units"]) for h in heads for d in (h.box, h.offset)}
    if len(n_boxes) != 1:
        raise _graph_error(km, f"heads have different numbers of boxes {n_boxes}")
    bn_layers = [_batch_norm_after(km, c) for c in convs] + [_batch_norm_after(km, fc)]
    eps = {float(km.layer_config(b).get("epsilon", 1e-3)) for b in bn_layers}
    mom = {float(km.layer_config(b).get("momentum", 0.99)) for b in bn_layers}
    if len(eps) != 1:
        raise _graph_error(km, f"BatchNorm epsilons differ {eps}")
    n_heads = len(heads)
    n_bal = 1 if n_heads > 1 else 0
    config = QuasarNetConfig(
        n_layers=len(convs),
        n_filters=hyper["n_filters"],
        kernel_size=hyper["kernel_size"],
        stride=hyper["stride"],
        padding=hyper["padding"],
        n_fc=int(km.layer_config(fc)["units"]),
        n_boxes=n_boxes.pop(),
        n_lines=n_heads - n_bal,
        n_bal=n_bal,
        bn_eps=eps.pop(),
        bn_momentum=mom.pop() if len(mom) == 1 else 0.99,
        **fixed,
    )
    return config, bn_layers


def _state_dict(
    km: KerasModelFile,
    config: QuasarNetConfig,
    convs: list[str],
    bn_layers: list[str],
    fc: str,
    heads: list[_Head],
) -> tuple[dict[str, NDArray[Any]], dict[str, str]]:
    """The surveynet ``state_dict`` (torch layout, float32) and the tensor -> layer map.

    Parameters
    ----------
    km : KerasModelFile
        The open file.
    config : QuasarNetConfig
        From :func:`_network_config`.
    convs, bn_layers : list of str
        Conv1D and BatchNorm layers.
    fc : str
        The shared Dense layer.
    heads : list of _Head
        Output heads.

    Returns
    -------
    tensors : dict of str to ndarray
    layer_map : dict of str to str
        surveynet tensor prefix -> Keras layer name.
    """
    tensors: dict[str, NDArray[Any]] = {}
    layer_map: dict[str, str] = {}

    def put_bn(prefix: str, name: str) -> None:
        """Store a BatchNorm: gamma, beta (1 and 0 if not trained), running mean and variance.

        Parameters
        ----------
        prefix : str
            surveynet tensor prefix (``bns.{i}`` or ``bn_fc``).
        name : str
            Keras layer name.
        """
        w = km.weights(name)
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
        """Store a Dense layer: kernel (in, out) -> weight (out, in), bias (0 if absent).

        Parameters
        ----------
        prefix : str
            surveynet tensor prefix.
        name : str
            Keras layer name.
        """
        w = km.weights(name)
        tensors[f"{prefix}.weight"] = np.ascontiguousarray(
            np.asarray(w["kernel"], dtype=np.float32).T
        )
        tensors[f"{prefix}.bias"] = np.asarray(
            w.get("bias", np.zeros(w["kernel"].shape[1])), dtype=np.float32
        )
        layer_map[prefix] = name

    for i, c in enumerate(convs):
        w = km.weights(c)
        k = np.asarray(w["kernel"], dtype=np.float32)  # (K, C_in, C_out)
        tensors[f"convs.{i}.weight"] = np.ascontiguousarray(np.transpose(k, (2, 1, 0)))
        tensors[f"convs.{i}.bias"] = np.asarray(
            w.get("bias", np.zeros(k.shape[2])), dtype=np.float32
        )
        layer_map[f"convs.{i}"] = c
        put_bn(f"bns.{i}", bn_layers[i])
    put_dense("fc_common", fc)
    put_bn("bn_fc", bn_layers[-1])
    for h, head in enumerate(heads):
        put_dense(f"box.{h}", head.box)
        put_dense(f"offset.{h}", head.offset)
    return tensors, layer_map


def _input_grid(km: KerasModelFile, config: QuasarNetConfig) -> GridConfig:
    """The input grid: the root ``model_grid`` dataset if present, else the 443-bin log grid.

    Parameters
    ----------
    km : KerasModelFile
        The open file.
    config : QuasarNetConfig
        For the input length.

    Returns
    -------
    GridConfig

    Raises
    ------
    InputError
        ``grid_spacing`` disagreeing with ``model_grid``, or a grid whose size is not the input
        length.
    """
    grid = GridConfig.log()
    wave = km.dataset("model_grid")
    if wave is not None:
        grid = GridConfig.from_wave(wave)
        spacing = km.root_attr("grid_spacing")
        if (
            spacing is not None
            and {"linear": "linear", "logarithmic": "log"}.get(str(spacing)) != grid.kind
        ):
            raise InputError(
                f"grid_spacing {spacing!r} disagrees with model_grid",
                path=km.path,
                hdu="model_grid",
            )
    if grid.n_bins != config.n_input:
        raise _graph_error(
            km, f"input length {config.n_input} does not match the grid ({grid.n_bins} bins)"
        )
    return grid


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
        whose shapes disagree with the config (the message names the file and layer).
    """
    with open_keras_model(path) as km:
        convs, hyper = _conv_stack(km)
        n_input = _input_length(km)
        rates = [float(km.layer_config(n).get("rate", 0.0)) for n in km.layers_of_class("Dropout")]
        heads = _heads(km)
        rescale, shift, scale = _offset_rescale(km, heads)
        _check_head_activations(km, heads)
        fc = _trunk_dense(km, heads)
        config, bn_layers = _network_config(
            km,
            convs,
            hyper,
            heads,
            fc,
            n_input=n_input,
            dropout=max(rates) if rates else 0.0,
            offset_rescale=rescale,
            offset_shift=shift,
            offset_scale=scale,
        )
        tensors, layer_map = _state_dict(km, config, convs, bn_layers, fc, heads)
        grid = _input_grid(km, config)
        keras_version = km.keras_version
    try:
        check_state_dict(tensors, config)
    except ModelFormatError as exc:
        raise InputError(f"weights do not match model_config: {exc}", path=Path(path)) from exc
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

    Raises
    ------
    InputError
        An unreadable file (:func:`read_keras_quasarnet`) or a line mapping whose length is not
        the number of heads.
    """
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
    return save_model(
        outdir,
        k.tensors,
        pipeline="quasar",
        architecture="quasarnet",
        config=k.config,
        preprocessing=preprocessing_metadata(from_dict(GridConfig, k.grid), lc),
        label_names=list(lc.lines) + [f"{n}_BAL" for n in lc.lines_bal],
        source=source_record(path, keras_version=k.keras_version, layer_map=k.layer_map),
        name=name,
        overwrite=overwrite,
    )
