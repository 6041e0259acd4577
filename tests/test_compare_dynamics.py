"""Three curves per experiment (analysis.compare.dynamics_curves) and their figures.

Planted case: at J = 0 the TLSs are independent, so the mean-field dynamics is the exact
mean of the KMC from the same start and the linear prediction is exact (to O(F^2) for a
pulse): the three curves must agree within their statistical errors.
"""
import numpy as np
import pytest

import kmc
from analysis import compare
from kmc.pipeline import config as config_module

QUENCH = """
[model]
name = "tls"
N = 30
temperature = 0.1
[disorder]
J = 0.0
delta0_min = 3e-2
delta0_max = 1e-1
[linear]
[dynamics]
protocol = "quench"
initial_temperature = inf
replicas = 8
t_min = 1.0
t_max = 1e6
n_times = 16
mc_sampling_sweeps = 100
mc_equilibration_sweeps = 50
[ensemble]
realizations = 8
seed = 11
[output]
figures = false
flush_seconds = 0.0
"""

RESPONSE = """
[model]
name = "tls"
N = 20
temperature = 0.1
[disorder]
J = 0.0
delta0_min = 3e-2
delta0_max = 1e-1
[dynamics]
protocol = "response"
pulse_strength = 1e-3
waiting_time = 1e2
aging_time = 1e5
t_min = 1.0
t_max = 1e4
n_times = 10
replicas = 4
mc_sampling_sweeps = 50
mc_equilibration_sweeps = 20
mc_preparation_sweeps = 50
[ensemble]
realizations = 3
seed = 5
[output]
figures = false
flush_seconds = 0.0
[sweep]
"dynamics.waiting_time" = [1e2, 1e3]
"""


def _run(tmp_path_factory, text, name):
    from analysis.run import run
    out = tmp_path_factory.mktemp(name) / f"{name}.h5"
    run(config_module.loads(text), out=out, progress=False)
    return out


@pytest.fixture(scope="module")
def quench_file(tmp_path_factory):
    return _run(tmp_path_factory, QUENCH, "quench")


@pytest.fixture(scope="module")
def response_file(tmp_path_factory):
    return _run(tmp_path_factory, RESPONSE, "response")


def test_linear_energy_equals_meanfield_dynamics_at_j0():
    """J = 0, deterministic: the rate equations are linear, so the mean-field dynamics from
    any start equals the linear propagation of c = x0 - x* with the energy weights (this
    pins the rates, the weights and the per-site normalisation of the linear curve)."""
    from kmc.dynamics import meanfield_dynamics as mfd
    from kmc.dynamics.run import mean_field_model, rate_setup
    from kmc.solvers import meanfield
    from kmc.systems import TLSSystem
    system = TLSSystem.random(np.random.default_rng(2), 25, W=1.0, J=0.0,
                              delta0_min=3e-2, delta0_max=1e-1)
    cfg = config_module.loads(QUENCH)
    params = cfg.points()[0][1].dynamics_params()
    prefactors, pairs = rate_setup(system, params)
    model = mean_field_model(system, params, prefactors, pairs)
    x0 = np.random.default_rng(3).uniform(-1, 1, 25)
    times = params.times()
    traj = mfd.integrate(model, x0, times, rtol=1e-10, atol=1e-12)
    fixed = mfd.stationary_state(model, traj.states[-1]).state
    mf = meanfield.solve(system, 0.1, rng=0)
    dx, w = compare._tls_linear_deviation(system, mf.fields, 0.1, params.a, x0 - fixed,
                                          times, 0.0)
    np.testing.assert_allclose(traj.states - fixed, dx, atol=1e-7)
    e_fixed = model.observables(fixed)[0]
    np.testing.assert_allclose(traj.energy - e_fixed, dx @ w, atol=1e-7 * np.abs(w).sum())


