"""Table I of the paper as measured: the direction of the relaxation speed when disorder W,
interaction J (at fixed W^2 + J^2) or system size N increases, for both models.

Input
-----
One result file per (model, parameter): a ``kmc run`` of a run file with a ``[linear]``
table whose sweep varies exactly one of

============  ==========================================  =================================
parameter     sweep in the run file                       value used to order the points
============  ==========================================  =================================
W             ``"disorder.W" = [...]`` (with W_over_T)    disorder.W
J             ``W_over_J = [...]`` with ``W2_plus_J2``    disorder.J (increasing J is
                                                          *decreasing* W/J at fixed W^2+J^2)
N             ``"model.N" = [...]``                       model.N (density fixed)
============  ==========================================  =================================

Measures of relaxation speed (per sweep point, over its converged realizations)
-------------------------------------------------------------------------------
Both are recomputed from the stored ``rates`` (positive, finite ones) with the same
functions the point summaries use, so they equal the stored ``linear`` attributes and a
file without summaries can still enter the table:

- lambda_min: the lower plateau edge of the mean density of ln(lambda)
  (``analysis.rates.plateau_edges``, with the run's ``[linear]`` bins and alpha). It sets
  the slowest relaxation time 1/lambda_min of Eq. 17. Its standard error is the robust
  bootstrap over realizations of ``analysis.rates.lambda_min_bootstrap`` (1.4826 x median
  absolute deviation of the resampled ln lambda_min).
- median rate: the geometric mean over realizations of each realization's median rate,
  with its standard error (``analysis.rates.typical_median``); unlike an arithmetic mean
  of medians it does not drift with N.

Direction and significance
--------------------------
The points are ordered by increasing parameter; first = smallest, last = largest. For a
measure x with standard errors s the change is taken on a log scale,

    D = ln(x_last / x_first),   SE = sqrt((s_first / x_first)^2 + (s_last / x_last)^2)

(first-order error propagation; the two points are independent ensembles). The measured
sign is ``+`` (faster relaxation: larger rates) if D >= 2 SE, ``-`` (slower) if D <= -2 SE,
and ``0`` ("not significant") if |D| < 2 SE; ``?`` if x or SE is not finite (e.g. no
plateau edge inside the histogram, or a single realization). The table prints the sign with
the ratio x_last / x_first and z = D / SE.

A row is flagged ``DISAGREES`` when a significant measured sign (``+`` or ``-``) of either
measure differs from the paper's sign, and ``not reproduced`` when a measure's change is not
significant (``0``) or undetermined (``?``) where the paper claims a sign; for system size in
the TLS glass the paper itself calls its ``-`` negligible, so ``0`` is the expected outcome
there and is not flagged.

Table I by kinetic Monte Carlo
------------------------------
A result file of the ``response`` protocol (``[dynamics] protocol = "response"``, a long
weak pulse F g removed at t = 0, docs/linear-response.md) sweeping one of the same
parameters gives the KMC row. Per point the measured P(t) of every realization is fitted by
the E1 form of the pulse response (``analysis.response.fit_e1``: -c [Phi(t) - Phi(t + t_w)],
Phi the 1/lambda relaxation on [lambda_min, lambda_max]) and lambda_min is the fitted lower
edge, its standard error the bootstrap over realizations (``analysis.response.bootstrap_e1``,
SE of ln lambda_min, so the SE of lambda_min is lambda_min times it). The same fit of the
linear prediction stored beside it (same F, g, t_w, temperature, pairs) gives the predicted
lambda_min with the same estimator and the same weights (the KMC standard errors), so
that the two columns differ only by the dynamics.
The change and its sign are taken as above. The cut-off is only measurable when the
pulse lasts up to about 1/lambda_min and the grid reaches beyond it (the run files
``runs/table1_kmc_*.toml`` do); a fit that runs to its search bound gives ``?``.

The same rows drawn as a figure (lambda_min against the parameter, mean field beside KMC):
``analysis.plots_table1``, ``python -m analysis table1 FILES --figure PATH``.
"""
import math
from dataclasses import dataclass

import numpy as np

from kmc.errors import ResultFileError

from .rates import lambda_min_bootstrap, typical_median

