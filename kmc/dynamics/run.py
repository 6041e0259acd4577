"""Driver: one realization's time-domain experiment, by kinetic Monte Carlo, exactly or by
the mean-field rate equations.

``simulate(system, params, seed, point, realization)`` prepares the initial states, runs
the replicas (or propagates the master equation) and returns a DynamicsResult with every
observable on the log-spaced grid as mean and standard error, plus the equilibrium
baselines. Random streams (kmc.seeding): PREPARATION draws the pulse pattern, the initial
states and the static-MC baseline, in that order; DYNAMICS drives every replica's
trajectory, replicas one after the other; SOLVER the mean-field sweep order. Results do
not depend on how the run is split into chunks or checkpoints.

The response protocol (``_simulate_response``, docs/linear-response.md) draws from
PREPARATION the pattern g, the annealed common state and the static-MC baseline; each
replica r then has its own children of the DYNAMICS seed: (0, r) for its aging and (1, r)
shared by its perturbed and its twin trajectory.
"""
import dataclasses
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from kmc import seeding
from kmc.errors import ConfigError
from kmc.storage import checkpoint as ckpt
from kmc.dynamics.acceleration import AccelerationSettings, Accelerator
from kmc.dynamics.counters import EVENTS, N_COUNTERS, TRIALS, counter_totals
from kmc.dynamics.electron_engine import ElectronEngine, hop_pairs, pair_prefactors
from kmc.dynamics.master import MasterEquation
from kmc.dynamics import meanfield_dynamics as mfd
from kmc.dynamics.observables import Baseline, Curve, deviation_curve, replica_curve
from kmc.dynamics.params import DynamicsParams
from kmc.dynamics.stationarity import check_drift
from kmc.dynamics.preparation import (annealed_state, equilibrium_states, mean_field_baseline,
                                     pulse_pattern, static_mc_baseline)
from kmc.solvers.linear.electron import check_hop_cutoff
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
        events without acceleration (method kmc; response protocol: per replica, summed
        over its aging, perturbed and twin trajectories)
    response : ResponseRecord or None, the per-replica record of the response protocol
        (the curves above are then those of its perturbed ensemble)
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
    response: "ResponseRecord | None" = None


@dataclass(frozen=True)
class ResponseRecord:
    """Per-replica record of the response protocol (estimators: analysis.response).

    pattern : (N,) float, g of the bias pulse F g
    prepared : (N,) float, the common annealed configuration, x = 2 S or n
    starts : (R, N) float, replica r's configuration after its aging, x = 2 S or n; the
        perturbed and the twin trajectory r both start from it
    projection, twin_projection : (R, n_times) float, sum_i g_i x_i(t)
    energy, twin_energy : (R, n_times) float, H(t) in units of J
    twin_occupation : Curve (n_times, N), <x_i(t)> of the twin ensemble
    aging_time : float, the aging time of the recorded ensembles (the last one tried)
    aging_attempts : int, how many aging times were tried (1 with aging = "fixed")
    drift_checks : tuple of kmc.dynamics.stationarity.DriftCheck, the twin's drift of the
        driven observables (g-projection for a pulse, energy for a temperature step)
        against the signal, measured on the recorded ensembles
    stationary : bool, every drift check negligible
    """

    pattern: np.ndarray
    prepared: np.ndarray
    starts: np.ndarray
    projection: np.ndarray
    twin_projection: np.ndarray
    energy: np.ndarray
    twin_energy: np.ndarray
    twin_occupation: Curve
    aging_time: float = 0.0
    aging_attempts: int = 1
    drift_checks: tuple = ()
    stationary: bool | None = None


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


def make_engine(system, params, prefactors, pairs, bias=None, accelerate=None):
    """The kinetic engine of the system's model at params.temperature; wrapped in an
    Accelerator (kmc.dynamics.acceleration) when params.acceleration is on and
    ``accelerate`` (default: ``bias is None``) is true. The pulse protocol's strong pulse
    (``bias`` given) runs exactly; the response protocol accelerates its weak pulse too,
    which lasts up to 1/lambda_min when lambda_min is to be measured."""
    if system.model == "tls":
        engine = TLSEngine(system, params.temperature, prefactors, bias=bias,
                           window=params.window, kernel=params.kernel)
    else:
        engine = ElectronEngine(system, params.temperature, pairs, prefactors,
                                site_energies=bias, window=params.window, kernel=params.kernel,
                                resonance_width=params.resonance_width)
    if accelerate is None:
        accelerate = bias is None
    if params.acceleration != "off" and accelerate:
        return Accelerator(engine, AccelerationSettings(
            executions=float(params.acceleration_executions),
            burst=float(params.acceleration_burst)))
    return engine


