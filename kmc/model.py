"""One definition of each model: Hamiltonians, local fields, mean-field maps and rates.

The mean-field solver, the linearized dynamics, the master equations and the kinetic Monte
Carlo all import these functions, so that they simulate one model (docs/model.md sections 1-2).

TLS glass, well occupations S_i = +-1/2 (each pair counted once)::

    H = sum_i Delta_i S_i - 1/2 sum_{i<j} J_ij S_i S_j
    h_i = dH/dS_i = Delta_i - 1/2 sum_j J_ij S_j                    (Eq. 3)
    Delta'_i = Delta_i + 1/4 sum_j J_ij tanh(Delta'_j / 2T)         (Eq. 4)

Electron glass, occupations n_i in {0, 1}, background charge K = M/N::

    H = sum_i eps_i (n_i - K) + sum_{i<j} C_ij (n_i - K)(n_j - K),  C_ij = e^2 / r_ij
    E_i = eps_i + sum_j C_ij (n_j - K)                               (Eq. 20)

The scalar functions (energy changes, field updates, rate factors, the Fermi function) are
numba-compiled and inlined, so the kinetic engines, the reference kernels, the static Monte
Carlo, the master equation and the mean-field solver all evaluate the same expressions, in
the same floating-point order; the array versions below them are the plain NumPy
definitions used everywhere else.
"""
import math

import numba
import numpy as np

from kmc.errors import ConfigError


def check_temperature(key, value):
    """The one check of a temperature argument: finite and > 0 (ConfigError naming ``key``).

    Signature (key, value) so that kmc.pipeline.config can use it as a field check.
    """
    if not value > 0:
        raise ConfigError(key, f"must be > 0, got {value}")
    if not math.isfinite(value):
        raise ConfigError(key, f"must be finite, got {value}")


def check_resonance_width(key, value):
    """The one check of a Miller-Abrahams resonance width: finite and >= 0 (ConfigError
    naming ``key``); returns it as a float."""
    if not (value >= 0 and math.isfinite(value)):
        raise ConfigError(key, f"must be >= 0 and finite, got {value!r}")
    return float(value)

# ---------------------------------------------------------------------------------------
# Scalar kernels (numba): energy changes and field updates
# ---------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def tls_flip_energy(spin, field):
    """dH = -2 S_i h_i of flipping S_i -> -S_i in its local field h_i (Eq. 3); scalars or
    arrays of equal shape."""
    return -2.0 * spin * field


@numba.njit(cache=True, inline="always")
def tls_field_update(field, coupling, spin_old):
    """h_j after TLS k flipped from S_k = ``spin_old``: h_j + J_jk S_k(old)."""
    return field + coupling * spin_old


@numba.njit(cache=True, inline="always")
def electron_hop_energy(site_energy_i, site_energy_j, interaction_ij):
    """dH of a hop from occupied i to empty j: E_j - E_i - C_ij (electron-hole attraction);
    scalars or arrays of equal shape."""
    return site_energy_j - site_energy_i - interaction_ij


@numba.njit(cache=True, inline="always")
def electron_energy_update(site_energy_m, interaction_jm, interaction_im):
    """E_m after a hop i -> j: E_m + C_jm - C_im (evaluated left to right)."""
    return site_energy_m + interaction_jm - interaction_im


@numba.njit(cache=True, inline="always")
def fermi_factor(x):
    """The Fermi function 1 / (e^x + 1) of x = (E - mu)/T; the one definition in the package.

    Full relative precision in both tails: f(x) and 1 - f(x) = fermi_factor(-x) are each
    within a few ulp, so f(x) / f(-x) = e^-x (detailed balance) holds to rounding, down to
    the underflow of e^-x near x ~ 709. (0.5 (1 - tanh(x/2)) is exactly 0 beyond x ~ 38.)
    Bitwise equal to scipy.special.expit(-x). e^x overflows to inf for x > 709.78, giving 0.
    """
    return 1.0 / (1.0 + math.exp(x))


@numba.vectorize(["float64(float64)"], cache=True)
def _fermi_ufunc(x):
    return fermi_factor(x)


# ---------------------------------------------------------------------------------------
# Scalar kernels (numba): phonon occupations and rates
# ---------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def bose_times_energy(energy, temperature):
    """E n_B(E) = E / (e^(E/T) - 1) for E >= 0, continuous at E = 0 (value T)."""
    if energy == 0.0:
        return temperature
    return energy / math.expm1(energy / temperature)


@numba.njit(cache=True, inline="always")
def tls_flip_rate_factor(splitting, temperature, upper):
    """State factor of the phonon flip rate of a TLS with splitting ``splitting`` = |E| (Eq. 10).

    The full rate is prefactor * factor with prefactor = a Delta0^2:
    emission (from the upper level) |E| (n_B + 1), absorption (from the lower) |E| n_B.
    """
    en = bose_times_energy(splitting, temperature)
    if upper:
        return en + splitting
    return en


