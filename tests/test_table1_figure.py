"""The Table I figure (analysis/plots_table1.py): the panel data are the rows' measures,
the drawing plots the panel data, and ``python -m analysis table1 --figure`` writes it."""
import math

import numpy as np
import pytest

from analysis import plots_table1 as pt
from analysis.table1 import KMCRow, PointMeasure, ResponseMeasure, Row, change, table_row
from kmc.pipeline import config as config_module
from analysis.run import run

from test_table1 import RESPONSE_SWEEP, make_result


def _mf_row(model, parameter, values, lmins, ses, setting="$N = 300$"):
    points = tuple(PointMeasure(v, 0.1, 20, lm, se, 10 * lm, se) for v, lm, se
                   in zip(values, lmins, ses))
    c = change(lmins[0], ses[0], lmins[-1], ses[-1])
    return Row("mf.h5", model, parameter, points, c, c, setting=setting)


def _kmc_row(model, parameter, values, lmins, ses, preds, pred_ses):
    points = tuple(ResponseMeasure(v, 0.1, 4, 1e13, lm, se, 1.0, p, ps) for v, lm, se, p, ps
                   in zip(values, lmins, ses, preds, pred_ses))
    return KMCRow("kmc.h5", model, parameter, points,
                  change(lmins[0], ses[0], lmins[-1], ses[-1]), None,
                  setting="$N = 100$",
                  linear=change(preds[0], pred_ses[0], preds[-1], pred_ses[-1]))


@pytest.fixture
def rows():
    """Mean field and KMC for the TLS W row (KMC undetermined at W = 1, as measured in
    runs/README.md), mean field alone for the electron J row (paper: -, measured +)."""
    return [
        _kmc_row("tls", "W", [1.0, 10.0, 100.0], [math.nan, 1.0e-9, 3.0e-7],
                 [math.nan, 6e-10, 9e-7], [6.3e-12, 2.1e-10, 2.6e-9], [1e-11, 1.4e-10, 1.4e-9]),
        _mf_row("electron", "J", [0.14, 0.43, 1.0], [1e-6, 2e-6, 4e-6], [1e-7, 1e-7, 2e-7]),
        _mf_row("tls", "W", [1.0, 10.0, 100.0], [1.9e-14, 6.5e-14, 5.4e-13],
                [2.7e-15, 4.1e-15, 3.9e-14]),
    ]


def test_panels_hold_the_row_measures(rows):
    """One panel per (model, parameter), TLS before electron; in the TLS W panel the mean
    field series first, then KMC and the linear prediction; every series' x, y and error
    are the row's per-point values; the title gives the paper's and the measured signs."""
    kmc_row, el_row, mf_row = rows
    data = pt.panels(rows)
    assert [(p.model, p.parameter) for p in data] == [("tls", "W"), ("electron", "J")]
    tls, el = data
    assert [s.kind for s in tls.series] == ["meanfield", "kmc", "linear"]
    assert [s.kind for s in el.series] == ["meanfield"]
    mf, kmc, lin = tls.series
    for series, row in ((mf, mf_row), (kmc, kmc_row), (lin, kmc_row)):
        np.testing.assert_array_equal(series.x, [m.value for m in row.points])
    np.testing.assert_array_equal(mf.y, [m.lambda_min for m in mf_row.points])
    np.testing.assert_array_equal(mf.yerr, [m.lambda_min_se for m in mf_row.points])
    np.testing.assert_array_equal(kmc.y, [m.lambda_min for m in kmc_row.points])
    np.testing.assert_array_equal(kmc.yerr, [m.lambda_min_se for m in kmc_row.points])
    np.testing.assert_array_equal(lin.y, [m.predicted for m in kmc_row.points])
    np.testing.assert_array_equal(lin.yerr, [m.predicted_se for m in kmc_row.points])
    assert "$N = 300$" in mf.label and "$N = 100$" in kmc.label
    assert "paper: +" in tls.title
    assert f"+ (z = {mf_row.lambda_min.z:+.1f})" in tls.title
    assert kmc_row.lambda_min.sign == "?" and "KMC: ?;" in tls.title
    assert f"linear: + (z = {kmc_row.linear.z:+.1f})" in tls.title
    assert "flag: not reproduced (KMC)" in tls.title
    assert "paper: -" in el.title and "DISAGREES" in el.title


