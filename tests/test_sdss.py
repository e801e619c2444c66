"""SDSS spec-lite reader (surveynet.io.sdss) and the SDSS identity columns of both catalogues."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from conftest import shared_path
from surveynet.errors import InputError
from surveynet.io.boss import boss_targetid
from surveynet.io.sdss import (
    NO_DATA,
    is_speclite,
    read_speclite,
    sniff_speclite,
)

F310 = "sdss/spec-3655-55240-0310.fits"
F002 = "sdss/spec-3655-55240-0002.fits"


def _fake(
    path,
    *,
    i0=35515,
    n=40,
    plate=1234,
    mjd=56000,
    fiber=7,
    spall=True,
    header=True,
    drop=None,
    loglam=None,
    extname=False,
):
    """A small synthetic spec-lite file (COADD pixels on the 1e-4 grid, one SPALL row)."""
    rng = np.random.default_rng(fiber)
    cols = {
        "FLUX": rng.normal(1.0, 0.1, n).astype(np.float32),
        "LOGLAM": (np.arange(i0, i0 + n) * 1e-4).astype(np.float32) if loglam is None else loglam,
        "IVAR": np.full(n, 4.0, np.float32),
        "AND_MASK": np.where(np.arange(n) == 3, 1 << 25, 0).astype(np.int32),
    }
    for c in drop or ():
        cols.pop(c)
    hdr = fits.Header()
    if header:
        hdr.update(PLATEID=plate, MJD=mjd, FIBERID=fiber, COEFF0=i0 * 1e-4, COEFF1=1e-4)
    hdus = [
        fits.PrimaryHDU(header=hdr),
        fits.BinTableHDU(Table(cols), name="COADD" if extname else None),
    ]
    if spall:
        hdus.append(
            fits.BinTableHDU(
                Table(
                    {
                        "PLATE": [plate],
                        "MJD": [mjd],
                        "FIBERID": [fiber],
                        "CLASS": ["QSO"],
                        "Z": [2.5],
                        "PLUG_RA": [10.0],
                        "PLUG_DEC": [-1.0],
                    }
                )
            )
        )
    fits.HDUList(hdus).writeto(path)
    return path


def test_real_file_one(shared_file):
    p = shared_file(F310)
    s = read_speclite(p)
    assert s.bands == ("brz",) and s.n_spec == 1
    fm = s.fibermap
    assert (int(fm["PLATE"][0]), int(fm["MJD"][0]), int(fm["FIBERID"][0])) == (3655, 55240, 310)
    assert int(s.targetid[0]) == 3655552400310 == int(boss_targetid(3655, 55240, 310))
    assert fm["CLASS"][0] == "QSO" and abs(float(fm["Z"][0]) - 2.3024) < 1e-3
    assert abs(float(fm["TARGET_RA"][0]) - 110.23625) < 1e-4
    with fits.open(p) as h:
        d = h[1].data
        np.testing.assert_array_equal(s.flux["brz"][0], d["FLUX"])
        np.testing.assert_array_equal(s.ivar["brz"][0], d["IVAR"])
        np.testing.assert_allclose(np.log10(s.wave["brz"]), d["LOGLAM"], atol=1e-6)
    assert s.meta["PLATE"] == 3655 and s.meta["MJD"] == 55240
    assert sniff_speclite(p)


def test_real_files_many_and_dispatch(shared_file):
    a, b = shared_file(F310), shared_file(F002)
    s = read_speclite([a, b])
    assert s.n_spec == 2
    assert list(s.fibermap["FIBERID"]) == [310, 2]
    assert list(s.fibermap["FILENAME"]) == [a.name, b.name]
    from surveynet.dla.data import read_spectra_file

    one = read_spectra_file(b)
    np.testing.assert_array_equal(one.flux["brz"][0], s.flux["brz"][1][s.mask["brz"][1] != NO_DATA])
    # a DESI coadd goes to the DESI reader
    desi = read_spectra_file(shared_file("quasarnp/test_coadd.fits"), resolution=False)
    assert desi.bands == ("b", "r", "z")
    assert not sniff_speclite(shared_file("quasarnp/test_coadd.fits"))


def test_union_grid_and_no_data(tmp_path):
    a = _fake(tmp_path / "a.fits", i0=35515, n=40, fiber=1)
    b = _fake(tmp_path / "b.fits", i0=35525, n=50, fiber=2, extname=True)
    s = read_speclite([a, b])
    assert s.wave["brz"].size == 60
    np.testing.assert_allclose(s.wave["brz"][0], 10**3.5515)
    m = s.mask["brz"]
    assert np.all(m[0, 40:] == NO_DATA) and np.all(s.ivar["brz"][0, 40:] == 0)
    assert np.all(m[1, :10] == NO_DATA) and m[1, 13] == 1 << 25
    assert list(s.targetid) == [int(boss_targetid(1234, 56000, f)) for f in (1, 2)]
    only25 = read_speclite(a, mask_bits=1 << 24)
    assert not np.any(only25.mask["brz"])
    c = s.clean()
    assert c.ivar["brz"][0, 3] == 0 and c.ivar["brz"][0, 4] == 4.0


def test_header_fallback(tmp_path):
    s = read_speclite(_fake(tmp_path / "a.fits", spall=False, fiber=9))
    assert int(s.fibermap["FIBERID"][0]) == 9 and np.isnan(s.fibermap["TARGET_RA"][0])


@pytest.mark.parametrize(
    ("kw", "hdu", "column"),
    [
        ({"drop": ["LOGLAM"]}, "COADD", None),
        ({"loglam": (np.arange(35515, 35555) * 1e-4 + 3e-5).astype(np.float64)}, "COADD", "LOGLAM"),
        ({"loglam": (np.arange(35555, 35515, -1) * 1e-4)}, "COADD", "LOGLAM"),
        ({"spall": False, "header": False}, "SPALL", "PLATE"),
    ],
)
def test_bad_input_names_file_hdu_column(tmp_path, kw, hdu, column):
    p = _fake(tmp_path / "bad.fits", **kw)
    with pytest.raises(InputError) as e:
        read_speclite(p)
    assert e.value.path == str(p) and e.value.hdu == hdu
    if column is not None:
        assert e.value.column == column


def test_bad_inputs_misc(tmp_path):
    p = _fake(tmp_path / "a.fits")
    with pytest.raises(InputError, match="given twice"):
        read_speclite([p, p])
    with pytest.raises(InputError, match="no spec-lite"):
        read_speclite([])
    img = tmp_path / "img.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((2, 2)))]).writeto(img)
    with fits.open(img) as h:
        assert not is_speclite(h)
    with pytest.raises(InputError, match="not a spec-lite") as e:
        read_speclite(img)
    assert e.value.hdu == "COADD"
    with pytest.raises(InputError):
        read_speclite(tmp_path / "missing.fits")


def test_quasar_catalogue_source_columns(tmp_path):
    from surveynet.quasar.catalog import add_source_columns, merge_rows

    sd = read_speclite([_fake(tmp_path / "a.fits", fiber=3), _fake(tmp_path / "b.fits", fiber=4)])
    t = add_source_columns(Table({"TARGETID": sd.targetid}), sd.fibermap, "x.fits")
    assert t.colnames == ["TARGETID", "SOURCE", "ROW", "PLATE", "MJD", "FIBERID"]
    assert list(t["FIBERID"]) == [3, 4] and list(t["ROW"]) == [0, 1]
    desi = Table({"TARGETID": [5, 6]})
    d = add_source_columns(Table(desi), desi, "d.fits")
    assert d.colnames == ["TARGETID", "SOURCE", "ROW"]  # DESI inputs: as before
    merged = merge_rows(
        [{c: np.asarray(t[c]) for c in t.colnames}, {c: np.asarray(d[c]) for c in d.colnames}]
    )
    assert list(merged["PLATE"]) == [1234, 1234, -1, -1]
    boss = Table({"TARGETID": [1], "PLATE": [3586], "MJD": [55181], "FIBER": [12]})
    assert list(add_source_columns(Table({"TARGETID": [1]}), boss, "p.fits")["FIBERID"]) == [12]
    with pytest.raises(ValueError, match="catalogue rows"):
        add_source_columns(Table({"TARGETID": [1]}), desi, "d.fits")


def test_dla_catalogue_source_columns():
    from surveynet.dla.catalog import Catalog, add_source_columns, merge_catalogs

    fm = Table(
        {"TARGETID": [10, 11, 12], "PLATE": [1, 1, 1], "MJD": [2, 2, 2], "FIBERID": [7, 8, 9]}
    )
    cat = Catalog.empty()
    cat.qsos.add_row({c: 0 for c in cat.qsos.colnames} | {"TARGETID": 12})
    cat = add_source_columns(cat, fm, "spec.fits")
    assert list(cat.qsos["ROW"]) == [2] and list(cat.qsos["FIBERID"]) == [9]
    assert {"SOURCE", "ROW", "PLATE", "MJD", "FIBERID"} <= set(cat.dlas.colnames)
    other = Catalog.empty()
    other.qsos.add_row({c: 0 for c in other.qsos.colnames} | {"TARGETID": 5})
    other = add_source_columns(other, Table({"TARGETID": [5]}), "coadd.fits")
    merged = merge_catalogs([cat, other])
    assert list(merged.qsos["FIBERID"]) == [9, -1] and list(merged.qsos["SOURCE"]) == [
        "spec.fits",
        "coadd.fits",
    ]


def test_shared_files_checked():
    # the goldens below rely on these two files being the README's
    for rel, fiber in ((F310, 310), (F002, 2)):
        s = read_speclite(shared_path(rel))
        assert int(s.fibermap["FIBERID"][0]) == fiber
