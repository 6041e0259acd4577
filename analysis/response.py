"""Estimators of the linear-response experiment (docs/linear-response.md, docs/model.md section 4).

The measurement
---------------
A perturbed ensemble (bias pulse F g for t_w, removed at t = 0) and an unperturbed twin
ensemble start from the same prepared state. With x = sigma = 2 S (TLS glass) or n (electron
glass) the signed projection is

    P(t) = sum_i g_i (<x_i(t)> - <x_i(t)>_twin),

whose noise averages to zero (no noise floor, unlike sum_i |.|), and the twin removes
whatever the prepared state does on its own (drift, aging) to first order.

Standard errors
---------------
- over replicas, ``paired=True``: the standard error of the mean of the replica
  differences p_r - p'_r (std ddof=1 / sqrt(R)). Valid when the pairs (r, r) are
  independent across r: replica r of both ensembles starts from the same configuration and
  uses its own random stream (the "response" protocol gives replica r of the perturbed and
  of the twin ensemble the same stream, so they share their randomness until the first event
  that the perturbation changes; the pairing then removes that common noise);
- over replicas, ``paired=False``: sqrt(SE_p^2 + SE_twin^2), for independent ensembles;
- over realizations: ``combine`` takes the mean of the per-realization P(t) and the spread
  between realizations / sqrt(K) (contains the replica noise and the disorder variance).

Aging and the E1 form
---------------------
For relaxation rates with density 1/lambda on [lambda_min, lambda_max] (docs/model.md
section 3) the pulse response is

    P(t) = -c [Phi(t) - Phi(t + t_w)],  Phi(t) = [E1(lambda_min t) - E1(lambda_max t)] / L,
    L = ln(lambda_max / lambda_min)

(Phi = ``analysis.relaxation.e1_form`` with c = 1), which for 1/lambda_max << t, t_w <<
1/lambda_min is -(c/L) ln(1 + t_w/t): a function of t/t_w alone (Amir, Oreg, Imry,
PNAS 109, 1850 (2012)). ``fit_log_aging`` fits that one amplitude to curves of several t_w;
``fit_e1`` fits c, lambda_min (and lambda_max) to one curve; ``bootstrap_e1`` gives the
error of ln lambda_min by resampling realizations.
"""
import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from analysis.relaxation import e1_form
from kmc.dynamics.stationarity import twin_drift  # noqa: F401  (the one definition, in kmc)
from kmc.statistics import mean_sem

# Robust bootstrap spread: 1.4826 MAD is the standard deviation of a normal sample, and is
# not inflated by the few resamples whose fit runs to a bound (analysis/table1.py does the
# same for lambda_min of the spectra).
_MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Estimate:
    """A curve with its standard error. mean, stderr : (T,) float; n : samples used."""

    mean: np.ndarray
    stderr: np.ndarray
    n: int


def project(values, pattern):
    """Per-replica projections sum_i g_i x_i.

    Parameters
    ----------
    values : (R, T, N) float -- x_i(t) of every replica (sigma = 2 S, or n)
    pattern : (N,) float -- g

    Returns
    -------
    (R, T) float
    """
    return np.asarray(values, dtype=float) @ np.asarray(pattern, dtype=float)


def twin_difference(perturbed, twin, paired=True):
    """P(t) = mean_r p_r(t) - mean_r p'_r(t) with its standard error over replicas.

    Parameters
    ----------
    perturbed, twin : (R, T) float
        Per-replica projections (``project``) of the perturbed and of the twin ensemble.
    paired : bool
        True: replica r of both ensembles is a pair (same start, same stream); SE of the
        mean difference. False: independent ensembles (R may differ); errors added in
        quadrature.

    Returns
    -------
    Estimate
    """
    p = np.asarray(perturbed, dtype=float)
    q = np.asarray(twin, dtype=float)
    if paired:
        if p.shape != q.shape:
            raise ValueError(f"paired: perturbed {p.shape} and twin {q.shape} differ")
        mean, se = mean_sem(p - q)
        return Estimate(mean, se, p.shape[0])
    mp, sp = mean_sem(p)
    mq, sq = mean_sem(q)
    return Estimate(mp - mq, np.hypot(sp, sq), min(p.shape[0], q.shape[0]))


