"""Distributions of relaxation rates over realizations, the cut-offs lambda_min and
lambda_max, and the 1/lambda fit (Figs. 3, 6, 7, 9, 11, 13, 15; Section III).

Histograms
----------
Each realization r contributes its own normalized histogram: counts_r[k] / (n_r w_k), with
n_r its number of rates and w_k the bin width (in ln lambda for the log histogram, in lambda
for the linear one). Rates outside the binned range are counted in n_r but not placed, so a
window histogram integrates to the fraction of rates inside the window. The mean over the R
realizations and its standard error std_r / sqrt(R) (ddof = 1) are returned per bin.

Definition of lambda_min and lambda_max (plateau edges)
-------------------------------------------------------
A 1/lambda density is a plateau of the density h(ln lambda). Given the bin centres c_k
(in ln lambda) and the mean density h_k of ``rate_histogram(..., log=True)``:

1. Smooth with a running median of ``window`` bins (default 5; truncated at the ends):
   s_k = median(h_{k-w..k+w}), w = window // 2. A median keeps a sharp edge where it is
   and removes single-bin noise.
2. The plateau level is P = median{ s_k : s_k >= alpha max_k s_k } (alpha = 1/2 default):
   the typical height of the bins that are at least half as high as the highest one.
3. Starting from the bin k0 = argmax_k s_k, walk down (up) in k while s_k >= alpha P.
   The first bin below, k-1 (k+1), and the last bin above, k, bracket the edge; the edge
   ln lambda_min (ln lambda_max) is the linear interpolation between c_{k-1} and c_k
   (c_k and c_{k+1}) of s at the level alpha P.
4. If the walk reaches the first (last) bin without falling below alpha P the edge is not
   inside the histogram range and is returned as nan.

So lambda_min is where the smoothed density of ln lambda falls to half of its plateau
level: for a sharp cut-off it is the cut-off itself (to within 0.1 bin widths plus noise),
for a linear ramp in ln lambda it is the middle of the ramp.
"""
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from kmc.statistics import mean_sem


def rate_histogram(rates_list, bins, log=True, range=None):
    """Density of rates (or of ln rates) over realizations, mean and standard error per bin.

    Parameters
    ----------
    rates_list : sequence of (n_r,) float arrays
        Rates of each realization (all > 0 when ``log``).
    bins : int or (B + 1,) float
        Number of bins, or the edges (in ln lambda when ``log``, else in lambda).
    log : bool
        Histogram of ln lambda (density per unit ln lambda) or of lambda (per unit lambda).
    range : (float, float) or None
        Range of the variable when ``bins`` is an int; None = the range of all rates
        widened by 5% of its span on each side, so that cut-offs at the extreme rates lie
        inside the histogram and ``plateau_edges`` can find them.

    Returns
    -------
    edges : (B + 1,) float
        Bin edges of the variable (ln lambda or lambda).
    mean : (B,) float
        Mean over realizations of the normalized density.
    sem : (B,) float
        Standard error of the mean (nan with one realization).
    """
    values = []
    for r, rates in enumerate(rates_list):
        rates = np.asarray(rates, dtype=float).ravel()
        if log:
            if np.any(rates <= 0) or not np.all(np.isfinite(rates)):
                raise ValueError(f"rates_list[{r}]: log histogram needs finite rates > 0; "
                                 f"got {np.count_nonzero(rates <= 0)} rates <= 0 (drop "
                                 "unstable modes first, see SpectrumResult.n_positive)")
            rates = np.log(rates)
        values.append(rates)
    if not values:
        raise ValueError("rates_list: need at least one realization")
    if np.ndim(bins) == 0:
        if range is None:
            lo, hi = min(v.min() for v in values), max(v.max() for v in values)
            pad = 0.05 * (hi - lo)
            range = (lo - pad, hi + pad)
        edges = np.linspace(range[0], range[1], int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=float)
    widths = np.diff(edges)
    dens = np.array([np.histogram(v, edges)[0] / (v.size * widths) for v in values])
    mean, sem = mean_sem(dens)
    return edges, mean, sem


def _running_median(values, window):
    half = int(window) // 2
    n = values.size
    return np.array([np.median(values[max(0, k - half):min(n, k + half + 1)])
                     for k in np.arange(n)])


