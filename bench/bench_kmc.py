"""Events per second of the KMC kernels against a bare O(N) field-update loop.

Run: python bench/bench_kmc.py [--quick] [--repeats R]

For each case the same run measures: the fast (thinning) kernel, the naive reference
kernel (Gillespie, every rate recomputed with transcendental functions after each event),
and a bare numba loop that only applies the O(N) field update of one event per iteration
(TLS: h_j += J_kj S_k; electron glass: E_m += C_jm - C_im) at random sites. The ratio
kernel / bare is what the targets refer to (TLS: >= 1/3 at N = 10000, >= 1/5 at N = 1000;
electron glass: >= 0.1 at N = 1000). The bare loop reads random rows of the coupling
matrix, the kernels mostly the rows of the few sites that hop most: under load the bare
rate varies more than the kernels', so compare ratios from one run.
Systems: TLS glass d = 3, W = J = 1, Delta0 log-uniform on [1e-3, 1e-1], T = 0.2, quench
from random states; electron glass d = 2, W = J = 1, K = 1/2, xi = 0.1, cut-off 2 r_nn,
T = 0.1, quench from random states. The first events after the quench are run untimed.

Every rate is measured twice, in wall-clock time and in CPU time of this process
(time.process_time; the kernels are serial). On a machine shared with other processes the
wall-clock ratio depends on the share of a core each timed section happened to get, the
CPU-time ratio much less; on an idle machine the two agree. Both are printed and judged.

One timing of the bare loop lasts a few tens of ms and one of a kernel well under a
second, and single timings scattered by 5-13% between runs of this script (the electron
glass at N = 1000 read 0.094-0.113 on one core while the other was busy). So the fast
kernel and the bare loop are timed ``--repeats`` times (default 5) in alternation, the
kernel continuing its trajectory, and the ratio judged is the median of the paired ratios;
their range is printed beside it. The reference kernel is timed once (it is a baseline, not a target).
"""
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kmc import ElectronSystem, TLSSystem  # noqa: E402
from kmc.dynamics.electron_engine import ElectronEngine, hop_pairs, pair_prefactors  # noqa: E402
from kmc.dynamics.tls_engine import EVENTS, RECENTRES, TRIALS, TLSEngine  # noqa: E402


class Rate(NamedTuple):
    """Events per second of wall-clock time and per second of CPU time."""
    wall: float
    cpu: float


@numba.njit(cache=True)
def bare_tls_updates(fields, spins, couplings, sites):
    for k in sites:
        s = spins[k]
        for j in range(fields.shape[0]):
            fields[j] += couplings[k, j] * s
        spins[k] = -s


@numba.njit(cache=True)
def bare_electron_updates(energies, interactions, hops):
    for h in range(hops.shape[0]):
        i = hops[h, 0]
        j = hops[h, 1]
        for m in range(energies.shape[0]):
            energies[m] += interactions[j, m] - interactions[i, m]


def timed_events(engine, state, rng, n_events, chunk):
    grid = np.array([np.inf])
    out = {"energy": np.zeros(1), "excitations": np.zeros(1),
           "config": np.zeros((1, engine.n_sites), dtype=np.int8)}
    c0 = state["counters"].copy()
    t0 = time.perf_counter()
    p0 = time.process_time()
    while state["counters"][EVENTS] - c0[EVENTS] < n_events:
        # a trial budget no larger than the events still wanted (trials >= events)
        left = n_events - (state["counters"][EVENTS] - c0[EVENTS])
        engine.advance(state, grid, rng, min(chunk, left), out)
    dp = time.process_time() - p0
    dt = time.perf_counter() - t0
    d = state["counters"] - c0
    return Rate(d[EVENTS] / dt, d[EVENTS] / dp), d


def bare_rate(fn, args, n_events):
    fn(*[a.copy() if isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype == float else a
         for a in args[:-1]], args[-1][:10])  # compile
    t0 = time.perf_counter()
    p0 = time.process_time()
    fn(*args)
    dp = time.process_time() - p0
    return Rate(n_events / (time.perf_counter() - t0), n_events / dp)


def paired(engine, state, rng, n_events, bare_fn, bare_args, repeats):
    """The fast kernel (continuing its trajectory) and the bare loop timed ``repeats`` times
    in alternation: lists of their Rates and the summed counter increments."""
    fast, bare, total = [], [], 0
    for _ in range(repeats):
        rate, d = timed_events(engine, state, rng, n_events, 10**6)
        fast.append(rate)
        total = total + d
        bare.append(bare_rate(bare_fn, bare_args, n_events))
    return fast, bare, total


