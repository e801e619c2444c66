"""Which difference between the mocks and the real ZTF triplets makes a triplet model miss them.

Usage: ``python experiments/transient/ztf_domain.py --model rb_triplet_mock --out ztf_domain.json``.

The 39 real ZTF detections of ../shared/data/transients/btsbot_ztf_triplets are scored as they
are, then after one controlled change of the input at a time; a change that moves the misses to
"real" names the property of the real data that the mocks lack:

- ``ref_noise_xF``: Gaussian noise added to the reference so that its noise grows by F (a
  shallower reference). ZTF references are co-adds of tens of epochs; the mock's reference is
  ``sim.ref_depth`` = 4 times deeper than the science frame.
- ``sci_noise_xF``: the same on the science frame (a control: it should not help).
- ``diff_smooth_S``: the difference convolved with a Gaussian of sigma S px. ZTF's ZOGY
  difference is whitened and sharper than the science PSF; the mock's difference (matched
  kernel) has the broader epoch's PSF.
- ``ref_blank``: the reference replaced by pure noise (the host removed): an upper bound on what
  the reference costs.

Each row gives how many of the 39 are scored real (P >= 0.5) and the median P of the triplets
missed without any change. The noise draws are seeded.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from surveynet.transient.predict import load_scorer, prepare_inputs

DATA = (
    Path(
        os.environ.get(
            "SURVEYNET_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"
        )
    )
    / "transients"
)


def robust_sigma(a: np.ndarray) -> float:
    """1.4826 x the median absolute deviation."""
    return float(1.4826 * np.median(np.abs(a - np.median(a))))


def add_noise(t: np.ndarray, channel: int, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Grow the noise of one channel by ``factor`` (added Gaussian noise)."""
    out = t.copy()
    k = np.sqrt(factor**2 - 1.0)
    for i in range(len(out)):
        s = robust_sigma(out[i, channel])
        out[i, channel] += rng.normal(0.0, k * s, out[i, channel].shape)
    return out


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="rb_triplet_mock")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    eng, saved = load_scorer(a.model)
    trip = np.load(DATA / "btsbot_ztf_triplets/usage_triplets.npy", allow_pickle=False)
    trip = trip.transpose(0, 3, 1, 2).astype(np.float64)

    def score(t: np.ndarray) -> np.ndarray:
        return np.asarray(eng(prepare_inputs(t.astype(np.float32), saved.preprocessing)))

    p0 = score(trip)
    miss = p0 < 0.5
    rng = np.random.default_rng(a.seed)
    variants: dict[str, np.ndarray] = {"as_is": trip}
    for f in (1.4, 2.0, 4.0):
        variants[f"ref_noise_x{f:g}"] = add_noise(trip, 1, f, rng)
    for f in (1.4, 2.0):
        variants[f"sci_noise_x{f:g}"] = add_noise(trip, 0, f, rng)
    for s in (0.5, 0.8, 1.2):
        t = trip.copy()
        for i in range(len(t)):
            t[i, 2] = gaussian_filter(t[i, 2], s)
        variants[f"diff_smooth_{s:g}"] = t
    t = trip.copy()
    t[:, 1] = rng.normal(0.0, 1.0, t[:, 1].shape)
    variants["ref_blank"] = t
    rep: dict[str, object] = {"model": str(a.model), "n": len(trip), "n_missed": int(miss.sum())}
    for name, t in variants.items():
        p = score(t)
        rep[name] = {
            "n_real": int((p >= 0.5).sum()),
            "median_p_of_missed": round(float(np.median(p[miss])), 4) if miss.any() else None,
        }
    text = json.dumps(rep, indent=1) + "\n"
    if a.out:
        a.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
