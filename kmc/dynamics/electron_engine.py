"""Kinetic Monte Carlo of the electron glass: single-electron hops at Miller-Abrahams rates.

Hops i -> j (i occupied, j empty) are allowed for the pairs with r_ij <= ``cutoff``
(:func:`hop_pairs`; the master equation uses the same list). Rate (Eq. 21):

    gamma_ij = prefactor_ij * miller_abrahams_factor(dH),   prefactor_ij = Gamma0 e^(-r_ij/xi),
    dH = E_j - E_i - C_ij,   E_i = eps_i + sum_k C_ik (n_k - K)

with the prefactors in one (P,) array over unordered pairs (docs/model.md section 6).

Algorithm: exact thinning over a sum tree of per-pair bounds, as for the TLS glass
(kmc.dynamics.tls_engine). A pair (a, b), a < b, is active when n_a != n_b, and then its
hop goes from the occupied to the empty site; with s = n_a - n_b and d = E_b - E_a,
dH = s d - C_ab. The factor n_B(|dH|) + Theta(-dH) decreases away from dH = 0 on either
side, so an active pair's window is a half-line of d on which dH stays on its side of 0
with |dH| >= x_e, and its bound is the prefactor times the factor at |dH| = x_e (times
1 + 1e-12, taken a rounding margin inside the edge). x_e is set at a re-centring, from
|dH0| there: the wider of a relative rule (bound within e^(w/T) of the rate uphill, within
n_B(w) + 1 of it downhill, within 2x of it near dH = 0) and an absolute one (bound at most
eps above the rate, eps = 0.05 x the mean prefactor). Pairs with prefactor x f_static <=
eps are *static*: their bound is prefactor x f_static, f_static = n_B(w) + 1 the largest
factor at |dH| >= w, valid whatever their activity while an active one keeps |dH| >= w;
so activity changes at a hop do not touch the tree for them (an inactive static pair
costs a rejected trial when drawn; inactive others have bound 0). w = window * T.
Near dH = 0 the factor diverges and a one-sided window needs |dH| > 2 x the rounding of d:
with a resonance width (``resonance_width``, kmc.model.miller_abrahams_factor) a pair
whose window bound would exceed the rounded factor's peak (miller_abrahams_peak) gets the
whole line with the peak as its bound; without one such a pair has no finite bound and
the engine stops with an error naming ``dynamics.resonance_width`` (docs/model.md).

After an accepted hop i -> j every site energy is updated exactly, E_k += C_kj - C_ki
(O(N)). Which windows can have been left is decided per site, not per pair: each site m
keeps an interval [elo_m, ehi_m] containing E_m such that every active pair stays in its
window for any energies of its two sites within their intervals. The O(N) update loop
counts the sites that left their interval; those (and i and j, whose pairs are re-centred
because their activity changed) are *settled* (``_settle``): their pairs that left their
window or kept less than w/8 of margin are re-centred, and the site gets the widest
interval its pairs allow given the partners' intervals (shrinking a partner's interval to
half the pair's margin where that leaves too little). Since a window is a half-line, a
site kicked back and forth by a neighbouring pair's hops usually keeps both energies in
its interval and is not settled again. A rejected trial whose bound exceeds 8 (rate +
eps) re-centres its pair (the rate fell since its window was set). Per event: O(N) plus
O(degree) per settled site, independent of the number of pairs P elsewhere.

Cost per event (N = 1000, bench/bench_kmc.py: about 30 re-centrings and 10 settled sites
per hop): the O(N) loop writes one out-of-interval flag byte per site and stays vectorized
(SIMD); the flagged sites are then found eight flags at a time. A settle checks each pair
of its site once, lists the few to re-centre and re-centres and fits only those after the
loop. Changed bounds are written to their leaves at once and their ancestors recomputed
together at the end of the event, level by level (_flush), which gives the same tree as
one update per leaf but without its chain of dependent stores and loads. The loop and the
tree update change no trajectory; the single-pass settle gives slightly different site
intervals than the former second pass over every pair (partner shrinks applied once),
which could change when a pair is re-centred, but in the bench case the states stayed the
same bit for bit over 1.7e5 events.
"""
import math

import numba
import numpy as np

