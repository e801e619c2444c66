"""Widened template family of the spectral mocks (issue 23): redrock stars, desisim BAL troughs,
quasar host light. Each switch changes only what it should; the defaults keep the template and
parametric mocks unchanged (the parametric golden checks are in test_sim_spectra.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from conftest import shared_path
from surveynet.errors import ConfigError, InputError
from surveynet.sim.instrument import master_wave
from surveynet.sim.spectra import SpectraSimConfig, simulate_spectra
from surveynet.sim.templates import (
    BAL_LITE,
    REDROCK_STAR,
    REDROCK_STAR_SUBTYPES,
    TemplateLibrary,
    box_average,
)

#: quiet quasars: only the template continuum (and the switch under test) varies
CALM = dict(
    forest=False,
    lyman_limit=False,
    dla_probability=0.0,
    noise=False,
    dead_fibre_fraction=0.0,
    masked_pixel_fraction=0.0,
    frac_bad=0.0,
    resolution=False,
)


def _root():
    shared_path("templates/pickles")
    shared_path("templates/kc96")
    return shared_path("templates/desisim_basis_lite/qso_templates_v2.0-lite.fits").parents[1]


def _sim(n, seed, mix, **cfg):
    _, truth = simulate_spectra(
        n,
        seed,
        config=SpectraSimConfig(**{**CALM, **cfg}),
        templates=_root(),
        mix=mix,
        return_model=True,
    )
    return truth["TRUTH"], np.asarray(truth["MODEL"]["FLUX"])


def test_redrock_stars_subtypes_in_truth_and_quasars_untouched():
    for sub in REDROCK_STAR_SUBTYPES:
        shared_path("templates/" + REDROCK_STAR.format(sub=sub))
    mix = {"qso": 0.3, "star": 0.7}
    _, m0 = _sim(60, 4, mix)
    t1, m1 = _sim(60, 4, mix, star_library="redrock")
    s = np.asarray(t1["SOURCETYPE"] == "STAR")
    q = ~s
    assert np.array_equal(m0[q], m1[q])  # quasars are drawn before the stars
    assert set(t1["SUBTYPE"][s]) <= set(REDROCK_STAR_SUBTYPES)
    assert {"K", "M"} <= set(t1["SUBTYPE"][s])
    assert np.all(np.isnan(t1["TEFF"][s]))
    cv = np.asarray(t1["SUBTYPE"] == "CV")
    assert np.all(t1["TEMPLATEID"][s & ~cv] >= 0) and np.all(t1["TEMPLATEID"][cv] == -1)
    assert np.all(np.isfinite(m1)) and np.all(m1[s] >= 0) and np.all(m1[s].max(axis=1) > 0)
    # mixed: both libraries present (Pickles stars keep their T_eff)
    t2, _ = _sim(60, 4, mix, star_library="mixed", star_redrock_share=0.5)
    s2 = np.asarray(t2["SOURCETYPE"] == "STAR")
    assert np.isnan(t2["TEFF"][s2]).any() and np.isfinite(t2["TEFF"][s2]).any()


def test_redrock_star_is_the_rebuilt_archetype():
    path = shared_path("templates/" + REDROCK_STAR.format(sub="M"))
    lib = TemplateLibrary.load(_root())
    wave = master_wave()
    flux, ids = lib.redrock_star(np.random.default_rng(1), np.array(["M"]), np.zeros(1), wave)
    with fits.open(path) as h:
        basis = np.asarray(h["BASIS_VECTORS"].data, dtype=np.float64)
        coeff = np.asarray(h["ARCHETYPE_COEFF"].data[ids[0]], dtype=np.float64)
        w = 3000.0 + 0.1 * np.arange(basis.shape[1])
    ref = np.interp(wave, w, box_average(np.maximum(coeff @ basis, 0.0), 8))
    np.testing.assert_allclose(flux[0], ref, rtol=1e-5, atol=1e-6 * ref.max())
    # the M-dwarf TiO band head near 7,100 A is there: flux drops across it
    blue = flux[0][(wave > 7020) & (wave < 7040)].mean()
    red = flux[0][(wave > 7060) & (wave < 7080)].mean()
    assert red < blue


def test_bal_templates_set_truth_and_change_only_bal_troughs():
    bal_path = shared_path("templates/" + BAL_LITE)
    mix = {"qso": 1.0}
    kw = dict(qso_z_min=1.8, qso_z_max=3.5, bal_fraction=0.5, bal_z_min=1.8, bal_lobal_fraction=0.0)
    t0, m0 = _sim(40, 6, mix, **kw)
    t1, m1 = _sim(40, 6, mix, bal_source="templates", **kw)
    bal = np.asarray(t1["IS_BAL"])
    assert np.array_equal(bal, np.asarray(t0["IS_BAL"])) and bal.any() and (~bal).any()
    assert np.array_equal(m0[~bal], m1[~bal])
    with fits.open(bal_path) as h:
        bi, ai = h["METADATA"].data["BI_CIV"], h["METADATA"].data["AI_CIV"]
    for i in np.nonzero(bal)[0]:
        match = np.nonzero(np.isclose(bi, t1["BI_CIV"][i]) & np.isclose(ai, t1["AI_CIV"][i]))[0]
        assert match.size >= 1  # truth = one template's catalogue values
    assert not t1["LOBAL"].any()
    assert np.all((t1["AI_CIV"][bal] > 0) | (t1["BI_CIV"][bal] > 0))
    assert (t1["BI_CIV"][bal] > 0).any()
    # the troughs stay within the template's rest range (944.6-1686.5 A): redward of it (where
    # the parametric troughs, which reach 923 A for OVI, are absent too) the models agree
    wave = master_wave()
    for i in np.nonzero(bal)[0]:
        rest = wave / (1.0 + t1["Z"][i])
        out = rest > 1686.5
        # both models are scaled to the same r magnitude: outside, their ratio is one constant
        ok = out & (m0[i] > 0)
        r = m1[i][ok] / m0[i][ok]
        np.testing.assert_allclose(r, np.median(r), rtol=1e-4)


def test_random_bal_troughs_truth_and_placement():
    cfg = dict(CALM, bal_z_min=1.6, bal_lobal_fraction=0.0)
    kw = dict(mix={"qso": 1.0}, return_model=True)
    _, none = simulate_spectra(40, 7, config=SpectraSimConfig(**cfg, bal_fraction=0.0), **kw)
    _, rand = simulate_spectra(
        40, 7, config=SpectraSimConfig(**cfg, bal_fraction=1.0, bal_source="random"), **kw
    )
    t = rand["TRUTH"]
    z = np.asarray(t["Z"])
    hz = z >= 1.6
    assert hz.sum() >= 10
    assert np.all(np.asarray(t["IS_BAL"])[hz]) and not np.any(np.asarray(t["IS_BAL"])[~hz])
    bi, ai = np.asarray(t["BI_CIV"]), np.asarray(t["AI_CIV"])
    assert np.all(ai[hz] >= bi[hz]) and (bi[hz] > 0).any() and np.all(bi[~hz] == 0)
    m1, m0 = np.asarray(rand["MODEL"]["FLUX"]), np.asarray(none["MODEL"]["FLUX"])
    assert np.array_equal(m1[~hz], m0[~hz])
    wave = master_wave()
    for k in np.flatnonzero(hz):
        # the troughs only remove flux, and only blueward of CIV; the models are scaled to the
        # magnitude afterwards, so compare to the ratio redward of CIV
        red = wave > 1549.06 * (1.0 + z[k])
        ok = m0[k] > 0
        r = m1[k][ok] / m0[k][ok]
        ref = np.median(r[red[ok]])
        assert np.allclose(r[red[ok]], ref, rtol=1e-5)
        assert r.max() <= ref * (1.0 + 1e-5) and r.min() < ref * 0.95


def test_host_light_only_below_z_max():
    shared_path("templates/kc96/elliptical.fits")
    mix = {"qso": 1.0}
    kw = dict(qso_z_min=0.1, qso_z_max=1.6, qso_hz_fraction=0.0, bal_fraction=0.0)
    _, m0 = _sim(40, 8, mix, **kw)
    t1, m1 = _sim(40, 8, mix, qso_host=True, qso_host_ratio_range=(0.5, 1.0), **kw)
    low = np.asarray(t1["Z"] < 0.8)
    assert low.any() and (~low).any()
    assert np.array_equal(m0[~low], m1[~low])
    # host light reddens the quasar: more flux redward of 4000 A rest than the bare quasar
    wave = master_wave()
    for i in np.nonzero(low)[0]:
        rest = wave / (1.0 + t1["Z"][i])
        red, blue = (rest > 4100) & (rest < 5000), (rest > 3000) & (rest < 3900)
        ratio1 = m1[i][red].mean() / m1[i][blue].mean()
        ratio0 = m0[i][red].mean() / m0[i][blue].mean()
        assert ratio1 > ratio0


def test_star_bands_multiply_only_main_sequence_pickles_stars():
    mix = {"qso": 0.3, "star": 0.7}
    _, m0 = _sim(60, 5, mix, star_wd_fraction=0.2)
    t1, m1 = _sim(60, 5, mix, star_wd_fraction=0.2, star_bands=1.0)
    s = np.asarray(t1["SOURCETYPE"] == "STAR")
    ms = s & ~np.isin(np.asarray(t1["SUBTYPE"]), ["WD", "CV"])
    assert np.array_equal(m0[~s], m1[~s])  # quasars are drawn before the stars
    assert np.array_equal(m0[s & ~ms], m1[s & ~ms])  # white dwarfs and CVs keep no bands
    ok = m0[ms] > 0
    ratio = np.where(ok, m1[ms] / np.where(ok, m0[ms], 1.0), np.nan)
    # the models are scaled to the star's magnitude afterwards: the transmission is the ratio
    # over its maximum (1 away from the bands)
    trans = ratio / np.nanmax(ratio, axis=1, keepdims=True)
    assert np.nanmin(trans) > 0.0
    # every banded star has at least one band >= 20 % deep at its head (pixel 0.8 A, L >= 30 A)
    assert np.all(np.nanmin(trans, axis=1) < 0.82)
    # and the transmission is 1 over a good part of the spectrum
    assert np.all(np.nanmean(trans > 0.999, axis=1) > 0.05)
    # mixed library: only the Pickles share gets bands, the redrock archetypes are untouched
    kw = dict(star_library="mixed", star_redrock_share=0.5)
    _, m2 = _sim(60, 5, mix, **kw)
    t3, m3 = _sim(60, 5, mix, star_bands=1.0, **kw)
    s3 = np.asarray(t3["SOURCETYPE"] == "STAR")
    rr = s3 & np.isnan(np.asarray(t3["TEFF"], float))
    pk = s3 & ~rr & ~np.isin(np.asarray(t3["SUBTYPE"]), ["WD", "CV"])
    assert rr.any() and pk.any()
    assert np.array_equal(m2[rr], m3[rr])
    assert not np.array_equal(m2[pk], m3[pk])
    with pytest.raises(ConfigError, match="star_bands"):
        SpectraSimConfig(star_bands=1.5)


def test_star_cv_lines_add_emission_only_to_cvs():
    mix = {"qso": 0.3, "star": 0.7}
    _, m0 = _sim(80, 6, mix, star_cv_fraction=0.3)
    t1, m1 = _sim(80, 6, mix, star_cv_fraction=0.3, star_cv_lines=True)
    cv = np.asarray(t1["SUBTYPE"] == "CV")
    assert cv.sum() >= 5
    assert np.array_equal(m0[~cv], m1[~cv])
    wave = master_wave()
    ha = np.argmin(np.abs(wave - 6564.6))
    cont = np.argmin(np.abs(wave - 6300.0))
    # H-alpha (EW >= 20 A, sigma <= 25 A) stands above the continuum 260 A away, relative to the
    # same ratio without the lines (the models are rescaled to the magnitude afterwards)
    gain = (m1[cv, ha] / m1[cv, cont]) / (m0[cv, ha] / m0[cv, cont])
    assert np.all(gain > 1.3)


def test_widened_options_need_templates_and_valid_values():
    with pytest.raises(ConfigError, match="template mode"):
        simulate_spectra(3, seed=0, config=SpectraSimConfig(star_library="redrock"))
    with pytest.raises(ConfigError, match="template mode"):
        simulate_spectra(3, seed=0, config=SpectraSimConfig(qso_host=True))
    with pytest.raises(ConfigError, match="template mode"):
        simulate_spectra(3, seed=0, config=SpectraSimConfig(star_bands=0.5))
    with pytest.raises(ConfigError, match="template mode"):
        simulate_spectra(3, seed=0, config=SpectraSimConfig(star_cv_lines=True))
    with pytest.raises(ConfigError, match="star_library"):
        SpectraSimConfig(star_library="kurucz")
    with pytest.raises(ConfigError, match="bal_source"):
        SpectraSimConfig(bal_source="gaussian")
    with pytest.raises(ConfigError, match="star_redrock_fractions"):
        SpectraSimConfig(star_redrock_fractions=(1.0, 1.0))
    with pytest.raises(ConfigError, match="qso_host_z_max"):
        SpectraSimConfig(qso_host_z_max=1.2)


def test_missing_widened_template_file_is_named(tmp_path):
    root = _root()
    tpl = tmp_path / "tpl"
    (tpl / "desisim_basis_lite").mkdir(parents=True)
    (tpl / "redrock_templates").mkdir()
    for rel in (
        "desisim_basis_lite/qso_templates_v2.0-lite.fits",
        "desisim_basis_lite/lrg_templates_v2.1-lite.fits",
    ):
        (tpl / rel).symlink_to(root / rel)
    (tpl / "pickles").symlink_to(root / "pickles")
    (tpl / "kc96").symlink_to(root / "kc96")
    with pytest.raises(InputError, match=r"rrtemplate-STAR-A-v0\.1\.fits"):
        simulate_spectra(3, seed=0, templates=tpl, config=SpectraSimConfig(star_library="redrock"))
    with pytest.raises(InputError, match=r"bal_templates_v3\.0-lite\.fits"):
        simulate_spectra(3, seed=0, templates=tpl, config=SpectraSimConfig(bal_source="templates"))
