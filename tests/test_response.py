"""Linear response around the mean-field state (kmc.solvers.linear.response), the response
estimators (analysis.response) and one set of hop pairs for the electron glass."""
import numpy as np
import pytest

from kmc.dynamics.electron_engine import hop_pairs
from kmc.errors import ConfigError
from kmc.solvers import meanfield
from kmc.solvers.linear import electron as lin_el
from kmc.solvers.linear import response
from kmc.solvers.linear.tls import tls_rate_equation, tls_rate_matrix
from kmc.systems import ElectronSystem, TLSSystem


def tls_state(seed, n, temperature, **kw):
    system = TLSSystem.random(np.random.default_rng(seed), n, **kw)
    mf = meanfield.solve(system, temperature, tol=1e-12, rng=0)
    assert mf.converged
    return system, mf.fields


def electron_state(seed, n, temperature, **kw):
    system = ElectronSystem.random(np.random.default_rng(seed), n, **kw)
    mf = meanfield.solve(system, temperature, tol=1e-12, rng=0)
    assert mf.converged
    return system, mf


# --- the prediction -----------------------------------------------------------------------


@pytest.mark.parametrize("interactions", [True, False])
def test_tls_prediction_equals_matrix_exponential_reference(interactions):
    """The eigendecomposition path equals expm of the nonsymmetric B to 1e-10 (rounding of
    two different O(N^3) algorithms on a matrix with entries O(1), far below 1e-10)."""
    temperature = 0.3
    system, fields = tls_state(3, 14, temperature, delta0_min=1e-2, delta0_max=1e-1)
    lin = response.tls_linearization(system, fields, temperature, interactions=interactions)
    g = np.random.default_rng(4).standard_normal(14)
    times = np.logspace(-1, 5, 13)
    b = response.rate_matrix(lin, system, interactions=interactions)
    for t_w in (10.0, 1e3):
        fast = response.pulse_response(lin, g, times, t_w, strength=0.7)
        ref = 0.7 * response.reference_response(b, lin.rates * lin.susceptibility * g, g,
                                                times, t_w)
        np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-12 * np.max(np.abs(ref)))
        assert np.all(fast < 0)   # a bias along g lowers x along g (chi < 0)
        fast_t = response.temperature_step_response(lin, 0.01, times, t_w)
        ref_t = 0.01 * response.reference_response(
            b, lin.rates * lin.temperature_susceptibility, response.energy_weights(lin),
            times, t_w)
        np.testing.assert_allclose(fast_t, ref_t, rtol=1e-10,
                                   atol=1e-12 * np.max(np.abs(ref_t)))


