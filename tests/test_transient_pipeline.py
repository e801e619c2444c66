"""The transient chain on tiny mocks: simulate -> inject -> detect -> cutouts -> convert -> train
-> predict -> checkinfer, the pixel convention, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from surveynet.cli import main
from surveynet.errors import InputError
from surveynet.sim.images import ImageSimConfig, read_truth, simulate_pair, write_pair
from surveynet.transient.config import CutoutConfig, DataConfig, DetectConfig, InjectConfig
from surveynet.transient.cutouts import extract_cutouts, make_cutouts, read_cutouts
from surveynet.transient.data import convert_cutouts

SMALL = ImageSimConfig(
    ny=160,
    nx=160,
    n_stars=90,
    n_galaxies=6,
    n_transients=12,
    n_cosmics=6,
    n_hot=6,
    star_mags=(14.0, 22.0),
    seed=3,
)


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    paths = write_pair(simulate_pair(SMALL, np.random.default_rng(3)), d, "pair000")
    return d, paths


def test_simulate_pair_truth_and_wcs():
    p = simulate_pair(SMALL, np.random.default_rng(0))
    kinds = set(p.truth["kind"])
    assert {
        "star",
        "galaxy",
        "transient",
        "variable",
        "cosmic",
        "hot_pixel",
        "bad_column",
        "saturated_star",
        "bleed",
    } <= kinds
    assert p.science.shape == (160, 160) and p.science.dtype == np.float32
    # small misalignment: the same sky position lands on different pixels
    assert not np.allclose(p.truth["x_sci"], p.truth["x_ref"])
    assert np.abs(p.truth["x_sci"] - p.truth["x_ref"]).max() < 1.0
    # saturated stars with bleed trails reach the saturation level
    assert p.science.max() >= SMALL.saturation and p.reference.max() >= SMALL.saturation
    assert p.header_sci["FWHM"] != p.header_ref["FWHM"]
    # transients only in the science frame, labelled real
    tr = p.truth[p.truth["kind"] == "transient"]
    assert (tr["frame"] == "sci").all() and tr["real"].all()


def test_simulated_positions_are_0_based(pair_dir):
    """A bright isolated star's centroid sits at the truth (x, y) in 0-based numpy pixels."""
    import sep

    _, paths = pair_dir
    truth = read_truth(paths["truth"])
    data = fits.getdata(paths["sci"]).astype(np.float64)
    stars = truth[(truth["kind"] == "star") & (truth["mag"] > 15) & (truth["mag"] < 18)]
    stars = stars[
        (stars["x_sci"] > 10)
        & (stars["x_sci"] < 150)
        & (stars["y_sci"] > 10)
        & (stars["y_sci"] < 150)
    ]
    assert len(stars)
    bkg = np.median(data)
    xw, yw, _ = sep.winpos(data - bkg, np.asarray(stars["x_sci"]), np.asarray(stars["y_sci"]), 1.0)
    off = np.hypot(xw - stars["x_sci"], yw - stars["y_sci"])
    assert np.median(off) < 0.15


def test_inject_positions_convention(pair_dir, tmp_path):
    import sep
    from astropy.wcs import WCS

    from surveynet.transient.inject import inject_files

    _, paths = pair_dir
    cfg = InjectConfig(n=5, mag_min=15.0, mag_max=15.5, seed=1, margin=30, psf_size=15)
    pos_path = inject_files([paths["sci"]], tmp_path, cfg)
    pos = Table.read(pos_path, format="ascii.ecsv")
    assert pos.colnames[:8] == ["idx", "filename", "x", "y", "ra", "dec", "mag", "filter"]
    assert "0-based" in pos.meta["pixel_convention"]
    before = fits.getdata(paths["sci"]).astype(np.float64)
    after = fits.getdata(tmp_path / paths["sci"].name).astype(np.float64)
    added = after - before
    xw, yw, _ = sep.winpos(added, np.asarray(pos["x"]), np.asarray(pos["y"]), 1.0)
    assert np.median(np.hypot(xw - pos["x"], yw - pos["y"])) < 0.2  # sub-pixel, 0-based
    # injected flux = 10^(-0.4 (m - MAGZP)) within Poisson noise and the stamp's wings
    f, _, _ = sep.sum_circle(added, np.asarray(pos["x"]), np.asarray(pos["y"]), 7.0)
    expect = 10 ** (-0.4 * (pos["mag"] - fits.getheader(paths["sci"])["MAGZP"]))
    assert np.allclose(f / expect, 1.0, atol=0.08)
    w = WCS(fits.getheader(paths["sci"]))
    ra, dec = w.pixel_to_world_values(pos["x"], pos["y"])  # origin 0, no offset
    assert np.allclose(ra, pos["ra"]) and np.allclose(dec, pos["dec"])