def plateau_edges(edges, density, alpha=0.5, window=5):
    """lambda_min and lambda_max as the plateau edges of the ln(lambda) histogram.

    The definition is written out in the module docstring (steps 1-4).

    Parameters
    ----------
    edges : (B + 1,) float
        Bin edges in ln lambda (from ``rate_histogram(..., log=True)``).
    density : (B,) float
        Density per unit ln lambda (the mean over realizations).
    alpha : float
        Fraction of the plateau level that defines the edges (0 < alpha < 1).
    window : int
        Running-median window in bins (odd; 1 = no smoothing).

    Returns
    -------
    lambda_min, lambda_max : float
        In units of the rates; nan where the edge is outside the histogram range.
    """
    edges = np.asarray(edges, dtype=float)
    h = np.asarray(density, dtype=float)
    if edges.size != h.size + 1:
        raise ValueError(f"edges: expected {h.size + 1} values for {h.size} bins, got {edges.size}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    centres = 0.5 * (edges[1:] + edges[:-1])
    s = _running_median(h, window)
    top = np.max(s)
    if not top > 0:
        return np.nan, np.nan
    level = alpha * np.median(s[s >= alpha * top])
    k0 = int(np.argmax(s))

    def crossing(inside, outside):
        frac = (level - s[outside]) / (s[inside] - s[outside])
        return centres[outside] + frac * (centres[inside] - centres[outside])

    k = k0
    while k > 0 and s[k - 1] >= level:
        k -= 1
    low = np.nan if k == 0 else np.exp(crossing(k, k - 1))
    k = k0
    while k < h.size - 1 and s[k + 1] >= level:
        k += 1
    high = np.nan if k == h.size - 1 else np.exp(crossing(k, k + 1))
    return float(low), float(high)


@dataclass(frozen=True)
class InverseRateFit:
    """Fit of the linear-scale density in the cut-off window.

    amplitude, amplitude_se : C and its standard error in p(lambda) = C / lambda
        (weighted least squares, weights 1/sem^2).
    chi2_dof : reduced chi^2 of the 1/lambda fit.
    exponent, exponent_se : beta and its standard error of the free power law
        p = C' lambda^-beta (a check that beta = 1).
    n_bins : number of bins used.
    """

    amplitude: float
    amplitude_se: float
    chi2_dof: float
    exponent: float
    exponent_se: float
    n_bins: int


def fit_inverse_rate(edges, mean, sem, lambda_min, lambda_max):
    """Fit C / lambda (and C' lambda^-beta) to a linear-scale rate density in a window.

    Parameters
    ----------
    edges : (B + 1,) float
        Bin edges in lambda (``rate_histogram(..., log=False)``).
    mean, sem : (B,) float
        Density per unit lambda and its standard error.
    lambda_min, lambda_max : float
        Window: bins whose centre lies inside are used.

    Returns
    -------
    InverseRateFit
    """
    edges = np.asarray(edges, dtype=float)
    centres = 0.5 * (edges[1:] + edges[:-1])
    sel = (centres >= lambda_min) & (centres <= lambda_max) & np.isfinite(sem)
    x, y, err = centres[sel], np.asarray(mean)[sel], np.asarray(sem)[sel]
    if x.size < 3:
        raise ValueError(f"window: need at least 3 bins inside [{lambda_min}, {lambda_max}], "
                         f"got {x.size}")
    positive = err[err > 0]
    # an empty bin has sem 0; give it the smallest nonzero error instead of infinite weight
    err = np.where(err > 0, err, positive.min() if positive.size else 1.0)
    w = 1.0 / err**2
    u = 1.0 / x
    amp = float(np.sum(w * u * y) / np.sum(w * u * u))
    amp_se = float(1.0 / np.sqrt(np.sum(w * u * u)))
    chi2 = float(np.sum(w * (y - amp * u) ** 2) / (x.size - 1))
    popt, pcov = scipy.optimize.curve_fit(lambda z, c, beta: c * (z / x[0]) ** -beta, x, y,
                                          p0=(amp / x[0], 1.0), sigma=err, absolute_sigma=True)
    return InverseRateFit(amplitude=amp, amplitude_se=amp_se, chi2_dof=chi2,
                          exponent=float(popt[1]), exponent_se=float(np.sqrt(pcov[1, 1])),
                          n_bins=int(x.size))


def paired_relative_error(rates_with, rates_without):
    """Relative error (lambda' - lambda) / lambda' of rates with (lambda') and without
    (lambda) the interaction term (Figs. 17-19), pairing the k-th smallest of each.

    Sorted pairing is exact when the interaction term is a small perturbation that does not
    reorder the rates; where it does, the error measures the shift of the distribution.

    Parameters
    ----------
    rates_with, rates_without : (N,) float

    Returns
    -------
    lam_with : (N,) float, sorted ascending
    rel_error : (N,) float
    """
    a = np.sort(np.asarray(rates_with, dtype=float))
    b = np.sort(np.asarray(rates_without, dtype=float))
    if a.shape != b.shape:
        raise ValueError(f"rates_without: expected shape {a.shape}, got {b.shape}")
    return a, (a - b) / a


BOOTSTRAP_SAMPLES = 200
BOOTSTRAP_SEED = 12345


def lambda_min_bootstrap(rates_list, bins, alpha, samples=BOOTSTRAP_SAMPLES,
                         seed=BOOTSTRAP_SEED):
    """lambda_min of a list of rate arrays and its robust bootstrap standard error.

    The one definition of the error of lambda_min (point summaries, Table I, ``kmc show``):
    ``samples`` resamples (fixed seed) of the R realizations with replacement, lambda_min of
    each on the bins of the full ensemble, and SE(ln lambda_min) = 1.4826 x the median
    absolute deviation of the finite resampled ln lambda_min, so lambda_min_se = lambda_min
    x that. A plain standard deviation of the resamples is not used: a few resamples whose
    edge search lands on another shoulder (small N, few realizations) inflate it by orders
    of magnitude; 1.4826 MAD equals the standard deviation for normal resamples.

    Parameters
    ----------
    rates_list : sequence of (n_r,) float arrays, all > 0
    bins : int
        Bins of the ln(lambda) histogram.
    alpha : float
        Plateau-edge level (``plateau_edges``).

    Returns
    -------
    lambda_min, lambda_min_se : float
        The SE is nan with fewer than 2 realizations, no lower edge or fewer than 2 finite
        resamples.
    """
    edges, mean, _ = rate_histogram(rates_list, bins, log=True)
    lmin = plateau_edges(edges, mean, alpha=alpha)[0]
    if len(rates_list) < 2 or not np.isfinite(lmin):
        return lmin, np.nan
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(samples):
        pick = rng.integers(0, len(rates_list), len(rates_list))
        _, m, _ = rate_histogram([rates_list[i] for i in pick], edges, log=True)
        boot.append(plateau_edges(edges, m, alpha=alpha)[0])
    logs = np.log(np.array(boot))
    logs = logs[np.isfinite(logs)]
    if logs.size < 2:
        return lmin, np.nan
    mad = np.median(np.abs(logs - np.median(logs)))
    return lmin, lmin * 1.4826 * float(mad)


def typical_median(rates_list):
    """Geometric mean over realizations of the per-realization median rate.

    An arithmetic mean of medians that spread over decades is dominated by its largest
    member and grows when the medians fluctuate more, i.e. at small N (it faked a size
    trend); ln median_r has a nearly symmetric distribution, so its mean does not drift.

    Parameters
    ----------
    rates_list : sequence of (n_r,) float arrays, all > 0

    Returns
    -------
    median_rate : float
        exp(mean_r ln median_r).
    median_rate_se : float
        median_rate * std_r(ln median_r) / sqrt(R) (ddof = 1, delta method); nan for R = 1.
    """
    # the median of ln(rates): for an even count it averages the two middle values in
    # ln lambda, not in lambda (that would bias small realizations upward)
    logs = np.array([np.median(np.log(r)) for r in rates_list])
    value = float(np.exp(logs.mean()))
    se = float(logs.std(ddof=1) / np.sqrt(logs.size)) if logs.size > 1 else np.nan
    return value, value * se