def bench_tls(n, n_events, n_ref, warm, repeats):
    rng = np.random.default_rng(1)
    system = TLSSystem.random(rng, n, W=1.0, J=1.0, delta0_min=1e-3, delta0_max=1e-1)
    t = 0.2
    spins0 = rng.choice([-0.5, 0.5], n)
    fast = TLSEngine(system, t, system.delta0**2)
    state = fast.new_state(spins0)
    timed_events(fast, state, rng, warm, 10**6)
    sites = rng.integers(0, n, n_events)
    fields, spins = state["fields"].copy(), state["config"].copy()
    rates_fast, rates_bare, d = paired(fast, state, rng, n_events, bare_tls_updates,
                                       (fields, spins, fast.couplings, sites), repeats)
    ref = TLSEngine(system, t, system.delta0**2, kernel="reference")
    rstate = ref.new_state(state["config"])
    timed_events(ref, rstate, rng, 2, 1)
    rate_ref, _ = timed_events(ref, rstate, rng, n_ref, 10**6)
    return rates_fast, rate_ref, rates_bare, d


def bench_electron(n, n_events, n_ref, warm, repeats):
    rng = np.random.default_rng(2)
    system = ElectronSystem.random(rng, n, W=1.0, J=1.0)
    pairs, r = hop_pairs(system.distances, 2.0)
    occ = np.zeros(n, dtype=np.int8)
    occ[rng.permutation(n)[: n // 2]] = 1
    fast = ElectronEngine(system, 0.1, pairs, pair_prefactors(r, 0.1))
    state = fast.new_state(occ)
    timed_events(fast, state, rng, warm, 10**6)
    hops = rng.integers(0, n, (n_events, 2))
    rates_fast, rates_bare, d = paired(fast, state, rng, n_events, bare_electron_updates,
                                       (state["fields"].copy(), fast.interactions, hops),
                                       repeats)
    ref = ElectronEngine(system, 0.1, pairs, pair_prefactors(r, 0.1), kernel="reference")
    rstate = ref.new_state(state["config"])
    timed_events(ref, rstate, rng, 2, 1)
    rate_ref, _ = timed_events(ref, rstate, rng, n_ref, 10**6)
    return rates_fast, rate_ref, rates_bare, d, pairs.shape[0]


def report(label, rates_fast, rate_ref, rates_bare, d, target=None, extra=""):
    for clock in ("wall", "cpu"):
        fast = np.array([getattr(r, clock) for r in rates_fast])
        bare = np.array([getattr(r, clock) for r in rates_bare])
        ref = getattr(rate_ref, clock)
        ratios = fast / bare
        ratio = float(np.median(ratios))
        line = (f"{label + ' (' + clock + ')':<22} fast {np.median(fast):11.4g} ev/s | "
                f"reference {ref:11.4g} ev/s | bare loop {np.median(bare):11.4g} ev/s | "
                f"fast/bare {ratio:6.3f} (1/{1 / ratio:5.1f}; {len(ratios)} timings "
                f"{ratios.min():.3f}-{ratios.max():.3f}) | reference/bare "
                f"{ref / np.median(bare):7.4f}")
        if target is not None:
            line += f" | target >= {target:.3f}: {'met' if ratio >= target else 'NOT met'}"
        print(line)
    print(f"{'':<22} trials/event {d[TRIALS] / d[EVENTS]:.2f}, window re-centrings/event "
          f"{d[RECENTRES] / d[EVENTS]:.2f}{extra}")
    sys.stdout.flush()


def main():
    quick = "--quick" in sys.argv
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 5
    if repeats < 1:
        sys.exit("bench_kmc: --repeats must be an integer >= 1")
    scale = 0.1 if quick else 1.0
    print(f"numba {numba.__version__}, {numba.config.NUMBA_NUM_THREADS} threads available "
          f"(kernels are serial); medians of {repeats} alternating timings")
    r = bench_tls(1000, int(3e5 * scale), int(2e4 * scale), int(5e4 * scale), repeats)
    report("TLS N=1000", *r, target=1 / 5)
    r = bench_tls(10000, int(5e4 * scale), int(2e3 * scale), int(1e4 * scale), repeats)
    report("TLS N=10000", *r, target=1 / 3)
    rf, rr, rb, d, n_pairs = bench_electron(1000, int(1e5 * scale), int(5e3 * scale),
                                            int(2e4 * scale), repeats)
    report("electron N=1000", rf, rr, rb, d, target=0.1, extra=f", hop pairs P = {n_pairs}")


if __name__ == "__main__":
    main()
