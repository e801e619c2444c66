"""Small torch helpers shared by the pipelines (imports torch: training and tests only)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray


def torch_forward(model: torch.nn.Module, x: NDArray[Any]) -> NDArray[np.float64]:
    """Run ``model`` in eval mode on a numpy batch, without gradients.

    Parameters
    ----------
    model : torch.nn.Module
        The network (its float32 parameters).
    x : ndarray
        Inputs, converted to float32 tensors.

    Returns
    -------
    ndarray of float64
        The outputs.

    Examples
    --------
    >>> lin = torch.nn.Linear(2, 1)
    >>> torch_forward(lin, np.zeros((4, 2))).shape
    (4, 1)
    """
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return np.asarray(out.detach().cpu().numpy(), dtype=np.float64)
