"""Accelerated KMC ensembles held against the exact master equation (tests and docs).

Used by tests/test_acceleration.py and, for the table in runs/README.md and the numbers in
docs/acceleration.md, from the command line:

    python tests/acceleration_harness.py tls-qe 100 4000 1,2,3 random,pulse   # check 1
    python tests/acceleration_harness.py tls-qe 100 4000 2 random,pulse 0.01  # Delta0 <= 0.01
    python tests/acceleration_harness.py electron-qe 100 4000 4 random,pulse  # electron glass
    python tests/acceleration_harness.py tls-cap 30 1000     # naive cap, K = 30, 1000 replicas
    python tests/acceleration_harness.py tls-unaccelerated full [replicas]   # N = 200, exact KMC
    python tests/acceleration_harness.py tls-convergence full   # N_e = 100 vs 300, N = 1000
    python tests/acceleration_harness.py tls-convergence-part strict 0 8 DIR [N]   # the same
    python tests/acceleration_harness.py tls-convergence-combine DIR   # check in parts (below)

(the convergence check at N = 1000 takes hours for its strict half; the -part form runs it
one trajectory per file, rec or strict, trajectories FIRST..STOP-1, resumable and in
parallel, and -combine compares whatever DIR holds;
arguments of the master-equation checks: rule-of-model, N_e (or K; the guard's M = 0.3 N_e),
replicas, instance
seeds, starts, largest Delta0 (TLS); ``-v`` anywhere prints max |z| and the worst column per
time, column 0 the energy and column 1 + i the occupation of site i).

The z statistic of an observable X at time t is (KMC mean - exact mean) / sqrt(Var X(t) / R),
with the exact variance from the same p(t) (as tests/test_master_equation.py).
"""
import sys
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kmc import ElectronSystem, TLSSystem  # noqa: E402
from kmc.dynamics import DynamicsParams, MasterEquation, simulate  # noqa: E402
from kmc.dynamics.acceleration import AccelerationSettings, Accelerator  # noqa: E402
from kmc.dynamics.electron_engine import ElectronEngine, hop_pairs, pair_prefactors  # noqa: E402
from kmc.dynamics.counters import EVENTS  # noqa: E402
from kmc.dynamics.tls_engine import TLSEngine  # noqa: E402


def strong_tls(seed, n=7, decades=6, j=1.0, w=1.0, delta0_max=1.0):
    """Interacting TLS instance: Delta0 log-uniform over ``decades`` (rates over twice as
    many), Gaussian couplings of std ``j`` (so most |J_kl| >> T at T = 0.1), fields
    Delta ~ N(0, w^2)."""
    rng = np.random.default_rng(seed)
    u = np.triu(rng.normal(0.0, j, (n, n)), 1)
    d0 = delta0_max * 10.0 ** rng.uniform(-decades, 0.0, n)
    return TLSSystem.from_arrays(rng.normal(0.0, w, n), d0, u + u.T)


def electron_instance(seed, n=8, xi=0.1, cutoff=2.0):
    """Electron glass on C(8, 4) configurations; returns (system, pairs, prefactors)."""
    system = ElectronSystem.random(np.random.default_rng(seed), n, W=1.0)
    pairs, r = hop_pairs(system.distances, cutoff)
    return system, pairs, pair_prefactors(r, xi)


def make_engine(system, temperature, pairs=None, prefactors=None):
    if system.model == "tls":
        return TLSEngine(system, temperature, system.delta0 ** 2)
    return ElectronEngine(system, temperature, pairs, prefactors)


