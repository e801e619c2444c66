"""BAL finder (surveynet.bal), its catalogue step (quasar bal) and the DLA trough mask (issue 23).

- BI/AI on synthetic spectra with a known box trough: trough limits to within one rest bin
  (69 km/s) and indices within 3 %;
- no trough: BI = AI = 0 (noiseless and noisy);
- the mask drops exactly the pixels of the transposed troughs inside the search range;
- ``surveynet quasar bal`` end to end on a tiny mock; ``dla predict --bal mask`` on it;
- bad inputs name the file / column / camera.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from surveynet.bal import (
    BAL_LINES,
    MASK_LINES,
    BalConfig,
    find_bals,
    mask_from_troughs,
    trough_rest_ranges,
)
from surveynet.constants import C_KMS
from surveynet.errors import InputError

UNITS_WARNING = "ignore:.*could not be saved in native FITS format:astropy.units.UnitsWarning"
#: one rest bin of the default grid (1e-4 dex), the resolution of the trough limits
BIN_KMS = C_KMS * (10**1e-4 - 1.0)


def _spectrum(z, troughs=(), *, noise=0.0, seed=0, n=9000):
    """Power-law quasar (CIV emission line) on a DESI-like grid with box troughs in CIV/SiIV.

    ``troughs``: (vmin, vmax, depth) in km/s, applied to both lines. Returns wave, flux, ivar.
    """
    lam = np.linspace(3600.0, 9824.0, n)
    rest = lam / (1.0 + z)
    cont = 10.0 * (rest / 1500.0) ** -1.5
    cont *= 1.0 + 1.5 * np.exp(-0.5 * ((rest / 1549.06 - 1.0) * C_KMS / 1200.0) ** 2)
    f = cont.copy()
    for vmin, vmax, depth in troughs:
        for line in BAL_LINES.values():
            v = C_KMS * (1.0 - rest / line)
            f = np.where((v > vmin) & (v < vmax), f * (1.0 - depth), f)
    sigma = np.full(n, max(noise, 1e-3)) * 10.0
    if noise:
        f = f + np.random.default_rng(seed).normal(0.0, sigma)
    return lam, f[None], (1.0 / sigma**2)[None]


def _run(lam, f, iv, z, cfg=None):
    return find_bals({"all": lam}, {"all": f}, {"all": iv}, [z], cfg).columns


def test_box_trough_bi_ai_and_limits():
    lam, f, iv = _spectrum(2.6, [(10000.0, 15000.0, 0.5)])
    c = _run(lam, f, iv, 2.6)
    for ion in ("CIV", "SIIV"):
        assert c[f"N{ion}_2000"][0] == 1
        assert abs(c[f"VMIN_{ion}_2000"][0, 0] - 10000.0) <= BIN_KMS
        assert abs(c[f"VMAX_{ion}_2000"][0, 0] - 15000.0) <= BIN_KMS
        assert abs(c[f"VMIN_{ion}_450"][0, 0] - 10000.0) <= BIN_KMS
        assert abs(c[f"VMAX_{ion}_450"][0, 0] - 15000.0) <= BIN_KMS
        assert np.all(c[f"VMIN_{ion}_2000"][0, 1:] == -1.0)
        # BI = (5000 - 2000) x (1 - 0.5 / 0.9) = 1333; AI = 5000 x (1 - 0.5 / 0.9) = 2222 km/s
        assert c[f"BI_{ion}"][0] == pytest.approx(3000.0 * (1 - 0.5 / 0.9), rel=0.03)
        assert c[f"AI_{ion}"][0] == pytest.approx(5000.0 * (1 - 0.5 / 0.9), rel=0.03)
        assert c[f"FMIN_{ion}_2000"][0, 0] == pytest.approx(0.5, abs=0.02)
        assert 10000.0 <= c[f"POSMIN_{ion}_2000"][0, 0] <= 15000.0
    assert c["BALMASK"][0] == 0


def test_narrow_trough_is_ai_only_and_low_velocity_cut_for_bi():
    # 1000 km/s wide: an AI trough, no BI trough; a 2500 km/s trough from 1000 km/s: BI counts
    # only its part above 3000 km/s, which is shorter than 2000 km/s
    lam, f, iv = _spectrum(2.8, [(6000.0, 7000.0, 0.6), (1000.0, 3500.0, 0.6)])
    c = _run(lam, f, iv, 2.8)
    assert c["BI_CIV"][0] == 0 and c["NCIV_2000"][0] == 0
    assert c["NCIV_450"][0] == 2
    # ordered from the highest velocity down, as DESI's catalogue
    assert c["VMAX_CIV_450"][0, 0] > c["VMAX_CIV_450"][0, 1]
    assert c["AI_CIV"][0] == pytest.approx(3500.0 * (1 - 0.4 / 0.9), rel=0.05)


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_no_trough_gives_zero(noise):
    lam, f, iv = _spectrum(3.1, noise=noise, seed=3)
    c = _run(lam, f, iv, 3.1)
    for col in ("BI_CIV", "AI_CIV", "BI_SIIV", "AI_SIIV"):
        assert c[col][0] == 0.0
    assert c["NCIV_450"][0] == 0 and np.all(c["VMIN_CIV_450"][0] == -1.0)


def test_noisy_trough_found_and_flags():
    lam, f, iv = _spectrum(2.5, [(8000.0, 14000.0, 0.7)], noise=0.2, seed=1)
    z = np.array([2.5, np.nan, 0.5])
    f3, iv3 = np.repeat(f, 3, axis=0), np.repeat(iv, 3, axis=0)
    c = find_bals({"all": lam}, {"all": f3}, {"all": iv3}, z).columns
    assert c["BI_CIV"][0] > 0 and abs(c["VMAX_CIV_2000"][0, 0] - 14000.0) < 600.0
    assert c["BALMASK"][1] & 1  # BAD_Z
    assert c["BALMASK"][2] & 2 and c["BI_CIV"][2] == 0  # z = 0.5: CIV window not covered


def test_find_bals_bad_shapes_name_the_camera():
    lam, f, iv = _spectrum(2.5)
    with pytest.raises(ValueError, match="camera all"):
        find_bals({"all": lam}, {"all": f}, {"all": iv[:, :-1]}, [2.5])
    with pytest.raises(ValueError, match="cameras differ"):
        find_bals({"all": lam}, {"b": f}, {"all": iv}, [2.5])
    with pytest.raises(ValueError, match="fit_range"):
        BalConfig(fit_range=(1400.0, 2000.0))


def test_trough_reaching_zero_velocity_is_kept():
    # an AI trough from the line centre (VMIN = 0, the red end of the window) is a trough, -1 is
    # an unused slot (regression: VMIN = 0 troughs were dropped)
    lam, f, iv = _spectrum(3.0, [(0.0, 6000.0, 0.6)])
    c = _run(lam, f, iv, 3.0)
    assert c["NCIV_450"][0] == 1 and c["VMIN_CIV_450"][0, 0] == 0.0
    r = trough_rest_ranges(c["VMIN_CIV_450"][0], c["VMAX_CIV_450"][0], [("LYA", 1215.67)])
    assert r.shape == (1, 2) and r[0, 1] == pytest.approx(1215.67)


def test_trough_ranges_and_mask_pixels():
    r = trough_rest_ranges([5000.0, -1.0], [9000.0, -1.0], MASK_LINES)
    assert r.shape == (len(MASK_LINES), 2)
    lya = next(w for n, w in MASK_LINES if n == "LYA")
    k = [n for n, _ in MASK_LINES].index("LYA")
    assert np.allclose(r[k], [lya * (1 - 9000.0 / C_KMS), lya * (1 - 5000.0 / C_KMS)])
    rest = np.linspace(1000.0, 1300.0, 3001)
    m = mask_from_troughs(rest, r)
    expect = np.zeros(rest.size, bool)
    for lo, hi in r:
        expect |= (rest >= lo) & (rest <= hi)
    assert np.array_equal(m, expect)


def test_mask_sightline_sets_exactly_the_trough_pixels():
    from surveynet.dla.bal_mask import mask_sightline
    from surveynet.dla.sightline import Sightline

    n = 5000
    ll = np.log10(3600.0) + 1e-4 * np.arange(n)
    rng = np.random.default_rng(0)
    flux = 1.0 + 0.05 * rng.normal(size=n)
    sl = Sightline(7, 3.0, ll, flux, np.full(n, 0.05), 6.0, camera="all")
    tr = np.array([[4000.0, 8000.0], [15000.0, 16000.0]])
    out, m = mask_sightline(sl, tr, rest_range=(900.0, 1346.0))
    rest = sl.rest_wave
    expect = np.zeros(n, bool)
    for _, lam in MASK_LINES:
        for vmin, vmax in tr:
            expect |= (rest >= lam * (1 - vmax / C_KMS)) & (rest <= lam * (1 - vmin / C_KMS))
    expect &= (rest >= 900.0) & (rest <= 1346.0)
    assert np.array_equal(m, expect) and m.sum() > 100
    assert np.all(np.isinf(out.error[m])) and np.array_equal(out.error[~m], sl.error[~m])
    assert np.array_equal(out.flux[~m], sl.flux[~m]) and np.all(np.isfinite(out.flux))
    assert abs(np.mean(out.flux[m]) - 1.0) < 0.05  # interpolated between the neighbours
    assert np.all(np.isfinite(sl.error))  # the input is not modified
    # the noise fill keeps the neighbours' scatter
    out2, m2 = mask_sightline(sl, tr, fill="noise")
    assert np.array_equal(m2, m) and 0.02 < np.std(out2.flux[m]) < 0.1
    # nothing to mask: the same object back
    same, m0 = mask_sightline(sl, np.array([[-1.0, -1.0]]))
    assert same is sl and not m0.any()


@pytest.fixture(scope="module")
def bal_mock(tmp_path_factory):
    from surveynet.sim.spectra import preset_config, simulate_to_files

    out = tmp_path_factory.mktemp("balmock")
    cfg = preset_config("dla", bal_fraction=0.5, resolution=False, qso_mag_range=(18.0, 19.0))
    return simulate_to_files(out / "m", 16, 23, n_files=1, overwrite=True, config=cfg)


@pytest.mark.filterwarnings(UNITS_WARNING)
def test_quasar_bal_cli_end_to_end(tmp_path, bal_mock, capsys):
    from surveynet.cli import main

    files, truth = bal_mock
    out = tmp_path / "bal.fits"
    argv = ["quasar", "bal", *map(str, files), "--qso-catalog", str(truth), "--out", str(out)]
    assert main([*argv, "--workers", "0"]) == 0
    assert "with BI_CIV > 0" in capsys.readouterr().out
    t = Table.read(out, hdu="BALCAT")
    for col in (
        "TARGETID",
        "Z",
        "BI_CIV",
        "ERR_BI_CIV",
        "NCIV_2000",
        "VMIN_CIV_2000",
        "VMAX_CIV_2000",
        "POSMIN_CIV_2000",
        "FMIN_CIV_2000",
        "AI_CIV",
        "ERR_AI_CIV",
        "NCIV_450",
        "VMIN_CIV_450",
        "VMAX_CIV_450",
        "POSMIN_CIV_450",
        "FMIN_CIV_450",
        "BI_SIIV",
        "AI_SIIV",
        "VMIN_SIIV_450",
        "BALMASK",
    ):
        assert col in t.colnames, col
    assert t["VMIN_CIV_2000"].shape[1] == 5 and t["VMIN_CIV_450"].shape[1] == 17
    assert str(t["BI_CIV"].unit) == "km / s"
    tr = Table.read(truth, hdu="TRUTH")
    tr = tr[np.isin(tr["TARGETID"], t["TARGETID"])]
    is_bal = dict(zip(tr["TARGETID"].tolist(), np.asarray(tr["IS_BAL"]).tolist(), strict=True))
    found = {int(a) for a, b in zip(t["TARGETID"], t["BI_CIV"], strict=True) if b > 0}
    n_bal = sum(is_bal.values())
    assert n_bal >= 3
    assert len(found & {k for k, v in is_bal.items() if v}) >= n_bal - 1
    assert not found - {k for k, v in is_bal.items() if v}
    assert (tmp_path / "bal.config.json").exists()
    # refuses to overwrite; a bad redshift column is named
    capsys.readouterr()
    assert main([*argv, "--workers", "0"]) != 0
    assert "exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--workers", "0", "--z-col", "NOPE"]) != 0
    err = capsys.readouterr().err
    assert "NOPE" in err and "truth.fits" in err


def test_bal_mask_inputs_name_file_and_column(tmp_path, bal_mock):
    from surveynet.dla.bal_mask import bal_flagged, read_bal_catalog

    _, truth = bal_mock
    assert bal_flagged(truth)  # IS_BAL of the truth file
    bad = tmp_path / "noflag.fits"
    Table({"TARGETID": [1, 2], "Z_QN": [2.5, 3.0]}).write(bad)
    with pytest.raises(InputError, match="IS_BAL_QN") as e:
        bal_flagged(bad)
    assert "noflag.fits" in str(e.value)
    with pytest.raises(InputError, match="VMIN_CIV_450"):
        read_bal_catalog(bad)
    with pytest.raises(InputError, match=r"missing\.fits"):
        bal_flagged(tmp_path / "missing.fits")


@pytest.mark.filterwarnings(UNITS_WARNING)
def test_apply_bal_mask_masks_only_flagged_sightlines(tmp_path, bal_mock):
    """What `dla predict --bal mask` does to a file: only BAL-flagged sightlines get masked."""
    from surveynet.dla.bal_mask import apply_bal_mask
    from surveynet.dla.config import DataConfig, PredictConfig
    from surveynet.dla.data import read_sightlines, read_spectra_file

    files, truth = bal_mock
    sp = read_spectra_file(files[0], resolution=False)
    sls = read_sightlines(sp, str(truth), DataConfig(camera="all", z_qso_min=2.33))
    (masked,) = apply_bal_mask(
        sp, [sls], qso_catalog=truth, config=PredictConfig(bal_select="flagged")
    )
    tt = Table.read(truth, hdu="TRUTH")
    bal = {int(t) for t in tt["TARGETID"][np.asarray(tt["IS_BAL"]).astype(bool)]}
    changed = {a.targetid for a, b in zip(sls, masked, strict=True) if a is not b}
    assert changed and changed <= bal
    for a, b in zip(sls, masked, strict=True):
        if a is not b:
            assert np.isinf(b.error).sum() > np.isinf(a.error).sum()
    # the default: the finder runs on every quasar and those it calls BAL (BI_CIV > 0) are masked
    (own,) = apply_bal_mask(sp, [sls], qso_catalog=truth, config=PredictConfig(bal="mask"))
    changed_own = {a.targetid for a, b in zip(sls, own, strict=True) if a is not b}
    assert changed_own and changed_own <= bal


def test_veto_drops_absorbers_inside_troughs_only():
    from surveynet.dla.bal_mask import veto_catalog
    from surveynet.dla.catalog import Catalog

    zq = 3.0
    lya = 1215.67
    # trough 5000-10000 km/s transposed to Lya: rest 1175.1-1195.4 A
    z_in = (1 + zq) * lya * (1 - 7000.0 / C_KMS) / lya - 1
    z_out = (1 + zq) * 1100.0 / lya - 1
    d = Table(
        {
            "TARGETID": [1, 1, 2],
            "Z_QSO": [zq, zq, zq],
            "Z_DLA": [z_in, z_out, z_in],
            "ABSORBER_TYPE": ["DLA", "DLA", "DLA"],
        }
    )
    q = Table({"TARGETID": [1, 2], "N_DLA": [2, 1]})
    out = veto_catalog(
        Catalog(dlas=d, qsos=q), {1: np.array([[5000.0, 10000.0]])}, lines=[("LYA", lya)]
    )
    assert out.dlas["TARGETID"].tolist() == [1, 2]
    assert np.isclose(out.dlas["Z_DLA"][0], z_out)
    assert out.qsos["N_DLA"].tolist() == [1, 1]
