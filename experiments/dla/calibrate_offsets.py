"""Add ``preprocessing.offset_bias`` (or, with ``--nhi``, ``nhi_bias``) to a trained DLA model,
measured on its validation split.

The split is the one ``surveynet dla train`` used (same seed, S/N range and ``val_fraction``),
so the calibration never sees held-out data; the functions are the ones training runs with
``train.calibrate_offsets`` / ``train.calibrate_nhi``. Usage (repository root)::

    python experiments/dla/calibrate_offsets.py MODEL_DIR OUT_DIR TRAIN_COADD... --truth TRUTH
        [--truth TRUTH2 ...] [--nhi]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np


def main() -> None:
    import torch

    torch.set_num_threads(1)
    from surveynet.dla.config import training_config
    from surveynet.dla.data import read_training_sightlines, select_s2n
    from surveynet.dla.predict import DLAFinder, nhi_bias, offset_bias
    from surveynet.nn.train import split_indices

    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("data", nargs="+")
    ap.add_argument("--truth", required=True, action="append")
    ap.add_argument("--nhi", action="store_true", help="measure nhi_bias instead of offset_bias")
    a = ap.parse_args()
    fd = DLAFinder.from_saved(a.model)
    tc = training_config(fd.saved.meta).train  # either stored config shape
    sls = select_s2n(read_training_sightlines(a.data, a.truth, fd.data), fd.s2n_range)
    _, va = split_indices(len(sls), tc.val_fraction, np.random.default_rng(tc.seed))
    val = [sls[i] for i in va]
    key, bias = ("nhi_bias", nhi_bias(fd, val)) if a.nhi else ("offset_bias", offset_bias(fd, val))
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(fd.saved.path, out)
    cfg = json.loads((out / "config.json").read_text())
    cfg["preprocessing"][key] = bias
    (out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    print(out, key, bias, "from", va.size, "validation sightlines")


if __name__ == "__main__":
    main()
