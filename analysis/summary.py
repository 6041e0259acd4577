"""Point summaries of a finished result file, written back into it (``summarise``).

Everything here is recomputed from the committed rows (converged realizations only), so a
resumed run and an uninterrupted one end with the same summaries. The ``kmc`` command calls
``summarise`` after the pipeline has written the rows (``analysis.run``); the storage layer
only writes what is computed here (``kmc.storage.store.write_derived``).

``dos/`` (always)
    mean, sem; attrs n_used         normalised DOS over realizations (``analysis.dos``)
``linear/`` (with a [linear] table)
    log_edges, log_mean, log_sem    density of ln(lambda), mean and standard error per bin
    lin_edges, lin_mean, lin_sem    density of lambda in the cut-off window
                                    [lambda_min, min(lambda_max, 10 lambda_min)]
    attrs lambda_min, lambda_max    plateau edges (``analysis.rates.plateau_edges``)
    attrs lambda_min_se             robust bootstrap (``analysis.rates.lambda_min_bootstrap``)
    attrs median_rate, median_rate_se   typical median rate (``analysis.rates.typical_median``)
    attrs fit_*                     the 1/lambda fit in the window (``analysis.rates``)
    relaxation/times, mean, sem, e1, log   predicted |dsigma|(t) with uniform c_i = 1/N
``dynamics/ensemble/`` (with a [dynamics] table)
    <observable>, <observable>_stderr  mean over realizations and its standard error
``comparison/`` (with both)
    simulated relaxation against the linear prediction (``analysis.compare``)
"""
import warnings

import numpy as np

import kmc
from kmc.dynamics.electron_engine import hop_pairs
from kmc.statistics import mean_sem
from kmc.storage import store
from kmc.storage.results import COMPARISON_CURVES, COMPARISON_SCALARS
from kmc.storage.schema import DYNAMICS_CURVES

from . import compare as cmp
from . import rates as ra
from .dos import normalised_dos
from .relaxation import relaxation_series

WINDOW_DECADES = 1.0


def summarise(path, realizations=None):
    """Compute every point summary of a result file and write them into it.

    Parameters
    ----------
    path : result file written by ``kmc.pipeline.run.run`` (no run writing it)
    realizations : int or None
        Use the first ``realizations`` rows of each point (the ensemble the run asked
        for); None = every row in the file.
    """
    res = kmc.load(path)
    derived = {p: point_summary(res, p, realizations) for p in range(len(res.points))}
    store.write_derived(path, derived)


def point_summary(res, p, realizations=None):
    """(datasets, attrs) of point ``p``: the argument of ``store.write_derived``."""
    config = res.points[p].config
    datasets, attrs = {}, {}
    ok = res.converged(p, realizations)
    edges = res.dataset("dos/edges", p)
    if ok.size:
        mean, sem = normalised_dos(res.rows("dos/counts", p, realizations), edges,
                                   config.model.N)
    else:
        mean = sem = np.full(edges.size - 1, np.nan)
    datasets.update({"dos/mean": mean, "dos/sem": sem})
    attrs["dos"] = {"n_used": ok.size}
    if ok.size == 0:
        return datasets, attrs
    linear = dynamics = None
    if config.linear.enabled:
        linear = _linear(res, p, realizations, config, datasets, attrs)
    if config.dynamics.enabled:
        dynamics = _dynamics(res, p, realizations, datasets, attrs)
    if linear is not None and dynamics is not None:
        _comparison(res, p, realizations, config, linear, dynamics, datasets, attrs)
    return datasets, attrs


def rate_summary(rates_list, bins, alpha):
    """Histograms, cut-offs, 1/lambda fit and speed measures of a list of rate arrays."""
    positive = [r[np.isfinite(r) & (r > 0)] for r in rates_list]
    edges, mean, sem = ra.rate_histogram(positive, bins, log=True)
    lmin, lmax = ra.plateau_edges(edges, mean, alpha=alpha)
    out = {"log": (edges, mean, sem), "lambda_min": lmin, "lambda_max": lmax}
    out["median_rate"], out["median_rate_se"] = ra.typical_median(positive)
    out["lambda_min_se"] = ra.lambda_min_bootstrap(positive, bins, alpha)[1]
    if np.isfinite(lmin):
        hi = lmax if np.isfinite(lmax) else np.inf
        hi = min(hi, lmin * 10 ** WINDOW_DECADES)
        lin = ra.rate_histogram(positive, 30, log=False, range=(lmin, hi))
        out["lin"] = lin
        try:
            out["fit"] = ra.fit_inverse_rate(*lin, lmin, hi)
        except (ValueError, RuntimeError):
            out["fit"] = None
    return out


