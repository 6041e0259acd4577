"""Rate histograms over realizations, the plateau-edge definition of lambda_min and
lambda_max, and the 1/lambda fit."""
import math

import numpy as np
import pytest

from analysis.rates import (fit_inverse_rate, paired_relative_error, plateau_edges,
                            rate_histogram)


def test_histogram_mean_and_standard_error_per_bin():
    edges = np.log([1.0, 10.0, 100.0])
    r1 = np.array([2.0, 3.0, 50.0, 1000.0])         # one rate outside: still normalizes
    r2 = np.array([20.0, 30.0])
    e, mean, sem = rate_histogram([r1, r2], edges)
    w = math.log(10.0)
    d1 = np.array([2, 1]) / (4 * w)
    d2 = np.array([0, 2]) / (2 * w)
    np.testing.assert_allclose(e, edges)
    np.testing.assert_allclose(mean, (d1 + d2) / 2)
    np.testing.assert_allclose(sem, np.abs(d1 - d2) / 2)     # std(ddof=1)/sqrt(2) of two
    with pytest.raises(ValueError, match="rates > 0"):
        rate_histogram([np.array([1.0, -1.0])], edges)
    e, mean, _ = rate_histogram([r1], [0.0, 10.0, 100.0], log=False)
    np.testing.assert_allclose(mean, [2 / (4 * 10.0), 1 / (4 * 90.0)])


@pytest.mark.parametrize("lmin, lmax", [(1e-12, 1e-3), (3.7e-10, 2.2e-2)])
def test_plateau_edges_recover_planted_cutoffs(lmin, lmax):
    """Rates log-uniform between planted cut-offs, with a few stray rates far outside, over
    50 realizations: the estimator returns the cut-offs within half a bin width (its
    deterministic error for a sharp edge is <= 0.09 bin widths; the rest is noise)."""
    rng = np.random.default_rng(7)
    rates_list = []
    for _ in range(50):
        main = np.exp(rng.uniform(np.log(lmin), np.log(lmax), 2000))
        stray = np.exp(rng.uniform(np.log(1e-16), np.log(1.0), 10))
        rates_list.append(np.concatenate([main, stray]))
    edges, mean, _ = rate_histogram(rates_list, 90, range=(np.log(1e-16), 0.0))
    width = edges[1] - edges[0]
    low, high = plateau_edges(edges, mean)
    assert abs(np.log(low) - np.log(lmin)) < 0.5 * width
    assert abs(np.log(high) - np.log(lmax)) < 0.5 * width


def test_plateau_edge_definition_on_ramps():
    """The written definition: the edge is where the smoothed density reaches alpha times
    the plateau level; for linear ramps that is the point at fraction alpha of the ramp."""
    edges = np.arange(0.0, 101.0)
    centres = edges[:-1] + 0.5
    density = np.clip((centres - 20.0) / 10.0, 0, 1) * np.clip((80.0 - centres) / 20.0, 0, 1)
    low, high = plateau_edges(edges, density, alpha=0.5, window=1)
    assert np.log(low) == pytest.approx(25.0, abs=1e-12)
    assert np.log(high) == pytest.approx(70.0, abs=1e-12)
    low, high = plateau_edges(edges, density, alpha=0.25, window=5)
    assert np.log(low) == pytest.approx(22.5, abs=1e-12)
    assert np.log(high) == pytest.approx(75.0, abs=1e-12)
    # an edge beyond the histogram range is reported as nan, not as the range end
    low, high = plateau_edges(edges[:41], density[:40])
    assert np.log(low) == pytest.approx(25.0) and np.isnan(high)


def test_inverse_rate_fit():
    """Rates from p ~ 1/lambda over [1e-6, 1e-2]: in the window the fitted exponent is 1 and
    the 1/lambda amplitude is 1/ln(1e4), within 4 standard errors; a lambda^-2 sample is
    rejected (its exponent differs from 1 by many standard errors)."""
    rng = np.random.default_rng(11)
    lmin, lmax = 1e-6, 1e-2
    rates_list = [np.exp(rng.uniform(np.log(lmin), np.log(lmax), 5000)) for _ in range(40)]
    bins = np.linspace(2e-6, 2e-5, 31)
    edges, mean, sem = rate_histogram(rates_list, bins, log=False)
    fit = fit_inverse_rate(edges, mean, sem, 2e-6, 2e-5)
    assert abs(fit.exponent - 1.0) < 4 * fit.exponent_se
    assert abs(fit.amplitude - 1 / math.log(lmax / lmin)) < 4 * fit.amplitude_se
    assert fit.chi2_dof < 2.0 and fit.n_bins == 30
    steep = [1.0 / rng.uniform(1 / lmax, 1 / lmin, 5000) for _ in range(40)]   # p ~ lambda^-2
    edges, mean, sem = rate_histogram(steep, bins, log=False)
    bad = fit_inverse_rate(edges, mean, sem, 2e-6, 2e-5)
    assert abs(bad.exponent - 1.0) > 10 * bad.exponent_se


def test_paired_relative_error():
    lam_with, rel = paired_relative_error([2.0, 1.0, 4.0], [1.0, 4.0, 1.5])
    np.testing.assert_allclose(lam_with, [1.0, 2.0, 4.0])
    np.testing.assert_allclose(rel, [0.0, 0.25, 0.0])


def test_figures_draw(tmp_path):
    """Smoke test: every figure function draws and saves with the Agg canvas."""
    from analysis import plots_rates
    from analysis.relaxation import relaxation_series
    rng = np.random.default_rng(3)
    rates_list = [np.exp(rng.uniform(-12, -2, 300)) for _ in range(5)]
    log_hist = rate_histogram(rates_list, 40)
    cut = plateau_edges(log_hist[0], log_hist[1])
    lin_hist = rate_histogram(rates_list, np.linspace(cut[0], 20 * cut[0], 21), log=False)
    fit = fit_inverse_rate(*lin_hist, cut[0], 20 * cut[0])
    figs = [
        plots_rates.rate_distribution_figure([log_hist], [lin_hist], [fit], [cut], ["x"]),
        plots_rates.relative_error_figure(*paired_relative_error(rates_list[0],
                                                                 rates_list[0] * 1.01),
                                          lam_without=rates_list[0] * 1.01, label="t"),
        plots_rates.distance_spectrum_figure([log_hist], [300], 0.1,
                                             side=lambda n: n**0.5 - 1),
        plots_rates.relaxation_figure(relaxation_series(rates_list, *cut)),
    ]
    for k, fig in enumerate(figs):
        fig.savefig(tmp_path / f"f{k}.png", dpi=50)
        assert (tmp_path / f"f{k}.png").stat().st_size > 1000