def test_cli_chain(pair_dir, tmp_path):
    _, paths = pair_dir
    out = tmp_path
    assert (
        main(
            [
                "transient",
                "simulate",
                "--out",
                str(out / "sim"),
                "--n-images",
                "1",
                "--nx",
                "160",
                "--ny",
                "160",
                "--seed",
                "5",
                "--set",
                "sim.n_stars=90",
                "--set",
                "sim.n_transients=25",
            ]
        )
        == 0
    )
    sci = [str(paths["sci"]), str(out / "sim" / "pair000_sci.fits")]
    ref = [str(paths["ref"]), str(out / "sim" / "pair000_ref.fits")]
    det = out / "det"
    # both files are named pair000_sci.fits: detect the second into its own folder
    assert main(["transient", "detect", sci[0], "--reference", ref[0], "--out", str(det)]) == 0
    assert (
        main(["transient", "detect", sci[1], "--reference", ref[1], "--out", str(out / "det2")])
        == 0
    )
    cands = Table.read(det / "pair000_cands.fits", hdu="CANDIDATES")
    for c in ("X", "Y", "RA", "DEC", "FLUX", "SNR", "FWHM", "ELONG", "FLAGS", "EDGE"):
        assert c in cands.colnames
    with fits.open(det / "pair000_diff.fits") as h:
        assert [x.name for x in h[1:]] == ["DIFF", "ERR", "MASK", "SCI", "REF", "KERNEL"]
        assert h[0].header["PIPELINE"] == "transient"
    cut = out / "cut"
    assert (
        main(["transient", "cutouts", str(det), "--training", "--out", str(cut), "--size", "24"])
        == 0
    )
    cube, tab, _ = read_cutouts(cut)
    assert cube.shape[1:] == (3, 24, 24) and len(tab) == len(cands)
    assert tab["LABEL"].sum() >= 3 and (tab["LABEL"] == 0).sum() >= 3
    assert main(["transient", "checksim", str(cut), "--out", str(out / "cs")]) == 0
    assert (out / "cs" / "detection_fraction_mag.png").is_file()
    assert main(["transient", "convert", str(cut), "--out", str(out / "cube.npz")]) == 0
    with np.load(out / "cube.npz", allow_pickle=False) as z:
        for k in ("cube", "labels", "mags", "errmags", "filters", "candids"):
            assert k in z.files
        assert z["cube"].shape[1:] == (24, 24, 3)
    assert (
        main(
            [
                "transient",
                "train",
                str(out / "cube.npz"),
                "--out",
                str(out / "model"),
                "--epochs",
                "2",
                "--channels",
                "triplet",
                "--quiet",
                "--set",
                "train.batch_size=32",
            ]
        )
        == 0
    )
    assert (out / "model" / "model.safetensors").is_file()
    assert (
        main(
            [
                "transient",
                "predict",
                str(cut),
                "--out",
                str(out / "infer.fits"),
                "--model",
                str(out / "model"),
                "--quiet",
            ]
        )
        == 0
    )
    sc = Table.read(out / "infer.fits", hdu="SCORES")
    assert np.allclose(sc["LABEL0"] + sc["LABEL1"], 1.0)
    anchor = Table.read(out / "infer_results.dat", format="ascii.commented_header")
    assert anchor.colnames == [
        "filename",
        "RA",
        "Dec",
        "originalFile",
        "Xpos",
        "Ypos",
        "mag",
        "magerr",
        "FWHM",
        "FWHMPSF",
        "cand_ID",
        "label0",
        "label1",
    ]
    assert main(["transient", "checkinfer", str(out / "infer.fits"), "--out", str(out / "ci")]) == 0
    for f in ("roc.png", "distrib_prob.png", "threshold_table.ecsv", "checkinfer.json"):
        assert (out / "ci" / f).is_file()
    # outputs are not replaced without --overwrite
    assert main(["transient", "convert", str(cut), "--out", str(out / "cube.npz")]) == 1
    # two cutouts folders merge into one cube, in order, rows tagged by their folder
    cut2 = out / "cut2"
    args = ["transient", "cutouts", str(out / "det2"), "--training", "--out", str(cut2)]
    assert main([*args, "--size", "24"]) == 0
    merged = out / "merged.npz"
    assert main(["transient", "convert", str(cut), str(cut2), "--out", str(merged)]) == 0
    with np.load(out / "cube.npz", allow_pickle=False) as z1, np.load(merged) as zm:
        _, tab2, _ = read_cutouts(cut2)
        keep2 = ~np.asarray(tab2["EDGE"], bool)
        n1 = len(z1["labels"])
        assert len(zm["labels"]) == n1 + keep2.sum()
        assert np.array_equal(zm["cube"][:n1], z1["cube"])
        assert np.array_equal(zm["labels"][n1:], np.asarray(tab2["LABEL"])[keep2])
        assert np.array_equal(zm["sources"], np.repeat([0, 1], [n1, keep2.sum()]))
    # labelled and unlabelled cutouts do not mix
    unlab = out / "cut_unlabelled"
    assert (
        main(["transient", "cutouts", str(out / "det2"), "--out", str(unlab), "--size", "24"]) == 0
    )
    with pytest.raises(InputError, match="labelled and unlabelled"):
        convert_cutouts([cut, unlab], out / "mixed.npz", DataConfig())