def combine(estimates):
    """Mean over realizations of per-realization P(t) and the error of that mean.

    One realization keeps its replica standard error.
    """
    estimates = list(estimates)
    if len(estimates) == 1:
        return estimates[0]
    mean, se = mean_sem(np.stack([e.mean for e in estimates]))
    return Estimate(mean, se, len(estimates))


# --- the E1 form and its fit --------------------------------------------------------------


def pulse_e1_form(times, waiting_time, lambda_min, lambda_max, c=1.0):
    """-c [Phi(t) - Phi(t + t_w)] (module docstring); t_w = inf gives -c Phi(t).

    Returns (T,) float, negative for c > 0 (a bias lowers x along g).
    """
    t = np.asarray(times, dtype=float)
    phi = e1_form(t, lambda_min, lambda_max)
    if math.isinf(waiting_time):
        return -c * phi
    return -c * (phi - e1_form(t + waiting_time, lambda_min, lambda_max))


def log_aging_form(times, waiting_time, amplitude=1.0):
    """-amplitude ln(1 + t_w/t): the pulse response inside the 1/lambda window."""
    return -amplitude * np.log1p(waiting_time / np.asarray(times, dtype=float))


@dataclass(frozen=True)
class E1Fit:
    """Weighted least-squares fit of ``pulse_e1_form``.

    c : float -- amplitude (units of P); lambda_min, lambda_max : float (units of 1/time)
    chi2 : float -- sum of squared weighted residuals; dof : int
    success : bool -- optimizer converged and lambda_min is not at a search bound
    """

    c: float
    lambda_min: float
    lambda_max: float
    chi2: float
    dof: int
    success: bool


def _best_amplitude(shape, y, w):
    """c minimising sum w^2 (y + c shape)^2 (shape = -pulse_e1_form with c = 1)."""
    den = np.sum((w * shape) ** 2)
    return -np.sum(w * w * shape * y) / den if den > 0 else 0.0


def fit_e1(times, values, errors, waiting_time, lambda_max=None, bounds=None):
    """Fit P(t) = -c [Phi(t) - Phi(t + t_w)] by weighted least squares (weights 1/SE).

    c enters linearly and is eliminated exactly (variable projection); ln lambda_min (and
    ln lambda_max unless given) are fitted, started from the best point of a grid.

    Parameters
    ----------
    times, values, errors : (T,) float -- the measured P(t) and its standard error (> 0)
    waiting_time : float -- t_w of the pulse (inf: relaxation from the adapted state)
    lambda_max : float or None -- fixed upper rate edge, or None to fit it
    bounds : (lo, hi) or None -- search range of the rates; default
        (1e-3 / t_max, 1e3 / t_min)

    Returns
    -------
    E1Fit
    """
    t = np.asarray(times, dtype=float)
    y = np.asarray(values, dtype=float)
    w = 1.0 / np.asarray(errors, dtype=float)
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("errors: need finite standard errors > 0 at every time")
    lo, hi = bounds if bounds is not None else (1e-3 / t.max(), 1e3 / t.min())
    llo, lhi = math.log(lo), math.log(hi)

    def shape(p):
        lmin = math.exp(p[0])
        lmax = lambda_max if lambda_max is not None else math.exp(p[1])
        return -pulse_e1_form(t, waiting_time, lmin, lmax), lmin, lmax

    def residual(p):
        if lambda_max is None and p[1] <= p[0] + 1e-6:
            return np.full(t.size, 1e6)
        s, _, _ = shape(p)
        with np.errstate(over="ignore", invalid="ignore"):
            r = w * (y + _best_amplitude(s, y, w) * s)
        # a shape that overflows the weights is as bad a fit as the guard above
        return r if np.all(np.isfinite(r)) else np.full(t.size, 1e6)

    grid = np.linspace(llo, lhi, 25)
    if lambda_max is None:
        starts = [(a, b) for a in grid for b in grid if b > a + 1.0]
    else:
        starts = [(a,) for a in grid if math.exp(a) < lambda_max]
    start = min(starts, key=lambda p: np.sum(residual(np.array(p)) ** 2))
    k = len(start)
    res = scipy.optimize.least_squares(residual, np.array(start, dtype=float),
                                       bounds=([llo] * k, [lhi] * k), x_scale=1.0)
    s, lmin, lmax = shape(res.x)
    c = _best_amplitude(s, y, w)
    at_bound = abs(res.x[0] - llo) < 1e-6 or abs(res.x[0] - lhi) < 1e-6
    chi2 = float(np.sum(res.fun**2))
    return E1Fit(float(c), lmin, float(lmax), chi2, int(t.size - k - 1),
                 bool(res.success and not at_bound))


