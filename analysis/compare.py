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

from kmc.errors import ConfigError
from kmc.storage.results import ComparisonSummary

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
                        equilibrium=None, replicas=None, pairs=None):
    """Predicted |dn|(t): sum_i |(e^(A (t - t0)) c)_i| with A of Eqs. 22-23 (no interaction
    term), or the expected replica-averaged estimator with ``equilibrium``/``replicas``.

    dx/dt = A x is integrated with an implicit stiff solver (BDF, exact Jacobian A,
    rtol 1e-8): the eigendecomposition route through the symmetrized matrix needs
    D^-1/2 c, whose condition number e^(|E|/2T) destroys the slow modes when some
    occupations are frozen. ``pairs``: the KMC's hop pairs, so that the prediction and the
    simulation use one set of processes (None: all pairs).
    """
    from scipy.integrate import solve_ivp

    from kmc.solvers.linear import electron_rate_matrix
    a = electron_rate_matrix(system, fields, mu, temperature, xi, gamma0, pairs=pairs)
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


# the result of ``compare``: the dataclass the result files store (one definition)
Comparison = ComparisonSummary


def _slope(x, y, se=None):
    if x.size < 2:
        return np.nan, np.nan
    w = np.ones_like(y) if se is None or not np.all(se > 0) else 1.0 / se**2
    xm = np.sum(w * x) / np.sum(w)
    sxx = np.sum(w * (x - xm) ** 2)
    slope = np.sum(w * (x - xm) * y) / sxx
    return float(slope), float(np.sqrt(1.0 / sxx)) if se is not None else np.nan


