"""Linearized electron-glass dynamics: the matrix A of Eqs. 22-23, its spectrum through the
detailed-balance symmetrization, the bare distance matrix (Fig. 16) and Eq. A2."""
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special

from kmc import model

from kmc.solvers import meanfield
from kmc.solvers.linear import (distance_matrix_spectrum, electron_rate_matrix, electron_spectrum,
                        equilibrium_pair_currents, fermi_occupations, nn_distance_estimate)
from kmc.systems import ElectronSystem


def mf_energies(system, temperature, mu=0.0):
    """Eq. 20 solution at fixed mu from the mean-field solver, checked converged.

    The linearization only needs a fixed point of E = eps + C (f(E) - K) for the given mu;
    the particle number it implies does not matter for these tests.
    """
    result = meanfield.solve(system, temperature, tol=1e-12, rng=0, mu=mu)
    assert result.converged and result.residual < 1e-10
    return result.fields


def make_system(seed, n, **kw):
    return ElectronSystem.random(np.random.default_rng(seed), n, **kw)


def test_two_sites_distance_matrix():
    """Two sites at distance r: eigenvalues {0, -2 e^(-r/xi)} (docs/model.md section 5)."""
    r, xi = 0.7, 0.25
    res = distance_matrix_spectrum(np.array([[0.0, r], [r, 0.0]]), xi, vectors=True)
    np.testing.assert_allclose(res.eigenvalues, [-2 * math.exp(-r / xi), 0.0],
                               rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(res.rates, [2 * math.exp(-r / xi)], rtol=1e-14)
    assert res.zero_mode_overlap == pytest.approx(1.0, abs=1e-14)


def test_distance_matrix_has_one_zero_mode():
    system = make_system(0, 50)
    res = distance_matrix_spectrum(system.distances, 0.3, vectors=True)
    assert res.n_zero == 1 and res.n_positive == 0
    assert res.zero_mode_residual < 1e-14 and res.zero_mode_overlap > 1 - 1e-12
    assert res.rates.shape == (49,) and np.all(res.rates > 0)


def test_pair_currents_obey_detailed_balance():
    """gamma0_ij computed straight from the model's rates is symmetric to rounding."""
    system = make_system(1, 25)
    temperature, xi = 0.3, 0.5
    e = mf_energies(system, temperature)
    n0 = scipy.special.expit(-e / temperature)
    raw = n0[:, None] * scipy.special.expit(e / temperature)[None, :] * model.miller_abrahams_rates(
        e[None, :] - e[:, None] + np.eye(e.size), system.distances, xi, temperature)
    np.fill_diagonal(raw, 0.0)
    np.testing.assert_allclose(raw, raw.T, rtol=1e-12)
    np.testing.assert_allclose(equilibrium_pair_currents(e, 0.0, system.distances, xi,
                                                         temperature), raw, rtol=1e-12)


def test_occupations_keep_relative_precision_far_from_mu():
    """Regression: a Fermi function 0.5 (1 - tanh) returns exactly 0 beyond E - mu ~ 38 T and
    loses relative precision well before; the linearization divides by n0 (1 - n0), and
    with the tanh form detailed balance of gamma0 failed (relative asymmetry 1) on
    ordinary realizations with close pairs. fermi_occupations keeps both tails."""
    x = np.array([-60.0, -40.0, -10.0, 0.0, 10.0, 40.0, 60.0])
    n0, holes = fermi_occupations(x, 0.0, 1.0)
    np.testing.assert_allclose(n0, 1 / (np.exp(x) + 1), rtol=1e-14)
    np.testing.assert_allclose(holes, 1 / (np.exp(-x) + 1), rtol=1e-14)
    np.testing.assert_allclose(n0 * holes, np.exp(x) / (np.exp(x) + 1) ** 2, rtol=1e-14)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_symmetrized_spectrum_equals_general_eigensolver(seed):
    """syevd on D^-1/2 G D^-1/2 gives geev's eigenvalues of A within 1e-8 relative;
    A's column sums vanish; exactly one zero mode, with eigenvector sqrt(D) 1."""
    system = make_system(seed, 30)
    temperature, xi = 0.3, 0.5
    e = mf_energies(system, temperature)
    a = electron_rate_matrix(system, e, 0.0, temperature, xi)
    assert np.max(np.abs(a.sum(axis=0))) < 1e-13 * np.max(np.abs(a))
    general = np.sort(np.linalg.eigvals(a).real)
    res = electron_spectrum(system, e, 0.0, temperature, xi, vectors=True)
    assert res.method == "symmetric"
    assert res.n_zero == 1 and res.n_positive == 0
    assert abs(res.zero_mode) <= res.tolerance
    assert res.zero_mode_overlap > 1 - 1e-10 and res.zero_mode_residual < 1e-13
    nonzero = np.delete(general, np.argmin(np.abs(general)))
    np.testing.assert_allclose(np.sort(-nonzero), res.rates, rtol=1e-8)
    assert np.max(res.rates) / np.min(res.rates) > 10   # a spread spectrum, not a trivial one


def eq23_reference(system, energies, mu, temperature, xi):
    """Eq. 23 with its interaction term, written as printed with explicit loops."""
    gam = equilibrium_pair_currents(energies, mu, system.distances, xi, temperature)
    n0 = model.fermi(energies, mu, temperature)
    r = system.distances
    n = energies.size
    a = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            a[i, j] = gam[i, j] / (n0[j] * (1 - n0[j]))
            for k in range(n):
                if k not in (i, j):
                    a[i, j] -= gam[i, k] / temperature * (1 / r[i, j] - 1 / r[j, k])
    for j in range(n):
        a[j, j] = -a[:, j].sum()
    return a


def test_eq23_interaction_term_matches_printed_formula():
    system = make_system(5, 7)
    temperature, xi = 0.4, 0.5
    e = mf_energies(system, temperature)
    a = electron_rate_matrix(system, e, 0.0, temperature, xi, interaction_term=True)
    ref = eq23_reference(system, e, 0.0, temperature, xi)
    np.testing.assert_allclose(a, ref, rtol=1e-12, atol=1e-14 * np.max(np.abs(ref)))
    res = electron_spectrum(system, e, 0.0, temperature, xi, interaction_term=True)
    assert res.method == "general" and res.n_zero == 1


def master_rhs(n, system, temperature, xi):
    """Nonlinear mean-field master equation dn/dt with energies E(n) = eps + C (n - K)."""
    e = system.site_energies + system.interactions @ (n - system.filling)
    w = model.miller_abrahams_rates(e[None, :] - e[:, None] + np.eye(n.size),
                                    system.distances, xi, temperature)
    np.fill_diagonal(w, 0.0)
    out_flow = w * n[:, None] * (1 - n[None, :])        # [i, k]: i -> k
    return out_flow.sum(axis=0) - out_flow.sum(axis=1)


def test_jacobian_variant_is_finite_difference_jacobian():
    """interaction_term="jacobian" is dF/dn of the mean-field master equation at its fixed
    point (central differences, h = 1e-6: error ~ h^2 + eps/h ~ 1e-10 relative)."""
    system = make_system(6, 8)
    temperature, xi = 0.4, 0.5
    e = mf_energies(system, temperature)
    n0 = model.fermi(e, 0.0, temperature)
    assert np.max(np.abs(master_rhs(n0, system, temperature, xi))) < 1e-12
    a = electron_rate_matrix(system, e, 0.0, temperature, xi, interaction_term="jacobian")
    h = 1e-6
    fd = np.empty_like(a)
    for j in range(n0.size):
        step = np.zeros(n0.size)
        step[j] = h
        fd[:, j] = (master_rhs(n0 + step, system, temperature, xi)
                    - master_rhs(n0 - step, system, temperature, xi)) / (2 * h)
    np.testing.assert_allclose(a, fd, atol=1e-7 * np.max(np.abs(a)))
    # the interaction term is a sizeable part of the Jacobian here
    bare = electron_rate_matrix(system, e, 0.0, temperature, xi)
    assert np.max(np.abs(a - bare)) > 0.1 * np.max(np.abs(bare))


def test_saddle_point_gives_positive_eigenvalue():
    """One electron on two strongly repelling sites (C/T = 20): the nearly symmetric
    mean-field solution is a saddle; the exact Jacobian has a positive eigenvalue, the
    energy-frozen matrix does not."""
    c, temperature, delta = 4.0, 0.2, 1e-3
    system = ElectronSystem.from_arrays([delta, -delta], 1, distances=[[0, 1.0], [1.0, 0]],
                                        interactions=[[0, c], [c, 0]])
    # antisymmetric solution E_2 = -E_1 of Eq. 20 at mu = 0: E = delta + (C/2) tanh(E/2T)
    root = scipy.optimize.brentq(lambda x: x - delta - c / 2 * math.tanh(x / (2 * temperature)),
                                 -0.05, 0.05)
    e = np.array([root, -root])
    jac = electron_spectrum(system, e, 0.0, temperature, 0.5, interaction_term="jacobian")
    bare = electron_spectrum(system, e, 0.0, temperature, 0.5)
    assert jac.n_positive == 1 and jac.n_zero == 1
    assert bare.n_positive == 0


def test_nn_estimate_is_eq_a2():
    n, xi = 100, 0.1
    x = np.linspace(-60, 0, 4001)
    side = math.sqrt(n) - 1     # the paper's L, which produces Eq. A2's factor
    k = (math.sqrt(n) + 1) / (math.sqrt(n) - 1)
    a2 = 2 * math.pi * xi**2 * np.abs(x) * k * np.exp(-math.pi * xi**2 * x**2 * k)
    np.testing.assert_allclose(nn_distance_estimate(x, n, xi, d=2, side=side), a2, rtol=1e-12)
    for d in (1, 2, 3):
        total = scipy.integrate.quad(lambda v: nn_distance_estimate(v, n, xi, d=d), -np.inf, 0)
        assert total[0] == pytest.approx(1.0, abs=1e-8)
    assert nn_distance_estimate(1.0, n, xi) == 0.0
