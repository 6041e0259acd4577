"""``kmc show FILE``: what a result file holds, in a physicist's terms.

Printed by ``kmc show`` and at the end of ``kmc run``: the run (model, points,
realizations, seed, provenance), the status counts, then per sweep point its physical
values (N, T, W, J and the swept keys), the number of converged realizations, lambda_min
with its bootstrap error and lambda_max, the 1/lambda fit, and for runs with dynamics and
linear rates the comparison of the simulated relaxation with the prediction, with a
verdict: ``agrees`` when the simulated and predicted slopes per ln t differ by less than
2 standard errors of the simulated slope (``differs`` otherwise). For the response
protocol it prints how the prepared state was aged (the aging mode and times asked for,
the aging time each realization used and how many were tried) and the prepared state's
own drift over the window as measured on the twin ensemble, with how many realizations
had it bounded below the tolerance (kmc.dynamics.stationarity); with ``aging =
"until_stationary"`` a realization that did not reach the tolerance is counted apart,
and among them those that stopped at ``aging_time_max``.

Everything comes from ``kmc.load`` accessors; nothing is recomputed.
"""
import math

import numpy as np

from kmc.statistics import mean_sem
from kmc.storage.results import load
from kmc.storage.schema import Status, point_name

SLOPE_SIGMAS = 2.0  # verdict threshold, in standard errors of the simulated slope


def _g(x, digits=4):
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def verdict(c):
    """'agrees' / 'differs' / 'undetermined' for a ComparisonSummary (module docstring)."""
    diff, se = abs(c.slope_simulated - c.slope_predicted), c.slope_simulated_se
    if not (np.isfinite(diff) and np.isfinite(se) and se > 0):
        return "undetermined"
    return "agrees" if diff < SLOPE_SIGMAS * se else "differs"


def _kmc_counters(res, p, acceleration):
    """Events executed against the estimate without temporal acceleration (per trajectory,
    summed over the finished realizations)."""
    try:
        rows = res.rows("dynamics/replica_counters", p)
    except KeyError:
        return "  KMC counters: not in this file"
    rows = rows.reshape(-1, 3)
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    if rows.size == 0:
        return "  KMC counters: none yet"
    events, trials, unacc = (float(rows[:, k].sum()) for k in range(3))
    n_traj = rows.shape[0]
    return (f"  KMC ({n_traj} trajectories, acceleration {acceleration}): events "
            f"{events:.4g}, trials {trials:.4g}, events without acceleration (estimate) "
            f"{unacc:.4g}, speed-up {_g(unacc / events if events else float('nan'), 3)}")


# per-realization drifts are listed up to this many realizations, a summary beyond
_LIST_REALIZATIONS = 8


def _response_preparation(res, p, dyn):
    """Lines on the response protocol's prepared state of point ``p``: its aging and the
    twin ensemble's drift over the window, over the converged realizations (as stored by
    kmc.pipeline.realization; module docstring)."""
    names = ("aging_time_used", "aging_attempts", "aging_stationary", "twin_drift",
             "twin_drift_stderr", "twin_energy_drift", "twin_energy_drift_stderr")
    try:
        v = {n: res.rows(f"dynamics/{n}", p) for n in names}
    except KeyError:
        return ["  response preparation: aging and drift not in this file"]
    index = res.converged(p)
    asked = (f"aging \"{dyn.aging}\", aging_time {_g(dyn.aging_time)}"
             + (f" up to aging_time_max {_g(dyn.aging_time_max)}"
                if dyn.aging == "until_stationary" else "")
             + f", stationarity_tolerance {_g(dyn.stationarity_tolerance)} x signal")
    k = index.size
    if k == 0:
        return [f"  response preparation ({asked}): no finished realization yet"]
    used, tried = v["aging_time_used"], v["aging_attempts"]
    same = np.all(used == used[0]) and np.all(tried == tried[0])
    aged = (f"aged {_g(float(used[0]))} in all {k} realization(s), {int(tried[0])} aging "
            f"time(s) tried" if same else
            f"aged {_g(float(used.min()))}..{_g(float(used.max()))} (median "
            f"{_g(float(np.median(used)))}), {int(tried.min())}..{int(tried.max())} aging "
            f"time(s) tried")
    lines = [f"  response preparation ({asked}): {aged}"]
    # the mean over realizations with its SE (spread over realizations): a drift common to
    # the ensemble survives the average, replica noise of single realizations does not
    proj, proj_se = mean_sem(v["twin_drift"])
    energy, energy_se = mean_sem(v["twin_energy_drift"])
    lines.append(f"  twin drift over the window (prepared state's own; mean over {k} "
                 f"realization(s) +- SE): g-projection {_g(float(proj))} +- "
                 f"{_g(float(proj_se), 2)}, energy {_g(float(energy))} +- "
                 f"{_g(float(energy_se), 2)} J")
    if k <= _LIST_REALIZATIONS:
        lines.append("    per realization (g-projection, +- SE over replicas): " + ", ".join(
            f"r{int(r)} {_g(float(d), 3)} +- {_g(float(e), 2)}"
            for r, d, e in zip(index, v["twin_drift"], v["twin_drift_stderr"])))
    ok = v["aging_stationary"] == 1
    line = (f"  stationarity (twin drift of g-projection and energy below the tolerance at "
            f"2 SE): {int(ok.sum())} of {k} realization(s)")
    if not ok.all():
        line += f"; not {', '.join(f'r{int(r)}' for r in index[~ok])}"
    lines.append(line)
    if dyn.aging == "until_stationary":
        # the aging stops early only when the drift is not resolved (kmc.dynamics.run)
        at_max = (~ok) & (used >= dyn.aging_time_max)
        lines.append(f"  until_stationary: tolerance reached in {int(ok.sum())} of {k}, "
                     f"stopped at aging_time_max in {int(at_max.sum())}, stopped with an "
                     f"unresolved drift (more replicas needed) in {int((~ok & ~at_max).sum())}")
    return lines


