"""Temporal acceleration of the kinetic engines: scale the rates of quasi-equilibrated processes.

Why (docs/acceleration.md, docs/model.md section 6): with rates over 12 decades exact KMC
spends almost all of its events on fast processes flipping back and forth (TLSs with large
Delta0, electron pairs at short distance), about sum_i lambda_i / lambda_min events per
trajectory. Those flips carry no information once the process has equilibrated with its
surroundings.

What: a *process* is one TLS (both flip directions) or one hop pair (a, b) (both hop
directions). Each process k has a scale s_k in (0, 1] that multiplies its static prefactor
(a Delta0_k^2 or Gamma0 e^(-r_ab/xi)) and so *both* of its directions: its detailed balance,
and with it the stationary distribution, is unchanged; only how often it fires changes.
The scales live in the engine's prefactor array and change only at the schedule points
tau_m = t_1 10^(m / points_per_decade) (t_1 the first sampling time), where the engine's
bounds are rebuilt with ``engine.refresh``; the kernels only count executions per process
and direction (state["executions"]).

Rule ("quasi_equilibrium", after Dybeck, Plaisance and Neurock, JCTC 13, 1525 (2017)). At
tau_m, with c_k the executions of process k in [tau_(m-1), tau_m] (both directions) and
g = (tau_(m+1) - tau_m) / (tau_m - tau_(m-1)) the growth of the next interval:

1. counts: a process that is unscaled (s_k = 1) becomes a candidate when it executed at least
   N_e times (``executions``) with balanced directions, |c_k+ - c_k-| <= 0.2 c_k (a pair with a
   net current is transporting, not equilibrated). A candidate, or a process already
   scaled, gets s_k <- min(1, s_k N_e / (g c_k)): it is expected to execute about N_e times
   in the next interval, i.e. it still equilibrates N_e / 2 times per interval. A scaled
   process that stops executing (blocked by a neighbour) or becomes unbalanced returns
   towards 1 by at most a factor N_e / g per interval (a jump straight to 1 would make it
   execute lambda_k (tau_(m+1) - tau_m) times, up to 1e9 at late times, before the next
   update could scale it down again).
2. separation guard: scaling must not change which of two strongly coupled processes wins
   a race, unless the winner stays M times faster. For each pair (k, l) of strongly coupled
   processes (TLS: |J_kl| >= ``coupling`` T; electron glass: hop pairs sharing a site),
   Lambda_kl is the rate at which l leaves its current state, now or in the state reached
   by one execution of k, whichever is larger, and lambda_k the total rate of k now (TLS
   a Delta0^2 |E| coth(|E|/2T); pair Gamma0 e^(-r/xi) coth(|dH|/2T)). Then the scaled ratio
   s_k lambda_k / (s_l Lambda_kl) must be at least min(M, the unscaled ratio):
   s_k >= s_l min(1, M Lambda_kl / lambda_k), M = ``separation``. In particular a process
   whose slower partner is not scaled stays M times faster than that partner's rate in
   the excited state, and a process is never scaled more than a faster partner. Solved by
   monotone fixed-point iteration (the s only increase).

3. burst stops: a process that was unscaled (or scaled for an environment that has since
   changed, e.g. a TLS whose large field a neighbour's flip has just removed) can become
   fast in the middle of an interval and would then execute lambda_k (tau_m - t) times
   before tau_m, up to 1e8 at late times. So every ``burst`` N_e trials (B N_e, B =
   ``burst``) the executions since the last update are checked, and if a balanced process
   executed at least B N_e times, the scales are updated at once: each such process is
   lowered so that it executes about N_e times per interval at the rate observed since
   the last update, but not below what its guard (rule 2) needs, and no scale is raised.
   A stop after a fixed number of trials is a stopping time, so changing rates there is as
   exact as at a schedule point; the stops sit at fixed multiples of the trial counter, so
   a resumed run makes the same stops. The executions before the stop are kept for the
   count rule at tau_m, converted to the new scales (``carry``).

The guard is what a plain cap lacks. A strongly coupled pair whose joint flip goes through
an excited intermediate (k excited, then l relaxes) has a joint rate
w_k^up Lambda_l / (s_k w_k^down + Lambda_l), which is independent of s_k only while
s_k w_k^down >> Lambda_l; a cap of every rate at K/t breaks that once K/t falls below the
partner's rate in the excited state (measured in tests/test_acceleration.py and
docs/acceleration.md).

The naive rule ("cap": s_k = min(1, K / (tau_m lambda_k)) with K = ``executions``) is kept for
that comparison only.

Counters (per trajectory): events and trials executed, and the estimate of the events the
unaccelerated engine would have executed, sum over executed events of 1 / s of their process.
"""
import math
from dataclasses import dataclass

