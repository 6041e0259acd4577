"""Pieces shared by every KMC kernel (fast and reference, TLS and electron glass).

- the counter layout of an engine state's ``counters`` (5,) int64 array;
- :func:`grid_end`, the step of the event loop that finds the grid times passed by a jump
  of the clock (the state before the jump is recorded at those times);
- the recorders, which write one state into the output arrays at a range of grid indices.

Every kernel has the same skeleton (numba has no cheap first-class kernels, so the loop
itself is written out once per kernel, around these helpers)::

    while k < n_times and steps < budget:
        t_new = t + Exp(1) / total rate (or bound)
        if times[k] < t_new:                        # grid times in [t, t_new): record
            k_end = grid_end(times, k, t_new); record(k, k_end, ...); k = k_end
            if k == n_times: break                  # stop before the event: resumable
        t = t_new; pick an event; accept or reject; update the state
"""
import numba

from kmc.dynamics.observables import electron_excitations, tls_excitations

# Indices into a state's counters array.
EVENTS, TRIALS, NEXT_TIME, VIOLATIONS, RECENTRES = range(5)
N_COUNTERS = 5


def counter_totals(counters):
    """Dict of the counters summed over replicas, as stored in DynamicsResult.counters."""
    return {"events": int(counters[EVENTS]), "trials": int(counters[TRIALS]),
            "recentres": int(counters[RECENTRES]),
            "bound_violations": int(counters[VIOLATIONS])}


@numba.njit(cache=True, inline="always")
def grid_end(times, k, t_new):
    """First grid index >= k whose time is >= t_new (times[k] < t_new on entry)."""
    k_end = k
    n_times = times.shape[0]
    while k_end < n_times and times[k_end] < t_new:
        k_end += 1
    return k_end


@numba.njit(cache=True, inline="always")
def record_tls(k_from, k_to, spins, fields, energy, energy_out, exc_out, config_out):
    """Write the TLS state at grid indices [k_from, k_to): energy, excitations, sigma = +-1."""
    exc = tls_excitations(spins, fields)
    n = spins.shape[0]
    for k in range(k_from, k_to):
        energy_out[k] = energy
        exc_out[k] = exc
        for j in range(n):
            config_out[k, j] = 1 if spins[j] > 0.0 else -1


@numba.njit(cache=True, inline="always")
def record_electron(k_from, k_to, occ, energies, n_electrons, energy, energy_out, exc_out,
                    config_out):
    """Write the electron state at grid indices [k_from, k_to): energy, excitations, n_i."""
    exc = electron_excitations(occ, energies, n_electrons)
    n = occ.shape[0]
    for k in range(k_from, k_to):
        energy_out[k] = energy
        exc_out[k] = exc
        for j in range(n):
            config_out[k, j] = occ[j]