# Paper Table I: + faster, - slower relaxation for an increase of the parameter.
PAPER_SIGNS = {
    ("tls", "W"): "+", ("electron", "W"): "+",
    ("tls", "J"): "+", ("electron", "J"): "-",
    ("tls", "N"): "-", ("electron", "N"): "-",
}
PAPER_NOTES = {("tls", "N"): "negligible"}
PARAMETER_NAMES = {"W": "disorder W", "J": "interaction J (W^2+J^2 fixed)",
                   "N": "system size N (fixed density)"}
MODEL_NAMES = {"tls": "TLS glass", "electron": "electron glass"}
SIGNIFICANCE = 2.0  # |D| / SE below this is "not significant"

_SWEEP_KEYS = {"disorder.W": "W", "W_over_J": "J", "model.N": "N"}


class TableError(ValueError):
    """A file that cannot enter Table I (one line, printed by the command line)."""


@dataclass(frozen=True)
class PointMeasure:
    """Speed measures of one sweep point.

    value : the parameter (W, J or N) of the point
    temperature : T of the point, units of J
    n_used : converged realizations
    lambda_min, lambda_min_se, median_rate, median_rate_se : rates in the file's units
    """

    value: float
    temperature: float
    n_used: int
    lambda_min: float
    lambda_min_se: float
    median_rate: float
    median_rate_se: float


@dataclass(frozen=True)
class Change:
    """Change of a measure from the first to the last point (module docstring).

    ratio : x_last / x_first
    log_change, se : D and SE
    sign : '+', '-', '0' (not significant) or '?' (undetermined)
    """

    ratio: float
    log_change: float
    se: float
    sign: str

    @property
    def z(self):
        return self.log_change / self.se if self.se > 0 else math.nan


@dataclass(frozen=True)
class Row:
    """Table I row from a [linear] sweep (``points`` are PointMeasure, by increasing
    parameter).

    setting : mathtext of what the file holds fixed (N, T, W/T, ..., realizations), for
        the legend of the Table I figure (analysis.plots_table1); '' if not known
    """

    path: str
    model: str
    parameter: str
    points: tuple
    lambda_min: Change
    median_rate: Change
    setting: str = ""

    @property
    def measures(self):
        """((name, Change), ...) in the order the table prints them."""
        return (("lambda_min", self.lambda_min), ("median", self.median_rate))

    @property
    def paper(self):
        return PAPER_SIGNS[(self.model, self.parameter)]

    @property
    def disagreements(self):
        """Names of the measures whose significant sign differs from the paper's."""
        return tuple(name for name, c in self.measures
                     if c.sign in "+-" and c.sign != self.paper)

    @property
    def not_reproduced(self):
        """Names of the measures without a significant sign where the paper claims one
        (not for a sign the paper itself calls negligible)."""
        if (self.model, self.parameter) in PAPER_NOTES:
            return ()
        return tuple(name for name, c in self.measures if c.sign in "0?")

    @property
    def flag(self):
        """'DISAGREES (...)', 'not reproduced (...)', both, or ''."""
        parts = []
        if self.disagreements:
            parts.append(f"DISAGREES ({', '.join(self.disagreements)})")
        if self.not_reproduced:
            parts.append(f"not reproduced ({', '.join(self.not_reproduced)})")
        return "; ".join(parts)


@dataclass(frozen=True)
class ResponseMeasure:
    """lambda_min of one response point: the E1 fit of the KMC P(t) and of the linear
    prediction (module docstring).

    value, temperature, n_used : as PointMeasure
    waiting_time : t_w of the pulse
    lambda_min, lambda_min_se : KMC fit and its bootstrap SE (units of 1/time)
    chi2_dof : chi^2 per degree of freedom of the KMC fit of the realization mean
    predicted, predicted_se : the same for the linear prediction (NaN if not stored)
    """

    value: float
    temperature: float
    n_used: int
    waiting_time: float
    lambda_min: float
    lambda_min_se: float
    chi2_dof: float
    predicted: float
    predicted_se: float


@dataclass(frozen=True)
class KMCRow(Row):
    """Table I row from a response file (``points`` are ResponseMeasure): ``lambda_min`` is
    the change of lambda_min fitted to the KMC response (E1 form), ``linear`` the same fit
    of the linear prediction; there is no median rate."""

    linear: Change = None

    @property
    def measures(self):
        return (("KMC", self.lambda_min), ("linear", self.linear))


