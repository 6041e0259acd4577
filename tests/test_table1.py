"""Table I from sweep result files (analysis/table1.py) and its command line."""
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from analysis import table1
from analysis.table1 import Change, Row, change, format_table, table_row, typical_median
from kmc.pipeline import config as config_module
from analysis.run import run

ROOT = Path(__file__).resolve().parents[1]

SWEEP = """
[model]
name = "{model}"
N = {n}
temperature = 0.1
[disorder]
W = 1.0
J = 1.0
{linear}
[ensemble]
realizations = {r}
seed = 11
workers = 1
[output]
figures = false
flush_seconds = 0.0
[sweep]
{sweep}
"""


def make_result(tmp_path, name, sweep, model="tls", n=40, r=12, linear="[linear]"):
    cfg = config_module.loads(SWEEP.format(model=model, n=n, r=r, linear=linear, sweep=sweep))
    path = tmp_path / f"{name}.h5"
    run(cfg, out=path, progress=False, figures=False)
    return path


@pytest.fixture(scope="module")
def tls_w(tmp_path_factory):
    """TLS, W = 1 and 100 at W/T = 10: rates grow by orders of magnitude (Eq. 12, |E| ~ W)."""
    return make_result(tmp_path_factory.mktemp("w"), "tls_w",
                       '"disorder.W" = [100.0, 1.0]\nW_over_T = 10')


def test_change_sign_and_significance():
    up = change(1.0, 0.1, 2.0, 0.1)          # D = ln 2, SE = hypot(0.1, 0.05)
    assert up.sign == "+" and up.ratio == 2.0
    assert up.se == pytest.approx(math.hypot(0.1, 0.05))
    assert up.z == pytest.approx(math.log(2.0) / math.hypot(0.1, 0.05))
    assert change(2.0, 0.1, 1.0, 0.1).sign == "-"
    # |D| = ln 1.2 = 0.18 < 2 SE = 2 hypot(0.3, 0.25) = 0.78: not significant
    assert change(1.0, 0.3, 1.2, 0.3).sign == "0"
    # just either side of the 2 SE threshold
    se = 0.05
    d = 2.0 * math.hypot(se, se)
    assert change(1.0, se, math.exp(d * 1.01), se * math.exp(d * 1.01)).sign == "+"
    assert change(1.0, se, math.exp(d * 0.99), se * math.exp(d * 0.99)).sign == "0"
    assert change(1.0, math.nan, 2.0, 0.1).sign == "?"
    assert change(math.nan, 0.1, 2.0, 0.1).sign == "?"


def test_typical_median_does_not_drift_with_n():
    """Rates log-uniform over 12 decades (the TLS Delta0^2 law): the geometric mean of the
    per-realization medians estimates the same median at N = 10 and N = 1000 (within 3
    combined standard errors), whereas the arithmetic mean of the medians (the stored
    summary) is several times larger at N = 10."""
    rng = np.random.default_rng(3)

    def draw(n, r=400):
        return [np.exp(rng.uniform(np.log(1e-14), np.log(1e-2), n)) for _ in range(r)]

    small, large = draw(10), draw(1000)
    (m1, s1), (m2, s2) = typical_median(small), typical_median(large)
    z = math.log(m1 / m2) / math.hypot(s1 / m1, s2 / m2)
    assert abs(z) < 3.0
    assert abs(math.log(m2) - math.log(1e-8)) < 3 * s2 / m2 + 1e-3   # true median 1e-8
    arithmetic = np.mean([np.median(r) for r in small])
    assert arithmetic > 5 * m1


def test_real_file_w_sweep_is_faster_and_agrees(tls_w):
    row = table_row(tls_w)
    assert (row.model, row.parameter) == ("tls", "W")
    assert [p.value for p in row.points] == [1.0, 100.0]          # ordered by increasing W
    assert [p.temperature for p in row.points] == pytest.approx([0.1, 10.0])
    assert row.lambda_min.sign == "+" and row.median_rate.sign == "+"
    assert row.disagreements == ()
    assert "DISAGREES" not in format_table([row])


def test_disagrees_flag_fires(tls_w, monkeypatch):
    monkeypatch.setitem(table1.PAPER_SIGNS, ("tls", "W"), "-")
    row = table_row(tls_w)
    assert row.disagreements == ("lambda_min", "median")
    assert "DISAGREES (lambda_min, median)" in format_table([row])


