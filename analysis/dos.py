"""Densities of states: normalised histograms with mean and standard error over realizations.

Normalisation (as the paper's "normalized histogram"): each realization's histogram is
divided by N times the bin width, so it integrates to the fraction of its N sites whose
energy falls in the histogram range (1 when the range covers every energy). The curve is
the mean of these per-realization densities; the error is their standard error.
"""
import numpy as np

from kmc.statistics import mean_sem


def normalised_dos(counts, edges, n_sites):
    """Mean and standard error of the normalised DOS from per-realization counts.

    Parameters
    ----------
    counts : (R, B) int, histogram of each realization's energies over ``edges``
    edges : (B+1,) float, units of J
    n_sites : int, N

    Returns
    -------
    mean, sem : (B,) float, states per site per unit energy
    """
    return mean_sem(np.asarray(counts) / (n_sites * np.diff(edges)))