def change(first, first_se, last, last_se, significance=SIGNIFICANCE):
    """Sign of the change of a positive measure between two independent points.

    Parameters
    ----------
    first, last : float
        The measure (> 0) at the smallest and the largest parameter value.
    first_se, last_se : float
        Their standard errors.
    significance : float
        Threshold on |D| / SE.

    Returns
    -------
    Change
    """
    values = np.array([first, first_se, last, last_se], dtype=float)
    if not (np.all(np.isfinite(values)) and first > 0 and last > 0):
        ratio = last / first if first and np.isfinite(first) and np.isfinite(last) else math.nan
        return Change(ratio, math.nan, math.nan, "?")
    d = math.log(last / first)
    se = math.hypot(first_se / first, last_se / last)
    if se == 0.0:
        sign = "0" if d == 0 else ("+" if d > 0 else "-")
    elif abs(d) < significance * se:
        sign = "0"
    else:
        sign = "+" if d > 0 else "-"
    return Change(last / first, d, se, sign)


def swept_parameter(results):
    """('W' | 'J' | 'N', model) of a loaded sweep result (``kmc.load``)."""
    points = results.points
    models = {p.config.model.name for p in points}
    if len(models) > 1:
        raise TableError(f"{results.path}: mixed models {sorted(models)} in one file; "
                         "Table I needs one model per file")
    keys = {k for p in points for k in p.values}
    if _is_response(results):
        # a response sweep may scale its pulse (or other dynamics keys) with the parameter,
        # e.g. F = T/2 along W at fixed W/T; the parameter is still the one swept
        keys = {k for k in keys if not k.startswith("dynamics.")}
    if len(points) < 2:
        raise TableError(f"{results.path}: one point only; Table I needs a sweep of W "
                         "(disorder.W), J (W_over_J) or N (model.N)")
    known = keys & set(_SWEEP_KEYS)
    if len(known) != 1 or keys - known:
        raise TableError(f"{results.path}: expected a sweep of exactly one of "
                         f"{', '.join(_SWEEP_KEYS)}, got {sorted(keys) or 'none'}")
    return _SWEEP_KEYS[known.pop()], models.pop()


def _parameter_value(parameter, config):
    return {"W": config.disorder.W, "J": config.disorder.J, "N": config.model.N}[parameter]


def point_measures(results, parameter):
    """PointMeasure of every point of ``results``, ordered by increasing parameter."""
    out = []
    for p, point in enumerate(results.points):
        if not point.config.linear.enabled:
            raise TableError(f"{results.path}: no rates (run file without [linear])")
        rates = results.rows("rates", p)
        if rates.shape[0] == 0:
            raise TableError(f"{results.path}: point {p} has no converged realization")
        rates = [r[np.isfinite(r) & (r > 0)] for r in rates]
        lmin, lmin_se = lambda_min_bootstrap(rates, point.config.linear.bins,
                                             point.config.linear.alpha)
        med, med_se = typical_median(rates)
        out.append(PointMeasure(float(_parameter_value(parameter, point.config)),
                                point.config.model.temperature, len(rates),
                                lmin, lmin_se, med, med_se))
    return sorted(out, key=lambda m: m.value)


def _fit_lambda_min(times, curves, waiting_time, n_boot, seed, errors=None):
    """(lambda_min, SE, chi2/dof) of the E1 fit of (K, T) per-realization curves; NaN where
    the fit or its bootstrap does not determine lambda_min. ``errors`` (T,): fixed weights
    (the linear prediction is fitted with the KMC's standard errors, so both columns use
    one estimator with one set of weights); None: the curves' own standard errors."""
    from .response import bootstrap_e1
    curves = np.asarray(curves, dtype=float)
    curves = curves[np.all(np.isfinite(curves), axis=1)]
    if curves.shape[0] < 2:
        return math.nan, math.nan, math.nan
    # times at which every realization has the same value (e.g. before the first event)
    # carry no weight a standard error could give them
    spread = np.std(curves, axis=0) if errors is None else np.asarray(errors, dtype=float)
    keep = np.isfinite(spread) & (spread > 0)
    if np.count_nonzero(keep) < 4:
        return math.nan, math.nan, math.nan
    times, curves = np.asarray(times, dtype=float)[keep], curves[:, keep]
    try:
        fit, se_log, n_ok = bootstrap_e1(times, curves, waiting_time, n_boot=n_boot, seed=seed,
                                         errors=None if errors is None else spread[keep])
    except ValueError:
        return math.nan, math.nan, math.nan
    if not fit.success or n_ok < n_boot // 2:
        return math.nan, math.nan, fit.chi2 / max(fit.dof, 1)
    return fit.lambda_min, fit.lambda_min * se_log, fit.chi2 / max(fit.dof, 1)


