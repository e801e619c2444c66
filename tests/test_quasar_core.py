"""QuasarNET core: config, grids, preprocessing, numpy ops, torch/numpy parity, post-processing.

Golden tests read ../shared/data/quasarnp (desihub/QuasarNP test fixtures, MIT); tolerances are
stated in each assert. Keras-conversion goldens are in test_quasar_core_keras.py.
"""

from __future__ import annotations

import ast
import math

import numpy as np
import pytest

from conftest import shared_path
from surveynet.config import from_dict, to_dict
from surveynet.constants import LYA_REST
from surveynet.errors import ConfigError, InputError, ModelFormatError
from surveynet.quasar.config import (
    GridConfig,
    LinesConfig,
    QuasarConfig,
    QuasarNetConfig,
    grid_from_metadata,
    preprocessing_metadata,
)
from surveynet.quasar.lines import DEFAULT_LINES, line_label, rest_wavelength
from surveynet.quasar.postprocess import index_to_wave, is_qso, process_preds
from surveynet.quasar.preprocess import (
    QNFlag,
    normalize,
    preprocess,
    preprocess_arrays,
    rebin,
    rebin_arm,
    regrid,
)

DESI_WAVE = {"B": (3600.0, 5800.0), "R": (5760.0, 7620.0), "Z": (7520.0, 9824.0)}


def _desi_wave(lo: float, hi: float) -> np.ndarray:
    return np.round(np.arange(lo, hi + 0.4, 0.8), 1)


def _read_coadd():
    from astropy.io import fits

    with fits.open(shared_path("quasarnp/test_coadd.fits")) as h:
        bands = ("B", "R", "Z")
        return (
            {b: np.array(h[f"{b}_WAVELENGTH"].data) for b in bands},
            {b: np.array(h[f"{b}_FLUX"].data) for b in bands},
            {b: np.array(h[f"{b}_IVAR"].data) for b in bands},
        )


# ----------------------------------------------------------------------------- config and lines


def test_parameter_counts_match_keras():
    # exact counts from the spec (§7): original, 6-layer DESI, small test model
    assert QuasarNetConfig().n_parameters() == 521_882
    assert QuasarNetConfig(n_layers=6, padding="same").n_parameters() == 592_882
    assert QuasarNetConfig(n_filters=25, n_fc=25).n_parameters() == 36_857
    assert QuasarNetConfig().conv_lengths() == [217, 104, 48, 20]
    assert QuasarNetConfig(n_layers=6, padding="same").conv_lengths() == [222, 111, 56, 28, 14, 7]
    assert QuasarNetConfig(n_layers=6, padding="same").flops() == pytest.approx(43.8e6, rel=0.01)


def test_config_validation_and_round_trip():
    with pytest.raises(ValueError, match="leave no output"):
        QuasarNetConfig(n_layers=6, padding="valid")
    with pytest.raises(ValueError):
        QuasarNetConfig(padding="causal")  # type: ignore[arg-type]
    cfg = QuasarConfig(
        grid=GridConfig.linear(),
        model=QuasarNetConfig(n_input=458, n_layers=6, padding="same"),
    )
    back = from_dict(QuasarConfig, to_dict(cfg))
    assert back == cfg
    with pytest.raises(ConfigError, match="n_input"):
        from_dict(QuasarConfig, {"grid": to_dict(GridConfig.linear())})  # 443 != 458
    with pytest.raises(ConfigError):
        from_dict(QuasarNetConfig, {"n_layer": 4})  # unknown key
    with pytest.raises(KeyError):
        LinesConfig(lines=("NOPE",))


def test_lines_table():
    assert rest_wavelength("CIV(1548)") == 1548.2049
    assert [line_label(n) for n in DEFAULT_LINES] == [
        "LYA",
        "CIV",
        "CIII",
        "MGII",
        "HBETA",
        "HALPHA",
    ]
    meta = preprocessing_metadata(GridConfig.log(), LinesConfig())
    assert meta["head_order"][-1] == "CIV(1548)_BAL"
    assert grid_from_metadata(meta) == GridConfig.log()
    with pytest.raises(ModelFormatError):
        grid_from_metadata({})


