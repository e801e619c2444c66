"""QuasarNET application: targets, loss, training, predict catalogue, evaluate metrics, CLI.

Everything runs on tiny synthetic data (a few hundred spectra, a 16-filter network) in seconds.
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

from surveynet.cli import main
from surveynet.config import to_dict
from surveynet.io.spectra import Spectra
from surveynet.quasar import data as qd
from surveynet.quasar import evaluate as ev
from surveynet.quasar import train as tr
from surveynet.quasar.config import GridConfig, QuasarConfig, QuasarNetConfig, TrainConfig
from surveynet.quasar.lines import DEFAULT_LINES, DEFAULT_LINES_BAL, rest_wavelengths

GRID = GridConfig.log()
LINE_W = rest_wavelengths(DEFAULT_LINES)
BAL_W = rest_wavelengths(DEFAULT_LINES_BAL)
TINY = [
    "--set",
    "model.n_filters=8",
    "--set",
    "model.n_fc=16",
    "--set",
    "model.n_layers=6",
    "--set",
    "model.padding=same",
]


# ------------------------------------------------------------------------------ targets / loss
def test_objective_boxes_offsets_and_weights() -> None:
    z = np.array([2.0, 2.0, 2.0, 2.0, 0.3])
    is_qso = np.array([True, True, True, False, True])
    bal = np.array([1, -1, 0, 1, 1])
    t, w = tr.objective(z, is_qso, bal, GRID.wave(), LINE_W, BAL_W, 13)
    assert t.shape == (5, 7, 26) and w.shape == (5, 7)
    # QSO at z = 2: LYA, CIV, CIII, MgII on the grid (one box each), Hbeta/Halpha off it
    assert t[0, :4, :13].sum(axis=1).tolist() == [1, 1, 1, 1]
    assert t[0, 4:6, :13].sum() == 0 and t[0, 4:6, 13:].sum() == 0
    # box index + offset reproduces pos = idx(lambda) * 13 / 443 (linear interpolation in lambda)
    lam = LINE_W[1] * 3.0
    idx = np.interp(lam, GRID.wave(), np.arange(443))
    j = int(np.argmax(t[0, 1, :13]))
    assert abs(j + t[0, 1, 13 + j] - idx * 13 / 443) < 1e-6
    # BAL head: kept for bal=+1, zeroed (weight 1) for bal=-1, weight 0 for unknown
    assert t[0, 6, :13].sum() == 1 and t[1, 6, :13].sum() == 0 and t[2, 6, :13].sum() == 0
    assert w[:3, 6].tolist() == [1.0, 1.0, 0.0] and np.all(w[:, :6] == 1)
    # non-quasar: all boxes zero, even with a BAL flag
    assert t[3, :, :13].sum() == 0
    # low-z QSO: LYA off the grid
    assert t[4, 0].sum() == 0 and t[4, 3, :13].sum() == 1


def test_bal_labels_rule() -> None:
    got = qd.bal_labels(np.array([1, 1, 0, 0]), np.array([300.0, 0.0, 0.0, 50.0]))
    assert got.tolist() == [1, 0, -1, 0]


def _loss_numpy(p: np.ndarray, t: np.ndarray, w: np.ndarray, nb: int) -> float:
    """Reference: the per-spectrum loss written out term by term (quasarnet.md §2.3)."""
    total = 0.0
    n, nh, _ = p.shape
    for h in range(nh):
        acc = 0.0
        for i in range(n):
            b, o = t[i, h, :nb], t[i, h, nb:]
            pp, oo = np.clip(p[i, h, :nb], 1e-7, 1 - 1e-7), p[i, h, nb:]
            n1, n2 = b.sum() + 1e-7, (1 - b).sum() + 1e-7
            li = (
                -(b * np.log(pp)).sum() / n1
                - ((1 - b) * np.log(1 - pp)).sum() / n2
                + (b * (oo - o) ** 2).sum() / n1
            )
            acc += w[i, h] * li
        total += acc / n
    return total


def test_loss_matches_reference_and_weights() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    z = rng.uniform(0.1, 4.5, 16)
    t, w = tr.objective(
        z, rng.random(16) < 0.7, rng.integers(-1, 2, 16), GRID.wave(), LINE_W, BAL_W
    )
    p = rng.uniform(0, 1, t.shape).astype(np.float32)
    got = float(
        tr.quasarnet_loss(torch.from_numpy(p), torch.from_numpy(t), torch.from_numpy(w), 13)
    )
    assert got == pytest.approx(_loss_numpy(p, t, w, 13), rel=1e-5)  # float32 vs float64 sums
    # a perfect prediction costs (almost) nothing
    perfect = t.copy()
    assert (
        float(
            tr.quasarnet_loss(
                torch.from_numpy(perfect), torch.from_numpy(t), torch.from_numpy(w), 13
            )
        )
        < 1e-4
    )
    # zero weight removes a head entirely
    w0 = w.copy()
    w0[:, 6] = 0
    p2 = p.copy()
    p2[:, 6] = rng.uniform(0, 1, p2[:, 6].shape)
    a = float(tr.quasarnet_loss(torch.from_numpy(p), torch.from_numpy(t), torch.from_numpy(w0), 13))
    b = float(
        tr.quasarnet_loss(torch.from_numpy(p2), torch.from_numpy(t), torch.from_numpy(w0), 13)
    )
    assert a == pytest.approx(b, rel=1e-6)
    # the per-batch variant is a different normalisation, but also ~0 on a perfect prediction
    assert (
        float(
            tr.quasarnet_loss_per_batch(
                torch.from_numpy(perfect), torch.from_numpy(t), torch.from_numpy(w), 13
            )
        )
        < 1e-4
    )


def test_offset_weight_scales_only_the_offset_term() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    z = rng.uniform(0.1, 4.5, 12)
    t, w = tr.objective(z, np.ones(12, bool), np.zeros(12, np.int8), GRID.wave(), LINE_W, BAL_W)
    nb = 13
    # perfect boxes, wrong offsets: the loss is the offset term alone (up to the clipped logs)
    p = t.copy()
    p[..., nb:] = rng.uniform(0, 1, p[..., nb:].shape)
    args = [torch.from_numpy(a) for a in (p, t, w)]
    one = float(tr.quasarnet_loss(*args, nb))
    assert one > 1e-3
    assert float(tr.quasarnet_loss(*args, nb, 30.0)) == pytest.approx(30 * one, rel=1e-4)
    one_b = float(tr.quasarnet_loss_per_batch(*args, nb))
    assert float(tr.quasarnet_loss_per_batch(*args, nb, 30.0)) == pytest.approx(
        30 * one_b, rel=1e-4
    )
    # perfect offsets, wrong boxes: the weight changes nothing
    q = t.copy()
    q[..., :nb] = rng.uniform(0, 1, q[..., :nb].shape)
    args = [torch.from_numpy(a) for a in (q, t, w)]
    assert float(tr.quasarnet_loss(*args, nb, 30.0)) == pytest.approx(
        float(tr.quasarnet_loss(*args, nb)), rel=1e-6
    )
    with pytest.raises(ValueError, match="offset_weight"):
        TrainConfig(offset_weight=-1)


# ------------------------------------------------------------------------------ tiny mock data
def _spectrum_set(n: int, seed: int) -> tuple[Spectra, Table]:
    """DESI-like b/r/z spectra: quasars (broad lines on a power law), stars, galaxies; truth."""
    rng = np.random.default_rng(seed)
    waves = {
        "b": np.arange(3600.0, 5800.0, 0.8),
        "r": np.arange(5760.0, 7620.0, 0.8),
        "z": np.arange(7520.0, 9824.0, 0.8),
    }
    kinds = rng.choice(["QSO", "STAR", "GALAXY"], size=n, p=[0.5, 0.3, 0.2])
    z = np.where(
        kinds == "QSO",
        rng.uniform(0.5, 4.0, n),
        np.where(kinds == "GALAXY", rng.uniform(0.1, 1.0, n), 0.0),
    )
    flux, ivar = {}, {}
    for b, w in waves.items():
        f = np.empty((n, w.size), np.float32)
        for i in range(n):
            cont = (w / 5000.0) ** (-1.5 if kinds[i] == "QSO" else 1.0)
            if kinds[i] == "QSO":
                for lr, amp in zip([*LINE_W, 1908.7], [8, 4, 2, 2, 1, 2, 2], strict=True):
                    lam = lr * (1 + z[i])
                    cont = cont + amp * np.exp(-0.5 * ((w - lam) / (0.01 * lam)) ** 2)
            elif kinds[i] == "GALAXY":
                lam = 6562.8 * (1 + z[i])
                cont = cont + 3 * np.exp(-0.5 * ((w - lam) / 4.0) ** 2)
            f[i] = cont + rng.normal(0, 0.2, w.size)
        flux[b], ivar[b] = f, np.full((n, w.size), 25.0, np.float32)
    ivar["b"][0] = 0.0  # one empty spectrum: dropped by preprocessing
    tid = np.arange(1000, 1000 + n, dtype=np.int64)
    sp = Spectra(
        bands=("b", "r", "z"),
        wave=waves,
        flux=flux,
        ivar=ivar,
        fibermap=Table({"TARGETID": tid}),
        source="memory",
    )
    for b in ("r", "z"):
        sp.ivar[b][0] = 0.0
    truth = Table(
        {
            "TARGETID": tid,
            "OBJTYPE": kinds,
            "Z": z,
            "IS_BAL": np.zeros(n, bool),
            "BI_CIV": np.zeros(n),
        }
    )
    return sp, truth


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from surveynet.io.desi import write_coadd

    d = tmp_path_factory.mktemp("qnmock")
    sp, truth = _spectrum_set(120, 0)
    f1 = write_coadd(d / "coadd-a.fits", sp.select(slice(0, 60)))
    f2 = write_coadd(d / "coadd-b.fits", sp.select(slice(60, 120)))
    hdu = fits.table_to_hdu(truth)
    hdu.header["EXTNAME"] = "TRUTH"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(d / "truth.fits")
    return {"dir": d, "f1": f1, "f2": f2, "truth": d / "truth.fits"}


@pytest.fixture(scope="module")
def model_dir(mock: dict[str, Path]) -> Path:
    out = mock["dir"] / "model"
    rc = main(
        [
            "quasar",
            "train",
            str(mock["f1"]),
            str(mock["f2"]),
            "--truth",
            str(mock["truth"]),
            "--cache",
            str(mock["dir"] / "train.npz"),
            "--out",
            str(out),
            "--seed",
            "3",
            "--set",
            "train.epochs=2",
            "--set",
            "train.batch_size=32",
            *TINY,
            "--quiet",
        ]
    )
    assert rc == 0
    return out


# ------------------------------------------------------------------------------ train
def test_train_writes_model_history_and_command(model_dir: Path, mock: dict[str, Path]) -> None:
    meta = json.loads((model_dir / "config.json").read_text())
    assert meta["pipeline"] == "quasar" and meta["architecture"] == "quasarnet"
    assert meta["training"]["seed"] == 3
    assert meta["training"]["command"].startswith("surveynet quasar train ")
    assert "--seed 3" in meta["training"]["command"]
    assert meta["preprocessing"]["lines"] == list(DEFAULT_LINES)
    hist = json.loads((model_dir / "history.json").read_text())
    assert len(hist) == 2 and all(np.isfinite(r["train_loss"]) for r in hist)
    assert "val_loss" in hist[0]
    # the prepared dataset was cached, without pickles, one row fewer (empty spectrum dropped)
    with np.load(mock["dir"] / "train.npz", allow_pickle=False) as z:
        assert z["X"].dtype == np.float32 and z["X"].shape == (119, 443)
        assert set(np.unique(z["CLASS"])) <= {0, 1, 2}


def _random_dataset(n: int, seed: int) -> dict[str, np.ndarray]:
    """A prepared-dataset dict of random inputs and labels (training mechanics tests)."""
    rng = np.random.default_rng(seed)
    return {
        "X": rng.standard_normal((n, GRID.n_bins)).astype(np.float32),
        "Z": rng.uniform(0, 4, n),
        "CLASS": rng.integers(0, 3, n).astype(np.int8),
        "BAL": rng.integers(-1, 2, n).astype(np.int8),
        "TARGETID": np.arange(n),
        "GRID": GRID.wave(),
    }


def test_train_is_seeded_and_resumable(tmp_path: Path) -> None:
    data = _random_dataset(96, 0)
    model = QuasarNetConfig(n_filters=4, n_fc=8)

    def cfg(epochs: int) -> QuasarConfig:
        return QuasarConfig(model=model, train=TrainConfig(epochs=epochs, batch_size=32, seed=5))

    a = tr.train(cfg(2), data, tmp_path / "a", quiet=True, command="x")
    b = tr.train(cfg(1), data, tmp_path / "b", quiet=True, command="x")
    b = tr.train(cfg(2), data, tmp_path / "b", quiet=True, resume=True, command="x")
    ha = json.loads((a / "history.json").read_text())
    hb = json.loads((b / "history.json").read_text())
    assert [r["epoch"] for r in hb] == [1, 2]
    # same seed: resuming gives the same losses as an uninterrupted run (float32 CPU, 1e-5)
    assert ha[1]["train_loss"] == pytest.approx(hb[1]["train_loss"], rel=1e-5)
    with pytest.raises(FileExistsError):
        tr.train(cfg(1), data, tmp_path / "a", quiet=True, command="x")


def test_train_init_starts_from_given_weights(tmp_path: Path) -> None:
    from surveynet.io.model import load_model

    data = _random_dataset(64, 1)
    model = QuasarNetConfig(n_filters=4, n_fc=8)
    cfg = QuasarConfig(model=model, train=TrainConfig(epochs=1, batch_size=32, seed=5))
    a = tr.train(cfg, data, tmp_path / "a", quiet=True, command="x")
    # zero learning rate: fine-tuning from `a` must reproduce `a`'s weights exactly,
    # while a fresh initialisation with another seed does not
    frozen = QuasarConfig(model=model, train=TrainConfig(epochs=1, batch_size=32, seed=6, lr=0.0))
    b = tr.train(frozen, data, tmp_path / "b", quiet=True, command="x", init=a)
    c = tr.train(frozen, data, tmp_path / "c", quiet=True, command="x")
    wa, wb, wc = (load_model(p).tensors for p in (a, b, c))
    assert all(np.array_equal(wa[k], wb[k]) for k in wa if "running" not in k)
    assert not np.array_equal(wa["fc_common.weight"], wc["fc_common.weight"])
    meta = json.loads((b / "config.json").read_text())
    assert meta["training"]["init"]["model"] == "a"
    # an architecture mismatch is refused with the differing fields named
    other = QuasarConfig(model=QuasarNetConfig(n_filters=6, n_fc=8), train=cfg.train)
    with pytest.raises(ValueError, match="n_filters"):
        tr.train(other, data, tmp_path / "d", quiet=True, command="x", init=a)


def test_cosine_schedule_resumed_from_constant_run_equals_single_run(tmp_path: Path) -> None:
    """The bundled model's recipe: N constant-lr epochs, then --resume with a cosine decay."""
    import surveynet.quasar.train as tr
    from surveynet.quasar.config import QuasarConfig, QuasarNetConfig, TrainConfig

    data = _random_dataset(48, 1)
    model = QuasarNetConfig(n_filters=4, n_fc=8)

    def cfg(epochs: int) -> QuasarConfig:
        return QuasarConfig(model=model, train=TrainConfig(epochs=epochs, batch_size=16, seed=2))

    def cos(epochs: int) -> QuasarConfig:
        return QuasarConfig(
            model=model,
            train=TrainConfig(
                epochs=epochs,
                batch_size=16,
                seed=2,
                lr_schedule="cosine",
                lr_decay_start=1,
                lr_min=1e-5,
            ),
        )

    a = tr.train(cos(3), data, tmp_path / "a", quiet=True, command="x")
    tr.train(cfg(1), data, tmp_path / "b", quiet=True, command="x")
    b = tr.train(cos(3), data, tmp_path / "b", quiet=True, resume=True, command="x")
    ha = json.loads((a / "history.json").read_text())
    hb = json.loads((b / "history.json").read_text())
    # float32 CPU: resumed and uninterrupted runs agree to 1e-5 relative
    for ra, rb in zip(ha, hb, strict=True):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-5)
    meta = json.loads((a / "config.json").read_text())
    t = meta["training"]["config"]["train"]
    assert (t["lr_schedule"], t["lr_decay_start"], t["lr_min"]) == ("cosine", 1, 1e-5)
    # the work folder is <out>.work
    assert (tmp_path / "b.work" / "checkpoint.safetensors").is_file()
    from surveynet.nn.train import lr_factor

    f = lr_factor("cosine", 3, 1, 0.0)
    assert [f(0), f(1), f(2)] == pytest.approx([1.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="decay start"):
        lr_factor("cosine", 3, 3)


def test_load_dataset_rejects_bad_npz(tmp_path: Path) -> None:
    from surveynet.errors import InputError

    p = tmp_path / "bad.npz"
    np.savez(p, X=np.zeros((2, 443), np.float32))
    with pytest.raises(InputError, match=r"bad\.npz.*Z"):
        qd.load_dataset([p])


# ------------------------------------------------------------------------------ predict
def test_predict_catalog_columns_and_provenance(
    model_dir: Path, mock: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "cat.fits"
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    rc = main(
        [
            "quasar",
            "predict",
            str(mock["f1"]),
            str(bad),
            str(mock["f2"]),
            "--model",
            str(model_dir),
            "--out",
            str(out),
            "--workers",
            "0",
            "--quiet",
        ]
    )
    assert rc == 3  # one bad file reported, the rest completed
    with fits.open(out) as h:
        hdr = h[0].header
        cat = Table.read(h["QN_CATALOG"], mask_invalid=False)
        failed = Table.read(h["FAILED"])
    assert len(cat) == 120 and list(failed["SOURCE"]) == [str(bad)]
    from surveynet.io.model import load_model

    assert hdr["MODELHSH"] == load_model(model_dir).weights_hash
    assert hdr["NFAILED"] == 1 and hdr["C_TH"] == 0.5
    for col in (
        "TARGETID",
        "C_LINES",
        "Z_LINES",
        "C_LYA",
        "Z_LYA",
        "C_HALPHA",
        "Z_QN",
        "IS_QSO_QN",
        "C_BAL",
        "Z_BAL",
        "QN_FLAG",
    ):
        assert col in cat.colnames, col
    assert cat["C_LINES"].shape == (120, 6)
    # the empty spectrum keeps its row with NaN outputs and the NO_DATA flag
    row0 = cat[cat["TARGETID"] == 1000][0]
    assert np.all(np.isnan(row0["C_LINES"])) and not row0["IS_QSO_QN"] and row0["QN_FLAG"] & 1
    ok = cat["QN_FLAG"] == 0
    np.testing.assert_array_equal(cat["C_LYA"][ok], cat["C_LINES"][ok][:, 0])
    # is_qso rule
    np.testing.assert_array_equal(cat["IS_QSO_QN"][ok], (cat["C_LINES"][ok] > 0.5).sum(1) >= 1)
    # refuses to overwrite
    assert (
        main(
            [
                "quasar",
                "predict",
                str(mock["f1"]),
                "--model",
                str(model_dir),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 1
    )


def test_predict_never_imports_torch(
    model_dir: Path, mock: dict[str, Path], tmp_path: Path
) -> None:
    code = (
        "import sys; from surveynet.quasar.predict import predict_files; "
        f"predict_files([{str(mock['f1'])!r}], {str(tmp_path / 'c.fits')!r}, "
        f"model={str(model_dir)!r}, quiet=True); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_predict_all_inputs_bad(model_dir: Path, tmp_path: Path) -> None:
    rc = main(
        [
            "quasar",
            "predict",
            str(tmp_path / "nope.fits"),
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "c.fits"),
            "--quiet",
        ]
    )
    assert rc == 1 and not (tmp_path / "c.fits").exists()


# ------------------------------------------------------------------------------ evaluate
def _matched(
    objtype: list[str], z_true: list[float], z_qn: list[float], c: list[float]
) -> ev.Matched:
    n = len(objtype)
    return ev.Matched(
        targetid=np.arange(n),
        c_lines=np.array(c, float)[:, None],
        z_qn=np.array(z_qn, float),
        c_bal=None,
        objtype=np.array(objtype),
        z_true=np.array(z_true, float),
        is_bal=None,
    )


def test_purity_completeness_definitions() -> None:
    m = _matched(
        ["QSO", "QSO", "QSO", "GALAXY", "STAR", "BAD", "QSO"],
        [2.0, 1.0, 3.0, 0.5, 0.0, 2.0, 2.5],
        [2.01, 1.0, 1.5, 0.5, 1.2, 2.0, 2.5],  # QSO 2 has a wrong z (dv >> 6000 km/s)
        [0.9, 0.8, 0.9, 0.9, 0.9, 0.9, 0.3],
    )
    pur, com = ev.purity_completeness(m, np.array([0.5]))
    # flagged not BAD: 0,1,2,3,4 -> correct: QSO 0, QSO 1, GALAXY 3 (good z) = 3/5
    assert pur[0] == pytest.approx(3 / 5)
    # true QSOs 0,1,2,6 -> flagged with good z: 0, 1 = 2/4
    assert com[0] == pytest.approx(2 / 4)
    met = ev.compute_metrics(m, c_grid=np.array([0.2, 0.5, 0.95]))
    assert met["counts"] == {"QSO": 4, "STAR": 1, "GALAXY": 1, "BAD": 1}
    conf = ev.confusion_matrix(m, 0.5)
    # true z: 2.0, 1.0 -> QSO_LZ; 3.0 (found at 1.5), 2.5 (not flagged) -> QSO_HZ
    assert conf["QSO_LZ"] == {"NOT_QSO": 0, "QSO_LZ": 2, "QSO_HZ": 0}
    assert conf["QSO_HZ"] == {"NOT_QSO": 1, "QSO_LZ": 1, "QSO_HZ": 0}
    assert conf["STAR"]["QSO_LZ"] == 1 and conf["BAD"]["QSO_LZ"] == 1
    assert ev.dv_kms(np.array([2.0]), np.array([2.0]))[0] == 0.0


def test_evaluate_cli_writes_metrics_and_plots(
    model_dir: Path, mock: dict[str, Path], tmp_path: Path
) -> None:
    cat = tmp_path / "cat.fits"
    assert (
        main(
            [
                "quasar",
                "predict",
                str(mock["f1"]),
                str(mock["f2"]),
                "--model",
                str(model_dir),
                "--out",
                str(cat),
                "--workers",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    out = tmp_path / "ev"
    assert (
        main(
            [
                "quasar",
                "evaluate",
                str(cat),
                "--truth",
                str(mock["truth"]),
                "--out",
                str(out),
                "--spectra",
                str(mock["f1"]),
                "--model",
                str(model_dir),
                "--quiet",
            ]
        )
        == 0
    )
    m = json.loads((out / "metrics.json").read_text())
    for key in (
        "crossover_c_th",
        "purity_at_crossover",
        "completeness_at_crossover",
        "sigma_dv_kms",
        "catastrophic_rate",
        "confusion_at_crossover",
        "curve",
    ):
        assert key in m
    assert m["n_spectra"] == 120 and len(m["curve"]["c_th"]) == 99
    for name in (
        "purity_completeness.png",
        "dv_histogram.png",
        "confusion.png",
        "spectra_lines.png",
    ):
        assert (out / name).stat().st_size > 1000, name
    # a truth file without these targets is an input error naming the catalogue
    t2 = tmp_path / "t2.fits"
    hdu = fits.table_to_hdu(Table({"TARGETID": [1], "OBJTYPE": ["QSO"], "Z": [1.0]}))
    hdu.header["EXTNAME"] = "TRUTH"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(t2)
    argv = ["quasar", "evaluate", str(cat), "--truth", str(t2), "--out", str(out)]
    assert main([*argv, "--overwrite"]) == 1


# ------------------------------------------------------------------------------ bundled model, demo
def test_bundled_model_loads_with_its_command() -> None:
    from surveynet.config import from_dict
    from surveynet.io.model import load_model
    from surveynet.quasar.config import DEFAULT_MODEL
    from surveynet.quasar.engine import load_engine

    saved = load_model(DEFAULT_MODEL, pipeline="quasar")
    cmd = saved.meta["training"]["command"]
    assert cmd.startswith("surveynet quasar train ") and "--seed 7" in cmd and "--init" in cmd
    assert "experiments/quasar/train_bundled.sh" in saved.meta["training"]["reproduce"]
    # the model directory layout of docs/architecture.md: the full config in training.config
    assert not (saved.path / "quasar_config.json").exists()
    full = from_dict(QuasarConfig, saved.meta["training"]["config"])
    assert full.train.offset_weight == 100 and full.train.lr_schedule == "cosine"
    assert to_dict(full.model) == saved.config
    data_cmd = saved.meta["training"]["data_command"]  # the widened fine-tune (round 2g)
    assert "surveynet simulate spectra" in data_cmd and "--set star_library=mixed" in data_cmd
    assert "surveynet quasar prepare --simulate" in data_cmd
    assert (saved.path / "model.safetensors").stat().st_size < 5_000_000  # small enough to ship
    eng = load_engine(DEFAULT_MODEL)
    assert eng.grid.n_bins == 443 and eng.lines.lines == DEFAULT_LINES


def test_bundled_model_on_fresh_mock(tmp_path: Path) -> None:
    """Regression guard on a small fresh mock (seed never used in training); loose bounds."""
    from surveynet.quasar.config import DEFAULT_MODEL
    from surveynet.quasar.predict import predict_files
    from surveynet.sim.spectra import SpectraSimConfig, simulate_to_files

    files, truth = simulate_to_files(
        tmp_path / "m", 300, 4242, n_files=1, config=SpectraSimConfig(resolution=False)
    )
    res = predict_files(files, tmp_path / "c.fits", model=DEFAULT_MODEL, quiet=True)
    cat = res.path
    assert cat.is_file() and res.failures == [] and res.exit_code == 0
    m = ev.evaluate(cat, truth, tmp_path / "ev", overwrite=True)
    assert m["purity_at_0.5"] > 0.9 and m["completeness_at_0.5"] > 0.9
    assert m["sigma_dv_kms"] < 900  # 424 km/s on 5,000 spectra (docs/quasar_evaluate.md)


def test_demo_stage(mock: dict[str, Path], tmp_path: Path) -> None:
    from surveynet.demo import DemoContext
    from surveynet.quasar.demo import quasar_demo

    ctx = DemoContext(out=tmp_path, spectra=[mock["f1"], mock["f2"]], truth=mock["truth"], seed=0)
    sec = quasar_demo(ctx)
    assert sec.title == "QuasarNET" and any("crossover" in line for line in sec.lines)
    assert all(p.is_file() for p in sec.images) and len(sec.images) >= 3
    assert (tmp_path / "quasar" / "qn_catalog.fits").is_file()


def test_unconfirmed_truth_counts_as_bad() -> None:
    """A quasar without data (dead fibre, Z_CONF != 3) is BAD, not a missed quasar."""
    cat = Table(
        {
            "TARGETID": np.array([1, 2, 3], dtype=np.int64),
            "C_LINES": np.array([[0.9, 0.1], [0.0, 0.0], [0.0, 0.0]]),
            "Z_QN": np.array([2.0, 0.0, 0.0]),
        }
    )
    truth = Table(
        {
            "TARGETID": np.array([3, 2, 1], dtype=np.int64),
            "OBJTYPE": ["QSO", "QSO", "QSO"],
            "Z": [1.0, 1.5, 2.0],
            "DEAD_FIBRE": [False, True, False],
            "Z_CONF": [0, 3, 3],
        }
    )
    m = ev.match(cat, truth)
    assert list(m.objtype) == ["QSO", "BAD", "BAD"]
    purity, completeness = ev.purity_completeness(m, np.array([0.5]))
    assert completeness[0] == 1.0 and purity[0] == 1.0
