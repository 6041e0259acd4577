"""Mean-field dynamics in time (kmc.dynamics.meanfield_dynamics): Jacobians, exact limits,
the linear limit, conservation and stationarity.

Tolerances are stated where they are used: finite-difference Jacobians to the truncation
and rounding error of a central difference; integrations to a multiple of the integrator
tolerance the test asks for.
"""

import numpy as np
import pytest
import scipy.linalg

from kmc.dynamics.electron_engine import hop_pairs, pair_prefactors
from kmc.dynamics.meanfield_dynamics import (ElectronMeanField, TLSMeanField, integrate,
                                             stationary_state)
from kmc.errors import ConfigError
from kmc.solvers import meanfield
from kmc.solvers.linear import electron_rate_matrix, tls_rate_fixed_point, tls_rate_matrix
from kmc.systems import ElectronSystem, TLSSystem

TIGHT = dict(rtol=1e-10, atol=1e-13)


def gaussian_tls(seed, n, j=1.0, d0=(1e-2, 1e-1)):
    """TLS glass with Gaussian couplings (std j): strongly interacting without the rare
    close pair of a tiny dipolar box (as in tests/test_master_equation.py)."""
    rng = np.random.default_rng(seed)
    u = np.triu(rng.normal(0.0, j, (n, n)), 1)
    delta0 = np.exp(rng.uniform(np.log(d0[0]), np.log(d0[1]), n))
    return TLSSystem.from_arrays(rng.normal(0.0, 1.0, n), delta0, u + u.T)


def tls_fixed_point(system, temperature):
    """Well polarizations m* at the exact fixed point of the rate equation."""
    mf = meanfield.solve(system, temperature, tol=1e-12, rng=0)
    fp = tls_rate_fixed_point(system, mf.fields, temperature)
    assert fp.converged
    signs = np.where(fp.fields >= 0, 1.0, -1.0)
    return signs * fp.sigma0, fp.fields, signs


def central_jacobian(rhs, x, h):
    jac = np.empty((x.size, x.size))
    for j in range(x.size):
        step = np.zeros(x.size)
        step[j] = h
        jac[:, j] = (rhs(x + step) - rhs(x - step)) / (2 * h)
    return jac


@pytest.mark.parametrize("readout", ["classical", "quantum"])
def test_tls_jacobian_is_finite_difference(readout):
    """Analytic Jacobian against central differences at random (non-stationary) states.

    Step 1e-6: truncation O(h^2 F''') ~ 1e-12 and rounding eps |F| / h ~ 1e-10 of the row
    scale; 1e-6 leaves margin. Rows scale with a Delta0_i^2, so errors are relative to
    each row's largest element. States with a field within 1e-4 of zero are redrawn (the
    classical read-out switches there).
    """
    system = gaussian_tls(4, 12)
    model = TLSMeanField(system, 0.3, 1.7 * system.delta0**2, readout=readout)
    rng = np.random.default_rng(5)
    for _ in range(3):
        m = rng.uniform(-1, 1, 12)
        while np.min(np.abs(model.fields(m))) < 1e-4:
            m = rng.uniform(-1, 1, 12)
        jac = model.jacobian(m)
        fd = central_jacobian(model.rhs, m, 1e-6)
        row = np.max(np.abs(jac), axis=1, keepdims=True)
        assert np.max(np.abs(jac - fd) / row) < 1e-6
        off = jac - np.diag(np.diag(jac))
        assert np.max(np.abs(off) / row) > 1e-2   # the coupling rows are exercised
        # bias response: d rhs / d Delta, by differences of the model with shifted biases
        resp = np.diag(model.bias_response(m))
        for i in (0, 5):
            shifted = [TLSMeanField(system, 0.3, model.prefactors, readout=readout,
                                    bias=system.bias + s * np.eye(12)[i]) for s in (1e-6, -1e-6)]
            fd_i = (shifted[0].rhs(m)[i] - shifted[1].rhs(m)[i]) / 2e-6
            assert abs(resp[i] - fd_i) < 1e-6 * row[i, 0]


