"""Relaxation predicted from rates (Eq. 15) and its continuum forms (Eqs. 16-17)."""
import numpy as np
import pytest
import scipy.linalg

from analysis.relaxation import (e1_form, ensemble_prediction, log_form, log_time_grid,
                                 propagate_linear, relaxation_prediction, relaxation_series)
from kmc.solvers import meanfield
from kmc.solvers.linear import electron_rate_matrix, electron_symmetric_matrix, tls_rate_matrix, tls_rates
from kmc.systems import ElectronSystem, TLSSystem


def test_log_uniform_rates_drop_one_over_d_per_decade():
    """Rates log-uniform over D decades: the relaxation drops by 1/D of its initial value
    per decade of time inside the window (docs/model.md section 5). The deviations from 1/D are
    O(lambda_min t) + O(e^(-lambda_max t)) <= 1e-4 / D for the decades tested, and the
    discreteness of 4000 rates on a geometric grid adds far less; tolerance 1e-3 / D."""
    decades = 12
    rates = np.logspace(-decades, 0, 4000)
    times = np.logspace(4, 8, 5)          # 1e4 / lambda_max ... 1e-4 / lambda_min
    curve = relaxation_prediction(rates, None, times)
    drops = -np.diff(curve)
    np.testing.assert_allclose(drops, 1.0 / decades, rtol=1e-3)
    assert relaxation_prediction(rates, None, [0.0])[0] == pytest.approx(1.0)


def test_e1_form_matches_sampled_inverse_rate_distribution():
    """The direct sum over rates drawn from p ~ 1/lambda equals the E1 form within 5
    standard errors at every time (SE = std_i(e^(-lambda_i t)) / sqrt(N) from the sample;
    fixed seed; 5 SE keeps the family-wise false-alarm rate over ~80 times below 1e-4)."""
    rng = np.random.default_rng(20170420)
    lmin, lmax, n = 1e-6, 1e-1, 20_000
    rates = np.exp(rng.uniform(np.log(lmin), np.log(lmax), n))
    times = log_time_grid(lmin, lmax, per_decade=10, margin=1.0)
    direct = relaxation_prediction(rates, None, times)
    terms = np.exp(-np.multiply.outer(times, rates))
    se = terms.std(axis=1, ddof=1) / np.sqrt(n)
    exact = e1_form(times, lmin, lmax)
    inside = se > 0
    assert np.all(np.abs(direct - exact)[inside] <= 5 * se[inside])
    assert np.all(np.abs(direct - exact)[~inside] < 1e-12)
    # not trivially satisfied: the form differs from a wrong cut-off by many SE
    wrong = e1_form(times, 2 * lmin, lmax)
    assert np.max(np.abs(direct - wrong) / np.where(inside, se, np.inf)) > 20


def test_log_form_is_the_asymptote_of_e1():
    lmin, lmax = 1e-9, 1.0
    t = np.logspace(3, 6, 7)   # lambda_max t >= 1e3, lambda_min t <= 1e-3
    e1 = e1_form(t, lmin, lmax, c=2.0)
    lg = log_form(t, lmin, lmax, c=2.0)
    # E1(x) = -gamma - ln x + x + O(x^2): error <= 2 lmin t / ln(ratio) + e^(-lmax t) terms
    assert np.all(np.abs(e1 - lg) <= 2.0 * 1.01 * lmin * t / np.log(lmax / lmin) + 1e-300)
    assert e1_form(0.0, lmin, lmax, c=2.0) == pytest.approx(2.0)


def test_prediction_with_given_amplitudes():
    rates = np.array([1.0, 2.0, 5.0])
    c = np.array([0.5, -1.0, 2.0])
    t = np.array([0.0, 0.3, 1.7])
    expected = [np.sum(c * np.exp(-rates * ti)) for ti in t]
    np.testing.assert_allclose(relaxation_prediction(rates, c, t), expected, rtol=1e-14)
    with pytest.raises(ValueError, match="c: expected shape"):
        relaxation_prediction(rates, c[:2], t)


def test_ensemble_mean_and_standard_error():
    t = np.array([0.5, 2.0])
    rates_list = [np.array([1.0, 3.0]), np.array([0.5]), np.array([2.0, 2.0, 4.0])]
    curves, mean, sem = ensemble_prediction(rates_list, t)
    expected = np.array([[np.mean(np.exp(-r * ti)) for ti in t] for r in rates_list])
    np.testing.assert_allclose(curves, expected, rtol=1e-14)
    np.testing.assert_allclose(mean, expected.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(sem, expected.std(axis=0, ddof=1) / np.sqrt(3), rtol=1e-12)
    series = relaxation_series(rates_list, 0.5, 4.0, times=t)
    np.testing.assert_allclose(series.mean, mean)
    np.testing.assert_allclose(series.e1, e1_form(t, 0.5, 4.0))
    assert series.n_realizations == 3


def test_propagation_equals_matrix_exponential():
    """propagate_linear (symmetric path for the electron glass, general path for A and for
    the TLS B) equals expm(A t) x0; with J = 0 the TLS deviation is c_i e^(-lambda_i t)."""
    system = ElectronSystem.random(np.random.default_rng(8), 12)
    mf = meanfield.solve(system, 0.3, tol=1e-12, rng=0)
    args = (system, mf.fields, mf.mu, 0.3, 0.5)
    a = electron_rate_matrix(*args)
    x0 = np.random.default_rng(9).standard_normal(12)
    x0 -= x0.mean()
    times = np.array([0.0, 0.1, 1.0, 10.0])
    exact = np.array([scipy.linalg.expm(a * t) @ x0 for t in times])
    sym, root = electron_symmetric_matrix(*args)
    np.testing.assert_allclose(propagate_linear(sym, x0, times, scale=root), exact,
                               atol=1e-10 * np.abs(x0).max())
    np.testing.assert_allclose(propagate_linear(a, x0, times), exact,
                               atol=1e-10 * np.abs(x0).max())

    tls = TLSSystem.random(np.random.default_rng(10), 6, J=0.0, delta0_min=1e-2)
    c = np.random.default_rng(11).uniform(-1, 1, 6)
    b = tls_rate_matrix(tls, tls.bias, 0.2)
    lam = tls_rates(tls, tls.bias, 0.2)
    t = np.array([0.0, 3.0, 300.0])
    got = np.abs(propagate_linear(b, c, t)).sum(axis=1)
    np.testing.assert_allclose(got, relaxation_prediction(lam, np.abs(c), t), rtol=1e-12)
