"""`surveynet dla train | predict | evaluate` in-process on a tiny DLA-preset mock."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits

pytest.importorskip("torch")

from surveynet.cli import main


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    from surveynet.sim.spectra import preset_config, simulate_to_files

    out = tmp_path_factory.mktemp("dlamock")
    files, truth = simulate_to_files(
        out / "mock", 24, 5, n_files=2, overwrite=True, config=preset_config("dla")
    )
    return files, truth


TINY = [
    "--set",
    "model.fcn.width=8",
    "--set",
    "model.fcn.stem_channels=[8,8]",
    "--set",
    "model.fcn.head_hidden=8",
    "--set",
    "train.epochs=1",
    "--set",
    "train.batch_size=8",
]


@pytest.mark.slow
@pytest.mark.filterwarnings(
    "ignore:.*could not be saved in native FITS format:astropy.units.UnitsWarning"
)
def test_train_predict_evaluate_chain(tmp_path, mock, capsys):
    files, truth = mock
    model = tmp_path / "fcn"
    assert (
        main(
            [
                "dla",
                "train",
                *map(str, files),
                "--truth",
                str(truth),
                "--out",
                str(model),
                *TINY,
                "--seed",
                "4",
                "--quiet",
            ]
        )
        == 0
    )
    meta = json.loads((model / "config.json").read_text())
    assert meta["architecture"] == "dla_fcn" and "dla train" in meta["training"]["command"]
    assert meta["training"]["seed"] == 4
    # refusing to overwrite without --overwrite, before any work: the model is untouched
    before = (model / "model.safetensors").stat().st_mtime_ns
    rc = main(
        [
            "dla",
            "train",
            *map(str, files),
            "--truth",
            str(truth),
            "--out",
            str(model),
            *TINY,
            "--quiet",
        ]
    )
    assert rc == 1  # refused without --overwrite
    assert "exists" in capsys.readouterr().err
    assert (model / "model.safetensors").stat().st_mtime_ns == before

    # a bad file among good ones: reported, the others complete, exit code 3, FAILED HDU
    bad = tmp_path / "bad.fits"
    bad.write_text("not fits")
    cat = tmp_path / "cat.fits"
    rc = main(
        [
            "dla",
            "predict",
            *map(str, files),
            str(bad),
            "--out",
            str(cat),
            "--model",
            str(model),
            "--truth",
            str(truth),
            "--workers",
            "0",
            "--quiet",
        ]
    )
    assert rc == 3
    with fits.open(cat) as h:
        assert {"DLACAT", "QSOCAT", "FAILED"} <= {x.name for x in h}
        hdr = h[0].header
        assert hdr["PIPELINE"] == "dla" and hdr["MODELHSH"]
        # one numbered card group per model: the finder, the bundled refiners and vetter
        roles = [hdr[f"MODROL{i}"] for i in range(1, hdr["NMODELS"] + 1)]
        assert roles == ["finder", "refiner", "refiner", "vetter"]
        assert hdr["MODEL1"] == model.name and len(hdr["MODHSH1"]) == 16
        assert (hdr["NINPUT"], hdr["NFAILED"]) == (len(files) + 1, 1)
        assert len(h["QSOCAT"].data) > 0
        assert "Z_DLA" in h["DLACAT"].columns.names and "Z" not in h["DLACAT"].columns.names
        failed = h["FAILED"].data
        assert [s.strip() for s in failed["SOURCE"]] == [str(bad)] and failed["ERROR"][0].strip()
    # the resolved config beside the catalogue: the --model flag is its predict.models key
    saved = json.loads((tmp_path / "cat.config.json").read_text())
    assert saved["predict"]["models"] == [str(model)] and saved["train"]["seed"] == 0
    # a second run without --overwrite is refused before any work
    assert (
        main(
            [
                "dla",
                "predict",
                *map(str, files),
                "--out",
                str(cat),
                "--model",
                str(model),
                "--truth",
                str(truth),
                "--workers",
                "0",
                "--quiet",
            ]
        )
        == 1
    )
    assert "exists" in capsys.readouterr().err
    out = tmp_path / "eval"
    assert (
        main(["dla", "evaluate", str(cat), "--truth", str(truth), "--out", str(out), "--quiet"])
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"completeness", "purity", "tp", "fn", "fp"} <= set(metrics)
    assert "completeness" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["evaluate"]["max_dlambda"] == 10.0
    # evaluate refuses to overwrite without --overwrite; old flat keys are named with their section
    args = ["dla", "evaluate", str(cat), "--truth", str(truth), "--out", str(out), "--quiet"]
    assert main(args) == 1 and "exists" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--set", "min_confidence=0.5"]) == 1
    assert "evaluate.min_confidence" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--set", "evaluate.min_confidence=0.5"]) == 0
    # --skip-bal: the BAL quasars of the truth are not searched, the others are
    from astropy.table import Table

    t = Table.read(truth, hdu="TRUTH")
    bal = set(np.asarray(t["TARGETID"])[np.asarray(t["BI_CIV"]) > 0].tolist())
    nobal = tmp_path / "nobal.fits"
    args = ["dla", "predict", *map(str, files), "--out", str(nobal), "--model", str(model)]
    args += ["--truth", str(truth), "--workers", "0", "--quiet", "--skip-bal"]
    assert main(args) == 0
    with fits.open(cat) as h1, fits.open(nobal) as h2:
        ids_all = set(h1["QSOCAT"].data["TARGETID"].tolist())
        ids_nobal = set(h2["QSOCAT"].data["TARGETID"].tolist())
    assert bal & ids_all and ids_nobal == ids_all - bal


def test_model_cards_name_every_model_and_ensemble_member():
    """Provenance: one card per network, ensemble members each on their own card."""
    from surveynet.dla.predict import load_finders, model_cards_of, resolve_refiner
    from surveynet.dla.vet import resolve_vetter

    finders = load_finders(["dla_fcn+dla_fcn_lowsnr", "dla_fcn"])
    cards = model_cards_of(finders, resolve_refiner("dla_refiner"), resolve_vetter(None, None))
    assert [c.role for c in cards] == [
        "finder (ensemble 1)",
        "finder (ensemble 1)",
        "finder",
        "refiner",
        "vetter",
    ]
    members = finders[0].members
    assert [c.sha256 for c in cards[:2]] == [m.saved.weights_hash for m in members]
    assert cards[3].name == "dla_refiner" and len({c.sha256 for c in cards}) == 4


def test_predict_takes_one_redshift_source(tmp_path, mock):
    # none: QuasarNET runs first (tests/test_dla_oneshot.py); two: a usage error
    files, truth = mock
    with pytest.raises(SystemExit):
        args = ["dla", "predict", str(files[0]), "--out", str(tmp_path / "c.fits")]
        main([*args, "--truth", str(truth), "--zbest", str(truth)])


def test_bench_quick_registered():
    from surveynet.bench import available

    assert "dla" in available()


def test_flops_counts():
    from surveynet.dla.config import FCNConfig
    from surveynet.dla.engine import FCNEngine

    cfg = FCNConfig()
    e = FCNEngine.__new__(FCNEngine)
    e.config = cfg
    # stem 1*16*9/2 + 16*32*9/4, 6 blocks of 32*32*6/4, head (32*32 + 32*12)/4
    expect = 72 + 1152 + 6 * 1536 + (1024 + 384) / 4
    assert e.macs_per_pixel() == pytest.approx(expect)
    assert np.isfinite(expect)


def test_training_sightlines_from_several_mocks(tmp_path, mock):
    from surveynet.dla.data import read_training_sightlines
    from surveynet.errors import InputError
    from surveynet.sim.spectra import preset_config, simulate_to_files

    files_a, truth_a = mock
    files_b, truth_b = simulate_to_files(
        tmp_path / "b", 12, 6, n_files=1, overwrite=True, config=preset_config("dla")
    )
    one = read_training_sightlines(files_a, truth_a)
    both = read_training_sightlines([*files_a, *files_b], [truth_a, truth_b])
    only_b = read_training_sightlines(files_b, truth_b)
    assert len(both) == len(one) + len(only_b) and len(only_b) > 0
    by_id = {s.targetid: s for s in both}
    for s in one + only_b:  # same sightlines and the same truth absorbers as read mock by mock
        assert by_id[s.targetid].dlas == s.dlas
        assert np.array_equal(by_id[s.targetid].flux, s.flux)
    assert sum(len(s.dlas) for s in only_b) > 0
    with pytest.raises(InputError, match="more than one truth file"):
        read_training_sightlines(files_a, [truth_a, truth_a])


def test_models_with_different_cameras_each_get_their_own_sightlines(tmp_path, mock):
    """A blue-camera low-S/N model and an all-camera high-S/N model in one run: each sightline is
    read with the data config of the model its S/N routes it to."""
    from astropy.table import vstack

    from surveynet.config import apply_overrides
    from surveynet.dla.bench import toy_sightlines
    from surveynet.dla.config import DLAConfig
    from surveynet.dla.predict import predict_file
    from surveynet.dla.train import train_model
    from surveynet.io.spectra import read_spectra

    files, truth = mock
    tiny = [
        "model.fcn.width=8",
        "model.fcn.stem_channels=[8,8]",
        "model.fcn.head_hidden=8",
        "train.epochs=1",
        "train.batch_size=4",
        "data.pixel_velocity_ms=62996",
    ]
    sls = toy_sightlines(6, 3, s2n=2.0)
    lo = apply_overrides(DLAConfig(), [*tiny, "input.s2n_range=[0,3]", "data.camera=b"])
    hi = apply_overrides(DLAConfig(), [*tiny, "input.s2n_range=[3,1e9]", "data.camera=all"])
    m_lo = train_model(lo, sls, tmp_path / "lo", quiet=True)
    m_hi = train_model(hi, toy_sightlines(6, 4), tmp_path / "hi", quiet=True)
    both = predict_file(str(files[0]), models=[str(m_lo), str(m_hi)], qso_catalog=str(truth))
    q = both.qsos
    s2n = np.asarray(q["S2N"], float)
    assert (s2n < 3).any() and (s2n >= 3).any()
    # the same rows as each model alone on its own S/N range
    parts = []
    for m, sel in ((m_lo, lambda x: x < 3), (m_hi, lambda x: x >= 3)):
        alone = predict_file(str(files[0]), models=[str(m)], qso_catalog=str(truth)).qsos
        parts.append(alone[sel(np.asarray(alone["S2N"], float))])
    ref = vstack(parts)
    ref.sort("TARGETID")
    q.sort("TARGETID")
    assert list(q["TARGETID"]) == list(ref["TARGETID"])
    assert np.allclose(q["WAVE_MAX"], ref["WAVE_MAX"])
    # blue-camera sightlines end at the camera edge; all-camera ones may go beyond it
    b_max = float(read_spectra(files[0]).wave["b"][-1])
    assert np.all(np.asarray(q["WAVE_MAX"])[s2n < 3] <= b_max + 1e-6)
    assert np.any(np.asarray(q["WAVE_MAX"])[s2n >= 3] > b_max)


def test_refiners_on_other_grids_are_read_once_each_and_applied_in_turn(tmp_path, mock):
    """predict_file reads each refiner's own pixel grid and applies the chain in order: the same
    catalogue as predict_sightlines given those grids by hand."""
    from surveynet.config import apply_overrides
    from surveynet.dla.bench import toy_sightlines
    from surveynet.dla.config import DLAConfig
    from surveynet.dla.data import read_sightlines
    from surveynet.dla.predict import DLAFinder, predict_file, predict_sightlines
    from surveynet.dla.refine import DLARefiner
    from surveynet.dla.train import train_model

    files, truth = mock
    fine = ["data.camera=all", "data.pixel_velocity_ms=62996"]
    fcn_cfg = apply_overrides(
        DLAConfig(),
        [
            *fine,
            "model.fcn.width=8",
            "model.fcn.stem_channels=[8,8]",
            "model.fcn.head_hidden=8",
            "train.epochs=1",
            "train.batch_size=4",
        ],
    )
    tiny_ref = ["model.architecture=dla_refiner", "model.refiner.widths=[8,8,8]"]
    tiny_ref += ["model.refiner.crop=64", "model.refiner.hidden=16", "train.epochs=1"]
    models = {}
    for name, over in (
        ("wide", ["data.camera=all", "data.pixel_velocity_ms=125992", *tiny_ref]),
        ("fine", [*fine, *tiny_ref]),
    ):
        cfg = apply_overrides(DLAConfig(), over)
        v = cfg.data.pixel_velocity_ms
        models[name] = train_model(cfg, toy_sightlines(6, 5, velocity_ms=v), tmp_path / name)
    fcn = train_model(fcn_cfg, toy_sightlines(6, 4), tmp_path / "fcn", quiet=True)
    # vote peaks from an untrained finder; BAL quasars as they are (the chain by hand below has
    # no BAL veto)
    catalog = {"level1": 0.01, "peak_thresh": 0.01, "bal": "keep"}
    got = predict_file(
        str(files[0]),
        models=[str(fcn)],
        qso_catalog=str(truth),
        config=catalog,
        refiner=[str(models["wide"]), str(models["fine"])],
    )
    assert len(got.dlas) > 0
    fd = DLAFinder.from_saved(fcn)
    refs = [DLARefiner.from_saved(models[k]) for k in ("wide", "fine")]
    sls = read_sightlines(str(files[0]), str(truth), fd.data)
    grids = [{s.targetid: s for s in read_sightlines(files[0], truth, r.data)} for r in refs]
    assert grids[0][sls[0].targetid].n_pix < sls[0].n_pix  # the wide refiner's coarser grid
    from surveynet.config import from_dict
    from surveynet.dla.config import PredictConfig

    by_hand = predict_sightlines(
        sls, [fd], from_dict(PredictConfig, catalog), refiner=refs, refine_sightlines=grids
    )
    np.testing.assert_allclose(got.dlas["Z_DLA"], by_hand.dlas["Z_DLA"], rtol=0, atol=1e-9)
    alone = predict_sightlines(sls, [fd], from_dict(PredictConfig, catalog))
    assert len(alone.dlas) != len(got.dlas) or not np.allclose(
        alone.dlas["Z_DLA"], got.dlas["Z_DLA"]
    )
