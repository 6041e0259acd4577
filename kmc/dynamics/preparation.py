"""Initial states and equilibrium baselines: random states, static Monte Carlo, pulses.

Static Monte Carlo samples the Boltzmann distribution of H at a temperature without any
physical dynamics (docs/model.md section 4):

- TLS glass: Metropolis single-spin flips; a sweep is N proposals at uniformly random
  sites, each accepted with probability min(1, e^(-dH/T)), dH = -2 S_i h_i.
- Electron glass (fixed M): Kawasaki exchanges of a uniformly random occupied site i and a
  uniformly random empty site j, at any distance (the equilibrium distribution does not
  depend on the hop cut-off); a sweep is N proposals, dH = E_j - E_i - C_ij.

Fields are updated exactly after each accepted move, as in the kinetic engines.

Preparation of an equilibrium state at T0: an independent chain per replica from a random
state, ``sweeps`` sweeps (default 500, DynamicsParams.mc_preparation_sweeps).
Equilibrium baseline at T: one chain from a random state, ``equilibration`` sweeps
discarded (default 500), then ``sampling`` sweeps (default 2000) each followed by one
measurement; the standard error is from 20 batch means.
"""
import math

import numba
import numpy as np

from kmc.model import (electron_energy, electron_energy_update, electron_hop_energy,
                       electron_site_energies, fermi, tls_energy, tls_field_update,
                       tls_flip_energy, tls_local_fields, tls_mean_spins)
from kmc.dynamics.observables import Baseline, electron_excitations, tls_excitations

_BATCHES = 20
# Temperatures of the anneal ladder of ``annealed_state`` (geometric, start down to T).
ANNEAL_STEPS = 20


def random_tls_states(rng, n_replicas, n_sites):
    """(R, N) well occupations S = +-1/2, independent and uniform (T0 = infinity)."""
    return rng.choice(np.array([-0.5, 0.5]), size=(n_replicas, n_sites))


def random_electron_states(rng, n_replicas, n_sites, n_electrons):
    """(R, N) int8 occupations with M electrons on uniformly random sites (T0 = infinity)."""
    out = np.zeros((n_replicas, n_sites), dtype=np.int8)
    for r in range(n_replicas):
        out[r, rng.permutation(n_sites)[:n_electrons]] = 1
    return out


@numba.njit(cache=True)
def _tls_metropolis(spins, fields, couplings, temperature, n_sweeps, rng, measure,
                    energy, energy_out, exc_out, occ_sum):
    n = spins.shape[0]
    for sweep in range(n_sweeps):
        for _ in range(n):
            i = rng.integers(0, n)
            s_old = spins[i]
            d_h = tls_flip_energy(s_old, fields[i])
            if d_h > 0.0 and rng.random() >= math.exp(-d_h / temperature):
                continue
            energy += d_h
            spins[i] = -s_old
            for j in range(n):
                fields[j] = tls_field_update(fields[j], couplings[i, j], s_old)
        if measure:
            energy_out[sweep] = energy
            exc_out[sweep] = tls_excitations(spins, fields)
            for j in range(n):
                occ_sum[j] += 2.0 * spins[j]
    return energy


@numba.njit(cache=True)
def _electron_kawasaki(occ, energies, interactions, n_electrons, temperature, n_sweeps, rng,
                       measure, energy, energy_out, exc_out, occ_sum):
    n = occ.shape[0]
    filled = np.empty(n_electrons, dtype=np.int64)
    empty = np.empty(n - n_electrons, dtype=np.int64)
    a = 0
    b = 0
    for s in range(n):
        if occ[s] == 1:
            filled[a] = s
            a += 1
        else:
            empty[b] = s
            b += 1
    for sweep in range(n_sweeps):
        for _ in range(n):
            ki = rng.integers(0, n_electrons)
            kj = rng.integers(0, n - n_electrons)
            i = filled[ki]
            j = empty[kj]
            d_h = electron_hop_energy(energies[i], energies[j], interactions[i, j])
            if d_h > 0.0 and rng.random() >= math.exp(-d_h / temperature):
                continue
            energy += d_h
            occ[i] = 0
            occ[j] = 1
            filled[ki] = j
            empty[kj] = i
            for m in range(n):
                energies[m] = electron_energy_update(energies[m], interactions[j, m],
                                                     interactions[i, m])
        if measure:
            energy_out[sweep] = energy
            exc_out[sweep] = electron_excitations(occ, energies, n_electrons)
            for m in range(n):
                occ_sum[m] += occ[m]
    return energy


