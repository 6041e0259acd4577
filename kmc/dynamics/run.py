"""Driver: one realization's time-domain experiment, by kinetic Monte Carlo or exactly.

``simulate(system, params, seed, point, realization)`` prepares the initial states, runs
the replicas (or propagates the master equation) and returns a DynamicsResult with every
observable on the log-spaced grid as mean and standard error, plus the equilibrium
baselines. Random streams (kmc.seeding): PREPARATION draws the pulse pattern, the initial
states and the static-MC baseline, in that order; DYNAMICS drives every replica's
trajectory, replicas one after the other; SOLVER the mean-field sweep order. Results do
not depend on how the run is split into chunks or checkpoints.
"""
import warnings
from dataclasses import dataclass, field

import numpy as np

from kmc import seeding
from kmc.errors import ConfigError
from kmc.storage import checkpoint as ckpt
from kmc.dynamics.acceleration import AccelerationSettings, Accelerator
from kmc.dynamics.counters import EVENTS, N_COUNTERS, TRIALS, counter_totals
from kmc.dynamics.electron_engine import ElectronEngine, hop_pairs, pair_prefactors
from kmc.dynamics.master import MasterEquation
from kmc.dynamics.observables import Baseline, Curve, deviation_curve, replica_curve
from kmc.dynamics.params import DynamicsParams
from kmc.dynamics.preparation import (equilibrium_states, mean_field_baseline, pulse_pattern,
                          static_mc_baseline)
from kmc.dynamics.tls_engine import TLSEngine

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
    counters : dict, totals over replicas: events, trials, recentres, bound_violations,
        events_unaccelerated (the estimate of the events without temporal acceleration;
        equal to events when it is off)
    replica_counters : (R, 3) float or None, per trajectory: events, trials, estimated
        events without acceleration (method kmc)
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
    replica_counters: np.ndarray | None = None


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
    """The kinetic engine of the system's model at params.temperature; wrapped in an
    Accelerator (kmc.dynamics.acceleration) when params.acceleration is on, except for
    the pulse phase (``bias`` given), which always runs exactly."""
    if system.model == "tls":
        engine = TLSEngine(system, params.temperature, prefactors, bias=bias,
                           window=params.window, kernel=params.kernel)
    else:
        engine = ElectronEngine(system, params.temperature, pairs, prefactors,
                                site_energies=bias, window=params.window, kernel=params.kernel)
    if params.acceleration != "off" and bias is None:
        return Accelerator(engine, AccelerationSettings(
            executions=float(params.acceleration_executions)))
    return engine


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
        kmc.solvers.meanfield.MeanFieldResult (solved at T: another temperature is a
        ConfigError). None solves the mean field at T with
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
    if getattr(mean_field, "temperature", t) != t:
        raise ConfigError("mean_field", f"solved at T = {mean_field.temperature}, but the "
                                        f"dynamics runs at T = {t}; solve it at T")
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
    pulse = None
    if biased is not None and params.waiting_time > 0:
        pulse = (make_engine(system, params, prefactors, pairs, bias=biased),
                 params.waiting_time)

    rng = seeding.stream(seed, point, realization, seeding.DYNAMICS)
    outputs = {"energies": np.zeros((n_rep, times.size)),
               "excitations": np.zeros((n_rep, times.size)),
               "configs": np.zeros((n_rep, times.size, n), dtype=np.int8),
               "totals": np.zeros(N_COUNTERS, dtype=np.int64),
               "replica_counters": np.zeros((n_rep, 3))}
    first, resume = 0, None
    saver = None
    if checkpoint is not None:
        key = (system.model, n, float(np.sum(prefactors)), float(states.sum()))
        saver = ckpt.ReplicaCheckpoints(
            checkpoint, ckpt.fingerprint(key, seed, point, realization, repr(params)),
            params.checkpoint_interval)
        loaded = saver.resume(rng)
        if loaded is not None:
            first, phase, state_arrays, outputs = loaded
            if state_arrays is not None:
                owner = pulse[0] if phase == 0 else engine
                resume = (phase, owner.state_type.from_arrays(state_arrays))

    for r in range(first, n_rep):
        def after_chunk(phase, state, r=r):
            # a checkpoint between chunks: after the last replica there is nothing to resume
            if saver is not None and saver.due() and (state is not None or r + 1 < n_rep):
                saver.save(r if state is not None else r + 1, phase,
                           None if state is None else state.arrays(), outputs, rng)
            if _after_chunk is not None:
                _after_chunk()

        out = {"energy": outputs["energies"][r], "excitations": outputs["excitations"][r],
               "config": outputs["configs"][r]}
        run_replica(engine, pulse, states[r], times, rng, params.chunk_trials, out,
                    outputs["totals"], resume, after_chunk, outputs["replica_counters"][r])
        resume = None
    if saver is not None:
        saver.finish()

    configs = outputs["configs"]
    counters = counter_totals(outputs["totals"])
    per_replica = outputs["replica_counters"]
    counters["events_unaccelerated"] = float(per_replica[:, 2].sum())
    energy = replica_curve(outputs["energies"])
    exc = replica_curve(outputs["excitations"])
    return DynamicsResult(
        system.model, "kmc", times, energy,
        Curve(energy.mean - equilibrium.energy, energy.stderr), exc,
        Curve(exc.mean - equilibrium.excitations, exc.stderr),
        deviation_curve(configs, equilibrium.occupation), replica_curve(configs.astype(float)),
        equilibrium, mf, None, n_rep, counters, mf_ok, per_replica.copy())