def test_grids():
    w = GridConfig.log().wave()
    assert w.size == 443 and w[0] == 3600.0
    assert w[-1] == pytest.approx(9960.99, abs=0.01)
    lw = GridConfig.linear().wave()
    assert lw.size == 458 and lw[-1] == pytest.approx(9815.2, abs=1e-9)
    assert GridConfig.from_wave(w) == GridConfig.log()
    assert GridConfig.from_wave(lw) == GridConfig.linear()
    with pytest.raises(ValueError, match="neither"):
        GridConfig.from_wave(np.array([3600.0, 3601.0, 3605.0, 3606.0]))


# ------------------------------------------------------------------ regrid / rebin goldens


def test_regrid_golden_exact():
    expected = np.array(ast.literal_eval(shared_path("quasarnp/regrid.txt").read_text()))
    desi = _desi_wave(3600.0, 9824.0)
    assert desi.size == 7781
    np.testing.assert_array_equal(regrid(desi, GridConfig.log()), expected)  # exact
    arb = np.load(shared_path("quasarnp/regrid_arbitrary.npy"), allow_pickle=False)
    np.testing.assert_array_equal(
        regrid(np.arange(3600, 9800, 10), GridConfig.log().wave()), arb
    )  # exact


def test_regrid_identity_and_linear():
    g = GridConfig.log()
    np.testing.assert_array_equal(regrid(g.wave(), g), np.arange(443))
    lin = regrid(_desi_wave(3600.0, 9824.0), GridConfig.linear().wave())
    np.testing.assert_array_equal(lin, np.repeat(np.arange(458), 17)[:-5])
    with pytest.raises(ValueError):
        regrid(_desi_wave(3600, 4000), np.array([3600.0, 3700.0, 3750.0]))