def initial_distribution(me, start, temperature, rng):
    """p0 over the configurations: 'random' (uniform) or 'pulse' (the state after a long
    bias pulse F g_i with F = 1, g ~ N(0, 1): the uniform distribution propagated for
    t = 1e16 under the biased rates, which is past the slowest relaxation; solving p Q = 0
    directly is ill-conditioned with rates over 12 decades)."""
    if start == "random":
        return me.boltzmann(np.inf)
    system = me.system
    g = rng.normal(0.0, 1.0, system.n_sites)
    if system.model == "tls":
        biased = MasterEquation(system, temperature, me.prefactors, bias=system.bias + g)
    else:
        biased = MasterEquation(system, temperature, me.prefactors, pairs=me.pairs,
                                bias=system.site_energies + g)
    return me.boltzmann(np.inf) @ stable_expm(np.asarray(biased.generator), 1e16)


def run_ensemble(engine, settings, configs, times, seed, chunk=10**7):
    """Replica trajectories from ``configs`` (R, N); settings None = exact engine.

    Returns energy (R, n_times), occupation (R, n_times, N) (sigma or n), events (R,),
    unaccelerated event estimates (R,).
    """
    rng = np.random.default_rng(seed)
    n_rep, n = configs.shape
    energy = np.zeros((n_rep, times.size))
    occ = np.zeros((n_rep, times.size, n), dtype=np.int8)
    events = np.zeros(n_rep)
    estimate = np.zeros(n_rep)
    acc = None if settings is None else Accelerator(engine, settings)
    for r in range(n_rep):
        out = {"energy": energy[r], "excitations": np.zeros(times.size), "config": occ[r]}
        if acc is None:
            state = engine.new_state(configs[r])
            while not engine.advance(state, times, rng, chunk, out):
                pass
            estimate[r] = state.counters[EVENTS]
        else:
            state = acc.new_state(configs[r])
            while not acc.advance(state, times, rng, chunk, out):
                pass
            estimate[r] = state.accel.events_unaccelerated[0]
        events[r] = state.counters[EVENTS]
    return energy, occ.astype(float), events, estimate


def z_scores(me, p0, times, energy, occ):
    """(n_times, 1 + N) z of the energy and of each occupation against the exact p(t).

    Occupations: a TLS (or site) is up in a Binomial(R, q(t)) number of replicas; its z is
    the normal quantile of the exact two-sided binomial p-value (signed). A Gaussian z
    would be wrong here: a TLS deep in its lower well is up in R q ~ 1 replicas, where one
    extra replica is a "3 sigma" event. Energy: Gaussian z with the exact variance, kept only
    where the skewness of E under p(t) is below 0.2 sqrt(R) (elsewhere NaN, ignored).
    """
    p = me.propagate(p0, times)
    r = energy.shape[0]
    z = np.full((times.size, 1 + me.occupation.shape[1]), np.nan)
    mean = p @ me.energy
    var = np.maximum(p @ me.energy ** 2 - mean ** 2, 1e-300)
    skew = np.abs(p @ (me.energy[None, :] - mean[:, None]).T ** 3 if False else
                  np.einsum("ts,ts->t", p, (me.energy[None, :] - mean[:, None]) ** 3)) / var ** 1.5
    ok = skew < 0.2 * np.sqrt(r)
    z[ok, 0] = ((energy.mean(axis=0) - mean) / np.sqrt(var / r))[ok]
    up_value = me.occupation.max()
    for i in range(me.occupation.shape[1]):
        q = np.clip(p @ (me.occupation[:, i] == up_value), 0.0, 1.0)
        k = np.sum(occ[:, :, i] == up_value, axis=0)
        lower = scipy.stats.binom.cdf(k, r, q)
        upper = scipy.stats.binom.sf(k - 1, r, q)
        pval = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
        z[:, 1 + i] = np.sign(k - r * q) * scipy.stats.norm.isf(np.maximum(pval, 1e-300) / 2.0)
    return z