from kmc.errors import ConfigError
from kmc.model import (check_resonance_width, check_temperature, electron_energy,
                       electron_energy_update, electron_hop_energy, electron_pair_factor,
                       electron_site_energies, miller_abrahams_factor, miller_abrahams_peak)
from kmc.dynamics.counters import (EVENTS, N_COUNTERS, NEXT_TIME, RECENTRES, TRIALS,
                                   VIOLATIONS, grid_end, record_electron)
from kmc.dynamics.params import check_kernel
from kmc.dynamics.reference import electron_reference_kernel
from kmc.dynamics.state import ElectronState
from kmc.dynamics.sumtree import new_tree, tree_rebuild, tree_sample_paired

_BOUND_SLACK = 1.0 + 1e-12

# A pair whose remaining margin is below this fraction of its window width is re-centred
# when one of its sites is visited, so that the site thresholds do not shrink to zero.
_RENEW = 0.125

# A site settled with less room than this fraction of a pair's margin towards the pair's
# window edge first shrinks the partner's interval to half the margin (see _settle).
_SPLIT = 0.25

# A rejected trial whose bound exceeds this multiple of (rate + eps) re-centres its pair.
_LOOSE = 8.0

# Absolute slack eps per pair, as a fraction of the mean prefactor (module doc): a pair may
# have a bound up to eps above its rate, which adds at most this fraction of sum(prefactors)
# to the total bound.
_ABS_SHARE = 0.05


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


@numba.njit(cache=True)
def _absolute_edges(prefactors, eps, temperature, out):
    """out (P,): x_abs = T log(1 + prefactor / eps), the |dH| beyond which a pair's rate is
    within eps of its bound's (module doc); computed here, not with NumPy, so that it is
    the same libm value as when it was computed at each re-centring."""
    for p in range(prefactors.shape[0]):
        out[p] = temperature * math.log1p(prefactors[p] / eps)


@numba.njit(cache=True, inline="always")
def _window_edge(x0, up, ea, eb, c, x_abs, temperature, width):
    """(x_e, bound factor) of an active pair in window mode (module doc). Inlined: a call
    in the loops that use _recentre keeps numba from pruning the reference counting of
    their arrays (an atomic increment and decrement per array and iteration, 3x the cost
    of the rest of the static path)."""
    # edge at |dH| = x_e: the bound is the factor there (it decreases away from 0).
    # Relative rule: within e^(width/T) of the rate (2x near dH = 0); absolute rule:
    # within eps of it (x_abs = T log(1 + prefactor / eps), per pair); the wider window.
    x_rel = max(0.5 * x0, x0 - width) if up else min(width, 0.5 * x0)
    x_e = min(x_rel, x_abs)
    # rounding: d and the rate's dH carry errors of a few ulp of the energies; the bound is
    # taken that far inside the edge (an edge closer to 0 than that is refused)
    ulp = 1e-12 * (1.0 + c + abs(ea) + abs(eb))
    x_e = min(max(x_e, 2.0 * ulp), x0)
    if x_e - ulp > 0.0:
        return x_e, miller_abrahams_factor(x_e - ulp if up else ulp - x_e,
                                           temperature) * _BOUND_SLACK
    return x_e, math.inf    # dH within rounding of 0: refused by the engine


@numba.njit(cache=True, inline="always")
def _mark(tree, dirty, p):
    """Queue leaf p, whose value was just set, for the ancestor update of _flush (dirty[0]
    is the queue length); a full queue is flushed first."""
    if dirty[0] == dirty.shape[0] - 1:
        _flush(tree, dirty)
    dirty[0] += 1
    dirty[dirty[0]] = p


@numba.njit(cache=True, inline="always")
def _flush(tree, dirty):
    """Recompute the ancestors of the queued leaves, level by level, and empty the queue.

    Same values as one tree_set per leaf (every node is the sum of its two children, and a
    level is done before the next), but the nodes of one level are independent, so their
    loads and stores overlap: one tree_set per leaf is a chain of log2(P) store-load
    dependencies, which made the tree updates about 20% of the time per event.
    """
    n = dirty[0]
    half = tree.shape[0] // 2
    if n == 0 or half == 1:
        dirty[0] = 0        # one leaf: it is the root, no ancestors
        return
    q = dirty[1:n + 1]
    for k in range(n):
        q[k] = (half + q[k]) >> 1
    while True:
        # adjacent repeats (pairs of one site share their upper ancestors) are dropped
        kept = 0
        last = -1
        for k in range(n):
            node = q[k]
            if node != last:
                tree[node] = tree[2 * node] + tree[2 * node + 1]
                q[kept] = node >> 1
                kept += 1
                last = node
        n = kept
        if last == 1:
            break
    dirty[0] = 0


