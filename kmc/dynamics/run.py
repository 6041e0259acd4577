"""Driver: one realization's time-domain experiment, by kinetic Monte Carlo or exactly.

``simulate(system, params, seed, point, realization)`` prepares the initial states, runs
the replicas (or propagates the master equation) and returns a DynamicsResult with every
observable on the log-spaced grid as mean and standard error, plus the equilibrium
baselines. Random streams (kmc.seeding): PREPARATION draws the pulse pattern, the initial
states and the static-MC baseline, in that order; DYNAMICS drives every replica's
trajectory, replicas one after the other; SOLVER the mean-field sweep order. Results do
not depend on how the run is split into chunks or checkpoints.
"""
import math
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from kmc import seeding
from kmc.errors import ConfigError
from kmc.storage import checkpoint as ckpt
from kmc.dynamics.electron_engine import ElectronEngine, hop_pairs, pair_prefactors
from kmc.dynamics.master import MasterEquation
from kmc.dynamics.observables import Baseline, Curve, deviation_curve, replica_curve
from kmc.dynamics.params import DynamicsParams
from kmc.dynamics.preparation import (equilibrium_states, mean_field_baseline, pulse_pattern,
                          static_mc_baseline)
from kmc.dynamics.tls_engine import EVENTS, RECENTRES, TRIALS, VIOLATIONS, TLSEngine

# Test hook: called after every kernel chunk (after a due checkpoint is written).
_after_chunk = None


@dataclass(frozen=True)
class DynamicsResult:
    """Relaxation of one realization on the time grid.

    times : (n_times,) float
    energy, excitations : Curve of (n_times,), replica mean and standard error
    excess_energy, excess_excitations : Curve, the same minus the equilibrium baseline
        (the baseline's own error is in ``equilibrium``, not added here)
    deviation : Curve (n_times,), |dsigma|(t) (TLS) or |dn|(t) (electron glass) against
        ``equilibrium.occupation``; jackknife error over replicas
    occupation : Curve (n_times, N), <sigma_i(t)> = <2 S_i(t)> or <n_i(t)>
    equilibrium : Baseline at T, static Monte Carlo ("static_mc", method kmc) or the exact
        Boltzmann distribution of H ("boltzmann", method exact)
    mean_field : Baseline or None, from the mean-field solution at T
    stationary : Baseline or None, the master equation's stationary vector (method exact)
    counters : dict, totals over replicas: events, trials, recentres, bound_violations
    """

    model: str
    method: str
    times: np.ndarray
    energy: Curve
    excess_energy: Curve
    excitations: Curve
    excess_excitations: Curve
    deviation: Curve
    occupation: Curve
    equilibrium: Baseline
    mean_field: Baseline | None
    stationary: Baseline | None
    replicas: int
    counters: dict = field(default_factory=dict)
    mean_field_converged: bool | None = None


def rate_setup(system, params):
    """Static prefactors (one array) and, for the electron glass, the hop pairs.

    Returns (prefactors, pairs): TLS (N,) a Delta0_i^2 and None; electron (P,)
    Gamma0 e^(-r/xi) over the (P, 2) pairs with r <= hop_cutoff.
    """
    if system.model == "tls":
        return params.a * np.asarray(system.delta0, dtype=float) ** 2, None
    pairs, r = hop_pairs(system.distances, params.hop_cutoff)
    if pairs.shape[0] == 0:
        raise ConfigError("dynamics.hop_cutoff",
                          f"no pair of sites within {params.hop_cutoff}")
    return pair_prefactors(r, params.xi, params.gamma0), pairs


def make_engine(system, params, prefactors, pairs, bias=None):
    """The kinetic engine of the system's model at params.temperature."""
    if system.model == "tls":
        return TLSEngine(system, params.temperature, prefactors, bias=bias,
                         window=params.window, kernel=params.kernel)
    return ElectronEngine(system, params.temperature, pairs, prefactors, site_energies=bias,
                          window=params.window, kernel=params.kernel)


