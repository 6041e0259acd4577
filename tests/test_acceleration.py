"""Temporal acceleration (kmc.dynamics.acceleration, docs/acceleration.md).

Statistical tolerance: accelerated KMC against the exact master equation, z of every
observable at every time below 4 (tests/acceleration_harness.py: exact binomial z for the
occupations, Gaussian z with the exact variance for the energy). Slow tests run a reduced
size by default; KMC_VALIDATE=full runs the sizes quoted in runs/README.md.
"""
import math
import os

import numpy as np
import pytest

from kmc import ElectronSystem, TLSSystem
from kmc.dynamics import DynamicsParams, MasterEquation, acceleration, run, simulate
from kmc.dynamics.acceleration import (AccelerationSettings, Accelerator, _guard_scales,
                                       _count_scales)
from kmc.dynamics.electron_engine import ElectronEngine, hop_pairs, pair_prefactors
from kmc.dynamics.tls_engine import TLSEngine
from kmc.errors import ConfigError

from acceleration_harness import (cap_bias, check, convergence_combine, convergence_comparison,
                                  convergence_part, electron_instance, strong_tls,
                                  unaccelerated_comparison)

FULL = os.environ.get("KMC_VALIDATE") == "full"
Z = 4.0


# -- options and bad values ---------------------------------------------------------------


def test_acceleration_is_off_by_default():
    assert DynamicsParams(temperature=0.1).acceleration == "off"


@pytest.mark.parametrize("key, value", [("acceleration", "fast"), ("acceleration", True),
                                        ("acceleration_executions", 5),
                                        ("acceleration_executions", math.inf),
                                        ("acceleration_executions", "many"),
                                        ("acceleration_burst", 1.5),
                                        ("acceleration_burst", -1),
                                        ("acceleration_burst", math.nan)])
def test_bad_acceleration_values_name_the_key(key, value):
    with pytest.raises(ConfigError) as err:
        DynamicsParams(temperature=0.1, **{key: value})
    assert f"dynamics.{key}" in str(err.value) and "\n" not in str(err.value)


def test_bad_acceleration_value_in_a_run_file_is_a_one_line_error():
    from kmc.pipeline.config import RunConfig
    data = {"model": {"name": "tls", "N": 20, "temperature": 0.1},
            "dynamics": {"acceleration": "quasi_equilibrium", "acceleration_executions": 0}}
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(data).validate()
    assert "dynamics.acceleration_executions" in str(err.value)


# -- the two rules, unit by unit ----------------------------------------------------------


def test_count_rule_scales_only_frequent_balanced_processes():
    scales = np.ones(4)
    # executions per direction: frequent+balanced, frequent+net current, rare, frequent
    counts = np.array([[500, 900, 10, 60], [500, 100, 10, 60]], dtype=np.int64)
    _count_scales(scales, counts, 100.0, 1.0)
    np.testing.assert_allclose(scales, [0.1, 1.0, 1.0, 100.0 / 120.0])
    # a scaled process that stopped executing returns towards 1 by at most N_e / g
    _count_scales(scales, np.zeros((2, 4), dtype=np.int64), 100.0, 2.0)
    np.testing.assert_allclose(scales, [1.0, 1.0, 1.0, 1.0])
    scales[:] = 1e-4
    _count_scales(scales, np.zeros((2, 4), dtype=np.int64), 100.0, 2.0)
    np.testing.assert_allclose(scales, 5e-3)


def test_guard_keeps_a_fast_process_faster_than_its_slow_partner_in_the_excited_state():
    """Pair (0, 1): 0 fast (lambda 1), 1 slow but leaving at rate 1e-3 once 0 is flipped.
    The count rule alone would scale 0 to 1e-4 (rate 1e-4 < 1e-3: the joint flip would
    then be limited by 0's return instead of 1's relaxation); the guard keeps
    s_0 lambda_0 >= M * 1e-3."""
    scales = np.array([1e-4, 1.0])
    lam = np.array([1.0, 1e-6])
    ptr = np.array([0, 1, 2])
    ids = np.array([1, 0])
    big = np.array([1e-3, 1e-9])    # rate of 1 seen from 0, of 0 seen from 1
    assert _guard_scales(scales, lam, ptr, ids, big, 10.0, 50)
    assert scales[0] == pytest.approx(1e-2)
    # a process is never scaled more than a faster partner: 0 scaled, 1 not
    scales = np.array([1e-3, 1e-6])
    lam = np.array([1.0, 0.5])
    big = np.array([0.5, 1.0])
    assert _guard_scales(scales, lam, ptr, ids, big, 10.0, 50)
    assert scales[1] >= scales[0]