def test_no_wcs_and_mismatched_shapes(pair_dir, tmp_path, capsys):
    _, paths = pair_dir
    data = fits.getdata(paths["sci"])
    nowcs = tmp_path / "nowcs.fits"
    fits.writeto(nowcs, data)
    rc = main(
        [
            "transient",
            "detect",
            str(nowcs),
            "--reference",
            str(paths["ref"]),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "nowcs.fits" in err and "WCS" in err
    small = tmp_path / "small.fits"
    fits.writeto(small, data[:100, :100])
    from surveynet.transient.subtract import read_frame, subtract

    with pytest.raises(InputError, match="shape"):
        subtract(read_frame(paths["sci"]), read_frame(small), register="none")
    # one good and one bad frame: partial success, exit 3
    rc = main(
        [
            "transient",
            "detect",
            str(paths["sci"]),
            str(nowcs),
            "--reference",
            str(paths["ref"]),
            "--out",
            str(tmp_path / "o2"),
            "--workers",
            "0",
        ]
    )
    assert rc == 3


def test_masked_frame_and_empty_candidates(pair_dir, tmp_path):
    from surveynet.transient.detect import detect_pair
    from surveynet.transient.subtract import read_frame, subtract

    _, paths = pair_dir
    sci = read_frame(paths["sci"])
    sci.data[:] = np.nan
    with pytest.raises(InputError, match="masked"):
        subtract(sci, read_frame(paths["ref"]))
    # a reference against itself: nothing to detect -> an empty, valid candidate table
    cf = detect_pair(paths["ref"], paths["ref"], tmp_path / "det", DetectConfig(threshold=50))
    t = Table.read(cf, hdu="CANDIDATES")
    assert len(t) == 0 and "SNR" in t.colnames
    out = make_cutouts(tmp_path / "det", tmp_path / "cut", CutoutConfig(size=16))
    cube, tab, _ = read_cutouts(out)
    assert cube.shape == (0, 3, 16, 16) and len(tab) == 0


def test_edge_cutouts_padded_and_flagged():
    img = np.arange(400.0).reshape(20, 20)
    c, edge = extract_cutouts([img], np.array([10.0, 1.0, 19.4]), np.array([10.0, 1.0, 5.0]), 8)
    assert c.shape == (3, 1, 8, 8)
    assert list(edge) == [False, True, True]
    assert c[0, 0, 4, 4] == img[10, 10]  # candidate pixel at index size // 2
    assert c[1, 0, 0, 0] == 0.0 and c[1, 0, 4, 4] == img[1, 1]


def test_real_pair_end_to_end(shared_file, tmp_path):
    """Inject into the real ProperImage frame 004 (no WCS), subtract 005, detect, label."""
    from dataclasses import replace

    from surveynet.transient.detect import detect_pair
    from surveynet.transient.inject import inject_files

    f4 = shared_file("transients/properimage_real_pair/aligned_eso085-030-004.fit")
    f5 = shared_file("transients/properimage_real_pair/aligned_eso085-030-005.fit")
    pos = inject_files([f4], tmp_path, InjectConfig(n=40, zp=25.0, mag_min=14.0, mag_max=20.0))
    assert np.isnan(Table.read(pos, format="ascii.ecsv")["ra"]).all()  # no WCS: NaN sky
    cfg = replace(DetectConfig(), register="none", saturation=65000.0)
    detect_pair(tmp_path / f4.name, f5, tmp_path / "det", cfg)
    out = make_cutouts(tmp_path / "det", tmp_path / "cut", CutoutConfig(), training=True)
    _, tab, xm = read_cutouts(out)
    bright = xm["MAG"] < 16
    faint = xm["MAG"] >= 18.5
    assert xm["DETECTED"][bright].mean() >= 0.9
    assert xm["DETECTED"][faint].mean() <= xm["DETECTED"][bright].mean()
    # labels are consistent: every real-labelled candidate is within the radius of a source
    real = tab[tab["LABEL"] == 1]
    assert len(real) == int((xm["CLOSEST_CANDID"] >= 0).sum()) or len(real) > 0
    assert (real["TRUTH_KIND"] == "injected").all()


def test_simulate_on_real_frames(shared_file, tmp_path):
    """``simulate --science-frame/--reference-frame``: the simulated sky injected onto the real
    ProperImage pair (no WCS: a shared synthetic one); transients detected in the difference."""
    from dataclasses import replace

    from surveynet.transient.detect import detect_pair

    f4 = shared_file("transients/properimage_real_pair/aligned_eso085-030-004.fit")
    f5 = shared_file("transients/properimage_real_pair/aligned_eso085-030-005.fit")
    raw4 = fits.getdata(f4).astype(np.float64)
    args = ["transient", "simulate", "--out", str(tmp_path / "sim"), "--n-images", "1"]
    args += ["--science-frame", str(f5), "--reference-frame", str(f4), "--seed", "1"]
    args += [
        "--set",
        "sim.n_stars=60",
        "--set",
        "sim.n_transients=25",
        "--set",
        "sim.n_galaxies=10",
    ]
    args += ["--set", "sim.transient_mags=[15.0, 18.0]"]
    assert main(args) == 0
    ref, rh = fits.getdata(tmp_path / "sim" / "pair000_ref.fits", header=True)
    sci, sh = fits.getdata(tmp_path / "sim" / "pair000_sci.fits", header=True)
    assert ref.shape == raw4.shape == sci.shape  # the real frame's shape, not nx/ny
    assert rh["SIMBASE"] and rh["SIMWCS"] and sh["SIMWCS"]
    assert rh["EXPTIME"] == 60.0  # real header cards kept
    assert rh["MAGZP"] > 28.0  # real noise ~90 ADU > simulated ~22: zero point shifted
    added = ref - raw4
    assert np.median(added) == 0.0 and added.max() > 1000  # real pixels + injected stars only
    truth = read_truth(tmp_path / "sim" / "pair000_truth.fits")
    tr = truth[truth["kind"] == "transient"]
    # same synthetic WCS for both frames: sci and ref pixel positions agree
    assert np.allclose(tr["x_sci"], tr["x_ref"]) and np.allclose(tr["y_sci"], tr["y_ref"])
    cfg = replace(DetectConfig(), register="none", saturation=65000.0)
    det = detect_pair(
        tmp_path / "sim" / "pair000_sci.fits",
        tmp_path / "sim" / "pair000_ref.fits",
        tmp_path / "det",
        cfg,
    )
    cand = Table.read(det, hdu=1)
    d2 = (tr["x_sci"][:, None] - cand["X"][None]) ** 2 + (
        tr["y_sci"][:, None] - cand["Y"][None]
    ) ** 2
    found = (d2.min(axis=1) < 3.0**2).mean()
    assert found >= 0.8  # bright (15-18 mag) transients on the real frame are recovered


def test_simulate_on_real_frame_with_wcs(shared_file):
    """A real frame with a celestial WCS (Spitzer, Galactic CAR) keeps it; positions follow it."""
    from surveynet.sim.images import load_base_frames

    f = shared_file("images/spitzer_example_image.fits")
    base = load_base_frames(f, f)
    cfg = ImageSimConfig(n_stars=40, n_galaxies=4, n_transients=8, n_cosmics=3, n_hot=3)
    pair = simulate_pair(cfg, np.random.default_rng(0), base)
    assert pair.science.shape == base.science.shape == (513, 1025)
    assert pair.header_sci["CTYPE1"] == "GLON-CAR" and not pair.header_sci["SIMWCS"]
    tr = pair.truth[pair.truth["kind"] == "transient"]
    x, y = pair.wcs_sci.world_to_pixel_values(tr["ra"], tr["dec"])
    assert np.allclose(x, tr["x_sci"], atol=1e-6) and np.allclose(y, tr["y_sci"], atol=1e-6)
    with pytest.raises(ValueError, match="shapes differ"):
        load_base_frames(
            f, shared_file("transients/properimage_real_pair/aligned_eso085-030-004.fit")
        )
