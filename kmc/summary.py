"""Point-level summaries written into the result file when a run finishes.

Everything here is recomputed from the per-realization rows (converged realizations only),
so a resumed run and an uninterrupted one end with the same summaries.

``linear/`` (with a [linear] table)
    log_edges, log_mean, log_sem    density of ln(lambda), mean and standard error per bin
    lin_edges, lin_mean, lin_sem    density of lambda in the cut-off window
                                    [lambda_min, min(lambda_max, 10 lambda_min)]
    attrs lambda_min, lambda_max    plateau edges (analysis.rates.plateau_edges)
    attrs lambda_min_se             bootstrap over realizations (200 resamples, fixed seed)
    attrs median_rate, median_rate_se   geometric mean of the per-realization median rates
                                    and its standard error (delta method)
    attrs fit_*                     the 1/lambda fit in the window (analysis.rates)
    relaxation/times, mean, sem, e1, log   predicted |dsigma|(t) with uniform c_i = 1/N
``dynamics/ensemble/`` (with a [dynamics] table)
    <observable>, <observable>_stderr  mean over realizations and its standard error
"""
import numpy as np

from kmc.pipeline.realization import DYNAMICS_CURVES
from kmc.statistics import mean_sem

BOOTSTRAP_SAMPLES = 200
WINDOW_DECADES = 1.0


def _replace(group, name, data):
    if name in group:
        del group[name]
    group.create_dataset(name, data=data)


def rate_summary(rates_list, bins, alpha):
    """Histograms, cut-offs, 1/lambda fit and speed measures of a list of rate arrays."""
    from analysis import rates as ra
    positive = [r[np.isfinite(r) & (r > 0)] for r in rates_list]
    edges, mean, sem = ra.rate_histogram(positive, bins, log=True)
    lmin, lmax = ra.plateau_edges(edges, mean, alpha=alpha)
    out = {"log": (edges, mean, sem), "lambda_min": lmin, "lambda_max": lmax}
    # geometric mean of the per-realization medians: an arithmetic mean of medians that
    # spread over decades is dominated by its largest member (it faked a size trend)
    log_medians = np.array([np.median(np.log(r)) for r in positive])
    out["median_rate"] = float(np.exp(log_medians.mean()))
    out["median_rate_se"] = (float(out["median_rate"] * log_medians.std(ddof=1)
                                   / np.sqrt(len(log_medians)))
                             if len(log_medians) > 1 else np.nan)
    # bootstrap over realizations for the error of lambda_min (same bins)
    rng = np.random.default_rng(12345)
    boot = []
    if len(positive) > 1 and np.isfinite(lmin):
        for _ in range(BOOTSTRAP_SAMPLES):
            pick = rng.integers(0, len(positive), len(positive))
            _, m, _ = ra.rate_histogram([positive[i] for i in pick], edges, log=True)
            boot.append(ra.plateau_edges(edges, m, alpha=alpha)[0])
    boot = np.array(boot)
    boot = boot[np.isfinite(boot)]
    out["lambda_min_se"] = float(boot.std(ddof=1)) if boot.size > 1 else np.nan
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


def summarise_linear(group, n_realizations, config):
    from analysis.relaxation import relaxation_series
    ok = np.flatnonzero(group["status"][:n_realizations] == 1)
    if ok.size == 0:
        return
    lin = group.require_group("linear")
    rates = group["rates"][:n_realizations][ok]
    s = rate_summary(list(rates), config.linear.bins, config.linear.alpha)
    edges, mean, sem = s["log"]
    for name, data in (("log_edges", edges), ("log_mean", mean), ("log_sem", sem)):
        _replace(lin, name, data)
    if "lin" in s:
        for name, data in zip(("lin_edges", "lin_mean", "lin_sem"), s["lin"]):
            _replace(lin, name, data)
    for key in ("lambda_min", "lambda_max", "lambda_min_se", "median_rate", "median_rate_se"):
        lin.attrs[key] = s[key]
    fit = s.get("fit")
    if fit is not None:
        for key in ("amplitude", "amplitude_se", "chi2_dof", "exponent", "exponent_se"):
            lin.attrs[f"fit_{key}"] = getattr(fit, key)
    lin.attrs["n_used"] = ok.size
    lin.attrs["n_with_positive_eigenvalue"] = int(np.sum(group["n_positive"][:n_realizations][ok] > 0))
    if np.isfinite(s["lambda_min"]) and np.isfinite(s["lambda_max"]):
        n = rates.shape[1]
        series = relaxation_series(list(rates), s["lambda_min"], s["lambda_max"],
                                   c_list=[np.full(n, 1.0 / n)] * ok.size)
        rel = lin.require_group("relaxation")
        for name in ("times", "mean", "sem", "e1", "log"):
            _replace(rel, name, getattr(series, name))
        rel.attrs["c"] = "uniform c_i = 1/N (|dsigma|(0) = 1)"


