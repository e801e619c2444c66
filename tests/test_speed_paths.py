"""The fast paths of issue 22: selective and streamed reading, per-HDU checksums, vectorised
rebinning, block-invariant prediction, lazy CLI start-up and scale-out on Dask.

Speed itself is measured by ``surveynet bench`` (never by timed tests); these tests pin the
behaviour the fast paths must keep: the same numbers as the plain paths, bit for bit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from surveynet.errors import InputError
from surveynet.io import desi
from surveynet.io.spectra import iter_spectra, read_spectra
from test_io_spectra import assert_spectra_equal, make_spectra

HEAVY = ("torch", "scipy", "astropy.io.fits", "matplotlib", "distributed")


# ------------------------------------------------------------------------------------ CLI start


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["quasar", "predict", "--help"],
        ["dla", "predict", "--help"],
        ["sysnet", "train", "--help"],
        ["transient", "predict", "--help"],
    ],
    ids=["root", "quasar-predict", "dla-predict", "sysnet-train", "transient-predict"],
)
def test_help_imports_nothing_heavy(argv):
    """``surveynet --help`` and ``surveynet quasar predict --help`` import no heavy module."""
    code = (
        "import contextlib, io, json, sys\n"
        "import surveynet.cli as c\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        c.main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    heavy = json.loads(res.stdout.strip().splitlines()[-1])
    assert heavy == [], f"surveynet {' '.join(argv)} imported {heavy}"


# ------------------------------------------------------------------------------------- readers


@pytest.fixture
def coadd(tmp_path):
    spec = make_spectra(n=7)
    return desi.write_coadd(tmp_path / "c.fits", spec), spec


def test_selective_read_skips_resolution_and_keeps_float32(coadd):
    path, spec = coadd
    full = read_spectra(path)
    lean = read_spectra(path, resolution=False)
    assert full.resolution is not None and lean.resolution is None
    assert lean.mask is not None
    for b in spec.bands:
        assert lean.flux[b].dtype == np.float32 and lean.ivar[b].dtype == np.float32
        assert lean.flux[b].dtype.isnative and lean.mask[b].dtype == np.uint32
        np.testing.assert_array_equal(lean.flux[b], full.flux[b])
        np.testing.assert_array_equal(lean.mask[b], full.mask[b])
    nomask = desi.read_desi_spectra(path, resolution=False, mask=False)
    assert nomask.mask is None


def test_raw_reader_matches_astropy(coadd):
    """The in-place byte-swapping reader returns what astropy decodes, dtype included."""
    path, _ = coadd
    spec = read_spectra(path)
    with fits.open(path) as h:
        for b in spec.bands:
            up = b.upper()
            for part, got in (("FLUX", spec.flux), ("IVAR", spec.ivar), ("MASK", spec.mask)):
                ref = h[f"{up}_{part}"].data
                assert got[b].dtype == ref.dtype.newbyteorder("=")
                np.testing.assert_array_equal(got[b], ref)
            np.testing.assert_array_equal(spec.resolution[b], h[f"{up}_RESOLUTION"].data)


@pytest.mark.parametrize("block", [1, 3, 7, 50])
def test_row_blocks_stream_the_same_spectra(coadd, block):
    path, _ = coadd
    whole = read_spectra(path, resolution=False)
    parts = list(iter_spectra(path, block))
    assert [p.n_spec for p in parts] == [
        min(block, whole.n_spec - i) for i in range(0, whole.n_spec, block)
    ]
    start = 0
    for p in parts:
        assert_spectra_equal(p, whole.select(slice(start, start + p.n_spec)))
        start += p.n_spec
    one = desi.read_desi_spectra(path, rows=slice(2, 5), resolution=True)
    assert_spectra_equal(one, read_spectra(path).select(slice(2, 5)))


def _flip_byte_in(path: Path, extname: str, dst: Path) -> Path:
    with fits.open(path) as h:
        info = h[extname].fileinfo()
        where = int(info["datLoc"]) + 5
    raw = bytearray(path.read_bytes())
    raw[where] ^= 0xFF
    dst.write_bytes(bytes(raw))
    return dst


def test_checksum_checked_on_hdus_read_only(coadd, tmp_path):
    """Corrupt data fail their DATASUM where read (whole or streamed), cost nothing elsewhere."""
    path, _ = coadd
    bad_res = _flip_byte_in(path, "R_RESOLUTION", tmp_path / "res.fits")
    with pytest.raises(InputError, match="Datasum verification failed"):
        read_spectra(bad_res)
    assert read_spectra(bad_res, resolution=False).n_spec == 7  # RESOLUTION not read
    bad_flux = _flip_byte_in(path, "Z_FLUX", tmp_path / "flux.fits")
    with pytest.raises(InputError, match="Datasum verification failed") as err:
        read_spectra(bad_flux, resolution=False)
    assert err.value.hdu == "Z_FLUX"
    with pytest.raises(InputError, match="Datasum verification failed"):
        list(iter_spectra(bad_flux, 2))
    assert read_spectra(bad_flux, resolution=False, checksum=False).n_spec == 7
    bad_fm = _flip_byte_in(path, "FIBERMAP", tmp_path / "fm.fits")
    with pytest.raises(InputError, match="FIBERMAP"):
        read_spectra(bad_fm, resolution=False)


def test_unsigned_and_scaled_images(tmp_path):
    """uint16/uint32 (BZERO convention) are read raw; scaled images fall back to astropy."""
    rng = np.random.default_rng(0)
    u16 = rng.integers(0, 65535, (3, 5)).astype(np.uint16)
    u32 = rng.integers(0, 2**32 - 1, (3, 5), dtype=np.uint64).astype(np.uint32)
    scaled = fits.ImageHDU(rng.normal(size=(3, 5)).astype(np.float32), name="SCALED")
    scaled.scale("int16", bscale=0.01, bzero=1.0)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(u16, name="U16"),
            fits.ImageHDU(u32, name="U32"),
            scaled,
        ]
    ).writeto(tmp_path / "u.fits", checksum=True)
    from surveynet.io._fitsread import open_fits, read_image

    p = tmp_path / "u.fits"
    with open_fits(p) as h, fits.open(p) as ref:
        a16 = read_image(h, "U16", p, ndim=2)
        a32 = read_image(h, "U32", p, ndim=2, rows=slice(1, 3))
        sc = read_image(h, "SCALED", p, ndim=2)
        assert a16.dtype == np.uint16 and a32.dtype == np.uint32
        np.testing.assert_array_equal(a16, u16)
        np.testing.assert_array_equal(a32, u32[1:3])
        np.testing.assert_array_equal(sc, ref["SCALED"].data)


# ------------------------------------------------------------------------- rebin and predict


def test_rebin_is_one_operation_per_camera_and_exact():
    """Whole-batch rebinning equals summing each spectrum's pixels into its bins, in order."""
    from surveynet.quasar.config import GridConfig
    from surveynet.quasar.preprocess import rebin_arm

    rng = np.random.default_rng(3)
    wave = np.sort(rng.uniform(3500.0, 10200.0, 400))
    flux = rng.normal(1.0, 1.0, (6, 400)).astype(np.float32)
    ivar = rng.uniform(0.0, 2.0, (6, 400)).astype(np.float32)
    flux[1, 3], ivar[2, 4], ivar[3, 5] = np.nan, np.inf, -1.0
    grid = GridConfig.log()
    fw, w = rebin_arm(wave, flux, ivar, grid)
    idx = grid.bin_index(wave)
    for i in range(6):
        ref_fw, ref_w = np.zeros(grid.n_bins), np.zeros(grid.n_bins)
        for j in np.flatnonzero((idx >= 0) & (idx < grid.n_bins)):
            f, iv = flux[i, j], ivar[i, j]
            if np.isfinite(f) and np.isfinite(iv) and iv > 0:
                ref_fw[idx[j]] += np.float64(f * iv)
                ref_w[idx[j]] += np.float64(iv)
        assert np.array_equal(fw[i], ref_fw) and np.array_equal(w[i], ref_w)