def check(system, temperature, settings, start, replicas, times, seed, pairs=None,
          prefactors=None):
    """One comparison. Returns (max |z|, z array, mean events, mean unaccelerated estimate)."""
    engine = make_engine(system, temperature, pairs, prefactors)
    me = MasterEquation(system, temperature, engine.prefactors, pairs=pairs)
    me.system, me.prefactors, me.pairs = system, engine.prefactors.copy(), pairs
    rng = np.random.default_rng(seed)
    p0 = initial_distribution(me, start, temperature, rng)
    picks = rng.choice(me.n_states, size=replicas, p=p0 / p0.sum())
    configs = me.configs[picks]
    if system.model == "electron":
        configs = configs.astype(np.int8)
    energy, occ, events, estimate = run_ensemble(engine, settings, configs, times, seed + 1)
    z = z_scores(me, p0, times, energy, occ)
    return float(np.nanmax(np.abs(z))), z, float(events.mean()), float(estimate.mean())


def ensemble_z(a, b, name):
    """(n_times,) |mean_a - mean_b| / sqrt(se_a^2 + se_b^2) of curve ``name`` of two
    DynamicsResults (independent ensembles)."""
    ca, cb = getattr(a, name), getattr(b, name)
    se = np.sqrt(ca.stderr ** 2 + cb.stderr ** 2)
    return np.abs(ca.mean - cb.mean) / np.maximum(se, 1e-300)


def unaccelerated_comparison(full, replicas=None):
    """Check 3: TLS N = 200 (d = 3, W = J = 1, T = 0.1, Delta0 on [3e-3, 1e-1]: rates over
    ~3-4 decades), quench from random states, exact KMC (seed 3) against the accelerated
    one at the recommended setting (seed 4). Reduced: 32 replicas to t = 1e5; full: 128 to t = 1e7;
    ``replicas`` overrides the number of replicas.

    Returns (exact DynamicsResult, accelerated DynamicsResult, {curve: (n_times,) z}).
    """
    system = TLSSystem.random(np.random.default_rng(8), 200, W=1.0, J=1.0, delta0_min=3e-3,
                              delta0_max=1e-1)
    params = DynamicsParams(temperature=0.1, t_min=1.0, t_max=1e7 if full else 1e5,
                            n_times=22 if full else 16,
                            replicas=replicas or (128 if full else 32),
                            mc_equilibration_sweeps=20, mc_sampling_sweeps=50)
    mf = np.zeros(200)
    exact = simulate(system, params, seed=3, mean_field=mf)
    fast = simulate(system, DynamicsParams(**{**params.__dict__,
                                              "acceleration": "quasi_equilibrium"}),
                    seed=4, mean_field=mf)
    return exact, fast, {name: ensemble_z(exact, fast, name)
                         for name in ("energy", "excitations")}


def convergence_setup(n, replicas):
    """(system, {"rec": params, "strict": params}) of check 4: the paper's parameters
    (Delta0 on [1e-7, 1e-1], W = J = 1, T = 0.1, d = 3), quench, t = 1e1..1e15 (29 times),
    the recommended N_e = 100 and the 3x stricter N_e = 300 (the guard's M = 0.3 N_e
    follows)."""
    system = TLSSystem.random(np.random.default_rng(9), n, W=1.0, J=1.0)
    rec = DynamicsParams(temperature=0.1, t_min=1e1, t_max=1e15, n_times=29, replicas=replicas,
                         mc_equilibration_sweeps=20, mc_sampling_sweeps=50,
                         acceleration="quasi_equilibrium")
    strict = DynamicsParams(**{**rec.__dict__, "acceleration_executions":
                               3.0 * rec.acceleration_executions})
    return system, {"rec": rec, "strict": strict}


def convergence_comparison(full, n=None, replicas=None):
    """Check 4 (convergence_setup): the recommended setting (seed 5) against the 3x stricter
    one (seed 6). Reduced: N = 30, 8 replicas; full: N = 1000, 16 replicas; ``n`` and
    ``replicas`` override them.

    Returns (recommended result, strict result, {curve: (n_times,) z}).
    """
    n = n or (1000 if full else 30)
    system, params = convergence_setup(n, replicas or (16 if full else 8))
    mf = np.zeros(n)
    rec = simulate(system, params["rec"], seed=5, mean_field=mf)
    strict = simulate(system, params["strict"], seed=6, mean_field=mf)
    return rec, strict, {name: ensemble_z(rec, strict, name)
                         for name in ("energy", "excitations")}