def _linear(res, p, realizations, config, datasets, attrs):
    rates = res.rows("rates", p, realizations)
    s = rate_summary(list(rates), config.linear.bins, config.linear.alpha)
    for name, data in zip(("log_edges", "log_mean", "log_sem"), s["log"]):
        datasets[f"linear/{name}"] = data
    if "lin" in s:
        for name, data in zip(("lin_edges", "lin_mean", "lin_sem"), s["lin"]):
            datasets[f"linear/{name}"] = data
    a = {key: s[key] for key in ("lambda_min", "lambda_max", "lambda_min_se", "median_rate",
                                 "median_rate_se")}
    fit = s.get("fit")
    if fit is not None:
        for key in ("amplitude", "amplitude_se", "chi2_dof", "exponent", "exponent_se"):
            a[f"fit_{key}"] = getattr(fit, key)
    a["n_used"] = rates.shape[0]
    a["n_with_positive_eigenvalue"] = int(np.sum(res.rows("n_positive", p, realizations) > 0))
    if not (np.isfinite(s["lambda_min"]) and np.isfinite(s["lambda_max"])):
        # e.g. N = 2: one rate per realization has no plateau; say so instead of a bare NaN
        n_rates = int(sum(np.sum(np.isfinite(r) & (r > 0)) for r in rates))
        a["note"] = (f"lambda_min/lambda_max undefined: the ln(lambda) histogram of "
                     f"{n_rates} positive rate(s) has no plateau edge inside its range "
                     f"(more sites or realizations needed)")
        warnings.warn(f"point {p}: {a['note']}", stacklevel=2)
    attrs["linear"] = a
    if np.isfinite(s["lambda_min"]) and np.isfinite(s["lambda_max"]):
        n = rates.shape[1]
        series = relaxation_series(list(rates), s["lambda_min"], s["lambda_max"],
                                   c_list=[np.full(n, 1.0 / n)] * rates.shape[0])
        for name in ("times", "mean", "sem", "e1", "log"):
            datasets[f"linear/relaxation/{name}"] = getattr(series, name)
        attrs["linear/relaxation"] = {"c": "uniform c_i = 1/N (|dsigma|(0) = 1)"}
    return s


def _dynamics(res, p, realizations, datasets, attrs):
    out = {}
    for name in DYNAMICS_CURVES:
        means = res.rows(f"dynamics/{name}", p, realizations)
        if means.shape[0] > 1:
            mean, err = mean_sem(means)
        else:  # one realization: its replica standard error
            mean, err = means[0], res.rows(f"dynamics/{name}_stderr", p, realizations)[0]
        datasets[f"dynamics/ensemble/{name}"] = mean
        datasets[f"dynamics/ensemble/{name}_stderr"] = err
        out[name] = (mean, err)
    attrs["dynamics/ensemble"] = {
        "n_used": means.shape[0],
        "error": ("spread over realizations / sqrt(R) (contains replica noise and disorder "
                  "variance); one realization: its replica standard error")}
    return out


def _comparison(res, p, realizations, config, linear, dynamics, datasets, attrs):
    """Simulated |dx|(t) against the linear prediction (``analysis.compare``).

    ``comparison/``: times, simulated, simulated_se, predicted (expected value of the
    replica-averaged estimator), predicted_se, predicted_raw (sum |c_i| e^(-lambda t)), log,
    in_window; attrs max_rel_deviation, slope_*, lambda_min, lambda_max, t0_lambda_max.
    """
    m = config.model
    times = res.dataset("dynamics/times", p)
    replicas = config.dynamics.replicas
    ok = res.converged(p, realizations)
    rates = res.rows("rates", p, realizations)
    occupation = res.rows("dynamics/occupation", p, realizations)
    equilibrium = res.rows("dynamics/equilibrium_occupation", p, realizations)
    if m.name == "electron":
        fields, mu = res.rows("fields", p, realizations), res.rows("mu", p, realizations)
    predictions, raw, c0 = [], [], []
    for i, k in enumerate(ok):
        eq = equilibrium[i]
        c = occupation[i, 0] - eq
        if m.name == "tls":
            pred = cmp.tls_prediction(rates[i], c, times, times[0], eq, replicas)
            raw.append(cmp.tls_prediction(rates[i], c, times, times[0]))
        else:
            system = res.system(int(k), p)
            # the KMC's hop pairs: one set of processes for simulation and prediction
            pairs = hop_pairs(system.distances, config.dynamics.hop_cutoff)[0]
            args = (system, fields[i], mu[i], m.temperature, m.xi, m.gamma0, c, times,
                    times[0])
            pred = cmp.electron_prediction(*args, eq, replicas, pairs=pairs)
            raw.append(cmp.electron_prediction(*args, pairs=pairs))
        predictions.append(pred)
        c0.append(np.abs(c).sum())
    pred_mean, pred_se = mean_sem(predictions)
    lo, hi = cmp.window_from_rates(list(rates), linear["lambda_min"], linear["lambda_max"])
    deviation, deviation_se = dynamics["deviation"]
    result = cmp.compare(times, deviation, deviation_se, pred_mean, pred_se,
                         float(np.mean(c0)), lo, hi, predicted_raw=np.mean(raw, axis=0))
    for name in COMPARISON_CURVES:
        datasets[f"comparison/{name}"] = getattr(result, name)
    attrs["comparison"] = {name: getattr(result, name) for name in COMPARISON_SCALARS}