@pytest.fixture(scope="module")
def mock_files(tmp_path_factory):
    from surveynet.sim.spectra import simulate_to_files

    d = tmp_path_factory.mktemp("speed_mock")
    files, _ = simulate_to_files(d, 45, 22, n_files=3)
    return [str(f) for f in files]


def test_predict_block_size_does_not_change_a_bit(mock_files):
    from surveynet.quasar.config import PredictConfig
    from surveynet.quasar.predict import predict_file

    pc = PredictConfig(batch_size=4)
    ref = predict_file(mock_files[0], predict=pc, block_rows=10_000)
    for block in (1, 3, 5, 8):
        got = predict_file(mock_files[0], predict=pc, block_rows=block)
        assert got.keys() == ref.keys()
        for c in ref:
            assert np.array_equal(got[c], ref[c], equal_nan=ref[c].dtype.kind == "f"), c


def _rows(path):
    t = Table.read(path, hdu="QN_CATALOG")
    return {c: np.asarray(t[c]) for c in t.colnames}


def test_dask_scheduler_catalogue_equals_in_process(mock_files, tmp_path):
    """predict over several files through an existing Dask scheduler == in process, bit for bit.

    Dask workers run one BLAS thread each (distributed's default environment), and a float32
    matrix product's rounding depends on the thread split, so the in-process reference runs
    with one BLAS thread too (with two threads the outputs agree to float32 rounding only).
    """
    import os

    from distributed import LocalCluster

    from surveynet.cli import main

    ref = tmp_path / "ref.fits"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "surveynet", "quasar", "predict", *mock_files]
    cmd += ["--out", str(ref), "--workers", "0", "--quiet"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=600)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        out = tmp_path / "dask.fits"
        address = cluster.scheduler_address
        rc = main(["quasar", "predict", *mock_files, "--out", str(out), "--scheduler", address])
    assert rc == 0
    a, b = _rows(ref), _rows(out)
    assert a.keys() == b.keys() and len(a["TARGETID"]) == 45
    for c in a:
        assert np.array_equal(a[c], b[c], equal_nan=a[c].dtype.kind == "f"), c


def test_bench_parts_merge():
    from surveynet import bench

    @bench.register_bench_part("spectra", "test_part_xyz")
    def _part(quick: bool) -> dict:
        return {"test_part_xyz_figure": 1.0}

    try:
        with pytest.raises(KeyError):
            bench.register_bench_part("spectra", "test_part_xyz")(_part)
    finally:
        bench._PARTS["spectra"] = [p for p in bench._PARTS["spectra"] if p[0] != "test_part_xyz"]