@pytest.mark.parametrize(
    ("grid", "fname"),
    [
        (GridConfig.log(), "coadd_rebinned.fits"),
        (GridConfig.linear(), "coadd_rebinned_linear.fits"),
    ],
)
def test_rebin_golden(grid, fname):
    from astropy.io import fits

    waves, fluxes, ivars = _read_coadd()
    with fits.open(shared_path(f"quasarnp/{fname}")) as e:
        for b in ("B", "R", "Z"):
            fw, w = rebin_arm(waves[b], fluxes[b], ivars[b], grid)
            # <= 1e-6 relative (observed: identical; flux*ivar is formed in float32 as upstream)
            np.testing.assert_allclose(fw, e[f"{b}_FLUX"].data, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(w, e[f"{b}_IVAR"].data, rtol=1e-6, atol=1e-6)


def test_normalise_golden():
    waves, fluxes, ivars = _read_coadd()
    pp = preprocess_arrays(waves, fluxes, ivars, GridConfig.log())
    expected = np.load(shared_path("quasarnp/coadd_x.npy"), allow_pickle=False)
    assert pp.x.shape == expected.shape == (24, 443)
    np.testing.assert_allclose(pp.x, expected, rtol=0, atol=1e-6)  # <= 1e-6 (observed 0)
    assert pp.dropped.tolist() == [11]
    assert pp.kept.tolist() == [i for i in range(25) if i != 11]
    assert pp.flags[11] == QNFlag.NO_DATA
    # DESI never reaches bins 436-442: they hold -mu/sigma, not 0 (QuasarNET behaviour)
    assert np.all(pp.ivar[:, 436:] == 0)
    assert np.all(pp.x[:, 436:] == pp.x[:, [436]])
    assert np.all(pp.x[:, 436] != 0)


# ------------------------------------------------------------------ preprocessing robustness


def _toy(n: int = 4, seed: int = 1):
    rng = np.random.default_rng(seed)
    waves = {b: _desi_wave(*DESI_WAVE[b]) for b in "BRZ"}
    fluxes = {b: rng.normal(2.0, 1.0, (n, w.size)).astype(np.float32) for b, w in waves.items()}
    ivars = {b: rng.uniform(0.5, 2.0, (n, w.size)).astype(np.float32) for b, w in waves.items()}
    return waves, fluxes, ivars


def test_preprocess_drops_zero_ivar_and_zero_rms():
    waves, fluxes, ivars = _toy(4)
    for b in "BRZ":
        ivars[b][1] = 0.0  # no data
        fluxes[b][2] = 7.0  # constant flux -> sigma = 0
    pp = preprocess_arrays(waves, fluxes, ivars, GridConfig.log())
    assert pp.kept.tolist() == [0, 3]
    assert pp.dropped.tolist() == [1, 2]
    assert pp.flags.tolist() == [0, int(QNFlag.NO_DATA), int(QNFlag.ZERO_RMS), 0]
    assert np.isfinite(pp.x).all()


@pytest.mark.parametrize("bad", ["nan_flux", "inf_flux", "nan_ivar", "neg_ivar", "mask"])
def test_bad_pixels_masked_never_propagated(bad):
    waves, fluxes, ivars = _toy(3)
    ref = preprocess_arrays(
        waves, fluxes, {b: v.copy() for b, v in ivars.items()}, GridConfig.log()
    )
    sl = (1, slice(100, 180))
    f = {b: v.copy() for b, v in fluxes.items()}
    iv = {b: v.copy() for b, v in ivars.items()}
    masks = None
    if bad == "nan_flux":
        f["R"][sl] = np.nan
    elif bad == "inf_flux":
        f["R"][sl] = np.inf
    elif bad == "nan_ivar":
        iv["R"][sl] = np.nan
    elif bad == "neg_ivar":
        iv["R"][sl] = -1.0
    else:
        masks = {b: np.zeros(v.shape, dtype=np.int32) for b, v in f.items()}
        masks["R"][sl] = 1
    pp = preprocess_arrays(waves, f, iv, GridConfig.log(), masks=masks)
    assert np.isfinite(pp.x).all()
    assert pp.kept.tolist() == [0, 1, 2]
    # equivalent to giving those pixels zero weight
    iv0 = {b: v.copy() for b, v in ivars.items()}
    iv0["R"][sl] = 0.0
    expect = preprocess_arrays(waves, fluxes, iv0, GridConfig.log())
    np.testing.assert_allclose(pp.x, expect.x, rtol=0, atol=1e-12)
    assert not np.allclose(pp.x[1], ref.x[1])
    if bad == "mask":
        assert pp.flags.tolist() == [0, 0, 0]
    else:
        assert pp.flags.tolist() == [0, int(QNFlag.BAD_PIXELS), 0]


def test_all_nan_spectrum_is_dropped():
    waves, fluxes, ivars = _toy(2)
    for b in "BRZ":
        fluxes[b][0] = np.nan
    pp = preprocess_arrays(waves, fluxes, ivars, GridConfig.log())
    assert pp.kept.tolist() == [1]
    assert pp.flags[0] == QNFlag.NO_DATA | QNFlag.BAD_PIXELS
    assert np.isfinite(pp.x).all()


def test_rebin_combines_overlap_and_drops_off_grid_pixels():
    g = GridConfig.log()
    w1 = np.array([3500.0, 3600.0, 3601.0, 3700.0])  # 3500 is off the grid
    w2 = np.array([3600.5, 12000.0])  # 12000 is off the grid
    f1 = np.array([[100.0, 1.0, 3.0, 5.0]])
    f2 = np.array([[5.0, 100.0]])
    rb = rebin([w1, w2], [f1, f2], [np.ones((1, 4)), np.array([[2.0, 1.0]])], g)
    # bin 0 gets 1 (w 1), 3 (w 1), 5 (w 2): mean (1 + 3 + 10) / 4
    assert rb.flux[0, 0] == pytest.approx(14 / 4)
    assert rb.ivar[0, 0] == 4.0
    assert rb.ivar.sum() == 5.0  # off-grid pixels carried no weight
    with pytest.raises(ValueError, match="camera"):
        rebin([w1], [f1[:, :3]], [np.ones((1, 3))], g)


def test_preprocess_spectra_object():
    from astropy.table import Table

    from surveynet.io.spectra import Spectra

    waves, fluxes, ivars = _toy(3)
    sp = Spectra(
        bands=("b", "r", "z"),
        wave={b.lower(): w for b, w in waves.items()},
        flux={b.lower(): f for b, f in fluxes.items()},
        ivar={b.lower(): v for b, v in ivars.items()},
        fibermap=Table({"TARGETID": np.arange(3)}),
        mask={b.lower(): np.zeros(f.shape, dtype=np.int32) for b, f in fluxes.items()},
    )
    sp.mask["r"][0, :] = 1
    pp = preprocess(sp, GridConfig.log())
    ref = preprocess_arrays(waves, fluxes, ivars, GridConfig.log())
    assert pp.x.shape == (3, 443)
    np.testing.assert_allclose(pp.x[1:], ref.x[1:], atol=1e-12)
    assert not np.allclose(pp.x[0], ref.x[0])  # the masked R arm of spectrum 0 was ignored


def test_normalize_formula():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(2, 20))
    w = rng.uniform(0, 2, size=(2, 20))
    w[:, :3] = 0
    f[:, :3] = np.nan  # empty bins may hold anything: ignored
    x, kept, _ = normalize(f, w)
    assert kept.tolist() == [0, 1]
    ff = np.where(w > 0, f, 0)
    mu = (w * ff).sum(1) / w.sum(1)
    sd = np.sqrt((w * (ff - mu[:, None]) ** 2).sum(1) / w.sum(1))
    np.testing.assert_allclose(x, (ff - mu[:, None]) / sd[:, None], rtol=1e-12)
    assert np.allclose(x[:, :3], (-mu / sd)[:, None])