def test_scaled_prefactors_keep_the_electron_stationary_state():
    """Miller-Abrahams rates are reversible: any scaling of pair prefactors (both
    directions alike) leaves the Boltzmann distribution stationary."""
    system, pairs, pref = electron_instance(3)
    scales = 10.0 ** np.random.default_rng(0).uniform(-6, 0, pref.size)
    me = MasterEquation(system, 0.1, pref * scales, pairs=pairs)
    np.testing.assert_allclose(me.stationary(), me.boltzmann(0.1), rtol=1e-6, atol=1e-12)


def test_scaled_prefactors_move_the_tls_stationary_state_when_delta0_is_not_small():
    """The TLS rates use the splitting sqrt(h^2 + Delta0^2), which is not a difference of a
    global energy: with J != 0 the chain is not reversible, and scaling processes moves its
    stationary state (docs/acceleration.md, 'where it can fail'). Pinned here so that the
    caveat stays true to the code: seed 2 at Delta0 <= 0.1 (the paper's largest) moves
    <sigma> by more than 1e-2, at Delta0 <= 1e-2 by less than 1e-3."""
    moved = {}
    for d0_max in (0.1, 0.01):
        rng = np.random.default_rng(0)      # the same five scale vectors for both
        system = strong_tls(2, delta0_max=d0_max)
        pref = system.delta0 ** 2
        me = MasterEquation(system, 0.1, pref)
        ref = me.stationary() @ me.occupation
        worst = 0.0
        for _ in range(5):
            s = 10.0 ** rng.uniform(-6, 0, system.n_sites)
            p = MasterEquation(system, 0.1, pref * s).stationary()
            worst = max(worst, np.abs(p @ me.occupation - ref).max())
        moved[d0_max] = worst
    assert moved[0.1] > 1e-2 and moved[0.01] < 1e-3, moved


def test_burst_stop_lowers_only_busy_balanced_processes_and_respects_the_guard():
    """Rule 3 unit by unit: process 0 bursts (balanced) and is lowered to N_e executions per
    interval; process 1 bursts with a net current and is left alone; process 2 is quiet;
    process 3 bursts but its guard (partner 2, unscaled, fast in the excited state) holds it
    where rule 2 needs it; no scale is raised."""
    scales = np.array([1.0, 1.0, 1.0, 0.5])
    counts = np.array([[600, 900, 3, 700], [600, 100, 3, 700]], dtype=float)
    lam = np.array([1.0, 1.0, 1.0, 1.0])
    # CSR partners: 3 <-> 2 only
    ptr = np.array([0, 0, 0, 1, 2])
    ids = np.array([3, 2])
    big = np.array([1.0, 0.02])             # partner 2 leaves at 0.02 after a flip of 3
    factor = acceleration._burst_scales(scales, counts, 1000.0, 100.0, 0.25, 1.0, lam, ptr,
                                        ids, big, 10.0, 50)
    np.testing.assert_allclose(scales[0], 100.0 * 0.25 / 1200.0)
    assert scales[1] == 1.0 and scales[2] == 1.0
    np.testing.assert_allclose(scales[3], 10.0 * 0.02)       # M Lambda / lambda, s_2 = 1
    np.testing.assert_allclose(factor, scales / np.array([1.0, 1.0, 1.0, 0.5]))