@numba.njit(cache=True, inline="always")
def _recentre(p, a, b, occ, energies, pair_c, prefactors, static, f_static, x_abs, lo, hi,
              tree, dirty, temperature, width, peak):
    """New window and bound of pair p = (a, b) from the current state (module doc); a
    changed bound is written to its leaf and queued in dirty for _flush."""
    s = occ[a] - occ[b]
    c = pair_c[p]
    pref = prefactors[p]
    dh0 = s * (energies[b] - energies[a]) - c
    x0 = abs(dh0)
    up = dh0 > 0.0
    is_static = static[p] != 0
    inactive = (s == 0) | (pref == 0.0)
    whole = inactive
    if inactive or (is_static and x0 >= 2.0 * width):
        # inactive (rate 0 whatever d; a static pair keeps its activity-free bound), or
        # static with |dH| >= width on its side of 0: the half-line beyond x_e = width
        x_e = width
        bound = pref * f_static if is_static else 0.0
    else:
        x_e, factor = _window_edge(x0, up, energies[a], energies[b], c, x_abs[p],
                                   temperature, width)
        if factor >= peak:
            # near the resonance: with a resonance width the factor never exceeds its
            # peak, a bound for every dH (the whole line); without one (peak = inf) the
            # bound is inf and the engine stops (_check_finite)
            factor = peak
            whole = True
        bound = pref * factor
    # the half-line of d on which s d - c stays beyond x_e on the side of dH0; inactive
    # pairs and pairs bounded by the peak: the whole line
    edge = s * (c + (x_e if up else -x_e))
    lower = (s > 0) == up
    lo[p] = -math.inf if whole or not lower else edge
    hi[p] = math.inf if whole or lower else edge
    leaf = tree.shape[0] // 2 + p
    if tree[leaf] != bound:
        tree[leaf] = bound
        _mark(tree, dirty, p)


# Site intervals are kept within this distance of the site energy (not infinite), so that
# sums with infinite window edges never meet inf - inf.
_FAR = 1e6


@numba.njit(cache=True, inline="always")
def _fit_pair(p, energies, pair_a, pair_b, lo, hi, elo, ehi):
    """Shrink the intervals of the two sites of p, each to half of p's margin on the side
    that matters, if the box elo/ehi of the pair no longer fits p's window (after a
    re-centring moved the window towards d)."""
    a = pair_a[p]
    b = pair_b[p]
    d = energies[b] - energies[a]
    half = 0.5 * min(d - lo[p], hi[p] - d)
    if elo[b] - ehi[a] < lo[p]:
        ehi[a] = min(ehi[a], energies[a] + half)
        elo[b] = max(elo[b], energies[b] - half)
    if ehi[b] - elo[a] > hi[p]:
        elo[a] = max(elo[a], energies[a] - half)
        ehi[b] = min(ehi[b], energies[b] + half)


@numba.njit(cache=True, inline="always")
def _seen_from(m, o, p, em, energies, lo, hi):
    """(E_o, u, ulo, uhi) of pair p = (m, o): u = E_m - E_o must stay in [ulo, uhi], the
    window of d = E_b - E_a seen from m ((lo, hi) if m is b, the larger index, else
    (-hi, -lo); u = +-d exactly)."""
    eo = energies[o]
    # min/max instead of a branch on the orientation, which is random and was
    # mispredicted half the time (lo < hi always)
    sgn = 1.0 if o < m else -1.0
    slo = sgn * lo[p]
    shi = sgn * hi[p]
    return eo, em - eo, min(slo, shi), max(slo, shi)


