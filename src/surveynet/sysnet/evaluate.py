"""``sysnet evaluate``: diagnostics of a trained run in one HTML report with PNGs.

For every method present in the run folder (``nn``, ``linear``, ``forest``; plus ``oracle``, the
true F_true, on mocks, and ``none``):

- Mollweide maps of the observed density, the NN prediction and the NN weights;
- loss curves (training and validation minus the baseline, per partition);
- mean density against every systematic (equal-count bins) before and after correction, with a
  chi2 table (Poisson-like errors from the pixel scatter in each bin, no covariance):
  n(s)/<n> = (sum n_i / F_i) / (sum f_i) / (sum n / sum f F);
- the angular power spectrum of delta_i = n_i / (f_i nbar F_i) - 1 (footprint pseudo-C_ell over
  f_sky, shot noise subtracted) against the mock's true spectrum ``CL_DELTA_FOOT``.

Figures and ``metrics.json`` go to the report folder with ``report.html``.
"""

from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from surveynet.errors import InputError
from surveynet.sysnet.data import SysnetData

log = logging.getLogger(__name__)


def mean_density(
    label: NDArray[np.float64],
    fracgood: NDArray[np.float64],
    sel: NDArray[np.float64],
    features: NDArray[np.float64],
    nbins: int = 10,
) -> dict[str, NDArray[np.float64]]:
    """Mean density against each feature, corrected by the selection ``sel`` (1: none).

    Returns
    -------
    dict
        ``x``, ``y``, ``err`` of shape (k, nbins) and ``chi2`` of shape (k,).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4000, 1))
    >>> n = rng.poisson(100, 4000).astype(float)
    >>> d = mean_density(n, np.ones(4000), np.ones(4000), x, 4)
    >>> bool(np.all(np.abs(d["y"] - 1) < 0.02))
    True
    """
    corr = label / sel
    nhat = np.sum(corr) / np.sum(fracgood)
    k = features.shape[1]
    xs, ys, es = np.zeros((k, nbins)), np.zeros((k, nbins)), np.zeros((k, nbins))
    chi = np.zeros(k)
    for j in range(k):
        edges = np.quantile(features[:, j], np.linspace(0, 1, nbins + 1))
        b = np.clip(np.searchsorted(edges, features[:, j], side="right") - 1, 0, nbins - 1)
        for i in range(nbins):
            m = b == i
            if not np.any(m):
                xs[j, i], ys[j, i], es[j, i] = np.nan, np.nan, np.inf
                continue
            xs[j, i] = np.mean(features[m, j])
            ys[j, i] = np.sum(corr[m]) / np.sum(fracgood[m]) / nhat
            dens = label[m] / fracgood[m] / nhat
            es[j, i] = np.std(dens) / np.sqrt(max(m.sum() - 1, 1))
        ok = np.isfinite(ys[j])
        chi[j] = float(np.sum(((ys[j, ok] - 1) / es[j, ok]) ** 2))
    return {"x": xs, "y": ys, "err": es, "chi2": chi}


def delta_cl(
    label: NDArray[np.float64],
    fracgood: NDArray[np.float64],
    sel: NDArray[np.float64],
    hpix_ring: NDArray[np.int64],
    nside: int,
    lmax: int | None = None,
) -> NDArray[np.float64]:
    """Pseudo-C_ell of delta = n / (f nbar F) - 1 over the footprint, / f_sky, minus shot noise."""
    import healpy as hp

    npix = hp.nside2npix(nside)
    nbar = np.sum(label) / np.sum(fracgood * sel)
    delta = label / (fracgood * nbar * sel) - 1.0
    m = np.zeros(npix)
    m[hpix_ring] = delta
    fsky = len(hpix_ring) / npix
    cl = hp.anafast(m, lmax=lmax if lmax is not None else 3 * nside - 1) / fsky
    shot = 4 * np.pi / npix * np.mean(1.0 / (nbar * fracgood * sel))
    return np.asarray(cl - shot)


def _selection(pred: NDArray[np.float64], how: str = "mean") -> NDArray[np.float64]:
    """Chain-combined prediction normalised to mean 1."""
    from surveynet.sysnet.postprocess import combine_chains

    y = combine_chains(pred, how)
    return y / np.mean(y)