import numba
import numpy as np

from kmc.errors import ConfigError
from kmc.model import (electron_energy_update, electron_hop_energy, miller_abrahams_factor,
                       tls_field_update, tls_flip_energy, tls_flip_factor)
from kmc.dynamics.counters import EVENTS, NEXT_TIME, TRIALS
from kmc.dynamics.state import _NamedArrays

RULES = ("quasi_equilibrium", "cap")

# A process with a net current larger than this fraction of its executions is not in
# quasi-equilibrium (Dybeck et al.'s reversibility tolerance).
_BALANCE = 0.2

# The guard's separation M per unit of N_e when it is not given: the bias measured on the
# strongly coupled test instance is set by M (M = 10 fails at N_e = 100 and 300, M = 30
# passes at both; docs/acceleration.md), the cost by M and N_e together.
SEPARATION_PER_EXECUTION = 0.3

# Fixed-point sweeps of the separation guard (if they do not settle, nothing is scaled).
_GUARD_SWEEPS = 200


@dataclass(frozen=True)
class AccelerationSettings:
    """Parameters of the temporal acceleration (docs/acceleration.md).

    Attributes
    ----------
    executions : float
        N_e, the accuracy parameter: a process is scaled only after it executed N_e times in
        one interval, and then only so far that it still executes about N_e times per
        interval. Larger is more accurate and slower; N_e -> inf is the exact dynamics.
    separation : float or None
        M, how much faster (scaled) than an active strongly coupled partner a process must
        stay; None means M = 0.3 N_e (tightening N_e tightens M with it; M = 30 at the
        recommended N_e = 100).
    points_per_decade : int
        Schedule points (scale updates) per decade of time.
    coupling : float
        TLS: |J_kl| / T from which two TLSs count as strongly coupled.
    rule : "quasi_equilibrium" (default) or "cap" (the naive cap, for comparisons only)
    burst : float
        B: a balanced process that executes B N_e times since the last update of the scales
        triggers an update at once (a *burst stop*, rule 3 of the module doc), instead of
        running unscaled to the next schedule point; 0 switches burst stops off.
    """

    executions: float = 100.0
    separation: float | None = None
    points_per_decade: int = 4
    coupling: float = 1.0
    rule: str = "quasi_equilibrium"
    burst: float = 10.0

    def __post_init__(self):
        def need(ok, key, msg, value):
            if not ok:
                raise ConfigError(f"dynamics.{key}", f"{msg}, got {value!r}")

        need(isinstance(self.executions, (int, float)) and math.isfinite(self.executions)
             and self.executions >= 1, "acceleration_executions",
             "must be a finite number >= 1", self.executions)
        need(self.separation is None or (isinstance(self.separation, (int, float))
                                         and math.isfinite(self.separation)
                                         and self.separation >= 1),
             "acceleration_separation", "must be a finite number >= 1", self.separation)
        need(isinstance(self.points_per_decade, int) and self.points_per_decade >= 1,
             "acceleration_points_per_decade", "must be an integer >= 1",
             self.points_per_decade)
        need(isinstance(self.coupling, (int, float)) and self.coupling > 0,
             "acceleration_coupling", "must be > 0", self.coupling)
        need(self.rule in RULES, "acceleration_rule", f"expected one of {RULES}", self.rule)
        need(isinstance(self.burst, (int, float)) and not isinstance(self.burst, bool)
             and (self.burst == 0 or (math.isfinite(self.burst) and self.burst >= 2)),
             "acceleration_burst", "must be 0 (off) or a finite number >= 2", self.burst)

    @property
    def m(self):
        """The separation factor M actually used."""
        return SEPARATION_PER_EXECUTION * self.executions if self.separation is None \
            else float(self.separation)


