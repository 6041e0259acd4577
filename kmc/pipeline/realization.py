"""One task of an ensemble: build a realization from its seed, solve its mean field, and
(when enabled) compute its linearized rates and run its time-domain experiment.

``compute`` is a plain top-level function of (point config, seed, point, realization) so
that any backend (in-process, process pool, Dask) can run it and get identical arrays.
``kmc.storage.schema.row_layout`` is the one description of what ``compute`` returns; the
result file creates its datasets from it.
"""
from pathlib import Path

import numpy as np

from kmc.pipeline import ensemble
from kmc.solvers import meanfield
from kmc.seeding import SOLVER, stream
from kmc.storage.schema import DYNAMICS_CURVES, Status, build_system, checkpoint_dir
from kmc.systems import TLSSystem


def solve_system(config, system, seed, point, realization):
    """Mean-field solution of ``system`` with the point's solver settings."""
    s = config.solver
    return meanfield.solve(system, config.model.temperature, tol=s.tol,
                           max_sweeps=s.max_sweeps, init=s.init, anneal=s.anneal,
                           rng=stream(seed, point, realization, SOLVER))


def compute(config, seed, point, realization, dos_edges):
    """The row of one realization: {dataset name of ``schema.row_layout``: array or scalar}."""
    system = build_system(config, seed, point, realization)
    result = solve_system(config, system, seed, point, realization)
    out = {
        "positions": system.positions,
        "fields": result.fields,
        "energies": result.energies,
        "mu": result.mu,
        "status": int(Status.CONVERGED if result.converged else Status.NOT_CONVERGED),
        "sweeps": result.sweeps,
        "residual": result.residual,
        "dos/counts": np.histogram(result.energies, bins=dos_edges)[0],
    }
    if isinstance(system, TLSSystem):
        out["bias"] = system.bias
        out["delta0"] = system.delta0
    else:
        out["site_energies"] = system.site_energies
    if config.linear.enabled:
        out.update(_linear(config, system, result))
    if config.dynamics.enabled:
        out.update(_dynamics(config, system, result, seed, point, realization))
    return out


def _linear(config, system, result):
    from kmc.solvers import linear
    m, lin = config.model, config.linear
    out = {}
    if m.name == "tls":
        # Eq. 12 at the Eq. 4 fields, in site order (so a measured c_i pairs with lambda_i)
        out["rates"] = linear.tls_rates(system, result.fields, m.temperature, m.a)
        out["n_positive"] = 0  # B without f is diagonal with -lambda < 0
        if lin.interactions:
            # Figs. 17-20 compare B with and without f at the same point: the exact fixed
            # point of the rate equation (it differs from Eq. 4 by O(Delta0^2), which alone
            # moves rates by up to a few per cent, more than f does for most of them)
            full = linear.tls_spectrum(system, result.fields, m.temperature, m.a,
                                       interactions=True)
            bare = linear.tls_spectrum(system, result.fields, m.temperature, m.a,
                                       interactions=False)
            out["rates_interacting"] = full.rates
            out["rates_refined"] = bare.rates
            out["n_positive_interacting"] = full.n_positive
        return out
    spec = linear.electron_spectrum(system, result.fields, result.mu, m.temperature, m.xi,
                                    m.gamma0)
    out["rates"], out["n_positive"] = spec.rates, spec.n_positive
    if lin.interactions:
        full = linear.electron_spectrum(system, result.fields, result.mu, m.temperature, m.xi,
                                        m.gamma0, interaction_term=True)
        out["rates_interacting"] = full.rates
        out["n_positive_interacting"] = full.n_positive
    if lin.distance_matrix:
        out["rates_distance"] = linear.distance_matrix_spectrum(system.distances, m.xi).rates
    return out