def test_tls_jacobian_at_fixed_point_is_rate_matrix():
    """At the rate-equation fixed point the classical dynamics is stationary and its
    Jacobian in the well variables is diag(s) B diag(s), B = tls_rate_matrix
    (kmc.solvers.linear.tls), to rounding."""
    system = gaussian_tls(6, 15)
    temperature = 0.3
    m_star, fields, signs = tls_fixed_point(system, temperature)
    model = TLSMeanField(system, temperature, system.delta0**2)
    np.testing.assert_allclose(model.fields(m_star), fields, rtol=0, atol=1e-12)
    assert np.max(np.abs(model.rhs(m_star))) < 1e-13 * np.max(system.delta0**2)
    b = tls_rate_matrix(system, fields, temperature)
    jac = model.jacobian(m_star)
    expected = signs[:, None] * b * signs[None, :]
    assert np.max(np.abs(jac - expected)) < 1e-13 * np.max(np.abs(b))
    assert np.max(np.abs(b - np.diag(np.diag(b)))) > 1e-3 * np.max(np.abs(b))
    # Newton from the Eq. 4 state lands on the same fixed point
    start = -np.tanh(meanfield.solve(system, temperature, tol=1e-12, rng=0).fields
                     / (2 * temperature))
    st = stationary_state(model, start)
    assert st.converged
    np.testing.assert_allclose(st.state, m_star, atol=1e-10)


@pytest.mark.parametrize("readout", ["classical", "quantum"])
def test_independent_tls_follow_exact_solution(readout):
    """J = 0: every TLS relaxes alone, p_upper(t) = f + (p0 - f) e^(-lambda t),
    f = 1/(e^(|E|/T) + 1) (docs/model.md section 5), over 14 decades with Delta0 on
    [1e-7, 1e-1]. With rtol = 1e-10 the error must stay below 1e-8 (100 x rtol)."""
    n, temperature = 40, 0.1
    rng = np.random.default_rng(7)
    delta0 = np.exp(rng.uniform(np.log(1e-7), np.log(1e-1), n))
    system = TLSSystem.from_arrays(rng.normal(0, 1, n), delta0, np.zeros((n, n)))
    model = TLSMeanField(system, temperature, delta0**2, readout=readout)
    m0 = rng.choice([-1.0, 1.0], n)
    times = np.logspace(0, 14, 43)
    traj = integrate(model, m0, times, **TIGHT)
    assert traj.success
    h = system.bias
    e = np.hypot(h, delta0)
    lam = delta0**2 * e / np.tanh(e / (2 * temperature))
    if readout == "classical":
        s = np.sign(h)
        f = 1.0 / (np.exp(e / temperature) + 1.0)
        p0 = 0.5 * (1.0 + s * m0)
        p_up = f + (p0 - f) * np.exp(-np.outer(times, lam))
        exact = s * (2.0 * p_up - 1.0)
    else:
        m_eq = -(h / e) * np.tanh(e / (2 * temperature))
        exact = m_eq + (m0 - m_eq) * np.exp(-np.outer(times, lam))
    assert np.max(np.abs(traj.states - exact)) < 1e-8
    # the default tolerances are looser; their error is stated in docs/meanfield-dynamics.md
    loose = integrate(model, m0, times)
    assert np.max(np.abs(loose.states - exact)) < 1e-4


def _linear_pulse(jac, drive, x0, kick, waiting_time, times):
    """Deviation of d x/dt = jac x + drive kick (t < 0), jac x (t > 0), from x0 at -t_w."""
    n = jac.shape[0]
    aug = np.zeros((n + 1, n + 1))
    aug[:n, :n] = jac
    aug[:n, n] = drive @ kick
    y = scipy.linalg.expm(aug * waiting_time) @ np.append(x0, 1.0)
    return np.array([scipy.linalg.expm(jac * t) @ y[:n] for t in times])


