"""Plot helpers. Plot functions take ``ax=None`` and return a matplotlib ``Figure``."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def new_axes(ax: Any = None, figsize: tuple[float, float] = (6.0, 4.0)) -> tuple[Any, Any]:
    """Return ``(fig, ax)``: a new figure (Agg, no display needed) or ``ax``'s own figure."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Save a figure as PNG (atomic rename) and return the path."""
    from surveynet.io.fits import atomic_path

    p = Path(path)
    with atomic_path(p, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=dpi, format=p.suffix.lstrip(".") or "png")
    return p