def simulate(system, params, seed=0, point=0, realization=0, checkpoint=None,
             mean_field=None, progress=None):
    """Run one realization's experiment.

    Parameters
    ----------
    system : TLSSystem or ElectronSystem
    params : DynamicsParams
    seed, point, realization : int, the stream identity (kmc.seeding.stream)
    checkpoint : path or None; KMC only. If the file exists the run resumes from it;
        a checkpoint is written every params.checkpoint_interval seconds of wall time
        between kernel chunks and deleted when the run completes (every KMC protocol,
        the response protocol included).
    mean_field : None, (N,) fields (TLS Delta'_i, electron E_i) or a
        kmc.solvers.meanfield.MeanFieldResult (solved at T: another temperature is a
        ConfigError). None solves the mean field at T with
        kmc.solvers.meanfield.solve (SOLVER stream).
    progress : None or callable(replicas_done, n_replicas, t); KMC only: called after every
        kernel chunk with the simulated time t of the running replica (a progress bar;
        it changes nothing that is computed).

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
    if system.model == "electron" and params.method in ("kmc", "meanfield") \
            and params.protocol != "response":     # the response protocol checks its own
        check_hop_cutoff(system.distances, params.hop_cutoff, params.xi, run_time(params),
                         params.gamma0)
    if params.protocol == "response":
        return _simulate_response(system, params, prefactors, pairs, mean_field, seed, point,
                                  realization, checkpoint, progress)
    prep_rng = seeding.stream(seed, point, realization, seeding.PREPARATION)
    biased = None
    if params.protocol == "pulse":
        base = system.bias if system.model == "tls" else system.site_energies
        biased = base + pulse_pattern(prep_rng, n, params.pulse_strength)
    mf, mf_ok = _mean_field(system, params, mean_field, seed, point, realization)
    if params.method == "exact":
        return _simulate_exact(system, params, prefactors, pairs, biased, initial, mf, mf_ok)
    if params.method == "meanfield":
        return _simulate_meanfield(system, params, prefactors, pairs, biased, initial, mf,
                                   mf_ok, prep_rng)
    return _simulate_kmc(system, params, prefactors, pairs, biased, initial, mf, mf_ok,
                         prep_rng, seed, point, realization, checkpoint, progress)


def run_time(params):
    """Longest time a trajectory of the run covers (units of 1/Gamma0 or 1/(a J^3)): the
    pulse's t_w plus t_max, and for the response protocol the longest aging in front."""
    total = params.t_max
    if params.protocol in ("pulse", "response"):
        total += params.waiting_time
    if params.protocol == "response":
        total += params.aging_times()[-1]
    return total


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
                  seed, point, realization, checkpoint, progress=None):
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
        # how often to save is not part of what is computed: a resume may change it
        saver = ckpt.ReplicaCheckpoints(
            checkpoint, ckpt.fingerprint(key, seed, point, realization,
                                         repr(replace(params, checkpoint_interval=0.0))),
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
            if progress is not None:
                progress(r + (state is None), n_rep,
                         float(times[-1]) if state is None else float(state.scalars[0]))
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
        pulse_grid = phase_grid(pulse[0], pulse[1], times[0])
        pulse_out = {"energy": np.zeros(pulse_grid.size),
                     "excitations": np.zeros(pulse_grid.size),
                     "config": np.zeros((pulse_grid.size, engine.n_sites), dtype=np.int8)}
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


def phase_grid(engine, t_end, t_first):
    """Sampling grid of a phase whose last configuration only is kept (aging, t_w).

    An exact engine: [t_end]. An Accelerator schedules its scale updates from the first
    point of the grid it is given to the last (kmc.dynamics.acceleration), so a one-point
    grid would never scale a process: it gets [t_first, t_end].
    """
    if not isinstance(engine, Accelerator) or not t_end > t_first:
        return np.array([float(t_end)])
    return np.array([float(t_first), float(t_end)])


def _replica_rng(dynamics_rng, kind, replica):
    """Generator of child (kind, replica) of the DYNAMICS seed of the realization."""
    seq = dynamics_rng.bit_generator.seed_seq
    return np.random.default_rng(np.random.SeedSequence(
        seq.entropy, spawn_key=tuple(seq.spawn_key) + (int(kind), int(replica))))


def _simulate_response(system, params, prefactors, pairs, mean_field, seed, point,
                       realization, checkpoint=None, progress=None):
    """Linear response around one prepared state (docs/linear-response.md).

    1. PREPARATION: the pattern g ~ N(0, 1)^N, the common state annealed by static MC from
       ``anneal_temperature`` to T, the static-MC baseline at T.
    2. Replica r ages from the common state for the aging time at T (stream (0, r)): the
       processes faster than 1/aging_time become stationary, the slower keep the common
       state.
    3. From that start the perturbed trajectory runs for t_w with the bias F g at
       T + temperature_step, the twin trajectory for t_w unperturbed; both then relax at T
       on the grid (t = 0 at the end of t_w), with the same stream (1, r).
    4. The twin's own drift over the window is measured against the signal
       (kmc.dynamics.stationarity); with ``aging = "until_stationary"`` steps 2-3 are
       repeated with the next of ``params.aging_times()`` while the drift is resolved and
       above the tolerance.

    Electron glass: the hop cut-off must pass ``check_hop_cutoff`` over the whole run
    (the longest aging + waiting_time + t_max), so that prediction and KMC share one set of
    processes (``pairs``).

    Checkpoints (``checkpoint`` path): as _simulate_kmc, between kernel chunks; the file
    holds the aging attempt, the replica, its stage (aging, perturbed, twin) and phase, the
    state and stream of the running trajectory and everything recorded so far, so a resumed
    run equals an uninterrupted one bit for bit.
    """
    n, n_rep, model = system.n_sites, params.replicas, system.model
    schedule = params.aging_times()
    if model == "electron":
        check_hop_cutoff(system.distances, params.hop_cutoff, params.xi, run_time(params),
                         params.gamma0)
    prep_rng = seeding.stream(seed, point, realization, seeding.PREPARATION)
    g = pulse_pattern(prep_rng, n, 1.0)
    prepared = annealed_state(system, params.temperature, prep_rng,
                              params.mc_preparation_sweeps, params.anneal_temperature)
    equilibrium = static_mc_baseline(system, params.temperature, prep_rng,
                                     params.mc_equilibration_sweeps, params.mc_sampling_sweeps)
    mf, mf_ok = _mean_field(system, params, mean_field, seed, point, realization)
    base = system.bias if model == "tls" else system.site_energies
    # aging, t_w and both relaxations: accelerated when params.acceleration is on (a fresh
    # acceleration state per trajectory)
    engine = make_engine(system, params, prefactors, pairs)
    hot = dataclasses.replace(params, temperature=params.temperature + params.temperature_step)
    # t_w: accelerated like the rest when params.acceleration is on (a pulse that lasts up
    # to 1/lambda_min, as Table I by KMC needs, is out of reach of the exact engine), the
    # twin's t_w with an engine of its own so that both ensembles are treated alike
    pulse = (make_engine(system, hot, prefactors, pairs, bias=base + params.pulse_strength * g,
                         accelerate=True), params.waiting_time)
    twin_pulse = (make_engine(system, params, prefactors, pairs, bias=base, accelerate=True),
                  params.waiting_time)
    # stage s of a replica runs run_replica(engine, first[s], ...); its phase 0 is the t_w
    # phase of ``first`` (no such phase in the aging)
    first = (None, pulse, twin_pulse)
    dyn_rng = seeding.stream(seed, point, realization, seeding.DYNAMICS)
    times = params.times()
    # the recorded configuration is x = 2 S (TLS) or n; the engines start from S or n
    to_state = (lambda x: 0.5 * x) if model == "tls" else (lambda x: x.astype(np.int8))
    to_x = (lambda s: 2.0 * s) if model == "tls" else (lambda s: s.astype(float))
    out = {"attempt": np.zeros(1, dtype=np.int64), "totals": np.zeros(N_COUNTERS, dtype=np.int64),
           "replica_counters": np.zeros((n_rep, 3)), "starts": np.zeros((n_rep, n))}
    for name in _ENSEMBLES:
        out[f"{name}_energy"] = np.zeros((n_rep, times.size))
        out[f"{name}_excitations"] = np.zeros((n_rep, times.size))
        out[f"{name}_config"] = np.zeros((n_rep, times.size, n), dtype=np.int8)

    position, resume, saver, resumed_rng = (0, 0), None, None, None
    if checkpoint is not None:
        key = (model, n, float(np.sum(prefactors)), float(np.sum(prepared)), "response")
        saver = ckpt.ReplicaCheckpoints(
            checkpoint, ckpt.fingerprint(key, seed, point, realization,
                                         repr(replace(params, checkpoint_interval=0.0))),
            params.checkpoint_interval)
        holder = np.random.default_rng(0)    # its state is replaced by the checkpoint's
        loaded = saver.resume(holder)
        if loaded is not None:
            r0, code, state_arrays, arrays = loaded
            out.update(arrays)
            stage, phase = divmod(code, 2)
            position = (r0, stage)
            if state_arrays is not None:
                owner = first[stage][0] if phase == 0 else engine
                resume = (phase, owner.state_type.from_arrays(state_arrays))
                resumed_rng = holder

    while True:
        aging_time = schedule[int(out["attempt"][0])]
        aging_grid = phase_grid(engine, aging_time, times[0])
        aged = {"energy": np.zeros(aging_grid.size), "excitations": np.zeros(aging_grid.size),
                "config": np.zeros((aging_grid.size, n), dtype=np.int8)}
        for r in range(position[0], n_rep):
            for stage in range(position[1] if r == position[0] else 0, len(_STAGES)):
                if stage == 0 and aging_time == 0:
                    out["starts"][r] = to_x(prepared)
                    continue
                rng = resumed_rng if resumed_rng is not None else \
                    _replica_rng(dyn_rng, 0 if stage == 0 else 1, r)
                resumed_rng = None

                def after_chunk(phase, state, r=r, stage=stage, rng=rng):
                    if saver is not None and state is not None and saver.due():
                        saver.save(r, 2 * stage + phase, state.arrays(), out, rng)
                    if progress is not None:
                        progress(r, n_rep, float(times[-1]) if state is None
                                 else float(state.scalars[0]))
                    if _after_chunk is not None:
                        _after_chunk()

                counters = out["replica_counters"][r]
                if stage == 0:
                    run_replica(engine, None, prepared, aging_grid, rng, params.chunk_trials,
                                aged, out["totals"], resume, after_chunk, counters)
                    out["starts"][r] = aged["config"][-1]     # recorded as x already
                else:
                    name = _ENSEMBLES[stage - 1]
                    rows = {key: out[f"{name}_{key}"][r]
                            for key in ("energy", "excitations", "config")}
                    run_replica(engine, first[stage], to_state(out["starts"][r]), times, rng,
                                params.chunk_trials, rows, out["totals"], resume,
                                after_chunk, counters)
                resume = None
                if saver is not None and saver.due() and (stage + 1 < len(_STAGES)
                                                          or r + 1 < n_rep):
                    # between trajectories (this one recorded): the next starts afresh
                    nxt = (r, stage + 1) if stage + 1 < len(_STAGES) else (r + 1, 0)
                    saver.save(nxt[0], 2 * nxt[1], None, out, rng)
        position = (0, 0)
        checks = _drift_checks(params, out, g)
        if (params.aging == "until_stationary" and any(c.drifting for c in checks)
                and out["attempt"][0] + 1 < len(schedule)):
            out["attempt"][0] += 1
            continue
        break
    if saver is not None:
        saver.finish()

    stationary = all(c.negligible for c in checks)
    drifting = any(c.drifting for c in checks)
    if (drifting if params.aging == "fixed" else not stationary):
        advice = ("age longer or set dynamics.aging = 'until_stationary'"
                  if params.aging == "fixed" else
                  "dynamics.aging_time_max was reached" if drifting else
                  "more replicas are needed to bound it")
        warnings.warn(f"response, point {point} realization {realization}: after aging "
                      f"{aging_time:g} the twin's drift is not negligible ({advice}): "
                      + "; ".join(c.describe() for c in checks))
    per_replica = out["replica_counters"]
    counters = counter_totals(out["totals"])
    counters["events_unaccelerated"] = float(per_replica[:, 2].sum())
    configs = out["perturbed_config"]
    x, x_twin = configs.astype(float), out["twin_config"].astype(float)
    energy = replica_curve(out["perturbed_energy"])
    exc = replica_curve(out["perturbed_excitations"])
    record = ResponseRecord(g, to_x(prepared), out["starts"].copy(), x @ g, x_twin @ g,
                            out["perturbed_energy"], out["twin_energy"],
                            replica_curve(x_twin), aging_time, int(out["attempt"][0]) + 1,
                            tuple(checks), stationary)
    return DynamicsResult(
        model, "kmc", times, energy, Curve(energy.mean - equilibrium.energy, energy.stderr),
        exc, Curve(exc.mean - equilibrium.excitations, exc.stderr),
        deviation_curve(configs, equilibrium.occupation), replica_curve(x), equilibrium, mf,
        None, n_rep, counters, mf_ok, per_replica.copy(), response=record)


_STAGES = ("aging", "perturbed", "twin")
_ENSEMBLES = ("perturbed", "twin")


def _drift_checks(params, out, g):
    """DriftChecks of the observables the perturbation drives: the g-projection (pulse)
    and the energy (temperature step)."""
    checks = []
    if params.pulse_strength > 0:
        checks.append(check_drift("projection", out["perturbed_config"] @ g,
                                  out["twin_config"] @ g, params.stationarity_tolerance))
    if params.temperature_step != 0:
        checks.append(check_drift("energy", out["perturbed_energy"], out["twin_energy"],
                                  params.stationarity_tolerance))
    return checks


def _simulate_exact(system, params, prefactors, pairs, biased, initial, mf, mf_ok):
    times = params.times()
    me = MasterEquation(system, params.temperature, prefactors, pairs=pairs,
                        resonance_width=params.resonance_width)
    if params.protocol == "state":
        p0 = me.delta(initial)
    elif params.protocol == "pulse":
        p0 = me.boltzmann(params.temperature)
        if params.waiting_time > 0:
            me_pulse = MasterEquation(system, params.temperature, prefactors, bias=biased,
                                      pairs=pairs, resonance_width=params.resonance_width)
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


def mean_field_model(system, params, prefactors, pairs, bias=None):
    """The mean-field rate equations of the system's model with the KMC's rates."""
    if system.model == "tls":
        return mfd.TLSMeanField(system, params.temperature, prefactors, bias=bias)
    return mfd.ElectronMeanField(system, params.temperature, pairs, prefactors,
                                 site_energies=bias, hop_energy=params.hop_energy,
                                 resonance_width=params.resonance_width)


def _simulate_meanfield(system, params, prefactors, pairs, biased, initial, mf, mf_ok,
                        prep_rng):
    """One deterministic trajectory of the mean-field rate equations (docs/model.md section 4).

    Start: the given state, or the replica mean of the same prepared states the KMC
    starts from (same PREPARATION draws, so the same states): the product state closest
    to the KMC's initial ensemble. Baselines: ``equilibrium`` is the mean-field solution
    at T (Eq. 4 / Eq. 20), ``stationary`` the fixed point the trajectory ends at (Newton
    from its last state). Counters: integrator steps and evaluations.
    """
    times = params.times()
    if params.protocol == "state":
        states = initial[None, :]
    else:
        t0 = params.temperature if params.protocol == "pulse" else params.initial_temperature
        states = equilibrium_states(system, t0, prep_rng, params.replicas,
                                    params.mc_preparation_sweeps)
    start = states.mean(axis=0, dtype=float)
    if system.model == "tls":
        start = 2.0 * start          # well polarization <2 S_i>, the KMC's occupation
    model = mean_field_model(system, params, prefactors, pairs)
    pulse = None
    if biased is not None and params.waiting_time > 0:
        pulse = mean_field_model(system, params, prefactors, pairs, bias=biased)
    traj = mfd.integrate(model, start, times, rtol=params.meanfield_rtol,
                         atol=params.meanfield_atol, pulse_model=pulse,
                         waiting_time=params.waiting_time)
    if not traj.success:
        key = "dynamics.resonance_width" if system.model == "electron" \
            and params.resonance_width == 0 else "dynamics.meanfield_rtol"
        raise ConfigError(key, f"the mean-field integration stopped: {traj.message} "
                          "(docs/meanfield-dynamics.md)")
    end = mfd.stationary_state(model, traj.states[-1])
    e_end, x_end = model.observables(end.state)
    stationary = Baseline(e_end, 0.0, x_end, 0.0, end.state, "meanfield_stationary")
    equilibrium = mf
    counters = {"steps": traj.n_steps, "rhs_evaluations": traj.nfev,
                "jacobian_evaluations": traj.njev, "lu_factorizations": traj.nlu,
                "rejected_steps": traj.n_rejected, "newton_failures": traj.n_newton_failed,
                "stationary_converged": int(end.converged)}
    return DynamicsResult(
        system.model, "meanfield", times, _deterministic(traj.energy),
        _deterministic(traj.energy - equilibrium.energy), _deterministic(traj.excitations),
        _deterministic(traj.excitations - equilibrium.excitations),
        _deterministic(np.abs(traj.states - equilibrium.occupation).sum(axis=1)),
        Curve(traj.states, np.zeros_like(traj.states)), equilibrium, mf, stationary, 1,
        counters, mf_ok)


def _deterministic(values):
    """A deterministic curve: the values with zero standard error."""
    return Curve(np.asarray(values, dtype=float), np.zeros(np.shape(values)))


def _exact_baseline(me, p, source):
    e, x, occ = me.expectations(p)
    return Baseline(float(e[0]), 0.0, float(x[0]), 0.0, occ[0], source)