def test_flag_ignores_insignificant_and_undetermined():
    ns, unknown = Change(1.1, 0.1, 1.0, "0"), Change(math.nan, math.nan, math.nan, "?")
    row = Row("x.h5", "electron", "J", (), ns, unknown)      # paper: -
    assert row.paper == "-" and row.disagreements == ()
    row = Row("x.h5", "electron", "J", (), Change(3.0, 1.1, 0.1, "+"), ns)
    assert row.disagreements == ("lambda_min",)


def test_j_scheme_direction(tmp_path):
    """W_over_J = [1, 9.8] at W^2 + J^2 = 2: increasing J is the W/J = 1 point, which
    therefore comes last."""
    path = make_result(tmp_path, "tls_j", "W_over_J = [1.0, 9.8]\nW2_plus_J2 = 2.0", r=4)
    row = table_row(path)
    assert row.parameter == "J"
    js = [p.value for p in row.points]
    assert js == pytest.approx([math.sqrt(2.0 / (1 + 9.8**2)), 1.0])
    # the first point of the row is the file's point 1 (W/J = 9.8)
    import kmc
    res = kmc.load(path)
    assert res.points[1].values["W_over_J"] == 9.8
    with h5py.File(path, "r") as f:
        lmin_98 = f["glassrelax/points/p0001/linear"].attrs["lambda_min"]
    assert row.points[0].lambda_min == lmin_98


def test_lambda_min_equals_stored_summary(tls_w):
    """lambda_min recomputed from the stored rates is the stored summary value."""
    row = table_row(tls_w)
    with h5py.File(tls_w, "r") as f:
        stored = [f[f"glassrelax/points/{p}/linear"].attrs["lambda_min"] for p in ("p0001", "p0000")]
    assert [p.lambda_min for p in row.points] == pytest.approx(stored, rel=1e-12)
    assert all(0 < p.lambda_min_se < p.lambda_min for p in row.points)


def test_mixed_models_and_unknown_sweeps_are_refused():
    def fake(models, values):
        pts = [SimpleNamespace(config=SimpleNamespace(model=SimpleNamespace(name=m)), values=v)
               for m, v in zip(models, values)]
        return SimpleNamespace(path="f.h5", points=pts)

    with pytest.raises(table1.TableError, match="mixed models"):
        table1.swept_parameter(fake(["tls", "electron"], [{"model.name": "tls"},
                                                          {"model.name": "electron"}]))
    with pytest.raises(table1.TableError, match="exactly one of"):
        table1.swept_parameter(fake(["tls", "tls"], [{"model.temperature": 0.1},
                                                     {"model.temperature": 0.2}]))
    with pytest.raises(table1.TableError, match="exactly one of"):
        table1.swept_parameter(fake(["tls", "tls"], [{"disorder.W": 1, "model.N": 10},
                                                     {"disorder.W": 2, "model.N": 20}]))
    assert table1.swept_parameter(fake(["electron"] * 2, [{"model.N": 10}, {"model.N": 20}])) \
        == ("N", "electron")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "analysis", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_prints_table(tls_w):
    proc = cli("table1", "--details", str(tls_w))
    assert proc.returncode == 0, proc.stderr
    assert "TLS glass" in proc.stdout and "disorder W" in proc.stdout
    assert "lambda_min" in proc.stdout and "paper" in proc.stdout
    from analysis.__main__ import main
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0


def test_cli_errors_are_one_line(tmp_path, tls_w, capsys):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    no_rates = make_result(tmp_path, "dos_only", '"model.N" = [20, 30]', r=2, linear="")
    single = make_result(tmp_path, "single", '"model.N" = [20]', r=2)
    cases = [(tmp_path / "missing.h5", "no such file"),
             (text, "not a readable HDF5 file"),
             (no_rates, "no rates"),
             (single, "one point only")]
    from analysis.__main__ import main
    for path, message in cases:        # in-process: the same code path, no interpreter start
        assert main(["table1", str(tls_w), str(path)]) == 2
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert out == "" and len(lines) == 1
        assert lines[0].startswith("analysis: ") and message in lines[0]
    proc = cli("table1", str(tmp_path / "missing.h5"))   # and once through the interpreter
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"analysis: {tmp_path / 'missing.h5'}: no such file"


# --- "not reproduced" and Table I by kinetic Monte Carlo ----------------------------------


