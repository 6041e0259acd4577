"""The exact master equation, and kinetic Monte Carlo ensembles held against it.

Statistical tolerance: the KMC replica mean of an observable X at time t is compared with
the exact <X>(t) using the exact variance Var X(t) from the same distribution p(t):
|mean - exact| < 4 sqrt(Var / R) (a 4 sigma z-test; seeds are fixed).
"""
import itertools
import os
import math

import numpy as np
import pytest

from kmc import ElectronSystem, TLSSystem
from kmc.dynamics import DynamicsParams, MasterEquation, simulate
from kmc.dynamics.run import rate_setup

Z = 4.0


def small_tls(seed, n=6, w=1.0, j=1.0):
    """Interacting TLS glass with |J_ij| comparable to W and Delta0 over one decade.

    Couplings are Gaussian (std j) rather than u/r^3 in a tiny box, where one close pair
    would dominate with |J| ~ 1e3 and freeze both the static MC and the dynamics.
    """
    rng = np.random.default_rng(seed)
    u = np.triu(rng.normal(0.0, j, (n, n)), 1)
    return TLSSystem.from_arrays(rng.normal(0.0, w, n), np.exp(rng.uniform(np.log(0.1), 0.0, n)),
                                 u + u.T)


def small_electron(seed, n=8):
    return ElectronSystem.random(np.random.default_rng(seed), n, W=1.0)


def exact_moments(system, params):
    """Exact means and variances of energy, excitations and occupation on the grid."""
    prefactors, pairs = rate_setup(system, params)
    me = MasterEquation(system, params.temperature, prefactors, pairs=pairs)
    res = simulate(system, params.__class__(**{**params.__dict__, "method": "exact"}),
                   mean_field=np.zeros(system.n_sites))
    if params.protocol == "quench":
        p0 = me.boltzmann(params.initial_temperature)
        p = me.propagate(p0, params.times())
        var_e = p @ me.energy**2 - (p @ me.energy) ** 2
        var_x = p @ me.excitations**2 - (p @ me.excitations) ** 2
        occ = p @ me.occupation
        var_o = p @ me.occupation**2 - occ**2
        return res, var_e, var_x, var_o
    raise NotImplementedError


def assert_agrees(kmc, exact, var_e, var_x, var_o):
    r = kmc.replicas
    for name, got, want, var in (("energy", kmc.energy.mean, exact.energy.mean, var_e),
                                 ("excitations", kmc.excitations.mean, exact.excitations.mean,
                                  var_x),
                                 ("occupation", kmc.occupation.mean, exact.occupation.mean,
                                  var_o)):
        se = np.sqrt(np.maximum(var, 1e-300) / r)
        z = np.abs(got - want) / se
        assert np.all(z < Z), f"{name}: max z = {z.max():.2f} at {np.unravel_index(z.argmax(), z.shape)}"


def test_generator_rows_sum_to_zero_and_rates_match_engine():
    system = small_tls(1)
    params = DynamicsParams(temperature=0.5)
    prefactors, _ = rate_setup(system, params)
    me = MasterEquation(system, 0.5, prefactors)
    assert np.allclose(me.generator.sum(axis=1), 0.0, atol=1e-12)
    # the off-diagonal rates out of a configuration are the engine's rates there
    from kmc.dynamics.tls_engine import TLSEngine
    engine = TLSEngine(system, 0.5, prefactors)
    for c in (0, 5, 37, 63):
        state = engine.new_state(me.configs[c])
        rates = engine.rates(state)
        for i in range(system.n_sites):
            assert me.generator[c, c ^ (1 << i)] == pytest.approx(rates[i], rel=1e-12)


def test_non_interacting_spectrum_is_subset_sums_of_lambda():
    """docs/model.md section 5: with J = 0 the eigenvalues are -(subset sums of lambda_i)."""
    from kmc.model import tls_relaxation_rates
    rng = np.random.default_rng(2)
    n = 5
    system = TLSSystem.from_arrays(rng.normal(0, 1, n), rng.uniform(0.1, 1, n), np.zeros((n, n)))
    me = MasterEquation(system, 0.4, system.delta0**2)
    lam = tls_relaxation_rates(np.hypot(system.bias, system.delta0), system.delta0, 0.4)
    sums = sorted(sum(s) for k in range(n + 1) for s in itertools.combinations(lam, k))
    eig = np.sort(-np.linalg.eigvals(me.generator).real)
    np.testing.assert_allclose(eig, sums, rtol=1e-9, atol=1e-12)