# ---------------------------------------------------------------------------------------
# rates of the processes and of their strongly coupled partners (numba, plain arrays)
# ---------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _tls_rates(spins, fields, couplings, base, delta0_sq, temperature, ptr, ids, which, lam,
               big):
    """For each TLS k in ``which``: lam[k], its total (two-way) rate now, and big[r] for each
    partner l = ids[r] of k (CSR ptr/ids), the rate at which l leaves its current well, now
    or after one flip of k, whichever is larger. Entries of other TLSs are left as they
    were (a burst stop needs only the bursting ones)."""
    for k in which:
        d_h = tls_flip_energy(spins[k], fields[k])
        lam[k] = base[k] * (tls_flip_factor(d_h, delta0_sq[k], temperature)
                            + tls_flip_factor(-d_h, delta0_sq[k], temperature))
        for r in range(ptr[k], ptr[k + 1]):
            m = ids[r]
            now = base[m] * tls_flip_factor(tls_flip_energy(spins[m], fields[m]),
                                            delta0_sq[m], temperature)
            h_after = tls_field_update(fields[m], couplings[k, m], spins[k])
            after = base[m] * tls_flip_factor(tls_flip_energy(spins[m], h_after),
                                              delta0_sq[m], temperature)
            big[r] = max(now, after)


@numba.njit(cache=True, inline="always")
def _pair_factor(oa, ob, ea, eb, c_ab, temperature, width, both):
    """Hop factor of a pair's active hop (both: plus the reverse hop, coth(|dH|/2T));
    0 if the pair is inactive. width: the engine's resonance width."""
    if oa == ob:
        return 0.0
    dh = electron_hop_energy(ea, eb, c_ab) if oa == 1 else electron_hop_energy(eb, ea, c_ab)
    f = miller_abrahams_factor(dh, temperature, width)
    if both:
        f += miller_abrahams_factor(-dh, temperature, width)
    return f


@numba.njit(cache=True)
def _electron_rates(occ, energies, interactions, pair_a, pair_b, pair_c, base, temperature,
                    width, ptr, ids, which, lam, big):
    """As _tls_rates for the hop pairs in ``which``; partners are the pairs sharing a site.
    An inactive pair's lam is its prefactor (the smallest two-way rate it can have once
    active); big is the rate of the partner's active hop now or after one hop of the
    pair."""
    for p in which:
        a = pair_a[p]
        b = pair_b[p]
        f = _pair_factor(occ[a], occ[b], energies[a], energies[b], pair_c[p], temperature,
                         width, True)
        lam[p] = base[p] * f if f > 0.0 else base[p]
        active = occ[a] != occ[b]
        i = a if occ[a] == 1 else b
        j = b if i == a else a
        for r in range(ptr[p], ptr[p + 1]):
            q = ids[r]
            c = pair_a[q]
            d = pair_b[q]
            now = base[q] * _pair_factor(occ[c], occ[d], energies[c], energies[d],
                                         pair_c[q], temperature, width, False)
            after = 0.0
            if active:
                # after the hop i -> j: n_i = 0, n_j = 1, E_m += C_jm - C_im
                oc = occ[c]
                od = occ[d]
                oc = 0 if c == i else (1 if c == j else oc)
                od = 0 if d == i else (1 if d == j else od)
                ec = electron_energy_update(energies[c], interactions[j, c], interactions[i, c])
                ed = electron_energy_update(energies[d], interactions[j, d], interactions[i, d])
                after = base[q] * _pair_factor(oc, od, ec, ed, pair_c[q], temperature, width,
                                               False)
            big[r] = max(now, after)


