"""Record (or check) the reference outputs of the core reshaping (issue 21).

``python experiments/core/record_baseline.py record DIR`` runs, with fixed seeds:

1. ``surveynet demo`` (200 spectra, seed 2026) and stores every catalogue column it writes;
2. two-epoch training runs on small mocks: quasar (tiny QuasarNET), dla FCN, window CNN and
   refiner, and the vetter; it stores each loss history and the vetter's coefficients.

``python experiments/core/record_baseline.py check DIR [ARCH...]`` reruns the same commands into a
fresh folder and compares: catalogues to 1e-6 (relative; columns added since are listed, not
compared) and histories to 1e-5 (float32 training), except the architectures named after DIR.

The reference of issue 21 is ``baseline_7c24412``: its ``dla_window_cnn`` history cannot
reproduce (before the core driver, its dropout drew from the process-global torch generator, so
two runs in one process differed); check it with ``... check experiments/core/baseline_7c24412
dla_window_cnn``. ``baseline_post21`` is the reference recorded after the reshaping.
Only the public CLI is used.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from surveynet.cli import main

TINY_QN = [
    "--set", "model.n_filters=8", "--set", "model.n_fc=16", "--set", "train.epochs=2",
    "--set", "train.batch_size=32", "--seed", "3",
]
TINY_FCN = [
    "--set", "model.fcn.width=8", "--set", "model.fcn.stem_channels=[8,8]",
    "--set", "model.fcn.head_hidden=8", "--set", "train.epochs=2", "--set", "train.batch_size=8",
    "--seed", "4",
]


def _run(argv: list[str]) -> None:
    rc = main([*argv, "--quiet"])
    if rc != 0:
        raise SystemExit(f"command failed ({rc}): surveynet {' '.join(argv)}")


def _tables(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with fits.open(path) as h:
        for hdu in h[1:]:
            if not isinstance(hdu, fits.BinTableHDU):
                continue
            for name in hdu.columns.names:
                out[f"{path.name}/{hdu.name}/{name}"] = np.asarray(hdu.data[name])
    return out


def produce(work: Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Run every recorded command under ``work``; return (catalogue columns, histories)."""
    _run(["demo", "--out", str(work / "demo"), "--n", "200", "--seed", "2026"])
    cols: dict[str, np.ndarray] = {}
    for cat in sorted((work / "demo").rglob("*.fits")):
        if "mock" in cat.parts[-2] or cat.name.startswith(("coadd", "truth")):
            continue
        cols.update({f"{cat.relative_to(work / 'demo')}::{k}": v for k, v in _tables(cat).items()})

    from surveynet.sim.spectra import preset_config, simulate_to_files

    hist: dict[str, object] = {}
    qfiles, qtruth = simulate_to_files(work / "qmock", 160, 11, n_files=2, overwrite=True)
    _run(["quasar", "train", *map(str, qfiles), "--truth", str(qtruth), "--out",
          str(work / "qn"), *TINY_QN])
    hist["quasar"] = json.loads((work / "qn" / "history.json").read_text())

    dfiles, dtruth = simulate_to_files(
        work / "dmock", 40, 5, n_files=2, overwrite=True, config=preset_config("dla")
    )
    base = ["dla", "train", *map(str, dfiles), "--truth", str(dtruth)]
    runs = {
        "dla_fcn": TINY_FCN,
        "dla_window_cnn": ["--set", "model.architecture=dla_window_cnn", "--set", "train.epochs=2",
                           "--set", "train.batch_size=64", "--seed", "4"],
        "dla_refiner": ["--set", "model.architecture=dla_refiner", "--set", "train.epochs=2",
                        "--set", "train.batch_size=16", "--seed", "4"],
    }
    for name, extra in runs.items():
        _run([*base, "--out", str(work / name), *extra])
        meta = json.loads((work / name / "config.json").read_text())
        h = meta.get("training", {}).get("history")
        if h is None and (work / name / "history.json").exists():
            h = json.loads((work / name / "history.json").read_text())
        hist[name] = h
    return cols, hist


def _flat(h: object) -> np.ndarray:
    vals: list[float] = []

    def walk(x: object) -> None:
        if isinstance(x, dict):
            for k in sorted(x):
                if k not in ("time", "seconds", "wall_s", "epoch_time"):
                    walk(x[k])
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            vals.append(float(x))

    walk(h)
    return np.asarray(vals)


def main_(argv: list[str]) -> int:
    mode, ref = argv[0], Path(argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        cols, hist = produce(Path(tmp))
    if mode == "record":
        ref.mkdir(parents=True, exist_ok=True)
        np.savez(ref / "catalogues.npz", **cols)
        (ref / "histories.json").write_text(json.dumps(hist, indent=1))
        print(f"recorded {len(cols)} catalogue columns and {len(hist)} histories in {ref}")
        return 0
    bad = 0
    with np.load(ref / "catalogues.npz") as z:
        keys = set(z.files)
        if keys - set(cols):
            print("columns missing now:", sorted(keys - set(cols))[:20])
            bad += 1
        if set(cols) - keys:  # new pipelines and new columns are additions, not differences
            print(f"{len(set(cols) - keys)} columns added since the reference (not compared)")
        for k in sorted(keys & set(cols)):
            a, b = z[k], cols[k]
            if a.shape != b.shape:
                print(f"{k}: shape {a.shape} -> {b.shape}")
                bad += 1
            elif a.dtype.kind in "fc":
                if not np.allclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True):
                    print(f"{k}: max |diff| {np.nanmax(np.abs(a - b)):.3g}")
                    bad += 1
            elif not np.array_equal(a, b):
                print(f"{k}: values differ")
                bad += 1
    ref_hist = json.loads((ref / "histories.json").read_text())
    skip = set(argv[2:])  # architectures whose reference is known not to reproduce
    for name, h in ref_hist.items():
        if name in skip:
            print(f"history {name}: not compared (given on the command line)")
            continue
        a, b = _flat(h), _flat(hist.get(name))
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-7):
            print(f"history {name} differs:\n  ref {a[:8]}\n  now {b[:8]}")
            bad += 1
    print("identical within tolerance" if not bad else f"{bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main_(sys.argv[1:]))