@pytest.mark.parametrize("model", ["tls", "electron"])
def test_rates_of_the_bursting_processes_equal_those_of_the_full_pass(model):
    """A burst stop evaluates lam and big only for the bursting processes (_busy_ids): for
    those they equal the pass over every process bit for bit, and other entries are left
    as they were."""
    rng = np.random.default_rng(31)
    if model == "tls":
        system = TLSSystem.random(rng, 60, W=1.0, J=1.0, delta0_min=1e-6, delta0_max=1e-1)
        engine = TLSEngine(system, 0.1, system.delta0 ** 2)
        config = rng.choice([-0.5, 0.5], 60)
    else:
        system = ElectronSystem.random(rng, 60, W=1.0, J=1.0)
        pairs, r = hop_pairs(system.distances, 2.0)
        engine = ElectronEngine(system, 0.1, pairs, pair_prefactors(r, 0.1))
        config = np.zeros(60, dtype=np.int8)
        config[rng.permutation(60)[:30]] = 1
    acc = Accelerator(engine, AccelerationSettings())
    inner = acc.new_state(config).engine_state
    acc._rates(inner)
    lam_all, big_all = acc._lam.copy(), acc._big.copy()
    counts = np.zeros((2, acc.n_processes))
    which = rng.permutation(acc.n_processes)[:7]
    counts[:, which] = 600.0
    counts[0, which[0]] = 1200.0            # a net current: not bursting
    busy = acceleration._busy_ids(counts, 1000.0)
    np.testing.assert_array_equal(busy, np.sort(which[1:]))
    acc._lam[:] = -1.0
    acc._big[:] = -1.0
    acc._rates(inner, busy)
    rows = np.concatenate([np.arange(acc.ptr[k], acc.ptr[k + 1]) for k in busy]).astype(int)
    np.testing.assert_array_equal(acc._lam[busy], lam_all[busy])
    np.testing.assert_array_equal(acc._big[rows], big_all[rows])
    assert np.all(np.delete(acc._lam, busy) == -1.0)
    assert np.all(np.delete(acc._big, rows) == -1.0)
    assert rows.size > 0

def test_burst_stops_happen_and_resume_bit_for_bit_with_any_budget():
    """On the strongly coupled instance burst stops fire; a trajectory advanced in odd
    budgets (as checkpoints split it) equals the one advanced in one call, scales and
    counters included, because the stops sit at fixed multiples of the trial counter."""
    system = strong_tls(2, delta0_max=0.01)
    settings = AccelerationSettings(executions=100)
    times = np.logspace(2, 16, 57)
    fired = {"n": 0}
    runs = []
    for budget in (10**9, 997, 1):
        # a fresh engine each time: the Accelerator takes over the engine's prefactors
        acc = Accelerator(TLSEngine(system, 0.1, system.delta0 ** 2), settings)
        update = acc._burst_update

        def counted(*args, update=update):
            fired["n"] += 1
            return update(*args)

        acc._burst_update = counted
        out = {"energy": np.zeros(times.size), "excitations": np.zeros(times.size),
               "config": np.zeros((times.size, 7), dtype=np.int8)}
        state = acc.new_state(np.full(7, 0.5))
        rng = np.random.default_rng(5)
        while not acc.advance(state, times, rng, budget, out):
            pass
        runs.append((out, state.arrays()))
    assert fired["n"] >= 3 and fired["n"] % 3 == 0
    (out_a, arr_a) = runs[0]
    for out_b, arr_b in runs[1:]:
        for key in out_a:
            np.testing.assert_array_equal(out_a[key], out_b[key])
        for key in arr_a:
            np.testing.assert_array_equal(arr_a[key], arr_b[key])


def test_no_scaling_without_enough_executions():
    """With N_e above any count, scales stay 1 and the events equal the estimate."""
    system = strong_tls(1)
    acc = Accelerator(TLSEngine(system, 0.1, system.delta0 ** 2),
                      AccelerationSettings(executions=1e12))
    times = np.logspace(-2, 5, 15)
    out = {"energy": np.zeros(15), "excitations": np.zeros(15),
           "config": np.zeros((15, 7), dtype=np.int8)}
    state = acc.new_state(np.full(7, 0.5))
    while not acc.advance(state, times, np.random.default_rng(1), 1000, out):
        pass
    assert np.all(state.accel.scales == 1.0)
    c = acc.counters(state)
    assert c["events"] > 0 and c["events_unaccelerated"] == c["events"]