def simulate(system, params, seed=0, point=0, realization=0, checkpoint=None,
             mean_field=None):
    """Run one realization's experiment.

    Parameters
    ----------
    system : TLSSystem or ElectronSystem
    params : DynamicsParams
    seed, point, realization : int, the stream identity (kmc.seeding.stream)
    checkpoint : path or None; KMC only. If the file exists the run resumes from it;
        a checkpoint is written every params.checkpoint_interval seconds of wall time
        between kernel chunks and deleted when the run completes.
    mean_field : None, (N,) fields (TLS Delta'_i, electron E_i) or a
        kmc.solvers.meanfield.MeanFieldResult. None solves the mean field at T with
        kmc.solvers.meanfield.solve (SOLVER stream).

    Returns
    -------
    DynamicsResult
    """
    if not isinstance(params, DynamicsParams):
        raise ConfigError("dynamics", f"expected DynamicsParams, got {type(params).__name__}")
    n = system.n_sites
    initial = None
    if params.protocol == "state":
        initial = np.asarray(params.initial_state, dtype=float)
        if initial.shape != (n,):
            raise ConfigError("dynamics.initial_state", f"expected {n} values, got {initial.shape}")
        if system.model == "electron":
            initial = initial.astype(np.int8)
    prefactors, pairs = rate_setup(system, params)
    prep_rng = seeding.stream(seed, point, realization, seeding.PREPARATION)
    biased = None
    if params.protocol == "pulse":
        base = system.bias if system.model == "tls" else system.site_energies
        biased = base + pulse_pattern(prep_rng, n, params.pulse_strength)
    mf, mf_ok = _mean_field(system, params, mean_field, seed, point, realization)
    if params.method == "exact":
        return _simulate_exact(system, params, prefactors, pairs, biased, initial, mf, mf_ok)
    return _simulate_kmc(system, params, prefactors, pairs, biased, initial, mf, mf_ok,
                         prep_rng, seed, point, realization, checkpoint)


def _mean_field(system, params, mean_field, seed, point, realization):
    t = params.temperature
    if mean_field is None:
        from kmc.solvers import meanfield
        mean_field = meanfield.solve(system, t, rng=seeding.stream(seed, point, realization,
                                                                   seeding.SOLVER))
    if hasattr(mean_field, "fields"):
        if not mean_field.converged:
            warnings.warn(f"mean field at T = {t} did not converge "
                          f"(residual {mean_field.residual:.3g}); baseline kept, flagged")
        return (mean_field_baseline(system, t, mean_field.fields, mean_field.mu),
                bool(mean_field.converged))
    return mean_field_baseline(system, t, np.asarray(mean_field, dtype=float)), None