@numba.njit(cache=True, inline="always")
def tls_flip_factor(delta_h, delta0_sq, temperature):
    """State factor g of the phonon flip of a TLS whose flip costs ``delta_h`` = -2 S_i h_i.

    |E| = sqrt(dH^2 + Delta0^2); emission (dH < 0, the TLS sits in its upper well) or
    absorption otherwise (Eq. 10). The full rate is a Delta0^2 * g.
    """
    return tls_flip_rate_factor(math.sqrt(delta_h * delta_h + delta0_sq), temperature,
                                delta_h < 0.0)


@numba.njit(cache=True, inline="always")
def miller_abrahams_factor(delta_h, temperature, width=0.0):
    """State factor n_B(|dH|) + Theta(-dH) of the Miller-Abrahams rate (Eq. 21).

    The full rate is Gamma0 e^(-r/xi) * factor. At dH = 0 the factor diverges, as the
    paper's form does. ``width`` w > 0 (``dynamics.resonance_width``, an approximation,
    off by default) rounds the divergence off with detailed balance kept exactly:
    e^(-dH/2T) / (2 sinh(s/2T)) with s = sqrt(dH^2 + w^2) instead of |dH|, the form the
    mean-field dynamics uses (kmc.dynamics.meanfield_dynamics._ma_factor); relative change
    O(w^2 / dH^2) for w << |dH| <~ T. With w = 0 the exact factor, unchanged.
    """
    if width > 0.0:
        s = math.sqrt(delta_h * delta_h + width * width)
        return math.exp(-(delta_h + s) / (2.0 * temperature)) / -math.expm1(-s / temperature)
    x = abs(delta_h)
    if x == 0.0:
        return math.inf
    nb = 1.0 / math.expm1(x / temperature)
    if delta_h < 0.0:
        return nb + 1.0
    return nb


def miller_abrahams_peak(temperature, width):
    """An upper bound of ``miller_abrahams_factor(dH, T, w)`` over every dH (inf for w = 0).

    For dH >= 0 the factor falls from 1 / (2 sinh(w/2T)) at dH = 0; for dH = -y < 0 it is
    e^((y - s)/2T) / (1 - e^(-s/T)), which rises from the same value to a maximum near
    y = w^2 / 2T (for w << T) and tends to 1 as y grows. The maximum is located on a grid of
    y (up to 200 T, where the factor is within e^-100 of its limit 1) and refined by golden
    section; the result carries a relative margin of 1e-6 (tests check the bound on dense
    samples).
    """
    if not width > 0.0:
        return math.inf
    t = float(temperature)
    w = float(width)

    def f(y):
        return miller_abrahams_factor(-y, t, w)

    grid = np.concatenate([[0.0], np.geomspace(1e-6 * min(w * w / t, w), 200.0 * t, 4000)])
    values = np.array([f(y) for y in grid])
    k = int(np.argmax(values))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(200):
        a = hi - golden * (hi - lo)
        b = lo + golden * (hi - lo)
        if f(a) < f(b):
            lo = a
        else:
            hi = b
    best = max(float(values.max()), f(lo), f(hi), f(0.5 * (lo + hi)), 1.0)
    return best * (1.0 + 1e-6)


@numba.njit(cache=True, inline="always")
def electron_pair_factor(occ, energies, a, b, interaction_ab, temperature, width=0.0):
    """Miller-Abrahams factor of the hop of pair (a, b) from its occupied to its empty site
    (dH from electron_hop_energy); 0 if both are occupied or both empty. ``width``: the
    resonance width of miller_abrahams_factor (0: exact)."""
    if occ[a] == occ[b]:
        return 0.0
    if occ[a] == 1:
        delta_h = electron_hop_energy(energies[a], energies[b], interaction_ab)
    else:
        delta_h = electron_hop_energy(energies[b], energies[a], interaction_ab)
    return miller_abrahams_factor(delta_h, temperature, width)


# ---------------------------------------------------------------------------------------
# TLS glass (NumPy)
# ---------------------------------------------------------------------------------------


def tls_energy(spins, bias, couplings):
    """Energy H of well occupations ``spins`` (values +-1/2); each pair counted once."""
    spins = np.asarray(spins, dtype=float)
    return float(bias @ spins - 0.25 * spins @ (couplings @ spins))


def tls_local_fields(spins, bias, couplings):
    """h_i = Delta_i - 1/2 sum_j J_ij S_j, the energy change per unit S_i (Eq. 3)."""
    return bias - 0.5 * (couplings @ np.asarray(spins, dtype=float))


def tls_mean_field_map(fields, bias, couplings, temperature):
    """Right-hand side of Eq. 4: Delta_i + 1/4 sum_j J_ij tanh(Delta'_j / 2T)."""
    return bias + 0.25 * (couplings @ np.tanh(fields / (2.0 * temperature)))


def tls_mean_spins(fields, temperature):
    """Thermal <S_i> = -tanh(Delta'_i / 2T) / 2 in the mean field Delta'."""
    return -0.5 * np.tanh(fields / (2.0 * temperature))


