"""The mock-trained triplet model on real ZTF data (never trained on real data).

Usage: ``python experiments/transient/ztf_check.py --model rb_triplet_mock --out ztf.json``.
Scores the 39 real ZTF detections of ../shared/data/transients/btsbot_ztf_triplets (63x63,
centre-cropped to the model's input by its preprocessing) and the two braai alerts; reports
the fraction of the 39 scored real (P >= 0.5) and the two alert scores.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from surveynet.transient.predict import load_scorer, prepare_inputs
from surveynet.transient.preprocess import read_alert

DATA = (
    Path(
        os.environ.get(
            "SURVEYNET_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"
        )
    )
    / "transients"
)


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="rb_triplet_mock")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threshold", type=float, default=0.5)
    a = ap.parse_args()
    eng, saved = load_scorer(a.model)
    trip = np.load(DATA / "btsbot_ztf_triplets/usage_triplets.npy", allow_pickle=False)
    p = eng(prepare_inputs(trip.transpose(0, 3, 1, 2), saved.preprocessing))
    rep: dict[str, object] = {
        "model": a.model,
        "ztf39_fraction_real": float((p >= a.threshold).mean()),
        "ztf39_median_p": float(np.median(p)),
        "ztf39_min_p": float(p.min()),
    }
    for cid, truth in (("714287740515015072", "real"), ("893215910715010007", "bogus")):
        al = read_alert(DATA / f"braai_ztf_alerts/{cid}.json")
        cube = np.stack([al["science"], al["reference"], al["difference"]])[None]
        rep[f"alert_{cid}_{truth}"] = float(eng(prepare_inputs(cube, saved.preprocessing))[0])
    a.out.write_text(json.dumps(rep, indent=1) + "\n")
    print(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