def _run_chain(system, temperature, rng, config, n_sweeps, measure, bias=None):
    """Run one static-MC chain in place on ``config``; returns (energies, excitations, occ_sum)."""
    n = system.n_sites
    e_out = np.zeros(n_sweeps if measure else 0)
    x_out = np.zeros(n_sweeps if measure else 0)
    occ_sum = np.zeros(n)
    if system.model == "tls":
        b = system.bias if bias is None else bias
        couplings = np.ascontiguousarray(system.couplings, dtype=float)
        fields = np.ascontiguousarray(tls_local_fields(config, b, couplings))
        _tls_metropolis(config, fields, couplings, float(temperature), int(n_sweeps), rng,
                        measure, tls_energy(config, b, couplings), e_out, x_out, occ_sum)
    else:
        eps = system.site_energies if bias is None else bias
        c = np.ascontiguousarray(system.interactions, dtype=float)
        energies = np.ascontiguousarray(electron_site_energies(config, eps, c, system.filling))
        _electron_kawasaki(config, energies, c, int(system.n_electrons), float(temperature),
                           int(n_sweeps), rng, measure,
                           electron_energy(config, eps, c, system.filling), e_out, x_out,
                           occ_sum)
    return e_out, x_out, occ_sum


def random_states(system, rng, n_replicas):
    """(R, N) uniformly random configurations (S = +-1/2 floats or 0/1 int8)."""
    if system.model == "tls":
        return random_tls_states(rng, n_replicas, system.n_sites)
    return random_electron_states(rng, n_replicas, system.n_sites, system.n_electrons)


def equilibrium_states(system, temperature, rng, n_replicas, sweeps=500):
    """(R, N) configurations, each the end of an independent static-MC chain at T.

    ``temperature`` = inf returns uniformly random states.
    """
    states = random_states(system, rng, n_replicas)
    if math.isinf(temperature):
        return states
    for r in range(n_replicas):
        _run_chain(system, temperature, rng, states[r], sweeps, False)
    return states


def annealed_state(system, temperature, rng, sweeps, start_temperature):
    """One configuration annealed by static Monte Carlo from ``start_temperature`` to T.

    A random configuration, then ``sweeps`` sweeps split evenly over ANNEAL_STEPS
    temperatures geometrically spaced from ``start_temperature`` down to ``temperature``
    (a single stage at T if start_temperature <= T): the common prepared state of the
    response protocol (docs/linear-response.md). Returns (N,) S = +-1/2 or n in {0, 1}.
    """
    config = random_states(system, rng, 1)[0]
    if start_temperature > temperature:
        ladder = np.geomspace(start_temperature, temperature, ANNEAL_STEPS)
    else:
        ladder = np.array([float(temperature)])
    per_step = max(1, int(sweeps) // ladder.size)
    for t in ladder:
        _run_chain(system, float(t), rng, config, per_step, False)
    return config


def static_mc_baseline(system, temperature, rng, equilibration=500, sampling=2000):
    """Equilibrium energy, excitation number and occupations at T by static Monte Carlo.

    Returns Baseline(source="static_mc"); occupation is <sigma_i> = <2 S_i> (TLS) or <n_i>.
    Standard errors from 20 batch means of the ``sampling`` measurements.
    """
    config = random_states(system, rng, 1)[0]
    _run_chain(system, temperature, rng, config, equilibration, False)
    e, x, occ_sum = _run_chain(system, temperature, rng, config, sampling, True)
    return Baseline(float(e.mean()), _batch_error(e), float(x.mean()), _batch_error(x),
                    occ_sum / sampling, "static_mc")


def mean_field_baseline(system, temperature, fields, mu=0.0):
    """Baseline of the mean-field solution ``fields`` (TLS Delta'_i, electron E_i).

    TLS: <S_i> = -tanh(Delta'_i / 2T)/2, energy <H> at those mean spins, excitations
    sum_i f(|Delta'_i|) with f the Fermi function at mu = 0 (probability of the upper well,
    (1 - tanh(|Delta'_i| / 2T))/2).
    Electron glass: <n_i> = f(E_i - mu), energy <H> at those mean occupations,
    excitations sum_{E_i > mu} f_i (electrons above the chemical potential).
    """
    fields = np.asarray(fields, dtype=float)
    if system.model == "tls":
        m = tls_mean_spins(fields, temperature)
        energy = tls_energy(m, system.bias, system.couplings)
        exc = float(np.sum(fermi(np.abs(fields), 0.0, temperature)))
        return Baseline(energy, 0.0, exc, 0.0, 2.0 * m, "mean_field")
    f = fermi(fields, mu, temperature)
    energy = electron_energy(f, system.site_energies, system.interactions, system.filling)
    return Baseline(energy, 0.0, float(f[fields > mu].sum()), 0.0, f, "mean_field")


def pulse_pattern(rng, n_sites, strength):
    """(N,) extra static bias F g_i with g_i ~ Normal(0, 1) (docs/model.md section 4)."""
    return strength * rng.standard_normal(n_sites)


def _batch_error(values):
    values = np.asarray(values, dtype=float)
    if values.size < 2 * _BATCHES:
        return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else np.nan
    batches = values[: values.size // _BATCHES * _BATCHES].reshape(_BATCHES, -1).mean(axis=1)
    return float(batches.std(ddof=1) / np.sqrt(_BATCHES))
