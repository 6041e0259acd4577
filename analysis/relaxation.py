"""Relaxation predicted from the rates: |dsigma|(t) = sum_i c_i e^(-lambda_i t) (Eq. 15)
and its continuum forms (Eqs. 16-17, 24; docs/model.md section 3).

With p(lambda) = 1 / (lambda ln(lambda_max/lambda_min)) on [lambda_min, lambda_max] and a
uniform initial deviation c (normalized so that |dsigma|(0) = c)::

    e1_form  = c [E1(lambda_min t) - E1(lambda_max t)] / ln(lambda_max/lambda_min)
    log_form = -c [gamma_E + ln(lambda_min t)] / ln(lambda_max/lambda_min)
               (valid for 1/lambda_max << t << 1/lambda_min)

The paper writes Eq. 17 without the 1/ln(lambda_max/lambda_min) normalization (it absorbs
it in c); here c is always the t = 0 value, so the prediction from the rates with the
default c_i = 1/N and both forms are on the same scale. Times are in the inverse units
of the rates.
"""
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.special

from kmc.statistics import mean_sem

# Rows of the (times x rates) exponential evaluated at once; bounds the memory to
# _CHUNK * N doubles for long time grids.
_CHUNK = 256


def log_time_grid(lambda_min, lambda_max, per_decade=10, margin=1.0):
    """Log-spaced times from 10^-margin / lambda_max to 10^margin / lambda_min.

    Returns
    -------
    (T,) float, units of 1 / rate
    """
    start = np.log10(1.0 / lambda_max) - margin
    stop = np.log10(1.0 / lambda_min) + margin
    return np.logspace(start, stop, int(np.ceil((stop - start) * per_decade)) + 1)


def relaxation_prediction(rates, c, times):
    """sum_i c_i e^(-lambda_i t) for one realization (Eq. 15).

    Parameters
    ----------
    rates : (N,) float
        Relaxation rates lambda_i (zero mode already excluded).
    c : (N,) float or None
        Initial deviations c_i; None = uniform c_i = 1/N, so the value at t = 0 is 1.
    times : (T,) float

    Returns
    -------
    (T,) float
    """
    rates = np.asarray(rates, dtype=float).ravel()
    c = np.full(rates.size, 1.0 / rates.size) if c is None else np.asarray(c, dtype=float)
    if c.shape != rates.shape:
        raise ValueError(f"c: expected shape {rates.shape}, got {c.shape}")
    times = np.asarray(times, dtype=float)
    out = np.empty(times.size)
    for start in range(0, times.size, _CHUNK):
        t = times[start:start + _CHUNK]
        out[start:start + _CHUNK] = np.exp(-np.multiply.outer(t, rates)) @ c
    return out


def ensemble_prediction(rates_list, times, c_list=None):
    """Mean over realizations of ``relaxation_prediction`` and its standard error.

    Parameters
    ----------
    rates_list : sequence of (N_r,) float
    times : (T,) float
    c_list : sequence of (N_r,) float or None
        Per-realization initial deviations; None = uniform 1/N_r.

    Returns
    -------
    curves : (R, T) float
        One curve per realization.
    mean, sem : (T,) float
        Ensemble mean and standard error (ddof = 1; nan for one realization).
    """
    if c_list is None:
        c_list = [None] * len(rates_list)
    curves = np.array([relaxation_prediction(r, c, times) for r, c in zip(rates_list, c_list)])
    mean, sem = mean_sem(curves)
    return curves, mean, sem


