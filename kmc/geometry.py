"""Site positions in a periodic box and minimum-image distances."""
import numpy as np

from kmc.seeding import as_generator


def box_side(n_sites, dimension, density=1.0):
    """Side L of the periodic box holding ``n_sites`` at ``density`` sites per unit volume.

    Lengths are in units of r_nn = n^(-1/d), so the default density 1 gives L = N^(1/d).
    """
    return (n_sites / density) ** (1.0 / dimension)


def random_positions(rng, n_sites, dimension, side):
    """(N, d) positions uniform in [0, side)^d; ``rng`` a Generator or an integer seed."""
    return as_generator(rng).uniform(0.0, side, size=(n_sites, dimension))


def distance_matrix(positions, side=None):
    """(N, N) pair distances; minimum image in a periodic box of ``side`` (None: open).

    Computed one coordinate at a time to keep the peak memory at a few N x N arrays.
    """
    positions = np.asarray(positions, dtype=float)
    n = positions.shape[0]
    r2 = np.zeros((n, n))
    for k in range(positions.shape[1]):
        delta = positions[:, k, None] - positions[None, :, k]
        if side is not None:
            delta -= side * np.rint(delta / side)
        r2 += delta * delta
    return np.sqrt(r2, out=r2)
