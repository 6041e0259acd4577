"""Kinetic Monte Carlo of the electron glass: single-electron hops at Miller-Abrahams rates.

Hops i -> j (i occupied, j empty) are allowed for the pairs with r_ij <= ``cutoff``
(:func:`hop_pairs`; the master equation uses the same list). Rate (Eq. 21):

    gamma_ij = prefactor_ij * miller_abrahams_factor(dH),   prefactor_ij = Gamma0 e^(-r_ij/xi),
    dH = E_j - E_i - C_ij,   E_i = eps_i + sum_k C_ik (n_k - K)

with the prefactors in one (P,) array over unordered pairs (docs/model.md section 6).

Algorithm: exact thinning over a sum tree of per-pair bounds, as for the TLS glass
(kmc.dynamics.tls_engine). A pair (a, b), a < b, is active when n_a != n_b, and then its
hop goes from the occupied to the empty site; with s = n_a - n_b and d = E_b - E_a,
dH = s d - C_ab. The factor n_B(|dH|) + Theta(-dH) grows as dH approaches 0 from either
side, so each active pair keeps a window [d0 - w', d0 + w'] in d around its value d0 at the
last re-centring, with w' = min(w, |dH0|/2): dH then stays on the side of 0 where it
started, at distance >= |dH0|/2, and the bound is the factor at the window end nearest
0 (times 1 + 1e-12). Inactive pairs have bound 0 and an infinite window.

After an accepted hop i -> j every site energy is updated exactly, E_k += C_kj - C_ki
(O(N)). Which windows can have been left is decided per site, not per pair: each site m
keeps a reference energy eref_m and a threshold theta_m such that every active pair (a, b)
stays inside its window while |E_a - eref_a| <= theta_a and |E_b - eref_b| <= theta_b
(the pair's last checked margin M_p, split in halves between its two sites; see
``_visit``). The O(N) update loop counts the sites past their threshold; those are
visited: their pairs are checked against the windows, re-centred if they left them, and
the thresholds renewed. The pairs touching i and j are re-centred because their activity
changed. Per event: O(N) plus O(degree) per visited site, independent of the number of
pairs P elsewhere. Default window half-width w = window * T.
"""
import math

import numba
import numpy as np

from kmc.errors import ConfigError
from kmc.model import (check_temperature, electron_energy, electron_energy_update,
                       electron_hop_energy, electron_pair_factor, electron_site_energies,
                       miller_abrahams_factor)
from kmc.dynamics.counters import (EVENTS, N_COUNTERS, NEXT_TIME, RECENTRES, TRIALS,
                                   VIOLATIONS, grid_end, record_electron)
from kmc.dynamics.params import check_kernel
from kmc.dynamics.reference import electron_reference_kernel
from kmc.dynamics.state import ElectronState
from kmc.dynamics.sumtree import new_tree, tree_rebuild, tree_sample, tree_set

_BOUND_SLACK = 1.0 + 1e-12

# A pair whose remaining margin is below this fraction of its window width is re-centred
# when one of its sites is visited, so that the site thresholds do not shrink to zero.
_RENEW = 0.125


def hop_pairs(distances, cutoff):
    """Unordered pairs (a, b), a < b, with r_ab <= cutoff.

    Returns
    -------
    pairs : (P, 2) int64, rows sorted lexicographically
    r : (P,) float, their distances
    """
    n = distances.shape[0]
    a, b = np.triu_indices(n, k=1)
    keep = distances[a, b] <= cutoff
    pairs = np.stack([a[keep], b[keep]], axis=1).astype(np.int64)
    return pairs, distances[a[keep], b[keep]].astype(float)


def pair_prefactors(r, xi, gamma0=1.0):
    """(P,) static prefactors Gamma0 e^(-r/xi) of the hop pairs."""
    return gamma0 * np.exp(-np.asarray(r, dtype=float) / xi)


