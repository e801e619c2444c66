"""Hypothesis fuzzing of the spectra and truth readers.

Each test corrupts a small valid file (truncation at a random byte, random byte overwrites, a
dropped HDU, mis-shaped or shuffled arrays, NaN/inf or reordered wavelengths, removed columns)
and requires the reader either to return a valid object or to raise ``InputError``; any other
exception type, or a returned Spectra that fails ``validate()``, is a bug. Examples are
bounded (max_examples 30, no deadline, no example database) so the file runs in under 30 s;
set ``SURVEYNET_FUZZ_EXAMPLES=500`` for a longer hunt.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surveynet.errors import InputError
from surveynet.io import desi, truth
from surveynet.io.spectra import Spectra, read_spectra
from test_io_spectra import (
    assert_spectra_equal,
    make_spectra,
    write_cframe,
    write_spplate,
    write_truth_file,
)

FUZZ = settings(
    max_examples=int(os.environ.get("SURVEYNET_FUZZ_EXAMPLES", "30")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class _Files(dict):
    """Bytes of the source files, with a short repr (hypothesis prints failing arguments)."""

    def __repr__(self) -> str:
        return f"<files {sorted(self)}>"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    """Bytes of one small valid file of each kind."""
    d = tmp_path_factory.mktemp("fuzz_src")
    out = {
        "coadd": desi.write_coadd(d / "coadd.fits", make_spectra(n=3, n_pix=24)),
        "cframe": write_cframe(d / "cframe.fits", n_fiber=3, n_pix=20),
        "spplate": write_spplate(d / "spplate.fits", n_fiber=3, n_pix=20),
        "truth": write_truth_file(d / "truth.fits"),
    }
    return _Files({k: Path(v).read_bytes() for k, v in out.items()})


def _check_read(path: Path) -> None:
    """read_spectra must return a valid Spectra or raise InputError naming the file."""
    try:
        spec = read_spectra(path)
    except InputError as err:
        assert err.path == str(path) or str(path) in str(err), str(err)
        return
    assert isinstance(spec, Spectra)
    spec.validate()
    spec.clean()  # must not raise on whatever values survived


def _check_truth(path: Path) -> None:
    try:
        tr = truth.read_truth(path)
    except InputError as err:
        assert str(path) in str(err)
        return
    assert "TARGETID" in tr.targets.colnames and "Z" in tr.targets.colnames


_N = 0


def _tmp(tmp_path: Path) -> Path:
    global _N
    _N += 1
    return tmp_path / f"fuzz-{_N}.fits"


@FUZZ
@given(
    kind=st.sampled_from(["coadd", "cframe", "spplate", "truth"]),
    frac=st.floats(0.0, 1.0, exclude_max=True),
)
def test_truncated_files(files, tmp_path, kind, frac):
    raw = files[kind]
    path = _tmp(tmp_path)
    path.write_bytes(raw[: int(frac * len(raw))])
    if kind == "truth":
        with pytest.raises(InputError):
            truth.read_truth(path)
    else:
        with pytest.raises(InputError):
            read_spectra(path)


@FUZZ
@given(
    kind=st.sampled_from(["coadd", "cframe", "spplate", "truth"]),
    edits=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.binary(min_size=1, max_size=16)),
        min_size=1,
        max_size=4,
    ),
)
def test_overwritten_bytes(files, tmp_path, kind, edits):
    raw = bytearray(files[kind])
    for frac, junk in edits:
        pos = int(frac * len(raw))
        raw[pos : pos + len(junk)] = junk
    path = _tmp(tmp_path)
    path.write_bytes(bytes(raw[: len(files[kind])]))
    if kind == "truth":
        _check_truth(path)
    else:
        _check_read(path)


def _edited(raw: bytes, tmp_path: Path, edit) -> Path:
    hl = fits.HDUList.fromstring(raw)
    edit(hl)
    if "NEXTEND" in hl[0].header:  # a deliberate edit, not a truncation
        hl[0].header["NEXTEND"] = len(hl) - 1
    dst = _tmp(tmp_path)
    hl.writeto(dst, checksum=True)
    return dst


@FUZZ
@given(kind=st.sampled_from(["coadd", "cframe", "spplate"]), data=st.data())
def test_dropped_hdu(files, tmp_path, kind, data):
    n = len(fits.HDUList.fromstring(files[kind]))
    idx = data.draw(st.integers(1, n - 1))
    path = _edited(files[kind], tmp_path, lambda h: h.pop(idx))
    _check_read(path)


def _image_indices(hl: fits.HDUList) -> list[int]:
    return [
        i
        for i, h in enumerate(hl)
        if isinstance(h, fits.PrimaryHDU | fits.ImageHDU) and h.data is not None
    ]


@FUZZ
@given(kind=st.sampled_from(["coadd", "cframe", "spplate"]), data=st.data())
def test_misshaped_arrays(files, tmp_path, kind, data):
    hl0 = fits.HDUList.fromstring(files[kind])
    idx = data.draw(st.sampled_from(_image_indices(hl0)))
    shape = hl0[idx].data.shape
    op = data.draw(
        st.sampled_from(["cut", "transpose", "flatten", "shuffle", "add_axis", "empty_axis"])
    )
    axis = data.draw(st.integers(0, len(shape) - 1))
    seed = data.draw(st.integers(0, 2**16))

    def edit(h):
        arr = np.array(h[idx].data)
        if op == "cut":
            arr = np.take(arr, np.arange(max(arr.shape[axis] - 1, 0)), axis=axis)
        elif op == "transpose":
            arr = arr.T.copy()
        elif op == "flatten":
            arr = arr.ravel()
        elif op == "shuffle":
            arr = np.random.default_rng(seed).permutation(arr, axis=axis)
        elif op == "add_axis":
            arr = arr[None]
        else:
            arr = np.take(arr, [], axis=axis)
        h[idx].data = arr

    _check_read(_edited(files[kind], tmp_path, edit))


@FUZZ
@given(
    kind=st.sampled_from(["coadd", "cframe"]),
    band=st.sampled_from(["B", "R", "Z"]),
    pix=st.integers(0, 19),
    op=st.sampled_from(["nan", "inf", "-inf", "repeat", "swap", "reverse"]),
)
def test_bad_wavelength_values(files, tmp_path, kind, band, pix, op):
    name = f"{band}_WAVELENGTH" if kind == "coadd" else "WAVELENGTH"

    def edit(h):
        w = np.array(h[name].data, dtype=np.float64)
        other = pix - 1 if pix > 0 else 1
        if op in ("nan", "inf", "-inf"):
            w[pix] = float(op)
        elif op == "repeat":
            w[pix] = w[other]
        elif op == "swap":
            w[[pix, other]] = w[[other, pix]]
        else:
            w = w[::-1].copy()
        h[name].data = w

    path = _edited(files[kind], tmp_path, edit)
    with pytest.raises(InputError) as err:
        read_spectra(path)
    assert err.value.hdu == name


@FUZZ
@given(
    kind=st.sampled_from(["coadd", "cframe", "spplate"]),
    value=st.sampled_from([np.nan, np.inf, -np.inf, -5.0, 0.0]),
    data=st.data(),
)
def test_bad_pixel_values_mask_and_continue(files, tmp_path, kind, value, data):
    hl0 = fits.HDUList.fromstring(files[kind])
    candidates = [
        i
        for i in _image_indices(hl0)
        if hl0[i].data.dtype.kind == "f"
        and "WAVELENGTH" not in hl0[i].name
        and hl0[i].data.ndim >= 2
    ]
    idx = data.draw(st.sampled_from(candidates))
    flat = data.draw(st.integers(0, hl0[idx].data.size - 1))

    def edit(h):
        arr = np.array(h[idx].data)
        arr.flat[flat] = value
        h[idx].data = arr

    spec = read_spectra(_edited(files[kind], tmp_path, edit))  # must not raise
    clean = spec.clean()
    for b in clean.bands:
        assert np.all(np.isfinite(clean.flux[b])) and np.all(clean.ivar[b] >= 0)


@FUZZ
@given(hdu=st.sampled_from(["TRUTH", "DLA_META"]), data=st.data())
def test_truth_column_damage(files, tmp_path, hdu, data):
    hl0 = fits.HDUList.fromstring(files["truth"])
    cols = list(hl0[hdu].columns.names)
    col = data.draw(st.sampled_from(cols))
    op = data.draw(st.sampled_from(["drop", "to_str", "cut_rows"]))

    def edit(h):
        t = Table(h[hdu].data)
        if op == "drop":
            t.remove_column(col)
        elif op == "to_str":
            t.replace_column(col, t[col].astype(str))
        else:
            t = t[:-1]
        new = fits.table_to_hdu(t)
        new.name = hdu
        h[hdu] = new

    path = _edited(files["truth"], tmp_path, edit)
    _check_truth(path)
    if op == "drop" and col in ("TARGETID", "Z", "Z_DLA", "NHI"):
        with pytest.raises(InputError) as err:
            truth.read_truth(path)
        assert err.value.hdu == hdu and err.value.column == col


@FUZZ
@given(
    n=st.integers(0, 4),
    bands=st.sampled_from([("b",), ("b", "r", "z"), ("r", "z"), ("brz",)]),
    n_pix=st.integers(2, 30),
    with_mask=st.booleans(),
    with_res=st.booleans(),
    n_bad=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_write_read_round_trip_property(
    tmp_path, n, bands, n_pix, with_mask, with_res, n_bad, seed
):
    """Any valid Spectra we write (NaN/inf/negative pixels included) reads back bit-exactly."""

    spec = make_spectra(
        n=n, bands=bands, n_pix=n_pix, seed=seed, with_mask=with_mask, with_res=with_res
    )
    rng = np.random.default_rng(seed)
    for b in bands:
        if n == 0:
            continue
        for _ in range(n_bad):
            i, j = rng.integers(n), rng.integers(n_pix)
            spec.flux[b][i, j] = rng.choice([np.nan, np.inf, -np.inf, -1e30])
            spec.ivar[b][i, j] = rng.choice([np.nan, -1.0, 0.0])
    path = desi.write_coadd(_tmp(tmp_path), spec)
    assert_spectra_equal(spec, desi.read_desi_spectra(path))