def convergence_part(which, first, stop, directory, n=1000):
    """Check 4 split into single trajectories, for running it in parts (in parallel, or
    across sessions): trajectories ``first``..``stop - 1`` of the recommended
    (``which`` = "rec", seeds 1000 + i) or the 3x stricter half ("strict", seeds 2000 + i),
    each one ``simulate`` call with one replica, saved as ``directory``/{which}_{i}.npz
    (energy, excitations, times, events, events_unaccelerated, cpu seconds); existing
    files are skipped."""
    if which not in ("rec", "strict"):
        raise ValueError(f"which: 'rec' or 'strict', got {which!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    system, params = convergence_setup(n, 1)
    for i in range(first, stop):
        path = directory / f"{which}_{i}.npz"
        if path.exists():
            continue
        c0 = time.process_time()
        res = simulate(system, params[which], seed=(1000 if which == "rec" else 2000) + i,
                       mean_field=np.zeros(n))
        cpu = time.process_time() - c0
        tmp = directory / f".{which}_{i}.npz"
        np.savez(tmp, energy=res.energy.mean, excitations=res.excitations.mean,
                 times=res.times, events=res.counters["events"],
                 events_unaccelerated=res.counters["events_unaccelerated"], cpu=cpu)
        tmp.rename(path)        # a killed part leaves no half-written trajectory
        print(f"{which} {i}: {res.counters['events']:.3g} events, {cpu:.0f} CPU s", flush=True)


def convergence_combine(directory):
    """z per time of the trajectories saved by convergence_part: |mean_rec - mean_strict| /
    sqrt(se_rec^2 + se_strict^2), se the standard error over trajectories (as
    convergence_comparison), and, as "<curve> pooled", the same with one variance pooled
    over both halves (the two-sample t statistic: under the hypothesis being tested the two
    halves have one distribution; with a few trajectories in one half its own variance is
    too uncertain to divide by). Returns ({curve: (n_times,) z}, times, {half:
    (trajectories, events mean, unaccelerated estimate mean, CPU s total)})."""
    halves = {}
    for which in ("rec", "strict"):
        files = sorted(Path(directory).glob(f"{which}_*.npz"))
        halves[which] = [dict(np.load(f)) for f in files]
    z = {}
    for name in ("energy", "excitations"):
        a, b = (np.array([r[name] for r in halves[w]]) for w in ("rec", "strict"))
        va, vb = a.var(axis=0, ddof=1), b.var(axis=0, ddof=1)
        diff = np.abs(a.mean(axis=0) - b.mean(axis=0))
        z[name] = diff / np.maximum(np.sqrt(va / len(a) + vb / len(b)), 1e-300)
        pooled = ((len(a) - 1) * va + (len(b) - 1) * vb) / (len(a) + len(b) - 2)
        z[name + " pooled"] = diff / np.maximum(np.sqrt(pooled * (1 / len(a) + 1 / len(b))),
                                                1e-300)
    cost = {w: (len(r), float(np.mean([x["events"] for x in r])),
                float(np.mean([x["events_unaccelerated"] for x in r])),
                float(np.sum([x["cpu"] for x in r]))) for w, r in halves.items()}
    return z, halves["rec"][0]["times"], cost


def _report_pair(label, a, b, z, seconds):
    """One line per comparison of two simulate() ensembles (CLI)."""
    worst = max(z, key=lambda k: np.max(z[k]))
    r = a.replica_counters.shape[0]
    print(f"{label}: max z = {np.max(z[worst]):.2f} ({worst}, at t = "
          f"{a.times[np.argmax(z[worst])]:.2g}); energy {np.max(z['energy']):.2f}, excitations "
          f"{np.max(z['excitations']):.2f}; events/trajectory {a.counters['events'] / r:.3g} | "
          f"{b.counters['events'] / r:.3g}, unaccelerated estimate "
          f"{a.counters['events_unaccelerated'] / r:.3g} | "
          f"{b.counters['events_unaccelerated'] / r:.3g}; {seconds:.0f} s", flush=True)


def main():  # noqa: C901
    verbose = "-v" in sys.argv
    sys.argv = [a for a in sys.argv if a != "-v"]
    if sys.argv[1] == "tls-convergence-part":
        # tls-convergence-part rec|strict FIRST STOP DIR [N]: trajectories FIRST..STOP-1
        convergence_part(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5],
                         *(int(a) for a in sys.argv[6:7]))
        return
    if sys.argv[1] == "tls-convergence-combine":
        z, times, cost = convergence_combine(sys.argv[2])
        for name, zn in z.items():
            print(f"{name}: max z = {zn.max():.2f} at t = {times[zn.argmax()]:.2g}; per time: "
                  + " ".join(f"{v:.1f}" for v in zn))
        for which, (count, events, estimate, cpu) in cost.items():
            print(f"{which}: {count} trajectories, {events:.3g} events each (unaccelerated "
                  f"estimate {estimate:.3g}), {cpu:.0f} CPU s in all")
        return
    if sys.argv[1] in ("tls-unaccelerated", "tls-convergence"):
        # tls-unaccelerated full|reduced [replicas]; tls-convergence full|reduced [N [replicas]]
        full = len(sys.argv) > 2 and sys.argv[2] == "full"
        t0 = time.time()
        if sys.argv[1] == "tls-unaccelerated":
            reps = int(sys.argv[3]) if len(sys.argv) > 3 else None
            _report_pair(f"exact | recommended ({'full' if full else 'reduced'}, R = {reps})",
                         *unaccelerated_comparison(full, reps), time.time() - t0)
        else:
            n = int(sys.argv[3]) if len(sys.argv) > 3 else None
            reps = int(sys.argv[4]) if len(sys.argv) > 4 else None
            _report_pair(f"N_e = 100 | 300 ({'full' if full else 'reduced'}, N = {n}, R = {reps})",
                         *convergence_comparison(full, n, reps), time.time() - t0)
        return
    what, value, replicas = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    seeds = [int(s) for s in sys.argv[4].split(",")] if len(sys.argv) > 4 else [1, 2, 3]
    starts = sys.argv[5].split(",") if len(sys.argv) > 5 else ["random", "pulse"]
    model, rule = what.split("-")
    for seed in seeds:
        for start in starts:
            t0 = time.time()
            if model == "tls":
                # optional 6th argument: largest Delta0 (times shift with the rates ~ Delta0^2)
                d0_max = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0
                system = strong_tls(seed, delta0_max=d0_max)
                shift = -2.0 * np.log10(d0_max)
                times = np.logspace(-2 + shift, 12 + shift, 57)
                extra = {}
                temp = 0.1
            else:
                system, pairs, pref = electron_instance(seed, xi=0.07)
                times = np.logspace(-1, 11, 49)
                extra = {"pairs": pairs, "prefactors": pref}
                temp = 0.1
            if rule == "exact":
                settings = None
            elif rule == "cap":
                settings = AccelerationSettings(executions=value, rule="cap")
            else:
                settings = AccelerationSettings(executions=value)
            zmax, z, ev, est = check(system, temp, settings, start, replicas, times, seed,
                                     **extra)
            print(f"{what} {value:g} seed {seed} {start:6s} R={replicas}: max|z| = {zmax:5.2f} "
                  f"(at t = {times[np.nanmax(np.abs(z), axis=1).argmax()]:.2g}), events/replica "
                  f"{ev:.3g}, unaccelerated estimate {est:.3g}, {time.time() - t0:.0f} s",
                  flush=True)
            if verbose:
                zt = np.nanmax(np.abs(z), axis=1)
                print("   max|z| per time:", " ".join(f"{v:.1f}" for v in zt))
                worst = np.nanargmax(np.abs(z), axis=1)
                print("   worst column per time:", " ".join(str(c) for c in worst))