@numba.njit(cache=True, inline="always")
def _fit(em, o, eo, u, ulo, uhi, elo, ehi):
    """(low, high) limits that a pair (m, o) with u in [ulo, uhi] (_seen_from) puts on the
    interval of site m, after shrinking the partner's interval where m would keep less
    than _SPLIT of the pair's margin (see _settle)."""
    olo = min(elo[o], eo)
    ohi = max(ehi[o], eo)
    cap = uhi + olo
    flo = ulo + ohi
    if cap - em < _SPLIT * (uhi - u):
        elo[o] = eo - 0.5 * (uhi - u)
        cap = em + 0.5 * (uhi - u)
    if em - flo < _SPLIT * (u - ulo):
        ehi[o] = eo + 0.5 * (u - ulo)
        flo = em - 0.5 * (u - ulo)
    return flo, cap


@numba.njit(cache=True, inline="always")
def _settle(m, every, done, occ, energies, pair_c, prefactors, static, f_static, x_abs, lo, hi,
            tree, dirty, temperature, width, peak, site_ptr, site_ids, site_other, elo, ehi,
            redo):
    """Re-centre the pairs of site m that left their window or kept less than _RENEW width
    of margin (if ``every``: every pair of m but the one to site ``done``, re-centred in
    the same state already; -1 for none), then give m the widest interval
    [elo_m, ehi_m] (within _FAR) on which every active pair of m stays in its window for
    any partner energy in the partner's interval (widened to contain the partner's energy,
    which lies outside it if the partner is still to be settled). Where that leaves m less
    than _SPLIT of a pair's margin on one side, the partner's interval is first shrunk to
    half that margin on that side (shrinking keeps every other pair of the partner
    fitted). site_ids and site_other are unsigned here (uint32: indexing with them skips
    the negative-index test); redo (max degree,) int64 is scratch. Returns the number of
    re-centred pairs."""
    em = energies[m]
    low = em - _FAR
    high = em + _FAR
    n_redo = 0
    if every:
        for r in range(site_ptr[m], site_ptr[m + 1]):
            o = site_other[r]
            if o == done:
                eo, u, ulo, uhi = _seen_from(m, o, site_ids[r], em, energies, lo, hi)
                flo, cap = _fit(em, o, eo, u, ulo, uhi, elo, ehi)
                high = min(high, cap)
                low = max(low, flo)
            else:
                redo[n_redo] = r
                n_redo += 1
    else:
        # one loop checks the margins and fits the pairs that keep their windows; the few
        # others are listed, re-centred and fitted after it (_recentre inlined into this
        # loop made every pair slower)
        for r in range(site_ptr[m], site_ptr[m + 1]):
            o = site_other[r]
            eo, u, ulo, uhi = _seen_from(m, o, site_ids[r], em, energies, lo, hi)
            if min(u - ulo, uhi - u) < _RENEW * width:
                redo[n_redo] = r
                n_redo += 1
                continue
            flo, cap = _fit(em, o, eo, u, ulo, uhi, elo, ehi)
            high = min(high, cap)
            low = max(low, flo)
    for k in range(n_redo):
        r = redo[k]
        p = site_ids[r]
        o = site_other[r]
        _recentre(p, min(m, o), max(m, o), occ, energies, pair_c, prefactors, static,
                  f_static, x_abs, lo, hi, tree, dirty, temperature, width, peak)
        eo, u, ulo, uhi = _seen_from(m, o, p, em, energies, lo, hi)
        flo, cap = _fit(em, o, eo, u, ulo, uhi, elo, ehi)
        high = min(high, cap)
        low = max(low, flo)
    elo[m] = low
    ehi[m] = high
    return n_redo


@numba.njit(cache=True, _nrt=False)
def _init_bounds(occ, energies, pair_a, pair_b, pair_c, prefactors, static, f_static, x_abs,
                 lo, hi, tree, dirty, temperature, width, peak, site_ptr, site_ids, site_other,
                 elo, ehi, redo):
    """Every window, bound and interval from the current state; the caller rebuilds the
    tree's internal nodes (tree_rebuild)."""
    for q in range(tree.shape[0]):
        tree[q] = 0.0
    dirty[0] = 0
    for p in range(pair_a.shape[0]):
        _recentre(p, pair_a[p], pair_b[p], occ, energies, pair_c, prefactors, static,
                  f_static, x_abs, lo, hi, tree, dirty, temperature, width, peak)
    # zero-width intervals fit every window; then widen them site by site
    for m in range(occ.shape[0]):
        elo[m] = energies[m]
        ehi[m] = energies[m]
    for m in range(occ.shape[0]):
        _settle(m, False, -1, occ, energies, pair_c, prefactors, static, f_static, x_abs, lo,
                hi, tree, dirty, temperature, width, peak, site_ptr, site_ids, site_other, elo,
                ehi, redo)
    dirty[0] = 0


