"""Simulated relaxation against the linear prediction (analysis.compare)."""
import numpy as np
import pytest

from analysis import compare


def test_folded_normal_mean_limits_and_monte_carlo():
    assert compare.folded_normal_mean(0.7, 0.0) == pytest.approx(0.7)
    assert compare.folded_normal_mean(0.0, 2.0) == pytest.approx(2.0 * np.sqrt(2 / np.pi))
    rng = np.random.default_rng(1)
    x = rng.normal(0.4, 0.5, 200_000)
    est = np.abs(x).mean()
    se = np.abs(x).std() / np.sqrt(x.size)
    assert abs(compare.folded_normal_mean(0.4, 0.5) - est) < 4 * se


def test_independent_tls_prediction_matches_sampled_estimator():
    """With independent TLSs the prediction of the replica-averaged estimator is exact up
    to the normal approximation: sample the two-state processes exactly and compare."""
    rng = np.random.default_rng(7)
    n, replicas, trials = 60, 8, 400
    rates = np.exp(rng.uniform(np.log(1e-3), 0.0, n))
    eq = rng.uniform(-0.8, 0.8, n)           # <sigma_i> at equilibrium
    start = np.full(n, -1.0)                 # every TLS starts in sigma = -1
    c = start - eq
    times = np.array([0.0, 1.0, 10.0, 100.0, 1000.0])
    sampled = []
    for _ in range(trials):
        mean_sigma = eq + c * np.exp(-np.multiply.outer(times, rates))   # (T, N)
        p_up = (1 + mean_sigma) / 2
        draws = np.where(rng.random((replicas,) + p_up.shape) < p_up, 1.0, -1.0)
        sampled.append(np.abs(draws.mean(axis=0) - eq).sum(axis=1))
    sampled = np.array(sampled)
    mean, se = sampled.mean(axis=0), sampled.std(axis=0, ddof=1) / np.sqrt(trials)
    pred = compare.tls_prediction(rates, c, times, 0.0, eq, replicas)
    # the normal approximation of an 8-replica average is good to a few per cent of a site
    # term; the tolerance is 4 standard errors plus 2% of the curve
    assert np.all(np.abs(pred - mean) < 4 * se + 0.02 * mean), (pred, mean, se)
    raw = compare.tls_prediction(rates, c, times, 0.0)
    assert raw[-1] < pred[-1]  # the raw sum has no noise floor


def test_compare_window_slopes_of_a_log_law():
    lmin, lmax = 1e-5, 1e-1
    t = np.logspace(-3, 7, 60)
    from analysis.relaxation import e1_form
    sim = e1_form(t, lmin, lmax, 50.0)
    res = compare.compare(t, sim, np.full_like(t, 0.1), sim, np.zeros_like(t), 50.0, lmin, lmax)
    assert res.max_rel_deviation == 0.0
    assert res.slope_simulated == pytest.approx(res.slope_predicted)
    # inside the window E1 is close to the log law: slope -c / ln(lmax/lmin)
    assert res.slope_simulated == pytest.approx(res.slope_log, rel=0.1)


def test_noninteracting_kmc_run_agrees_with_prediction(tmp_path):
    """J = 0: the KMC and the linear prediction describe the same independent TLSs."""
    from kmc.pipeline import config
    from analysis.run import run
    text = """
[model]
name = "tls"
N = 80
temperature = 0.1
[disorder]
J = 0.0
delta0_min = 3e-3
delta0_max = 1e-1
[linear]
[dynamics]
replicas = 8
t_min = 1.0
t_max = 1e6
n_times = 20
[ensemble]
realizations = 6
seed = 3
[output]
figures = false
"""
    run(config.loads(text), out=tmp_path / "c.h5", progress=False)
    import h5py
    with h5py.File(tmp_path / "c.h5") as f:
        c = f["glassrelax/points/p0000/comparison"]
        sim, se, pred = c["simulated"][()], c["simulated_se"][()], c["predicted"][()]
        slope, slope_se, slope_pred = (c.attrs[k] for k in
                                       ("slope_simulated", "slope_simulated_se", "slope_predicted"))
    # equal within 4 standard errors of the simulated ensemble mean plus 3% of the curve
    # (the static-MC baseline is Boltzmann of |h|, the KMC stationary state uses
    # sqrt(h^2 + Delta0^2): a small, documented offset)
    assert np.all(np.abs(sim - pred) < 4 * se + 0.03 * sim)
    assert abs(slope - slope_pred) < 4 * slope_se + 0.05 * abs(slope_pred)