def describe(path):
    """The text of ``kmc show`` for result file ``path`` (lines joined by newlines)."""
    res = load(path)
    a = res.attrs
    rate = "a J^3" if res.model == "tls" else "Gamma0"
    counts = {s: 0 for s in Status}
    per_point = []
    for p in range(len(res.points)):
        status = res.status(p)
        for s in Status:
            counts[s] += int(np.sum(status == s))
        per_point.append(status.size)
    kind = "TLS glass" if res.model == "tls" else "electron glass"
    lines = [f"{res.path}: {kind}, {len(res.points)} point(s) x {max(per_point)} "
             f"realization(s), seed {res.seed}",
             f"  written by glassrelax {a.get('program_version', '?')} "
             f"(git {str(a.get('git_commit', '?'))[:12]}), schema {a.get('schema_version')}",
             f"  status: {counts[Status.CONVERGED]} converged, "
             f"{counts[Status.NOT_CONVERGED]} not converged, {counts[Status.PENDING]} pending"]
    for p, point in enumerate(res.points):
        c = point.config
        m, d = c.model, c.disorder
        physical = f"N = {m.N}, T = {_g(m.temperature)}, W = {_g(d.W)}, J = {_g(d.J)}"
        swept = ", ".join(f"{k} = {v}" for k, v in point.values.items())
        lines.append(f"{point_name(p)}: {physical}" + (f"  (sweep: {swept})" if swept else ""))
        dos = res.dos(p)
        lines.append(f"  converged realizations: {int(np.sum(res.status(p) == Status.CONVERGED))}"
                     + ("" if dos is not None else "  (no summaries yet: run not finished)"))
        lin = res.linear(p)
        if lin is not None:
            lines.append(f"  rates ({rate}): lambda_min = {_g(lin.lambda_min)} +- "
                         f"{_g(lin.lambda_min_se, 2)}, lambda_max = {_g(lin.lambda_max)}, "
                         f"median rate = {_g(lin.median_rate)} +- {_g(lin.median_rate_se, 2)}")
            if lin.fit is not None:
                f = lin.fit
                lines.append(f"  1/lambda fit in [lambda_min, 10 lambda_min]: C = "
                             f"{_g(f['amplitude'])} +- {_g(f['amplitude_se'], 2)} "
                             f"(chi2/dof {_g(f['chi2_dof'], 3)}); free exponent beta = "
                             f"{_g(f['exponent'], 3)} +- {_g(f['exponent_se'], 2)}")
            else:
                lines.append("  1/lambda fit: none (no lower plateau edge or too few bins)")
        if c.dynamics.enabled and c.dynamics.method == "kmc":
            lines.append(_kmc_counters(res, p, c.dynamics.acceleration))
        if c.dynamics.enabled and c.dynamics.protocol == "response":
            lines += _response_preparation(res, p, c.dynamics)
        cmp = res.comparison(p)
        if cmp is not None:
            # this comparison measures |dx| against the static-MC equilibrium, a baseline
            # the glass need not reach (docs/model.md section 4): say so beside the verdict
            lines.append(f"  |dx| vs linear prediction, static-MC baseline (assumed; "
                         f"measured baselines: python -m analysis compare FILE): "
                         f"{verdict(cmp)}; window "
                         f"t = {_g(1 / cmp.lambda_max, 3)}..{_g(1 / cmp.lambda_min, 3)}, "
                         f"max |sim - pred|/pred = {_g(cmp.max_rel_deviation, 3)}, slope "
                         f"per ln t: simulated {_g(cmp.slope_simulated)} +- "
                         f"{_g(cmp.slope_simulated_se, 2)}, predicted "
                         f"{_g(cmp.slope_predicted)}, log form {_g(cmp.slope_log)}")
    return "\n".join(lines)