def test_drawing_plots_the_panel_data(rows):
    """The error bars drawn are the panel data: same y and errors at every finite point,
    x shifted by the stated fraction of the axis span so the series do not overlap, and
    the point without a fit is left out and named in the title."""
    fig = pt.table1_figure(rows)
    axes = [ax for ax in fig.axes if ax.has_data()]
    data = pt.panels(rows)
    assert len(axes) == len(data) == 2
    for ax, panel in zip(axes, data):
        bars = ax.containers
        assert len(bars) == len(panel.series)
        xs = []
        for k, (bar, s) in enumerate(zip(bars, panel.series)):
            line = bar.lines[0]
            ok = np.isfinite(s.y)
            np.testing.assert_allclose(line.get_ydata(), s.y[ok], rtol=1e-12)
            step = k - (len(panel.series) - 1) / 2
            span = math.log10(s.x.max() / s.x.min())
            np.testing.assert_allclose(line.get_xdata(),
                                       s.x[ok] * 10 ** (pt.SHIFT * span * step), rtol=1e-12)
            # the upper end of each bar is y + SE (the lower one may be clipped at 0)
            segments = bar.lines[2][0].get_segments()
            tops = [max(seg[:, 1]) for seg in segments]
            np.testing.assert_allclose(tops, (s.y + s.yerr)[ok], rtol=1e-12)
            xs.append(line.get_xdata())
        assert ax.get_yscale() == "log"
        drawn = np.concatenate(xs)
        assert np.unique(drawn).size == drawn.size      # no two bars at the same x
    assert "not drawn (no finite fit): KMC response at $W = 1$" in axes[0].get_title("left")
    assert axes[0].get_ylabel() == r"$\lambda_{\min}$ ($aJ^3$)"
    assert axes[1].get_ylabel() == r"$\lambda_{\min}$ ($\Gamma_0$)"


def test_figure_from_result_files(tmp_path):
    """From a small mean-field W sweep and a small response sweep of the TLS glass: one
    panel holding both rows' lambda_min, the legends name each file's fixed parameters,
    and the PNG is written."""
    mf = make_result(tmp_path, "tls_w", '"disorder.W" = [100.0, 1.0]\nW_over_T = 10', r=6)
    cfg = config_module.loads(RESPONSE_SWEEP)
    response = tmp_path / "kmc_w.h5"
    run(cfg, out=response, progress=False, figures=False)
    rows = [table_row(mf), table_row(response, n_boot=40)]
    (panel,) = pt.panels(rows)
    assert [s.kind for s in panel.series] == ["meanfield", "kmc", "linear"]
    np.testing.assert_array_equal(panel.series[0].y, [m.lambda_min for m in rows[0].points])
    np.testing.assert_array_equal(panel.series[1].y, [m.lambda_min for m in rows[1].points])
    np.testing.assert_array_equal(panel.series[2].y, [m.predicted for m in rows[1].points])
    assert "$N = 40$" in panel.series[0].label and "$N = 10$" in panel.series[1].label
    assert "6 realizations" in panel.series[0].label
    assert "4 realizations x 8 replicas" in panel.series[1].label
    assert r"\Delta_0 \in [0.3, 1]" in panel.series[1].label
    out = pt.write_table1_figure(rows, tmp_path / "table1.pdf")
    assert out.read_bytes()[:5] == b"%PDF-"


def test_table_command_writes_the_figure(tmp_path, capsys):
    """``python -m analysis table1 FILE --figure F.png`` prints the table and writes the
    PNG; a figure name without a known suffix is one line, exit 2, before any work."""
    mf = make_result(tmp_path, "tls_w", '"disorder.W" = [100.0, 1.0]\nW_over_T = 10', r=6)
    from analysis.__main__ import main
    out = tmp_path / "table1.png"
    assert main(["table1", str(mf), "--figure", str(out)]) == 0
    text, err = capsys.readouterr()
    assert "Mean field" in text and text.rstrip().endswith(f"figure: {out}")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["table1", str(mf), "--figure", str(tmp_path / "table1.jpg")]) == 2
    text, err = capsys.readouterr()
    assert text == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("analysis: --figure: expected a file ending in one of .png")