def evaluate_run(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Diagnostics of a ``sysnet train`` folder; writes ``report.html``, PNGs, ``metrics.json``.

    Parameters
    ----------
    run_dir : path
        Output folder of ``sysnet train``.
    out : path
        Report folder.
    overwrite : bool
        Replace an existing report.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    import matplotlib.pyplot as plt

    from surveynet.config import from_dict
    from surveynet.io.fits import atomic_path
    from surveynet.sysnet.catalog import read_predictions
    from surveynet.sysnet.config import SysnetConfig
    from surveynet.sysnet.data import read_input
    from surveynet.sysnet.plots import plot_cl, plot_losses, plot_maps, plot_mean_density

    rd, od = Path(run_dir), Path(out)
    if (od / "report.html").exists() and not overwrite:
        raise FileExistsError(f"{od / 'report.html'} exists; pass --overwrite to replace it")
    cfg_file = rd / "config.json"
    if not cfg_file.is_file():
        raise InputError("not a sysnet train folder (no config.json)", path=rd)
    config = from_dict(SysnetConfig, json.loads(cfg_file.read_text()))
    dc = config.data
    data: SysnetData = read_input(
        dc.input_path, dc.label_path, ordering=dc.ordering, nside=dc.nside
    )
    od.mkdir(parents=True, exist_ok=True)
    preds: dict[str, NDArray[np.float64]] = {}
    rows_common: NDArray[np.int64] | None = None
    index = {int(h): i for i, h in enumerate(data.hpix)}
    for method in ("nn", "linear", "forest"):
        f = rd / f"{method}-weights.fits" if method != "nn" else rd / "nn-weights.fits"
        if not f.is_file():
            continue
        hp_, w, _ = read_predictions(f)
        rows = np.array([index[int(h)] for h in hp_], dtype=np.int64)
        full = np.full((data.n, w.shape[1]), np.nan)
        full[rows] = w
        preds[method] = full
        rows_common = rows if rows_common is None else np.intersect1d(rows_common, rows)
    if not preds or rows_common is None:
        raise InputError("no predictions (nn-weights.fits) in the run folder", path=rd)
    rows = np.sort(rows_common)
    lab, fg, feats = data.label[rows], data.fracgood[rows], data.features[rows]
    sels: dict[str, NDArray[np.float64]] = {"none": np.ones(len(rows))}
    for m, p in preds.items():
        sels[m] = _selection(p[rows], config.weights.combine)
    if "F_TRUE" in data.truth:
        ft = dict(zip(data.truth["HPIX"].tolist(), data.truth["F_TRUE"].tolist(), strict=True))
        tsel = np.array([ft[int(h)] for h in data.hpix[rows]])
        sels["oracle"] = tsel / np.mean(tsel)
    images: list[str] = []
    metrics: dict[str, Any] = {"n_pixels": len(rows), "methods": list(sels)}

    ring = data.ring_hpix()[rows]
    nhat = np.sum(lab) / np.sum(fg)
    wts = 1.0 / np.clip(sels["nn"], config.weights.clip_min, config.weights.clip_max)
    fig = plot_maps(
        {
            "observed density n/(f <n>)": lab / fg / nhat,
            "NN selection": sels["nn"],
            "NN weight": wts,
        },
        data.nside,
        ring,
    )
    fig.savefig(od / "maps.png", dpi=80)
    images.append("maps.png")

    mfile = rd / "metrics.npz"
    if mfile.is_file():
        with np.load(mfile, allow_pickle=False) as z:
            fig = plot_losses(z["train_loss"], z["valid_loss"], z["base_losses"])
            metrics["nn_test_loss"] = float(np.mean(z["test_loss"]))
            metrics["baseline_test_loss"] = float(np.mean(z["base_losses"][:, 2]))
            for b in ("linear", "forest"):
                if f"{b}_test_loss" in z:
                    metrics[f"{b}_test_loss"] = float(z[f"{b}_test_loss"])
        fig.savefig(od / "losses.png", dpi=80)
        images.append("losses.png")

    curves = {m: mean_density(lab, fg, s, feats, config.evaluate.nbins) for m, s in sels.items()}
    metrics["chi2"] = {m: float(c["chi2"].sum()) for m, c in curves.items()}
    metrics["chi2_per_map"] = {m: c["chi2"].tolist() for m, c in curves.items()}
    metrics["chi2_dof"] = int(feats.shape[1] * config.evaluate.nbins)
    fig = plot_mean_density(curves, data.feature_names)
    fig.savefig(od / "mean_density.png", dpi=80)
    images.append("mean_density.png")

    lmax = config.evaluate.lmax
    spectra = {m: delta_cl(lab, fg, s, ring, data.nside, lmax) for m, s in sels.items()}
    ell = np.arange(len(next(iter(spectra.values()))))
    if "CL_DELTA_FOOT" in data.cl_truth:
        spectra["truth"] = np.asarray(data.cl_truth["CL_DELTA_FOOT"])[: len(ell)]
        tr = spectra["truth"]
        lo = (ell >= 2) & (ell < min(100, len(ell)))
        metrics["cl_ratio_l_lt_100"] = {
            m: float(np.mean(spectra[m][lo]) / np.mean(tr[lo])) for m in sels
        }
    fig = plot_cl(ell, spectra)
    fig.savefig(od / "cl.png", dpi=80)
    images.append("cl.png")
    plt.close("all")

    with atomic_path(od / "metrics.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1) + "\n")
    write_report(od / "report.html", metrics, images, rd)
    return metrics


def write_report(path: Path, metrics: dict[str, Any], images: list[str], run_dir: Path) -> None:
    """The HTML page: chi2 table, losses, C_ell ratios and the figures."""
    from surveynet.io.fits import atomic_path

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>sysnet report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd}img{max-width:100%}</style>",
        "</head><body>",
        f"<h1>sysnet report: {html.escape(str(run_dir))}</h1>",
        f"<p>{metrics['n_pixels']} pixels evaluated.</p>",
        "<h2>Mean density chi2 (sum over maps x bins; Poisson-like errors)</h2>",
        f"<table><tr><th>method</th><th>chi2</th><th>chi2 / {metrics['chi2_dof']} bins</th>"
        "<th>C_ell / truth, ell &lt; 100</th></tr>",
    ]
    ratios = metrics.get("cl_ratio_l_lt_100", {})
    for m, c in metrics["chi2"].items():
        r = ratios.get(m)
        parts.append(
            f"<tr><td>{html.escape(m)}</td><td>{c:.1f}</td>"
            f"<td>{c / metrics['chi2_dof']:.3f}</td>"
            f"<td>{'' if r is None else f'{r:.3f}'}</td></tr>"
        )
    parts.append("</table>")
    losses = {k: v for k, v in metrics.items() if k.endswith("_test_loss")}
    if losses:
        parts.append("<h2>Test loss</h2><table>")
        parts.extend(
            f"<tr><td>{html.escape(k)}</td><td>{v:.6f}</td></tr>" for k, v in losses.items()
        )
        parts.append("</table>")
    for im in images:
        parts.append(f"<h3>{html.escape(im)}</h3><p><img src='{html.escape(im)}'></p>")
    parts.append("</body></html>")
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text("\n".join(parts))
