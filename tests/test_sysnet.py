"""Tests of the sysnet pipeline: inputs, config, mocks, models, training, outputs, tools."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits

import surveynet.sysnet  # noqa: F401  (registrations)
from surveynet.errors import ConfigError, InputError, ModelFormatError
from surveynet.registry import _STEPS
from surveynet.sim.sysmaps import simulate_sysmaps, table_hdus, write_mock
from surveynet.sysnet.config import SysnetConfig, config_from_mapping, resolve_sysnet_config
from surveynet.sysnet.data import read_input, read_table, read_two_files
from surveynet.sysnet.ensemble import (
    baseline_losses,
    cosine_lr,
    pixel_loss,
    predict_ensemble,
    train_ensemble,
)
from surveynet.sysnet.model import EnsembleNet, build_single
from surveynet.sysnet.preprocess import chain_seeds, kfold_partitions, single_split


def run_step(group: str, name: str, argv: list[str]) -> int:
    """Run a registered step through its own parser (independent of the root CLI)."""
    st = _STEPS[(group, name)]
    p = argparse.ArgumentParser()
    p.add_argument("--quiet", action="store_true")
    st.add_arguments(p)
    return st.run(p.parse_args([*argv, "--quiet"]))


@pytest.fixture(scope="module")
def mock16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mock") / "m16.fits"
    argv = ["--nside", "16", "--seed", "3", "--out", str(path)]
    assert run_step("simulate", "sysmaps", argv) == 0
    return path


@pytest.fixture(scope="module")
def trained(mock16: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    rc = run_step(
        "sysnet",
        "train",
        [
            "--input",
            str(mock16),
            "--out",
            str(out),
            "--kfold",
            "--set",
            "nepochs=3",
            "--set",
            "nchains=2",
            "--set",
            "batch_size=256",
            "--set",
            "train.forest_trees=10",
            "--set",
            "learning_rate=0.01",
        ],
    )
    assert rc == 0
    return out


def _write_table(
    path: Path, hpix, label, fracgood, feats, *, nside=8, nest=False, header_nside=True, hcol="hpix"
) -> Path:
    h = table_hdus(
        np.asarray(hpix),
        np.asarray(label, float),
        np.asarray(fracgood, float),
        np.asarray(feats, float),
        [f"m{i}" for i in range(np.shape(feats)[1])],
        nside,
        nest=nest,
    )
    if not header_nside:
        del h.header["NSIDE"]
    if hcol != "hpix":
        h.columns.change_name("hpix", hcol)
    fits.HDUList([fits.PrimaryHDU(), h]).writeto(path)
    return path


def _tiny(n: int = 50, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (np.arange(n) * 3, rng.poisson(20, n), rng.uniform(0.5, 1, n), rng.normal(size=(n, k)))


# ---------------------------------------------------------------- config


def test_config_flat_anchor_yaml(tmp_path: Path) -> None:
    keys = {
        "input_path": "t.fits",
        "output_path": "out",
        "restore_model": None,
        "batch_size": 64,
        "nepochs": 3,
        "nchains": 2,
        "find_lr": False,
        "find_structure": False,
        "find_l1": False,
        "do_kfold": True,
        "do_tar": False,
        "snapshot_ensemble": True,
        "normalization": "minmax",
        "model": "dnn",
        "optim": "adam",
        "scheduler": "none",
        "axes": [0, 2],
        "do_rfe": False,
        "eta_min": 1e-6,
        "learning_rate": 0.02,
        "nn_structure": [3, 10],
        "l1_alpha": 1e-4,
        "loss": "mse",
    }
    import yaml

    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(keys))
    cfg = resolve_sysnet_config(f, ["nepochs=7", "train.do_kfold=false", "axes=all"])
    assert cfg.train.nepochs == 7 and cfg.train.do_kfold is False and cfg.data.axes is None
    assert cfg.model.nn_structure == (3, 10) and cfg.train.loss == "mse"
    assert cfg.train.snapshot_ensemble and cfg.train.optim == "adam"
    assert cfg.output.output_path == "out" and cfg.train.batch_size == 64
    # an untouched key keeps the file's value; sectioned form equivalent
    cfg2 = config_from_mapping({"train": {"nepochs": 3}, "model": {"model": "lin"}})
    assert cfg2.train.nepochs == 3 and cfg2.model.model == "lin"


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nepoch"):
        config_from_mapping({"nepoch": 3})
    with pytest.raises(ConfigError, match=r"train\.bogus"):
        config_from_mapping({"train": {"bogus": 1}})
    with pytest.raises(ConfigError, match="batch_size"):
        resolve_sysnet_config(None, ["train.batch_size=0"])
    with pytest.raises(ConfigError):
        resolve_sysnet_config(None, ["model=transformer"])


def test_bool_flags_on_and_off() -> None:
    from surveynet.sysnet.cli import train_args

    p = argparse.ArgumentParser()
    train_args(p)
    on = p.parse_args(["--kfold", "--snapshot-ensemble"])
    off = p.parse_args(["--no-kfold", "--no-snapshot-ensemble"])
    assert on.do_kfold is True and off.do_kfold is False
    assert on.snapshot_ensemble is True and off.snapshot_ensemble is False
    assert p.parse_args([]).do_kfold is None
    cfg = resolve_sysnet_config(None, [], {"do_kfold": True})
    off = resolve_sysnet_config(None, ["do_kfold=false"], {"do_kfold": True})
    assert off.train.do_kfold is False
    assert cfg.train.do_kfold


# ---------------------------------------------------------------- inputs


@pytest.mark.parametrize("nest", [False, True])
def test_read_table_orderings(tmp_path: Path, nest: bool) -> None:
    hpix, y, f, x = _tiny()
    p = _write_table(tmp_path / "t.fits", hpix, y, f, x, nest=nest, hcol="hpind")
    d = read_table(p)
    assert d.nest is nest and d.nside == 8 and d.features.shape == (50, 3)
    assert d.feature_names == ["m0", "m1", "m2"]
    assert read_table(p, ordering="ring").nest is False
    assert read_table(p, ordering="nested").nest is True
    import healpy as hp

    if nest:
        assert np.array_equal(d.ring_hpix(), hp.nest2ring(8, hpix))


@pytest.mark.parametrize(
    ("mutate", "column"),
    [
        (lambda h, y, f, x: (h, y, f, np.c_[x, np.ones(len(h))]), "constant feature"),
        (lambda h, y, f, x: (h, np.r_[np.nan, y[1:]], f, x), "column label"),
        (lambda h, y, f, x: (h, np.r_[-1, y[1:]], f, x), "negative counts"),
        (lambda h, y, f, x: (h, y, np.r_[0.0, f[1:]], x), "column fracgood"),
        (lambda h, y, f, x: (h, y, np.r_[1.5, f[1:]], x), "column fracgood"),
        (lambda h, y, f, x: (np.r_[h[1], h[1:]], y, f, x), "duplicated pixels"),
        (lambda h, y, f, x: (np.r_[h[:-1], 10_000], y, f, x), "does not exist at nside 8"),
    ],
)
def test_read_table_errors(tmp_path: Path, mutate, column: str) -> None:
    h, y, f, x = mutate(*_tiny())
    p = _write_table(tmp_path / "bad.fits", h, y, f, x)
    with pytest.raises(InputError, match=column):
        read_table(p)


def test_nside_inferred_and_explicit(tmp_path: Path) -> None:
    hpix, y, f, x = _tiny()
    p = _write_table(tmp_path / "t.fits", hpix, y, f, x, header_nside=False)
    assert read_table(p).nside == 4  # max pixel 147 < 192
    assert read_table(p, nside=16).nside == 16
    with pytest.raises(InputError, match="nside 2"):
        read_table(p, nside=2)


def test_two_file_form(tmp_path: Path) -> None:
    import healpy as hp

    hpix, _, _, x = _tiny()
    m = np.arange(hp.nside2npix(8), dtype=float)
    hp.write_map(str(tmp_path / "label.fits"), m, dtype=np.float64)
    cols = [fits.Column("hpix", "K", array=hpix), fits.Column("features", "3D", array=x)]
    fits.BinTableHDU.from_columns(cols).writeto(tmp_path / "feat.fits")
    d = read_two_files(tmp_path / "feat.fits", tmp_path / "label.fits")
    assert np.array_equal(d.label, hpix.astype(float)) and np.all(d.fracgood == 1)
    d2 = read_input(tmp_path / "feat.fits", tmp_path / "label.fits", axes=(0, 2))
    assert d2.features.shape == (50, 2)
    hp.write_map(str(tmp_path / "l4.fits"), np.ones(hp.nside2npix(4)), dtype=np.float64)
    with pytest.raises(InputError, match="nside"):
        read_two_files(tmp_path / "feat.fits", tmp_path / "l4.fits", nside=8)


# ---------------------------------------------------------------- mocks


def test_mock_truth_and_null(mock16: Path) -> None:
    d = read_table(mock16)
    assert d.nside == 16 and not d.nest and d.features.shape[1] == 11
    assert "F_TRUE" in d.truth and "CL_DELTA_FOOT" in d.cl_truth
    assert abs(d.truth["F_TRUE"].mean() - 1) < 1e-9 and d.truth["F_TRUE"].std() > 0.05
    assert np.all((d.fracgood >= 0.2) & (d.fracgood <= 1))
    null = simulate_sysmaps(16, 3, null=True, use_real_maps=False)
    assert np.all(null.f_true == 1) and not null.real_maps
    # same maps, same clustering seed: only the selection differs
    sel = simulate_sysmaps(16, 3, use_real_maps=False)
    assert np.array_equal(sel.features, null.features)
    assert np.allclose(sel.delta, null.delta)
    with fits.open(mock16) as hl:
        assert [h.name for h in hl] == ["PRIMARY", "SYSNET", "TRUTH", "CL_TRUE"]
        assert hl[0].header["PIPELINE"] == "sysnet"


def test_mock_uses_shared_maps(shared_file, tmp_path: Path) -> None:
    shared_file("healpix/dust_ebv_SFD_healpix_lowres.fits")
    m = simulate_sysmaps(8, 1)
    assert m.real_maps
    assert 0.005 < np.median(m.features[:, 0]) < 0.3  # E(B-V) at |b| > 20 deg
    write_mock(tmp_path / "m.fits", m, seed=1, null=False)
    with pytest.raises(FileExistsError):
        write_mock(tmp_path / "m.fits", m, seed=1, null=False)


# ---------------------------------------------------------------- models, losses, schedule


def test_param_count_and_seeds() -> None:
    assert sum(p.numel() for p in build_single("dnnp", 18).parameters()) == 1361
    assert chain_seeds(3)[0] == 2664486226
    p = single_split(187257)[0]
    assert (len(p.train), len(p.valid), len(p.test)) == (112353, 37452, 37452)
    parts = kfold_partitions(103)
    assert sorted(np.concatenate([q.test for q in parts]).tolist()) == list(range(103))
    for q in parts:
        assert not set(q.train) & set(q.valid) and not set(q.valid) & set(q.test)
        assert len(q.valid) == len(q.test)


def test_optimizers() -> None:
    from surveynet.sysnet.ensemble import make_optimizer

    p = [torch.nn.Parameter(torch.zeros(2))]
    assert make_optimizer(p, "adamw", 0.1).defaults["weight_decay"] == 0.0
    assert make_optimizer(p, "sgd", 0.1).defaults["momentum"] == 0.9
    with pytest.raises(ValueError, match="rmsprop"):
        make_optimizer(p, "rmsprop", 0.1)


def test_losses_by_hand() -> None:
    yhat, y, f = torch.tensor([2.0, 4.0]), torch.tensor([1.0, 3.0]), torch.tensor([0.5, 1.0])
    pn = pixel_loss(yhat, y, f, "pnll")
    exp = np.array([0.5 * (1.0 - 1.0 * np.log(1.0 + 1e-8)), 1.0 * (4.0 - 3.0 * np.log(4.0 + 1e-8))])
    assert np.allclose(pn.numpy(), exp)
    assert np.allclose(pixel_loss(yhat, y, f, "mse").numpy(), [0.0, 1.0])
    assert np.allclose(pixel_loss(yhat, y, f, "pnll", "legacy").numpy(), exp / [0.5, 1.0])
    b = baseline_losses(np.array([1.0, 3.0]), [(np.array([1.0, 3.0]), np.ones(2))], "mse")
    assert b == [1.0]


def test_cosine_lr_matches_torch() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=0.01)
    sch = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2, eta_min=1e-5)
    nb = 28
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in (0, 9, 10, 35, 69):
            for i in range(nb):
                sch.step(epoch + i / nb)
                lr = cosine_lr(epoch + i / nb, 0.01, 1e-5)
                assert abs(opt.param_groups[0]["lr"] - lr) < 1e-12
    assert round(cosine_lr(69 + 27 / 28, 0.01, 1e-5), 7) == 1.0e-5


@pytest.mark.parametrize("name", ["dnn", "dnnp", "dnnps", "lin", "linp"])
def test_ensemble_chain_equals_single_and_numpy(name: str) -> None:
    from surveynet.sysnet import _numpy_builder, _torch_builder

    net = EnsembleNet(name, 5, (3, 8), [1, 2, 3])
    x = torch.randn(64, 5)
    net.train()
    net(x)  # one BatchNorm update of the running statistics
    net.eval()
    with torch.no_grad():
        out = net(x)
    for c in range(3):
        single = _torch_builder(name)(input_dim=5, nn_structure=(3, 8))
        single.load_state_dict(net.chain_state_dict(c), strict=True)
        single.eval()
        with torch.no_grad():
            assert torch.allclose(single(x)[:, 0], out[c], atol=1e-6)
        eng = _numpy_builder(name)(
            {k: v.numpy() for k, v in net.chain_state_dict(c).items()},
            {"input_dim": 5, "nn_structure": [3, 8]},
        )
        assert np.allclose(eng(x.double().numpy()), out[c].double().numpy(), rtol=1e-5, atol=1e-6)


def test_batched_training_equals_one_by_one() -> None:
    rng = np.random.default_rng(1)
    x, xv = rng.normal(size=(200, 4)), rng.normal(size=(60, 4))
    y = rng.poisson(10 * np.exp(0.2 * x[:, 0])).astype(float)
    yv = rng.poisson(10, 60).astype(float)
    f, fv = rng.uniform(0.5, 1, 200), np.ones(60)
    cfg = config_from_mapping(
        {
            "nepochs": 3,
            "batch_size": 64,
            "learning_rate": 0.01,
            "nn_structure": [3, 10],
            "l1_alpha": 1e-3,
        }
    )
    seeds = chain_seeds(3)
    both = train_ensemble(x, y, f, xv, yv, fv, seeds, cfg)
    for c, s in enumerate(seeds):
        one = train_ensemble(x, y, f, xv, yv, fv, [s], cfg)
        assert np.allclose(one.train_loss[0], both.train_loss[c], rtol=1e-5)
        assert np.allclose(one.valid_loss[0], both.valid_loss[c], rtol=1e-5)
        assert one.best_epoch[0] == both.best_epoch[c]
        assert np.allclose(
            predict_ensemble(one.net, xv)[0], predict_ensemble(both.net, xv)[c], rtol=1e-4
        )
    # best checkpoint = lowest validation loss
    assert np.allclose(both.best_valid, both.valid_loss.min(axis=1))


def test_training_beats_baseline() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1500, 3))
    f = rng.uniform(0.5, 1, 1500)
    lam = 30 * (1 + 0.3 * np.tanh(x[:, 0])) * np.exp(-0.1 * x[:, 1] ** 2)
    y = rng.poisson(f * lam).astype(float)
    cfg = config_from_mapping(
        {"nepochs": 8, "batch_size": 256, "learning_rate": 0.02, "nn_structure": [3, 10]}
    )
    res = train_ensemble(x[:1000], y[:1000], f[:1000], x[1000:], y[1000:], f[1000:], [7], cfg)
    base = baseline_losses(y[:1000], [(y[1000:], f[1000:])])[0]
    assert res.best_valid[0] < base - 0.1


# ---------------------------------------------------------------- train step outputs


def test_train_outputs(trained: Path, mock16: Path) -> None:
    from surveynet.io.model import load_model
    from surveynet.sysnet.catalog import read_predictions
    from surveynet.sysnet.engine import predict_saved

    hp_, w, hdr = read_predictions(trained / "nn-weights.fits")
    d = read_table(mock16)
    assert w.shape == (d.n, 2) and sorted(hp_.tolist()) == sorted(d.hpix.tolist())
    assert hdr["EXTNAME"] == "NNWEIGHTS"
    with fits.open(trained / "nn-weights.fits") as hl:
        assert hl[1].columns.names == ["hpix", "weight"]
        assert "SNVER" in hl[0].header
    with np.load(trained / "metrics.npz", allow_pickle=False) as z:
        assert z["train_loss"].shape == (5, 2, 3) and z["base_losses"].shape == (5, 3)
        assert z["test_loss"].shape == (5, 2) and "linear_test_loss" in z
    saved = load_model(trained / "models" / "fold0" / "chain1", pipeline="sysnet")
    assert saved.architecture == "sysnet_dnnp" and len(saved.preprocessing["loc"]) == 11
    part = kfold_partitions(d.n)[0]
    y0 = predict_saved(trained / "models" / "fold0" / "chain1", d.features[part.test])
    assert np.allclose(y0, w[: len(part.test), 1], rtol=1e-4)
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["train"]["nepochs"] == 3 and cfg["train"]["do_kfold"] is True
    for b in ("linear", "forest"):
        assert (trained / f"{b}-weights.fits").is_file()
    with pytest.raises(FileExistsError):
        run_step("sysnet", "train", ["--input", str(mock16), "--out", str(trained)])


def test_predict_step(trained: Path, mock16: Path, tmp_path: Path) -> None:
    from surveynet.sysnet.catalog import read_predictions
    from surveynet.sysnet.engine import predict_saved

    d = read_table(mock16)
    # a features-only table (no label, no fracgood), rows reversed
    cols = fits.ColDefs(
        [
            fits.Column("hpix", "K", array=d.hpix[::-1]),
            fits.Column("features", f"{d.features.shape[1]}D", array=d.features[::-1]),
        ]
    )
    tab = fits.BinTableHDU.from_columns(cols)
    tab.header["NSIDE"] = d.nside
    for i, name in enumerate(d.feature_names):
        tab.header[f"FEAT{i}"] = name
    table = tmp_path / "feat.fits"
    fits.HDUList([fits.PrimaryHDU(), tab]).writeto(table)
    out = tmp_path / "pred.fits"
    argv = [str(table), "--model", str(trained), "--out", str(out)]
    assert run_step("sysnet", "predict", argv) == 0
    hp_, w, _ = read_predictions(out)
    assert w.shape == (d.n, 10) and np.array_equal(hp_, d.hpix[::-1])  # 5 folds x 2 chains
    ref = predict_saved(trained / "models" / "fold1" / "chain0", d.features[::-1])
    assert np.allclose(w[:, 2], ref, rtol=1e-12)  # column = fold * nchains + chain
    with fits.open(out) as hl:
        assert hl[0].header["NMODELS"] == 10 and "MODHSH9" in hl[0].header
    one = tmp_path / "one.fits"
    run_step(
        "sysnet",
        "predict",
        [str(table), "--model", str(trained / "models/fold1/chain0"), "--out", str(one)],
    )
    assert np.allclose(read_predictions(one)[1][:, 0], ref, rtol=1e-12)
    with pytest.raises(FileExistsError):
        run_step("sysnet", "predict", argv)
    with pytest.raises(ModelFormatError):
        run_step(
            "sysnet",
            "predict",
            [str(table), "--model", str(tmp_path), "--out", str(tmp_path / "x.fits")],
        )


def test_weights_and_evaluate(trained: Path, tmp_path: Path) -> None:
    from surveynet.sysnet.postprocess import predictions_to_weights

    assert (
        run_step(
            "sysnet",
            "weights",
            [
                str(trained),
                "--out",
                str(tmp_path / "w.fits"),
                "--map",
                str(tmp_path / "w.hp.fits"),
                "--set",
                "weights.clip_min=0.9",
                "--set",
                "weights.mode=mask",
            ],
        )
        == 0
    )
    with fits.open(tmp_path / "w.fits") as hl:
        t = hl["SYSWEIGHTS"].data
        sel = t["SELECTION"]
        ok = np.isfinite(sel)
        assert np.allclose(t["WEIGHT"][ok], 1 / sel[ok]) and np.all(t["WEIGHT"][~ok] == 0)
    w = predictions_to_weights(np.array([[1.0, 1.2], [0.2, 0.2], [1.0, 1.0]]), combine="median")
    assert w.n_outside == 1 and w.weight[1] == 2.0
    rep = tmp_path / "rep"
    assert run_step("sysnet", "evaluate", [str(trained), "--out", str(rep)]) == 0
    m = json.loads((rep / "metrics.json").read_text())
    assert {"none", "nn", "linear", "forest", "oracle"} <= set(m["chi2"])
    assert m["chi2"]["oracle"] < m["chi2"]["none"]
    html = (rep / "report.html").read_text()
    for png in ("maps.png", "losses.png", "mean_density.png", "cl.png"):
        assert (rep / png).is_file() and png in html


def test_linear_baseline_recovers_linear_selection() -> None:
    from surveynet.sysnet.baselines import fit_linear

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 2))
    f = rng.uniform(0.5, 1, 20000)
    y = rng.poisson(f * 100 * (1 + 0.1 * x[:, 0] - 0.05 * x[:, 1])).astype(float)
    coef = fit_linear(x, y, f)
    assert np.allclose(coef, [100, 10, -5], atol=0.6)


# ---------------------------------------------------------------- sysnetdev checkpoints


class _Evil:
    pass


def test_sysnetdev_checkpoint(tmp_path: Path) -> None:
    from surveynet.sysnet.convert import convert_sysnetdev, load_sysnetdev_checkpoint
    from surveynet.sysnet.engine import predict_saved

    model = build_single("dnnp", 4, (3, 6))
    model.eval()
    loc, scale = np.arange(4.0), np.full(4, 2.0)
    ckpt = {
        "epoch": 5,
        "state_dict": model.state_dict(),
        "optim_dict": {},
        "scheduler_dict": {},
        "best_val_loss": 0.95,
        "stats": {"x": (loc, scale), "y": (np.float64(1.0), np.float64(0.1))},
    }
    torch.save(ckpt, tmp_path / "best.pth.tar")
    sd, meta = load_sysnetdev_checkpoint(tmp_path / "best.pth.tar")
    assert np.allclose(meta["x_loc"], loc) and set(sd) == set(model.state_dict())
    out = convert_sysnetdev(tmp_path / "best.pth.tar", tmp_path / "conv", model="dnnp")
    x = np.random.default_rng(0).normal(size=(10, 4))
    with torch.no_grad():
        ref = model(torch.as_tensor((x - loc) / scale, dtype=torch.float32))[:, 0].numpy()
    assert np.allclose(predict_saved(out, x), ref, rtol=1e-5, atol=1e-6)
    torch.save({"state_dict": model.state_dict(), "stats": _Evil()}, tmp_path / "evil.pth.tar")
    with pytest.raises(ModelFormatError, match="refusing"):
        load_sysnetdev_checkpoint(tmp_path / "evil.pth.tar")


def test_restore_model_and_tuning(mock16: Path, tmp_path: Path) -> None:
    from surveynet.sysnet.train import train_sysnet

    model = build_single("dnnp", 11, (4, 20))
    torch.save(
        {"state_dict": model.state_dict(), "stats": {"x": (np.zeros(11), np.ones(11))}},
        tmp_path / "best.pth.tar",
    )
    common = {
        "input_path": str(mock16),
        "nepochs": 2,
        "batch_size": 256,
        "train": {"baselines": []},
    }
    cfg = config_from_mapping({**common, "restore_model": str(tmp_path / "best.pth.tar")})
    assert (train_sysnet(cfg, tmp_path / "restored") / "nn-weights.fits").is_file()
    bad = config_from_mapping(
        {**common, "restore_model": str(tmp_path / "best.pth.tar"), "axes": [0, 1]}
    )
    with pytest.raises(ConfigError, match="restore_model"):
        train_sysnet(bad, tmp_path / "bad")
    cfg = config_from_mapping({**common, "find_lr": True, "do_rfe": True, "tune": {"lr_iters": 60}})
    out = train_sysnet(cfg, tmp_path / "run")
    tun = json.loads((out / "tuning.json").read_text())
    assert set(tun["chosen"]) == {"learning_rate", "axes"} and len(tun["rfe"]["ranking"]) == 11
    assert (out / "lr_finder.png").is_file()
    used = json.loads((out / "config.json").read_text())
    assert used["data"]["axes"] == tun["chosen"]["axes"]
    cfg2 = resolve_sysnet_config(None, [f"tune.use={out / 'tuning.json'}"])
    assert cfg2.tune.use
    from surveynet.sysnet.tune import apply_tuning, load_tuning

    applied = apply_tuning(SysnetConfig(), load_tuning(out))
    assert applied.train.learning_rate == pytest.approx(tun["chosen"]["learning_rate"])


@pytest.mark.parametrize(
    "extra",
    [
        {"model": "lin", "loss": "mse", "normalization": "minmax", "do_tar": True},
        {
            "model": "dnnps",
            "snapshot_ensemble": True,
            "nepochs": 10,
            "optim": "adam",
            "learning_rate": 1e-3,
            "scheduler": "none",
        },
        {"model": "linp", "do_kfold": True, "train": {"split": "geometric", "baselines": []}},
    ],
)
def test_train_variants(mock16: Path, tmp_path: Path, extra: dict) -> None:
    from surveynet.sysnet.catalog import read_predictions
    from surveynet.sysnet.train import train_sysnet

    cfg = config_from_mapping(
        {
            "input_path": str(mock16),
            "nepochs": 2,
            "nchains": 2,
            "batch_size": 512,
            "train": {"baselines": []},
            **extra,
        }
    )
    out = train_sysnet(cfg, tmp_path / "run")
    _, w, _ = read_predictions(out / "nn-weights.fits")
    ncols = 2 * (2 if extra.get("snapshot_ensemble") else 1)  # epoch 9 ends the first cycle
    assert w.shape[1] == ncols and np.all(np.isfinite(w))
    n = read_table(mock16).n
    assert w.shape[0] == (n if extra.get("do_kfold") else len(single_split(n)[0].test))
    assert (out / "models.tar.gz").is_file() == bool(extra.get("do_tar"))


def test_partitions_on_dask(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from surveynet.sysnet.train import train_sysnet

    mock = write_mock(
        tmp_path / "m8.fits", simulate_sysmaps(8, 1, use_real_maps=False), seed=1, null=False
    )
    common = {
        "input_path": str(mock),
        "nepochs": 1,
        "nchains": 1,
        "do_kfold": True,
        "batch_size": 64,
        "train": {"baselines": []},
    }
    a = train_sysnet(
        config_from_mapping({**common, "train": {"baselines": [], "workers": 1}}), tmp_path / "dask"
    )
    b = train_sysnet(config_from_mapping(common), tmp_path / "serial")
    with fits.open(a / "nn-weights.fits") as ha, fits.open(b / "nn-weights.fits") as hb:
        assert np.array_equal(ha[1].data["hpix"], hb[1].data["hpix"])
        assert np.allclose(ha[1].data["weight"], hb[1].data["weight"], rtol=1e-5)


def test_structure_and_l1_finders(mock16: Path) -> None:
    from surveynet.sysnet.tune import l1_finder, structure_finder

    d = read_table(mock16)
    cfg = config_from_mapping({"batch_size": 512})
    s = structure_finder(d, cfg, nepochs=1, structures=((2, 4), (3, 4)))
    assert s["suggested"] in ([2, 4], [3, 4]) and len(s["valid_loss"]) == 2
    r = l1_finder(d, cfg, nepochs=1)
    assert len(r["valid_loss"]) == 11 and isinstance(r["suggested"], float)


def test_root_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from surveynet.cli import main

    table = tmp_path / "m.fits"
    assert (
        main(
            [
                "simulate",
                "sysmaps",
                "--nside",
                "8",
                "--seed",
                "2",
                "--out",
                str(table),
                "--synthetic-galaxy",
                "--quiet",
            ]
        )
        == 0
    )
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("nepochs: 2\nlearnin_rate: 0.1\n")
    assert (
        main(
            [
                "sysnet",
                "train",
                "--config",
                str(cfg),
                "--input",
                str(table),
                "--out",
                str(tmp_path / "run"),
                "--quiet",
            ]
        )
        == 1
    )
    assert "learnin_rate" in capsys.readouterr().err
    assert (
        main(
            [
                "sysnet",
                "weights",
                str(tmp_path / "nothing.fits"),
                "--out",
                str(tmp_path / "w.fits"),
                "--quiet",
            ]
        )
        == 1
    )


def test_demo_stage_and_bench_helpers(tmp_path: Path) -> None:
    from surveynet.demo import DemoContext
    from surveynet.sysnet.bench import _batched, _dataloader_epoch, _table
    from surveynet.sysnet.demo import demo_stage

    ctx = DemoContext(out=tmp_path, spectra=[], truth=tmp_path / "none", seed=4)
    sec = demo_stage(ctx, nside=8, nepochs=2, nchains=1)
    assert all(Path(p).is_file() for p in [*sec.images, *sec.files])
    assert "chi2" in " ".join(sec.lines)
    wall, cpu = _batched(400, 4, 2, 1, 1)
    assert wall > 0 and cpu > 0
    x, y, f = _table(300, 4)
    assert _dataloader_epoch(x, y, f, 64, 0.01) > 0