def _dynamics(config, system, result, seed, point, realization):
    from kmc.dynamics import simulate
    dyn = config.dynamics
    initial = None
    if dyn.protocol == "state":
        states = np.load(dyn.initial_state_file)
        initial = states if states.ndim == 1 else states[realization]
    params = config.dynamics_params(initial_state=initial)
    checkpoint = None
    if dyn.method == "kmc" and dyn.checkpoint_interval > 0:
        folder = Path(checkpoint_dir(config.output.path))
        folder.mkdir(parents=True, exist_ok=True)
        checkpoint = folder / f"p{point:04d}_r{realization:05d}.npz"
    res = simulate(system, params, seed=seed, point=point, realization=realization,
                   checkpoint=checkpoint, mean_field=result,
                   progress=ensemble.task_progress.get())
    out = {}
    for name in DYNAMICS_CURVES:
        curve = getattr(res, name)
        out[f"dynamics/{name}"] = curve.mean
        out[f"dynamics/{name}_stderr"] = curve.stderr
    out["dynamics/occupation"] = res.occupation.mean
    out["dynamics/equilibrium_occupation"] = res.equilibrium.occupation
    out["dynamics/equilibrium_energy"] = res.equilibrium.energy
    out["dynamics/equilibrium_excitations"] = res.equilibrium.excitations
    if res.mean_field is not None:
        out["dynamics/mean_field_occupation"] = res.mean_field.occupation
        out["dynamics/mean_field_energy"] = res.mean_field.energy
        out["dynamics/mean_field_excitations"] = res.mean_field.excitations
    out["dynamics/events"] = int(res.counters.get("events", -1))
    if res.replica_counters is not None:
        # per trajectory: events, trials, estimate of the events without acceleration
        out["dynamics/replica_counters"] = res.replica_counters
    if res.response is not None:
        out.update(_response(system, result, params, res))
    return out


def _response(system, result, params, res):
    """The response protocol's per-realization curves (docs/linear-response.md): twin
    differences of the g-projection and of the energy with their paired standard errors
    over replicas, the twin's drifts over the window and the aging they were measured
    after (kmc.dynamics.stationarity), and the linear prediction for
    the same F, g, t_w and temperature step (NaN at an unstable mean-field point)."""
    from kmc.dynamics.run import rate_setup
    from kmc.dynamics.stationarity import twin_drift
    from kmc.solvers.linear import response as lr
    from kmc.statistics import mean_sem
    rec = res.response
    out = {"dynamics/response_pattern": rec.pattern}
    for name, (a, b) in {"response": (rec.projection, rec.twin_projection),
                         "energy_response": (rec.energy, rec.twin_energy)}.items():
        out[f"dynamics/{name}"], out[f"dynamics/{name}_stderr"] = mean_sem(a - b)
    out["dynamics/twin_energy_drift"], out["dynamics/twin_energy_drift_stderr"] = \
        twin_drift(rec.twin_energy)
    out["dynamics/twin_drift"], out["dynamics/twin_drift_stderr"] = \
        twin_drift(rec.twin_projection)
    out["dynamics/aging_time_used"] = rec.aging_time
    out["dynamics/aging_attempts"] = rec.aging_attempts
    out["dynamics/aging_stationary"] = int(rec.stationary)
    t = params.temperature
    if system.model == "tls":
        variants = {"": lr.tls_linearization(system, result.fields, t, a=params.a),
                    "_no_f": lr.tls_linearization(system, result.fields, t, a=params.a,
                                                  interactions=False)}
    else:
        pairs = rate_setup(system, params)[1]
        variants = {"": lr.electron_linearization(system, result.fields, result.mu, t,
                                                  params.xi, params.gamma0, pairs)}
    for suffix, lin in variants.items():
        drive = (params.pulse_strength * lr.field_drive(lin, rec.pattern)
                 + params.temperature_step * lr.temperature_drive(lin))
        for name, weights in (("response", rec.pattern),
                              ("energy_response", lr.energy_weights(lin))):
            key = f"dynamics/{name}_predicted{suffix}"
            out[key] = (np.full(res.times.size, np.nan) if lin.n_positive else
                        lr.step_response(lin, drive, weights, res.times, params.waiting_time))
    return out
