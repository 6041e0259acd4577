"""Kinetic Monte Carlo of the TLS glass: exactness of the thinning kernel and its reference.

Statistical tests use fixed seeds; tolerances are 4 standard errors (z-tests) or a
p-value threshold of 1e-3 (KS and chi-square), as stated at each test.
"""
import math

import numpy as np
import pytest
from scipy import stats

from kmc import TLSSystem
from kmc.dynamics import DynamicsParams, MasterEquation, simulate
from kmc.dynamics.counters import EVENTS, VIOLATIONS
from kmc.dynamics.tls_engine import TLSEngine

Z = 4.0
P_MIN = 1e-3


def gaussian_tls(seed, n, w=1.0, j=1.0, d0=(0.1, 1.0)):
    """TLS glass with Gaussian couplings of std j (|J| ~ W) and log-uniform Delta0."""
    rng = np.random.default_rng(seed)
    u = np.triu(rng.normal(0.0, j, (n, n)), 1)
    delta0 = np.exp(rng.uniform(np.log(d0[0]), np.log(d0[1]), n))
    return TLSSystem.from_arrays(rng.normal(0.0, w, n), delta0, u + u.T)


def empty_out(n_times, n):
    return {"energy": np.zeros(n_times), "excitations": np.zeros(n_times),
            "config": np.zeros((n_times, n), dtype=np.int8)}


def first_events(engine, config, rng, count):
    """Clock and configuration after the first accepted event, ``count`` times from ``config``."""
    grid = np.array([np.inf])
    out = empty_out(1, engine.n_sites)
    waits, finals = np.empty(count), []
    for k in range(count):
        state = engine.new_state(config)
        while state["counters"][EVENTS] == 0:
            engine.advance(state, grid, rng, 1, out)
        assert state["counters"][VIOLATIONS] == 0
        waits[k] = state["scalars"][0]
        finals.append(state["config"].copy())
    return waits, np.array(finals)


def chi_square_p(counts, probabilities):
    expected = probabilities * counts.sum()
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return stats.chisquare(obs, exp).pvalue


def test_single_tls_relaxes_as_exponential():
    """p_upper(t) = f + (p0 - f) e^(-lambda t) for two independent TLSs (J = 0).

    KMC ensemble of R = 4000 replicas from both TLSs in their lower wells; error
    sqrt(p (1 - p) / R) from the exact p, floored at 1/R; 4 sigma.
    """
    t, n = 0.3, 2
    bias, d0 = np.array([0.4, -0.7]), np.array([0.3, 0.6])
    system = TLSSystem.from_arrays(bias, d0, np.zeros((n, n)))
    params = DynamicsParams(temperature=t, protocol="state", initial_state=(-0.5, 0.5),
                            t_min=0.1, t_max=100.0, n_times=10, replicas=4000,
                            mc_equilibration_sweeps=10, mc_sampling_sweeps=50)
    res = simulate(system, params, seed=3, mean_field=bias)
    for i in range(n):
        e = math.hypot(bias[i], d0[i])
        f = 1.0 / (math.exp(e / t) + 1.0)
        lam = d0[i] ** 2 * e / math.tanh(e / (2 * t))
        exact = f - f * np.exp(-lam * res.times)
        p_up = 0.5 * (1.0 + np.sign(bias[i]) * res.occupation.mean[:, i])
        se = np.maximum(np.sqrt(exact * (1 - exact) / params.replicas), 1.0 / params.replicas)
        assert np.all(np.abs(p_up - exact) < Z * se), (i, p_up, exact)


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_waiting_times_are_exponential_with_total_rate(kernel):
    """From a frozen configuration the first event comes after Exp(sum of rates) (KS test,
    p > 1e-3) and flips TLS i with probability rate_i / total (chi-square, p > 1e-3).
    The thinning kernel draws many rejected trials per event here, so this checks that
    rejections advance the clock correctly.
    """
    system = gaussian_tls(4, 12)
    engine = TLSEngine(system, 0.5, system.delta0**2, kernel=kernel)
    rng = np.random.default_rng(9)
    config = rng.choice([-0.5, 0.5], 12)
    rates = engine.rates(engine.new_state(config))
    waits, finals = first_events(engine, config, np.random.default_rng(10), 4000)
    assert stats.kstest(waits, "expon", args=(0, 1.0 / rates.sum())).pvalue > P_MIN
    flipped = np.argmax(finals != config, axis=1)
    assert np.all((finals != config).sum(axis=1) == 1)
    assert chi_square_p(np.bincount(flipped, minlength=12), rates / rates.sum()) > P_MIN


def test_waiting_time_test_detects_a_wrong_total_rate():
    """The KS test of the previous test rejects a total rate 10% off."""
    system = gaussian_tls(4, 12)
    engine = TLSEngine(system, 0.5, system.delta0**2)
    config = np.random.default_rng(9).choice([-0.5, 0.5], 12)
    rates = engine.rates(engine.new_state(config))
    waits, _ = first_events(engine, config, np.random.default_rng(10), 4000)
    assert stats.kstest(waits, "expon", args=(0, 1.1 / rates.sum())).pvalue < P_MIN