def run_replica(engine, pulse, initial, times, rng, chunk_trials, out, totals, resume=None,
                after_chunk=None, replica_counters=None):
    """One replica's trajectory: the pulse phase (if any), then the relaxation on ``times``.

    Parameters
    ----------
    engine : TLSEngine or ElectronEngine of the relaxation (at T, bare bias)
    pulse : None or (engine with the pulse bias, waiting time t_w): phase 0 runs it from
        ``initial`` up to t_w, and its final configuration starts the relaxation at t = 0
    initial : (N,) configuration the replica starts from
    times : (n_times,) sampling grid of the relaxation
    rng : numpy Generator, advanced in place (the DYNAMICS stream)
    chunk_trials : int, trials per kernel call
    out : dict of "energy" (n_times,), "excitations" (n_times,), "config" (n_times, N) int8,
        filled in place
    totals : (5,) int64, the counters of each finished phase are added in place (so that a
        checkpoint taken in the relaxation phase includes the pulse phase)
    resume : None or (phase, state) of a checkpoint taken inside this replica
    after_chunk : None or callable(phase, state) called after every kernel call; state is
        None once the replica is complete (the checkpoint callback of simulate)
    replica_counters : None or (3,) float, this replica's [events, trials, estimate of the
        events without acceleration], added in place when a phase finishes

    """
    if resume is not None:
        phase, state = resume
    elif pulse is not None:
        phase, state = 0, pulse[0].new_state(initial)
    else:
        phase, state = 1, engine.new_state(initial)
    if pulse is not None:
        pulse_grid = np.array([pulse[1]])
        pulse_out = {"energy": np.zeros(1), "excitations": np.zeros(1),
                     "config": np.zeros((1, engine.n_sites), dtype=np.int8)}
    while state is not None:
        if phase == 0:
            done = pulse[0].advance(state, pulse_grid, rng, chunk_trials, pulse_out)
        else:
            done = engine.advance(state, times, rng, chunk_trials, out)
        if done:
            totals += state.counters
            if replica_counters is not None:
                events = state.counters[EVENTS]
                replica_counters += (events, state.counters[TRIALS],
                                     state.accel.events_unaccelerated[0]
                                     if hasattr(state, "accel") else events)
            if phase == 0:
                state, phase = engine.new_state(state.config), 1
            else:
                state = None
        if after_chunk is not None:
            after_chunk(phase, state)


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