@pytest.mark.parametrize("protocol", ["deviation", "pulse"])
def test_tls_small_perturbation_is_linear(protocol):
    """Near the fixed point the mean-field dynamics is the linear prediction with B:
    a start m* + F v (``deviation``), or a pulse F g for t_w removed at t = 0
    (``pulse``). The error is O(F^2): err(F) / F^2 must stay within a factor 3 over
    F = 1e-2 ... 1e-4 (a linear error, O(F), would change it by 100)."""
    system = gaussian_tls(8, 10)
    temperature = 0.3
    m_star, _, _ = tls_fixed_point(system, temperature)
    model = TLSMeanField(system, temperature, system.delta0**2)
    rng = np.random.default_rng(9)
    v = rng.normal(0, 1, 10)
    times = np.logspace(1, 6, 16)
    jac = model.jacobian(m_star)
    t_w = 3e3
    scaled = []
    for f in (1e-2, 1e-3, 1e-4):
        if protocol == "deviation":
            traj = integrate(model, m_star + f * v, times, **TIGHT)
            lin = np.array([scipy.linalg.expm(jac * t) @ (f * v) for t in times])
        else:
            pulse = TLSMeanField(system, temperature, model.prefactors,
                                 bias=system.bias + f * v)
            traj = integrate(model, m_star, times, pulse_model=pulse, waiting_time=t_w, **TIGHT)
            lin = _linear_pulse(jac, model.bias_response(m_star), np.zeros(10), f * v, t_w,
                                times)
        assert traj.success
        dev = traj.states - m_star
        assert np.max(np.abs(lin)) > 0.1 * f          # the response is not trivially small
        scaled.append(np.max(np.abs(dev - lin)) / f**2)
    assert max(scaled) < 3 * min(scaled)


def electron_case(seed=11, n=40, cutoff=2.0, xi=0.3, hop_energy="pair", temperature=0.3,
                  width=0.0):
    system = ElectronSystem.random(np.random.default_rng(seed), n, W=1.0)
    pairs, r = hop_pairs(system.distances, cutoff)
    model = ElectronMeanField(system, temperature, pairs, pair_prefactors(r, xi),
                              hop_energy=hop_energy, resonance_width=width)
    return system, model


@pytest.mark.parametrize("hop_energy,width", [("pair", 0.0), ("kmc", 0.0), ("mean_field", 0.0),
                                              ("pair", 0.05)])
def test_electron_jacobian_is_finite_difference(hop_energy, width):
    """Analytic Jacobian and bias response against central differences (step 1e-6;
    error relative to the largest element, as for the TLS)."""
    system, model = electron_case(hop_energy=hop_energy, width=width)
    rng = np.random.default_rng(12)
    n = rng.uniform(0.05, 0.95, system.n_sites)
    jac = model.jacobian(n)
    fd = central_jacobian(model.rhs, n, 1e-6)
    scale = np.max(np.abs(jac))
    assert np.max(np.abs(jac - fd)) < 1e-6 * scale
    np.testing.assert_allclose(jac.sum(axis=0), 0.0, atol=1e-12 * scale)
    resp = model.bias_response(n)
    for i in (0, 7):
        shifted = [ElectronMeanField(system, model.temperature, model.pairs, model.prefactors,
                                     site_energies=system.site_energies + s * np.eye(40)[i],
                                     hop_energy=hop_energy, resonance_width=width)
                   for s in (1e-6, -1e-6)]
        fd_i = (shifted[0].rhs(n) - shifted[1].rhs(n)) / 2e-6
        assert np.max(np.abs(resp[:, i] - fd_i)) < 1e-6 * scale