def bootstrap_e1(times, curves, waiting_time, lambda_max=None, n_boot=200, seed=0,
                 bounds=None, errors=None):
    """lambda_min of the realization mean with a bootstrap error over realizations.

    Parameters
    ----------
    times : (T,) float
    curves : (K, T) float -- per-realization P(t) (K >= 2 realizations)
    waiting_time, lambda_max, bounds : as in ``fit_e1``
    n_boot : int -- resamples (fixed ``seed``)
    errors : (T,) float or None -- fixed weights 1/errors for every fit (e.g. the KMC
        standard errors when fitting the deterministic linear prediction, whose spread over
        realizations would give the late, nearly vanishing times absurd weights); None:
        the standard error of each sample's mean

    Returns
    -------
    fit : E1Fit -- on the mean of all K curves, weights 1 / (their standard error)
    se_log : float -- 1.4826 MAD of ln lambda_min over the resamples that fitted
        (``success``), the robust standard error of ln lambda_min
    n_ok : int -- resamples used
    """
    curves = np.asarray(curves, dtype=float)
    k = curves.shape[0]
    if k < 2:
        raise ValueError(f"curves: need >= 2 realizations for a bootstrap, got {k}")
    mean, se = mean_sem(curves)
    if errors is not None:
        se = np.asarray(errors, dtype=float)
    fit = fit_e1(times, mean, se, waiting_time, lambda_max, bounds)
    rng = np.random.default_rng(seed)
    logs = []
    for _ in range(n_boot):
        sample = curves[rng.integers(0, k, k)]
        m, s = mean_sem(sample)
        if errors is not None:
            s = se
        if not np.all(s > 0):
            continue
        f = fit_e1(times, m, s, waiting_time, lambda_max, bounds)
        if f.success:
            logs.append(math.log(f.lambda_min))
    logs = np.array(logs)
    se_log = float(_MAD_TO_SD * np.median(np.abs(logs - np.median(logs)))) if logs.size \
        else math.nan
    return fit, se_log, int(logs.size)


# --- aging ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgingFit:
    """One amplitude A of -A ln(1 + t_w/t) for all curves, with its standard error.

    amplitude, stderr : float; chi2 : float; dof : int; window : (t_lo, t_hi) used
    """

    amplitude: float
    stderr: float
    chi2: float
    dof: int
    window: tuple


def fit_log_aging(curves, window=None):
    """Fit -A ln(1 + t_w/t) jointly to curves of several waiting times.

    Parameters
    ----------
    curves : dict {t_w: (times, Estimate)}
    window : (t_lo, t_hi) or None -- only times inside it are used (the log form holds for
        1/lambda_max << t, t_w << 1/lambda_min); None uses every time. Times whose
        standard error is 0 or not finite (e.g. two identical realizations) are left out.

    Returns
    -------
    AgingFit (linear weighted least squares: A = sum w^2 f y / sum w^2 f^2)
    """
    num = den = 0.0
    rows = []
    lo, hi = window if window is not None else (0.0, math.inf)
    for t_w, (times, est) in curves.items():
        t = np.asarray(times, dtype=float)
        # a point without a positive, finite standard error carries no usable weight
        keep = (t >= lo) & (t <= hi) & np.isfinite(est.stderr) & (est.stderr > 0)
        f = log_aging_form(t[keep], t_w)
        y, w = est.mean[keep], 1.0 / est.stderr[keep]
        num += np.sum(w * w * f * y)
        den += np.sum((w * f) ** 2)
        rows.append((f, y, w))
    if not den > 0:
        raise ValueError("curves: no sampled time with a positive standard error and a "
                         "nonzero log form; nothing to fit")
    amp = num / den
    chi2 = float(sum(np.sum((w * (y - amp * f)) ** 2) for f, y, w in rows))
    dof = int(sum(f.size for f, _, _ in rows) - 1)
    return AgingFit(float(amp), float(1.0 / math.sqrt(den)), chi2, dof, (lo, hi))