@numba.njit(cache=True)
def _count_scales(scales, counts, n_e, growth):
    """Rule 1 of the module doc, in place; returns the number of scaled processes."""
    n_scaled = 0
    for k in range(scales.shape[0]):
        up = counts[0, k]
        down = counts[1, k]
        c = up + down
        if abs(up - down) > _BALANCE * c:
            c = 0       # a net current: treated as no evidence of equilibrium
        if scales[k] < 1.0 or c >= n_e:
            scales[k] = min(1.0, scales[k] * n_e / (growth * max(c, 1)))
        n_scaled += scales[k] < 1.0
    return n_scaled


@numba.njit(cache=True, inline="always")
def _busy_balanced(up, down, threshold):
    """At least ``threshold`` executions with balanced directions (no net current)."""
    c = up + down
    return c >= threshold and abs(up - down) <= _BALANCE * c


@numba.njit(cache=True, inline="always")
def _guard_need(k, scales, lam, ptr, ids, big, m_sep):
    """The smallest s_k that rule 2 allows given the partners' scales."""
    need = 0.0
    for r in range(ptr[k], ptr[k + 1]):
        need = max(need, scales[ids[r]] * min(1.0, m_sep * big[r] / lam[k]))
    return need


@numba.njit(cache=True)
def _bursting(executions, mark, threshold):
    """True if a process executed at least ``threshold`` times since ``mark`` with balanced
    directions (rule 3 of the module doc)."""
    for k in range(executions.shape[1]):
        if _busy_balanced(executions[0, k] - mark[0, k], executions[1, k] - mark[1, k],
                          threshold):
            return True
    return False


@numba.njit(cache=True)
def _busy_ids(counts, threshold):
    """Indices of the processes with at least ``threshold`` balanced executions in counts
    (the ones _burst_scales changes)."""
    ids = np.empty(counts.shape[1], dtype=np.int64)
    n = 0
    for k in range(counts.shape[1]):
        if _busy_balanced(counts[0, k], counts[1, k], threshold):
            ids[n] = k
            n += 1
    return ids[:n]


@numba.njit(cache=True)
def _burst_scales(scales, counts, threshold, n_e, elapsed, interval, lam, ptr, ids, big,
                  m_sep, sweeps):
    """Rule 3, in place: every balanced process with at least ``threshold`` executions in the
    last ``elapsed`` time is lowered to the scale at which it executes about N_e times per
    schedule interval of length ``interval``, but not below what the separation guard needs
    from it (rule 2, with the partners' scales); no scale is raised. Returns the factor by
    which each scale changed."""
    n = scales.shape[0]
    before = scales.copy()
    bursting = np.zeros(n, dtype=np.bool_)
    for k in range(n):
        if _busy_balanced(counts[0, k], counts[1, k], threshold):
            bursting[k] = True
            scales[k] *= min(1.0, n_e * elapsed / (interval * (counts[0, k] + counts[1, k])))
    # lowering k only loosens its partners' guard; k's own guard is re-imposed (monotone
    # sweeps over the bursting processes, capped at their old scales)
    for _ in range(sweeps):
        changed = False
        for k in range(n):
            if not bursting[k]:
                continue
            need = min(_guard_need(k, scales, lam, ptr, ids, big, m_sep), before[k])
            if need > scales[k] * (1.0 + 1e-12):
                scales[k] = need
                changed = True
        if not changed:
            break
    return scales / before


@numba.njit(cache=True)
def _guard_scales(scales, lam, ptr, ids, big, m_sep, sweeps):
    """Rule 2: raise s_k until s_k >= s_l min(1, M big_kl / lam_k) for every partner l
    (monotone Gauss-Seidel sweeps; returns False if they did not settle)."""
    n = scales.shape[0]
    for _ in range(sweeps):
        changed = False
        for k in range(n):
            if scales[k] >= 1.0:
                continue
            need = _guard_need(k, scales, lam, ptr, ids, big, m_sep)
            if need > scales[k] * (1.0 + 1e-12):
                scales[k] = min(1.0, need)
                changed = True
        if not changed:
            return True
    return False