@pytest.mark.parametrize("hop_energy", ["pair", "mean_field"])
def test_electron_quench_conserves_particles(hop_energy):
    """sum_i n_i stays M to rounding over 14 decades (the Jacobian's columns sum to 0).
    A resonance width is needed: without it trajectories cross dH = 0, where the
    Miller-Abrahams factor diverges and the integrator stops (checked below)."""
    system, model = electron_case(n=60, xi=0.1, temperature=0.1, hop_energy=hop_energy,
                                  width=1e-3)
    rng = np.random.default_rng(13)
    n0 = np.zeros(60)
    n0[rng.permutation(60)[:system.n_electrons]] = 1.0
    traj = integrate(model, n0, np.logspace(-2, 12, 30))
    assert traj.success
    assert np.max(np.abs(traj.states.sum(axis=1) - system.n_electrons)) < 1e-9
    assert traj.energy[-1] < traj.energy[0]
    exact = ElectronMeanField(system, 0.1, model.pairs, model.prefactors, hop_energy=hop_energy)
    # the dense-LU reference: whether the truncated Newton matrix of the default also
    # stops at the cusp depends on the case (with hop_energy="mean_field" here it steps
    # through in 12 200 steps; docs/meanfield-dynamics.md)
    stopped = integrate(exact, n0, np.logspace(-2, 12, 30), row_drop=0.0)
    assert not stopped.success and "step size" in stopped.message


def test_electron_eq20_fixed_point_is_stationary_and_jacobian_is_A():
    """With hop_energy="mean_field" (no electron-hole term) the Eq. 20 solution (n = f(E)) is stationary, and
    with every pair in the list the Jacobian there is electron_rate_matrix with
    interaction_term="jacobian", G (D^-1 + C/T) (kmc.solvers.linear.electron)."""
    temperature, xi = 0.3, 0.3
    system, model = electron_case(n=30, cutoff=np.inf, xi=xi, hop_energy="mean_field",
                                  temperature=temperature)
    assert model.pairs.shape[0] == 30 * 29 // 2
    mf = meanfield.solve(system, temperature, tol=1e-13, rng=0)
    assert mf.converged
    n_star = 1.0 / (np.exp((mf.fields - mf.mu) / temperature) + 1.0)
    jac = model.jacobian(n_star)
    scale = np.max(np.abs(jac))
    assert np.max(np.abs(model.rhs(n_star))) < 1e-11 * scale
    a = electron_rate_matrix(system, mf.fields, mf.mu, temperature, xi,
                             interaction_term="jacobian")
    assert np.max(np.abs(jac - a)) < 1e-10 * scale
    # a trajectory started there stays there
    traj = integrate(model, n_star, np.logspace(-2, 8, 6))
    assert np.max(np.abs(traj.states - n_star)) < 1e-8


def test_electron_hole_dynamics_reaches_its_own_stationary_state():
    """With the pair hop energy (the KMC's, averaged over the other sites) the Eq. 20
    state is not stationary; the end of a long
    trajectory polished by Newton is, with the particle number of the start."""
    temperature = 0.3
    system, model = electron_case(n=30, xi=0.3, temperature=temperature, width=1e-3)
    mf = meanfield.solve(system, temperature, tol=1e-13, rng=0)
    n_eq20 = 1.0 / (np.exp((mf.fields - mf.mu) / temperature) + 1.0)
    scale = np.max(np.abs(model.jacobian(n_eq20)))
    assert np.max(np.abs(model.rhs(n_eq20))) > 1e-6 * scale
    traj = integrate(model, n_eq20, np.logspace(-2, 10, 5))
    st = stationary_state(model, traj.states[-1])
    assert st.converged
    assert abs(st.state.sum() - n_eq20.sum()) < 1e-10
    assert np.max(np.abs(st.state - traj.states[-1])) < 1e-4


