"""Slow, obviously-correct reference kernels (Gillespie direct method).

After every event these recompute every rate from the current fields with the model's
rate functions, draw the waiting time from the exact total rate and pick the event by a
linear search of the cumulative rates. No bounds, windows or trees: they are the yardstick
the fast thinning kernels (tls_engine, electron_engine) are tested against, and the
"naive" loop the benchmark compares with. Same arguments, outputs and stopping contract
(at most ``budget`` events, stop between events) as the fast kernels, and the same shared
pieces (kmc.model for energies and rates, kmc.dynamics.counters for the loop); this module
imports neither engine, the engines import it.
"""
import numba
import numpy as np

from kmc.model import (electron_energy_update, electron_hop_energy, electron_pair_factor,
                       tls_field_update, tls_flip_energy, tls_flip_factor)
from kmc.dynamics.counters import (EVENTS, NEXT_TIME, TRIALS, grid_end, record_electron,
                                   record_tls)


@numba.njit(cache=True)
def tls_reference_kernel(spins, fields, couplings, prefactors, delta0_sq, temperature,
                         scalars, counters, executions, times, rng, budget, energy_out,
                         exc_out, config_out):
    n = spins.shape[0]
    n_times = times.shape[0]
    rates = np.empty(n)
    t = scalars[0]
    energy = scalars[1]
    k = counters[NEXT_TIME]
    steps = 0
    while k < n_times and steps < budget:
        total = 0.0
        for j in range(n):
            rates[j] = prefactors[j] * tls_flip_factor(tls_flip_energy(spins[j], fields[j]),
                                                       delta0_sq[j], temperature)
            total += rates[j]
        t_new = t + rng.standard_exponential() / total
        if times[k] < t_new:
            k_end = grid_end(times, k, t_new)
            record_tls(k, k_end, spins, fields, energy, energy_out, exc_out, config_out)
            k = k_end
            if k == n_times:
                break
        t = t_new
        steps += 1
        u = rng.random() * total
        i = -1
        acc = 0.0
        for q in range(n):
            if rates[q] > 0.0:
                i = q
                acc += rates[q]
                if acc > u:
                    break
        s_old = spins[i]
        energy += tls_flip_energy(s_old, fields[i])
        spins[i] = -s_old
        executions[0 if s_old < 0.0 else 1, i] += 1
        for j in range(n):
            fields[j] = tls_field_update(fields[j], couplings[i, j], s_old)
        counters[EVENTS] += 1
        counters[TRIALS] += 1
    scalars[0] = t
    scalars[1] = energy
    counters[NEXT_TIME] = k


@numba.njit(cache=True)
def electron_reference_kernel(occ, energies, interactions, n_electrons, pair_a, pair_b,
                              pair_c, prefactors, temperature, resonance_width, scalars,
                              counters, executions, times, rng, budget, energy_out, exc_out,
                              config_out):
    n = occ.shape[0]
    n_pairs = pair_a.shape[0]
    n_times = times.shape[0]
    rates = np.empty(n_pairs)
    t = scalars[0]
    energy = scalars[1]
    k = counters[NEXT_TIME]
    steps = 0
    while k < n_times and steps < budget:
        total = 0.0
        for p in range(n_pairs):
            rates[p] = prefactors[p] * electron_pair_factor(occ, energies, pair_a[p], pair_b[p],
                                                            pair_c[p], temperature,
                                                            resonance_width)
            total += rates[p]
        t_new = t + rng.standard_exponential() / total
        if times[k] < t_new:
            k_end = grid_end(times, k, t_new)
            record_electron(k, k_end, occ, energies, n_electrons, energy, energy_out, exc_out,
                            config_out)
            k = k_end
            if k == n_times:
                break
        t = t_new
        steps += 1
        u = rng.random() * total
        p = -1
        acc = 0.0
        for q in range(n_pairs):
            if rates[q] > 0.0:
                p = q
                acc += rates[q]
                if acc > u:
                    break
        if occ[pair_a[p]] == 1:
            i = pair_a[p]
            j = pair_b[p]
        else:
            i = pair_b[p]
            j = pair_a[p]
        energy += electron_hop_energy(energies[i], energies[j], interactions[i, j])
        occ[i] = 0
        occ[j] = 1
        executions[0 if i == pair_a[p] else 1, p] += 1
        for m in range(n):
            energies[m] = electron_energy_update(energies[m], interactions[j, m],
                                                 interactions[i, m])
        counters[EVENTS] += 1
        counters[TRIALS] += 1
    scalars[0] = t
    scalars[1] = energy
    counters[NEXT_TIME] = k
