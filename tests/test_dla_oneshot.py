"""One command from coadd to DLA catalogue, and `dla evaluate`'s README figures (issue 23, part 5).

- ``dla predict`` without a redshift source runs the bundled QuasarNET first (through the quasar
  pipeline's registered step: dla imports no quasar module) and says so in the header;
- ``dla evaluate`` writes ``metrics.json["summary"]``: the README's S/N bins with the completeness
  at a fixed purity; an evaluate that fails on its input leaves no output folder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from conftest import shared_path
from surveynet.cli import main
from surveynet.constants import LYA_REST

UNITS_WARNING = "ignore:.*could not be saved in native FITS format:astropy.units.UnitsWarning"
COADD = "quasarnp/test_coadd.fits"


def _tables(path):
    with fits.open(path) as h:
        return h[0].header, Table(h["DLACAT"].data), Table(h["QSOCAT"].data)


@pytest.mark.filterwarnings(UNITS_WARNING)
def test_predict_without_redshift_source_runs_quasarnet(tmp_path, capsys):
    from surveynet.io.model import load_model

    coadd = str(shared_path(COADD))
    out = tmp_path / "dla.fits"
    assert main(["dla", "predict", coadd, "--out", str(out), "--quiet", "--workers", "0"]) == 0
    hdr, dlas, qsos = _tables(out)
    qn = load_model("qn_mock_6layer", pipeline="quasar")
    assert hdr["ZSOURCE"] == "QuasarNET"
    assert (hdr["MODEL1"], hdr["MODROL1"]) == ("qn_mock_6layer", "redshifts")
    assert hdr["MODHSH1"] == qn.weights_hash[:16]
    assert hdr["MODROL2"] == "finder"
    # the bundled QuasarNET calls rows 4 (z 3.93) and 23 (z 2.91) quasars at z >= 2.33
    assert qsos["TARGETID"].tolist() == [4, 23] and qsos["ROW"].tolist() == [4, 23]
    assert set(qsos["SOURCE"]) == {"test_coadd.fits"} and "PLATE" not in qsos.colnames
    assert not list(tmp_path.glob(".dla-redshifts-*"))  # the temporary QuasarNET catalogue
    # the same as the two-step chain: quasar predict, then dla predict --qso-catalog
    qcat = tmp_path / "qn.fits"
    assert main(["quasar", "predict", coadd, "--out", str(qcat), "--quiet", "--workers", "0"]) == 0
    two = tmp_path / "two.fits"
    args = ["dla", "predict", coadd, "--qso-catalog", str(qcat), "--out", str(two), "--quiet"]
    assert main([*args, "--workers", "0"]) == 0
    hdr2, dlas2, qsos2 = _tables(two)
    assert hdr2["ZSOURCE"] == "qn.fits" and hdr2["MODROL1"] == "finder"
    for a, b in ((dlas, dlas2), (qsos, qsos2)):
        assert a.colnames == b.colnames and len(a) == len(b)
        for c in a.colnames:
            x, y = np.asarray(a[c]), np.asarray(b[c])
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), c


def test_predict_bad_quasar_model_writes_nothing(tmp_path, capsys):
    out = tmp_path / "dla.fits"
    args = ["dla", "predict", str(shared_path(COADD)), "--out", str(out), "--quiet"]
    assert main([*args, "--set", "predict.qso_model=no_such_model"]) == 1
    assert not out.exists() and not list(tmp_path.iterdir())


def test_predict_help_names_the_quasarnet_fallback(capsys):
    with pytest.raises(SystemExit):
        main(["dla", "predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "the bundled QuasarNET runs first"
        in text.replace("the bundled QuasarNET runs first)", "the bundled QuasarNET runs first")
        and "qn_mock_6layer" in text
    )
    assert "ZSOURCE" in text and "spec-" in text


# ----------------------------------------------------------------------------- evaluate


def _evaluate_inputs(tmp_path):
    """Six sightlines: 1, 2, 6 at S/N 5; 3, 4 at S/N 2; 5 at S/N 0.5; truth DLAs on 1-5."""
    from surveynet.dla.catalog import Catalog, write_catalog

    z, zq = 2.5, 3.0
    qsos = Table(
        {
            "TARGETID": np.arange(1, 7),
            "Z_QSO": np.full(6, zq),
            "S2N": [5.0, 5.0, 2.0, 2.0, 0.5, 5.0],
            "TARGET_RA": np.zeros(6),
            "TARGET_DEC": np.zeros(6),
            "N_DLA": np.zeros(6, int),
            "WAVE_MIN": np.full(6, 3600.0),
            "WAVE_MAX": np.full(6, 5000.0),
        }
    )
    # sightline 1: TP (conf 0.9); 6: FP (0.35); 3: TP (0.8); 4: FP 20 A off (0.25)
    tids = [1, 6, 3, 4]
    dlas = Table(
        {
            "TARGETID": tids,
            "Z_QSO": np.full(4, zq),
            "Z_DLA": [z, z, z, z + 20.0 / LYA_REST],
            "NHI": np.full(4, 20.8),
            "NHI_STD": np.zeros(4),
            "DLA_CONFIDENCE": [0.9, 0.35, 0.8, 0.25],
            "ABSORBER_TYPE": ["DLA"] * 4,
            "S2N": [5.0, 5.0, 2.0, 2.0],
            "DLAID": [f"{t}000" for t in tids],
            "TARGET_RA": np.zeros(4),
            "TARGET_DEC": np.zeros(4),
        }
    )
    cat = write_catalog(tmp_path / "cat.fits", Catalog(dlas=dlas, qsos=qsos))
    truth = tmp_path / "truth.fits"
    t = Table({"TARGETID": np.arange(1, 7), "Z": np.full(6, zq), "OBJTYPE": ["QSO"] * 6})
    d = Table({"TARGETID": [1, 2, 3, 4, 5], "Z_DLA": np.full(5, z), "NHI": np.full(5, 20.8)})
    hdus = [fits.PrimaryHDU(), fits.table_to_hdu(t), fits.table_to_hdu(d)]
    hdus[1].header["EXTNAME"] = "TRUTH"
    hdus[2].header["EXTNAME"] = "DLA_META"
    fits.HDUList(hdus).writeto(truth)
    return cat, truth


def test_evaluate_readme_bins_and_fixed_purity(tmp_path, capsys):
    cat, truth = _evaluate_inputs(tmp_path)
    out = tmp_path / "ev"
    assert main(["dla", "evaluate", str(cat), "--truth", str(truth), "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    hi, lo = m["summary"]
    assert (hi["s2n_lo"], hi["s2n_hi"], lo["s2n_lo"], lo["s2n_hi"]) == (3.0, 1e9, 1.0, 3.0)
    for b, cut in ((hi, 0.9), (lo, 0.8)):
        assert (b["n_truth_dla"], b["tp"], b["fn"], b["fp"]) == (2, 1, 1, 1)
        assert (b["completeness"], b["purity"]) == (0.5, 0.5)
        # the loosest cut reaching 90 % purity drops the false positive and keeps the TP
        assert b["fixed_purity"] == 0.9 and b["confidence_cut"] == cut
        assert b["completeness_at_purity"] == 0.5
    text = capsys.readouterr().out
    assert "3 <= S/N: completeness 50.0%, purity 50.0% (2 DLAs)" in text
    assert "1 <= S/N < 3:" in text and "completeness at purity >= 90%: 50.0%" in text
    # configurable: one bin over every S/N, fixed purity 40 %
    out2 = tmp_path / "ev2"
    sets = ["--set", "evaluate.summary_s2n=[0,1e9]", "--set", "evaluate.fixed_purity=0.4"]
    assert (
        main(["dla", "evaluate", str(cat), "--truth", str(truth), "--out", str(out2), *sets]) == 0
    )
    (one,) = json.loads((out2 / "metrics.json").read_text())["summary"]
    assert (one["tp"], one["fn"], one["fp"]) == (2, 3, 2)
    assert one["confidence_cut"] == 0.25 and one["completeness_at_purity"] == 0.4
    bad = ["--set", "evaluate.summary_s2n=[0,1,2]"]
    assert main(["dla", "evaluate", str(cat), "--truth", str(truth), "--out", str(out2), *bad]) == 1


def test_evaluate_failing_on_input_leaves_no_folder(tmp_path, capsys):
    cat, truth = _evaluate_inputs(tmp_path)
    out = tmp_path / "deep" / "ev"
    missing = tmp_path / "missing.fits"
    assert main(["dla", "evaluate", str(cat), "--truth", str(missing), "--out", str(out)]) == 1
    assert not (tmp_path / "deep").exists()
    assert main(["dla", "evaluate", str(missing), "--truth", str(truth), "--out", str(out)]) == 1
    assert not (tmp_path / "deep").exists()