# -- driver integration -------------------------------------------------------------------


PARAMS = DynamicsParams(temperature=0.1, t_min=0.1, t_max=1e8, n_times=12, replicas=3,
                        chunk_trials=50, checkpoint_interval=0.0, mc_equilibration_sweeps=20,
                        mc_sampling_sweeps=50, acceleration="quasi_equilibrium")


@pytest.mark.parametrize("model", ["tls", "electron"])
def test_accelerated_resume_equals_continuous_run(model, tmp_path, monkeypatch):
    """The scale state is part of the checkpoint: a run killed between chunks and resumed
    gives the uninterrupted run bit for bit."""
    class Killed(Exception):
        pass

    if model == "tls":
        system = TLSSystem.random(np.random.default_rng(1), 30, delta0_min=1e-4,
                                  delta0_max=0.3)
        params = PARAMS
    else:
        system = ElectronSystem.random(np.random.default_rng(2), 30)
        params = DynamicsParams(**{**PARAMS.__dict__, "t_max": 1e6})
    mf = np.zeros(system.n_sites)
    continuous = simulate(system, params, seed=4, mean_field=mf)
    assert continuous.counters["events_unaccelerated"] > continuous.counters["events"]
    calls = {"n": 0}

    def kill():
        calls["n"] += 1
        if calls["n"] == 7:
            raise Killed

    path = tmp_path / "run.ckpt"
    monkeypatch.setattr(run, "_after_chunk", kill)
    with pytest.raises(Killed):
        simulate(system, params, seed=4, checkpoint=path, mean_field=mf)
    monkeypatch.setattr(run, "_after_chunk", None)
    resumed = simulate(system, params, seed=4, checkpoint=path, mean_field=mf)
    for name in ("energy", "occupation"):
        np.testing.assert_array_equal(getattr(continuous, name).mean,
                                      getattr(resumed, name).mean)
    assert continuous.counters == resumed.counters
    np.testing.assert_array_equal(continuous.replica_counters, resumed.replica_counters)


def test_counters_per_trajectory_without_acceleration_are_the_events():
    system = TLSSystem.random(np.random.default_rng(1), 20, delta0_min=0.03, delta0_max=0.3)
    params = DynamicsParams(temperature=0.3, t_min=1.0, t_max=1e3, n_times=5, replicas=2,
                            mc_equilibration_sweeps=20, mc_sampling_sweeps=50)
    res = simulate(system, params, seed=1, mean_field=np.zeros(20))
    rc = res.replica_counters
    assert rc.shape == (2, 3) and np.all(rc[:, 0] == rc[:, 2]) and np.all(rc[:, 1] >= rc[:, 0])
    assert rc[:, 0].sum() == res.counters["events"]


# -- validation against the exact master equation -----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("start", ["random", "pulse"])
def test_accelerated_tls_matches_master_equation_over_14_decades(seed, start):
    """7 TLSs, Gaussian couplings (most |J_kl| >> T = 0.1), Delta0 log-uniform over 6
    decades (rates over 12), times 1e-2..1e12. Recommended setting (N_e = 100, M = 30,
    burst stops at 10 N_e). Reduced (CI): seed 1 only, 300 replicas; full: seeds 1-3, 4000
    replicas. Full size measured (runs/README.md), random / pulse: seed 1 2.68 / 2.17,
    seed 2 3.23 / 2.82, seed 3 2.84 / 2.15. The guard's separation M = 10 fails seed 2
    (5.33 at N_e = 100, 6.90 at N_e = 300, random start, on the occupation of TLS 6 at
    t ~ 3e11-6e11 while the slowest TLS relaxes: a bias that M controls)."""
    if not FULL and seed != 1:
        pytest.skip("seeds 2 and 3 run at full size only (KMC_VALIDATE=full)")
    system = strong_tls(seed)
    times = np.logspace(-2, 12, 57)
    zmax, _, events, estimate = check(system, 0.1, AccelerationSettings(),
                                      start, 4000 if FULL else 300, times, seed)
    assert zmax < Z, (zmax, events, estimate)
    assert estimate > 100 * events      # the acceleration did something


