"""Self-consistent mean-field energies of both models (Eqs. 4 and 20).

Random-order sequential (Gauss-Seidel) updates: each site's field is recomputed from the
current values of all the others and replaces its old value at once. Every single-site
update minimises the mean-field free energy over that site (``kmc.model`` says why), so the
iteration cannot oscillate the way simultaneous (Jacobi) updates do at low T.

Convergence: sweeps stop when the largest |change| of a field in one sweep is below
``tol`` and the fixed-point residual max_i |x_i - map(x)_i|, recomputed from the
definitions in ``kmc.model``, is below ``tol`` too (within ``max_sweeps``). A solution that does not converge is returned with
``converged=False``; callers record it, never silently keep it.
"""
import math
from dataclasses import dataclass

import numba
import numpy as np

from kmc import model
from kmc.errors import ConfigError
from kmc.seeding import as_generator
from kmc.systems import ElectronSystem, TLSSystem


@dataclass(frozen=True)
class MeanFieldResult:
    """Solution of the self-consistent equations for one realization.

    fields : (N,) float, units of J
        TLS: the mean-field asymmetries Delta'_i (Eq. 4); electron glass: the site
        energies E_i (Eq. 20).
    energies : (N,) float, units of J
        TLS: signed excitation energies E_i = sgn(Delta') sqrt(Delta'^2 + Delta0^2) (Eq. 6);
        electron glass: E_i - mu, the energies measured from the chemical potential.
    mu : float
        Chemical potential (electron glass; 0 for the TLS glass).
    converged, sweeps, residual
        Status: converged means the recomputed fixed-point residual max |x - map(x)| is
        <= tol; sweeps used (all stages of an anneal); the residual itself.
    """

    fields: np.ndarray
    energies: np.ndarray
    mu: float
    temperature: float
    converged: bool
    sweeps: int
    residual: float


def solve(system, temperature, *, tol=1e-10, max_sweeps=10_000, rng=None, init="bare",
          anneal=(), mu=None):
    """Solve the mean-field equations of ``system`` at ``temperature``.

    Parameters
    ----------
    system : TLSSystem or ElectronSystem
    temperature : float, > 0, units of J
    tol : float
        Convergence threshold on the largest change of a field in one sweep.
    max_sweeps : int
        Sweeps allowed at each temperature of the schedule.
    rng : None, int, SeedSequence or Generator
        Random sweep order (and the random initial state with ``init="random"``).
    init : "bare", "random" or (N,) array
        Start from the bare energies (Delta_i or eps_i), from values uniform in
        [-w, w] (w the largest bare |energy|), or from given fields.
    anneal : sequence of float
        Temperatures visited before ``temperature`` (heat then cool, e.g. (2, 1, 0.5));
        each stage starts from the previous stage's solution.
    mu : float or None
        Electron glass only: fixed chemical potential; None fixes it by the electron
        count, sum_i f(E_i) = M.

    Returns
    -------
    MeanFieldResult
    """
    model.check_temperature("temperature", temperature)
    rng = as_generator(rng)
    fields = _initial_fields(system, init, rng)
    schedule = [float(t) for t in anneal] + [float(temperature)]
    order = np.arange(system.n_sites)
    total = 0
    converged = False
    mu_value = 0.0 if mu is None else float(mu)
    for stage, stage_t in enumerate(schedule):
        final = stage == len(schedule) - 1
        budget = max_sweeps
        while True:
            if isinstance(system, TLSSystem):
                sweeps, converged = _tls_gauss_seidel(system.couplings, system.bias, fields,
                                                      stage_t, tol, budget, order, rng)
            else:
                sweeps, converged, mu_value = _electron_gauss_seidel(
                    system.interactions, system.site_energies, fields, system.filling,
                    system.n_electrons, stage_t, tol, budget, order, rng, mu is None,
                    mu_value)
            total += sweeps
            budget -= sweeps
            if not (final and converged):
                break
            # a sweep's largest change bounds the residual only up to a contraction
            # factor: keep sweeping until the recomputed residual itself is below tol
            if residual(system, fields, stage_t, mu_value) <= tol:
                break
            if budget <= 0:
                converged = False
                break
    return _result(system, fields, mu_value, temperature, converged, total)


def residual(system, fields, temperature, mu=0.0):
    """Fixed-point residual max_i |x_i - map(x)_i|, from the definitions in kmc.model."""
    if isinstance(system, TLSSystem):
        mapped = model.tls_mean_field_map(fields, system.bias, system.couplings, temperature)
    else:
        mapped = model.electron_mean_field_map(fields, system.site_energies,
                                               system.interactions, system.filling, mu,
                                               temperature)
    return float(np.max(np.abs(fields - mapped)))


