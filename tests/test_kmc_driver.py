"""The simulate() driver: parameters, baselines, observables and the exact method."""
import math

import numpy as np
import pytest

from kmc import ElectronSystem, TLSSystem
from kmc.dynamics import DynamicsParams, simulate
from kmc.dynamics.observables import combine_realizations, deviation_curve, replica_curve


def independent_tls(n=4, seed=1):
    rng = np.random.default_rng(seed)
    return TLSSystem.from_arrays(rng.normal(0, 1, n), rng.uniform(0.1, 0.5, n), np.zeros((n, n)))


@pytest.mark.parametrize("kwargs, key", [
    (dict(temperature=-1.0), "temperature"),
    (dict(temperature=1.0, method="mc"), "method"),
    (dict(temperature=1.0, protocol="state"), "initial_state"),
    (dict(temperature=1.0, t_min=10.0, t_max=1.0), "t_min"),
    (dict(temperature=1.0, replicas=0), "replicas"),
    (dict(temperature=1.0, hop_cutoff=0.0), "hop_cutoff"),
])
def test_bad_parameters_name_their_key(kwargs, key):
    with pytest.raises(ValueError, match=f"dynamics.{key}"):
        DynamicsParams(**kwargs)


def test_time_grid_is_log_spaced():
    times = DynamicsParams(temperature=1.0, t_min=1e-3, t_max=1e3, n_times=7).times()
    np.testing.assert_allclose(times, 10.0 ** np.arange(-3, 4))


def test_exact_baselines_of_independent_tls():
    """J = 0: the Boltzmann baseline is <sigma_i> = -tanh(Delta_i / 2T), which is also the
    mean field; the stationary vector of the rates is the two-level Boltzmann law of the
    splitting sqrt(Delta^2 + Delta0^2), p_upper = 1 / (e^(|E|/T) + 1)."""
    system = independent_tls()
    t = 0.5
    res = simulate(system, DynamicsParams(temperature=t, method="exact", n_times=5))
    want = -np.tanh(system.bias / (2 * t))
    np.testing.assert_allclose(res.equilibrium.occupation, want, rtol=1e-10)
    np.testing.assert_allclose(res.mean_field.occupation, want, rtol=1e-8)
    assert res.mean_field_converged
    e = np.hypot(system.bias, system.delta0)
    p_up = 0.5 * (1 + np.sign(system.bias) * res.stationary.occupation)
    np.testing.assert_allclose(p_up, 1 / (np.exp(e / t) + 1), rtol=1e-9)


def test_quench_from_infinite_temperature_relaxes_to_stationary():
    system = independent_tls()
    res = simulate(system, DynamicsParams(temperature=0.5, method="exact", t_min=1e-2,
                                          t_max=1e5, n_times=8))
    assert res.deviation.mean[0] > 0.5
    np.testing.assert_allclose(res.occupation.mean[-1], res.stationary.occupation, atol=1e-8)
    assert res.excess_energy.mean[0] > res.excess_energy.mean[-1]


def test_kmc_result_has_baselines_and_counters():
    system = ElectronSystem.random(np.random.default_rng(3), 10)
    # hop_cutoff 10: every pair (a cut-off must pass check_hop_cutoff over the run)
    params = DynamicsParams(temperature=0.3, xi=0.5, t_min=0.1, t_max=10.0, n_times=5,
                            replicas=5, mc_equilibration_sweeps=50, mc_sampling_sweeps=100,
                            hop_cutoff=10.0)
    res = simulate(system, params, seed=2)
    assert res.times.shape == (5,) and res.occupation.mean.shape == (5, 10)
    assert res.equilibrium.source == "static_mc" and res.mean_field.source == "mean_field"
    assert res.equilibrium.occupation.sum() == pytest.approx(5.0)   # M conserved
    assert np.allclose(res.occupation.mean.sum(axis=1), 5.0)
    assert res.counters["events"] > 0 and res.counters["bound_violations"] == 0
    np.testing.assert_allclose(res.excess_energy.mean,
                               res.energy.mean - res.equilibrium.energy)


def test_static_mc_baseline_matches_exact_boltzmann():
    """Static MC at T estimates the Boltzmann averages: within 4 batch-mean errors."""
    rng = np.random.default_rng(4)
    n = 8
    u = np.triu(rng.normal(0, 1, (n, n)), 1)
    system = TLSSystem.from_arrays(rng.normal(0, 1, n), np.full(n, 0.1), u + u.T)
    kmc = simulate(system, DynamicsParams(temperature=0.5, replicas=1, n_times=2,
                                          t_max=1e-1, mc_sampling_sweeps=20000),
                   mean_field=np.zeros(n))
    exact = simulate(system, DynamicsParams(temperature=0.5, method="exact", n_times=2),
                     mean_field=np.zeros(n))
    assert abs(kmc.equilibrium.energy - exact.equilibrium.energy) \
        < 4 * kmc.equilibrium.energy_stderr
    assert abs(kmc.equilibrium.excitations - exact.equilibrium.excitations) \
        < 4 * kmc.equilibrium.excitations_stderr


def test_deviation_jackknife():
    """|mean - ref| summed over sites; the jackknife of a linear statistic is the plain SE."""
    rng = np.random.default_rng(5)
    configs = rng.choice([-1, 1], size=(200, 3, 1)).astype(np.int8) + 0
    ref = np.array([-5.0])            # far away: |.| is linear here
    curve = deviation_curve(configs, ref)
    plain = replica_curve(configs[:, :, 0].astype(float))
    np.testing.assert_allclose(curve.mean, plain.mean + 5.0)
    np.testing.assert_allclose(curve.stderr, plain.stderr, rtol=1e-10)


def test_combine_realizations_uses_spread_between_realizations():
    from kmc.dynamics.observables import Curve
    c = combine_realizations([Curve(np.array([1.0]), np.array([0.1])),
                              Curve(np.array([3.0]), np.array([0.1]))])
    assert c.mean[0] == 2.0 and c.stderr[0] == pytest.approx(1.0)


def test_exact_method_refuses_large_systems():
    system = TLSSystem.from_arrays(np.zeros(20), np.full(20, 0.1), np.zeros((20, 20)))
    with pytest.raises(ValueError, match="method"):
        simulate(system, DynamicsParams(temperature=1.0, method="exact"),
                 mean_field=np.zeros(20))


def test_mean_field_at_another_temperature_is_refused():
    from kmc.solvers import meanfield
    system = independent_tls()
    solved = meanfield.solve(system, 0.5, rng=0)
    params = DynamicsParams(temperature=0.4, replicas=1, n_times=2, mc_sampling_sweeps=1)
    with pytest.raises(ValueError, match="mean_field: solved at T = 0.5"):
        simulate(system, params, mean_field=solved)


def test_run_file_state_protocol_is_accepted_with_a_file():
    """[dynamics] protocol = "state" validates with a state file (the states are read per
    realization) and is refused without one."""
    from kmc.pipeline.config import loads
    config = loads('[dynamics]\nprotocol = "state"\ninitial_state_file = "s.npy"\n')
    assert config.dynamics.protocol == "state"
    with pytest.raises(ValueError, match="dynamics.initial_state_file"):
        loads('[dynamics]\nprotocol = "state"\n')
