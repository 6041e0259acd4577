"""Linearized TLS dynamics: rates of Eq. 12, the matrix B of Appendix B and its spectrum."""
import numpy as np
import pytest
import scipy.optimize

from kmc.solvers import meanfield
from kmc.solvers.linear import (tls_rate_equation, tls_rate_fixed_point, tls_rate_matrix, tls_rates,
                        tls_spectrum)
from kmc.systems import TLSSystem


def eq4_fields(system, temperature):
    """Eq. 4 solution from the mean-field solver, checked converged."""
    result = meanfield.solve(system, temperature, tol=1e-12, rng=0)
    assert result.converged and result.residual < 1e-10
    return result.fields


def make_system(seed, n, **kw):
    return TLSSystem.random(np.random.default_rng(seed), n, **kw)


def test_rates_are_eq12():
    system = make_system(0, 20)
    fields = np.linspace(-1.0, 1.0, 20)
    temperature = 0.2
    e = np.hypot(fields, system.delta0)
    expected = 2.5 * system.delta0**2 * e / np.tanh(e / (2 * temperature))
    np.testing.assert_allclose(tls_rates(system, fields, temperature, a=2.5), expected,
                               rtol=1e-13)


def test_fixed_point_is_stationary_and_close_to_eq4():
    """The refined fields make F(sigma0) = 0 and move Eq. 4 only at O(Delta0^2)."""
    system = make_system(1, 12, delta0_min=1e-2, delta0_max=1e-1)
    temperature = 0.4
    x4 = eq4_fields(system, temperature)
    fp = tls_rate_fixed_point(system, x4, temperature)
    assert fp.converged and fp.residual < 1e-12
    assert 0.0 < fp.shift < np.max(system.delta0) ** 2 / temperature
    rhs = tls_rate_equation(fp.sigma0, system, np.sign(fp.fields), temperature)
    scale = np.max(tls_rates(system, fp.fields, temperature))
    assert np.max(np.abs(rhs)) < 1e-12 * scale


@pytest.mark.parametrize("seed", [2, 3])
def test_matrix_is_finite_difference_jacobian(seed):
    """B equals the central-difference Jacobian of Eq. 11 at the fixed point to 1e-6.

    The error of a central difference with step h = 1e-5 is O(h^2) ~ 1e-10 relative plus
    rounding eps |F| / h ~ 1e-11; 1e-6 leaves margin. Rows scale with a Delta0_i^2, so the
    error is measured relative to the largest element of each row; the coupling is strong
    enough (T = 0.3 J) that f is a sizeable part of B, so a wrong factor or sign in f fails.
    """
    system = make_system(seed, 10, delta0_min=1e-2, delta0_max=1e-1)
    temperature = 0.3
    fp = tls_rate_fixed_point(system, eq4_fields(system, temperature), temperature)
    signs = np.where(fp.fields >= 0, 1.0, -1.0)
    b = tls_rate_matrix(system, fp.fields, temperature, a=1.7)
    h = 1e-5
    fd = np.empty_like(b)
    for j in range(system.n_sites):
        step = np.zeros(system.n_sites)
        step[j] = h
        fd[:, j] = (tls_rate_equation(fp.sigma0 + step, system, signs, temperature, a=1.7)
                    - tls_rate_equation(fp.sigma0 - step, system, signs, temperature, a=1.7)
                    ) / (2 * h)
    row_scale = np.max(np.abs(b), axis=1, keepdims=True)
    assert np.max(np.abs(b - fd) / row_scale) < 1e-6
    off = b - np.diag(np.diag(b))
    assert np.max(np.abs(off) / row_scale) > 1e-2   # the interaction term is tested, not ~0


def test_zero_coupling_eigenvalues_are_rates():
    """With J = 0, B = -diag(lambda): every eigensolver path returns exactly lambda_i."""
    system = make_system(4, 40, J=0.0)
    fields = system.bias
    lam = np.sort(tls_rates(system, fields, 0.1))
    for method in ("symmetric", "accurate", "general"):
        res = tls_spectrum(system, fields, 0.1, method=method)
        np.testing.assert_allclose(res.rates, lam, rtol=1e-12)
        assert res.n_positive == 0
    np.testing.assert_allclose(tls_spectrum(system, fields, 0.1, interactions=False).rates,
                               lam, rtol=1e-14)   # J = 0: the refinement changes nothing