def compare(times, simulated, simulated_se, predicted, predicted_se, c0, lambda_min, lambda_max,
            predicted_raw=None):
    """Build the Comparison of ensemble curves (see the module docstring); ``predicted_raw``,
    the noiseless prediction, is carried along if given."""
    times = np.asarray(times, dtype=float)
    window = (times > 1.0 / lambda_max) & (times < 1.0 / lambda_min)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(simulated - predicted) / predicted
    lt = np.log(times[window])
    s_sim, s_sim_se = _slope(lt, simulated[window], simulated_se[window])
    s_pred, _ = _slope(lt, predicted[window])
    return Comparison(times=times, simulated=simulated, simulated_se=simulated_se,
                      predicted=predicted, predicted_se=predicted_se,
                      predicted_raw=predicted_raw,
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


# ---------------------------------------------------------------------------------------
# Three curves per experiment: KMC, mean-field dynamics, linear prediction
#
# Every curve is first formed per realization, on one normalisation (per site) and one
# baseline, then averaged: mean and standard error over the realizations (the error
# contains replica noise and disorder variance). The residual of KMC against a model is
# the realization mean of the paired difference KMC_k - model_k in units of its own
# standard error, which removes the disorder variance the curves share.
#
# Baselines (measured, never an assumed equilibrium):
#   quench, pulse : each curve minus its own value at the last sample time t_L (the
#       dynamics' own long-time state); the last decade is therefore pinned to 0 and is
#       left out of the slopes (``SLOPE_END``).
#   response      : the perturbed ensemble minus its unperturbed twin from the same start
#       (KMC: paired over replicas; mean-field dynamics: the twin trajectory).
#
# The mean-field dynamics is recomputed here from the file's realizations rather than
# recorded by the run: ``kmc.dynamics.simulate`` with method "meanfield" redraws the same
# PREPARATION states and pulse pattern from the stored seed and uses the same rate
# prefactors and hop pairs (``rate_setup``), so it starts from the same ensemble with the
# same processes; at the reduced sizes it costs well under a second per realization and
# needs no change of the run or the file layout (kmc never imports analysis).

# slopes per ln t are fitted on t_min <= t <= t_L / 10**SLOPE_END
SLOPE_END = 1.0


@dataclass(frozen=True)
class ThreeCurves:
    """One observable of one point: KMC, mean-field dynamics, linear prediction.

    name : str, the observable ("excess_energy", "projection", "energy_response")
    times : (T,) float
    rows : {"kmc", "meanfield", "linear"} -> (K, T) float, per realization (linear may be
        absent); per site
    baseline : str, how the baseline was measured
    note : str, why a curve is missing ("" if none is)
    """

    name: str
    times: np.ndarray
    rows: dict
    baseline: str
    note: str = ""

    def mean(self, kind):
        return np.mean(self.rows[kind], axis=0)

    def stderr(self, kind):
        r = self.rows[kind]
        return (np.std(r, axis=0, ddof=1) / np.sqrt(r.shape[0]) if r.shape[0] > 1
                else np.full(r.shape[1], np.nan))

    def residual(self, kind):
        """(z, diff, diff_se): realization mean of KMC_k - model_k, its SE and the ratio."""
        d = self.rows["kmc"] - self.rows[kind]
        mean = d.mean(axis=0)
        se = (d.std(axis=0, ddof=1) / np.sqrt(d.shape[0]) if d.shape[0] > 1
              else np.full(d.shape[1], np.nan))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, mean / se, np.nan)
        return z, mean, se

    def slope_window(self):
        t = self.times
        return (t >= t[0]) & (t <= t[-1] / 10.0 ** SLOPE_END)

    def slope(self, kind):
        """(mean, SE) over realizations of the least-squares slope d y / d ln t in the
        slope window (per-realization slopes: the time correlation of a curve is kept)."""
        w = self.slope_window()
        lt = np.log(self.times[w])
        s = np.array([_slope(lt, row[w])[0] for row in self.rows[kind]])
        se = np.std(s, ddof=1) / np.sqrt(s.size) if s.size > 1 else np.nan
        return float(np.mean(s)), float(se)

    def slope_difference(self, kind):
        """(mean, SE) over realizations of slope(KMC_k) - slope(model_k): the paired
        comparison of the slopes, free of the disorder variance the two share."""
        w = self.slope_window()
        lt = np.log(self.times[w])
        d = np.array([_slope(lt, a[w])[0] - _slope(lt, b[w])[0]
                      for a, b in zip(self.rows["kmc"], self.rows[kind])])
        se = np.std(d, ddof=1) / np.sqrt(d.size) if d.size > 1 else np.nan
        return float(np.mean(d)), float(se)

    def agreement(self, kind, k=2.0):
        """Fraction of sample times (before the pinned last decade) with |z| <= k, and
        max |z| there."""
        z = self.residual(kind)[0][self.slope_window()]
        z = z[np.isfinite(z)]
        if not z.size:
            return np.nan, np.nan
        return float(np.mean(np.abs(z) <= k)), float(np.max(np.abs(z)))


def _last_sample_baseline(rows):
    """Each row minus its value at the last sample time."""
    rows = np.asarray(rows, dtype=float)
    return rows - rows[..., -1:]


def meanfield_params(config):
    """DynamicsParams of ``config`` with method "meanfield" (same protocol, grid, seeds);
    the response protocol keeps method "kmc" (``simulate`` runs it only by KMC; its
    mean-field dynamics is integrated here, ``_response_meanfield``)."""
    from dataclasses import replace
    params = config.dynamics_params()
    return params if params.protocol == "response" else replace(params, method="meanfield")


def _approximation_note(config):
    """The stated approximation of the rate law, if the run file turned one on (the KMC uses
    the resonance width too since 2026-11-22; files written before, by the kmc of git
    32d8688 or older, rounded the mean-field dynamics' rates only)."""
    w = config.dynamics.resonance_width
    if config.model.name == "electron" and w > 0:
        return f"resonance width {w:g} J (KMC and mean-field dynamics)"
    return ""


def _meanfield_run(res, p, k, params):
    from kmc.dynamics import simulate
    return simulate(res.system(int(k), p), params, seed=res.seed, point=p, realization=int(k))


