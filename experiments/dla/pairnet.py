"""Trial (issue 23 points 3 and 4): a heat-map finder plus a candidate verifier.

    python experiments/dla/pairnet.py data OUT.npz MOCKDIR [MOCKDIR ...] [--seed 1]
    python experiments/dla/pairnet.py train DATA.npz HEAT.st [--epochs 8] [--seed 1]
    python experiments/dla/pairnet.py apply HEAT.st MOCKDIR CAT.fits OUT.fits [--p-new P,...]
        [--p-split P,...] [--move P]
    python experiments/dla/pairnet.py scan HEAT.st MOCKDIR - /dev/null --dump CANDS.npz
    python experiments/dla/pairnet.py vtrain VER.st CANDS.npz [CANDS.npz ...] [--epochs 6]
    python experiments/dla/pairnet.py scan HEAT.st MOCKDIR CAT.fits OUT.fits --verifier VER.st
        [--s2n LO HI]

Weights are safetensors files (``.st`` above).

The bundled refiners predict the offset to the *nearest* absorber, so a crop that holds two
damped absorbers is answered with one position, often between the two. The heat-map network
answers for every pixel of a 512-pixel crop (the refiners' crop,
:func:`surveynet.dla.refine.refiner_input`: flux, capped error, scaled rest wavelength, on the
62,996 m/s grid of all cameras) with the logit that an absorber of log N_HI >= 19.8 is centred
there (target: a Gaussian of 2 pixels at each truth absorber, peak 1) and its log N_HI. Layers:
seven stride-1 convolutions of kernel 5 and 32 channels with dilations 1, 2, 4, 8, 16, 32, 1
(receptive field 257 pixels, ~215 A at 4,000 A) and ReLU, then a 1x1 convolution to the two
outputs.

``data``: crops from the training mocks (``train_desi``, ``train_desi2``: the training recipe with
20 % close pairs): two per truth absorber of log N >= 20 (centre uniform within +-40 pixels),
six more for each absorber with another within 120 pixels, and one random searched pixel per
sightline. ``train``: binary cross-entropy on the heat map with positive pixels weighted 20x,
plus 0.5 x the squared log N_HI error within 3 pixels of an absorber; Adam, cosine schedule.

``apply`` adds to a catalogue the maxima of the heat map around its absorbers (within +-120
pixels, 8-pixel suppression): a maximum with P >= ``--p-new`` and no catalogue absorber within
10 A becomes a new absorber; an absorber with no maximum within 10 A but maxima of P >=
``--p-split`` on either side is replaced by the two; ``--move P`` instead only moves each
absorber to the strongest maximum within 25 A.

``scan`` runs the heat map over whole sightlines (crops every 256 pixels, each giving its central
256) and takes its local maxima (P >= ``--p-min``, ``--nms`` pixels apart) as candidates: with
``--dump`` it writes each candidate's crop, three scalars (P, log N_HI, log10 S/N) and its label
(a truth absorber of any log N_HI within 10 A) for the verifier; otherwise a catalogue, whose
DLA_CONFIDENCE is the heat-map P or, with ``--verifier``, the verifier's P(real). The verifier
(``vtrain``) is a strided CNN (six convolutions of kernel 7, 32-64 channels, max-pooling 2) on the
crop with the scalars joined before a 64-unit layer, trained by binary cross-entropy on the
candidates of the training mocks. Results: experiments/dla/README.md, "Fourteenth round".
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import sys
import time
from pathlib import Path

import numpy as np

from surveynet.constants import LYA_REST
from surveynet.dla.config import DataConfig, RefinerConfig
from surveynet.dla.data import read_sightlines
from surveynet.dla.refine import refiner_input
from surveynet.dla.sightline import pixel_position, search_pixels

CROP = 512
NHI_MIN_TARGET = 19.8
SIGMA_PX = 2.0


def data_config() -> DataConfig:
    """The refiners' grid: all cameras at 62,996 m/s (BAL quasars kept, as in training)."""
    return dataclasses.replace(DataConfig(), camera="all", pixel_velocity_ms=62996.0)