@dataclass(frozen=True, eq=False)
class AccelerationState(_NamedArrays):
    """Per-trajectory state of the acceleration (P processes).

    scales : (P,) float, s_k in (0, 1]
    exec_mark : (2, P) int64, the engine's executions at the last schedule point
    index : (1,) int64, next stop point of the plan (:meth:`Accelerator.plan`)
    last : (1,) float, time of the last schedule point (0 before the first)
    events_unaccelerated : (1,) float, sum over executed events of 1 / s of their process
    carry : (2, P) float, executions (up, down) between the last schedule point and the last
        burst stop, converted to the current scales (what the count rule adds at the next
        schedule point)
    last_update : (1,) float, time of the last update of the scales (schedule point or
        burst stop)
    """

    scales: np.ndarray
    exec_mark: np.ndarray
    index: np.ndarray
    last: np.ndarray
    events_unaccelerated: np.ndarray
    carry: np.ndarray
    last_update: np.ndarray


class AcceleratedState:
    """An engine state (TLSState or ElectronState) with its AccelerationState.

    Attribute and item access fall through to the engine state (``state.counters``,
    ``state["config"]``); ``arrays()`` holds both, the acceleration's under ``accel_``.
    """

    _PREFIX = "accel_"

    def __init__(self, engine_state, accel):
        self.engine_state = engine_state
        self.accel = accel

    def __getattr__(self, name):
        return getattr(self.engine_state, name)

    def __getitem__(self, name):
        return getattr(self.engine_state, name)

    def arrays(self):
        out = dict(self.engine_state.arrays())
        out.update({self._PREFIX + k: v for k, v in self.accel.arrays().items()})
        return out


class _AcceleratedStateType:
    """``from_arrays`` of an AcceleratedState over a given engine state type."""

    def __init__(self, engine_state_type):
        self.engine_state_type = engine_state_type

    def from_arrays(self, arrays):
        p = AcceleratedState._PREFIX
        accel = {k[len(p):]: v for k, v in arrays.items() if k.startswith(p)}
        inner = {k: v for k, v in arrays.items() if not k.startswith(p)}
        return AcceleratedState(self.engine_state_type.from_arrays(inner),
                                AccelerationState.from_arrays(accel))


def _csr(lists, n):
    ptr = np.zeros(n + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(x) for x in lists])
    ids = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists]) if ptr[-1] \
        else np.zeros(0, dtype=np.int64)
    return ptr, ids


