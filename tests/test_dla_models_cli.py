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
    # refusing to overwrite without --overwrite
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
    assert rc != 0  # refused without --overwrite

    # a bad file among good ones: reported, the others complete, exit code 1
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
    assert rc == 1
    with fits.open(cat) as h:
        assert {"DLACAT", "QSOCAT"} <= {x.name for x in h}
        assert h[0].header["PIPELINE"] == "dla" and h[0].header["MODELHSH"]
        assert len(h["QSOCAT"].data) > 0
        assert "Z_DLA" in h["DLACAT"].columns.names and "Z" not in h["DLACAT"].columns.names
    out = tmp_path / "eval"
    assert (
        main(["dla", "evaluate", str(cat), "--truth", str(truth), "--out", str(out), "--quiet"])
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"completeness", "purity", "tp", "fn", "fp"} <= set(metrics)
    assert "completeness" in capsys.readouterr().out
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


def test_predict_requires_a_redshift_source(tmp_path, mock):
    files, _ = mock
    with pytest.raises(SystemExit):
        main(["dla", "predict", str(files[0]), "--out", str(tmp_path / "c.fits")])


def test_bench_quick_registered():
    from surveynet.bench import available

    assert "dla" in available()


def test_flops_counts():
    from surveynet.dla.engine import FCNEngine
    from surveynet.dla.model_config import FCNConfig

    cfg = FCNConfig()
    e = FCNEngine.__new__(FCNEngine)
    e.config = cfg
    # stem 1*16*9/2 + 16*32*9/4, 6 blocks of 32*32*6/4, head (32*32 + 32*12)/4
    expect = 72 + 1152 + 6 * 1536 + (1024 + 384) / 4
    assert e.macs_per_pixel() == pytest.approx(expect)
    assert np.isfinite(expect)


def test_training_sightlines_from_several_mocks(tmp_path, mock):
    from surveynet.dla.train import read_training_sightlines
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