def summarise_dynamics(group, n_realizations):
    ok = np.flatnonzero(group["status"][:n_realizations] == 1)
    if ok.size == 0:
        return
    ens = group["dynamics"].require_group("ensemble")
    for name in DYNAMICS_CURVES:
        means = group[f"dynamics/{name}"][:n_realizations][ok]
        if ok.size > 1:
            mean, err = mean_sem(means)
        else:  # one realization: its replica standard error
            mean, err = means[0], group[f"dynamics/{name}_stderr"][ok[0]]
        _replace(ens, name, mean)
        _replace(ens, f"{name}_stderr", err)
    ens.attrs["n_used"] = ok.size
    ens.attrs["error"] = ("spread over realizations / sqrt(R) (contains replica noise and "
                          "disorder variance); one realization: its replica standard error")


def summarise_comparison(group, n_realizations, config, seed, point):
    """Simulated |dx|(t) against the linear prediction (analysis.compare), per point.

    Stored in ``comparison/``: times, simulated, simulated_se, predicted (expected value of
    the replica-averaged estimator), predicted_se, predicted_raw (sum |c_i| e^(-lambda t)),
    log, in_window; attrs max_rel_deviation, slope_*, lambda_min, lambda_max, t0_lambda_max.
    """
    from analysis import compare as cmp
    from kmc.pipeline.realization import build_system
    ok = np.flatnonzero(group["status"][:n_realizations] == 1)
    if ok.size == 0:
        return
    m = config.model
    times = group["dynamics/times"][()]
    replicas = config.dynamics.replicas
    predictions, raw, c0 = [], [], []
    for k in ok:
        eq = group["dynamics/equilibrium_occupation"][k]
        c = group["dynamics/occupation"][k, 0] - eq
        if m.name == "tls":
            pred = cmp.tls_prediction(group["rates"][k], c, times, times[0], eq, replicas)
            raw.append(cmp.tls_prediction(group["rates"][k], c, times, times[0]))
        else:
            system = build_system(config, seed, point, int(k))
            args = (system, group["fields"][k], group["mu"][k], m.temperature, m.xi,
                    m.gamma0, c, times, times[0])
            pred = cmp.electron_prediction(*args, eq, replicas)
            raw.append(cmp.electron_prediction(*args))
        predictions.append(pred)
        c0.append(np.abs(c).sum())
    pred_mean, pred_se = mean_sem(predictions)
    lin = group["linear"]
    lo, hi = cmp.window_from_rates(list(group["rates"][:n_realizations][ok]),
                                   lin.attrs["lambda_min"], lin.attrs["lambda_max"])
    ens = group["dynamics/ensemble"]
    result = cmp.compare(times, ens["deviation"][()], ens["deviation_stderr"][()],
                         pred_mean, pred_se, float(np.mean(c0)), lo, hi)
    out = group.require_group("comparison")
    _replace(out, "predicted_raw", np.mean(raw, axis=0))
    for name in ("times", "simulated", "simulated_se", "predicted", "predicted_se", "log",
                 "in_window"):
        _replace(out, name, getattr(result, name))
    for name in ("lambda_min", "lambda_max", "max_rel_deviation", "slope_simulated",
                 "slope_simulated_se", "slope_predicted", "slope_log", "t0_lambda_max"):
        out.attrs[name] = getattr(result, name)
