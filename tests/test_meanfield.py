"""Mean-field solver: fixed points, limits, monotone free energy, reference equality."""
import numpy as np
import pytest

from kmc import model

from kmc.solvers import meanfield
from kmc.systems import ElectronSystem, TLSSystem


def tls(n=120, d=3, W=1.0, J=1.0, seed=1, **kw):
    return TLSSystem.random(np.random.default_rng(seed), n, d, W=W, J=J, **kw)


def electron(n=120, d=2, W=1.0, J=1.0, filling=0.5, seed=1):
    return ElectronSystem.random(np.random.default_rng(seed), n, d, W=W, J=J, filling=filling)


def explicit_tls_map(x, bias, couplings, temperature):
    """Eq. 4 written out site by site, independent of kmc.model."""
    n = len(x)
    return np.array([bias[i] + 0.25 * sum(couplings[i, j] * np.tanh(x[j] / (2 * temperature))
                                          for j in range(n) if j != i) for i in range(n)])


def explicit_electron_map(x, eps, inter, filling, mu, temperature):
    n = len(x)
    f = 1.0 / (np.exp((x - mu) / temperature) + 1.0)
    return np.array([eps[i] + sum(inter[i, j] * (f[j] - filling) for j in range(n) if j != i)
                     for i in range(n)])


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("temperature", [0.05, 0.5])
def test_tls_fixed_point_residual_recomputed_independently(d, temperature):
    s = tls(80, d)
    r = meanfield.solve(s, temperature, tol=1e-11, rng=3)
    assert r.converged
    mapped = explicit_tls_map(r.fields, s.bias, s.couplings, temperature)
    # converged promises a fixed-point residual <= tol; recomputed here site by site
    assert np.max(np.abs(mapped - r.fields)) <= 1e-11 * (1 + 1e-6)
    assert r.residual <= 1e-11


@pytest.mark.parametrize("filling", [0.5, 0.3])
@pytest.mark.parametrize("temperature", [0.05, 0.3])
def test_electron_fixed_point_and_electron_count(filling, temperature):
    s = electron(80, filling=filling)
    r = meanfield.solve(s, temperature, tol=1e-11, rng=3)
    assert r.converged
    mapped = explicit_electron_map(r.fields, s.site_energies, s.interactions, s.filling,
                                   r.mu, temperature)
    assert np.max(np.abs(mapped - r.fields)) <= 1e-11 * (1 + 1e-6)
    count = np.sum(1.0 / (np.exp((r.fields - r.mu) / temperature) + 1.0))
    assert count == pytest.approx(s.n_electrons, abs=1e-9)


def brute_tls_energy(spins, bias, couplings):
    n = len(spins)
    e = sum(bias[i] * spins[i] for i in range(n))
    e -= 0.5 * sum(couplings[i, j] * spins[i] * spins[j] for i in range(n) for j in range(i + 1, n))
    return e


def test_tls_zero_temperature_field_is_single_flip_energy():
    s = tls(40, W=0.5, J=1.0, seed=7)
    r = meanfield.solve(s, 1e-7, tol=1e-12, rng=2)
    assert r.converged
    spins = -0.5 * np.sign(r.fields)
    base = brute_tls_energy(spins, s.bias, s.couplings)
    for i in range(s.n_sites):
        flipped = spins.copy()
        flipped[i] *= -1
        flip = brute_tls_energy(flipped, s.bias, s.couplings) - base
        assert flip == pytest.approx(abs(r.fields[i]), rel=1e-9, abs=1e-12)


def brute_electron_energy(n_occ, eps, inter, filling):
    q = n_occ - filling
    m = len(q)
    return sum(eps[i] * q[i] for i in range(m)) + sum(
        inter[i, j] * q[i] * q[j] for i in range(m) for j in range(i + 1, m))


def test_electron_zero_temperature_energy_is_single_occupation_change():
    s = electron(40, seed=5)
    r = meanfield.solve(s, 1e-7, tol=1e-12, rng=2)
    assert r.converged
    occ = (r.fields < r.mu).astype(float)
    assert occ.sum() == s.n_electrons
    base = brute_electron_energy(occ, s.site_energies, s.interactions, s.filling)
    for i in range(s.n_sites):
        changed = occ.copy()
        changed[i] = 1.0 - changed[i]
        cost = brute_electron_energy(changed, s.site_energies, s.interactions, s.filling) - base
        # adding an electron at empty i costs E_i, removing one from occupied i costs -E_i
        expected = r.fields[i] if occ[i] == 0 else -r.fields[i]
        assert cost == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_tls_no_interaction_gives_bare_distribution():
    systems = [tls(200, J=0.0, W=1.3, seed=s) for s in range(10)]
    fields = []
    for s in systems:
        r = meanfield.solve(s, 0.05, rng=1)
        np.testing.assert_array_equal(r.fields, s.bias)
        np.testing.assert_allclose(np.abs(r.energies), np.hypot(s.bias, s.delta0))
        fields.append(r.fields)
    from scipy import stats
    # the pooled Delta'_i must be Normal(0, W^2); a KS test at the 1e-3 level
    assert stats.kstest(np.concatenate(fields), "norm", args=(0.0, 1.3)).pvalue > 1e-3


