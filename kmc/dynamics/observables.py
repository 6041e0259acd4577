"""Observables of one configuration, and their statistics over replicas and realizations.

Definitions (docs/model.md section 4), one place for the kinetic Monte Carlo kernels, the
reference kernels, the static Monte Carlo and the master equation:

``energy``
    H of the configuration (kmc.model.tls_energy / electron_energy), units of J.
``excitations``
    TLS glass: number of TLSs in the upper well of their instantaneous local field,
    #{i : S_i h_i > 0}. Electron glass: number of electron-hole excitations relative to
    the Aufbau filling of the instantaneous site energies, i.e. the number of electrons
    that do not sit on the M sites of lowest E_i (ties broken by site index).
``occupation``
    sigma_i = 2 S_i = +-1 (well occupation, TLS) or n_i in {0, 1} (electron glass);
    the replica average of it gives <sigma_i(t)> and <n_i(t)>.
``deviation``
    |dsigma|(t) = sum_i |<sigma_i(t)> - sigma_i^eq| (TLS) or |dn|(t) = sum_i |<n_i(t)> - n_i^eq|,
    with <.> the average over the replicas of one realization and ^eq the equilibrium
    baseline. Its standard error is a jackknife over replicas (the plain mean of |.| is a
    nonlinear function of replica means).
"""
from dataclasses import dataclass

import numba
import numpy as np

from kmc.statistics import mean_sem


@numba.njit(cache=True)
def tls_excitations(spins, fields):
    """#{i : S_i h_i > 0}: TLSs in the upper well of their local field."""
    count = 0
    for i in range(spins.shape[0]):
        if spins[i] * fields[i] > 0.0:
            count += 1
    return count


@numba.njit(cache=True)
def electron_excitations(occupations, energies, n_electrons):
    """Number of electrons outside the ``n_electrons`` sites of lowest energy E_i."""
    order = np.argsort(energies, kind="mergesort")
    count = 0
    for r in range(n_electrons, order.shape[0]):
        count += occupations[order[r]]
    return count


@dataclass(frozen=True)
class Curve:
    """Mean and standard error of one observable on the time grid.

    mean, stderr : (n_times,) or (n_times, N) float
    """

    mean: np.ndarray
    stderr: np.ndarray


@dataclass(frozen=True)
class Baseline:
    """Equilibrium (or stationary) values an observable relaxes to.

    energy : float, units of J; energy_stderr : float
    excitations : float; excitations_stderr : float
    occupation : (N,) float, <sigma_i> (TLS, sigma = 2 S = +-1) or <n_i> (electron glass)
    source : str, how it was obtained ("static_mc", "mean_field", "boltzmann", "stationary")
    """

    energy: float
    energy_stderr: float
    excitations: float
    excitations_stderr: float
    occupation: np.ndarray
    source: str


def replica_curve(values):
    """Mean and standard error over replicas (axis 0) of ``values`` (R, ...)."""
    return Curve(*mean_sem(values))


def deviation_curve(configs, reference):
    """|d occupation|(t) = sum_i |mean_r configs[r, t, i] - reference_i| with a jackknife error.

    configs : (R, n_times, N) occupations of every replica; reference : (N,)
    Returns Curve with (n_times,) arrays. The mean is the plain estimator on all R
    replicas; the standard error is the delete-one jackknife over replicas.
    """
    configs = np.asarray(configs)
    r = configs.shape[0]
    total = configs.sum(axis=0, dtype=float)
    full = np.abs(total / r - reference).sum(axis=-1)
    if r < 2:
        return Curve(full, np.full_like(full, np.nan))
    loo = np.empty((r, full.shape[0]))
    for k in range(r):
        loo[k] = np.abs((total - configs[k]) / (r - 1) - reference).sum(axis=-1)
    err = np.sqrt((r - 1) / r * ((loo - loo.mean(axis=0)) ** 2).sum(axis=0))
    return Curve(full, err)


def combine_realizations(curves):
    """Mean over realizations of per-realization curves, with the error of that mean.

    The standard error is the spread between realizations / sqrt(n); with equal replica
    counts it contains both the replica noise and the disorder variance. One realization
    keeps its own (replica) standard error.
    """
    curves = list(curves)
    if len(curves) == 1:
        return curves[0]
    return Curve(*mean_sem(np.stack([c.mean for c in curves])))