def test_bad_arguments_name_the_key():
    system, model = electron_case(n=10)
    with pytest.raises(ConfigError, match="pairs"):
        ElectronMeanField(system, 0.3, model.pairs[:, :1], model.prefactors)
    with pytest.raises(ConfigError, match="times"):
        integrate(model, np.full(10, 0.5), [1.0, 0.5])
    with pytest.raises(ConfigError, match="method"):
        integrate(model, np.full(10, 0.5), [1.0], method="RK45")
    tls = gaussian_tls(0, 4)
    with pytest.raises(ConfigError, match="readout"):
        TLSMeanField(tls, 0.3, tls.delta0**2, readout="x")


@pytest.mark.parametrize("readout", ["classical", "quantum"])
def test_row_sparse_newton_matches_dense_lu(readout):
    """The row-sparse Newton matrix (default) changes only how the implicit equations are
    solved: a quench agrees with the dense-LU reference (row_drop = 0) and with scipy's
    finite-difference Jacobian to a few times the tolerance (rtol = 1e-8: 1e-6 abs)."""
    system = TLSSystem.random(np.random.default_rng(14), 80, J=1.0, delta0_min=1e-5)
    model = TLSMeanField(system, 0.1, system.delta0**2, readout=readout)
    m0 = np.random.default_rng(15).choice([-1.0, 1.0], 80)
    times = np.logspace(0, 10, 21)
    tol = dict(rtol=1e-8, atol=1e-11)
    fast = integrate(model, m0, times, **tol)
    dense = integrate(model, m0, times, row_drop=0.0, **tol)
    numerical = integrate(model, m0, times, jacobian="numerical", row_drop=0.0, **tol)
    assert fast.success and dense.success and numerical.success
    assert np.max(np.abs(fast.states - dense.states)) < 1e-6
    assert np.max(np.abs(numerical.states - dense.states)) < 1e-6
    assert np.max(np.abs(fast.states[-1] - m0)) > 0.5      # it did relax


@pytest.mark.parametrize("hop_energy", ["pair", "mean_field"])
def test_electron_row_sparse_newton_matches_dense_lu(hop_energy):
    """The electron default (row_drop = 1e-5 with the particle-number correction of the
    truncated solve) against the dense LU of the whole Newton matrix and against scipy's
    finite-difference Jacobian, quench at rtol = 1e-8: equal to a few times the tolerance
    (1e-6 abs), and M kept to 1e-9 by both."""
    system, model = electron_case(n=40, xi=0.2, temperature=0.2, hop_energy=hop_energy,
                                  width=1e-2)
    rng = np.random.default_rng(18)
    n0 = np.zeros(40)
    n0[rng.permutation(40)[:system.n_electrons]] = 1.0
    times = np.logspace(-2, 10, 25)
    tol = dict(rtol=1e-8, atol=1e-11)
    fast = integrate(model, n0, times, **tol)
    dense = integrate(model, n0, times, row_drop=0.0, **tol)
    numerical = integrate(model, n0, times, jacobian="numerical", row_drop=0.0, **tol)
    assert fast.success and dense.success and numerical.success
    assert np.max(np.abs(fast.states - dense.states)) < 1e-6
    assert np.max(np.abs(numerical.states - dense.states)) < 1e-6
    for traj in (fast, dense):
        assert np.max(np.abs(traj.states.sum(axis=1) - system.n_electrons)) < 1e-9
    assert np.max(np.abs(fast.states[-1] - n0)) > 0.5      # it did relax


