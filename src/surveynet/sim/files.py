"""Spectral mocks written to disk: DESI coadd files plus ``truth.fits`` and the resolved config."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import vstack
from tqdm.auto import tqdm

from surveynet.config import config_hash, to_dict
from surveynet.errors import ConfigError
from surveynet.io.desi import write_coadd
from surveynet.io.fits import atomic_path, provenance_header, write_catalog
from surveynet.sim.config import SpectraSimConfig, apply_mix
from surveynet.sim.driver import load_templates, run_rows
from surveynet.sim.population import make_plan
from surveynet.sim.truth import truth_qso_table

__all__ = ["simulate_to_files"]

log = logging.getLogger(__name__)


def simulate_to_files(
    outdir: str | os.PathLike[str],
    n: int,
    seed: int,
    n_files: int = 1,
    overwrite: bool = False,
    quiet: bool = True,
    **kw: Any,
) -> tuple[list[Path], Path]:
    """Simulate ``n`` spectra and write ``n_files`` DESI coadd files plus ``truth.fits``.

    The files hold exactly the spectra of one in-memory
    :func:`~surveynet.sim.driver.simulate_spectra` run with the same arguments; they are made
    one file at a time (memory ~ one file's spectra), which the per-batch seeding allows.

    Parameters
    ----------
    outdir : path-like
        Output folder (created).
    n, seed : int
        As :func:`~surveynet.sim.driver.simulate_spectra`.
    n_files : int
        Number of ``coadd-NNN.fits`` files (spectra split in contiguous chunks).
    overwrite : bool
        Replace existing files; otherwise FileExistsError before anything is written.
    quiet : bool
        Hide the progress bar (one tick per written file).
    **kw
        ``config``, ``mix``, ``templates`` for :func:`~surveynet.sim.driver.simulate_spectra`.

    Returns
    -------
    coadds : list of Path
        The coadd files.
    truth : Path
        ``truth.fits`` with PRIMARY provenance, TRUTH, DLA_META and TRUTH_QSO HDUs
        (``simulate_config.json`` beside it holds the resolved config).

    Raises
    ------
    ConfigError
        ``n_files < 1`` or an invalid configuration.
    FileExistsError
        An output exists and ``overwrite`` is False.
    TypeError
        Unknown keyword arguments.
    """
    if n_files < 1:
        raise ConfigError(f"n_files must be >= 1, got {n_files}")
    out = Path(outdir)
    coadd_paths = [out / f"coadd-{k:03d}.fits" for k in range(n_files)]
    truth_path = out / "truth.fits"
    if not overwrite:
        for p in [*coadd_paths, truth_path]:
            if p.exists():
                raise FileExistsError(
                    f"{p} exists; pass overwrite=True (--overwrite) to replace it"
                )
    cfg = apply_mix(kw.pop("config", None) or SpectraSimConfig(), kw.pop("mix", None))
    templates = kw.pop("templates", None)
    if kw:
        raise TypeError(f"unexpected keyword arguments {sorted(kw)}")
    lib = load_templates(templates, cfg)
    plan = make_plan(n, seed, cfg)
    chash = config_hash(cfg)
    extra: dict[str, Any] = {
        "SIMMODE": "template" if lib is not None else "parametric",
        "NSPEC": n,
        "NFILES": n_files,
    }
    if templates is not None:
        extra["TEMPLDIR"] = str(templates)[-60:]
    bounds = np.linspace(0, n, n_files + 1).astype(int)
    truths, dlas = [], []
    bar = tqdm(total=n, desc="simulate", unit="spec", disable=quiet)
    for k, path in enumerate(coadd_paths):
        # one file at a time: memory ~ one file's spectra (batches are seeded independently)
        sub, tr = run_rows(plan, int(bounds[k]), int(bounds[k + 1]), cfg, lib)
        if sub.resolution is not None:  # shared rows are a broadcast view: materialise per file
            sub.resolution = {
                b: np.ascontiguousarray(r, dtype=np.float32) for b, r in sub.resolution.items()
            }
        hdr = provenance_header(
            pipeline="simulate", config_hash=chash, seed=seed, extra={**extra, "FILEIDX": k}
        )
        write_coadd(path, sub, header=hdr, overwrite=overwrite)
        bar.update(int(bounds[k + 1]) - int(bounds[k]))
        truths.append(tr["TRUTH"])
        dlas.append(tr["DLA_META"])
        del sub
    bar.close()
    truth_all = vstack(truths) if len(truths) > 1 else truths[0]
    dla_all = vstack(dlas) if len(dlas) > 1 else dlas[0]
    hdr = provenance_header(pipeline="simulate", config_hash=chash, seed=seed, extra=extra)
    tables = {
        "TRUTH": truth_all,
        "DLA_META": dla_all,
        "TRUTH_QSO": truth_qso_table(truth_all),
    }
    write_catalog(truth_path, tables, hdr, overwrite=overwrite)
    with atomic_path(out / "simulate_config.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(to_dict(cfg), sort_keys=True) + "\n")
    log.info("wrote %d coadd file(s) and %s", n_files, truth_path)
    return coadd_paths, truth_path