def stable_expm(q, dt):
    """expm(q dt) of a generator q (rows sum to 0) by scaling and squaring with every
    squared matrix projected back to a stochastic one (clip negatives, rows sum to 1): with
    rates over 12 decades plain expm at dt ~ 1e12 loses positivity and can overflow."""
    norm = np.abs(q).sum(axis=1).max() * dt
    n_sq = max(0, int(np.ceil(np.log2(max(norm, 1.0) / 0.5))))
    e = scipy.linalg.expm(q * (dt / 2.0 ** n_sq))
    for _ in range(n_sq):
        e = e @ e
        np.clip(e, 0.0, None, out=e)
        e /= e.sum(axis=1, keepdims=True)
    return e


def capped_master_equation(me, p0, times, k_cap, steps_per_decade=8):
    """p(t) of the naive cap evaluated exactly (no sampling noise).

    The cap s_k = min(1, K / (t lambda_k)) with lambda_k the total rate of process k in the
    current configuration (the same in both of its states, so both directions are scaled
    alike) makes a time-dependent Markov chain; it is propagated with expm over
    ``steps_per_decade`` log steps per decade, the scales frozen at each step's start
    (as the KMC cap rule freezes them between schedule points). Dense generators only.
    """
    q0 = np.array(me.generator, dtype=float)
    np.fill_diagonal(q0, 0.0)
    lam = q0 + q0.T                                  # lambda of the process linking c, c'
    t_lo = times[0] / 10.0
    grid = np.unique(np.concatenate([
        t_lo * 10.0 ** (np.arange(int(np.ceil(steps_per_decade * np.log10(times[-1] / t_lo)))
                                  + 1) / steps_per_decade), times]))
    out = np.empty((times.size, me.n_states))
    p = p0 @ stable_expm(me.generator, t_lo)
    t = t_lo
    k = 0
    for t_next in grid[grid > t_lo]:
        with np.errstate(divide="ignore"):
            s = np.where(lam > 0, np.minimum(1.0, k_cap / (t * lam)), 0.0)
        q = q0 * s
        q -= np.diag(q.sum(axis=1))
        p = p @ stable_expm(q, t_next - t)
        t = t_next
        while k < times.size and np.isclose(times[k], t):
            out[k] = p
            k += 1
    return np.clip(out, 0.0, None)


