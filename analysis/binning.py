"""How coarse a histogram drawn in a figure must be to have few empty bins.

A run stores its histograms with the bin count of the run file (e.g. 120 DOS bins, 80
ln(lambda) bins). That suits an ensemble of many realizations; for one realization of a few
hundred sites most bins hold 0, 1 or 2 values and the curve is a comb of empty bins. Figures
therefore merge adjacent bins until the bins that hold data have, on average, at least
``per_bin`` values. The stored histograms are not changed.
"""
import math

import numpy as np

PER_BIN = 10


def merge_factor(counts, per_bin=PER_BIN):
    """Number k of adjacent bins to merge so that the occupied span averages >= per_bin.

    Parameters
    ----------
    counts : (B,) or (R, B) array of int
        Counts per bin (summed over realizations when 2-D).
    per_bin : float

    Returns
    -------
    int >= 1
    """
    total = np.asarray(counts).reshape(-1, np.shape(counts)[-1]).sum(axis=0)
    filled = np.flatnonzero(total)
    if filled.size == 0:
        return 1
    span = filled[-1] - filled[0] + 1
    return max(1, math.ceil(per_bin * span / total.sum()))


def bin_count(n_values, max_bins, per_bin=PER_BIN, min_bins=4):
    """Bins for a histogram of ``n_values`` values: at most ``max_bins``, about
    ``per_bin`` values per bin, and at least ``min_bins``."""
    return int(max(min_bins, min(max_bins, n_values // per_bin)))


def merge_bins(edges, counts, factor):
    """Merge ``factor`` adjacent bins; a remainder at the upper end is dropped.

    Parameters
    ----------
    edges : (B + 1,) float
    counts : (..., B) array
    factor : int >= 1

    Returns
    -------
    edges : (B // factor + 1,) float
    counts : (..., B // factor) array, summed over each group
    """
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts)
    if factor <= 1:
        return edges, counts
    nb = (edges.size - 1) // factor
    merged = counts[..., :nb * factor].reshape(counts.shape[:-1] + (nb, factor)).sum(axis=-1)
    return edges[:nb * factor + 1:factor], merged