@pytest.mark.slow
@pytest.mark.parametrize("start", ["random", "pulse"])
def test_accelerated_electron_matches_master_equation(start):
    """8 sites, 4 electrons (C(8, 4) = 70 configurations), xi = 0.07 so that the pair
    prefactors e^(-r/xi) span 8+ decades (in a box of 8 sites r <= 2 only reaches ~7
    decades at xi = 0.1); times 1e-1..1e11. Reduced (CI): 50 replicas up to t = 1e5
    (the guard keeps most pairs of so small a system unscaled, so it costs ~1e6 events per
    trajectory by t = 1e8); full: 4000 replicas. Measured to t = 1e11: 7.3e5 events per
    trajectory at M = 10, ~2.7 s per replica on a loaded machine. Full size: max |z| 2.86
    (random) and 2.52 (pulse), 1.2e6 events per trajectory, ~58 CPU min per start
    (runs/README.md, with seeds 1 and 2)."""
    system, pairs, pref = electron_instance(4, xi=0.07)
    assert np.log10(pref.max() / pref.min()) > 8
    times = np.logspace(-1, 11, 49) if FULL else np.logspace(-1, 5, 25)
    zmax, _, events, estimate = check(system, 0.1, AccelerationSettings(),
                                      start, 4000 if FULL else 50, times, 4, pairs=pairs,
                                      prefactors=pref)
    assert zmax < Z, (zmax, events, estimate)


@pytest.mark.slow
def test_accelerated_matches_unaccelerated_kmc_where_affordable():
    """TLS N = 200 (d = 3, W = J = 1, T = 0.1, Delta0 on [3e-3, 1e-1]: rates over ~3-4
    decades), quench from random states: exact KMC against the accelerated one at the
    recommended setting, energy and excitations within 4 combined standard errors at every
    time. Reduced: 32 replicas to t = 1e5; full: 128 replicas to t = 1e7
    (acceleration_harness.unaccelerated_comparison)."""
    exact, fast, zs = unaccelerated_comparison(FULL)
    for name in ("energy", "excitations"):
        z = zs[name]
        assert np.all(z < Z), (name, z.max())
    assert fast.counters["events"] < exact.counters["events"]


@pytest.mark.slow
def test_acceleration_converges_at_the_paper_parameters():
    """Delta0 on [1e-7, 1e-1], W = J = 1, T = 0.1, 14 decades: N_e = 100 (recommended,
    M = 30) against N_e = 300 (3x stricter, M = 90), energy and excitations within 3
    combined standard errors at every time. Reduced (CI): N = 30, 8 replicas; full:
    N = 1000, 16 replicas (acceleration_harness.convergence_comparison). Measured in parts
    (convergence_part): passes at N = 300 with 16 + 16 trajectories; at N = 1000 (16 + 15)
    the energy passes (1.92) and the excitations fail (3.99 at t = 3.2e7; runs/README.md),
    so the full form of this test is expected to fail at N = 1000."""
    _, _, zs = convergence_comparison(FULL)
    for name in ("energy", "excitations"):
        z = zs[name]
        assert np.all(z < 3.0), (name, z.max())


def test_convergence_check_in_parts_resumes_and_combines(tmp_path):
    """The split form of the convergence check (the full size runs for hours): one file per
    trajectory, a rerun skips the files that exist, and the combination compares the two
    halves per time over the trajectories present (N = 30 here)."""
    convergence_part("rec", 0, 2, tmp_path, n=30)
    convergence_part("strict", 0, 2, tmp_path, n=30)
    first = (tmp_path / "rec_0.npz").stat().st_mtime_ns
    convergence_part("rec", 0, 3, tmp_path, n=30)
    assert (tmp_path / "rec_0.npz").stat().st_mtime_ns == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec_0.npz", "rec_1.npz", "rec_2.npz",
                                                          "strict_0.npz", "strict_1.npz"]
    z, times, cost = convergence_combine(tmp_path)
    assert times.shape == (29,) and sorted(z) == ["energy", "energy pooled", "excitations",
                                                  "excitations pooled"]
    assert all(v.shape == (29,) and np.all(np.isfinite(v)) for v in z.values())
    assert cost["rec"][0] == 3 and cost["strict"][0] == 2
    assert cost["strict"][2] > cost["strict"][1] > 0        # estimate > events executed