def cap_bias(system, temperature, k_cap, start, times, seed, replicas=4000):
    """Max over times and observables of |<X>_cap - <X>_exact| / sqrt(Var X / R): the z the
    naive cap would show, on average, with R replicas (energy and every occupation; Var X
    floored at ptp(X)^2 / R, see below)."""
    engine = make_engine(system, temperature)
    me = MasterEquation(system, temperature, engine.prefactors)
    me.system, me.prefactors, me.pairs = system, engine.prefactors.copy(), None
    p0 = initial_distribution(me, start, temperature, np.random.default_rng(seed))
    exact = capped_master_equation(me, p0, times, np.inf)
    capped = capped_master_equation(me, p0, times, k_cap)
    worst = 0.0
    for obs in [me.energy] + [me.occupation[:, i] for i in range(system.n_sites)]:
        mean = exact @ obs
        # a variance below ptp(X)^2 / R means that all but ~1 of R replicas show the same
        # value: a bias that moves less than one replica is not resolvable, hence the floor
        var = np.maximum(exact @ obs ** 2 - mean ** 2, np.ptp(obs) ** 2 / replicas)
        worst = max(worst, float(np.max(np.abs(capped @ obs - mean) / np.sqrt(var / replicas))))
    return worst


if __name__ == "__main__":
    main()