def _missing_meanfield(err):
    """The note of a mean-field integration that stopped (electron glass at
    resonance_width = 0, docs/meanfield-dynamics.md): the curve is left out, not faked."""
    key = str(err).split(":")[0]
    return f"mean-field dynamics not drawn: the integration stopped (set {key} > 0)"


def _pattern(res, p, k, n, strength):
    """The pulse pattern F g of realization k: the first PREPARATION draw (as the run)."""
    from kmc import seeding
    from kmc.dynamics.preparation import pulse_pattern
    return pulse_pattern(seeding.stream(res.seed, p, int(k), seeding.PREPARATION), n, strength)


def _tls_linear_deviation(system, fields, temperature, a, c, times, t0):
    """x(t) - x^eq of the linearization without f from the deviation c at t0, (T, N)."""
    from kmc.solvers.linear import response as lr
    lin = lr.tls_linearization(system, fields, temperature, a=a, interactions=False)
    dt = np.maximum(np.asarray(times) - t0, 0.0)
    return np.exp(-np.multiply.outer(dt, lin.rates)) * c, lr.energy_weights(lin)


def _electron_linear_deviation(system, fields, mu, temperature, xi, gamma0, pairs, c, times,
                               t0):
    """(e^(A (t - t0)) c, (T, N), and the energy weights E_i - mu), A on the KMC's pairs."""
    from scipy.integrate import solve_ivp

    from kmc.solvers.linear import electron_rate_matrix
    a = electron_rate_matrix(system, fields, mu, temperature, xi, gamma0, pairs=pairs)
    dt = np.maximum(np.asarray(times, dtype=float) - t0, 0.0)
    x = np.tile(c, (dt.size, 1))
    later = dt > 0
    if later.any():
        sol = solve_ivp(lambda _, y: a @ y, (0.0, dt[later][-1]), c, method="BDF",
                        t_eval=dt[later], jac=a, rtol=1e-8,
                        atol=1e-12 * max(1.0, np.abs(c).max()))
        x[later] = sol.y.T
    return x, np.asarray(fields) - mu


def relaxation_curves(res, p):
    """ThreeCurves of a quench or pulse point: the excess energy per site and, for a
    pulse, the projection on the pulse pattern per site, each against its own value at
    the last sample time.

    KMC: the stored replica means. Mean-field dynamics: ``simulate`` with method
    "meanfield" from the same prepared states (module comment). Linear prediction: the
    linearization at the mean-field state (TLS without f, electron A on the KMC's hop
    pairs) propagating the KMC's measured deviation c = x(t_0) - x(t_L) from the first
    sample time t_0 (quench), or the pulse response for the same F, g, t_w (pulse); its
    energy to first order (``energy_weights``).
    """
    from kmc.dynamics.run import rate_setup
    from kmc.solvers.linear import response as lr
    config = res.points[p].config
    m, dyn = config.model, config.dynamics
    params = meanfield_params(config)
    times = res.dataset("dynamics/times", p)
    ok = res.converged(p)
    n = m.N
    energy = res.rows("dynamics/energy", p)
    occupation = res.rows("dynamics/occupation", p)
    fields = res.rows("fields", p)
    mus = res.rows("mu", p)
    rows = {name: {"kmc": [], "meanfield": [], "linear": []} for name in ("excess_energy",
                                                                        "projection")}
    note = ""
    for i, k in enumerate(ok):
        system = res.system(int(k), p)
        mf = None
        if not note:
            try:
                mf = _meanfield_run(res, p, k, params)
            except ConfigError as err:
                note = _missing_meanfield(err)
        rows["excess_energy"]["kmc"].append(energy[i] / n)
        if mf is not None:
            rows["excess_energy"]["meanfield"].append(mf.energy.mean / n)
        if m.name == "tls":
            lin = lr.tls_linearization(system, fields[i], m.temperature, a=m.a,
                                       interactions=False)
        else:
            pairs = rate_setup(system, params)[1]
            lin = lr.electron_linearization(system, fields[i], float(mus[i]), m.temperature,
                                            m.xi, m.gamma0, pairs)
        weights = lr.energy_weights(lin)
        if dyn.protocol == "pulse":
            g = _pattern(res, p, k, n, 1.0)
            rows["projection"]["kmc"].append(occupation[i] @ g / n)
            if mf is not None:
                rows["projection"]["meanfield"].append(mf.occupation.mean @ g / n)
            drive = dyn.pulse_strength * lr.field_drive(lin, g)
            for name, w in (("projection", g), ("excess_energy", weights)):
                rows[name]["linear"].append(
                    lr.step_response(lin, drive, w, times, dyn.waiting_time) / n)
        else:
            c = occupation[i, 0] - occupation[i, -1]
            if m.name == "tls":
                dx, _ = _tls_linear_deviation(system, fields[i], m.temperature, m.a, c,
                                              times, times[0])
            else:
                dx, _ = _electron_linear_deviation(system, fields[i], float(mus[i]),
                                                   m.temperature, m.xi, m.gamma0,
                                                   rate_setup(system, params)[1], c, times,
                                                   times[0])
            rows["excess_energy"]["linear"].append(dx @ weights / n)
    out = []
    for name, r in rows.items():
        if not r["kmc"]:
            continue
        if note:
            r.pop("meanfield")
        r = {kind: _last_sample_baseline(v) for kind, v in r.items() if v}
        out.append(ThreeCurves(name, times, r,
                               "each curve minus its own value at the last time $t_L$",
                               note or _approximation_note(config)))
    return out