def solve_reference(system, temperature, *, tol=1e-10, max_sweeps=10_000, rng=None,
                    init="bare", mu=None):
    """Slow, obviously-correct Gauss-Seidel in NumPy; same sweep order as ``solve``.

    Kept beside the numba kernels so a test can hold them equal.
    """
    rng = as_generator(rng)
    x = _initial_fields(system, init, rng)
    n = system.n_sites
    order = np.arange(n)
    t2 = 2.0 * temperature
    electron = isinstance(system, ElectronSystem)
    mu_value = 0.0 if mu is None else float(mu)
    if electron and mu is None:
        mu_value = chemical_potential(x, system.n_electrons, temperature)
    converged = False
    # each site's tanh (TLS) or charge f - K (electron) as of its last update
    if electron:
        state = model.fermi(x, mu_value, temperature) - system.filling
    else:
        state = np.tanh(x / t2)
    for sweep in range(1, max_sweeps + 1):
        _shuffle_reference(order, rng)
        change = 0.0
        for i in order:
            if electron:
                new = system.site_energies[i] + system.interactions[i] @ state
                state[i] = model.fermi(new, mu_value, temperature) - system.filling
            else:
                new = system.bias[i] + 0.25 * system.couplings[i] @ state
                state[i] = np.tanh(new / t2)
            change = max(change, abs(new - x[i]))
            x[i] = new
        if electron and mu is None:
            new_mu = chemical_potential(x, system.n_electrons, temperature)
            change = max(change, abs(new_mu - mu_value))
            mu_value = new_mu
        if change < tol:
            converged = True
            break
    return _result(system, x, mu_value, temperature, converged, sweep)


def chemical_potential(energies, n_electrons, temperature):
    """mu such that sum_i f(E_i; mu) = n_electrons (bisection; exact midpoint at T -> 0)."""
    return _chemical_potential(np.ascontiguousarray(energies, dtype=np.float64),
                               float(n_electrons), float(temperature))


def _result(system, fields, mu_value, temperature, converged, sweeps):
    if isinstance(system, TLSSystem):
        energies = model.tls_signed_energies(fields, system.delta0)
    else:
        energies = fields - mu_value
    return MeanFieldResult(fields=fields, energies=energies, mu=float(mu_value),
                           temperature=float(temperature), converged=bool(converged),
                           sweeps=int(sweeps),
                           residual=residual(system, fields, temperature, mu_value))


def _initial_fields(system, init, rng):
    bare = system.bias if isinstance(system, TLSSystem) else system.site_energies
    if isinstance(init, str):
        if init == "bare":
            return np.array(bare, dtype=np.float64)
        if init == "random":
            width = float(np.max(np.abs(bare))) or 1.0
            return rng.uniform(-width, width, system.n_sites)
        raise ConfigError("solver.init", f"expected 'bare', 'random' or an array, got {init!r}")
    fields = np.array(init, dtype=np.float64)
    if fields.shape != (system.n_sites,):
        raise ConfigError("solver.init", f"expected shape ({system.n_sites},), got {fields.shape}")
    return fields


def _shuffle_reference(order, rng):
    # Fisher-Yates with the same draws as the numba kernel's _shuffle
    for k in range(order.shape[0] - 1, 0, -1):
        j = int(rng.integers(0, k + 1))
        order[k], order[j] = order[j], order[k]


@numba.njit(cache=True)
def _shuffle(order, rng):
    for k in range(order.shape[0] - 1, 0, -1):
        j = rng.integers(0, k + 1)
        tmp = order[k]
        order[k] = order[j]
        order[j] = tmp


@numba.njit(cache=True)
def _base_plus_matvec(base, matrix, scale, vector, out):
    """out = base + scale * matrix @ vector, accumulated in float64 whatever the matrix dtype."""
    for i in range(base.shape[0]):
        row = matrix[i]
        acc = 0.0
        for j in range(vector.shape[0]):
            acc += row[j] * vector[j]
        out[i] = base[i] + scale * acc


@numba.njit(cache=True, fastmath=True)
def _push(fields, row, scale):
    # fastmath only lets LLVM vectorize this axpy (one fused multiply-add per element);
    # it is the memory-bound inner loop of the solver (~1.35x at N = 10000)
    for j in range(fields.shape[0]):
        fields[j] += scale * row[j]


