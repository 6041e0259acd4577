"""Temporal acceleration at the paper's parameters: wall time, events executed, speed-up.

Run: python bench/bench_acceleration.py [--quick] [--replicas R] [--tls-only | --electron-only]
                                        [--executions N_E] [--separation M] [--burst B]
                                        [--resonance-width W]
     python bench/bench_acceleration.py --where T_MAX   (electron: where the events go)

Cases (docs/acceleration.md; realizations drawn with fixed seeds):
- TLS glass d = 3, N = 1000, W = J = 1, T = 0.1, Delta0 log-uniform on [1e-7, 1e-1], quench
  from random states, 16 replicas, times 1e1..1e15 (14 decades: 1/lambda_max ~ 1e2,
  1/lambda_min ~ 1e15), acceleration quasi_equilibrium at the recommended setting (N_e = 100,
  the guard's M = 0.3 N_e = 30, burst stops at 10 N_e; ``--executions N_E``, ``--separation M``
  and ``--burst B`` change them);
- electron glass d = 2, N = 1000, W = 1, e^2/r_nn = 1, K = 1/2, T = 0.1, xi = 0.1, cut-off
  2 r_nn, quench from random states, 16 replicas, times 1e0..1e12 (12 decades); exact
  Miller-Abrahams rates unless ``--resonance-width W`` (J) rounds off their divergence at
  dH = 0 (docs/model.md).

Printed per case, all measured in this run: wall time of the accelerated run, events and
trials executed, the estimate of the events the exact engine would have needed (sum over
executed events of 1 / scale), their ratio (the speed-up in events), the exact engine's
events per second measured on a short stretch of the same system, and the projected wall
time of the unaccelerated run (estimate / that rate); wall and CPU (process) time, and per
replica its events and the CPU time so far. --quick: 2 replicas, 4 decades fewer;
--replicas R: R replicas.

--where T_MAX: one replica of the electron case up to T_MAX; the executed events are split by
what the rule did with their process at the schedule point ending their interval: *burst*
(unscaled, scaled there by the count rule: its first busy interval), *guard-held* (the
count rule alone would have scaled it further; split by whether it ran at s = 1 or already
scaled), *below N_e* (unscaled, fewer than N_e executions), *scaled* (ran at s < 1 and was
not guard-held). Only the events between the first schedule point (t_1 = 1) and the last
one are split (CPU times: process time).
"""
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kmc import ElectronSystem, TLSSystem  # noqa: E402
from kmc.dynamics.acceleration import (AccelerationSettings, Accelerator,  # noqa: E402
                                       _count_scales)
from kmc.dynamics.counters import EVENTS  # noqa: E402
from kmc.dynamics.electron_engine import ElectronEngine, hop_pairs, pair_prefactors  # noqa: E402
from kmc.dynamics.tls_engine import TLSEngine  # noqa: E402


# the recommended setting (N_e = 100, M = 30, burst stops at 10 N_e); --executions,
# --separation and --burst override them
SETTINGS = AccelerationSettings()
# electron glass: the engines' resonance_width (0: the exact Miller-Abrahams factor)
RESONANCE_WIDTH = 0.0


def exact_rate(engine, config, rng, seconds=3.0):
    """Events per second of the unaccelerated engine (after 2e4 untimed warm-up events)."""
    state = engine.new_state(config)
    grid = np.array([np.inf])
    out = {"energy": np.zeros(1), "excitations": np.zeros(1),
           "config": np.zeros((1, engine.n_sites), dtype=np.int8)}
    engine.advance(state, grid, rng, 20_000, out)
    e0, t0 = state.counters[EVENTS], time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        engine.advance(state, grid, rng, 100_000, out)
    return (state.counters[EVENTS] - e0) / (time.perf_counter() - t0)


def run_case(label, engine, configs, times, rng):
    acc = Accelerator(engine, SETTINGS)
    out = {"energy": np.zeros(times.size), "excitations": np.zeros(times.size),
           "config": np.zeros((times.size, engine.n_sites), dtype=np.int8)}
    events = trials = estimate = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    for r, config in enumerate(configs):
        state = acc.new_state(config)
        while not acc.advance(state, times, rng, 10**7, out):
            pass
        c = acc.counters(state)
        events += c["events"]
        trials += c["trials"]
        estimate += c["events_unaccelerated"]
        print(f"  replica {r}: {c['events']:.4g} events, {time.process_time() - c0:.1f} CPU s "
              "so far", flush=True)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    acc.engine.prefactors[:] = acc.base
    rate = exact_rate(acc.engine, configs[0], rng)
    print(f"{label}: N_e = {SETTINGS.executions:g}, M = {SETTINGS.m:g}, "
          f"burst = {SETTINGS.burst:g}; "
          f"{len(configs)} replicas, t = {times[0]:.0e}..{times[-1]:.0e} "
          f"({np.log10(times[-1] / times[0]):.0f} decades)")
    print(f"  accelerated wall time {wall:8.1f} s (CPU {cpu:.1f} s) | events {events:.4g} | trials {trials:.4g}"
          f" | events without acceleration (estimate) {estimate:.4g}")
    print(f"  speed-up in events {estimate / events:.4g} | exact engine {rate:.4g} events/s "
          f"| projected unaccelerated wall time {estimate / rate:.4g} s "
          f"(ratio {estimate / rate / wall:.4g})")
    sys.stdout.flush()