def test_long_run_occupations_match_stationary_vector():
    """Configurations sampled along one long trajectory, 5 relaxation times apart, follow the
    master equation's stationary vector (chi-square over the 2^4 configurations, p > 1e-3).
    """
    system = gaussian_tls(5, 4)
    t = 0.6
    me = MasterEquation(system, t, system.delta0**2)
    gap = np.sort(-np.linalg.eigvals(me.generator).real)[1]
    n_samples = 3000
    times = 10.0 / gap + np.arange(n_samples) * 5.0 / gap
    engine = TLSEngine(system, t, system.delta0**2)
    state = engine.new_state(me.configs[0])
    out = empty_out(n_samples, 4)
    assert engine.advance(state, times, np.random.default_rng(11), 10**9, out)
    index = ((out["config"] > 0) * (1 << np.arange(4))).sum(axis=1)
    counts = np.bincount(index, minlength=16)
    assert chi_square_p(counts, me.stationary()) > P_MIN
    assert state["counters"][VIOLATIONS] == 0


def test_incremental_fields_equal_recomputation_after_1e5_events():
    """h_i and H kept by O(N) updates equal a full recomputation after 1e5 flips (1e-9)."""
    system = TLSSystem.random(np.random.default_rng(6), 300, W=1.0, J=1.0, delta0_min=1e-2,
                              delta0_max=1e-1)
    engine = TLSEngine(system, 0.5, system.delta0**2)
    state = engine.new_state(np.random.default_rng(7).choice([-0.5, 0.5], 300))
    grid, out = np.array([np.inf]), empty_out(1, 300)
    rng = np.random.default_rng(8)
    checks = 0
    while state["counters"][EVENTS] < 100_000:
        engine.advance(state, grid, rng, 20_000, out)
        err_h, err_e = engine.field_error(state)   # periodic check along the run
        assert err_h < 1e-9 and err_e < 1e-9, (state["counters"], err_h, err_e)
        # the thinning invariant: fields inside their windows, bounds >= rates
        h = state["fields"]
        assert np.all((h >= state["lo"]) & (h <= state["hi"]))
        assert np.all(state["tree"][512:812] >= engine.rates(state))
        checks += 1
    assert checks > 3
    assert state["counters"][VIOLATIONS] == 0


def test_fast_and_reference_kernels_agree():
    """Same seeds (same initial states, same dynamics stream): energy and occupation curves
    of the thinning and the reference kernel agree within 4 two-sample standard errors."""
    system = gaussian_tls(8, 8)
    base = dict(temperature=0.4, t_min=0.05, t_max=100.0, n_times=10, replicas=3000,
                mc_equilibration_sweeps=100, mc_sampling_sweeps=200)
    mf = np.zeros(8)
    fast = simulate(system, DynamicsParams(**base), seed=12, mean_field=mf)
    ref = simulate(system, DynamicsParams(kernel="reference", **base), seed=12, mean_field=mf)
    for a, b in ((fast.energy, ref.energy), (fast.excitations, ref.excitations),
                 (fast.occupation, ref.occupation)):
        se = np.sqrt(a.stderr**2 + b.stderr**2)
        assert np.all(np.abs(a.mean - b.mean) <= Z * np.maximum(se, 1e-12))
    # the initial states come from the same PREPARATION stream
    np.testing.assert_array_equal(fast.equilibrium.occupation, ref.equilibrium.occupation)


def test_bad_engine_arguments_are_rejected():
    system = gaussian_tls(1, 4)
    with pytest.raises(ValueError, match="temperature"):
        TLSEngine(system, -1.0, system.delta0**2)
    with pytest.raises(ValueError, match="prefactors"):
        TLSEngine(system, 1.0, np.ones(3))
    with pytest.raises(ValueError, match="initial_state"):
        TLSEngine(system, 1.0, system.delta0**2).new_state(np.ones(4))


def test_prefactor_scale_only_rescales_time():
    """Every rate is prefactor x state factor (docs/model.md section 6): doubling the one
    prefactor array (a = 2) gives bit for bit the same trajectories on a grid of half the
    times (scaling by 2 is exact in binary floating point)."""
    system = gaussian_tls(14, 10)
    base = dict(temperature=0.4, n_times=8, replicas=20, mc_equilibration_sweeps=20,
                mc_sampling_sweeps=50)
    mf = np.zeros(10)
    one = simulate(system, DynamicsParams(a=1.0, t_min=0.1, t_max=100.0, **base), seed=3,
                   mean_field=mf)
    two = simulate(system, DynamicsParams(a=2.0, t_min=0.05, t_max=50.0, **base), seed=3,
                   mean_field=mf)
    np.testing.assert_array_equal(one.energy.mean, two.energy.mean)
    np.testing.assert_array_equal(one.occupation.mean, two.occupation.mean)
    assert one.counters == two.counters


def test_rescaled_prefactors_take_effect_after_refresh():
    """A temporal-acceleration step may rescale engine.prefactors between kernel calls;
    refresh() rebuilds the bounds, and the rates and the bound total follow."""
    system = gaussian_tls(15, 10)
    engine = TLSEngine(system, 0.4, system.delta0**2)
    state = engine.new_state(np.random.default_rng(1).choice([-0.5, 0.5], 10))
    rates, total = engine.rates(state), state["tree"][1]
    engine.prefactors[:5] *= 8.0
    engine.refresh(state)
    scale = np.where(np.arange(10) < 5, 8.0, 1.0)
    np.testing.assert_allclose(engine.rates(state), rates * scale, rtol=1e-14)
    assert state["tree"][1] > total
    assert np.all(state["tree"][16:26] >= engine.rates(state))