def plot_aging(ax, curves, fit=None):
    """Draw P(t) against t/t_w for every t_w with error bands, and the fitted log form.

    Parameters
    ----------
    ax : matplotlib Axes
    curves : dict {t_w: (times, Estimate)}
    fit : AgingFit or None
    """
    xs = []
    for t_w, (times, est) in sorted(curves.items()):
        x = np.asarray(times, dtype=float) / t_w
        xs.append(x)
        line, = ax.plot(x, est.mean, lw=1.0, label=f"t_w = {t_w:.3g}")
        ax.fill_between(x, est.mean - est.stderr, est.mean + est.stderr,
                        color=line.get_color(), alpha=0.25, lw=0)
    if fit is not None:
        x = np.logspace(np.log10(min(v.min() for v in xs)), np.log10(max(v.max() for v in xs)),
                        200)
        ax.plot(x, log_aging_form(x, 1.0, fit.amplitude), "k--", lw=1.0,
                label=f"-A ln(1 + t_w/t), A = {fit.amplitude:.3g} +- {fit.stderr:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("t / t_w")
    ax.set_ylabel("P(t)")
    ax.legend(fontsize=7)


# --- result files -------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponsePoint:
    """The response of one point of a result file, over its converged realizations.

    waiting_time : float; times : (T,) float
    measured : Estimate -- realization mean of the per-realization P(t) (``combine``)
    predicted, predicted_no_f : (T,) float or None -- realization mean of the linear
        prediction (TLS with / without f; electron: ``predicted`` only)
    drift, drift_stderr : (K,) float -- each realization's twin energy drift over the window
    """

    waiting_time: float
    times: np.ndarray
    measured: Estimate
    predicted: np.ndarray | None
    predicted_no_f: np.ndarray | None
    drift: np.ndarray
    drift_stderr: np.ndarray


def response_points(path):
    """ResponsePoint of every point of a ``protocol = "response"`` result file."""
    import kmc
    res = kmc.load(path)
    out = []
    for p, point in enumerate(res.points):
        means = res.rows("dynamics/response", p)
        errors = res.rows("dynamics/response_stderr", p)
        measured = combine(Estimate(m, s, 1) for m, s in zip(means, errors))

        def mean_of(name, p=p):
            try:
                rows = res.rows(f"dynamics/{name}", p)
            except KeyError:
                return None
            return np.nanmean(rows, axis=0) if rows.size else None

        out.append(ResponsePoint(point.config.dynamics.waiting_time,
                                 res.dataset("dynamics/times", p), measured,
                                 mean_of("response_predicted"),
                                 mean_of("response_predicted_no_f"),
                                 res.rows("dynamics/twin_energy_drift", p),
                                 res.rows("dynamics/twin_energy_drift_stderr", p)))
    return out


def aging_figure(path, out=None, window=None):
    """P(t) against t/t_w for every waiting time of a response result file: the KMC curves
    with error bands, the linear predictions (dashed: with f, dotted: without), and the
    jointly fitted -A ln(1 + t_w/t). Written next to the file as <stem>_aging.png.

    Returns (output path, AgingFit).
    """
    from pathlib import Path

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    points = response_points(path)
    curves = {pt.waiting_time: (pt.times, pt.measured) for pt in points}
    fit = fit_log_aging(curves, window)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    plot_aging(ax, curves, fit)
    for line, pt in zip(ax.get_lines(), sorted(points, key=lambda q: q.waiting_time)):
        x = pt.times / pt.waiting_time
        if pt.predicted is not None:
            ax.plot(x, pt.predicted, "--", color=line.get_color(), lw=0.8)
        if pt.predicted_no_f is not None:
            ax.plot(x, pt.predicted_no_f, ":", color=line.get_color(), lw=0.8)
    ax.set_title("pulse response: KMC (bands), linear prediction (dashed: with f, "
                 "dotted: without)", fontsize=8)
    fig.tight_layout()
    out = Path(out) if out else Path(path).with_name(Path(path).stem + "_aging.png")
    fig.savefig(out)
    plt.close(fig)
    return out, fit