@numba.njit(cache=True)
def _tls_gauss_seidel(couplings, bias, fields, temperature, tol, max_sweeps, order, rng):
    """In place: Delta'_i <- Delta_i + 1/4 sum_j J_ij tanh(Delta'_j/2T), random order.

    "Push" form of Gauss-Seidel: ``current`` holds the right-hand side of every site with
    the latest spins, so updating site i is reading current[i]; when its tanh changes,
    the change is pushed to every field through column i (= row i, J is symmetric).
    The sequence of updates is that of the textbook form, but a site whose tanh does not
    change (saturated at +-1 at low T) costs O(1) instead of O(N).
    """
    n = bias.shape[0]
    t2 = 2.0 * temperature
    spins = np.empty(n)  # tanh(Delta'_j / 2T) of the last update of j
    for j in range(n):
        spins[j] = math.tanh(fields[j] / t2)
    current = np.empty(n)
    _base_plus_matvec(bias, couplings, 0.25, spins, current)
    for sweep in range(1, max_sweeps + 1):
        _shuffle(order, rng)
        change = 0.0
        for k in range(n):
            i = order[k]
            new = current[i]
            change = max(change, abs(new - fields[i]))
            fields[i] = new
            spin = math.tanh(new / t2)
            delta = spin - spins[i]
            if delta != 0.0:
                spins[i] = spin
                _push(current, couplings[i], 0.25 * delta)
        if change < tol:
            return sweep, True
        if sweep % 64 == 0:  # bound the rounding drift of the pushed sums
            _base_plus_matvec(bias, couplings, 0.25, spins, current)
    return max_sweeps, False


@numba.njit(cache=True)
def _electron_charges(fields, mu, filling, temperature, out):
    for j in range(fields.shape[0]):
        out[j] = model.fermi_factor((fields[j] - mu) / temperature) - filling


@numba.njit(cache=True)
def _electron_gauss_seidel(interactions, site_energies, fields, filling, n_electrons,
                           temperature, tol, max_sweeps, order, rng, fix_count, mu):
    """In place: E_i <- eps_i + sum_j C_ij (f(E_j) - K); mu re-fixed by the count each sweep.

    Push form as in ``_tls_gauss_seidel``. A new mu enters each charge when its site is
    next visited (its change is pushed then), exactly like a new neighbouring field.
    f is kmc.model.fermi_factor, precise in both tails (the definition the linearization
    and detailed balance need), so an empty site's charge stops changing only where
    e^-(E - mu)/T underflows (E - mu > ~709 T), not at ~38 T as 0.5 (1 - tanh) did.
    """
    n = site_energies.shape[0]
    charge = np.empty(n)  # f(E_j) - K of the last update of j
    if fix_count:
        mu = _chemical_potential(fields, float(n_electrons), temperature)
    _electron_charges(fields, mu, filling, temperature, charge)
    current = np.empty(n)
    _base_plus_matvec(site_energies, interactions, 1.0, charge, current)
    for sweep in range(1, max_sweeps + 1):
        _shuffle(order, rng)
        change = 0.0
        for k in range(n):
            i = order[k]
            new = current[i]
            change = max(change, abs(new - fields[i]))
            fields[i] = new
            q = model.fermi_factor((new - mu) / temperature) - filling
            delta = q - charge[i]
            if delta != 0.0:
                charge[i] = q
                _push(current, interactions[i], delta)
        if fix_count:
            new_mu = _chemical_potential(fields, float(n_electrons), temperature)
            change = max(change, abs(new_mu - mu))
            mu = new_mu
        if change < tol:
            return sweep, True, mu
        if sweep % 64 == 0:
            _base_plus_matvec(site_energies, interactions, 1.0, charge, current)
    return max_sweeps, False, mu


@numba.njit(cache=True)
def _count(energies, mu, temperature):
    total = 0.0
    for e in energies:
        total += model.fermi_factor((e - mu) / temperature)
    return total


@numba.njit(cache=True)
def _chemical_potential(energies, n_electrons, temperature):
    # At low T the count is a step function of mu: the midpoint between the M-th and
    # (M+1)-th energies is then exact; otherwise bisect the monotone count.
    m = int(n_electrons)
    ordered = np.sort(energies)
    mid = 0.5 * (ordered[m - 1] + ordered[m])
    if abs(_count(energies, mid, temperature) - n_electrons) < 1e-12 * n_electrons:
        return mid
    lo = ordered[0] - 40.0 * temperature - 1.0
    hi = ordered[-1] + 40.0 * temperature + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _count(energies, mid, temperature) < n_electrons:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15 * max(1.0, abs(mid)):
            break
    return 0.5 * (lo + hi)
