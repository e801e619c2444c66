"""Numpy inference engine for the sysnet models (torch layout and sysnetdev key names, float64).

``build(tensors, config)`` returns a callable ``f(x) -> y_hat`` on normalised features
(n, k); :func:`predict_saved` applies a saved model directory's normaliser first, so inference
needs only the features (no ``label`` or ``fracgood``, unlike sysnetdev ``TrainedModel``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import ModelFormatError

BN_EPS = 1e-5


def _softplus(x: NDArray[np.float64]) -> NDArray[np.float64]:
    # torch softplus (beta 1, threshold 20)
    """Torch's softplus (beta 1, threshold 20) in float64."""
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def _head(x: NDArray[np.float64], model: str) -> NDArray[np.float64]:
    """Output head: identity, softplus or exp."""
    if model in ("dnnp", "linp"):
        return _softplus(x)
    if model == "dnnps":
        return np.exp(x)
    return x


def build(
    tensors: dict[str, NDArray[Any]], config: dict[str, Any] | None = None, **options: Any
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """A numpy forward function of one sysnet model: ``(tensors, config, **options)``.

    Parameters
    ----------
    tensors : dict
        ``state_dict`` arrays (``fc.<i>.*``, ``bn.<i>.*`` or ``hl1.*``).
    config : dict, optional
        Architecture config: ``model`` (head name, default ``"dnnp"``); the layer sizes
        (``input_dim``, ``nn_structure``) follow from the tensors.
    **options
        ``dtype`` is accepted for the registry's signature; the engine computes in float64.

    Returns
    -------
    callable
        ``f(x)`` with ``x`` of shape (n, k) -> y_hat of shape (n,).
    """
    model = str((config or {}).get("model", "dnnp"))
    t = {k: np.asarray(v, dtype=np.float64) for k, v in tensors.items()}
    if model in ("lin", "linp"):
        if "hl1.weight" not in t:
            raise ModelFormatError(f"{model}: missing tensor hl1.weight")

        def lin(x: NDArray[np.float64]) -> NDArray[np.float64]:
            """Forward pass of lin/linp, y_hat of shape (n,)."""
            return _head(np.asarray(x, np.float64) @ t["hl1.weight"].T + t["hl1.bias"], model)[:, 0]

        return lin
    n_fc = len([k for k in t if k.startswith("fc.") and k.endswith(".weight")])
    if n_fc < 2:
        raise ModelFormatError(f"{model}: expected fc.<i> layers, got {sorted(t)}")

    def dnn(x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Forward pass of the DNN family, y_hat of shape (n,)."""
        h = np.asarray(x, np.float64)
        for i in range(n_fc - 1):
            h = np.maximum(h @ t[f"fc.{i}.weight"].T + t[f"fc.{i}.bias"], 0.0)
            h = (h - t[f"bn.{i}.running_mean"]) / np.sqrt(t[f"bn.{i}.running_var"] + BN_EPS)
            h = h * t[f"bn.{i}.weight"] + t[f"bn.{i}.bias"]
        out = h @ t[f"fc.{n_fc - 1}.weight"].T + t[f"fc.{n_fc - 1}.bias"]
        return _head(out, model)[:, 0]

    return dnn


def predict_saved(
    model_dir: str | os.PathLike[str], features: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Predict y_hat with a saved sysnet model directory (its normaliser applied first).

    Parameters
    ----------
    model_dir : path
        A directory written by ``sysnet train`` (``model.safetensors`` + ``config.json``).
    features : ndarray of shape (n, k)
        Raw features in the model's column order (``preprocessing.feature_names``).

    Returns
    -------
    ndarray of shape (n,)
    """
    from surveynet.io.model import load_model

    saved = load_model(model_dir, pipeline="sysnet")
    pre = saved.preprocessing
    loc = np.asarray(pre["loc"], np.float64)
    scale = np.asarray(pre["scale"], np.float64)
    if features.shape[1] != len(loc):
        raise ModelFormatError(
            f"{model_dir}: model expects {len(loc)} features, got {features.shape[1]}"
        )
    fn = build(saved.tensors, saved.config)
    return fn((features - loc) / scale)
