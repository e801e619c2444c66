"""QuasarNET post-processing: line confidences and redshifts from the box/offset outputs.

For head ``i`` (spec quasarnet.md §4.1; ngbusca/QuasarNET:py/quasarnet/io.py ``process_preds``):
``j = argmax(box)``, ``c_line = max(box)``, fractional grid index
``idx = (j + offset_j) * N / n_boxes`` with ``N`` the number of grid bins; ``lam_obs`` is the grid
wavelength at ``idx`` (linear interpolation in index space) and
``z_line = lam_obs / lam_rest - 1``. ``zbest`` is the ``z_line`` of the most confident emission
line; BAL heads give ``c_line_bal`` and ``z_line_bal`` the same way. At the grid ends (rescaled
offsets reach idx -3.4 ... 446.4) QuasarNET extrapolates linearly (scipy ``interp1d(...,
fill_value="extrapolate")``) while QuasarNP clamps (``np.interp``): extrapolation is the default
here, clamping an option.

All arrays are **spectrum-first**: ``c_line`` has shape (n_spec, n_lines) (QuasarNET returns the
transpose). Network outputs are (n_spec, n_heads, 2 * n_boxes), as returned by
:class:`surveynet.quasar.engine.NumpyQuasarNet` and :class:`surveynet.quasar.model.QuasarNetTorch`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from surveynet.quasar.config import PredictConfig
from surveynet.quasar.lines import DEFAULT_LINES, DEFAULT_LINES_BAL, line_label, rest_wavelengths


@dataclass
class QNResult:
    """Post-processed QuasarNET outputs of ``n_spec`` spectra.

    Attributes
    ----------
    c_line : ndarray of shape (n_spec, n_lines)
        Confidence of each emission line (max box probability).
    z_line : ndarray of shape (n_spec, n_lines)
        Redshift of each emission line.
    zbest : ndarray of shape (n_spec,)
        ``z_line`` of the most confident emission line.
    c_line_bal : ndarray of shape (n_spec, n_bal)
        Confidence of each BAL head.
    z_line_bal : ndarray of shape (n_spec, n_bal)
        Redshift of each BAL head.
    lines, lines_bal : tuple of str
        Line names of the columns.
    """

    c_line: NDArray[np.float64]
    z_line: NDArray[np.float64]
    zbest: NDArray[np.float64]
    c_line_bal: NDArray[np.float64]
    z_line_bal: NDArray[np.float64]
    lines: tuple[str, ...]
    lines_bal: tuple[str, ...]

    @property
    def n_spec(self) -> int:
        """Number of spectra."""
        return int(self.zbest.size)

    @property
    def best_line(self) -> NDArray[np.int64]:
        """Index (into ``lines``) of the most confident line, shape (n_spec,)."""
        if self.n_spec == 0:
            return np.zeros(0, dtype=np.int64)
        return np.argmax(self.c_line, axis=1).astype(np.int64)

    def is_qso(
        self, c_th: float = PredictConfig.c_th, n_th: int = PredictConfig.n_th
    ) -> NDArray[np.bool_]:
        """Return ``IS_QSO``: at least ``n_th`` lines with ``c_line > c_th``.

        Parameters
        ----------
        c_th : float
            Confidence threshold (``predict.c_th``).
        n_th : int
            Number of lines required (``predict.n_th``).

        Returns
        -------
        ndarray of bool, shape (n_spec,)
            ``IS_QSO``.
        """
        return is_qso(self.c_line, c_th=c_th, n_th=n_th)

    def is_bal(self, c_th: float = PredictConfig.c_th) -> NDArray[np.bool_]:
        """Return ``IS_BAL`` (``qn_export``): any BAL head with ``c_line_bal > c_th``.

        Parameters
        ----------
        c_th : float
            Confidence threshold (``predict.c_th``).

        Returns
        -------
        ndarray of bool, shape (n_spec,)
            ``IS_BAL``.
        """
        if self.c_line_bal.shape[1] == 0:
            return np.zeros(self.n_spec, dtype=bool)
        return np.asarray((self.c_line_bal > c_th).any(axis=1))

    def columns(self) -> dict[str, NDArray[Any]]:
        """Catalogue-style columns.

        ``C_<LINE>``, ``Z_<LINE>`` per line, ``C_<LINE>_BAL``, ``Z_<LINE>_BAL``, ``ZBEST`` and
        the 2-D ``C_LINES``, ``Z_LINES``, ``C_BAL``, ``Z_BAL``.

        Line labels come from :func:`surveynet.quasar.lines.line_label` (``CIV(1548)`` -> ``CIV``).
        """
        out: dict[str, NDArray[Any]] = {}
        for k, name in enumerate(self.lines):
            lab = line_label(name)
            out[f"C_{lab}"] = self.c_line[:, k]
            out[f"Z_{lab}"] = self.z_line[:, k]
        for k, name in enumerate(self.lines_bal):
            lab = line_label(name, bal=True)
            out[f"C_{lab}"] = self.c_line_bal[:, k]
            out[f"Z_{lab}"] = self.z_line_bal[:, k]
        out["ZBEST"] = self.zbest
        out["C_LINES"] = self.c_line
        out["Z_LINES"] = self.z_line
        out["C_BAL"] = self.c_line_bal
        out["Z_BAL"] = self.z_line_bal
        return out


def index_to_wave(
    idx: NDArray[Any],
    grid_wave: NDArray[Any],
    *,
    edge: Literal["extrapolate", "clamp"] = PredictConfig.edge,
) -> NDArray[np.float64]:
    """Wavelength at a fractional grid index, interpolating linearly between grid values.

    Parameters
    ----------
    idx : ndarray
        Fractional index into ``grid_wave`` (may lie outside ``[0, N - 1]``).
    grid_wave : ndarray of shape (N,)
        Grid wavelengths (lower bin edges).
    edge : {"extrapolate", "clamp"}
        Outside the grid: continue the first/last segment linearly (QuasarNET) or return the end
        values (QuasarNP).

    Returns
    -------
    ndarray of the shape of ``idx``

    Examples
    --------
    >>> w = np.array([10.0, 20.0, 40.0])
    >>> index_to_wave(np.array([0.5, 1.5, 2.5, -1.0]), w).tolist()
    [15.0, 30.0, 50.0, 0.0]
    >>> index_to_wave(np.array([2.5, -1.0]), w, edge="clamp").tolist()
    [40.0, 10.0]
    """
    w = np.asarray(grid_wave, dtype=np.float64)
    t = np.asarray(idx, dtype=np.float64)
    n = w.size
    if n < 2:
        raise ValueError("grid_wave needs at least 2 values")
    if edge == "clamp":
        return np.asarray(np.interp(t, np.arange(n, dtype=np.float64), w))
    if edge != "extrapolate":
        raise ValueError(f"edge must be 'extrapolate' or 'clamp', got {edge!r}")
    i0 = np.clip(np.floor(t).astype(np.int64), 0, n - 2)
    frac = t - i0
    return np.asarray(w[i0] + frac * (w[i0 + 1] - w[i0]))


def process_preds(
    preds: NDArray[Any],
    grid_wave: NDArray[Any],
    *,
    lines: tuple[str, ...] | list[str] = DEFAULT_LINES,
    lines_bal: tuple[str, ...] | list[str] = DEFAULT_LINES_BAL,
    n_boxes: int | None = None,
    edge: Literal["extrapolate", "clamp"] = PredictConfig.edge,
) -> QNResult:
    """Line confidences and redshifts from raw network outputs.

    Parameters
    ----------
    preds : ndarray of shape (n_spec, n_heads, 2 * n_boxes)
        Network outputs: per head ``n_boxes`` box probabilities then ``n_boxes`` offsets (already
        rescaled). ``n_heads = len(lines) + len(lines_bal)``, emission lines first.
    grid_wave : ndarray of shape (N,)
        Model grid (lower bin edges), e.g. ``GridConfig.wave()``.
    lines, lines_bal : sequence of str
        Head names (keys of :data:`surveynet.quasar.lines.ABSORBER_IGM`).
    n_boxes : int, optional
        Boxes per head (from the model config); checked against ``preds``. Default: half the
        last axis.
    edge : {"extrapolate", "clamp"}
        Treatment of redshifts beyond the grid ends (see :func:`index_to_wave`).

    Returns
    -------
    QNResult

    Raises
    ------
    ValueError
        Mis-shaped ``preds`` or a head/line-count mismatch.
    """
    p = np.asarray(preds, dtype=np.float64)
    lines, lines_bal = tuple(lines), tuple(lines_bal)
    if p.ndim != 3:
        raise ValueError(f"preds must have shape (n_spec, n_heads, 2*n_boxes), got {p.shape}")
    nb = p.shape[2] // 2 if n_boxes is None else int(n_boxes)
    if p.shape[2] != 2 * nb:
        raise ValueError(f"preds last axis is {p.shape[2]}, expected 2 * n_boxes = {2 * nb}")
    n_heads = len(lines) + len(lines_bal)
    if p.shape[1] != n_heads:
        raise ValueError(f"preds has {p.shape[1]} heads; lines + lines_bal name {n_heads}")
    w = np.asarray(grid_wave, dtype=np.float64)
    n_spec = p.shape[0]

    box = p[:, :, :nb]
    j = np.argmax(box, axis=2)  # (n_spec, n_heads)
    c = np.take_along_axis(box, j[:, :, None], axis=2)[:, :, 0]
    off = np.take_along_axis(p[:, :, nb:], j[:, :, None], axis=2)[:, :, 0]
    idx = (j + off) * (w.size / nb)
    lam = index_to_wave(idx, w, edge=edge)
    rest = np.asarray(rest_wavelengths(lines) + rest_wavelengths(lines_bal), dtype=np.float64)
    z = lam / rest[None, :] - 1.0

    nl = len(lines)
    c_line, z_line = c[:, :nl], z[:, :nl]
    if n_spec:
        zbest = z_line[np.arange(n_spec), np.argmax(c_line, axis=1)]
    else:
        zbest = np.zeros(0)
    return QNResult(
        c_line=np.ascontiguousarray(c_line),
        z_line=np.ascontiguousarray(z_line),
        zbest=np.asarray(zbest, dtype=np.float64),
        c_line_bal=np.ascontiguousarray(c[:, nl:]),
        z_line_bal=np.ascontiguousarray(z[:, nl:]),
        lines=lines,
        lines_bal=lines_bal,
    )


def is_qso(
    c_line: NDArray[Any], *, c_th: float = PredictConfig.c_th, n_th: int = PredictConfig.n_th
) -> NDArray[np.bool_]:
    """Classify as QuasarNET does: ``sum(c_line > c_th) >= n_th`` per spectrum.

    Parameters
    ----------
    c_line : ndarray of shape (n_spec, n_lines)
        Line confidences.
    c_th : float
        Confidence threshold (``predict.c_th``).
    n_th : int
        Number of lines required (``predict.n_th``).

    Returns
    -------
    ndarray of shape (n_spec,), bool
        ``IS_QSO``.

    Raises
    ------
    ValueError
        ``c_line`` is not 2-D.

    Examples
    --------
    >>> is_qso(np.array([[0.9, 0.1], [0.2, 0.3]]), c_th=0.5, n_th=1).tolist()
    [True, False]
    """
    c = np.asarray(c_line, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"c_line must have shape (n_spec, n_lines), got {c.shape}")
    return np.asarray((c > c_th).sum(axis=1) >= n_th)