def test_not_reproduced_flag_where_the_paper_claims_a_sign():
    ns, unknown = Change(1.1, 0.1, 1.0, "0"), Change(math.nan, math.nan, math.nan, "?")
    agree = Change(0.5, -0.7, 0.1, "-")
    row = Row("x.h5", "electron", "J", (), ns, unknown)      # paper: -
    assert row.not_reproduced == ("lambda_min", "median")
    assert "not reproduced (lambda_min, median)" in format_table([row])
    row = Row("x.h5", "electron", "J", (), agree, ns)
    assert row.not_reproduced == ("median",) and row.flag == "not reproduced (median)"
    assert Row("x.h5", "electron", "J", (), agree, agree).flag == ""
    # the paper calls its TLS size effect negligible: no significant sign is expected
    assert Row("x.h5", "tls", "N", (), ns, ns).not_reproduced == ()


def _e1_curves(rng, lambda_min, k, noise, times, t_w):
    from analysis.response import pulse_e1_form
    truth = pulse_e1_form(times, t_w, lambda_min, 10.0, c=2.0)
    return truth[None, :] + rng.normal(0, noise, (k, times.size))


def test_kmc_lambda_min_fit_recovers_the_cut_off_and_its_direction():
    """Per-realization curves of the pulse E1 form with lambda_min = 1e-6 and 1e-4 (a long
    pulse, t_w >> 1/lambda_min, as in runs/table1_kmc_*.toml) and independent noise: each
    fitted lambda_min is within 4 bootstrap SE of the truth, and the change between the two
    points is significant with the right sign (+, faster)."""
    rng = np.random.default_rng(21)
    times = np.logspace(-1, 9, 41)
    fits = []
    for lmin in (1e-6, 1e-4):
        curves = _e1_curves(rng, lmin, 8, 0.02, times, 1e12)
        value, se, chi2 = table1._fit_lambda_min(times, curves, 1e12, 60, 0)
        assert np.isfinite(se) and 0 < se < 0.5 * value
        assert abs(value - lmin) < 4 * se
        fits.append((value, se))
    c = change(fits[0][0], fits[0][1], fits[1][0], fits[1][1])
    assert c.sign == "+" and c.ratio == pytest.approx(100, rel=0.5)


def test_kmc_lambda_min_is_undetermined_without_a_cut_off_in_the_window():
    """A pulse far shorter than 1/lambda_min leaves too little signal at t ~ 1/lambda_min:
    the fit runs to its bound or its bootstrap is too wide, and the table says '?' rather
    than a number."""
    rng = np.random.default_rng(22)
    times = np.logspace(-1, 9, 41)
    curves = _e1_curves(rng, 1e-12, 8, 0.02, times, 1e1)
    value, se, _ = table1._fit_lambda_min(times, curves, 1e1, 60, 0)
    assert not (np.isfinite(value) and np.isfinite(se) and se < value)


RESPONSE_SWEEP = """
[model]
name = "tls"
N = 10
[disorder]
J = 1.0
delta0_min = 0.3
delta0_max = 1.0
[dynamics]
method = "kmc"
protocol = "response"
pulse_strength = 0.05
waiting_time = 1e4
t_min = 0.1
t_max = 1e4
n_times = 13
replicas = 8
[ensemble]
realizations = 4
seed = 5
workers = 1
[output]
figures = false
flush_seconds = 0.0
[sweep]
mode = "zip"
"disorder.W" = [1.0, 4.0]
"dynamics.pulse_strength" = [0.05, 0.2]
W_over_T = 10
"""


def test_response_sweep_gives_a_kmc_row_beside_the_mean_field_table(tmp_path, tls_w):
    """A response-protocol sweep (the pulse scaled with T along W) enters Table I as a KMC
    row: one ResponseMeasure per point with the fitted KMC and linear lambda_min, printed
    in a second table under the mean-field one; the CLI prints both."""
    cfg = config_module.loads(RESPONSE_SWEEP)
    path = tmp_path / "kmc_w.h5"
    run(cfg, out=path, progress=False, figures=False)
    row = table_row(path, n_boot=40)
    assert isinstance(row, table1.KMCRow) and (row.model, row.parameter) == ("tls", "W")
    assert [m.value for m in row.points] == [1.0, 4.0]
    assert all(m.n_used == 4 and m.waiting_time == 1e4 for m in row.points)
    # the linear prediction is deterministic given the realization: its fit is defined
    assert all(np.isfinite(m.predicted) for m in row.points)
    text = format_table([table_row(tls_w), row])
    assert text.index("Mean field") < text.index("Kinetic Monte Carlo")
    assert "lambda_min KMC" in text and "lambda_min linear" in text
    out = subprocess.run([sys.executable, "-m", "analysis", "table1", "--details", str(path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "KMC response, E1 fit" in out.stdout