def tls_signed_energies(fields, delta0):
    """E_i = sgn(Delta'_i) sqrt(Delta'_i^2 + Delta0_i^2) (Eq. 6)."""
    return np.where(fields >= 0.0, 1.0, -1.0) * np.hypot(fields, delta0)


def tls_relaxation_rates(splittings, delta0, temperature, a=1.0):
    """lambda_i = a Delta0^2 |E| coth(|E| / 2T) = w_up + w_dn (Eq. 12), positive."""
    e = np.abs(splittings)
    return a * delta0**2 * (2.0 * _bose_times_energy(e, temperature) + e)


def tls_up_down_rates(splittings, delta0, temperature, a=1.0):
    """(w_up, w_dn): absorption a Delta0^2 |E| n_B and emission a Delta0^2 |E| (n_B + 1)."""
    e = np.abs(splittings)
    up = a * delta0**2 * _bose_times_energy(e, temperature)
    return up, up + a * delta0**2 * e


def tls_mean_field_free_energy(fields, bias, couplings, temperature):
    """F = <H>_MF - T S_MF of independent spins with <S_i> = -tanh(Delta'_i/2T)/2.

    Each single-site update of Eq. 4 minimises F over that site's mean spin with the others
    fixed (the self-coupling is zero), so sequential updates never increase F.
    """
    m = tls_mean_spins(fields, temperature)
    p_up = np.clip(0.5 + m, 0.0, 1.0)
    p_dn = np.clip(0.5 - m, 0.0, 1.0)
    entropy = -np.sum(_xlogx(p_up) + _xlogx(p_dn))
    return float(bias @ m - 0.25 * m @ (couplings @ m) - temperature * entropy)


# ---------------------------------------------------------------------------------------
# Electron glass (NumPy)
# ---------------------------------------------------------------------------------------


def electron_energy(occupations, site_energies, interactions, filling):
    """Energy H of occupations ``n`` (0/1); each pair counted once (Eq. 19)."""
    q = np.asarray(occupations, dtype=float) - filling
    return float(site_energies @ q + 0.5 * q @ (interactions @ q))


def electron_site_energies(occupations, site_energies, interactions, filling):
    """E_i = eps_i + sum_j C_ij (n_j - K): energy of adding an electron at empty site i."""
    q = np.asarray(occupations, dtype=float) - filling
    return site_energies + interactions @ q


def fermi(energies, mu, temperature):
    """Fermi occupations f(E_i) = 1 / (e^((E_i - mu)/T) + 1), elementwise (fermi_factor).

    Full relative precision in both tails (see fermi_factor); 0.5 (1 - tanh) would be
    exactly 0 beyond E - mu ~ 38 T, which breaks detailed balance of rates built from
    occupations. For 1 - f(E_i) to the same precision use :func:`fermi_holes`.
    """
    x = (np.asarray(energies, dtype=float) - mu) / temperature
    with np.errstate(over="ignore"):  # e^x = inf for x > 709.78 gives f = 0, as it should
        return _fermi_ufunc(x)


def fermi_holes(energies, mu, temperature):
    """1 - f(E_i) = f evaluated at -(E_i - mu), to full relative precision."""
    x = (np.asarray(energies, dtype=float) - mu) / temperature
    with np.errstate(over="ignore"):
        return _fermi_ufunc(-x)


def electron_mean_field_map(energies, site_energies, interactions, filling, mu, temperature):
    """Right-hand side of Eq. 20: eps_i + sum_j C_ij (f(E_j) - K)."""
    return site_energies + interactions @ (fermi(energies, mu, temperature) - filling)


def electron_mean_field_free_energy(energies, site_energies, interactions, filling, mu,
                                    temperature):
    """Grand potential <H>_MF - T S_MF - mu sum_i f_i of independent occupations f(E_i)."""
    f = fermi(energies, mu, temperature)
    q = f - filling
    entropy = -np.sum(_xlogx(f) + _xlogx(1.0 - f))
    return float(site_energies @ q + 0.5 * q @ (interactions @ q) - temperature * entropy
                 - mu * f.sum())


def miller_abrahams_rates(delta_h, distances, xi, temperature, gamma0=1.0):
    """gamma = Gamma0 e^(-r/xi) [n_B(|dH|) + Theta(-dH)] (Eq. 21), elementwise."""
    x = np.abs(delta_h)
    with np.errstate(divide="ignore", over="ignore"):
        nb = 1.0 / np.expm1(x / temperature)
    return gamma0 * np.exp(-np.asarray(distances) / xi) * (nb + (delta_h < 0.0))


# ---------------------------------------------------------------------------------------


def _bose_times_energy(energy, temperature):
    energy = np.asarray(energy, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = energy / np.expm1(energy / temperature)
    return np.where(energy == 0.0, temperature, out)


def _xlogx(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0.0, p * np.log(np.where(p > 0.0, p, 1.0)), 0.0)
