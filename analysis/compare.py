"""Simulated relaxation against the linearized mean-field prediction (the paper's cross-check).

For each realization the initial deviation c_i = <x_i(t_0)> - x_i^eq is measured from the
simulation (x = sigma_i for the TLS glass, n_i for the electron glass) at the first sample
time t_0, which must be short compared with 1/lambda_max (``compare`` reports t_0 lambda_max);
x^eq is the simulation's equilibrium baseline at the final temperature. The prediction with
the mean-field rates at the final T is

    TLS glass:      |dsigma|(t) = sum_i |c_i| e^(-lambda_i (t - t_0))     (Eq. 15)
    electron glass: |dn|(t) = sum_i |(e^(A (t - t_0)) c)_i|               (Eqs. 22-23)

The simulated curve is the replica-averaged estimator sum_i |mean_R x_i(t) - x_i^eq|, which
does not decay to 0 but to a noise floor of about sum_i sqrt(2/pi) sqrt(var_i / R). The
prediction is therefore given for that same estimator: site by site the mean of a folded
normal with centre m_i(t) = c_i e^(-lambda_i t) and variance var_i(t)/R, var_i = 1 - (x^eq_i +
m_i)^2 for sigma = +-1 (TLS) and n(1 - n) for n in {0, 1} (electron glass), the normal
approximation of the replica average; ``predicted_raw`` is the noiseless sum above. The
initial deviation c_i is itself a replica average, so the prediction inherits its noise.

and its logarithmic form -c [gamma_E + ln(lambda_min t)] / ln(lambda_max / lambda_min) with
c = sum_i |c_i| (docs/model.md section 3). Inside the window 1/lambda_max < t < 1/lambda_min the
comparison reports the largest relative deviation |sim - pred| / pred and the slopes
d|dx|/d ln t of the simulated and predicted curves (weighted least squares, weights 1/se^2
for the simulation, unweighted for the prediction), beside the log form's slope
-c / ln(lambda_max / lambda_min).
"""
from dataclasses import dataclass

import numpy as np
import scipy.special

from .relaxation import log_form


def folded_normal_mean(centre, std):
    """E|X| for X ~ Normal(centre, std^2), elementwise (std = 0 gives |centre|)."""
    centre = np.asarray(centre, dtype=float)
    std = np.asarray(std, dtype=float)
    safe = np.where(std > 0, std, 1.0)
    z = centre / safe
    folded = (safe * np.sqrt(2.0 / np.pi) * np.exp(-0.5 * z * z)
              + centre * scipy.special.erf(z / np.sqrt(2.0)))
    return np.where(std > 0, folded, np.abs(centre))


def _estimator(deviation, equilibrium, replicas, spin):
    """Expected sum_i |replica mean - equilibrium| for deviations (T, N) (see module doc)."""
    mean = equilibrium + deviation
    var = np.clip(1.0 - mean**2 if spin else mean * (1.0 - mean), 0.0, None)
    return folded_normal_mean(deviation, np.sqrt(var / replicas)).sum(axis=-1)


def tls_prediction(rates, c, times, t0, equilibrium=None, replicas=None):
    """Predicted |dsigma|(t), (T,), from rates and c of shape (N,).

    Without ``equilibrium``/``replicas``: sum_i |c_i| e^(-lambda_i (t - t0)); with them:
    the expected replica-averaged estimator (module docstring).
    """
    dt = np.maximum(np.asarray(times, dtype=float) - t0, 0.0)
    decay = np.exp(-np.multiply.outer(dt, np.asarray(rates)))
    if replicas is None:
        return decay @ np.abs(c)
    return _estimator(decay * c, equilibrium, replicas, spin=True)