def _response_meanfield(system, params, prepared, pattern):
    """Mean-field dynamics of the response protocol from the common prepared state:
    aged for ``aging_time`` at T, then the pulse F g at T + dT (perturbed) or nothing
    (twin) for t_w, then relaxation at T. Returns (projection, energy) differences (T,)."""
    from dataclasses import replace

    from kmc.dynamics import meanfield_dynamics as mfd
    from kmc.dynamics.run import mean_field_model, rate_setup
    prefactors, pairs = rate_setup(system, params)
    model = mean_field_model(system, params, prefactors, pairs)
    hot = replace(params, temperature=params.temperature + params.temperature_step)
    base = system.bias if system.model == "tls" else system.site_energies
    pulse = mean_field_model(system, hot, prefactors, pairs,
                             bias=base + params.pulse_strength * pattern)
    times = params.times()
    tol = dict(rtol=params.meanfield_rtol, atol=params.meanfield_atol)
    start = np.asarray(prepared, dtype=float)
    if params.aging_time > 0:
        aged = mfd.integrate(model, start, np.array([params.aging_time]), **tol)
        _check(aged)
        start = aged.states[-1]
    pert = mfd.integrate(model, start, times, pulse_model=pulse,
                         waiting_time=params.waiting_time, **tol)
    twin = mfd.integrate(model, start, times, pulse_model=model,
                         waiting_time=params.waiting_time, **tol)
    _check(pert), _check(twin)
    return (pert.states - twin.states) @ pattern, pert.energy - twin.energy


def _check(traj):
    if not traj.success:
        raise ConfigError("dynamics.resonance_width",
                          f"mean-field dynamics stopped: {traj.message} "
                          "(docs/meanfield-dynamics.md)")


