"""DLA networks: shapes, parameters, numpy-engine parity, training, save/load, predict."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from surveynet.config import apply_overrides, from_dict, to_dict  # noqa: E402
from surveynet.dla.bench import finder_flops, toy_sightlines  # noqa: E402
from surveynet.dla.config import DLAConfig, FCNConfig, WindowCNNConfig  # noqa: E402
from surveynet.dla.data import pixel_labels  # noqa: E402
from surveynet.dla.engine import FCNEngine, WindowCNNEngine  # noqa: E402
from surveynet.dla.model import FCN, WindowCNN, count_parameters, window_lengths  # noqa: E402
from surveynet.dla.preprocess import InputSpec  # noqa: E402
from surveynet.dla.sightline import search_pixels  # noqa: E402
from surveynet.nn.numpy_ops import same_padding  # noqa: E402

torch.set_num_threads(1)

PARITY_TOL = 1e-6  # numpy engine vs torch, float64


def _state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def test_window_cnn_anchor_shape():
    # dla.md §4.2: SDSS v7.1 400 -> 134 -> 34 -> 34 -> 9 -> 9 -> 3, 652,101 parameters
    m = WindowCNN(WindowCNNConfig())
    assert window_lengths(m.config) == [400, 134, 34, 34, 9, 9, 3]
    assert count_parameters(m) == 652_101
    d = WindowCNNConfig.desi(in_channels=4, window=600)
    assert window_lengths(d) == [600, 120, 120, 60, 12, 12, 2]
    assert abs(count_parameters(WindowCNN(d)) - 2.30e6) < 0.01e6
    # ~7.3 M MAC per SDSS window (dla.md §9)
    e = WindowCNNEngine(_state(m), m.config)
    assert abs(e.macs_per_window() - 7.3e6) < 0.1e6


def test_same_padding_matches_tensorflow():
    assert same_padding(400, 32, 3) == (15, 16)
    assert same_padding(134, 7, 4) == (2, 3)
    assert same_padding(9, 6, 4) == (2, 3)


@pytest.mark.parametrize(
    "cfg",
    [
        WindowCNNConfig(nhi_shift=20.0),
        WindowCNNConfig.desi(4, 600),
        WindowCNNConfig(conv_filters=(8, 8, 8), fc1=16, fc2=(8, 8, 8)),
    ],
)
def test_window_engine_parity(cfg):
    torch.manual_seed(0)
    m = WindowCNN(cfg).double().eval()
    x = np.random.default_rng(1).standard_normal((7, cfg.in_channels, cfg.window))
    ref = m(torch.from_numpy(x)).detach().numpy()
    out = WindowCNNEngine(_state(m), cfg, dtype=np.float64)(x)
    assert out.shape == (7, 3)
    assert np.abs(out - ref).max() <= PARITY_TOL
    out32 = WindowCNNEngine(_state(m), cfg, dtype=np.float32)(x)
    assert np.abs(out32 - ref).max() <= 1e-3 * max(1.0, np.abs(ref).max())  # float32 engine


@pytest.mark.parametrize(
    "cfg",
    [
        FCNConfig(),
        FCNConfig(
            in_channels=4, dilations=(1, 3, 9), width=16, stem_channels=(8, 16), head_hidden=8
        ),
    ],
)
def test_fcn_engine_parity(cfg):
    torch.manual_seed(0)
    m = FCN(cfg).double().eval()
    x = np.random.default_rng(2).standard_normal((3, cfg.in_channels, 512))
    ref = m(torch.from_numpy(x)).detach().numpy()
    out = FCNEngine(_state(m), cfg, dtype=np.float64)(x)
    assert out.shape == (3, 3, 512)
    assert np.abs(out - ref).max() <= PARITY_TOL


def test_refiner_engine_parity():
    from surveynet.dla.config import RefinerConfig
    from surveynet.dla.engine import RefinerEngine
    from surveynet.dla.model import Refiner

    cfg = RefinerConfig()
    torch.manual_seed(0)
    m = Refiner(cfg).double().eval()
    x = np.random.default_rng(3).standard_normal((5, cfg.in_channels, cfg.crop))
    ref = m(torch.from_numpy(x)).detach().numpy()
    out = RefinerEngine(_state(m), cfg, dtype=np.float64)(x)
    assert out.shape == (5, 3)
    assert np.abs(out - ref).max() <= PARITY_TOL


def test_engine_builders_take_tensors_config_options():
    # one builder signature for every numpy engine: (tensors, config, **options)
    from surveynet.dla.config import RefinerConfig
    from surveynet.dla.engine import build_fcn_engine, build_refiner_engine, build_window_engine
    from surveynet.dla.model import Refiner

    for build, model, cfg in (
        (build_fcn_engine, FCN, FCNConfig()),
        (build_window_engine, WindowCNN, WindowCNNConfig()),
        (build_refiner_engine, Refiner, RefinerConfig()),
    ):
        st = _state(model(cfg))
        e = build(st, to_dict(cfg), dtype=np.float64)
        assert e.config == cfg and e.dtype == np.float64
        assert build(st, cfg).dtype == np.float32  # a config dataclass is accepted as is


def test_fcn_receptive_field_covers_a_window():
    cfg = FCNConfig()
    assert cfg.receptive_field >= 400
    # empirical check: a pixel's output changes only within the receptive field
    torch.manual_seed(0)
    m = FCN(cfg).double().eval()
    x = torch.zeros(1, 1, 2048, dtype=torch.float64)
    y0 = m(x)
    x[0, 0, 1024] = 5.0
    changed = torch.nonzero((m(x) - y0).abs().sum(1)[0] > 0).flatten()
    span = int(changed.max() - changed.min()) + 1
    assert 400 <= span <= cfg.receptive_field + cfg.factor


def test_fcn_input_length_checked():
    with pytest.raises(ValueError, match=r"L % 4"):
        FCN(FCNConfig())(torch.zeros(1, 1, 513))
    e = FCNEngine(_state(FCN(FCNConfig())), FCNConfig())
    with pytest.raises(ValueError):
        e(np.zeros((1, 1, 513)))


def test_engine_rejects_wrong_tensors():
    from surveynet.errors import ModelFormatError

    st = _state(FCN(FCNConfig()))
    st.pop("head_out.bias")
    with pytest.raises(ModelFormatError, match=r"head_out\.bias"):
        FCNEngine(st, FCNConfig())


def test_config_round_trip_and_overrides():
    cfg = apply_overrides(
        DLAConfig(), ["model.architecture=dla_window_cnn", "model.window_cnn.fc1=64"]
    )
    assert cfg.model.arch_config().fc1 == 64
    assert from_dict(DLAConfig, to_dict(cfg)) == cfg


def test_pixel_labels_consistent_with_core():
    sl = toy_sightlines(1, 3)[0]
    lab = pixel_labels(sl, InputSpec())
    ix = sl.pixel_of(sl.dlas[0].central_wavelength)
    assert lab.classification[ix] == 1 and lab.offset[ix] == 0
    assert lab.offset[ix - 10] == 10 and lab.nhi[ix - 10] == pytest.approx(sl.dlas[0].nhi)
    assert (lab.classification == 1).sum() <= 121


def _train(tmp_path, arch: str, extra=()):
    from surveynet.dla.train import train_model

    sls = toy_sightlines(12, 5)
    over = [f"model.architecture={arch}", "train.epochs=2", "train.batch_size=4", *extra]
    if arch == "dla_window_cnn":
        over += [
            "model.window_cnn.conv_filters=[8,8,8]",
            "model.window_cnn.fc1=16",
            "model.window_cnn.fc2=[8,8,8]",
            "train.max_windows=10",
            "model.window_cnn.nhi_shift=20",
        ]
    else:
        over += ["model.fcn.width=8", "model.fcn.stem_channels=[8,8]", "model.fcn.head_hidden=8"]
    cfg = apply_overrides(DLAConfig(), over)
    return train_model(cfg, sls, tmp_path / arch, quiet=True, command="test"), cfg, sls


@pytest.mark.parametrize("arch", ["dla_fcn", "dla_window_cnn"])
def test_train_save_load_predict(tmp_path, arch):
    from surveynet.dla.predict import DLAFinder, predict_sightlines
    from surveynet.io.model import load_model
    from surveynet.registry import get_architecture

    path, _, sls = _train(tmp_path, arch)
    meta = json.loads((path / "config.json").read_text())
    assert meta["architecture"] == arch and meta["training"]["command"] == "test"
    hist = json.loads((path / "history.json").read_text())
    assert [r["epoch"] for r in hist] == [1, 2] and meta["training"]["final"] == hist[-1]
    saved = load_model(path, pipeline="dla")
    # torch rebuild from the registry loads strictly
    model = get_architecture(arch)(**saved.config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in saved.tensors.items()}, strict=True)
    finder = DLAFinder.from_saved(path, dtype=np.float64)
    preds = finder.predict(sls[:2])
    # engine output equals torch on the same prepared input (float64)
    for sl, p in zip(sls[:2], preds, strict=True):
        assert np.array_equal(p.pixel, search_pixels(sl, finder.spec.rest_range))
        assert np.all((p.confidence >= 0) & (p.confidence <= 1))
    cat = predict_sightlines(sls[:3], [finder])
    assert len(cat.qsos) == 3
    assert set(cat.dlas.colnames) >= {"TARGETID", "Z_DLA", "NHI", "ABSORBER_TYPE", "DLA_CONFIDENCE"}
    assert finder_flops(finder, sls[:2]) > 0


def test_fcn_predict_matches_torch(tmp_path):
    from surveynet.dla.predict import DLAFinder
    from surveynet.dla.train import fcn_arrays, input_spec

    path, cfg, sls = _train(tmp_path, "dla_fcn")
    finder = DLAFinder.from_saved(path, dtype=np.float64)
    model = FCN(cfg.model.fcn).double().eval()
    model.load_state_dict(
        {k: torch.from_numpy(v).double() for k, v in finder.saved.tensors.items()}
    )
    arr = fcn_arrays(sls[:1], input_spec(cfg), cfg.model.fcn)
    ref = model(torch.from_numpy(arr.x).double()).detach().numpy()[0]
    p = finder.predict(sls[:1])[0]
    ctx = finder.context
    logit = ref[0, ctx : ctx + p.pixel.size]
    assert np.abs(1 / (1 + np.exp(-logit)) - p.confidence).max() <= PARITY_TOL
    assert np.abs(ref[2, ctx : ctx + p.pixel.size] - p.nhi).max() <= PARITY_TOL
    # offsets: torch output minus the stored validation-split bias of each output phase
    bias = np.asarray(finder.saved.preprocessing["offset_bias"])
    assert bias.size == cfg.model.fcn.factor and np.all(np.isfinite(bias))
    phase = (p.pixel - p.pixel[0]) % bias.size
    expect = ref[1, ctx : ctx + p.pixel.size] - bias[phase]
    assert np.abs(expect - p.offset).max() <= PARITY_TOL
    raw = finder.predict(sls[:1], calibrated=False)[0]
    assert np.abs(ref[1, ctx : ctx + p.pixel.size] - raw.offset).max() <= PARITY_TOL


def _median_residual(finder, sls, raw, field: str, phase: int | None = None) -> float:
    """Median of prediction - label of ``field`` over the labelled positive pixels (one phase)."""
    res = []
    for sl, p in zip(sls, raw, strict=True):
        lab = pixel_labels(sl, finder.spec)
        pos = lab.classification[p.pixel] == 1
        if phase is not None:
            pos &= (p.pixel - p.pixel[0]) % 4 == phase
        res.append(getattr(p, field)[pos] - getattr(lab, field)[p.pixel][pos])
    return float(np.median(np.concatenate(res)))


def test_offset_bias_is_median_residual_on_labelled_pixels(tmp_path):
    from surveynet.dla.predict import DLAFinder, offset_bias

    path, _, sls = _train(tmp_path, "dla_fcn", ["train.lr_schedule=cosine"])
    finder = DLAFinder.from_saved(path, dtype=np.float64)
    raw = finder.predict(sls, calibrated=False)
    got = offset_bias(finder, sls)
    want = _median_residual(finder, sls, raw, "offset", phase=1)
    assert len(got) == 4 and got[1] == pytest.approx(want)


def test_resume_continues(tmp_path):
    from surveynet.dla.train import train_model

    path, cfg, sls = _train(tmp_path, "dla_fcn")
    cfg3 = apply_overrides(cfg, ["train.epochs=3"])
    path = train_model(cfg3, sls, path, quiet=True, resume=True)
    hist = json.loads((path / "history.json").read_text())
    assert [r["epoch"] for r in hist] == [1, 2, 3]


def test_seeded_training_is_reproducible(tmp_path):
    a, _, _ = _train(tmp_path / "a", "dla_fcn")
    b, _, _ = _train(tmp_path / "b", "dla_fcn")
    from surveynet.io.model import file_sha256

    assert file_sha256(a / "model.safetensors") == file_sha256(b / "model.safetensors")


def test_channel_mismatch_is_a_config_error(tmp_path):
    from surveynet.dla.train import train_model
    from surveynet.errors import ConfigError

    cfg = apply_overrides(DLAConfig(), ["input.channels=[0,3,7,15]"])
    with pytest.raises(ConfigError, match="in_channels"):
        train_model(cfg, toy_sightlines(4, 1), tmp_path / "m", quiet=True)


def test_predict_path_never_imports_torch(tmp_path):
    path, _, _ = _train(tmp_path, "dla_fcn")
    code = (
        "import sys\n"
        "from surveynet.dla.bench import toy_sightlines\n"
        "from surveynet.dla.predict import DLAFinder, predict_sightlines\n"
        f"cat = predict_sightlines(toy_sightlines(2, 1), [DLAFinder.from_saved({str(path)!r})])\n"
        "import surveynet.cli; surveynet.cli.build_parser()\n"
        "assert 'torch' not in sys.modules, 'torch imported at inference'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_init_fine_tunes_from_saved_weights(tmp_path):
    """``init`` loads a saved model: lr 0 keeps its weights exactly, the provenance is recorded,
    and a different architecture is refused naming the differing field."""
    from surveynet.dla.train import train_model
    from surveynet.errors import ConfigError
    from surveynet.io.model import load_model

    path, cfg, sls = _train(tmp_path / "base", "dla_fcn")
    base = load_model(path, pipeline="dla")
    cfg0 = apply_overrides(cfg, ["train.lr=0", "train.epochs=1", "train.calibrate_offsets=false"])
    ft = train_model(cfg0, sls, tmp_path / "ft", quiet=True, init=path)
    got = load_model(ft, pipeline="dla")
    assert all(np.array_equal(got.tensors[k], v) for k, v in base.tensors.items())
    meta = json.loads((ft / "config.json").read_text())["training"]["init"]
    assert meta == {"model": base.name, "weights_sha256": base.weights_hash}
    # without init the same config starts from the seeded initialisation instead
    fresh = load_model(train_model(cfg0, sls, tmp_path / "fresh", quiet=True), pipeline="dla")
    assert not all(np.array_equal(fresh.tensors[k], v) for k, v in base.tensors.items())
    wider = apply_overrides(cfg0, ["model.fcn.head_hidden=16"])
    with pytest.raises(ConfigError, match="head_hidden"):
        train_model(wider, sls, tmp_path / "bad", quiet=True, init=path)
    win = apply_overrides(cfg0, ["model.architecture=dla_window_cnn"])
    with pytest.raises(ConfigError, match="architecture"):
        train_model(win, sls, tmp_path / "bad2", quiet=True, init=path)


def test_init_grows_an_fcn_by_identity_blocks(tmp_path):
    """Appending dilations to a saved FCN: the deeper network starts with the saved outputs."""
    from surveynet.dla.train import init_from
    from surveynet.errors import ConfigError

    path, cfg, _ = _train(tmp_path / "base", "dla_fcn")
    small = FCN(cfg.model.fcn).double().eval()
    deep_cfg = apply_overrides(cfg, ["model.fcn.dilations=[1,2,4,8,16,1,2,32]"])
    deep = FCN(deep_cfg.model.fcn)
    meta = init_from(deep, deep_cfg, path)
    assert meta["grown_from_dilations"] == list(cfg.model.fcn.dilations)
    init_from(small, cfg, path)
    deep = deep.double().eval()
    x = torch.randn(2, 1, 4 * 300, dtype=torch.float64)
    assert torch.allclose(deep(x), small(x), atol=1e-12)
    # the appended dilated convolutions are trainable (not zero): only their 1x1 outputs are
    assert float(deep.dconv[7].weight.detach().abs().sum()) > 0
    assert float(deep.pconv[7].weight.detach().abs().sum()) == 0.0
    # a list that does not extend the saved one is refused
    other = apply_overrides(cfg, ["model.fcn.dilations=[1,2,4,8,32,1,2]"])
    with pytest.raises(ConfigError, match="dilations"):
        init_from(FCN(other.model.fcn), other, path)


def test_error_channel_and_init_adding_it(tmp_path):
    """Channel -1 is the 1-sigma error capped at ``clip``; growing a saved FCN by that channel
    starts with the saved outputs whatever the error, and trains and predicts end to end."""
    from surveynet.dla.predict import DLAFinder
    from surveynet.dla.preprocess import channel_stack
    from surveynet.dla.train import init_from, train_model

    path, cfg, sls = _train(tmp_path / "base", "dla_fcn")
    sl = sls[0]
    spec = InputSpec(channels=(0, -1), clip=10.0)
    x = channel_stack(sl, spec)
    e = np.asarray(sl.error, float)
    ok = np.isfinite(e)
    assert np.allclose(x[1][ok], np.minimum(e[ok], 10.0)) and np.all(x[1][~ok] == 10.0)
    assert np.array_equal(x[0], channel_stack(sl, InputSpec())[0])
    with pytest.raises(ValueError, match="input channels"):
        InputSpec(channels=(0, -2))
    grown = apply_overrides(cfg, ["input.channels=[0,-1]", "model.fcn.in_channels=2"])
    two = FCN(grown.model.fcn)
    assert init_from(two, grown, path)["grown_from_in_channels"] == 1
    one = FCN(cfg.model.fcn).double().eval()
    init_from(one, cfg, path)
    two = two.double().eval()
    xin = torch.randn(2, 2, 4 * 300, dtype=torch.float64)
    assert torch.allclose(two(xin), one(xin[:, :1]), atol=1e-12)
    ft = train_model(
        apply_overrides(grown, ["train.epochs=1"]), sls, tmp_path / "ft", quiet=True, init=path
    )
    finder = DLAFinder.from_saved(ft, dtype=np.float64)
    assert finder.spec.channels == (0, -1) and finder.engine.config.in_channels == 2
    p = finder.predict(sls[:1])[0]
    assert np.all(np.isfinite(p.confidence)) and p.pixel.size > 0


def test_noise_augmentation_degrades_to_the_target_s2n(tmp_path):
    """``degrade`` adds noise of error*sqrt(k^2-1), k = S/N / target (in quadrature to the
    error channel);
    samples already below the target and the padding are left alone; training with
    ``train.noise_s2n`` is seeded per epoch, so a resumed run equals an uninterrupted one."""
    from surveynet.dla.train import continuum_error, degrade, fcn_arrays, input_spec, train_model
    from surveynet.errors import ConfigError
    from surveynet.io.model import file_sha256

    n, length = 4, 20000
    spec = InputSpec(channels=(0, -1), clip=10.0)
    x = torch.ones(n, 2, length)
    x[:, 1] = 0.1
    err = torch.full((n, length), 0.1)
    err[:, :100] = 0.0  # padding
    s2n = torch.tensor([10.0, 10.0, 1.0, 10.0])
    out = degrade(x, err, s2n, (2.0, 2.0), spec, torch.Generator().manual_seed(1))
    k = 5.0  # 10 / 2
    for i in (0, 1, 3):
        sd = float((out[i, 0, 100:] - 1).std())
        assert sd == pytest.approx(0.1 * np.sqrt(k * k - 1), rel=0.03)  # 20k px: ~0.5 % error
        assert torch.allclose(out[i, 1, 100:], torch.full((length - 100,), 0.1 * k))
        assert torch.all(out[i, 0, :100] == 1)
    assert torch.equal(out[2], x[2])  # S/N 1 is below the target: untouched
    # targets log-uniform in [1, 4] from S/N 8: k in [2, 8]
    many = degrade(
        torch.ones(500, 1, 2000),
        torch.full((500, 2000), 0.125),
        torch.full((500,), 8.0),
        (1.0, 4.0),
        InputSpec(),
        torch.Generator().manual_seed(2),
    )
    kk = np.sqrt(1 + ((many[:, 0] - 1).std(dim=1).numpy() / 0.125) ** 2)
    assert 1.85 < kk.min() and kk.max() < 8.6 and np.median(kk) == pytest.approx(4.0, rel=0.1)

    # the added noise follows the continuum error, not the lower error in a trough
    e = np.full(1000, 0.2)
    e[480:520] = 0.05
    e[10] = np.inf
    ce = continuum_error(e)
    assert np.allclose(ce[np.isfinite(e)], 0.2) and ce[10] == 0

    sls = toy_sightlines(12, 5)
    cfg = apply_overrides(DLAConfig(), ["train.noise_s2n=[1,3]"])
    arr = fcn_arrays(sls[:1], input_spec(cfg), cfg.model.fcn, with_error=True)
    pix = search_pixels(sls[0], cfg.data.rest_range)
    assert np.count_nonzero(arr.error) >= pix.size and arr.s2n[0] == sls[0].s2n
    with pytest.raises(ConfigError, match="noise_s2n"):
        train_model(
            apply_overrides(cfg, ["input.channels=[0,3]", "model.fcn.in_channels=2"]),
            sls,
            tmp_path / "x",
            quiet=True,
        )
    extra = ["train.noise_s2n=[1,3]"]
    a, _, _ = _train(tmp_path / "a", "dla_fcn", extra)
    b, cfg_b, _ = _train(tmp_path / "b", "dla_fcn", [*extra, "train.epochs=1"])
    b = train_model(apply_overrides(cfg_b, ["train.epochs=2"]), sls, b, quiet=True, resume=True)
    c, _, _ = _train(tmp_path / "c", "dla_fcn")
    assert file_sha256(a / "model.safetensors") == file_sha256(b / "model.safetensors")
    assert file_sha256(a / "model.safetensors") != file_sha256(c / "model.safetensors")


def test_nhi_bias_is_median_residual_and_subtracted(tmp_path):
    from surveynet.dla.predict import DLAFinder, nhi_bias

    path, _, sls = _train(tmp_path, "dla_fcn", ["train.calibrate_nhi=true"])
    finder = DLAFinder.from_saved(path, dtype=np.float64)
    raw = finder.predict(sls, calibrated=False)
    assert nhi_bias(finder, sls) == pytest.approx(_median_residual(finder, sls, raw, "nhi"))
    # training stored the same statistic of its own validation split, and prediction subtracts it
    stored = finder.saved.preprocessing["nhi_bias"]
    assert np.isfinite(stored) and stored != 0.0
    cal = finder.predict(sls[:2])
    for a, b in zip(raw[:2], cal, strict=True):
        assert np.allclose(b.nhi, a.nhi - stored)


def test_ensemble_averages_members_pixel_by_pixel(tmp_path):
    from surveynet.dla.predict import DLAFinder, EnsembleFinder, load_finder, predict_sightlines
    from surveynet.errors import ModelFormatError

    a, _, sls = _train(tmp_path / "a", "dla_fcn")
    b, _, _ = _train(tmp_path / "b", "dla_fcn", ["train.seed=7"])
    fa, fb = DLAFinder.from_saved(a, dtype=np.float64), DLAFinder.from_saved(b, dtype=np.float64)
    ens = load_finder(f"{a}+{b}")
    assert isinstance(ens, EnsembleFinder) and ens.source == f"{a}+{b}"
    pa, pb, pe = fa.predict(sls[:3]), fb.predict(sls[:3]), ens.predict(sls[:3])
    for x, y, e in zip(pa, pb, pe, strict=True):
        assert np.array_equal(e.pixel, x.pixel)
        assert not np.allclose(x.confidence, y.confidence)  # two different networks
        # each member calibrated, then the mean (float32 engines: 1e-6)
        for f in ("confidence", "offset", "nhi"):
            assert np.allclose(getattr(e, f), (getattr(x, f) + getattr(y, f)) / 2, atol=1e-6)
    cat = predict_sightlines(sls[:3], [ens])
    assert len(cat.qsos) == 3
    # members must search the same pixels and vote alike
    c, _, _ = _train(tmp_path / "c", "dla_fcn", ["dataset.samplerange=40"])
    with pytest.raises(ModelFormatError, match="label half-width"):
        EnsembleFinder([fa, DLAFinder.from_saved(c)])


def test_window_cnn_on_a_window_dataset_is_seeded_with_its_dropout(tmp_path):
    """The prepared-dataset path trains through the core driver: two runs of the same seed
    (dropout included, reseeded every epoch) give the same weights; another architecture is
    refused."""
    from surveynet.dla.config import DatasetConfig
    from surveynet.dla.data import make_datasets, save_dataset
    from surveynet.dla.train import train_window_dataset
    from surveynet.errors import ConfigError
    from surveynet.io.model import file_sha256

    ds = make_datasets(toy_sightlines(6, 3), DatasetConfig(seed=1))
    path = save_dataset(tmp_path / "ds.npz", ds)
    cfg = apply_overrides(
        DLAConfig(),
        [
            "model.architecture=dla_window_cnn",
            "model.window_cnn.conv_filters=[8,8,8]",
            "model.window_cnn.fc1=16",
            "model.window_cnn.fc2=[8,8,8]",
            "model.window_cnn.dropout_keep=0.5",
            "train.epochs=2",
            "train.batch_size=32",
        ],
    )
    a = train_window_dataset(cfg, path, tmp_path / "a", quiet=True)
    b = train_window_dataset(cfg, path, tmp_path / "b", quiet=True)
    assert file_sha256(a / "model.safetensors") == file_sha256(b / "model.safetensors")
    training = json.loads((a / "config.json").read_text())["training"]
    assert training["dataset"] == str(path) and training["n_train_samples"] > 0
    assert len(json.loads((a / "history.json").read_text())) == 2
    with pytest.raises(ConfigError, match="window dataset"):
        train_window_dataset(
            apply_overrides(cfg, ["model.architecture=dla_fcn"]), path, a.parent / "c"
        )
