"""
DLA finder: find damped Lyman-alpha absorbers in DESI-like spectra
==================================================================

This tutorial runs the ``dla`` pipeline the way you would on your own files: mock DESI coadds
in, a DLA catalogue out, then a score against the truth. It uses the bundled models only
(``dla_fcn`` and ``dla_fcn_lowsnr`` routed by S/N, the two refiners and the vetter; quasar
redshifts from the bundled QuasarNET) and takes well under a minute on two cores.

Each step is the command a user types in a shell; here it goes through
:func:`surveynet.cli.main`, the same code in-process.
"""

# %%
# A working folder and a helper that runs one ``surveynet`` command
# -----------------------------------------------------------------
# Replace the temporary folder by any folder of yours. ``run`` prints the command line and stops
# the tutorial if the command fails (exit status not 0).

import json
import shlex
import shutil
import tempfile
from pathlib import Path

from astropy.table import Table

from surveynet.cli import main

out = Path(tempfile.mkdtemp(prefix="surveynet-dla-"))


def run(command: str) -> None:
    """Run ``surveynet COMMAND`` in-process; raise if it fails."""
    print("$ surveynet " + command.replace(str(out) + "/", ""))
    status = main(shlex.split(command))
    if status != 0:
        raise RuntimeError(f"surveynet {command} exited with status {status}")


# %%
# 1. Mock spectra
# ---------------
# ``surveynet simulate spectra --preset dla`` makes quasars at z >= 2.33 with absorbers drawn
# from the column-density distribution, written as a DESI coadd file (HDUs FIBERMAP, B/R/Z
# WAVELENGTH, FLUX, IVAR, MASK, RESOLUTION) plus ``truth.fits`` (the TRUTH table of every
# spectrum and the DLA table of every absorber). 120 spectra keep the build fast.

run(f"simulate spectra --preset dla --n 120 --seed 7 --out {out}/mock --quiet")
coadds = sorted((out / "mock").glob("coadd-*.fits"))
print([p.name for p in coadds])

# %%
# 2. Find the absorbers
# ---------------------
# ``surveynet dla predict`` needs a quasar redshift for every sightline. Given none
# (``--qso-catalog``, ``--zbest`` or ``--truth``), it first runs the bundled QuasarNET on the
# same files and searches the spectra QuasarNET calls quasars. ``--workers 0`` runs in this
# process; on many files, leave it out (a local Dask cluster) or point ``--scheduler`` at your
# cluster.

run(f"dla predict {' '.join(map(str, coadds))} --out {out}/dla.fits --workers 0 --quiet")

# %%
# The catalogue has two tables: ``DLACAT``, one row per absorber, and ``QSOCAT``, one row per
# searched sightline. ``NHI`` is log10 of the column density in cm^-2; ``DLA_CONFIDENCE`` is the
# vetter's probability that the absorber is real; ``ABSORBER_TYPE`` is DLA (log N_HI >= 20.3),
# SUBDLA or LYB (a
# Lyman-beta line taken for an absorber of its own).

dlas = Table.read(out / "dla.fits", hdu="DLACAT")
qsos = Table.read(out / "dla.fits", hdu="QSOCAT")
print(f"{len(qsos)} sightlines searched, {len(dlas)} absorbers")
cols = ["TARGETID", "Z_QSO", "Z_DLA", "NHI", "DLA_CONFIDENCE", "ABSORBER_TYPE", "S2N"]
dlas[cols][:8].pprint(max_width=120)

# %%
# 3. Score against the truth
# --------------------------
# ``surveynet dla evaluate`` matches catalogue absorbers to truth DLAs within 10 A (the DESI
# rule), and writes ``metrics.json`` and the figures: completeness and purity against S/N and
# column density, the redshift and N_HI errors. The figures of the held-out mocks quoted on
# :doc:`../figures` come from this step on 20,000-spectrum mocks.

run(f"dla evaluate {out}/dla.fits --truth {out}/mock/truth.fits --out {out}/eval --quiet")
metrics = json.loads((out / "eval" / "metrics.json").read_text())
for key in ("completeness", "purity", "tp", "fn", "fp"):
    print(f"{key:>12}: {metrics.get(key)}")

# %%
# On 120 spectra these numbers carry errors of several per cent; the figures worth quoting need
# thousands of spectra (``experiments/dla/heldout_eval.sh``).

# %%
# Clean up
# --------
# The working folder was temporary; keep it if you want to look at the files.

shutil.rmtree(out)