def _simulate_kmc(system, params, prefactors, pairs, biased, initial, mf, mf_ok, prep_rng,
                  seed, point, realization, checkpoint):
    n, n_rep = system.n_sites, params.replicas
    times = params.times()
    if params.protocol == "state":
        states = np.repeat(initial[None, :], n_rep, axis=0)
    else:
        t0 = params.temperature if params.protocol == "pulse" else params.initial_temperature
        states = equilibrium_states(system, t0, prep_rng, n_rep, params.mc_preparation_sweeps)
    equilibrium = static_mc_baseline(system, params.temperature, prep_rng,
                                     params.mc_equilibration_sweeps, params.mc_sampling_sweeps)
    engine = make_engine(system, params, prefactors, pairs)
    with_pulse = biased is not None and params.waiting_time > 0
    pulse_engine = make_engine(system, params, prefactors, pairs, bias=biased) \
        if with_pulse else None
    pulse_grid = np.array([params.waiting_time])
    pulse_out = {"energy": np.zeros(1), "excitations": np.zeros(1),
                 "config": np.zeros((1, n), dtype=np.int8)}

    rng = seeding.stream(seed, point, realization, seeding.DYNAMICS)
    energies = np.zeros((n_rep, times.size))
    excitations = np.zeros((n_rep, times.size))
    configs = np.zeros((n_rep, times.size, n), dtype=np.int8)
    totals = np.zeros(5, dtype=np.int64)
    r, phase, state = 0, 1, None
    fp = None
    if checkpoint is not None:
        key = (system.model, n, float(np.sum(prefactors)), float(states.sum()))
        # how often to save is not part of what is computed: a resume may change it
        fp = ckpt.fingerprint(key, seed, point, realization,
                              repr(replace(params, checkpoint_interval=0.0)))
        loaded = ckpt.load(checkpoint, fp, rng)
        if loaded is not None:
            meta, arrays = loaded
            r, phase = meta["replica"], meta["phase"]
            energies, excitations = arrays["energies"], arrays["excitations"]
            configs, totals = arrays["configs"], arrays["totals"]
            if meta["has_state"]:
                state = {k[6:]: v for k, v in arrays.items() if k.startswith("state_")}
    last_save = time.monotonic()
    while r < n_rep:
        if state is None:
            phase = 0 if with_pulse else 1
            state = (pulse_engine if phase == 0 else engine).new_state(states[r])
        if phase == 0:
            done = pulse_engine.advance(state, pulse_grid, rng, params.chunk_trials, pulse_out)
        else:
            out = {"energy": energies[r], "excitations": excitations[r], "config": configs[r]}
            done = engine.advance(state, times, rng, params.chunk_trials, out)
        if done:
            totals += state["counters"]
            if phase == 0:
                state, phase = engine.new_state(state["config"]), 1
            else:
                state, r = None, r + 1
        if checkpoint is not None and r < n_rep \
                and time.monotonic() - last_save >= params.checkpoint_interval:
            arrays = {"energies": energies, "excitations": excitations, "configs": configs,
                      "totals": totals}
            if state is not None:
                arrays.update({"state_" + k: v for k, v in state.items()})
            ckpt.save(checkpoint, fp, {"replica": r, "phase": phase,
                                       "has_state": state is not None}, arrays, rng)
            last_save = time.monotonic()
        if _after_chunk is not None:
            _after_chunk()
    if checkpoint is not None:
        ckpt.remove(checkpoint)

    occupation = configs.astype(float)
    energy = replica_curve(energies)
    exc = replica_curve(excitations)
    counters = {"events": int(totals[EVENTS]), "trials": int(totals[TRIALS]),
                "recentres": int(totals[RECENTRES]),
                "bound_violations": int(totals[VIOLATIONS])}
    return DynamicsResult(
        system.model, "kmc", times, energy,
        Curve(energy.mean - equilibrium.energy, energy.stderr), exc,
        Curve(exc.mean - equilibrium.excitations, exc.stderr),
        deviation_curve(configs, equilibrium.occupation), replica_curve(occupation),
        equilibrium, mf, None, n_rep, counters, mf_ok)


def _simulate_exact(system, params, prefactors, pairs, biased, initial, mf, mf_ok):
    times = params.times()
    me = MasterEquation(system, params.temperature, prefactors, pairs=pairs)
    if params.protocol == "state":
        p0 = me.delta(initial)
    elif params.protocol == "pulse":
        p0 = me.boltzmann(params.temperature)
        if params.waiting_time > 0:
            me_pulse = MasterEquation(system, params.temperature, prefactors, bias=biased,
                                      pairs=pairs)
            p0 = me_pulse.propagate(p0, [params.waiting_time])[0]
    else:
        p0 = me.boltzmann(params.initial_temperature)
    p = me.propagate(p0, times)
    e, x, occ = me.expectations(p)
    equilibrium = _exact_baseline(me, me.boltzmann(params.temperature), "boltzmann")
    stationary = _exact_baseline(me, me.stationary(), "stationary")
    zero = np.zeros_like(e)
    return DynamicsResult(
        system.model, "exact", times, Curve(e, zero), Curve(e - equilibrium.energy, zero),
        Curve(x, zero), Curve(x - equilibrium.excitations, zero),
        Curve(np.abs(occ - equilibrium.occupation).sum(axis=1), zero),
        Curve(occ, np.zeros_like(occ)), equilibrium, mf, stationary, 1, {}, mf_ok)


def _exact_baseline(me, p, source):
    e, x, occ = me.expectations(p)
    return Baseline(float(e[0]), 0.0, float(x[0]), 0.0, occ[0], source)