def propagate_linear(matrix, x0, times, scale=None):
    """Deviation vector x(t) = e^(A t) x0 of the linearized dynamics dx/dt = A x.

    The full prediction for a measured initial deviation when the modes are not single
    sites (electron glass; TLS glass with the interaction term): |dx|(t) = sum_i |x_i(t)|
    (docs/model.md section 4) is ``np.abs(x).sum(axis=1)``.

    Parameters
    ----------
    matrix : (N, N) float
        A itself (general eigendecomposition, A = V e^(mu t) V^-1), or, with ``scale``, a
        symmetric S with A = diag(scale) S diag(scale)^-1 (symmetric eigendecomposition;
        e.g. ``kmc.solvers.linear.electron_symmetric_matrix``).
    x0 : (N,) float
        Initial deviation (for the electron glass, sum(x0) = 0 keeps the conserved mode
        unexcited).
    times : (T,) float
    scale : (N,) float or None

    Returns
    -------
    (T, N) float
        x(t_k) for every time.
    """
    x0 = np.asarray(x0, dtype=float)
    times = np.asarray(times, dtype=float)
    if scale is not None:
        scale = np.asarray(scale, dtype=float)
        mu, u = scipy.linalg.eigh(matrix, check_finite=False)
        coeff = u.T @ (x0 / scale)
        return (np.exp(np.multiply.outer(times, mu)) * coeff) @ u.T * scale
    mu, v = scipy.linalg.eig(matrix, check_finite=False)
    coeff = np.linalg.solve(v, x0.astype(complex))
    x = (np.exp(np.multiply.outer(times, mu)) * coeff) @ v.T
    return x.real


def e1_form(times, lambda_min, lambda_max, c=1.0):
    """Exact continuum form c [E1(lambda_min t) - E1(lambda_max t)] / ln(lambda_max/lambda_min).

    Equals c at t = 0 and the mean of e^(-lambda t) over the 1/lambda density.
    """
    t = np.asarray(times, dtype=float)
    norm = np.log(lambda_max / lambda_min)
    with np.errstate(divide="ignore", invalid="ignore"):
        val = (scipy.special.exp1(lambda_min * t) - scipy.special.exp1(lambda_max * t)) / norm
    return c * np.where(t > 0, val, 1.0)


def log_form(times, lambda_min, lambda_max, c=1.0):
    """Asymptotic form -c [gamma_E + ln(lambda_min t)] / ln(lambda_max/lambda_min) (Eq. 17),
    valid for 1/lambda_max << t << 1/lambda_min."""
    t = np.asarray(times, dtype=float)
    return -c * (np.euler_gamma + np.log(lambda_min * t)) / np.log(lambda_max / lambda_min)


@dataclass(frozen=True)
class RelaxationSeries:
    """Predicted relaxation on a time grid, ready to store as time series.

    times : (T,) float, units of 1 / rate
    mean, sem : (T,) float -- ensemble mean of sum_i c_i e^(-lambda_i t) and its error
    e1, log : (T,) float -- e1_form and log_form with the given cut-offs and c = mean[0]
    lambda_min, lambda_max : float -- cut-offs used
    n_realizations : int
    """

    times: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    e1: np.ndarray
    log: np.ndarray
    lambda_min: float
    lambda_max: float
    n_realizations: int


def relaxation_series(rates_list, lambda_min, lambda_max, times=None, c_list=None):
    """Ensemble prediction with its E1 and logarithmic forms on one time grid.

    Parameters
    ----------
    rates_list : sequence of (N_r,) float
    lambda_min, lambda_max : float
        Cut-offs (e.g. from ``analysis.rates.plateau_edges``).
    times : (T,) float or None
        None = ``log_time_grid(lambda_min, lambda_max)``.
    c_list : sequence of (N_r,) float or None

    Returns
    -------
    RelaxationSeries
    """
    if times is None:
        times = log_time_grid(lambda_min, lambda_max)
    times = np.asarray(times, dtype=float)
    _, mean, sem = ensemble_prediction(rates_list, times, c_list)
    c0 = float(np.mean([np.sum(c) if c is not None else 1.0
                        for c in (c_list or [None] * len(rates_list))]))
    return RelaxationSeries(times=times, mean=mean, sem=sem,
                            e1=e1_form(times, lambda_min, lambda_max, c0),
                            log=log_form(times, lambda_min, lambda_max, c0),
                            lambda_min=float(lambda_min), lambda_max=float(lambda_max),
                            n_realizations=len(rates_list))