def test_symmetric_path_equals_general_eigensolver():
    """The symmetrization is a similarity: same eigenvalues as geev on B (strong coupling)."""
    system = make_system(5, 60, delta0_min=1e-2, delta0_max=1e-1)
    temperature = 0.3
    fields = eq4_fields(system, temperature)
    sym = tls_spectrum(system, fields, temperature, method="symmetric")
    gen = tls_spectrum(system, fields, temperature, method="general")
    acc = tls_spectrum(system, fields, temperature, method="accurate")
    assert gen.max_imag < 1e-10 * np.max(gen.rates)
    np.testing.assert_allclose(sym.rates, gen.rates, rtol=1e-8)
    np.testing.assert_allclose(acc.rates, gen.rates, rtol=1e-8)
    assert sym.n_positive == 0 and sym.fixed_point.converged
    # and the interaction term changes them (otherwise the comparison tests nothing)
    bare = tls_spectrum(system, fields, temperature, interactions=False)
    np.testing.assert_allclose(bare.rates, np.sort(tls_rates(system, sym.fixed_point.fields,
                                                             temperature)), rtol=1e-14)
    assert np.max(np.abs(bare.rates - sym.rates) / sym.rates) > 1e-3


def test_graded_spectrum_has_high_relative_accuracy():
    """With Delta0 over six decades the rates span twelve; the default (graded syevd) path
    must keep the smallest ones to 1e-8 relative, as the Jacobi-SVD reference does.
    Unordered syevd loses ~1e-3 here, which would swamp the with/without-f comparison."""
    system = make_system(6, 200)
    temperature = 0.2
    fields = eq4_fields(system, temperature)
    sym = tls_spectrum(system, fields, temperature, method="symmetric")
    acc = tls_spectrum(system, fields, temperature, method="accurate")
    assert acc.method == "accurate"
    # regression: the refinement must converge on realistic instances (an underflow turned
    # into an error once made it return the unrefined fields at T = 0.1-0.2)
    assert sym.fixed_point.converged and sym.fixed_point.iterations > 0
    assert sym.fixed_point.residual < 1e-13 and sym.fixed_point.shift > 0
    assert np.max(acc.rates) / np.min(acc.rates) > 1e9
    np.testing.assert_allclose(sym.rates, acc.rates, rtol=1e-8)


def test_unstable_fixed_point_is_flagged():
    """Two TLSs with a strong ferromagnetic coupling (J/4 = 2, T = 0.2) and equal biases
    Delta = -0.4 have three symmetric fixed points x = Delta + 2 tanh(|E(x)|/2T); the middle
    one (x ~ 0.15, where the map's slope exceeds 1) is a saddle of the mean-field free
    energy, and B must have exactly one positive eigenvalue there (the symmetric mode)."""
    bias, d0, temperature = -0.4, 0.05, 0.2
    system = TLSSystem.from_arrays([bias, bias], [d0, d0], [[0.0, 8.0], [8.0, 0.0]])
    middle = scipy.optimize.brentq(
        lambda x: x - bias - 2.0 * np.tanh(np.hypot(x, d0) / (2 * temperature)), 0.05, 0.3)
    fields = np.array([middle, middle])
    fp = tls_rate_fixed_point(system, fields, temperature)
    assert fp.converged and fp.shift < 1e-12      # it is a fixed point of the rate equation
    sym = tls_spectrum(system, fields, temperature, method="symmetric")
    gen = tls_spectrum(system, fields, temperature, method="general")
    acc = tls_spectrum(system, fields, temperature, method="accurate")   # falls back
    assert sym.n_positive == gen.n_positive == acc.n_positive == 1
    assert acc.method == "symmetric"
    np.testing.assert_allclose(sym.eigenvalues, gen.eigenvalues, rtol=1e-10)
    # the ordered fixed point x ~ 1.6 is stable
    upper = scipy.optimize.brentq(
        lambda x: x - bias - 2.0 * np.tanh(np.hypot(x, d0) / (2 * temperature)), 1.0, 3.0)
    assert tls_spectrum(system, np.array([upper, upper]), temperature).n_positive == 0
