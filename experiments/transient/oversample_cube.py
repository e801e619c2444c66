"""Try T7: oversample the galaxy-core case in a training datacube (fourth session).

    python experiments/transient/oversample_cube.py CUBE.npz OUT.npz [--factor 5]

On the fresh held-out sets a third of the triplet model's false positives at TPR 99 % are
galaxy-core subtraction residuals (truth kind ``galaxy``), which it hardly rejects, while they are
under 1 % of the bogus it is trained on (``fp_by_kind.py``). This writes a copy of a ``convert``
datacube in which every bogus of kind ``galaxy`` and every real on a bright reference source
(robust z-score peak >= 50 in the central 5 x 5 pixels of the reference, as ``diagnose.py``'s
ZTF regime: transients on nuclei) appears ``factor`` times; the training's random flips make the
copies differ. Every other array of the cube is repeated alike.
"""

from __future__ import annotations

import argparse

import numpy as np

from surveynet.transient.preprocess import to_network


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cube")
    ap.add_argument("out")
    ap.add_argument("--factor", type=int, default=5)
    a = ap.parse_args()
    z = np.load(a.cube)
    arrays = {k: z[k] for k in z.files}
    cube = arrays["cube"]  # (n, 32, 32, 3)
    y = arrays["labels"] == 1
    kinds = np.char.strip(arrays["kinds"].astype(str))
    zref = np.empty(len(y))
    for i in range(0, len(y), 20000):
        x = to_network(
            np.ascontiguousarray(cube[i : i + 20000].transpose(0, 3, 1, 2)),
            channels="triplet",
            norm="zscore",
        )
        zref[i : i + 20000] = x[:, 1, 14:19, 14:19].max(axis=(1, 2))
    pick = (~y & (kinds == "galaxy")) | (y & (zref >= 50))
    print(
        f"{len(y)} cutouts; oversampled x{a.factor}: {int((~y & (kinds == 'galaxy')).sum())} "
        f"galaxy-core bogus, {int((y & (zref >= 50)).sum())} reals on a bright reference source"
    )
    idx = np.concatenate([np.arange(len(y))] + [np.flatnonzero(pick)] * (a.factor - 1))
    n_items = len(y)
    out = {k: (v[idx] if v.shape[:1] == (n_items,) else v) for k, v in arrays.items()}
    with open(a.out, "wb") as fh:
        np.savez(fh, **out)
    print(f"{a.out}: {len(idx)} cutouts")


if __name__ == "__main__":
    main()