# The helpers below are inlined (numba IR) into functions compiled without numba's
# reference counting (_nrt=False; they allocate nothing): with it, every inlined helper
# call increments and decrements the count of each array it binds, about 20 atomic
# operations per call, which made a site visit 2x slower. The kernel itself needs it
# (the recorder sorts) and calls these functions once per event.


@numba.njit(cache=True, _nrt=False)
def _tighten(p, occ, energies, pair_a, pair_b, pair_c, prefactors, static, f_static, x_abs, lo,
             hi, tree, dirty, temperature, width, peak, elo, ehi):
    """Re-centre pair p (at a rejected trial) and shrink its sites' intervals to fit."""
    _recentre(p, pair_a[p], pair_b[p], occ, energies, pair_c, prefactors, static, f_static,
              x_abs, lo, hi, tree, dirty, temperature, width, peak)
    _flush(tree, dirty)
    _fit_pair(p, energies, pair_a, pair_b, lo, hi, elo, ehi)


@numba.njit(cache=True, _nrt=False)
def _after_hop(i, j, occ, energies, interactions, pair_c, prefactors, static, f_static, x_abs,
               site_ptr, site_ids, site_other, temperature, width, peak, lo, hi, tree, dirty,
               elo, ehi, counters, hot, flags, redo):
    """After the hop i -> j (occupations already swapped): the exact O(N) update of the
    site energies, E_m += C_jm - C_im, then the repair of the bounds (module doc). hot
    (8 ceil(N / 8),) int64, flags (8 ceil(N / 8),) uint8 (zero beyond N), dirty (empty
    queue) and redo are scratch."""
    n = occ.shape[0]
    n_out = 0
    for m in range(n):
        e = electron_energy_update(energies[m], interactions[j, m], interactions[i, m])
        energies[m] = e
        # a flag byte per site and a count, no list: this loop stays vectorized (SIMD), at
        # about the cost of the bare update; appending to a list here cost 4x as much
        out = (e < elo[m]) | (e > ehi[m])
        flags[m] = out
        n_out += out
    # the few flagged sites (about 10 of 1000), found eight flags at a time
    n_hot = 0
    if n_out > 0:
        words = flags.view(np.uint64)
        for w in range(words.shape[0]):
            if words[w] != 0:
                for m in range(8 * w, 8 * w + 8):
                    hot[n_hot] = m
                    n_hot += flags[m]
    # the pairs of i and j changed activity: settle i and j re-centring all their pairs
    # (the pair (i, j) once)
    counters[RECENTRES] += _settle(i, True, -1, occ, energies, pair_c, prefactors, static,
                                   f_static, x_abs, lo, hi, tree, dirty, temperature, width,
                                   peak, site_ptr, site_ids, site_other, elo, ehi, redo)
    counters[RECENTRES] += _settle(j, True, i, occ, energies, pair_c, prefactors, static,
                                   f_static, x_abs, lo, hi, tree, dirty, temperature, width,
                                   peak, site_ptr, site_ids, site_other, elo, ehi, redo)
    for h in range(n_hot):
        m = hot[h]
        # i and j are settled; a site can have been fitted by a partner's settling since
        if energies[m] < elo[m] or energies[m] > ehi[m]:
            counters[RECENTRES] += _settle(m, False, -1, occ, energies, pair_c, prefactors,
                                           static, f_static, x_abs, lo, hi, tree, dirty,
                                           temperature, width, peak, site_ptr, site_ids,
                                           site_other, elo, ehi, redo)
    # the leaves are set; their ancestors now, all at once
    _flush(tree, dirty)