def test_electron_no_interaction_gives_bare_distribution():
    from scipy import stats
    pooled = []
    for seed in range(10):
        s = electron(200, J=0.0, W=2.0, seed=seed)
        r = meanfield.solve(s, 0.05, rng=1)
        np.testing.assert_array_equal(r.fields, s.site_energies)
        pooled.append(r.fields)
    assert stats.kstest(np.concatenate(pooled), "uniform", args=(-1.0, 2.0)).pvalue > 1e-3


@pytest.mark.parametrize("kind", ["tls", "electron"])
def test_sequential_updates_never_increase_free_energy(kind):
    temperature = 0.05
    rng = np.random.default_rng(11)
    if kind == "tls":
        s = tls(150, W=0.3, J=1.0, seed=4)
        free = lambda x, mu: model.tls_mean_field_free_energy(x, s.bias, s.couplings, temperature)  # noqa: E731
        x = rng.uniform(-1, 1, s.n_sites)
    else:
        s = electron(150, W=0.3, seed=4)
        free = lambda x, mu: model.electron_mean_field_free_energy(  # noqa: E731
            x, s.site_energies, s.interactions, s.filling, mu, temperature)
        x = rng.uniform(-1, 1, s.n_sites)
    mu = 0.0
    values = [free(x, mu)]
    for _ in range(25):
        # one sweep at fixed mu (the grand potential is the Lyapunov function at fixed mu)
        r = meanfield.solve(s, temperature, max_sweeps=1, init=x, rng=rng, mu=mu)
        x = r.fields
        values.append(free(x, mu))
    steps = np.diff(values)
    # rounding of a sum of N^2 terms of order 1: 1e-10 absolute is far above it
    assert np.all(steps <= 1e-10), steps.max()
    assert values[-1] < values[0]


def test_jacobi_oscillates_where_gauss_seidel_converges():
    """Why the solver is sequential: simultaneous updates of Eq. 4 cycle at low T."""
    s = tls(150, W=0.3, J=1.0, seed=4)
    temperature = 0.01
    x = s.bias.copy()
    for _ in range(200):
        x = model.tls_mean_field_map(x, s.bias, s.couplings, temperature)
    jacobi_residual = np.max(np.abs(model.tls_mean_field_map(x, s.bias, s.couplings, temperature) - x))
    r = meanfield.solve(s, temperature, rng=1)
    assert r.converged and r.residual < 1e-7
    assert jacobi_residual > 1e-3


@pytest.mark.parametrize("kind", ["tls", "electron"])
def test_numba_kernel_equals_numpy_reference(kind):
    s = tls(90, seed=2) if kind == "tls" else electron(90, filling=0.4, seed=2)
    fast = meanfield.solve(s, 0.08, tol=1e-12, rng=5)
    slow = meanfield.solve_reference(s, 0.08, tol=1e-12, rng=5)
    assert fast.sweeps == slow.sweeps
    np.testing.assert_allclose(fast.fields, slow.fields, rtol=0, atol=1e-11)
    assert fast.mu == pytest.approx(slow.mu, abs=1e-11)


def test_anneal_ends_at_target_fixed_point():
    s = tls(100, seed=3)
    r = meanfield.solve(s, 0.05, anneal=(2.0, 1.0, 0.3), rng=1)
    assert r.converged and r.residual < 1e-7
    assert r.temperature == 0.05


def test_not_converged_is_reported():
    s = tls(100, seed=3)
    r = meanfield.solve(s, 0.05, max_sweeps=2, tol=1e-14, rng=1)
    assert not r.converged
    assert r.sweeps == 2
    assert r.residual > 1e-14


def test_float32_couplings_agree_with_float64():
    rng64, rng32 = np.random.default_rng(9), np.random.default_rng(9)
    s64 = TLSSystem.random(rng64, 400, dtype=np.float64)
    s32 = TLSSystem.random(rng32, 400, dtype=np.float32)
    a = meanfield.solve(s64, 0.05, rng=1)
    b = meanfield.solve(s32, 0.05, rng=1)
    # couplings rounded to float32 (relative 6e-8) shift each field by at most
    # 6e-8 * sum_j |J_ij| / 4 ~ 1e-7; the stated tolerance is 1e-5 J
    assert a.converged and b.converged
    assert np.max(np.abs(a.energies - b.energies)) < 1e-5


def test_one_fermi_function_with_precise_tails():
    """The solver's charges, its electron count and model.fermi are one function, and it
    keeps detailed balance f(x) / (1 - f(x)) = e^-x far into the tail, where
    0.5 (1 - tanh(x/2)) is exactly 0 (x > ~38)."""
    x = np.array([-700.0, -300.0, -60.0, -40.0, -1.0, 0.0, 1e-9, 2.5, 40.0, 60.0, 300.0, 700.0])
    f = model.fermi(x, 0.0, 1.0)
    np.testing.assert_allclose(f / model.fermi_holes(x, 0.0, 1.0), np.exp(-x), rtol=1e-13)
    charges = np.empty_like(x)
    meanfield._electron_charges(x, 0.0, 0.25, 1.0, charges)
    np.testing.assert_array_equal(charges, f - 0.25)
    assert meanfield._count(x, 0.0, 1.0) == pytest.approx(f.sum(), rel=1e-15)