class Accelerator:
    """Runs an engine (TLSEngine or ElectronEngine) with scaled prefactors; see module doc.

    Parameters
    ----------
    engine : TLSEngine or ElectronEngine. The accelerator takes over its ``prefactors``
        attribute (a private copy, rescaled per trajectory); the unscaled values are kept.
    settings : AccelerationSettings

    The scale state of a trajectory lives in its engine state dict (keys ``scales`` (P,),
    ``exec_mark`` (2, P), ``accel_index`` (1,) int64, ``accel_events`` (1,) float), so a
    checkpoint of the state resumes bit for bit.
    """

    def __init__(self, engine, settings):
        self.engine = engine
        self.settings = settings
        self.base = np.array(engine.prefactors, dtype=float)
        engine.prefactors = self.base.copy()
        self.model = engine.model
        t = engine.temperature
        if self.model == "tls":
            strong = np.abs(engine.couplings) >= settings.coupling * t
            np.fill_diagonal(strong, False)
            self.ptr, self.ids = _csr([np.flatnonzero(row) for row in strong],
                                      engine.n_sites)
        else:
            lists = []
            ptr_s, ids_s = engine.site_ptr, engine.site_ids
            for p, (a, b) in enumerate(engine.pairs):
                near = np.concatenate([ids_s[ptr_s[a]:ptr_s[a + 1]], ids_s[ptr_s[b]:ptr_s[b + 1]]])
                lists.append(near[near != p])
            self.ptr, self.ids = _csr(lists, self.base.shape[0])
        self.n_processes = self.base.shape[0]
        self._lam = np.empty(self.n_processes)
        self._every = np.arange(self.n_processes, dtype=np.int64)
        self._big = np.empty(self.ids.shape[0])
        self._plans = {}

    # -- schedule ---------------------------------------------------------------------

    def plan(self, times):
        """Merged stop points of a grid: (points, grid index or -1, is schedule point)."""
        key = (times.shape[0], float(times[0]), float(times[-1]))
        if key not in self._plans:
            ppd = self.settings.points_per_decade
            n_sched = int(math.floor(ppd * math.log10(times[-1] / times[0]) + 1e-9)) + 1
            sched = times[0] * 10.0 ** (np.arange(n_sched) / ppd)
            pts = np.unique(np.concatenate([times, sched]))
            grid_index = np.full(pts.shape[0], -1, dtype=np.int64)
            grid_index[np.searchsorted(pts, times)] = np.arange(times.shape[0])
            is_sched = np.zeros(pts.shape[0], dtype=bool)
            is_sched[np.searchsorted(pts, sched)] = True
            is_sched[-1] = False    # nothing to schedule after the last point
            self._plans[key] = (pts, grid_index, is_sched)
        return self._plans[key]

    # -- per trajectory ---------------------------------------------------------------

    @property
    def n_sites(self):
        return self.engine.n_sites

    def new_state(self, config):
        """engine.new_state(config) with all scales 1, as an AcceleratedState."""
        self.engine.prefactors[:] = self.base
        inner = self.engine.new_state(config)
        p = self.n_processes
        accel = AccelerationState(scales=np.ones(p), exec_mark=np.zeros((2, p), dtype=np.int64),
                                  index=np.zeros(1, dtype=np.int64), last=np.zeros(1),
                                  events_unaccelerated=np.zeros(1), carry=np.zeros((2, p)),
                                  last_update=np.zeros(1))
        return AcceleratedState(inner, accel)

    def advance(self, state, times, rng, budget, out):
        """Same contract as engine.advance: at most ``budget`` trials, record into ``out``
        at ``times``; returns True when every grid time has been recorded."""
        engine = self.engine
        inner, acc = state.engine_state, state.accel
        pts, grid_index, is_sched = self.plan(times)
        counters = inner.counters
        np.multiply(self.base, acc.scales, out=engine.prefactors)
        idx = int(acc.index[0])
        trials0 = int(counters[TRIALS])
        one = np.empty(1)
        seg = {"energy": np.zeros(1), "excitations": np.zeros(1),
               "config": np.zeros((1, engine.n_sites), dtype=np.int8)}
        burst = self.settings.burst * self.settings.executions \
            if self.settings.rule != "cap" else 0.0
        # burst checks at fixed multiples of the trial counter, so that where they happen
        # does not depend on how the budget was split (bit-identical resume)
        check = max(1, int(burst))
        while idx < pts.shape[0]:
            left = budget - (int(counters[TRIALS]) - trials0)
            if left <= 0:
                break
            one[0] = pts[idx]
            counters[NEXT_TIME] = 0
            step = left
            if burst > 0 and acc.last[0] > 0:
                step = min(left, check - int(counters[TRIALS]) % check)
            engine.advance(inner, one, rng, step, seg)
            if counters[NEXT_TIME] < 1:
                if (burst > 0 and acc.last[0] > 0 and int(counters[TRIALS]) % check == 0
                        and _bursting(inner.executions, acc.exec_mark, burst)):
                    self._burst_update(inner, acc, float(inner.scalars[0]), burst)
                continue
            # no event between the last one and pts[idx]: by memorylessness the trajectory
            # restarts exactly at pts[idx] with the (possibly new) rates
            inner.scalars[0] = pts[idx]
            g = grid_index[idx]
            if g >= 0:
                out["energy"][g] = seg["energy"][0]
                out["excitations"][g] = seg["excitations"][0]
                out["config"][g] = seg["config"][0]
            if is_sched[idx]:
                self._update(inner, acc, pts[idx])
            idx += 1
        acc.index[0] = idx
        done = idx >= pts.shape[0]
        if done:
            self._account(inner, acc)
        counters[NEXT_TIME] = int(np.count_nonzero(grid_index[:idx] >= 0))
        return done

    @property
    def state_type(self):
        """Rebuilds an AcceleratedState from ``arrays()`` (checkpoints)."""
        return _AcceleratedStateType(self.engine.state_type)

    @staticmethod
    def _account(inner, acc):
        """Add the executions since the last mark to the unaccelerated estimate; new mark."""
        counts = inner.executions - acc.exec_mark
        acc.events_unaccelerated[0] += float(np.sum((counts[0] + counts[1]) / acc.scales))
        acc.exec_mark[:] = inner.executions
        return counts

    def _update(self, inner, acc, t_now):
        engine = self.engine
        ppd = self.settings.points_per_decade
        growth = (t_now * 10.0 ** (1.0 / ppd) - t_now) / (t_now - acc.last[0])
        counts = self._account(inner, acc) + acc.carry
        acc.carry[:] = 0.0
        acc.last[0] = t_now
        acc.last_update[0] = t_now
        scales = acc.scales
        self._rates(inner)
        if self.settings.rule == "cap":
            np.minimum(1.0, self.settings.executions / (t_now * self._lam), out=scales)
        else:
            _count_scales(scales, counts, float(self.settings.executions), growth)
            if not _guard_scales(scales, self._lam, self.ptr, self.ids, self._big,
                                 self.settings.m, _GUARD_SWEEPS):
                # the iteration only raises scales; if it has not settled, unscale everything
                # rather than keep a scale that may still violate the guard
                scales[:] = 1.0
        np.multiply(self.base, scales, out=engine.prefactors)
        engine.refresh(inner)

    def _burst_update(self, inner, acc, t_now, threshold):
        """Rule 3 at a burst stop t_now (between two schedule points): lower the scales of
        the bursting processes (within the guard), keep the executions for the count rule."""
        interval = acc.last[0] * (10.0 ** (1.0 / self.settings.points_per_decade) - 1.0)
        elapsed = t_now - acc.last_update[0]
        counts = self._account(inner, acc)
        acc.last_update[0] = t_now
        # only the bursting processes' guards are evaluated here (_burst_scales): their
        # rates, not all (all of them at every stop took 40% of a TLS benchmark run)
        self._rates(inner, _busy_ids(counts, threshold))
        factor = _burst_scales(acc.scales, counts, threshold, float(self.settings.executions),
                               elapsed, interval, self._lam, self.ptr, self.ids, self._big,
                               self.settings.m, _GUARD_SWEEPS)
        # the executions so far, as if they had happened at the new scales
        carry = acc.carry
        carry += counts
        carry *= factor
        np.multiply(self.base, acc.scales, out=self.engine.prefactors)
        self.engine.refresh(inner)

    def _rates(self, inner, which=None):
        """lam and big (_tls_rates, _electron_rates) of the processes ``which`` (default
        all)."""
        e = self.engine
        which = self._every if which is None else which
        if self.model == "tls":
            _tls_rates(inner.config, inner.fields, e.couplings, self.base, e.delta0_sq,
                       e.temperature, self.ptr, self.ids, which, self._lam, self._big)
        else:
            _electron_rates(inner.config, inner.fields, e.interactions, e.pair_a, e.pair_b,
                            e.pair_c, self.base, e.temperature, e.resonance_width, self.ptr,
                            self.ids, which, self._lam, self._big)

    @staticmethod
    def counters(state):
        """Per-trajectory counters: events and trials executed, unaccelerated estimate."""
        return {"events": int(state.counters[EVENTS]), "trials": int(state.counters[TRIALS]),
                "events_unaccelerated": float(state.accel.events_unaccelerated[0])}
