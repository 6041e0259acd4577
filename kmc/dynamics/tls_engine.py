"""Kinetic Monte Carlo of the TLS glass: single pseudospin flips at the phonon rates (Eq. 10).

Algorithm: exact thinning (rejection with rigorous upper bounds) over a partial-sum tree.

The rate of TLS i is ``prefactor_i * g_i(x_i)`` with prefactor_i = a Delta0_i^2 (the one
static array, docs/model.md section 6) and the state factor, kmc.model.tls_flip_factor of the
flip energy dH = -x (kmc.model.tls_flip_energy),

    g_i(x) = |E| (n_B(|E|) + [x > 0]),   |E| = sqrt(x^2 + Delta0_i^2),   x = 2 S_i h_i,

emission when the TLS sits in its upper well (S_i h_i > 0), absorption otherwise. g_i is
non-decreasing in x: for x < 0, |E| n_B(|E|) falls as |x| grows; for x > 0,
|E| (n_B + 1) = |E| / (1 - e^(-|E|/T)) rises with |E|; at x = 0 it jumps up.

Each TLS keeps a window [lo_i, hi_i] of its local field h_i, set when it is (re-)centred
at the current field c_i: x_i = 2 S_i h_i may rise by at most w and fall by at most 4 w
inside it, and the bound is b_i = prefactor_i g_i(2 S_i c_i + w) (1 + 1e-12), which is
>= the rate for every field in the window because g_i is monotone. (Leaving the window on
the falling side only loosens the bound, hence the wider margin there.) The bounds are the
leaves of a sum tree, total B. One trial: the clock advances by an Exp(B) waiting time, a
TLS i is drawn with probability b_i / B, and the flip is accepted with probability
rate_i / b_i. This is the standard thinning construction of the exact process (a
superposition of Poisson clocks of rates b_i, each event kept with probability
rate_i / b_i), so flip times and choices have exactly the law of the continuous-time
Markov chain; rejected trials only advance the clock.

After an accepted flip of TLS k (S_k -> -S_k), every field is updated exactly,
h_j += J_jk S_k(old), in one O(N) loop that also writes a flag byte per TLS whose field
left its window (branch-free, so it stays vectorized); the flagged TLSs (a few per
event) are then found eight flags at a time and re-centred; TLS k is re-centred too (x_k
changed sign). The trial draws its TLS with the two-levels-per-step descent of the sum
tree (kmc.dynamics.sumtree.tree_sample_paired). The cost of an event is the O(N) field
loop plus O(log N) per re-centred window and one transcendental evaluation per trial and
per re-centring: at N = 1000 about 5x the bare field update (bench/bench_kmc.py; a scalar
second pass over every field to find the flagged ones had made it 10x). Both changes keep
every trajectory bit for bit. The window width is
``w = window * T`` (default window = 1): wider windows mean fewer re-centrings but more
rejections. bench/bench_kmc.py measures the trade-off.
"""

import numba
import numpy as np

from kmc.errors import ConfigError
from kmc.model import (check_temperature, tls_energy, tls_field_update, tls_flip_energy,
                       tls_flip_factor, tls_local_fields)
from kmc.dynamics.counters import (EVENTS, N_COUNTERS, NEXT_TIME, RECENTRES, TRIALS,
                                   VIOLATIONS, grid_end, record_tls)
from kmc.dynamics.params import check_kernel
from kmc.dynamics.reference import tls_reference_kernel
from kmc.dynamics.state import TLSState
from kmc.dynamics.sumtree import new_tree, tree_sample_paired, tree_set

# Relative slack on every bound so that a rounding error in the transcendental functions
# can never make a rate exceed its bound; violations are still counted (counters[3]).
_BOUND_SLACK = 1.0 + 1e-12

# The window reaches _DOWN times further on the side where the rate falls: leaving it there
# only loosens the bound, so it is re-centred less eagerly than on the side where it rises.
_DOWN = 4.0


@numba.njit(cache=True, inline="always")
def _recentre(j, spins, fields, lo, hi, tree, prefactors, delta0_sq, temperature, width):
    h = fields[j]
    if spins[j] > 0.0:
        lo[j] = h - _DOWN * width
        hi[j] = h + width
    else:
        lo[j] = h - width
        hi[j] = h + _DOWN * width
    # the window end where x = 2 S_j h = -dH is largest, i.e. dH smallest
    dh_edge = tls_flip_energy(spins[j], h) - width
    tree_set(tree, j, prefactors[j] * tls_flip_factor(dh_edge, delta0_sq[j], temperature)
             * _BOUND_SLACK)