def response_curves(res, p):
    """ThreeCurves of a response point: the signed projection P(t) = sum_i g_i dx_i and
    the energy response, per site, perturbed minus twin.

    KMC and the linear prediction are the stored rows (``dynamics/response``,
    ``dynamics/response_predicted``, the energy likewise). Mean-field dynamics: the same
    protocol integrated from the common prepared state, rebuilt from the stored seed
    (annealed static MC, as the run; the rebuilt pattern g is checked against the stored
    one), aged by the mean-field dynamics itself.
    """
    from kmc import seeding
    from kmc.dynamics.preparation import annealed_state, pulse_pattern
    note = ""
    config = res.points[p].config
    params = meanfield_params(config)
    n = config.model.N
    ok = res.converged(p)
    stored_g = res.rows("dynamics/response_pattern", p)
    names = {"projection": ("response", 0), "energy_response": ("energy_response", 1)}
    rows = {name: {"kmc": res.rows(f"dynamics/{key}", p) / n, "meanfield": [],
                   "linear": res.rows(f"dynamics/{key}_predicted", p) / n}
            for name, (key, _) in names.items()}
    for i, k in enumerate(ok):
        system = res.system(int(k), p)
        rng = seeding.stream(res.seed, p, int(k), seeding.PREPARATION)
        g = pulse_pattern(rng, n, 1.0)
        if not np.array_equal(g, stored_g[i]):
            raise RuntimeError(f"point {p}, realization {k}: the rebuilt pulse pattern "
                               "differs from the stored one (other program version?)")
        prepared = annealed_state(system, params.temperature, rng,
                                  params.mc_preparation_sweeps, params.anneal_temperature)
        x = 2.0 * prepared if system.model == "tls" else prepared
        if note:
            continue
        try:
            mf = _response_meanfield(system, params, x, g)
        except ConfigError as err:
            note = _missing_meanfield(err)
            continue
        for name, (_, j) in names.items():
            rows[name]["meanfield"].append(mf[j] / n)
    out = []
    for name, r in rows.items():
        if note:
            r.pop("meanfield")
        r = {kind: np.asarray(v, dtype=float) for kind, v in r.items()}
        if np.all(np.isnan(r["linear"])):
            del r["linear"]
        out.append(ThreeCurves(name, params.times(), r,
                               "perturbed minus its unperturbed twin from the same start",
                               note or _approximation_note(config)))
    return out


# (path, modification time, point) -> curves: the dynamics and the aging figure of one
# file share the mean-field integrations
_CURVES_CACHE = {}


def dynamics_curves(res, p):
    """ThreeCurves of point ``p`` of a dynamics result file, by protocol."""
    import os
    key = (os.path.abspath(res.path), os.stat(res.path).st_mtime_ns, p)
    if key not in _CURVES_CACHE:
        protocol = res.points[p].config.dynamics.protocol
        if protocol == "response":
            _CURVES_CACHE[key] = response_curves(res, p)
        elif protocol in ("quench", "pulse"):
            _CURVES_CACHE[key] = relaxation_curves(res, p)
        else:
            _CURVES_CACHE[key] = []
    return _CURVES_CACHE[key]


def format_comparison(path):
    """Text table of every point and observable of a dynamics result file: the slopes per
    ln t (mean +- SE over realizations) of KMC, mean-field dynamics and linear prediction,
    the paired slope differences, and the fraction of times with |z| <= 2 of the residuals
    (``python -m analysis compare FILE``)."""
    import kmc
    from . import labels as lb
    res = kmc.load(path)
    lines = [f"{path}: {res.model}, protocol {res.points[0].config.dynamics.protocol}; slopes "
             f"d y / d ln t for t_min <= t <= t_L / 10^{SLOPE_END:g}, y per site; "
             "dslope = KMC - model paired; |z|<=2 = fraction of those times within 2 SE"]
    names = [n.replace('$', '') for n in lb.point_labels([p.values for p in res.points])]
    for p in range(len(res.points)):
        for cur in dynamics_curves(res, p):
            n_k = cur.rows["kmc"].shape[0]
            s, se = cur.slope("kmc")
            head = f"  {names[p] or 'point 0'} [{cur.name}, {n_k} real.]"
            lines.append(f"{head}: KMC {s:+.4g} +- {se:.2g}")
            for kind in ("meanfield", "linear"):
                if kind not in cur.rows:
                    continue
                m, _ = cur.slope(kind)
                d, dse = cur.slope_difference(kind)
                frac, zmax = cur.agreement(kind)
                lines.append(f"      {kind:9s} {m:+.4g}; dslope {d:+.3g} +- {dse:.2g} "
                             f"({d / dse:+.1f} SE); |z|<=2 at {frac:.0%}, max |z| {zmax:.1f}")
            if cur.note:
                lines.append(f"      note: {cur.note}")
    return "\n".join(lines)