def test_quench_three_curves_agree_at_j0(quench_file):
    """Planted: J = 0 quench. KMC against mean-field dynamics (same start: same
    PREPARATION states) and against the linear prediction, per realization paired: the
    slope difference per ln t and the window-mean difference are within 4 standard
    errors of 0 (8 realizations)."""
    res = kmc.load(quench_file)
    (energy,) = [c for c in compare.dynamics_curves(res, 0) if c.name == "excess_energy"]
    assert set(energy.rows) == {"kmc", "meanfield", "linear"}
    assert energy.rows["kmc"].shape == (8, 16)
    np.testing.assert_array_equal(energy.rows["kmc"][:, -1], 0.0)   # own baseline at t_L
    for kind in ("meanfield", "linear"):
        diff, se = energy.slope_difference(kind)
        assert se > 0 and abs(diff) < 4 * se, (kind, diff, se)
        z, mean, mean_se = energy.residual(kind)
        w = energy.slope_window()
        d = (energy.rows["kmc"] - energy.rows[kind])[:, w].mean(axis=1)
        assert abs(d.mean()) < 4 * d.std(ddof=1) / np.sqrt(d.size), (kind, d)
    # the excess energy decays: the slope is negative and resolved
    slope, slope_se = energy.slope("kmc")
    assert slope < -4 * slope_se


def test_quench_meanfield_is_not_normalised_differently(quench_file):
    """The curves share one normalisation: the KMC's and the mean-field dynamics' first
    values (the released energy per site) agree within 4 SE, and a curve per N sites
    instead of per site would miss by a factor 30."""
    res = kmc.load(quench_file)
    energy = compare.dynamics_curves(res, 0)[0]
    z, _, _ = energy.residual("meanfield")
    assert abs(z[0]) < 4
    assert energy.mean("kmc")[0] > 0.05


def test_response_meanfield_equals_linear_prediction_at_j0(response_file):
    """J = 0, F = 1e-3, the prepared state aged far beyond 1/lambda_min: the mean-field
    dynamics of the response protocol (integrated here from the rebuilt prepared state)
    equals the stored linear prediction to O(F^2), checked at 2% of its largest value
    (sites whose field crosses 0 under the pulse: about F/W of them, docs/linear-response.md)."""
    res = kmc.load(response_file)
    for p in range(2):
        proj = next(c for c in compare.dynamics_curves(res, p) if c.name == "projection")
        assert set(proj.rows) == {"kmc", "meanfield", "linear"}
        mf, lin = proj.mean("meanfield"), proj.mean("linear")
        assert np.all(lin < 0)            # the response has the sign of chi
        np.testing.assert_allclose(mf, lin, atol=0.02 * np.abs(lin).max())


def _renders(text):
    from matplotlib.mathtext import MathTextParser
    try:
        MathTextParser("agg").parse(text)
    except ValueError:
        return False
    return True


def _check_axes(fig):
    """Every panel draws finite data and has a y label; every column's bottom panel (the
    residuals share the time axis with the panel above) has an x label; all render."""
    for ax in fig.axes:
        assert ax.get_lines(), "empty panel"
        assert all(np.isfinite(ln.get_ydata()).any() for ln in ax.get_lines()
                   if len(ln.get_ydata()) > 2)
        assert ax.get_ylabel() and _renders(ax.get_ylabel())
        assert _renders(ax.get_xlabel())
    labelled = [ax for ax in fig.axes if ax.get_xlabel()]
    assert len(labelled) == max(1, len(fig.axes) // 2)


def test_quench_figure_has_three_curves_and_residuals(quench_file):
    from analysis import figures
    fig = figures.dynamics_figure(quench_file, save=False)
    assert len(fig.axes) == 2                          # excess energy and its residuals
    _check_axes(fig)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert {"mean-field dynamics", "linear prediction"} <= set(texts)
    assert "quench" in fig._suptitle.get_text() and "N = 30" in fig._suptitle.get_text()
    assert figures.aging_figure(quench_file, save=False) is None
    path = figures.dynamics_figure(quench_file)
    assert path.exists() and path.stat().st_size > 0


def test_response_figures_label_every_waiting_time(response_file):
    from analysis import figures
    fig = figures.dynamics_figure(response_file, save=False)
    assert len(fig.axes) == 4                          # projection, energy, two residuals
    _check_axes(fig)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert sum(t.startswith("$t_w = ") for t in texts) == 2   # one entry per point
    aging = figures.aging_figure(response_file, save=False)
    _check_axes(aging)
    texts = [t.get_text() for t in aging.axes[0].get_legend().get_texts()]
    assert any(r"\ln(1 + t_w/t)" in t for t in texts)
    assert all(_renders(t) for t in texts)