def test_naive_cap_is_biased_on_a_strongly_coupled_instance():
    """The failure the guard exists for, measured without sampling noise: the naive cap
    s_k = min(1, K / (t lambda_k)) as an exact time-dependent master equation against the
    exact one, bias in standard errors of 4000 replicas. Instance: 7 TLSs, seed 2, Delta0
    <= 0.01 (where the TLS chain is nearly reversible, so the bias is the coupling failure
    and not a moved stationary state), random start, t = 1e2..1e16. Measured: K = 30 -> 8.0,
    K = 100 -> 2.6, K = 1000 -> 0.22 (docs/acceleration.md)."""
    system = strong_tls(2, delta0_max=0.01)
    times = np.logspace(2, 16, 57)
    assert cap_bias(system, 0.1, 30, "random", times, 2) > 4.0
    assert cap_bias(system, 0.1, 1000, "random", times, 2) < 1.0


@pytest.mark.slow
@pytest.mark.parametrize("start", ["random", "pulse"])
def test_quasi_equilibrium_rule_survives_the_instance_where_the_cap_fails(start):
    """Same instance as test_naive_cap_is_biased_on_a_strongly_coupled_instance, KMC with
    the recommended setting against the master equation. CI: random start, 1000 replicas
    (at 300 replicas the pulse start once gave max |z| = 4.05 at N_e = 100, against 2.25
    at 1000 replicas: a bias would grow as sqrt(R), so that was a fluctuation among ~450
    comparisons); full: both starts, 4000 replicas (measured at the recommended setting:
    random 2.52, pulse 2.85)."""
    if not FULL and start == "pulse":
        pytest.skip("the pulse start runs at full size only (KMC_VALIDATE=full)")
    system = strong_tls(2, delta0_max=0.01)
    times = np.logspace(2, 16, 57)
    zmax, _, events, estimate = check(system, 0.1, AccelerationSettings(),
                                      start, 4000 if FULL else 1000, times, 2)
    assert zmax < Z, (zmax, events, estimate)


def test_counters_are_stored_in_the_result_file_and_printed(tmp_path):
    """kmc run with acceleration: dynamics/replica_counters (R, replicas, 3) in the file,
    one KMC line in kmc show with the events and the unaccelerated estimate."""
    from kmc.pipeline.config import RunConfig
    from kmc.pipeline.run import run as run_file
    from kmc.pipeline.show import describe
    from kmc.storage.results import load
    path = tmp_path / "acc.h5"
    data = {"model": {"name": "tls", "N": 30, "temperature": 0.1},
            "disorder": {"W": 1.0, "J": 1.0, "delta0_min": 1e-5, "delta0_max": 1e-1},
            "dynamics": {"t_min": 1.0, "t_max": 1e9, "n_times": 10, "replicas": 2,
                         "mc_equilibration_sweeps": 20, "mc_sampling_sweeps": 50,
                         "acceleration": "quasi_equilibrium"},
            "ensemble": {"realizations": 1}, "output": {"path": str(path)}}
    run_file(RunConfig.from_dict(data))
    rows = load(path).rows("dynamics/replica_counters")
    assert rows.shape == (1, 2, 3)
    assert np.all(rows[..., 2] >= rows[..., 0]) and np.all(rows[..., 1] >= rows[..., 0])
    line = [x for x in describe(path).splitlines() if "KMC (" in x]
    assert len(line) == 1 and "2 trajectories" in line[0] and "quasi_equilibrium" in line[0]