@numba.njit(cache=True)
def _thinning_kernel(occ, energies, interactions, n_electrons, pair_a, pair_b, pair_c,
                     prefactors, static, f_static, x_abs, eps, site_ptr, site_ids, site_other,
                     temperature, width, peak, res_width, lo, hi, tree, dirty, elo, ehi, hot,
                     flags, redo, scalars, counters, executions, times, rng, budget,
                     energy_out, exc_out, config_out):
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
        p = tree_sample_paired(tree, rng.random() * total)
        if p >= n_pairs:
            continue
        bound = tree[tree.shape[0] // 2 + p]
        a = pair_a[p]
        b = pair_b[p]
        rate = prefactors[p] * electron_pair_factor(occ, energies, a, b, pair_c[p], temperature,
                                                    res_width)
        if rate > bound:
            counters[VIOLATIONS] += 1
        if rng.random() * bound >= rate:
            if bound > _LOOSE * (rate + eps):
                # the pair moved away from dH = 0 since its window was set: tighten it now
                _tighten(p, occ, energies, pair_a, pair_b, pair_c, prefactors, static,
                         f_static, x_abs, lo, hi, tree, dirty, temperature, width, peak, elo,
                         ehi)
                counters[RECENTRES] += 1
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
        _after_hop(i, j, occ, energies, interactions, pair_c, prefactors, static, f_static,
                   x_abs, site_ptr, site_ids, site_other, temperature, width, peak, lo, hi,
                   tree, dirty, elo, ehi, counters, hot, flags, redo)
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
    window : float, w / T, the scale of the thinning windows (module doc; speed only)
    kernel : "fast" or "reference" (Gillespie recomputing every pair rate after each event)
    resonance_width : float >= 0, units of J: w of kmc.model.miller_abrahams_factor, which
        rounds off the divergence of the rate at dH = 0 (an approximation; 0, the default,
        is the exact factor, and a hop within rounding of dH = 0 then stops the run with an
        error naming ``dynamics.resonance_width``)

    A state is a kmc.dynamics.state.ElectronState.
    """

    model = "electron"
    state_type = ElectronState

    def __init__(self, system, temperature, pairs, prefactors, site_energies=None, window=1.0,
                 kernel="fast", resonance_width=0.0):
        check_temperature("temperature", temperature)
        check_kernel("kernel", kernel)
        if not window > 0:
            raise ConfigError("window", f"must be > 0, got {window}")
        self.resonance_width = check_resonance_width("resonance_width", resonance_width)
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
        # the partner of each entry of the site lists (the kernels read it instead of the
        # two ends of the pair: one load instead of two dependent ones)
        owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.site_ptr))
        self.site_other = (self.pair_a[self.site_ids] + self.pair_b[self.site_ids] - owner)
        # unsigned copies for the kernels: numba indexes with an unsigned integer without
        # the test for a negative index (two instructions per array access)
        if max(n, pairs.shape[0]) >= 2**32:
            raise ConfigError("n_sites", f"at most 2^32 sites and pairs, got {n} and "
                                         f"{pairs.shape[0]}")
        self._ids_u = self.site_ids.astype(np.uint32)
        self._other_u = self.site_other.astype(np.uint32)
        self.site_energies = np.ascontiguousarray(
            system.site_energies if site_energies is None else site_energies, dtype=float)
        self.width = float(window) * self.temperature
        # the static bound's factor: the largest Miller-Abrahams factor at |dH| >= width
        # scratch of _after_hop: the flagged sites are listed from whole words of flags, so
        # the list is written up to the last word's end (beyond N - 1 if every site is out)
        self._hot = np.zeros(8 * ((n + 7) // 8), dtype=np.int64)
        self._flags = np.zeros(8 * ((n + 7) // 8), dtype=np.uint8)
        # queue of the tree leaves changed during one event (_mark, _flush): its length, then
        # room for every re-centring one event can make (each pair at most twice from each
        # end); a longer queue is flushed early
        self._dirty = np.zeros(4 * pairs.shape[0] + 2, dtype=np.int64)
        self._redo = np.zeros(int(np.max(np.diff(self.site_ptr))), dtype=np.int64)
        self.f_static = miller_abrahams_factor(-self.width, self.temperature) * _BOUND_SLACK
        # a bound of the factor over every dH (inf without a resonance width): the bound of
        # a pair too close to dH = 0 for a one-sided window (_recentre)
        self._peak = miller_abrahams_peak(self.temperature, self.resonance_width)
        self._static_for = None
        self.kernel = kernel

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
                              tree=new_tree(n_pairs), elo=np.empty(n), ehi=np.empty(n),
                              scalars=np.array([0.0, energy]),
                              counters=np.zeros(N_COUNTERS, dtype=np.int64),
                              executions=np.zeros((2, n_pairs), dtype=np.int64))
        self.refresh(state)
        return state

    def _bound_args(self):
        """(static, f_static, x_abs) of the bound construction (module doc; eps in
        self._eps): a pure function of the current prefactors, recomputed when they changed
        (the accelerator rewrites them), so that a resumed run makes the same choices as an
        uninterrupted one."""
        if self._static_for is None or not np.array_equal(self._static_for, self.prefactors):
            self._static_for = self.prefactors.copy()
            eps = _ABS_SHARE * float(np.sum(self.prefactors)) / self.prefactors.shape[0]
            self._static = (self.prefactors * self.f_static <= eps).astype(np.int8)
            self._eps = eps if eps > 0.0 else math.inf
            self._x_abs = np.empty_like(self.prefactors)
            _absolute_edges(self.prefactors, self._eps, self.temperature, self._x_abs)
        return self._static, self.f_static, self._x_abs

    def refresh(self, state):
        """Rebuild every thinning bound (after prefactors, T or the energies changed)."""
        _init_bounds(state["config"], state["fields"], self.pair_a, self.pair_b, self.pair_c,
                     self.prefactors, *self._bound_args(), state["lo"], state["hi"],
                     state["tree"], self._dirty, self.temperature, self.width, self._peak,
                     self.site_ptr, self._ids_u, self._other_u, state["elo"], state["ehi"],
                     self._redo)
        tree_rebuild(state["tree"])
        self._check_finite(state)

    @staticmethod
    def _check_finite(state):
        # n_B(|dH|) diverges at dH = 0 (kmc.model.miller_abrahams_factor). Continuous
        # disorder does not make an exact 0 likely, but a long run can come within rounding
        # of it: the quench of runs/electron_quench_paper.toml (xi = 0.1, N = 1000) reached
        # |dH| = 3e-12 for a pair at r = 0.4 after 5.7e6 events, where the incremental site
        # energies themselves carry errors of 2e-11. The rate is then not defined to
        # within a factor of 2, and no bound exists: the run stops here, before the
        # checkpoint of this chunk is written, with an error naming the key that rounds the
        # divergence off.
        if not np.isfinite(state["tree"][1]):
            raise ConfigError(
                "dynamics.resonance_width",
                "a hop came within rounding of dH = 0, where the Miller-Abrahams rate "
                "diverges; set a resonance width > 0 (e.g. 1e-6, units of J; "
                "docs/model.md, 'Miller-Abrahams resonance')")

    def rates(self, state):
        """(P,) current hop rates of the pairs (0 for inactive pairs)."""
        occ, e = state["config"], state["fields"]
        return np.array([self.prefactors[p] * electron_pair_factor(
                             occ, e, self.pair_a[p], self.pair_b[p], self.pair_c[p],
                             self.temperature, self.resonance_width)
                         for p in range(self.pair_a.shape[0])])

    def advance(self, state, times, rng, budget, out):
        """Run at most ``budget`` trials; same contract as TLSEngine.advance."""
        if self.kernel == "fast":
            _thinning_kernel(state["config"], state["fields"], self.interactions,
                             self.n_electrons, self.pair_a, self.pair_b, self.pair_c,
                             self.prefactors, *self._bound_args(), self._eps,
                             self.site_ptr, self._ids_u, self._other_u, self.temperature,
                             self.width, self._peak, self.resonance_width, state["lo"],
                             state["hi"], state["tree"], self._dirty,
                             state["elo"], state["ehi"], self._hot, self._flags, self._redo,
                             state["scalars"], state["counters"], state["executions"], times,
                             rng, int(budget), out["energy"], out["excitations"], out["config"])
        else:
            electron_reference_kernel(state["config"], state["fields"], self.interactions,
                                      self.n_electrons, self.pair_a, self.pair_b, self.pair_c,
                                      self.prefactors, self.temperature,
                                      self.resonance_width, state["scalars"],
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
