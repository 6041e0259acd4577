"""Mean and standard error over realizations or replicas: the one definition used by every
summary, histogram and curve of the package."""
import numpy as np


def mean_sem(rows):
    """Mean over axis 0 and its standard error std(ddof=1)/sqrt(n); nan error for n < 2.

    rows : (n, ...) array-like. Returns (mean, sem), each of shape rows.shape[1:].
    """
    rows = np.asarray(rows, dtype=float)
    n = rows.shape[0]
    mean = rows.mean(axis=0)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    return mean, rows.std(axis=0, ddof=1) / np.sqrt(n)