def test_single_tls_relaxes_exponentially_in_master_equation():
    """p_upper(t) = f + (p0 - f) e^(-lambda t), f = 1/(e^(|E|/T) + 1) (docs/model.md section 5)."""
    n, t = 2, 0.3
    bias, d0 = np.array([0.4, -0.7]), np.array([0.2, 0.5])
    system = TLSSystem.from_arrays(bias, d0, np.zeros((n, n)))
    me = MasterEquation(system, t, d0**2)
    times = np.logspace(-1, 2, 10)
    p = me.propagate(me.delta([-0.5, 0.5]), times)   # TLS 0 lower, TLS 1 lower
    occ = p @ me.occupation
    for i, p0 in ((0, 0.0), (1, 0.0)):
        e = math.hypot(bias[i], d0[i])
        f = 1.0 / (math.exp(e / t) + 1.0)
        lam = d0[i] ** 2 * e / math.tanh(e / (2 * t))
        p_up = 0.5 * (1.0 + np.sign(bias[i]) * occ[:, i])
        np.testing.assert_allclose(p_up, f + (p0 - f) * np.exp(-lam * times), rtol=1e-9,
                                   atol=1e-12)


def test_electron_stationary_vector_is_boltzmann():
    """Miller-Abrahams rates obey detailed balance, so p Q = 0 gives e^(-H/T)/Z."""
    system = small_electron(3)
    params = DynamicsParams(temperature=0.3, xi=0.5)
    prefactors, pairs = rate_setup(system, params)
    me = MasterEquation(system, 0.3, prefactors, pairs=pairs)
    assert me.n_states == math.comb(8, 4)
    assert np.allclose(me.generator.sum(axis=1), 0.0, atol=1e-10)
    np.testing.assert_allclose(me.stationary(), me.boltzmann(0.3), rtol=1e-8, atol=1e-14)


def test_two_site_electron_generator():
    """Two sites, one electron: rates i->j and j->i are the Miller-Abrahams pair."""
    from kmc.model import miller_abrahams_rates
    system = ElectronSystem.from_arrays([0.3, -0.2], 1, distances=np.array([[0, 0.7], [0.7, 0]]))
    params = DynamicsParams(temperature=0.25, xi=0.5, hop_cutoff=1.0)
    prefactors, pairs = rate_setup(system, params)
    me = MasterEquation(system, 0.25, prefactors, pairs=pairs)
    # configs: (0,) electron on site 0, (1,) on site 1
    e = system.site_energies
    c = system.interactions[0, 1]
    e0 = e[0] + c * (0 - 0.5)   # E_0 with n_1 = 0
    e1 = e[1] + c * (1 - 0.5)
    dh = e1 - e0 - c
    want = miller_abrahams_rates(np.array([dh, -dh]), 0.7, 0.5, 0.25)
    assert me.generator[0, 1] == pytest.approx(want[0], rel=1e-12)
    assert me.generator[1, 0] == pytest.approx(want[1], rel=1e-12)


@pytest.mark.parametrize("t_initial", [math.inf, 0.7])
def test_kmc_matches_master_equation_tls(t_initial):
    system = small_tls(11, n=7)
    params = DynamicsParams(temperature=0.4, initial_temperature=t_initial, t_min=0.05,
                            t_max=200.0, n_times=10, replicas=6000, mc_preparation_sweeps=200,
                            mc_equilibration_sweeps=100, mc_sampling_sweeps=200)
    kmc = simulate(system, params, seed=5, mean_field=np.zeros(7))
    assert kmc.counters["bound_violations"] == 0
    assert_agrees(kmc, *exact_moments(system, params))