def response_measures(results, parameter, n_boot=200, seed=0):
    """ResponseMeasure of every point of a response result file, by increasing parameter."""
    out = []
    for p, point in enumerate(results.points):
        dyn = point.config.dynamics
        times = results.dataset("dynamics/times", p)
        measured = results.rows("dynamics/response", p)
        if measured.shape[0] == 0:
            raise TableError(f"{results.path}: point {p} has no converged realization")
        lmin, lmin_se, chi2 = _fit_lambda_min(times, measured, dyn.waiting_time, n_boot, seed)
        try:
            predicted = results.rows("dynamics/response_predicted", p)
        except KeyError:
            predicted = np.full_like(measured, np.nan)
        kmc_se = np.std(measured, axis=0, ddof=1) / math.sqrt(measured.shape[0]) \
            if measured.shape[0] > 1 else None
        pred, pred_se, _ = _fit_lambda_min(times, predicted, dyn.waiting_time, n_boot, seed,
                                           errors=kmc_se)
        out.append(ResponseMeasure(float(_parameter_value(parameter, point.config)),
                                   point.config.model.temperature, int(measured.shape[0]),
                                   float(dyn.waiting_time), lmin, lmin_se, chi2, pred,
                                   pred_se))
    return sorted(out, key=lambda m: m.value)


def _is_response(results):
    dyn = [getattr(p.config, "dynamics", None) for p in results.points]
    return bool(dyn) and all(d is not None and d.enabled and d.protocol == "response"
                             for d in dyn)


def table_row(path, n_boot=200):
    """The Table I row of one result file: a Row from the rates of a [linear] sweep, a
    KMCRow from a response-protocol sweep (module docstring)."""
    import kmc
    try:
        results = kmc.load(path)
    except ResultFileError as exc:
        raise TableError(str(exc)) from None
    parameter, model = swept_parameter(results)
    if _is_response(results):
        points = response_measures(results, parameter, n_boot)
        first, last = points[0], points[-1]
        return KMCRow(str(path), model, parameter, tuple(points),
                      change(first.lambda_min, first.lambda_min_se, last.lambda_min,
                             last.lambda_min_se), None, setting=_setting(results, points),
                      linear=change(first.predicted, first.predicted_se, last.predicted,
                                    last.predicted_se))
    points = point_measures(results, parameter)
    first, last = points[0], points[-1]
    return Row(str(path), model, parameter, tuple(points),
               change(first.lambda_min, first.lambda_min_se, last.lambda_min, last.lambda_min_se),
               change(first.median_rate, first.median_rate_se, last.median_rate,
                      last.median_rate_se), setting=_setting(results, points))


def _setting(results, points):
    """Mathtext of the parameters a file holds fixed (``analysis.labels.fixed_parameters``
    without the model's name; the TLS Delta0 range), its realizations per point and, for a
    response file, the replicas per realization."""
    from .labels import KIND, fixed_parameters, value_tex
    configs = [p.config for p in results.points]
    text = fixed_parameters(configs)
    kind = KIND.get(configs[0].model.name, configs[0].model.name)
    text = text[len(kind):].lstrip(", ") if text.startswith(kind) else text
    parts = [text] if text else []
    if configs[0].model.name == "tls":
        # the Delta0 range sets the slowest rate (rate ~ Delta0^2): files that differ in it
        # differ in lambda_min by that factor
        lo = {c.disorder.delta0_min for c in configs}
        hi = {c.disorder.delta0_max for c in configs}
        if len(lo) == 1 and len(hi) == 1:
            parts.append(rf"$\Delta_0 \in [{value_tex(lo.pop())}, {value_tex(hi.pop())}]$")
    used = {m.n_used for m in points}
    if len(used) == 1:
        r = used.pop()
        parts.append(f"{r} realization{'s' if r != 1 else ''}")
        if _is_response(results):
            replicas = {c.dynamics.replicas for c in configs}
            if len(replicas) == 1:
                k = replicas.pop()
                parts[-1] += f" x {k} replica{'s' if k != 1 else ''}"
    return ", ".join(parts)