def test_tls_well_matrix_and_drives_are_the_rate_equation_derivatives():
    """B in well variables is diag(s) B_sigma diag(s) (B_sigma tested as the Jacobian in
    test_linear_tls), and the pulse and temperature drives are the central-difference
    derivatives of Eq. 11 in the bias and in T (step 1e-6: error O(1e-12) relative)."""
    temperature = 0.3
    system, fields = tls_state(5, 10, temperature, delta0_min=1e-2, delta0_max=1e-1)
    lin = response.tls_linearization(system, fields, temperature)
    s = np.where(lin.fields >= 0, 1.0, -1.0)
    b_sigma = tls_rate_matrix(system, lin.fields, temperature)
    np.testing.assert_allclose(response.rate_matrix(lin, system), s[:, None] * b_sigma * s,
                               rtol=1e-13, atol=0)
    sigma0 = -np.tanh(np.hypot(lin.fields, system.delta0) / (2 * temperature))
    g = np.random.default_rng(6).standard_normal(10)
    h = 1e-6
    shifted = [TLSSystem.from_arrays(system.bias + k * h * g, system.delta0, system.couplings)
               for k in (1, -1)]
    fd = (tls_rate_equation(sigma0, shifted[0], s, temperature)
          - tls_rate_equation(sigma0, shifted[1], s, temperature)) / (2 * h)
    scale = np.max(np.abs(lin.rates))
    np.testing.assert_allclose(s * fd, lin.rates * lin.susceptibility * g, rtol=0,
                               atol=1e-8 * scale)
    np.testing.assert_allclose(lin.scale * response.field_drive(lin, g),
                               lin.rates * lin.susceptibility * g, rtol=1e-12, atol=0)
    fd_t = (tls_rate_equation(sigma0, system, s, temperature + h)
            - tls_rate_equation(sigma0, system, s, temperature - h)) / (2 * h)
    np.testing.assert_allclose(s * fd_t, lin.rates * lin.temperature_susceptibility,
                               rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(lin.scale * response.temperature_drive(lin),
                               lin.rates * lin.temperature_susceptibility, rtol=1e-12, atol=0)


def test_j0_prediction_is_exact_independent_tls_to_order_f_squared():
    """At J = 0 the prediction is the first-order term of the exact two-level solution:
    the difference is O(F^2), so halving F divides it by 4 (measured ratio within 3.5-4.5,
    the O(F^3) term moving it by ~F/T relative), and it is below 1e-2 of P.

    The expansion needs F |g_i| < |h_i| for every i: the well read-out x^eq(h) =
    -sgn(h) tanh(|E|/2T) jumps by 2 tanh(Delta0/2T) at h = 0 (module kmc.solvers.linear.tls),
    a step the linearization cannot see (docs/linear-response.md); F is chosen below that.
    """
    temperature = 0.5
    n = 30
    rng = np.random.default_rng(7)
    system = TLSSystem.from_arrays(rng.normal(0, 1, n), np.exp(rng.uniform(-5, -1, n)),
                                   np.zeros((n, n)))
    lin = response.tls_linearization(system, system.bias, temperature)
    g = rng.standard_normal(n)
    f_cross = np.min(np.abs(system.bias / g))
    times = np.logspace(-1, 6, 15)
    errors = []
    for f in (0.2 * f_cross, 0.1 * f_cross):
        pred = response.pulse_response(lin, g, times, 300.0, strength=f)
        exact = response.exact_independent_tls_pulse(system, system.bias, temperature, g, f,
                                                     times, 300.0)
        errors.append(np.max(np.abs(pred - exact)))
        assert errors[-1] < 1e-2 * np.max(np.abs(exact))
    assert 3.5 < errors[0] / errors[1] < 4.5
    # Past the first crossing the difference is first order in F (the step), not F^2.
    f = 2.0 * f_cross
    jump = response.exact_independent_tls_pulse(system, system.bias, temperature, g, f, times,
                                                 300.0)
    smooth = response.pulse_response(lin, g, times, 300.0, strength=f)
    assert np.max(np.abs(jump - smooth)) > 20 * (f / (0.1 * f_cross))**2 * errors[1]


def test_electron_prediction_equals_reference_with_pairs():
    """Electron glass, A restricted to the KMC's hop pairs: eigen path = expm reference,
    and the drive G g / T is the derivative of the mean-field master equation in eps."""
    temperature, xi = 0.3, 0.5
    system, mf = electron_state(8, 16, temperature)
    pairs, _ = hop_pairs(system.distances, 1.6)
    lin = response.electron_linearization(system, mf.fields, mf.mu, temperature, xi,
                                          pairs=pairs)
    assert lin.n_positive == 0
    a = response.rate_matrix(lin, system, xi=xi, pairs=pairs)
    d = lin.scale**2
    g = np.random.default_rng(9).standard_normal(16)
    times = np.logspace(-1, 4, 11)
    fast = response.pulse_response(lin, g, times, 30.0)
    ref = response.reference_response(a, a @ (d * g) / temperature, g, times, 30.0)
    np.testing.assert_allclose(fast, ref, rtol=1e-9, atol=1e-11 * np.max(np.abs(ref)))
    assert np.all(fast < 0)
    # The mean-field master equation dn_i/dt = sum_j [w_ji n_j (1 - n_i) - w_ij n_i (1 - n_j)]
    # on the pair set, at n = n0, differentiated in the energies E -> E + h g.
    mask = lin_el.pair_mask(16, pairs)

    def rhs(energies):
        n0 = lin_el.fermi_occupations(mf.fields, mf.mu, temperature)[0]
        w = lin_el.model.miller_abrahams_rates(energies[None, :] - energies[:, None],
                                               system.distances, xi, temperature)
        w = np.where(mask, w, 0.0)
        flow = n0[:, None] * (1 - n0[None, :]) * w
        return flow.sum(axis=0) - flow.sum(axis=1)

    # Richardson-extrapolated central differences (error O(h^4 / dE^5)): sites 1 and 4 are
    # a hop pair 4e-4 apart in energy, where n_B is steep; a plain central difference with
    # h = 1e-6 is off there by 5e-6 relative, the extrapolation by 1e-10 (rounding ~1e-9).
    def central(h):
        return (rhs(mf.fields + h * g) - rhs(mf.fields - h * g)) / (2 * h)

    fd = (4 * central(5e-7) - central(1e-6)) / 3
    drive = a @ (d * g) / temperature
    np.testing.assert_allclose(fd, drive, rtol=0, atol=1e-8 * np.max(np.abs(drive)))
    np.testing.assert_allclose(lin.scale * response.field_drive(lin, g), drive, rtol=0,
                               atol=1e-12 * np.max(np.abs(drive)))
    fast_t = response.temperature_step_response(lin, 1.0, times, 30.0)
    x = (mf.fields - mf.mu) / temperature
    ref_t = response.reference_response(a, -a @ (d * x) / temperature,
                                        response.energy_weights(lin), times, 30.0)
    np.testing.assert_allclose(fast_t, ref_t, rtol=1e-9, atol=1e-11 * np.max(np.abs(ref_t)))


# --- one set of hop pairs -----------------------------------------------------------------


def test_electron_pair_set_consistency():
    """With the KMC's pairs the rate matrix is the all-pairs one with the other pairs cut
    (zero there, equal on the pairs up to the diagonal), the symmetric path agrees with the
    general eigensolver on it, and a cut-off beyond every distance changes nothing."""
    temperature, xi = 0.3, 0.4
    system, mf = electron_state(10, 20, temperature)
    pairs, _ = hop_pairs(system.distances, 1.5)
    args = (system, mf.fields, mf.mu, temperature, xi)
    full = lin_el.electron_rate_matrix(*args)
    cut = lin_el.electron_rate_matrix(*args, pairs=pairs)
    mask = lin_el.pair_mask(20, pairs)
    assert 0 < mask.sum() < 20 * 19
    assert np.all(cut[~mask & ~np.eye(20, dtype=bool)] == 0.0)
    np.testing.assert_array_equal(cut[mask], full[mask])
    np.testing.assert_allclose(cut.sum(axis=0), 0.0, atol=1e-12 * np.abs(cut).max())
    spec = lin_el.electron_spectrum(*args, pairs=pairs)
    general = np.sort(-np.linalg.eigvals(cut).real)[1:]
    np.testing.assert_allclose(spec.rates, general, rtol=1e-8)
    assert not np.allclose(spec.rates, lin_el.electron_spectrum(*args).rates, rtol=1e-3)
    everything, _ = hop_pairs(system.distances, system.distances.max() + 1)
    np.testing.assert_array_equal(lin_el.electron_rate_matrix(*args, pairs=everything), full)


def test_hop_cutoff_check():
    """The issue's case (xi = 0.2, cut-off 1.5, t_max = 1e4: dropped rates 5.5e-4) is
    refused with one line naming dynamics.hop_cutoff; the default (xi = 0.1, cut-off 2)
    is accepted at t_max = 1e4 and refused at t_max = 1e12, where 2 r_nn is too short."""
    system = ElectronSystem.random(np.random.default_rng(11), 100)
    d = system.distances
    largest, site = lin_el.dropped_pair_rates(d, 1.5, 0.2)
    r_min = d[d > 1.5].min()
    assert largest == pytest.approx(np.exp(-r_min / 0.2), rel=1e-12)
    assert site >= largest
    with pytest.raises(ConfigError) as err:
        lin_el.check_hop_cutoff(d, 1.5, 0.2, 1e4)
    assert str(err.value).startswith("dynamics.hop_cutoff:") and "\n" not in str(err.value)
    expected = lin_el.check_hop_cutoff(d, 2.0, 0.1, 1e4)
    assert 0 < expected <= lin_el.HOP_CUTOFF_MARGIN
    with pytest.raises(ConfigError, match="dynamics.hop_cutoff"):
        lin_el.check_hop_cutoff(d, 2.0, 0.1, 1e12)
    assert lin_el.dropped_pair_rates(d, d.max(), 0.1) == (0.0, 0.0)
