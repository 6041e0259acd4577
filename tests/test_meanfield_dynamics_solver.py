"""The step and factorization bookkeeping of the mean-field integrator (``_BDF`` in
kmc.dynamics.meanfield_dynamics): every option changes how the implicit BDF equations
are solved, never which equations, so each is held to scipy's own BDF with the dense LU of
the whole Newton matrix (row_drop = 0, the reference) on quenches that cross many field
zeros (TLS) or hop resonances (electron).

Tolerance: 1e-6 absolute at rtol = 1e-8, atol = 1e-11, i.e. 100 rtol, the bound the
row-sparse Newton matrix is held to in tests/test_meanfield_dynamics.py (the global error
of these kinked trajectories exceeds the local tolerance; docs/meanfield-dynamics.md).
"""

import numpy as np
import pytest

from kmc.dynamics.electron_engine import hop_pairs, pair_prefactors
from kmc.dynamics.meanfield_dynamics import (ElectronMeanField, TLSMeanField, _ma_factor,
                                             _ma_factor_pair, integrate)
from kmc.errors import ConfigError
from kmc.systems import ElectronSystem, TLSSystem

TOL = dict(rtol=1e-8, atol=1e-11)
SCIPY = dict(hold=1.0, lu_reuse=0.0, jac_refresh=False, newton_maxiter=4)
VARIANTS = {
    "hold": dict(SCIPY, hold=1.5),
    "jac_refresh": dict(SCIPY, jac_refresh=True),
    "lu_reuse": dict(SCIPY, lu_reuse=0.5, newton_maxiter=8),
    "all": dict(hold=1.5, lu_reuse=1.0, jac_refresh=True, newton_maxiter=10),
    "default": {},
}


def tls_case():
    system = TLSSystem.random(np.random.default_rng(14), 80, J=1.0, delta0_min=1e-5)
    model = TLSMeanField(system, 0.1, system.delta0**2)
    m0 = np.random.default_rng(15).choice([-1.0, 1.0], 80)
    return model, m0, np.logspace(0, 10, 21)


def electron_case():
    system = ElectronSystem.random(np.random.default_rng(11), 40, W=1.0)
    pairs, r = hop_pairs(system.distances, 2.0)
    model = ElectronMeanField(system, 0.2, pairs, pair_prefactors(r, 0.2),
                              resonance_width=1e-2)
    rng = np.random.default_rng(18)
    n0 = np.zeros(40)
    n0[rng.permutation(40)[:system.n_electrons]] = 1.0
    return model, n0, np.logspace(-2, 10, 25)


@pytest.fixture(scope="module")
def references():
    """scipy's BDF with the dense LU of the whole Newton matrix, per model."""
    out = {}
    for name, case in (("tls", tls_case), ("electron", electron_case)):
        model, x0, times = case()
        ref = integrate(model, x0, times, row_drop=0.0, **SCIPY, **TOL)
        assert ref.success
        out[name] = (model, x0, times, ref)
    return out


# ``hold`` alone is not a TLS default: on this quench it lands 1.1e-6 from the dense
# reference and 1.3e-6 from an rtol = 1e-11 solution (the reference's own error is 4.9e-7;
# docs/meanfield-dynamics.md), outside the bound, so it is held to it on the electron only
CASES = [(name, variant) for name in ("tls", "electron") for variant in sorted(VARIANTS)
         if (name, variant) != ("tls", "hold")]


@pytest.mark.parametrize("name,variant", CASES)
def test_bookkeeping_options_equal_dense_scipy_bdf(references, name, variant):
    model, x0, times, ref = references[name]
    traj = integrate(model, x0, times, **VARIANTS[variant], **TOL)
    assert traj.success
    assert np.max(np.abs(traj.states - ref.states)) < 1e-6
    assert np.max(np.abs(traj.states[-1] - x0)) > 0.5          # it did relax
    if name == "electron":
        assert np.max(np.abs(traj.states.sum(axis=1) - x0.sum())) < 1e-9


def test_reuse_options_save_factorizations_and_jacobians(references):
    """Counts, not times: on the electron quench the reused factorization and the held
    step size need fewer LUs than scipy's rules, and the TLS glass re-evaluating its
    (cheap) Jacobian at every factorization fewer right-hand sides (fewer failed
    Newton iterations)."""
    model, x0, times, _ = references["electron"]
    base = integrate(model, x0, times, **SCIPY, **TOL)
    reuse = integrate(model, x0, times, **VARIANTS["all"], **TOL)
    assert reuse.nlu < base.nlu
    model, x0, times, _ = references["tls"]
    base = integrate(model, x0, times, **SCIPY, **TOL)
    fresh = integrate(model, x0, times, **VARIANTS["jac_refresh"], **TOL)
    assert fresh.nfev < base.nfev


def test_scaled_increment_solves_the_mismatched_newton_system():
    """With the factorization of I - c0 J, the scaled increment 2 / (1 + c/c0) M^-1 r
    iterated as in the Newton loop converges to (I - c J)^-1 r (contraction
    |c - c0| / (c + c0) on a symmetric negative definite J)."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(30, 30)))
    jac = -(q * np.logspace(-3, 3, 30)) @ q.T
    r = rng.normal(size=30)
    for c, c0 in ((1.0, 1.5), (2.0, 1.0), (1.0, 1.0)):
        m = np.eye(30) - c0 * jac
        a = np.eye(30) - c * jac
        x = np.zeros(30)
        for _ in range(40):
            x += 2.0 / (1.0 + c / c0) * np.linalg.solve(m, r - a @ x)
        np.testing.assert_allclose(x, np.linalg.solve(a, r), rtol=1e-10, atol=1e-12)


def test_tls_field_cache_is_not_stale():
    model, m0, _ = tls_case()
    fresh = TLSMeanField(model.system, 0.1, model.prefactors)
    other = -m0
    for m in (m0, other, m0, m0 * 0.5):
        model.jacobian_factors(m)
        np.testing.assert_array_equal(model.rhs(m), fresh.rhs(m.copy()))
    m = m0.copy()
    model.rhs(m)
    m[3] = 0.0                              # changed in place, as BDF's Newton loop does
    np.testing.assert_array_equal(model.rhs(m), fresh.rhs(m.copy()))


def test_bad_bookkeeping_options_name_the_key():
    model, m0, times = tls_case()
    for key, value in (("hold", 0.5), ("lu_reuse", -1.0), ("newton_maxiter", 1)):
        with pytest.raises(ConfigError, match=key):
            integrate(model, m0, times, **{key: value})


def test_pair_miller_abrahams_factor_is_two_single_calls():
    """The shared evaluation of both hop directions (``_ma_factor_pair``) is bitwise the
    two calls of ``_ma_factor`` it replaces, with and without the resonance width."""
    x = np.concatenate([np.linspace(-2.0, 2.0, 401), [0.0, 1e-12, -1e-12, 50.0, -50.0]])
    for width in (0.0, 1e-2):
        g, g_rev, dg, dg_rev = _ma_factor_pair(x, 0.1, width)
        for got, want in zip((g, dg, g_rev, dg_rev),
                             (*_ma_factor(x, 0.1, width), *_ma_factor(-x, 0.1, width))):
            np.testing.assert_array_equal(got, want)
        assert _ma_factor_pair(x, 0.1, width, derivative=False)[2] is None