# ----------------------------------------------------------------------------- post-processing


def test_process_preds_golden():
    preds = np.load(shared_path("quasarnp/predict_data.npy"), allow_pickle=False).transpose(1, 0, 2)
    c_exp = np.load(shared_path("quasarnp/predict_lya.npy"), allow_pickle=False)
    zbal_exp = np.load(shared_path("quasarnp/predict_bal.npy"), allow_pickle=False)
    res = process_preds(preds, GridConfig.log().wave())
    np.testing.assert_allclose(res.c_line, c_exp.T, rtol=0, atol=1e-8)  # ~1e-8
    np.testing.assert_allclose(res.z_line_bal, zbal_exp.T, rtol=0, atol=1e-8)  # extrapolated, ~1e-8
    assert res.z_line_bal[219, 0] == pytest.approx(5.4601, abs=1e-4)
    clamped = process_preds(preds, GridConfig.log().wave(), edge="clamp")
    assert clamped.z_line_bal[219, 0] == pytest.approx(5.4339, abs=1e-4)
    assert np.abs(clamped.z_line_bal - zbal_exp.T).max() == pytest.approx(0.0262, abs=1e-3)
    # zbest is the z of the most confident line
    best = np.argmax(res.c_line, axis=1)
    np.testing.assert_array_equal(res.zbest, res.z_line[np.arange(res.n_spec), best])
    cols = res.columns()
    assert {"C_LYA", "Z_CIV", "C_CIV_BAL", "Z_CIV_BAL", "ZBEST", "C_LINES"} <= set(cols)
    assert cols["C_LINES"].shape == (383, 6)


def test_process_preds_by_hand():
    nb = 13
    preds = np.zeros((1, 7, 2 * nb))
    preds[0, :, 4] = 0.9  # box 4
    preds[0, :, nb + 4] = 0.5  # offset 0.5
    preds[0, 2, 7] = 0.95  # CIII most confident, box 7 offset 0
    w = GridConfig.log().wave()
    res = process_preds(preds, w)
    lam = 3600 * 10 ** (0.001 * 4.5 * 443 / 13)
    assert res.z_line[0, 0] == pytest.approx(lam / LYA_REST - 1, rel=1e-6)
    assert res.c_line[0, 2] == 0.95
    assert res.zbest[0] == pytest.approx(index_to_wave(np.array(7 * 443 / 13), w) / 1908.734 - 1)
    assert res.is_qso(0.5, 1).tolist() == [True]
    assert res.is_qso(0.92, 2).tolist() == [False]
    with pytest.raises(ValueError, match="heads"):
        process_preds(preds[:, :6], w)
    with pytest.raises(ValueError, match="n_boxes"):
        process_preds(preds, w, n_boxes=12)


def test_is_qso():
    c = np.array([[0.6, 0.7, 0.1], [0.45, 0.2, 0.1], [0.9, 0.1, 0.1]])
    assert is_qso(c, c_th=0.5, n_th=1).tolist() == [True, False, True]
    assert is_qso(c, c_th=0.5, n_th=2).tolist() == [True, False, False]
    assert is_qso(c, c_th=0.4, n_th=1).tolist() == [True, True, True]


def test_index_to_wave_log_grid_edges():
    w = GridConfig.log().wave()
    top = index_to_wave(np.array([446.4]), w)[0]
    assert top > w[-1]
    # extrapolation continues the last segment linearly
    assert top == pytest.approx(w[-1] + 4.4 * (w[-1] - w[-2]))
    assert index_to_wave(np.array([-3.4]), w)[0] == pytest.approx(3600 - 3.4 * (w[1] - w[0]))
    assert math.isclose(index_to_wave(np.array([446.4]), w, edge="clamp")[0], w[-1])


def test_errors_name_the_input(tmp_path):
    from surveynet.quasar.convert import read_keras_quasarnet

    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(InputError, match=r"bad\.h5"):
        read_keras_quasarnet(bad)