def test_symmetric_products_equal_general_products():
    """The fields and site energies use BLAS dsymv on the exactly symmetric coupling
    matrices: equal to the general product (kmc.model) to rounding (1e-12 of the scale);
    a matrix symmetric only to np.allclose falls back to the general product."""
    from kmc.model import electron_site_energies
    system, model = electron_case(n=50)
    assert model._symmetric
    n = np.random.default_rng(19).uniform(0, 1, 50)
    ref = electron_site_energies(n, system.site_energies, system.interactions, system.filling)
    assert np.max(np.abs(model.energies(n) - ref)) < 1e-12 * np.max(np.abs(ref))
    tls = gaussian_tls(20, 30)
    mf = TLSMeanField(tls, 0.3, tls.delta0**2)
    assert mf._symmetric
    m = np.random.default_rng(21).uniform(-1, 1, 30)
    ref = tls.bias - 0.25 * tls.couplings @ m
    assert np.max(np.abs(mf.fields(m) - ref)) < 1e-12 * np.max(np.abs(ref))
    skew = tls.couplings.copy()
    skew[0, 1] += 1e-12
    near = TLSSystem.from_arrays(tls.bias, tls.delta0, skew)
    mf_near = TLSMeanField(near, 0.3, tls.delta0**2)
    assert not mf_near._symmetric
    np.testing.assert_array_equal(mf_near.fields(m), near.bias - 0.25 * (near.couplings @ m))


def test_simulate_meanfield_equals_master_equation_without_coupling():
    """method = "meanfield" through kmc.dynamics.simulate: with J = 0 the mean-field
    dynamics is exact, so from one configuration it reproduces method = "exact" (the
    master equation with the KMC's rates) in every curve, to the integrator tolerance
    (rtol = 1e-9: 1e-6 abs) -- including the pulse protocol's drive."""
    from kmc.dynamics import DynamicsParams, simulate
    n = 6
    rng = np.random.default_rng(16)
    system = TLSSystem.from_arrays(rng.normal(0, 1, n), np.exp(rng.uniform(-3, 0, n)),
                                   np.zeros((n, n)))
    state = rng.choice([-0.5, 0.5], n)
    common = dict(temperature=0.3, protocol="state", initial_state=state, t_min=1e-1,
                  t_max=1e5, n_times=12, meanfield_rtol=1e-9, meanfield_atol=1e-12)
    exact = simulate(system, DynamicsParams(method="exact", **common))
    mf = simulate(system, DynamicsParams(method="meanfield", **common))
    assert mf.method == "meanfield" and mf.counters["steps"] > 0
    # every attempted step (accepted, rejected, or failed in Newton) evaluates the rhs
    c = mf.counters
    assert c["steps"] + c["rejected_steps"] + c["newton_failures"] <= c["rhs_evaluations"]
    np.testing.assert_allclose(mf.occupation.mean, exact.occupation.mean, atol=1e-6)
    np.testing.assert_allclose(mf.energy.mean, exact.energy.mean, atol=1e-6)
    assert mf.stationary.source == "meanfield_stationary"
    np.testing.assert_allclose(mf.stationary.occupation, exact.stationary.occupation,
                               atol=1e-10)


def test_simulate_meanfield_electron_pulse_conserves_particles():
    """The electron pulse protocol runs end to end on the KMC's hop pairs and keeps M."""
    from kmc.dynamics import DynamicsParams, simulate
    system = ElectronSystem.random(np.random.default_rng(17), 30, W=1.0)
    params = DynamicsParams(temperature=0.3, method="meanfield", protocol="pulse",
                            pulse_strength=0.2, waiting_time=10.0, replicas=4,
                            mc_preparation_sweeps=50, xi=0.3, resonance_width=1e-3,
                            hop_cutoff=10.0)   # every pair: the cut-off check passes
    res = simulate(system, params)
    assert res.method == "meanfield"
    np.testing.assert_allclose(res.occupation.mean.sum(axis=1), system.n_electrons,
                               atol=1e-9)
    assert res.stationary.source == "meanfield_stationary"


def test_params_refuse_bad_meanfield_keys():
    from kmc.dynamics import DynamicsParams
    with pytest.raises(ConfigError, match="dynamics.hop_energy"):
        DynamicsParams(temperature=0.1, hop_energy="x")
    with pytest.raises(ConfigError, match="dynamics.resonance_width"):
        DynamicsParams(temperature=0.1, resonance_width=-1.0)
    with pytest.raises(ConfigError, match="dynamics.meanfield_rtol"):
        DynamicsParams(temperature=0.1, meanfield_rtol=0.0)