@numba.njit(cache=True)
def _init_bounds(spins, fields, lo, hi, tree, prefactors, delta0_sq, temperature, width):
    tree[:] = 0.0
    for j in range(spins.shape[0]):
        _recentre(j, spins, fields, lo, hi, tree, prefactors, delta0_sq, temperature, width)


@numba.njit(cache=True, error_model="numpy")
def _thinning_kernel(spins, fields, couplings, prefactors, delta0_sq, temperature, width,
                     lo, hi, tree, flags, scalars, counters, executions, times, rng, budget,
                     energy_out, exc_out, config_out):
    """Advance by at most ``budget`` trials or until the last grid time; see module doc.

    flags (8 ceil(N / 8),) uint8 is scratch (entries beyond N must stay zero: they are read
    as part of the last 8-byte word).
    scalars = [clock, energy]; counters as EVENTS..RECENTRES; executions (2, N) counts the
    accepted flips of each TLS to S = +1/2 (row 0) and to S = -1/2 (row 1), which the
    temporal acceleration (kmc.dynamics.acceleration) reads. Stops only between trials,
    so a run split into chunks draws exactly the same random numbers as a single call.
    """
    n = spins.shape[0]
    n_times = times.shape[0]
    t = scalars[0]
    energy = scalars[1]
    k = counters[NEXT_TIME]
    steps = 0
    while k < n_times and steps < budget:
        total = tree[1]
        t_new = t + rng.standard_exponential() / total
        if times[k] < t_new:
            k_end = grid_end(times, k, t_new)
            record_tls(k, k_end, spins, fields, energy, energy_out, exc_out, config_out)
            k = k_end
            if k == n_times:
                break
        t = t_new
        steps += 1
        counters[TRIALS] += 1
        i = tree_sample_paired(tree, rng.random() * total)
        if i >= n:
            continue
        bound = tree[tree.shape[0] // 2 + i]
        s_old = spins[i]
        d_h = tls_flip_energy(s_old, fields[i])
        rate = prefactors[i] * tls_flip_factor(d_h, delta0_sq[i], temperature)
        if rate > bound:
            counters[VIOLATIONS] += 1
        if rng.random() * bound >= rate:
            continue
        # accepted flip of TLS i: S_i -> -S_i, dH = -2 S_i h_i, h_j += J_ji S_i(old)
        energy += d_h
        spins[i] = -s_old
        counters[EVENTS] += 1
        executions[0 if s_old < 0.0 else 1, i] += 1
        # the update loop only counts the fields that left their window (a branch-free
        # loop that vectorizes); a second pass finds and re-centres them if there are any
        left = 0
        for j in range(n):
            h = tls_field_update(fields[j], couplings[i, j], s_old)
            fields[j] = h
            out = (h < lo[j]) | (h > hi[j])
            flags[j] = out
            left += out
        if left > 0:
            # the few flagged TLSs, found eight flags at a time (a scalar pass over every
            # field cost about as much as the rest of the event)
            words = flags.view(np.uint64)
            for w in range(words.shape[0]):
                if words[w] != 0:
                    for j in range(8 * w, 8 * w + 8):
                        if flags[j]:
                            _recentre(j, spins, fields, lo, hi, tree, prefactors,
                                      delta0_sq, temperature, width)
            counters[RECENTRES] += left
        _recentre(i, spins, fields, lo, hi, tree, prefactors, delta0_sq, temperature, width)
    scalars[0] = t
    scalars[1] = energy
    counters[NEXT_TIME] = k


class TLSEngine:
    """Exact kinetic Monte Carlo of one TLS-glass realization at temperature T.

    Parameters
    ----------
    system : kmc.TLSSystem
    temperature : float, T > 0, units of J
    prefactors : (N,) float, static rate prefactors a Delta0_i^2 (units of J^-2 per unit
        time). This one array sets every rate's scale; it may be rescaled between calls
        to :meth:`advance` (then call :meth:`refresh`).
    bias : (N,) float or None, Delta_i used for the fields (default system.bias; the
        pulse protocol passes Delta_i + F g_i)
    window : float, half-width of the thinning windows in units of T
    kernel : "fast" (thinning, this module) or "reference" (Gillespie with every rate
        recomputed after each event, kmc.dynamics.reference)

    A state is a kmc.dynamics.state.TLSState (configuration, fields, windows, bound tree,
    [clock, energy], counters).
    """

    model = "tls"
    state_type = TLSState

    def __init__(self, system, temperature, prefactors, bias=None, window=1.0,
                 kernel="fast"):
        check_temperature("temperature", temperature)
        check_kernel("kernel", kernel)
        if not window > 0:
            raise ConfigError("window", f"must be > 0, got {window}")
        n = system.n_sites
        prefactors = np.ascontiguousarray(prefactors, dtype=float)
        if prefactors.shape != (n,) or np.any(prefactors < 0):
            raise ConfigError("prefactors", f"expected ({n},) non-negative, got {prefactors.shape}")
        self.system = system
        self.n_sites = n
        self.temperature = float(temperature)
        self.prefactors = prefactors
        self.bias = np.ascontiguousarray(system.bias if bias is None else bias, dtype=float)
        self.couplings = np.ascontiguousarray(system.couplings, dtype=float)
        self.delta0_sq = np.ascontiguousarray(system.delta0, dtype=float) ** 2
        self.width = float(window) * self.temperature
        # scratch of the kernel: a flag byte per TLS whose field left its window, read as
        # whole 8-byte words (zero beyond N)
        self._flags = np.zeros(8 * ((n + 7) // 8), dtype=np.uint8)
        self.kernel = kernel

    def new_state(self, spins):
        """State for configuration ``spins`` (N,) of +-1/2 at clock 0; fields from scratch."""
        spins = np.array(spins, dtype=float)
        if spins.shape != (self.n_sites,) or not np.all(np.abs(spins) == 0.5):
            raise ConfigError("initial_state", "expected (N,) values +-1/2")
        fields = tls_local_fields(spins, self.bias, self.couplings)
        energy = tls_energy(spins, self.bias, self.couplings)
        state = TLSState(config=spins, fields=fields, lo=np.empty(self.n_sites),
                         hi=np.empty(self.n_sites), tree=new_tree(self.n_sites),
                         scalars=np.array([0.0, energy]),
                         counters=np.zeros(N_COUNTERS, dtype=np.int64),
                         executions=np.zeros((2, self.n_sites), dtype=np.int64))
        self.refresh(state)
        return state

    def refresh(self, state):
        """Rebuild every thinning bound (after prefactors, T or the fields changed)."""
        _init_bounds(state.config, state.fields, state.lo, state.hi, state.tree,
                     self.prefactors, self.delta0_sq, self.temperature, self.width)

    def rates(self, state):
        """(N,) current flip rates prefactor_i g_i(2 S_i h_i) (for tests and diagnostics)."""
        d_h = tls_flip_energy(state.config, state.fields)
        return np.array([p * tls_flip_factor(dh, d, self.temperature)
                         for p, dh, d in zip(self.prefactors, d_h, self.delta0_sq)])

    def advance(self, state, times, rng, budget, out):
        """Run at most ``budget`` trials, recording into ``out`` at the grid ``times``.

        times : (n_times,) increasing, same clock as state.scalars[0]
        out : dict of preallocated "energy" (n_times,), "excitations" (n_times,),
            "config" (n_times, N) int8, filled from index state.counters[NEXT_TIME] on
        Returns True when every grid time has been recorded.
        """
        if self.kernel == "fast":
            _thinning_kernel(state.config, state.fields, self.couplings, self.prefactors,
                             self.delta0_sq, self.temperature, self.width, state.lo,
                             state.hi, state.tree, self._flags, state.scalars,
                             state.counters,
                             state.executions, times, rng,
                             int(budget), out["energy"], out["excitations"], out["config"])
        else:
            tls_reference_kernel(state.config, state.fields, self.couplings,
                                 self.prefactors, self.delta0_sq, self.temperature,
                                 state.scalars, state.counters, state.executions, times, rng,
                                 int(budget),
                                 out["energy"], out["excitations"], out["config"])
        return bool(state.counters[NEXT_TIME] >= times.shape[0])

    def field_error(self, state):
        """Max |h_incremental - h_scratch| / max(1, |h|) and the same for the energy."""
        spins = state.config
        fields = tls_local_fields(spins, self.bias, self.couplings)
        energy = tls_energy(spins, self.bias, self.couplings)
        err_h = np.max(np.abs(state.fields - fields) / np.maximum(1.0, np.abs(fields)))
        err_e = abs(state.scalars[1] - energy) / max(1.0, abs(energy))
        return float(err_h), float(err_e)
