"""Spectra I/O: golden reads of the shared DESI files, write/read round trips, cframes, spPlates,
truth/zbest files and bad-input handling.

The synthetic-file writers at the top (:func:`make_spectra`, :func:`write_cframe`,
:func:`write_spplate`, :func:`write_truth_file`) are also used by ``test_io_fuzz.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from conftest import shared_path
from surveynet.errors import InputError
from surveynet.io import boss, desi, truth
from surveynet.io.fits import provenance_header, write_catalog
from surveynet.io.spectra import Spectra, read_spectra

# ---------------------------------------------------------------------------------------------
# synthetic fixtures
# ---------------------------------------------------------------------------------------------

BAND_GRIDS = {"b": (3600.0, 5800.0), "r": (5760.0, 7620.0), "z": (7520.0, 9824.0)}


def make_spectra(
    n: int = 4,
    bands: tuple[str, ...] = ("b", "r", "z"),
    n_pix: int = 40,
    seed: int = 0,
    with_mask: bool = True,
    with_res: bool = True,
) -> Spectra:
    """Small in-memory DESI-like Spectra: float32 data, uint32 masks, 5-diagonal resolution."""
    rng = np.random.default_rng(seed)
    wave, flux, ivar, mask, res = {}, {}, {}, {}, {}
    for b in bands:
        lo, hi = BAND_GRIDS.get(b, (3600.0, 9824.0))
        wave[b] = np.linspace(lo, hi, n_pix)
        flux[b] = rng.normal(1.0, 0.5, (n, n_pix)).astype(np.float32)
        ivar[b] = rng.uniform(0.5, 4.0, (n, n_pix)).astype(np.float32)
        mask[b] = (rng.uniform(size=(n, n_pix)) < 0.05).astype(np.uint32) * np.uint32(2**31 + 1)
        res[b] = rng.uniform(size=(n, 5, n_pix)).astype(np.float32)
    fibermap = Table(
        {
            "TARGETID": np.arange(n, dtype=np.int64) * 1000 + 39627866878511337,
            "FIBER": np.arange(n, dtype=np.int32),
            "TARGET_RA": rng.uniform(0, 360, n),
            "OBJTYPE": np.array(["TGT"] * n),
            "DESI_TARGET": rng.integers(0, 2**40, n, dtype=np.int64),
        }
    )
    return Spectra(
        bands=bands,
        wave=wave,
        flux=flux,
        ivar=ivar,
        fibermap=fibermap,
        mask=mask if with_mask else None,
        resolution=res if with_res else None,
        meta={"TILEID": 1234},
        source=None,
    )


def write_cframe(
    path: Path,
    camera: str = "b3",
    expid: int = 123456,
    n_fiber: int = 5,
    n_pix: int = 30,
    seed: int = 0,
    night: int = 20210419,
    targetid_offset: int = 0,
) -> Path:
    """A DESI cframe as desispec writes it: FLUX in the primary HDU, then IVAR, MASK, WAVELENGTH,
    RESOLUTION, FIBERMAP; CAMERA/EXPID/NIGHT in the primary header."""
    rng = np.random.default_rng(seed)
    band, spectro = camera[0], int(camera[1])
    lo, hi = BAND_GRIDS[band]
    hdr = fits.Header()
    hdr["EXTNAME"] = "FLUX"
    hdr["CAMERA"] = camera
    hdr["EXPID"] = expid
    hdr["NIGHT"] = night
    hdr["BUNIT"] = desi.FLUX_UNIT
    fibers = spectro * 500 + np.arange(n_fiber)
    fm = Table(
        {
            "TARGETID": 1000 * fibers.astype(np.int64) + targetid_offset,
            "FIBER": fibers.astype(np.int32),
            "TARGET_RA": rng.uniform(0, 360, n_fiber),
        }
    )
    fm_hdu = fits.table_to_hdu(fm)
    fm_hdu.name = "FIBERMAP"
    hdus = fits.HDUList(
        [
            fits.PrimaryHDU(rng.normal(size=(n_fiber, n_pix)).astype(np.float32), header=hdr),
            fits.ImageHDU(rng.uniform(1, 2, (n_fiber, n_pix)).astype(np.float32), name="IVAR"),
            fits.ImageHDU(np.zeros((n_fiber, n_pix), np.uint32), name="MASK"),
            fits.ImageHDU(np.linspace(lo, hi, n_pix), name="WAVELENGTH"),
            fits.ImageHDU(
                rng.uniform(size=(n_fiber, 11, n_pix)).astype(np.float32), name="RESOLUTION"
            ),
            fm_hdu,
        ]
    )
    hdus.writeto(path, checksum=True)
    return path


def write_spplate(
    path: Path,
    n_fiber: int = 6,
    n_pix: int = 50,
    plate: int = 3586,
    mjd: int = 55181,
    coeff0: float = 3.5562,
    coeff1: float = 1e-4,
    seed: int = 0,
    plugmap: bool = True,
    n_hdus: int = 6,
) -> Path:
    """A BOSS spPlate in the idlspec2d layout: flux primary (COEFF0/COEFF1, PLATEID, MJD), IVAR,
    ANDMASK, ORMASK, WAVEDISP (image HDUs without EXTNAME, as in the real files) and PLUGMAP."""
    rng = np.random.default_rng(seed)
    hdr = fits.Header()
    hdr["PLATEID"] = plate
    hdr["MJD"] = mjd
    hdr["COEFF0"] = coeff0
    hdr["COEFF1"] = coeff1
    hdr["BUNIT"] = "1E-17 erg/cm^2/s/Ang"
    andmask = np.zeros((n_fiber, n_pix), np.int32)
    andmask[0, :3] = 1 << 25  # COMBINEREJ
    andmask[1, 5] = 1 << 16
    hdus = [
        fits.PrimaryHDU(rng.normal(5.0, 1.0, (n_fiber, n_pix)).astype(np.float32), header=hdr),
        fits.ImageHDU(rng.uniform(0.5, 2.0, (n_fiber, n_pix)).astype(np.float32)),
        fits.ImageHDU(andmask),
        fits.ImageHDU(andmask | (1 << 2)),
        fits.ImageHDU(np.full((n_fiber, n_pix), 1.1, np.float32)),
    ]
    if plugmap:
        pm = Table(
            {
                "OBJTYPE": np.array(["QSO"] * n_fiber),
                "RA": rng.uniform(0, 360, n_fiber),
                "DEC": rng.uniform(-10, 60, n_fiber),
                "FIBERID": np.arange(1, n_fiber + 1, dtype=np.int32),
            }
        )
        hdus.append(fits.table_to_hdu(pm))
    fits.HDUList(hdus[:n_hdus]).writeto(path)
    return path


def write_truth_file(path: Path, *, with_dla: bool = True, drop: str | None = None) -> Path:
    """A surveynet mock truth file: TRUTH (TARGETID, OBJTYPE, Z, MAG, IS_BAL, BI_CIV), DLA_META."""
    tgt = Table(
        {
            "TARGETID": np.array([11, 12, 13], np.int64),
            "OBJTYPE": np.array(["QSO", "STAR", "QSO"]),
            "Z": [2.5, 0.0, 3.1],
            "MAG": np.array([21.0, 19.5, 22.0], np.float32),
            "IS_BAL": [False, False, True],
            "BI_CIV": [0.0, 0.0, 1500.0],
        }
    )
    dla = Table(
        {
            "TARGETID": np.array([11, 13, 13], np.int64),
            "Z_DLA": [2.2, 2.7, 2.9],
            "NHI": [20.5, 21.0, 20.3],
            "DLAID": np.array([11000, 13000, 13001], np.int64),
        }
    )
    if drop is not None:
        for t in (tgt, dla):
            if drop in t.colnames:
                t.remove_column(drop)
    tables = {"TRUTH": tgt, "DLA_META": dla} if with_dla else {"TRUTH": tgt}
    header = provenance_header(pipeline="sim", seed=1)
    header["NEXTEND"] = len(tables)  # lets readers detect a file cut at an HDU boundary
    return write_catalog(path, tables, header)


def assert_spectra_equal(a: Spectra, b: Spectra) -> None:
    """Exact equality of bands, data (dtype included), fibermap columns."""
    assert a.bands == b.bands
    for band in a.bands:
        np.testing.assert_array_equal(a.wave[band], b.wave[band])
        for d_a, d_b in ((a.flux, b.flux), (a.ivar, b.ivar)):
            assert d_a[band].dtype == d_b[band].dtype
            np.testing.assert_array_equal(d_a[band], d_b[band])
        for d_a, d_b in ((a.mask, b.mask), (a.resolution, b.resolution)):
            assert (d_a is None) == (d_b is None)
            if d_a is not None:
                assert d_a[band].dtype == d_b[band].dtype
                np.testing.assert_array_equal(d_a[band], d_b[band])
    assert a.fibermap.colnames == b.fibermap.colnames
    for c in a.fibermap.colnames:
        np.testing.assert_array_equal(a.fibermap[c], b.fibermap[c])


# ---------------------------------------------------------------------------------------------
# golden reads of ../shared/data
# ---------------------------------------------------------------------------------------------


def test_golden_quasarnp_test_coadd():
    path = shared_path("quasarnp/test_coadd.fits")
    spec = read_spectra(path)
    assert spec.bands == ("b", "r", "z")
    assert spec.n_spec == 25
    assert {b: spec.flux[b].shape for b in spec.bands} == {
        "b": (25, 2751),
        "r": (25, 2326),
        "z": (25, 2881),
    }
    assert spec.mask is None and spec.resolution is None
    # no FIBERMAP in this file: documented fallback TARGETID = row index
    np.testing.assert_array_equal(spec.targetid, np.arange(25))
    assert spec.meta["TIDSYNTH"] is True
    # first/last wavelengths of the DESI grids (0.8 A sampling), to float rounding
    for b, (lo, hi) in BAND_GRIDS.items():
        assert spec.wave[b][0] == pytest.approx(lo, abs=1e-6)
        assert spec.wave[b][-1] == pytest.approx(hi, abs=1e-6)
        assert np.diff(spec.wave[b]) == pytest.approx(0.8, abs=1e-6)
    # values read independently with astropy: exact equality
    with fits.open(path) as h:
        for b in spec.bands:
            up = b.upper()
            np.testing.assert_array_equal(spec.wave[b], h[f"{up}_WAVELENGTH"].data)
            np.testing.assert_array_equal(spec.flux[b], h[f"{up}_FLUX"].data)
            np.testing.assert_array_equal(spec.ivar[b], h[f"{up}_IVAR"].data)
        assert spec.flux["r"][3, 1000] == h["R_FLUX"].data[3, 1000]
    assert spec.flux["b"].dtype == np.float32
    # fibre 11 has all-zero ivar (QuasarNP README); clean() then zeroes its flux
    assert not np.any(spec.ivar["b"][11]) and not np.any(spec.ivar["z"][11])
    assert np.sum(spec.ivar["b"][10]) > 0
    assert not np.any(spec.clean().flux["b"][11])


@pytest.mark.parametrize(
    "name, meta_key, meta_value",
    [
        ("coadd-5-169-thru20210419.fits", "TILEID", 169),
        ("coadd-sv3-dark-26065.fits", "HPXPIXEL", 26065),
    ],
)
def test_golden_desi_coadds(name, meta_key, meta_value):
    path = shared_path(f"instrument/desi_coadds/{name}")
    assert desi.sniff(path) == "desi"
    spec = desi.read_desi_spectra(path)
    assert spec.n_spec == 5 and spec.bands == ("b", "r", "z")
    npix = {"b": 2751, "r": 2326, "z": 2881}
    for b in spec.bands:
        assert spec.flux[b].shape == (5, npix[b])
        assert spec.mask[b].shape == (5, npix[b]) and spec.mask[b].dtype == np.uint32
        assert spec.resolution[b].shape == (5, 11, npix[b])
    assert spec.meta[meta_key] == meta_value
    with fits.open(path) as h:
        np.testing.assert_array_equal(spec.targetid, h["FIBERMAP"].data["TARGETID"])
        np.testing.assert_array_equal(spec.mask["z"], h["Z_MASK"].data)
        np.testing.assert_array_equal(spec.resolution["r"], h["R_RESOLUTION"].data)
        np.testing.assert_array_equal(spec.flux["b"], h["B_FLUX"].data)
    assert len(spec.fibermap.colnames) > 60  # whole FIBERMAP kept
    # observed spectra (ivar > 0) have normalised resolution kernels (median column sum ~1,
    # tolerance 0.01); spectra with all-zero ivar have an all-zero resolution matrix
    for b in spec.bands:
        live = np.any(spec.ivar[b] > 0, axis=1)
        assert 1 <= live.sum() <= 5
        np.testing.assert_allclose(
            np.median(spec.resolution[b][live].sum(axis=1), axis=1), 1.0, atol=0.01
        )
        assert not np.any(spec.resolution[b][~live])


def test_golden_coadd_sub_selection():
    path = shared_path("instrument/desi_coadds/coadd-5-169-thru20210419.fits")
    full = desi.read_desi_spectra(path)
    tids = [full.targetid[3], full.targetid[1]]
    sub = desi.read_desi_spectra(path, targetids=tids, bands=["Z", "b", "z"])
    assert sub.bands == ("b", "z")  # sorted by wavelength
    np.testing.assert_array_equal(sub.targetid, full.targetid[[1, 3]])  # file order kept
    np.testing.assert_array_equal(sub.flux["z"], full.flux["z"][[1, 3]])
    with pytest.raises(InputError, match="TARGETID"):
        desi.read_desi_spectra(path, targetids=[42])
    with pytest.raises(InputError, match="band 'q'"):
        desi.read_desi_spectra(path, bands=["q"])


def test_golden_desi_mock_trio():
    spath = shared_path("dla/desi_mock/spectra-16-1375.fits")
    tpath = shared_path("dla/desi_mock/truth-16-1375.fits")
    zpath = shared_path("dla/desi_mock/zbest-16-1375.fits")
    spec = read_spectra(spath)
    assert spec.n_spec == 5
    assert {b: spec.flux[b].shape[1] for b in spec.bands} == {"b": 2975, "r": 2645, "z": 2999}
    assert {b: spec.resolution[b].shape[1] for b in spec.bands} == {"b": 11, "r": 11, "z": 13}
    for b, (lo, hi) in {
        "b": (3569.3, 5948.5),
        "r": (5625.3, 7740.5),
        "z": (7435.3, 9833.7),
    }.items():
        assert spec.wave[b][0] == pytest.approx(lo, abs=0.05)
        assert spec.wave[b][-1] == pytest.approx(hi, abs=0.05)
    assert spec.meta["HPXPIXEL"] == 1375
    tids = [210007799, 210013261, 210012458, 210007439, 210012578]
    np.testing.assert_array_equal(spec.targetid, tids)

    tr = truth.read_truth(tpath)
    np.testing.assert_array_equal(tr.targetid, tids)
    assert list(tr.targets["OBJTYPE"]) == ["QSO"] * 5
    assert "MABS_1450" in tr.targets.colnames  # joined from TRUTH_QSO
    assert not np.any(tr.targets["IS_BAL"]) and tr.meta["IS_BAL"] == "derived: BAL_TEMPLATEID >= 0"
    assert tr.dlas.colnames[:4] == ["TARGETID", "Z_DLA", "NHI", "DLAID"]
    np.testing.assert_allclose(
        tr.dlas["NHI"],
        [19.57167225191797, 17.243756721837606, 17.521774891202544],
        rtol=0,
        atol=1e-12,
    )
    np.testing.assert_array_equal(tr.dlas["DLAID"], [210012458000, 210012578000, 210012578001])
    assert int(np.sum(tr.dlas["NHI"] > 19.3)) == 1
    assert len(tr.dlas_of(210012578)) == 2 and len(tr.dlas_of(210007799)) == 0

    zb = truth.read_zbest(zpath)
    assert zb.meta["EXTNAME"] == "ZBEST"
    np.testing.assert_array_equal(zb["TARGETID"], tids)
    assert float(np.min(zb["Z"])) == pytest.approx(1.874, abs=1e-3)
    assert float(np.max(zb["Z"])) == pytest.approx(2.595, abs=1e-3)
    assert list(zb["TARGETID"][zb["Z"] >= 2.33]) == [210012578]
    assert set(zb["SPECTYPE"]) == {"QSO"}  # str, not bytes


# ---------------------------------------------------------------------------------------------
# write_coadd
# ---------------------------------------------------------------------------------------------


def test_write_coadd_round_trip_and_layout(tmp_path):
    spec = make_spectra()
    out = desi.write_coadd(tmp_path / "coadd.fits", spec, header={"SEED": 7, "PIPELINE": "sim"})
    assert out == tmp_path / "coadd.fits"
    back = desi.read_desi_spectra(out)
    assert_spectra_equal(spec, back)
    assert back.meta["TILEID"] == 1234 and back.meta["SEED"] == 7
    with fits.open(out) as h:
        names = [x.name for x in h]
        assert names == ["PRIMARY", "FIBERMAP"] + [
            f"{b}_{k}" for b in "BRZ" for k in ("WAVELENGTH", "FLUX", "IVAR", "MASK", "RESOLUTION")
        ]
        hdr = h[0].header
        assert hdr["PIPELINE"] == "sim" and hdr["SEED"] == 7 and "SNVER" in hdr and "DATE" in hdr
        assert h["B_WAVELENGTH"].header["BUNIT"] == "Angstrom"
        assert h["R_FLUX"].header["BUNIT"] == "10**-17 erg/(s cm2 Angstrom)"
        assert h["Z_FLUX"].data.dtype == np.dtype(">f4") and h["Z_IVAR"].data.dtype == np.dtype(
            ">f4"
        )
        assert h["B_MASK"].data.dtype == np.uint32
        assert h["B_IVAR"].header["BUNIT"] == desi.IVAR_UNIT
        assert all("DATASUM" in x.header and x.header.get("EXTNAME") for x in h[1:])
    fm = Table.read(out, hdu="FIBERMAP")  # astropy reads it directly
    np.testing.assert_array_equal(fm["TARGETID"], spec.targetid)


def test_write_coadd_golden_round_trip(tmp_path):
    spec = desi.read_desi_spectra(shared_path("dla/desi_mock/spectra-16-1375.fits"))
    out = desi.write_coadd(tmp_path / "c.fits", spec)
    assert_spectra_equal(spec, desi.read_desi_spectra(out))


def test_write_coadd_optional_parts_and_single_band(tmp_path):
    spec = make_spectra(bands=("brz",), with_mask=False, with_res=False)
    out = desi.write_coadd(
        tmp_path / "c.fits", spec, extra_hdus=[fits.ImageHDU(np.arange(3), name="EXTRA")]
    )
    back = desi.read_desi_spectra(out)
    assert back.bands == ("brz",) and back.mask is None and back.resolution is None
    assert_spectra_equal(spec, back)
    with fits.open(out) as h:
        assert h[-1].name == "EXTRA"


def test_write_coadd_float64_is_rounded_to_float32(tmp_path):
    spec = make_spectra(n=2, bands=("b",))
    spec.flux["b"] = spec.flux["b"].astype(np.float64) + 1e-9
    back = desi.read_desi_spectra(desi.write_coadd(tmp_path / "c.fits", spec))
    assert back.flux["b"].dtype == np.float32
    np.testing.assert_array_equal(back.flux["b"], spec.flux["b"].astype(np.float32))


def test_write_coadd_refuses_overwrite_and_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.fits"
    spec = make_spectra(n=2)
    desi.write_coadd(path, spec)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        desi.write_coadd(path, spec)
    assert path.read_bytes() == before

    def broken_writeto(self, name, *args, **kwargs):
        Path(name).write_bytes(b"SIMPLE  =                    T" + b" " * 100)  # partial output
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", broken_writeto)
    with pytest.raises(OSError, match="disk full"):
        desi.write_coadd(path, make_spectra(n=3), overwrite=True)
    assert path.read_bytes() == before  # old file untouched
    with pytest.raises(OSError, match="disk full"):
        desi.write_coadd(tmp_path / "new.fits", spec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.fits"]  # no partial or temp file
    monkeypatch.undo()
    desi.write_coadd(path, make_spectra(n=3), overwrite=True)
    assert desi.read_desi_spectra(path).n_spec == 3


def test_write_coadd_rejects_bad_mask(tmp_path):
    spec = make_spectra(n=2, bands=("b",))
    spec.mask["b"] = -np.ones_like(spec.mask["b"], dtype=np.int32)
    with pytest.raises(InputError, match="uint32"):
        desi.write_coadd(tmp_path / "c.fits", spec)
    assert not (tmp_path / "c.fits").exists()


# ---------------------------------------------------------------------------------------------
# cframes
# ---------------------------------------------------------------------------------------------


def test_read_cframe(tmp_path):
    path = write_cframe(tmp_path / "cframe-b3-00123456.fits", camera="b3")
    assert desi.sniff(path) == "cframe"
    spec = read_spectra(path)
    assert spec.bands == ("b",)
    assert spec.meta["CAMERA"] == "b3" and spec.meta["SPECTROGRAPH"] == 3
    assert spec.meta["EXPID"] == 123456 and spec.meta["NIGHT"] == 20210419
    assert spec.flux["b"].shape == (5, 30) and spec.resolution["b"].shape == (5, 11, 30)
    with fits.open(path) as h:
        np.testing.assert_array_equal(spec.flux["b"], h[0].data)
    sub = desi.read_cframe(path, fibers=[1503, 1501])
    np.testing.assert_array_equal(sub.fibermap["FIBER"], [1501, 1503])
    np.testing.assert_array_equal(sub.ivar["b"], spec.ivar["b"][[1, 3]])
    with pytest.raises(InputError, match="FIBER"):
        desi.read_cframe(path, fibers=[7])


def test_read_cframes_merges_cameras(tmp_path):
    paths = [
        write_cframe(tmp_path / f"cframe-{c}3.fits", camera=f"{c}3", seed=i)
        for i, c in enumerate("zbr")
    ]
    spec = desi.read_cframes(paths, fibers=[1500, 1504])
    assert spec.bands == ("b", "r", "z")
    assert spec.meta["CAMERAS"] == "b3,r3,z3" and spec.meta["SPECTROGRAPH"] == 3
    assert spec.n_spec == 2 and spec.resolution is not None
    np.testing.assert_array_equal(spec.flux["z"], desi.read_cframe(paths[0]).flux["z"][[0, 4]])
    other_tid = write_cframe(tmp_path / "cframe-r3-x.fits", camera="r3", targetid_offset=1)
    with pytest.raises(InputError, match="TARGETID"):
        desi.read_cframes([paths[1], other_tid])
    other_exp = write_cframe(tmp_path / "cframe-r3-y.fits", camera="r3", expid=9)
    with pytest.raises(InputError, match="EXPID"):
        desi.read_cframes([paths[1], other_exp])
    other_spec = write_cframe(tmp_path / "cframe-r4.fits", camera="r4")
    with pytest.raises(InputError, match="SPECTROGRAPH"):
        desi.read_cframes([paths[1], other_spec])
    with pytest.raises(InputError, match="twice"):
        desi.read_cframes([paths[1], paths[1]])


def test_read_cframe_bad_camera_and_missing_hdu(tmp_path):
    path = write_cframe(tmp_path / "c.fits", camera="b3")
    with fits.open(path) as h:
        h[0].header["CAMERA"] = "x12"
        h.writeto(tmp_path / "badcam.fits", checksum=True)
        del h["FIBERMAP"]
        h.writeto(tmp_path / "nofm.fits", checksum=True)
    with pytest.raises(InputError, match="CAMERA") as err:
        desi.read_cframe(tmp_path / "badcam.fits")
    assert err.value.hdu == "FLUX" and "badcam.fits" in str(err.value)
    with pytest.raises(InputError) as err:
        desi.read_cframe(tmp_path / "nofm.fits")
    assert err.value.hdu == "FIBERMAP"


# ---------------------------------------------------------------------------------------------
# spPlate
# ---------------------------------------------------------------------------------------------


def test_read_spplate(tmp_path):
    path = write_spplate(tmp_path / "spPlate-3586-55181.fits")
    assert desi.sniff(path) == "spplate"
    spec = read_spectra(path)
    assert spec.bands == ("brz",) and spec.n_spec == 6
    np.testing.assert_allclose(spec.wave["brz"], 10 ** (3.5562 + 1e-4 * np.arange(50)), rtol=1e-14)
    np.testing.assert_array_equal(spec.fibermap["FIBER"], np.arange(1, 7))
    assert spec.targetid[0] == 3586 * 10**9 + 55181 * 10**4 + 1
    np.testing.assert_array_equal(spec.targetid, boss.boss_targetid(3586, 55181, np.arange(1, 7)))
    assert spec.meta["PLATE"] == 3586 and spec.meta["MJD"] == 55181
    assert list(spec.fibermap["OBJTYPE"]) == ["QSO"] * 6  # PLUGMAP kept
    with fits.open(path) as h:
        np.testing.assert_array_equal(spec.mask["brz"], h[2].data)  # ANDMASK, not ORMASK
        np.testing.assert_array_equal(spec.ivar["brz"], h[1].data)
    only25 = boss.read_spplate(path, mask_bits=1 << 25)
    assert int(np.count_nonzero(only25.mask["brz"])) == 3
    assert int(np.count_nonzero(spec.mask["brz"])) == 4
    sub = boss.read_spplate(path, fibers=[6, 2])
    np.testing.assert_array_equal(sub.fibermap["FIBER"], [2, 6])
    with pytest.raises(InputError, match="fiber"):
        boss.read_spplate(path, fibers=[0])


@pytest.mark.parametrize(
    "kwargs, hdu, column",
    [
        ({"n_hdus": 2}, "ANDMASK", None),
        ({"n_hdus": 5}, "PLUGMAP", None),
        ({"plugmap": False}, "PLUGMAP", None),
        ({"coeff1": -1e-4}, "PRIMARY", "COEFF1"),
        ({"coeff0": 400.0}, "PRIMARY", "COEFF0"),  # 10**400 overflows
    ],
)
def test_read_spplate_bad(tmp_path, kwargs, hdu, column):
    path = write_spplate(tmp_path / "s.fits", **kwargs)
    with pytest.raises(InputError) as err:
        boss.read_spplate(path)
    assert err.value.hdu == hdu and err.value.column == column and "s.fits" in str(err.value)


def test_read_spplate_missing_keyword(tmp_path):
    path = write_spplate(tmp_path / "s.fits")
    with fits.open(path) as h:
        del h[0].header["MJD"]
        h.writeto(tmp_path / "nomjd.fits")
    with pytest.raises(InputError, match="MJD") as err:
        boss.read_spplate(tmp_path / "nomjd.fits")
    assert err.value.column == "MJD"


# ---------------------------------------------------------------------------------------------
# truth / zbest
# ---------------------------------------------------------------------------------------------


def test_read_mock_truth(tmp_path):
    tr = truth.read_truth(write_truth_file(tmp_path / "truth.fits"))
    assert list(tr.targets["OBJTYPE"]) == ["QSO", "STAR", "QSO"]
    assert list(tr.targets["IS_BAL"]) == [False, False, True] and "IS_BAL" not in tr.meta
    assert tr.targets["MAG"].dtype == np.float32
    assert len(tr.dlas) == 3 and list(tr.dlas_of(13)["NHI"]) == [21.0, 20.3]
    assert tr.bal is None and tr.source == str(tmp_path / "truth.fits")
    no_dla = truth.read_truth(write_truth_file(tmp_path / "t2.fits", with_dla=False))
    assert no_dla.dlas is None and len(no_dla.dlas_of(11)) == 0


def test_read_truth_derives_is_bal_from_bi_civ(tmp_path):
    tr = truth.read_truth(write_truth_file(tmp_path / "t.fits", drop="IS_BAL"))
    assert list(tr.targets["IS_BAL"]) == [False, False, True]
    assert tr.meta["IS_BAL"] == "derived: BI_CIV > 0"


@pytest.mark.parametrize("drop, hdu", [("Z", "TRUTH"), ("TARGETID", "TRUTH"), ("NHI", "DLA_META")])
def test_read_truth_missing_column(tmp_path, drop, hdu):
    path = write_truth_file(tmp_path / "t.fits", drop=drop)
    with pytest.raises(InputError) as err:
        truth.read_truth(path)
    assert err.value.hdu == hdu and err.value.column == drop and "t.fits" in str(err.value)


def test_read_truth_and_zbest_missing_hdu(tmp_path):
    path = tmp_path / "empty.fits"
    fits.HDUList([fits.PrimaryHDU()]).writeto(path)
    with pytest.raises(InputError, match="TRUTH") as err:
        truth.read_truth(path)
    assert err.value.hdu == "TRUTH"
    with pytest.raises(InputError, match="ZBEST or REDSHIFTS"):
        truth.read_zbest(path)


def test_read_zbest_redshifts_hdu(tmp_path):
    t = Table(
        {
            "TARGETID": np.array([1, 2], np.int64),
            "Z": [0.5, 2.1],
            "ZWARN": np.array([0, 4], np.int64),
            "SPECTYPE": ["GALAXY", "QSO"],
        }
    )
    hdu = fits.table_to_hdu(t)
    hdu.name = "REDSHIFTS"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "redrock.fits")
    zb = truth.read_zbest(tmp_path / "redrock.fits")
    assert zb.meta["EXTNAME"] == "REDSHIFTS" and list(zb["SPECTYPE"]) == ["GALAXY", "QSO"]


# ---------------------------------------------------------------------------------------------
# bad input on coadds
# ---------------------------------------------------------------------------------------------


def _replace_fibermap(hl: fits.HDUList, edit) -> None:
    table = Table(hl["FIBERMAP"].data)
    edit(table)
    hdu = fits.table_to_hdu(table)
    hdu.name = "FIBERMAP"
    hl["FIBERMAP"] = hdu


def _rewrite(src: Path, dst: Path, edit) -> Path:
    with fits.open(src) as h:
        hl = fits.HDUList([x.copy() for x in h])
    edit(hl)
    if "NEXTEND" in hl[0].header:  # a deliberate edit, not a truncation
        hl[0].header["NEXTEND"] = len(hl) - 1
    hl.writeto(dst, checksum=True)
    return dst


@pytest.fixture
def coadd(tmp_path):
    return desi.write_coadd(tmp_path / "good.fits", make_spectra())


def test_missing_and_non_fits_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_spectra(tmp_path / "absent.fits")
    (tmp_path / "notes.txt").write_text("hello\n" * 1000)
    with pytest.raises(InputError, match=r"notes\.txt"):
        desi.sniff(tmp_path / "notes.txt")
    fits.HDUList([fits.PrimaryHDU(np.zeros(3))]).writeto(tmp_path / "other.fits")
    assert desi.sniff(tmp_path / "other.fits") is None
    with pytest.raises(InputError, match="not a DESI coadd"):
        read_spectra(tmp_path / "other.fits")


@pytest.mark.parametrize("frac", [0.3, 0.7, 0.999])
def test_truncated_file(coadd, tmp_path, frac):
    raw = coadd.read_bytes()
    bad = tmp_path / "trunc.fits"
    bad.write_bytes(raw[: int(len(raw) * frac)])
    with pytest.raises(InputError, match="trunc") as err:
        desi.read_desi_spectra(bad)
    assert "trunc.fits" in str(err.value)
    with pytest.raises(InputError):
        desi.sniff(bad)


def test_truncated_at_hdu_boundary(coadd, tmp_path):
    """A cut between two HDUs leaves valid FITS; NEXTEND (written by write_coadd) catches it."""
    with fits.open(coadd) as h:
        cut = h["R_WAVELENGTH"].fileinfo()["hdrLoc"]
        assert h[0].header["NEXTEND"] == len(h) - 1
    bad = tmp_path / "cut.fits"
    bad.write_bytes(coadd.read_bytes()[:cut])
    with pytest.raises(InputError, match="NEXTEND"):
        desi.read_desi_spectra(bad)


def test_mask_in_some_bands_only(coadd, tmp_path):
    bad = _rewrite(coadd, tmp_path / "bad.fits", lambda h: h.pop(h.index_of("Z_MASK")))
    with pytest.raises(InputError, match="MASK") as err:
        desi.read_desi_spectra(bad)
    assert err.value.hdu == "Z_MASK"


def test_corrupted_bytes_fail_checksum(coadd, tmp_path):
    raw = bytearray(coadd.read_bytes())
    raw[-3000] ^= 0xFF  # inside the last HDU's data
    bad = tmp_path / "flip.fits"
    bad.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="Datasum verification failed"):
        desi.read_desi_spectra(bad)


@pytest.mark.parametrize(
    "edit, hdu, column",
    [
        (lambda h: h.pop(h.index_of("R_IVAR")), "R_IVAR", None),
        (lambda h: h.pop(h.index_of("B_WAVELENGTH")), "B_WAVELENGTH", None),
        (
            lambda h: _replace_fibermap(h, lambda t: t.remove_column("TARGETID")),
            "FIBERMAP",
            "TARGETID",
        ),
        (
            lambda h: _replace_fibermap(
                h, lambda t: t.replace_column("TARGETID", t["TARGETID"].astype(str))
            ),
            "FIBERMAP",
            "TARGETID",
        ),
        (lambda h: h["FIBERMAP"].columns.change_name("TARGETID", "TID"), "FIBERMAP", "TARGETID"),
        (lambda h: setattr(h["Z_FLUX"], "data", h["Z_FLUX"].data[:-1]), "Z_FLUX", None),
        (lambda h: setattr(h["B_IVAR"], "data", h["B_IVAR"].data[:, :-1]), "B_IVAR", None),
        (lambda h: setattr(h["R_FLUX"], "data", h["R_FLUX"].data[0]), "R_FLUX", None),
        (lambda h: setattr(h["R_MASK"], "data", h["R_MASK"].data[:, 1:]), "R_MASK", None),
        (
            lambda h: setattr(h["B_RESOLUTION"], "data", h["B_RESOLUTION"].data[:, :, 2:]),
            "B_RESOLUTION",
            None,
        ),
        (
            lambda h: setattr(h["R_WAVELENGTH"], "data", h["R_WAVELENGTH"].data[::-1].copy()),
            "R_WAVELENGTH",
            None,
        ),
        (lambda h: h["Z_WAVELENGTH"].data.__setitem__(7, np.nan), "Z_WAVELENGTH", None),
        (lambda h: h["B_WAVELENGTH"].data.__setitem__(3, np.inf), "B_WAVELENGTH", None),
        (
            lambda h: setattr(h["B_MASK"], "data", np.zeros(h["B_MASK"].data.shape, np.float32)),
            "B_MASK",
            None,
        ),
    ],
)
def test_bad_structure_names_hdu(coadd, tmp_path, edit, hdu, column):
    bad = _rewrite(coadd, tmp_path / "bad.fits", edit)
    with pytest.raises(InputError) as err:
        read_spectra(bad)
    assert err.value.hdu == hdu, str(err.value)
    assert err.value.column == column
    assert err.value.path == str(bad)


def test_fibermap_row_count_mismatch(coadd, tmp_path):
    def edit(h):
        h["FIBERMAP"] = fits.BinTableHDU(h["FIBERMAP"].data[:-1], name="FIBERMAP")

    bad = _rewrite(coadd, tmp_path / "bad.fits", edit)
    with pytest.raises(InputError, match="FIBERMAP rows"):
        read_spectra(bad)


def test_bad_pixel_values_are_kept_and_cleaned(tmp_path):
    spec = make_spectra(n=3, bands=("b", "r"))
    spec.flux["b"][0, 2] = np.nan
    spec.flux["r"][1, 4] = np.inf
    spec.ivar["b"][2, 5] = -3.0
    spec.ivar["r"][0, 6] = np.nan
    back = desi.read_desi_spectra(desi.write_coadd(tmp_path / "c.fits", spec))
    # raw values preserved (mask-and-continue: the reader does not alter data)
    assert np.isnan(back.flux["b"][0, 2]) and np.isinf(back.flux["r"][1, 4])
    assert back.ivar["b"][2, 5] == -3.0 and np.isnan(back.ivar["r"][0, 6])
    clean = back.clean()
    for b in clean.bands:
        assert np.all(np.isfinite(clean.flux[b])) and np.all(clean.ivar[b] >= 0)
    assert clean.ivar["b"][2, 5] == 0 and clean.flux["b"][0, 2] == 0 and clean.ivar["r"][1, 4] == 0
    # masked pixels are zeroed too
    assert np.all(clean.ivar["b"][back.mask["b"] != 0] == 0)


def test_readers_do_not_import_torch():
    """Inference paths read spectra; the I/O modules must stay torch-free."""
    import subprocess
    import sys

    code = (
        "import sys, surveynet.io.desi, surveynet.io.boss, surveynet.io.truth, "
        "surveynet.io.spectra; sys.exit(int('torch' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
