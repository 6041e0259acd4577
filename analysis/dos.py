"""Densities of states: normalised histograms with mean and standard error over realizations.

Normalisation (as the paper's "normalized histogram"): each realization's histogram is
divided by N times the bin width, so it integrates to the fraction of its N sites whose
energy falls in the histogram range (1 when the range covers every energy). The curve is
the mean of these per-realization densities; the error is their standard error.
"""
import h5py
import numpy as np

import kmc
from kmc.statistics import mean_sem


def dos_histogram(energy_arrays, edges):
    """Mean and standard error of the normalised DOS.

    Parameters
    ----------
    energy_arrays : sequence of (N_r,) float arrays, units of J
    edges : (B+1,) float

    Returns
    -------
    mean, sem : (B,) float, states per site per unit energy
    """
    edges = np.asarray(edges, dtype=float)
    width = np.diff(edges)
    return mean_sem([np.histogram(e, bins=edges)[0] / (len(e) * width) for e in energy_arrays])


def dos_from_file(path_or_results, point=0):
    """(edges, mean, sem, n_used) of a point of a result file, as its writer summarised it
    (converged realizations only; ``kmc.storage.store``)."""
    res = path_or_results if isinstance(path_or_results, kmc.storage.results.Results) else kmc.load(path_or_results)
    with h5py.File(res.path, "r") as f:
        dos = f[f"glassrelax/points/p{point:04d}/dos"]
        return dos["edges"][()], dos["mean"][()], dos["sem"][()], int(dos.attrs["n_used"])


def gap_slope(edges, mean, sem, window):
    """Least-squares slope s of DOS = s |E| over |E| < window (the Coulomb-gap slope).

    Efros-Shklovskii bound for single-hop-stable states in 2D: s <= 2/pi (n = 1,
    e^2/r_nn = 1); mean-field fixed points need not obey it, so it is measured, not assumed.
    Returns (s, standard error of s) from the weighted fit through the origin.
    """
    centres = 0.5 * (edges[1:] + edges[:-1])
    x = np.abs(centres)
    keep = (x < window) & np.isfinite(sem) & (sem > 0)
    w = 1.0 / sem[keep] ** 2
    s = np.sum(w * x[keep] * mean[keep]) / np.sum(w * x[keep] ** 2)
    return float(s), float(1.0 / np.sqrt(np.sum(w * x[keep] ** 2)))