def targets(sl, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heat map, log N_HI map and its mask for crops of ``sl`` centred at ``centres``."""
    n = centres.size
    heat = np.zeros((n, CROP), np.float32)
    nhi = np.zeros((n, CROP), np.float32)
    mask = np.zeros((n, CROP), np.float32)
    grid = np.arange(CROP) - CROP // 2
    for d in sl.dlas:
        if d.nhi < NHI_MIN_TARGET:
            continue
        p = pixel_position(sl, d.central_wavelength)
        off = p - centres[:, None] - grid[None, :]  # absorber - cell, pixels
        g = np.exp(-0.5 * (off / SIGMA_PX) ** 2).astype(np.float32)
        heat = np.maximum(heat, g)
        near = np.abs(off) <= 3.0
        nhi[near] = d.nhi
        mask[near] = 1.0
    return heat, nhi, mask


def make_data(out: str, mocks: list[str], seed: int) -> None:
    """Training crops of the mocks (module docstring)."""
    rng = np.random.default_rng(seed)
    cfg = RefinerConfig()
    data = data_config()
    xs, hs, ns, ms = [], [], [], []
    t0 = time.time()
    for mock in mocks:
        for path in sorted(glob.glob(mock + "/coadd-*.fits")):
            for sl in read_sightlines(path, mock + "/truth.fits", data):
                pix = search_pixels(sl)
                if pix.size == 0:
                    continue
                pos = np.array([pixel_position(sl, d.central_wavelength) for d in sl.dlas])
                nh = np.array([d.nhi for d in sl.dlas])
                c: list[float] = list(rng.choice(pix, 1))
                for k in range(pos.size):
                    if nh[k] < 20.0 or not pix[0] <= pos[k] <= pix[-1]:
                        continue
                    m = 2
                    if np.any((np.abs(pos - pos[k]) <= 120) & (np.arange(pos.size) != k)):
                        m += 6
                    c += list(pos[k] + rng.uniform(-40, 40, m))
                centres = np.rint(np.array(c)).astype(np.int64)
                xs.append(refiner_input(sl, centres, cfg))
                h, nn_, mm = targets(sl, centres)
                hs.append(h)
                ns.append(nn_)
                ms.append(mm)
            print(path, sum(len(x) for x in xs), f"{time.time() - t0:.0f} s", flush=True)
    np.savez(
        out,
        x=np.concatenate(xs),
        heat=np.concatenate(hs),
        nhi=np.concatenate(ns),
        mask=np.concatenate(ms),
    )


def build_net():
    """The heat-map network (module docstring)."""
    import torch.nn as nn

    layers: list = []
    c_in = 3
    for dil in (1, 2, 4, 8, 16, 32, 1):
        layers += [nn.Conv1d(c_in, 32, 5, padding=2 * dil, dilation=dil), nn.ReLU()]
        c_in = 32
    layers.append(nn.Conv1d(32, 2, 1))
    return nn.Sequential(*layers)


def load_net(build, path: str):
    """A network of ``build()`` with the weights of the safetensors file ``path``, in eval mode."""
    from safetensors.torch import load_file

    net = build()
    net.load_state_dict(load_file(path))
    net.eval()
    return net


def fit(net, loss_of, n: int, epochs: int, bs: int, seed: int, out: str) -> None:
    """Adam (2e-3, cosine) over ``n`` samples, 5 % held back; weights saved to ``out``.

    ``loss_of(idx)`` returns the training loss first, then the parts printed for the
    validation split (averaged over chunks of 512).
    """
    import torch
    from safetensors.torch import save_file

    perm = np.random.default_rng(seed).permutation(n)
    n_val = n // 20
    val, tr = perm[:n_val], perm[n_val:]
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * (tr.size // bs))
    rng = np.random.default_rng(seed + 1)
    t0 = time.time()
    for ep in range(epochs):
        net.train()
        order = rng.permutation(tr)
        tot = 0.0
        for i in range(tr.size // bs):
            loss = loss_of(torch.from_numpy(order[i * bs : (i + 1) * bs]))[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach())
        net.eval()
        with torch.no_grad():
            parts = [loss_of(torch.from_numpy(val[i : i + 512])) for i in range(0, val.size, 512)]
        vals = " ".join(
            f"{np.mean([float(v[k]) for v in parts]):.4f}" for k in range(len(parts[0]))
        )
        print(
            f"epoch {ep + 1}: train {tot / (tr.size // bs):.4f} val {vals} "
            f"({time.time() - t0:.0f} s)",
            flush=True,
        )
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, out)


def train(data: str, out: str, epochs: int, seed: int) -> None:
    """Fit the heat-map network on the crops of ``data`` (printed: loss, BCE, log N_HI MSE)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    d = np.load(data)
    x = torch.from_numpy(d["x"])
    heat = torch.from_numpy(d["heat"])
    nhi = torch.from_numpy(d["nhi"])
    mask = torch.from_numpy(d["mask"])
    net = build_net()

    def loss_of(idx):
        y = net(x[idx])
        w = 1.0 + 19.0 * heat[idx]
        bce = F.binary_cross_entropy_with_logits(y[:, 0], heat[idx], weight=w)
        mm = mask[idx]
        reg = ((y[:, 1] + 20.8 - nhi[idx]) ** 2 * mm).sum() / mm.sum().clamp(min=1.0)
        return bce + 0.5 * reg, bce, reg

    fit(net, loss_of, x.shape[0], epochs, 64, seed, out)


def peaks(p: np.ndarray, lo: int, hi: int, p_min: float, sup: int = 8) -> list[int]:
    """Local maxima of ``p`` in ``lo..hi`` with ``p >= p_min``, strongest first, suppressed."""
    a, b = max(lo, 1), min(hi, p.size - 1)
    c = p[a:b]
    ok = (c >= p_min) & (c >= p[a - 1 : b - 1]) & (c >= p[a + 1 : b + 1])
    cand = sorted((a + np.flatnonzero(ok)).tolist(), key=lambda i: -p[i])
    kept: list[int] = []
    for i in cand:
        if all(abs(i - k) > sup for k in kept):
            kept.append(i)
    return kept


def apply(
    model: str,
    mock: str,
    cat_in: str,
    out: str,
    p_new: list[float],
    p_split: list[float],
    s2n_min: float,
    move: float | None = None,
) -> None:
    """Add the absorbers the heat map names (module docstring) and write the catalogue.

    With several thresholds, one catalogue per (p_new, p_split) pair is written, named
    ``OUT`` with ``_new{p}_split{p}`` before the extension.
    """
    import torch
    from astropy.table import vstack

    from surveynet.dla.catalog import Catalog, read_catalog, write_catalog

    torch.set_num_threads(2)
    net = load_net(build_net, model)
    cfg = RefinerConfig()
    cat = read_catalog(cat_in)
    d = cat.dlas
    s2n = {int(t): float(s) for t, s in zip(cat.qsos["TARGETID"], cat.qsos["S2N"], strict=True)}
    tid_all = np.asarray(d["TARGETID"], np.int64)
    typ = np.char.strip(np.asarray(d["ABSORBER_TYPE"]).astype(str))
    want: dict[int, list[int]] = {}
    for i in range(len(d)):
        t = int(tid_all[i])
        if s2n.get(t, 0.0) > s2n_min and d["NHI"][i] >= 20.0 and typ[i] != "LYB":
            want.setdefault(t, []).append(i)
    data = dataclasses.replace(data_config(), skip_bal=True)
    # per sightline: the catalogue wavelengths, and per absorber the maxima (lambda, P, log N)
    found: list[tuple[list[float], list[tuple[int, list[tuple[float, float, float]]]]]] = []
    p_floor = min(min(p_new), min(p_split))
    for path in sorted(glob.glob(mock + "/coadd-*.fits")):
        for sl in read_sightlines(path, mock + "/truth.fits", data):
            rows = want.get(sl.targetid)
            if not rows:
                continue
            mine = np.flatnonzero(tid_all == sl.targetid)
            lam_cat = [(1.0 + float(d["Z_DLA"][k])) * LYA_REST for k in mine]
            centres = np.array(
                [
                    int(round(pixel_position(sl, (1 + float(d["Z_DLA"][i])) * LYA_REST)))
                    for i in rows
                ]
            )
            with torch.no_grad():
                y = net(torch.from_numpy(refiner_input(sl, centres, cfg))).numpy()
            prob = 1.0 / (1.0 + np.exp(-y[:, 0]))
            step = float(sl.loglam[1] - sl.loglam[0])
            per = []
            for i, c, p, nh in zip(rows, centres, prob, y[:, 1] + 20.8, strict=True):
                pk = peaks(p, CROP // 2 - 120, CROP // 2 + 121, p_floor)
                per.append(
                    (
                        i,
                        [
                            (
                                float(10.0 ** (sl.loglam[0] + (c - CROP // 2 + k) * step)),
                                float(p[k]),
                                float(nh[k]),
                            )
                            for k in pk
                        ],
                    )
                )
            found.append((lam_cat, per))

    def row(i: int, lam: float, nh: float, pp: float = 1.0):
        r = d[i : i + 1].copy()
        r["DLAID"] = f"PAIRNET_{pp:.3f}_{(1 + float(d['Z_DLA'][i])) * LYA_REST:.1f}"
        r["Z_DLA"] = lam / LYA_REST - 1.0
        r["NHI"] = nh
        r["ABSORBER_TYPE"] = "DLA" if nh >= 20.3 else "SUBDLA"
        return r

    if move is not None:
        # re-localisation only: each absorber moves to the strongest maximum within 25 A of it
        dl = d.copy()
        n_moved = 0
        for _, per in found:
            for i, pk in per:
                lam_i = (1.0 + float(d["Z_DLA"][i])) * LYA_REST
                near = [m for m in pk if abs(m[0] - lam_i) <= 25.0]
                if near:
                    lp, pp, _ = max(near, key=lambda m: m[1])
                    if pp >= move:
                        dl["Z_DLA"][i] = lp / LYA_REST - 1.0
                        n_moved += int(abs(lp - lam_i) > 1.0)
        write_catalog(out, Catalog(dlas=dl, qsos=cat.qsos), overwrite=True)
        print(f"{out}: {n_moved} absorbers moved by > 1 A", file=sys.stderr)
        return
    for pn in p_new:
        for ps in p_split:
            drop: set[int] = set()
            new_rows = []
            n_split = n_new = 0
            for lam_cat, per in found:
                added: list[float] = []
                for i, pk in per:
                    lam_i = (1.0 + float(d["Z_DLA"][i])) * LYA_REST
                    if not any(abs(lp - lam_i) <= 10.0 for lp, _, _ in pk):
                        left = [m for m in pk if m[0] < lam_i - 10 and m[1] >= ps]
                        right = [m for m in pk if m[0] > lam_i + 10 and m[1] >= ps]
                        if left and right:
                            drop.add(i)
                            n_split += 1
                            for lp, _, nh in (left[0], right[0]):
                                others = [o for o in lam_cat if abs(o - lam_i) > 1e-6]
                                if any(abs(lp - o) <= 10 for o in others + added):
                                    continue
                                new_rows.append(row(i, lp, nh))
                                added.append(lp)
                            continue
                    for lp, pp, nh in pk:
                        if pp < pn or any(abs(lp - o) <= 10 for o in lam_cat + added):
                            continue
                        new_rows.append(row(i, lp, nh, pp))
                        added.append(lp)
                        n_new += 1
            keep = np.ones(len(d), bool)
            keep[list(drop)] = False
            dl = vstack([d[keep], *new_rows]) if new_rows else d[keep]
            stem = Path(out)
            dest = (
                stem
                if len(p_new) * len(p_split) == 1
                else stem.with_name(f"{stem.stem}_new{pn:g}_split{ps:g}{stem.suffix}")
            )
            write_catalog(dest, Catalog(dlas=dl, qsos=cat.qsos), overwrite=True)
            print(f"{dest}: {n_split} absorbers split, {n_new} added", file=sys.stderr)


def build_verifier():
    """Candidate verifier: a small strided CNN on the crop plus the scalar features."""
    import torch
    import torch.nn as nn

    class Verifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            chans = (3, 32, 32, 64, 64, 64, 64)
            self.convs = nn.ModuleList(
                nn.Conv1d(chans[i], chans[i + 1], 7, padding=3) for i in range(6)
            )
            self.fc = nn.Linear(64 * (CROP // 64) + 3, 64)
            self.out = nn.Linear(64, 1)

        def forward(self, x, f):
            h = x
            for conv in self.convs:
                h = nn.functional.max_pool1d(torch.relu(conv(h)), 2)
            h = torch.cat([h.flatten(1), f], dim=1)
            return self.out(torch.relu(self.fc(h)))[:, 0]

    return Verifier()


def train_verifier(data: list[str], out: str, epochs: int, seed: int) -> None:
    """Fit the verifier on the dumped scan candidates of the training mocks (5 % validation)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    parts = [np.load(p) for p in data]
    x = torch.from_numpy(np.concatenate([p["x"] for p in parts]))
    f = torch.from_numpy(np.concatenate([p["f"] for p in parts]))
    y = torch.from_numpy(np.concatenate([p["y"] for p in parts]))
    print(f"{x.shape[0]} candidates, {float(y.mean()):.3f} real", flush=True)
    net = build_verifier()

    def loss_of(idx):
        return (F.binary_cross_entropy_with_logits(net(x[idx], f[idx]), y[idx]),)

    fit(net, loss_of, x.shape[0], epochs, 128, seed, out)


def features(sl, pk: list[int], prob: np.ndarray, nhi: np.ndarray) -> np.ndarray:
    """Scalar inputs of the verifier: heat-map P and log N_HI at the peak, log10 S/N."""
    k = np.asarray(pk, np.int64)
    return np.stack(
        [prob[k], nhi[k] - 20.8, np.full(k.size, np.log10(max(sl.s2n, 0.1)))], axis=1
    ).astype(np.float32)


def scan(
    model: str,
    mock: str,
    cat_in: str,
    out: str,
    p_min: float,
    s2n_lo: float,
    s2n_hi: float,
    nms: int = 12,
    dump: str | None = None,
    verifier: str | None = None,
) -> None:
    """Run the heat map over whole sightlines: a finder of its own (catalogue of its peaks).

    Crops every 256 pixels, each contributing its central 256 pixels; local maxima over the
    searched pixels with P >= ``p_min`` (8-pixel suppression) become absorbers with
    DLA_CONFIDENCE = P and the network's log N_HI. The sightlines (QSOCAT) are CAT's with
    ``s2n_lo`` < S/N < ``s2n_hi``.
    """
    import torch

    from surveynet.dla.catalog import Catalog, read_catalog, rows_table, write_catalog

    torch.set_num_threads(2)
    net = load_net(build_net, model)
    ver = None if verifier is None else load_net(build_verifier, verifier)
    cfg = RefinerConfig()
    todo: set[int] | None = None
    if cat_in != "-":  # "-": every sightline of the mock (with ``dump``)
        cat = read_catalog(cat_in)
        q = cat.qsos
        s2n = np.asarray(q["S2N"], float)
        q = q[(s2n > s2n_lo) & (s2n < s2n_hi)]
        todo = {int(t) for t in q["TARGETID"]}
    data = dataclasses.replace(data_config(), skip_bal=True)
    sls, rows = [], []
    dx, df, dy = [], [], []  # verifier crops, scalar features, labels (``dump``)
    for path in sorted(glob.glob(mock + "/coadd-*.fits")):
        for sl in read_sightlines(path, mock + "/truth.fits", data):
            if todo is not None and sl.targetid not in todo:
                continue
            pix = search_pixels(sl)
            if pix.size == 0:
                continue
            centres = np.arange(pix[0], pix[-1] + 256, 256)
            with torch.no_grad():
                y = net(torch.from_numpy(refiner_input(sl, centres, cfg))).numpy()
            prob = np.zeros(sl.n_pix)
            nhi = np.zeros(sl.n_pix)
            for c, yy in zip(centres, y, strict=True):
                lo = c - 128
                a, b = max(lo, 0), min(lo + 256, sl.n_pix)
                if a >= b:
                    continue
                prob[a:b] = 1.0 / (
                    1.0 + np.exp(-yy[0, CROP // 2 - 128 + (a - lo) : CROP // 2 - 128 + (b - lo)])
                )
                nhi[a:b] = yy[1, CROP // 2 - 128 + (a - lo) : CROP // 2 - 128 + (b - lo)] + 20.8
            step = float(sl.loglam[1] - sl.loglam[0])
            mine = []
            pk = peaks(prob, int(pix[0]), int(pix[-1]) + 1, p_min, nms)
            if dump is not None and pk:
                dx.append(refiner_input(sl, np.array(pk), cfg))
                df.append(features(sl, pk, prob, nhi))
                tl = np.array([d.central_wavelength for d in sl.dlas])
                lam_k = 10.0 ** (sl.loglam[0] + np.array(pk) * step)
                dy.append(
                    np.array(
                        [bool(tl.size) and np.min(np.abs(tl - lk)) <= 10.0 for lk in lam_k],
                        np.float32,
                    )
                )
            conf = prob[np.asarray(pk, np.int64)] if pk else np.zeros(0)
            if ver is not None and pk:
                with torch.no_grad():
                    lg = ver(
                        torch.from_numpy(refiner_input(sl, np.array(pk), cfg)),
                        torch.from_numpy(features(sl, pk, prob, nhi)),
                    ).numpy()
                conf = 1.0 / (1.0 + np.exp(-lg))
            for k, cf in zip(pk, conf, strict=True):
                mine.append(
                    {
                        "WAVE": float(10.0 ** (sl.loglam[0] + k * step)),
                        "NHI": float(nhi[k]),
                        "NHI_STD": 0.0,
                        "DLA_CONFIDENCE": float(cf),
                        "ABSORBER_TYPE": "DLA" if nhi[k] >= 20.3 else "SUBDLA",
                    }
                )
            sls.append(sl)
            rows.append(mine)
    if dump is not None:
        np.savez(dump, x=np.concatenate(dx), f=np.concatenate(df), y=np.concatenate(dy))
        return
    full = rows_table(sls, rows)
    write_catalog(out, Catalog(dlas=full, qsos=q), overwrite=True)
    print(f"{out}: {len(full)} absorbers in {len(q)} sightlines", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Run the command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("data")
    a.add_argument("out")
    a.add_argument("mocks", nargs="+")
    a.add_argument("--seed", type=int, default=1)
    b = sub.add_parser("train")
    b.add_argument("data")
    b.add_argument("out")
    b.add_argument("--epochs", type=int, default=8)
    b.add_argument("--seed", type=int, default=1)
    c = sub.add_parser("apply")
    c.add_argument("model")
    c.add_argument("mock")
    c.add_argument("catalog")
    c.add_argument("out")
    c.add_argument("--p-new", default="0.5", help="threshold(s), comma-separated")
    c.add_argument("--p-split", default="0.5", help="threshold(s), comma-separated")
    c.add_argument("--s2n-min", type=float, default=3.0)
    c.add_argument("--move", type=float, help="only move absorbers to a maximum of P >= this")
    e = sub.add_parser("scan")
    e.add_argument("model")
    e.add_argument("mock")
    e.add_argument("catalog")
    e.add_argument("out")
    e.add_argument("--p-min", type=float, default=0.1)
    e.add_argument("--s2n", nargs=2, type=float, default=(0.0, 1e9))
    e.add_argument("--nms", type=int, default=12)
    e.add_argument("--dump", help="write verifier training crops (NPZ) instead of a catalogue")
    e.add_argument("--verifier", help="verifier weights: DLA_CONFIDENCE becomes its P(real)")
    v = sub.add_parser("vtrain")
    v.add_argument("out")
    v.add_argument("data", nargs="+")
    v.add_argument("--epochs", type=int, default=6)
    v.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.cmd == "data":
        make_data(args.out, args.mocks, args.seed)
    elif args.cmd == "train":
        train(args.data, args.out, args.epochs, args.seed)
    elif args.cmd == "scan":
        scan(
            args.model,
            args.mock,
            args.catalog,
            args.out,
            args.p_min,
            *args.s2n,
            nms=args.nms,
            dump=args.dump,
            verifier=args.verifier,
        )
    elif args.cmd == "vtrain":
        train_verifier(args.data, args.out, args.epochs, args.seed)
    else:
        apply(
            args.model,
            args.mock,
            args.catalog,
            args.out,
            [float(v) for v in args.p_new.split(",")],
            [float(v) for v in args.p_split.split(",")],
            args.s2n_min,
            args.move,
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