class _WhereAccelerator(Accelerator):
    """Accelerator that splits each interval's executions by what the rule did with them
    (counts summed over the burst stops inside the interval; the scales compared are those
    at the start and at the end of the interval)."""

    def __init__(self, engine, settings):
        super().__init__(engine, settings)
        self.split = dict.fromkeys(["burst", "guard-held at s = 1", "guard-held, scaled",
                                    "below N_e", "scaled"], 0)
        self.interval = np.zeros((2, self.n_processes), dtype=np.int64)
        self.start = np.ones(self.n_processes)

    def _account(self, inner, acc):
        counts = Accelerator._account(inner, acc)
        self.interval += counts
        return counts

    def _update(self, inner, acc, t_now):
        growth = (t_now * 10.0 ** (1.0 / self.settings.points_per_decade) - t_now) \
            / (t_now - acc.last[0])
        super()._update(inner, acc, t_now)
        counts, before = self.interval, self.start
        alone = before.copy()
        _count_scales(alone, counts, float(self.settings.executions), growth)
        c = counts[0] + counts[1]
        unscaled = before >= 1.0
        held = (alone < 1.0) & (acc.scales > alone * (1.0 + 1e-9))
        self.split["burst"] += int(c[unscaled & ~held & (acc.scales < 1.0)].sum())
        self.split["guard-held at s = 1"] += int(c[unscaled & held].sum())
        self.split["guard-held, scaled"] += int(c[~unscaled & held].sum())
        self.split["below N_e"] += int(c[unscaled & ~held & (acc.scales >= 1.0)].sum())
        self.split["scaled"] += int(c[~unscaled & ~held].sum())
        self.interval[:] = 0
        self.start = acc.scales.copy()
        if abs(math.log10(t_now) - round(math.log10(t_now))) < 1e-9:
            print(f"  t = {t_now:8.0e}: events {int(inner.counters[EVENTS]):10d}, cpu "
                  f"{time.process_time() - self.clock:7.1f} s, scaled {int(np.sum(acc.scales < 1))}")
            sys.stdout.flush()


def where(t_max):
    """Events of one electron replica up to t_max, split as in the module doc."""
    rng = np.random.default_rng(2)
    system = ElectronSystem.random(rng, 1000, W=1.0, J=1.0)
    pairs, r = hop_pairs(system.distances, 2.0)
    engine = ElectronEngine(system, 0.1, pairs, pair_prefactors(r, 0.1),
                            resonance_width=RESONANCE_WIDTH)
    config = np.zeros(1000, dtype=np.int8)
    config[rng.permutation(1000)[:500]] = 1
    acc = _WhereAccelerator(engine, SETTINGS)
    decades = int(round(math.log10(t_max)))
    times = np.logspace(0, decades, decades + 1)
    out = {"energy": np.zeros(times.size), "excitations": np.zeros(times.size),
           "config": np.zeros((times.size, 1000), dtype=np.int8)}
    state = acc.new_state(config)
    acc.clock = time.process_time()
    while not acc.advance(state, times, rng, 10**7, out):
        pass
    total = sum(acc.split.values())
    print(f"electron N=1000 xi=0.1, one replica to t = {t_max:.0e}: {int(state.counters[EVENTS])} "
          f"events, cpu {time.process_time() - acc.clock:.1f} s; split of the {total} events "
          f"between the first and the last schedule point:")
    for key, value in acc.split.items():
        print(f"  {key:<22} {value:10d} ({value / total:.0%})")


def main():
    global SETTINGS, RESONANCE_WIDTH
    if "--resonance-width" in sys.argv:
        RESONANCE_WIDTH = float(sys.argv[sys.argv.index("--resonance-width") + 1])
    over = {}
    for flag, key in (("--executions", "executions"), ("--burst", "burst"),
                      ("--separation", "separation")):
        if flag in sys.argv:
            over[key] = float(sys.argv[sys.argv.index(flag) + 1])
    SETTINGS = AccelerationSettings(**over)
    if "--where" in sys.argv:
        where(float(sys.argv[sys.argv.index("--where") + 1]))
        return
    quick = "--quick" in sys.argv
    replicas = 2 if quick else 16
    if "--replicas" in sys.argv:
        replicas = int(sys.argv[sys.argv.index("--replicas") + 1])
    cut = 4 if quick else 0
    if "--electron-only" not in sys.argv:
        rng = np.random.default_rng(1)
        system = TLSSystem.random(rng, 1000, W=1.0, J=1.0, delta0_min=1e-7, delta0_max=1e-1)
        engine = TLSEngine(system, 0.1, system.delta0 ** 2)
        configs = rng.choice([-0.5, 0.5], (replicas, 1000))
        run_case("TLS N=1000 paper parameters", engine, configs,
                 np.logspace(1, 15 - cut, 15 - cut), rng)
    if "--tls-only" not in sys.argv:
        rng = np.random.default_rng(2)
        system = ElectronSystem.random(rng, 1000, W=1.0, J=1.0)
        pairs, r = hop_pairs(system.distances, 2.0)
        engine = ElectronEngine(system, 0.1, pairs, pair_prefactors(r, 0.1),
                            resonance_width=RESONANCE_WIDTH)
        configs = np.zeros((replicas, 1000), dtype=np.int8)
        for c in configs:
            c[rng.permutation(1000)[:500]] = 1
        run_case("electron N=1000 xi=0.1", engine, configs, np.logspace(0, 12 - cut, 13 - cut),
                 rng)


if __name__ == "__main__":
    main()