@pytest.mark.parametrize("t_initial", [math.inf, 0.5])
def test_kmc_matches_master_equation_electron(t_initial):
    system = small_electron(12)
    params = DynamicsParams(temperature=0.25, initial_temperature=t_initial, xi=0.5,
                            hop_cutoff=2.0, t_min=0.1, t_max=300.0, n_times=10, replicas=6000,
                            mc_preparation_sweeps=200, mc_equilibration_sweeps=100,
                            mc_sampling_sweeps=200)
    kmc = simulate(system, params, seed=6, mean_field=np.zeros(8))
    assert kmc.counters["bound_violations"] == 0
    assert_agrees(kmc, *exact_moments(system, params))


@pytest.mark.parametrize("model", ["tls", "electron"])
def test_kmc_pulse_protocol_matches_master_equation(model):
    """Bias pulse F g_i for t_w, removed at t = 0; exact energy within 4 SE of KMC."""
    system = small_tls(21, n=6) if model == "tls" else small_electron(22)
    params = DynamicsParams(temperature=0.4, protocol="pulse", pulse_strength=1.5,
                            waiting_time=5.0, xi=0.5, t_min=0.05, t_max=100.0, n_times=10,
                            replicas=3000, mc_preparation_sweeps=200,
                            mc_equilibration_sweeps=100, mc_sampling_sweeps=200)
    mf = np.zeros(system.n_sites)
    kmc = simulate(system, params, seed=7, mean_field=mf)
    exact = simulate(system, DynamicsParams(**{**params.__dict__, "method": "exact"}), seed=7,
                     mean_field=mf)
    # conservative error: the per-time variance is bounded by the energy range squared / 4
    prefactors, pairs = rate_setup(system, params)
    me = MasterEquation(system, params.temperature, prefactors, pairs=pairs)
    se = np.maximum(kmc.energy.stderr, 1e-3 * np.ptp(me.energy))
    z = np.abs(kmc.energy.mean - exact.energy.mean) / se
    assert np.all(z < Z), z
    # the pulse must have pushed the system away from equilibrium at early times
    assert abs(exact.excess_energy.mean[0]) > 5 * abs(exact.excess_energy.mean[-1]) or \
        abs(exact.excess_energy.mean[0]) > 0.05


def test_tls_stationary_state_is_boltzmann_only_for_small_delta0():
    """The phonon rates balance the splitting sqrt(h^2 + Delta0^2), not the classical flip
    energy |h|: the stationary vector equals the Boltzmann distribution of H only as
    Delta0 -> 0 (and, with J != 0, no detailed balance holds at finite Delta0)."""
    system = small_tls(31, n=5)
    n = system.n_sites
    tiny = TLSSystem.from_arrays(system.bias, np.full(n, 1e-5), system.couplings)
    large = TLSSystem.from_arrays(system.bias, np.full(n, 0.5), system.couplings)
    for s, close in ((tiny, True), (large, False)):
        me = MasterEquation(s, 0.5, np.ones(n))
        gap = np.abs(me.stationary() - me.boltzmann(0.5)).max()
        assert (gap < 1e-8) if close else (gap > 1e-3), gap


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tls", "electron"])
def test_kmc_matches_master_equation_larger_systems(model):
    """Reduced size by default (TLS N = 9, electron N = 10, M = 5); KMC_VALIDATE=full runs
    TLS N = 12 (4096 configurations) and electron N = 12, M = 6 (924) with 4x replicas."""
    full = os.environ.get("KMC_VALIDATE") == "full"
    if model == "tls":
        system = small_tls(41, n=12 if full else 9)
        params = DynamicsParams(temperature=0.4, t_min=0.05, t_max=300.0, n_times=10,
                                replicas=16000 if full else 4000, mc_equilibration_sweeps=100,
                                mc_sampling_sweeps=200)
    else:
        system = small_electron(42, n=12 if full else 10)
        # hop_cutoff 10: every pair (a cut-off must pass check_hop_cutoff over the run)
        params = DynamicsParams(temperature=0.25, xi=0.5, t_min=0.1, t_max=300.0, n_times=10,
                                replicas=16000 if full else 4000, mc_equilibration_sweeps=100,
                                mc_sampling_sweeps=200, hop_cutoff=10.0)
    kmc = simulate(system, params, seed=43, mean_field=np.zeros(system.n_sites))
    assert kmc.counters["bound_violations"] == 0
    assert_agrees(kmc, *exact_moments(system, params))