def _site_pair_lists(pairs, n):
    """CSR lists of the pairs touching each site: pairs of site s are ids[ptr[s]:ptr[s+1]]."""
    ends = pairs.ravel()
    order = np.argsort(ends, kind="stable")
    ids = (order // 2).astype(np.int64)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(ptr, ends + 1, 1)
    return np.cumsum(ptr), ids


@numba.njit(cache=True, inline="always")
def _recentre(p, occ, energies, pair_a, pair_b, pair_c, prefactors, lo, hi, tree,
              temperature, width):
    a = pair_a[p]
    b = pair_b[p]
    s = occ[a] - occ[b]
    if s == 0:
        lo[p] = -math.inf
        hi[p] = math.inf
        tree_set(tree, p, 0.0)
        return
    d0 = energies[b] - energies[a]
    dh0 = s * d0 - pair_c[p]
    w = min(width, 0.5 * abs(dh0))
    lo[p] = d0 - w
    hi[p] = d0 + w
    edge = dh0 - w if dh0 > 0.0 else dh0 + w
    tree_set(tree, p, prefactors[p] * miller_abrahams_factor(edge, temperature) * _BOUND_SLACK)


@numba.njit(cache=True)
def _init_bounds(occ, energies, pair_a, pair_b, pair_c, prefactors, lo, hi, tree,
                 temperature, width, site_ptr, site_ids, eref, theta, stack, queued):
    tree[:] = 0.0
    for p in range(pair_a.shape[0]):
        _recentre(p, occ, energies, pair_a, pair_b, pair_c, prefactors, lo, hi, tree,
                  temperature, width)
    eref[:] = energies
    theta[:] = math.inf
    for m in range(occ.shape[0]):
        _visit(m, False, occ, energies, pair_a, pair_b, pair_c, prefactors, lo, hi, tree,
               temperature, width, site_ptr, site_ids, eref, theta, stack, queued)


@numba.njit(cache=True, inline="always")
def _visit(start, force, occ, energies, pair_a, pair_b, pair_c, prefactors, lo, hi, tree,
           temperature, width, site_ptr, site_ids, eref, theta, stack, queued):
    """Check the pairs of site ``start`` against their windows; renew the site thresholds.

    Invariant (module doc): an active pair p = (a, b), last checked with margin M_p (the
    distance of d = E_b - E_a to the nearer window edge), stays inside its window while
    |E_a - eref_a| <= theta_a and |E_b - eref_b| <= theta_b. A visit of m re-centres the
    pairs of m that left their window (with ``force``: all of them) or kept less than
    _RENEW of its width, sets eref_m = E_m and theta_m = min_p M_p / 2, and lowers each
    partner's threshold to at most M_p / 2 - |E_o - eref_o|; a partner whose threshold is
    thereby exceeded is visited as well. Returns the number of re-centred pairs.
    """
    count = 0
    stack[0] = start
    queued[start] = 1
    top = 1
    first = True
    while top > 0:
        top -= 1
        m = stack[top]
        queued[m] = 0
        eref[m] = energies[m]
        th = math.inf
        for r in range(site_ptr[m], site_ptr[m + 1]):
            p = site_ids[r]
            a = pair_a[p]
            b = pair_b[p]
            d = energies[b] - energies[a]
            if (force and first) or d < lo[p] or d > hi[p] \
                    or min(d - lo[p], hi[p] - d) < _RENEW * (hi[p] - lo[p]):
                _recentre(p, occ, energies, pair_a, pair_b, pair_c, prefactors, lo, hi, tree,
                          temperature, width)
                count += 1
            if lo[p] == -math.inf:
                continue
            half = 0.5 * min(d - lo[p], hi[p] - d)
            th = min(th, half)
            o = b if a == m else a
            lim = half - abs(energies[o] - eref[o])
            if lim < theta[o]:
                theta[o] = lim
                if lim < 0.0 and queued[o] == 0:
                    stack[top] = o
                    queued[o] = 1
                    top += 1
        theta[m] = th
        first = False
    return count


@numba.njit(cache=True)
def _thinning_kernel(occ, energies, interactions, n_electrons, pair_a, pair_b, pair_c,
                     prefactors, site_ptr, site_ids, temperature, width, lo, hi, tree,
                     eref, theta, stack, queued, scalars, counters, executions, times, rng,
                     budget, energy_out, exc_out, config_out):
    """Advance by at most ``budget`` trials or until the last grid time; see module doc.

    executions (2, P) counts the accepted hops of each pair (a, b), a < b, from a to b
    (row 0) and from b to a (row 1).
    """
    n = occ.shape[0]
    n_pairs = pair_a.shape[0]
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
            record_electron(k, k_end, occ, energies, n_electrons, energy, energy_out, exc_out,
                            config_out)
            k = k_end
            if k == n_times:
                break
        t = t_new
        steps += 1
        counters[TRIALS] += 1
        p = tree_sample(tree, rng.random() * total)
        if p >= n_pairs:
            continue
        bound = tree[tree.shape[0] // 2 + p]
        a = pair_a[p]
        b = pair_b[p]
        rate = prefactors[p] * electron_pair_factor(occ, energies, a, b, pair_c[p], temperature)
        if rate > bound:
            counters[VIOLATIONS] += 1
        if rng.random() * bound >= rate:
            continue
        if occ[a] == 1:
            i = a
            j = b
        else:
            i = b
            j = a
        # hop i -> j: dH = E_j - E_i - C_ij; E_k += C_kj - C_ki
        energy += electron_hop_energy(energies[i], energies[j], interactions[i, j])
        occ[i] = 0
        occ[j] = 1
        counters[EVENTS] += 1
        executions[0 if i == a else 1, p] += 1
        # exact O(N) update, counting the sites whose energy drifted past their threshold
        hot = 0
        for m in range(n):
            e = electron_energy_update(energies[m], interactions[j, m], interactions[i, m])
            energies[m] = e
            hot += abs(e - eref[m]) > theta[m]
        # the pairs of i and j changed activity: re-centre all of them
        for site in (i, j):
            counters[RECENTRES] += _visit(site, True, occ, energies, pair_a, pair_b, pair_c,
                                          prefactors, lo, hi, tree, temperature, width,
                                          site_ptr, site_ids, eref, theta, stack, queued)
        if hot > 0:
            for m in range(n):
                if abs(energies[m] - eref[m]) > theta[m]:
                    counters[RECENTRES] += _visit(m, False, occ, energies, pair_a, pair_b,
                                                  pair_c, prefactors, lo, hi, tree,
                                                  temperature, width, site_ptr, site_ids,
                                                  eref, theta, stack, queued)
    scalars[0] = t
    scalars[1] = energy
    counters[NEXT_TIME] = k


class ElectronEngine:
    """Exact kinetic Monte Carlo of one electron-glass realization at temperature T.

    Parameters
    ----------
    system : kmc.ElectronSystem
    temperature : float, T > 0, units of J
    pairs : (P, 2) int, hop pairs from :func:`hop_pairs`
    prefactors : (P,) float, static prefactors Gamma0 e^(-r_ab/xi) (units of Gamma0); the one
        array that sets every rate's scale (rescale between calls, then :meth:`refresh`)
    site_energies : (N,) float or None, eps_i (default system.site_energies; the pulse
        protocol passes eps_i + F g_i)
    window : float, half-width of the thinning windows in units of T
    kernel : "fast" or "reference" (Gillespie recomputing every pair rate after each event)

    A state is a kmc.dynamics.state.ElectronState.
    """

    model = "electron"
    state_type = ElectronState

    def __init__(self, system, temperature, pairs, prefactors, site_energies=None, window=1.0,
                 kernel="fast"):
        check_temperature("temperature", temperature)
        check_kernel("kernel", kernel)
        if not window > 0:
            raise ConfigError("window", f"must be > 0, got {window}")
        n = system.n_sites
        pairs = np.ascontiguousarray(pairs, dtype=np.int64)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.shape[0] == 0:
            raise ConfigError("hop_cutoff", f"no hop pairs within the cut-off ({pairs.shape})")
        prefactors = np.ascontiguousarray(prefactors, dtype=float)
        if prefactors.shape != (pairs.shape[0],) or np.any(prefactors < 0):
            raise ConfigError("prefactors", f"expected ({pairs.shape[0]},) non-negative")
        self.system = system
        self.n_sites = n
        self.n_electrons = int(system.n_electrons)
        self.filling = system.filling
        self.temperature = float(temperature)
        self.pairs = pairs
        self.pair_a = np.ascontiguousarray(pairs[:, 0])
        self.pair_b = np.ascontiguousarray(pairs[:, 1])
        self.interactions = np.ascontiguousarray(system.interactions, dtype=float)
        self.pair_c = self.interactions[self.pair_a, self.pair_b].copy()
        self.prefactors = prefactors
        self.site_ptr, self.site_ids = _site_pair_lists(pairs, n)
        self.site_energies = np.ascontiguousarray(
            system.site_energies if site_energies is None else site_energies, dtype=float)
        self.width = float(window) * self.temperature
        self.kernel = kernel
        # scratch of the site visits (empty between calls, so not part of a state)
        self._stack = np.zeros(n, dtype=np.int64)
        self._queued = np.zeros(n, dtype=np.int8)

    def new_state(self, occupations):
        """State for occupations (N,) of 0/1 with M electrons at clock 0."""
        occ = np.array(occupations, dtype=np.int8)
        if occ.shape != (self.n_sites,) or not np.all((occ == 0) | (occ == 1)) \
                or int(occ.sum()) != self.n_electrons:
            raise ConfigError("initial_state",
                              f"expected ({self.n_sites},) 0/1 with {self.n_electrons} ones")
        fields = electron_site_energies(occ, self.site_energies, self.interactions, self.filling)
        energy = electron_energy(occ, self.site_energies, self.interactions, self.filling)
        n_pairs = self.pair_a.shape[0]
        n = self.n_sites
        state = ElectronState(config=occ, fields=np.ascontiguousarray(fields),
                              lo=np.empty(n_pairs), hi=np.empty(n_pairs),
                              tree=new_tree(n_pairs), eref=np.empty(n), theta=np.empty(n),
                              scalars=np.array([0.0, energy]),
                              counters=np.zeros(N_COUNTERS, dtype=np.int64),
                              executions=np.zeros((2, n_pairs), dtype=np.int64))
        self.refresh(state)
        return state

    def refresh(self, state):
        """Rebuild every thinning bound (after prefactors, T or the energies changed)."""
        _init_bounds(state["config"], state["fields"], self.pair_a, self.pair_b, self.pair_c,
                     self.prefactors, state["lo"], state["hi"], state["tree"],
                     self.temperature, self.width, self.site_ptr, self.site_ids,
                     state["eref"], state["theta"], self._stack, self._queued)
        tree_rebuild(state["tree"])
        self._check_finite(state)

    @staticmethod
    def _check_finite(state):
        # n_B(|dH|) diverges at dH = 0 (kmc.model.miller_abrahams_factor); with continuous
        # disorder that has probability zero, but a degenerate hand-made system can hit it.
        if not np.isfinite(state["tree"][1]):
            raise FloatingPointError(
                "electron hop with dH = 0 exactly: the Miller-Abrahams rate diverges "
                "(degenerate site energies?)")

    def rates(self, state):
        """(P,) current hop rates of the pairs (0 for inactive pairs)."""
        occ, e = state["config"], state["fields"]
        return np.array([self.prefactors[p] * electron_pair_factor(
                             occ, e, self.pair_a[p], self.pair_b[p], self.pair_c[p],
                             self.temperature)
                         for p in range(self.pair_a.shape[0])])

    def advance(self, state, times, rng, budget, out):
        """Run at most ``budget`` trials; same contract as TLSEngine.advance."""
        if self.kernel == "fast":
            _thinning_kernel(state["config"], state["fields"], self.interactions,
                             self.n_electrons, self.pair_a, self.pair_b, self.pair_c,
                             self.prefactors, self.site_ptr, self.site_ids, self.temperature,
                             self.width, state["lo"], state["hi"], state["tree"],
                             state["eref"], state["theta"], self._stack, self._queued,
                             state["scalars"], state["counters"], state["executions"], times,
                             rng, int(budget), out["energy"], out["excitations"], out["config"])
        else:
            electron_reference_kernel(state["config"], state["fields"], self.interactions,
                                      self.n_electrons, self.pair_a, self.pair_b, self.pair_c,
                                      self.prefactors, self.temperature, state["scalars"],
                                      state["counters"], state["executions"], times, rng,
                                      int(budget),
                                      out["energy"], out["excitations"], out["config"])
        if self.kernel == "fast":
            self._check_finite(state)
        return bool(state["counters"][NEXT_TIME] >= times.shape[0])

    def field_error(self, state):
        """Max relative error of the incremental site energies and of the total energy."""
        occ = state["config"]
        fields = electron_site_energies(occ, self.site_energies, self.interactions, self.filling)
        energy = electron_energy(occ, self.site_energies, self.interactions, self.filling)
        err_h = np.max(np.abs(state["fields"] - fields) / np.maximum(1.0, np.abs(fields)))
        err_e = abs(state["scalars"][1] - energy) / max(1.0, abs(energy))
        return float(err_h), float(err_e)