def _fmt_change(c):
    if c.sign == "?":
        return "?"
    word = {"+": "+", "-": "-", "0": "0 (n.s.)"}[c.sign]
    return f"{word} x{c.ratio:.3g} z={c.z:+.1f}"


def format_details(row):
    """Per-point measures of one file."""
    if isinstance(row, KMCRow):
        lines = [f"{row.path}: {MODEL_NAMES[row.model]}, increasing "
                 f"{PARAMETER_NAMES[row.parameter]} (KMC response, E1 fit)",
                 f"  {row.parameter:>8} {'T':>8} {'R':>5} {'t_w':>8}  {'lambda_min KMC':>22} "
                 f"{'chi2/dof':>8}  {'lambda_min linear':>22}"]
        for m in row.points:
            lines.append(f"  {m.value:8.4g} {m.temperature:8.4g} {m.n_used:5d} "
                         f"{m.waiting_time:8.2g}  {m.lambda_min:10.4g} +- "
                         f"{m.lambda_min_se:<8.2g} {m.chi2_dof:8.3g}  {m.predicted:10.4g} +- "
                         f"{m.predicted_se:<8.2g}")
        return "\n".join(lines)
    lines = [f"{row.path}: {MODEL_NAMES[row.model]}, increasing {PARAMETER_NAMES[row.parameter]}",
             f"  {row.parameter:>8} {'T':>8} {'R':>5}  {'lambda_min':>22}  {'median rate':>22}"]
    for m in row.points:
        lines.append(f"  {m.value:8.4g} {m.temperature:8.4g} {m.n_used:5d}  "
                     f"{m.lambda_min:10.4g} +- {m.lambda_min_se:<8.2g}  "
                     f"{m.median_rate:10.4g} +- {m.median_rate_se:<8.2g}")
    return "\n".join(lines)


_ORDER = {("W", "tls"): 0, ("W", "electron"): 1, ("J", "tls"): 2, ("J", "electron"): 3,
          ("N", "tls"): 4, ("N", "electron"): 5}


def _table(rows, titles):
    head = (f"{'model':<15} {'increase of':<31} {titles[0]:<22} {titles[1]:<22} "
            f"{'paper':<16} flag")
    lines = [head, "-" * len(head)]
    for row in sorted(rows, key=lambda r: _ORDER[(r.parameter, r.model)]):
        paper = row.paper
        note = PAPER_NOTES.get((row.model, row.parameter))
        if note:
            paper += f" ({note})"
        changes = "".join(f"{_fmt_change(c):<22} " for _, c in row.measures)
        lines.append(f"{MODEL_NAMES[row.model]:<15} {PARAMETER_NAMES[row.parameter]:<31} "
                     f"{changes}{paper:<16} {row.flag}".rstrip())
    return lines


def format_table(rows):
    """Table I as measured, one row per (model, parameter), with the paper's sign; rows
    from response files (KMCRow) in a second table, KMC beside the linear prediction."""
    mf = [r for r in rows if not isinstance(r, KMCRow)]
    kmc_rows = [r for r in rows if isinstance(r, KMCRow)]
    lines = []
    if mf:
        lines += ["Mean field (linearized rates)"] + _table(mf, ("lambda_min", "median rate"))
    if kmc_rows:
        if lines:
            lines.append("")
        lines += (["Kinetic Monte Carlo (linear response, lambda_min of the E1 fit)"]
                  + _table(kmc_rows, ("lambda_min KMC", "lambda_min linear")))
    lines.append("")
    lines.append(f"+ faster, - slower relaxation (larger, smaller rates) from the smallest to the "
                 f"largest parameter; 0 (n.s.): |ln ratio| < {SIGNIFICANCE:g} SE; "
                 "x = last/first, z = ln(ratio)/SE; not reproduced: the paper claims a sign "
                 "that is not significant (0) or undetermined (?) here.")
    return "\n".join(lines)