def electron_prediction(system, fields, mu, temperature, xi, gamma0, c, times, t0,
                        equilibrium=None, replicas=None):
    """Predicted |dn|(t): sum_i |(e^(A (t - t0)) c)_i| with A of Eqs. 22-23 (no interaction
    term), or the expected replica-averaged estimator with ``equilibrium``/``replicas``.

    dx/dt = A x is integrated with an implicit stiff solver (BDF, exact Jacobian A,
    rtol 1e-8): the eigendecomposition route through the symmetrized matrix needs
    D^-1/2 c, whose condition number e^(|E|/2T) destroys the slow modes when some
    occupations are frozen.
    """
    from scipy.integrate import solve_ivp

    from kmc.solvers.linear import electron_rate_matrix
    a = electron_rate_matrix(system, fields, mu, temperature, xi, gamma0)
    dt = np.maximum(np.asarray(times, dtype=float) - t0, 0.0)
    c = np.asarray(c, dtype=float)
    later = dt > 0
    x = np.tile(c, (dt.size, 1))
    if later.any():
        sol = solve_ivp(lambda _, y: a @ y, (0.0, dt[later][-1]), c, method="BDF",
                        t_eval=dt[later], jac=a, rtol=1e-8, atol=1e-12 * max(1.0, np.abs(c).max()))
        x[later] = sol.y.T
    if replicas is None:
        return np.abs(x).sum(axis=1)
    return _estimator(x, equilibrium, replicas, spin=False)


@dataclass(frozen=True)
class Comparison:
    """Simulated versus predicted relaxation on the simulation's time grid.

    times, simulated, simulated_se, predicted, predicted_se, log : (T,) float
    lambda_min, lambda_max : float, the window 1/lambda_max < t < 1/lambda_min
    in_window : (T,) bool
    max_rel_deviation : float, max over the window of |sim - pred| / pred (nan if empty)
    slope_simulated, slope_simulated_se, slope_predicted, slope_log : float, per ln t
    t0_lambda_max : float, first sample time times lambda_max (should be << 1)
    """

    times: np.ndarray
    simulated: np.ndarray
    simulated_se: np.ndarray
    predicted: np.ndarray
    predicted_se: np.ndarray
    log: np.ndarray
    lambda_min: float
    lambda_max: float
    in_window: np.ndarray
    max_rel_deviation: float
    slope_simulated: float
    slope_simulated_se: float
    slope_predicted: float
    slope_log: float
    t0_lambda_max: float


def _slope(x, y, se=None):
    if x.size < 2:
        return np.nan, np.nan
    w = np.ones_like(y) if se is None or not np.all(se > 0) else 1.0 / se**2
    xm = np.sum(w * x) / np.sum(w)
    sxx = np.sum(w * (x - xm) ** 2)
    slope = np.sum(w * (x - xm) * y) / sxx
    return float(slope), float(np.sqrt(1.0 / sxx)) if se is not None else np.nan


def compare(times, simulated, simulated_se, predicted, predicted_se, c0, lambda_min, lambda_max):
    """Build the Comparison of ensemble curves (see the module docstring)."""
    times = np.asarray(times, dtype=float)
    window = (times > 1.0 / lambda_max) & (times < 1.0 / lambda_min)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(simulated - predicted) / predicted
    lt = np.log(times[window])
    s_sim, s_sim_se = _slope(lt, simulated[window], simulated_se[window])
    s_pred, _ = _slope(lt, predicted[window])
    return Comparison(times=times, simulated=simulated, simulated_se=simulated_se,
                      predicted=predicted, predicted_se=predicted_se,
                      log=log_form(times, lambda_min, lambda_max, c0),
                      lambda_min=float(lambda_min), lambda_max=float(lambda_max),
                      in_window=window,
                      max_rel_deviation=float(np.max(rel[window])) if window.any() else np.nan,
                      slope_simulated=s_sim, slope_simulated_se=s_sim_se,
                      slope_predicted=s_pred,
                      slope_log=float(-c0 / np.log(lambda_max / lambda_min)),
                      t0_lambda_max=float(times[0] * lambda_max))


def window_from_rates(rates_list, lambda_min, lambda_max):
    """The comparison window: the plateau edges where they exist, else the 1st and 99th
    percentiles of all rates (a narrow Delta0 range has no plateau edge inside the data)."""
    allr = np.concatenate([r[np.isfinite(r) & (r > 0)] for r in rates_list])
    lo = lambda_min if np.isfinite(lambda_min) else float(np.percentile(allr, 1))
    hi = lambda_max if np.isfinite(lambda_max) else float(np.percentile(allr, 99))
    return lo, hi
