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
measure differs from the paper's sign; ``0`` and ``?`` are never flagged (for system size in
the TLS glass the paper itself calls its ``-`` negligible, so ``0`` is the expected outcome
there).
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
    path: str
    model: str
    parameter: str
    points: tuple
    lambda_min: Change
    median_rate: Change

    @property
    def paper(self):
        return PAPER_SIGNS[(self.model, self.parameter)]

    @property
    def disagreements(self):
        """Names of the measures whose significant sign differs from the paper's."""
        return tuple(name for name, c in (("lambda_min", self.lambda_min),
                                          ("median", self.median_rate))
                     if c.sign in "+-" and c.sign != self.paper)


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


def table_row(path):
    """The Table I row of one result file."""
    import kmc
    try:
        results = kmc.load(path)
    except ResultFileError as exc:
        raise TableError(str(exc)) from None
    parameter, model = swept_parameter(results)
    points = point_measures(results, parameter)
    first, last = points[0], points[-1]
    return Row(str(path), model, parameter, tuple(points),
               change(first.lambda_min, first.lambda_min_se, last.lambda_min, last.lambda_min_se),
               change(first.median_rate, first.median_rate_se, last.median_rate,
                      last.median_rate_se))


def _fmt_change(c):
    if c.sign == "?":
        return "?"
    word = {"+": "+", "-": "-", "0": "0 (n.s.)"}[c.sign]
    return f"{word} x{c.ratio:.3g} z={c.z:+.1f}"


def format_details(row):
    """Per-point measures of one file."""
    lines = [f"{row.path}: {MODEL_NAMES[row.model]}, increasing {PARAMETER_NAMES[row.parameter]}",
             f"  {row.parameter:>8} {'T':>8} {'R':>5}  {'lambda_min':>22}  {'median rate':>22}"]
    for m in row.points:
        lines.append(f"  {m.value:8.4g} {m.temperature:8.4g} {m.n_used:5d}  "
                     f"{m.lambda_min:10.4g} +- {m.lambda_min_se:<8.2g}  "
                     f"{m.median_rate:10.4g} +- {m.median_rate_se:<8.2g}")
    return "\n".join(lines)


def format_table(rows):
    """Table I as measured, one row per (model, parameter), with the paper's sign."""
    head = (f"{'model':<15} {'increase of':<31} {'lambda_min':<22} {'median rate':<22} "
            f"{'paper':<16} flag")
    lines = [head, "-" * len(head)]
    order = {("W", "tls"): 0, ("W", "electron"): 1, ("J", "tls"): 2, ("J", "electron"): 3,
             ("N", "tls"): 4, ("N", "electron"): 5}
    for row in sorted(rows, key=lambda r: order[(r.parameter, r.model)]):
        paper = row.paper
        note = PAPER_NOTES.get((row.model, row.parameter))
        if note:
            paper += f" ({note})"
        flag = f"DISAGREES ({', '.join(row.disagreements)})" if row.disagreements else ""
        lines.append(f"{MODEL_NAMES[row.model]:<15} {PARAMETER_NAMES[row.parameter]:<31} "
                     f"{_fmt_change(row.lambda_min):<22} {_fmt_change(row.median_rate):<22} "
                     f"{paper:<16} {flag}".rstrip())
    lines.append("")
    lines.append(f"+ faster, - slower relaxation (larger, smaller rates) from the smallest to the "
                 f"largest parameter; 0 (n.s.): |ln ratio| < {SIGNIFICANCE:g} SE; "
                 "x = last/first, z = ln(ratio)/SE.")
    return "\n".join(lines)
