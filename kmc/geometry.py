"""Site positions in a periodic box and minimum-image distances.

Two box geometries (``model.box`` of a run file; docs/model.md, "Conventions"):

``"fixed-density"``
    side L = (N / n)^(1/d) at the site density n (``model.density``, default 1, so that the
    mean spacing r_nn = n^(-1/d) is the unit of length); the density does not change with N.
``"paper"``
    side L = N^(1/d) - 1, as in the scripts of [AAIS17] (their Appendix A writes the mean
    spacing as L / (N^(1/d) - 1)): the density N / (N^(1/d) - 1)^d grows as N shrinks.

In both, lengths are in the unit of the box: the interaction J is the one at unit
distance (U0, or e^2) and the localization length xi is in the same unit.
"""
import numpy as np

from kmc.seeding import as_generator

BOX_KINDS = ("fixed-density", "paper")


def box_side(n_sites, dimension, density=1.0):
    """Side L of the periodic box holding ``n_sites`` at ``density`` sites per unit volume.

    Lengths are in units of r_nn = n^(-1/d), so the default density 1 gives L = N^(1/d).
    """
    return (n_sites / density) ** (1.0 / dimension)


def paper_box_side(n_sites, dimension):
    """Side N^(1/d) - 1 of the periodic box of [AAIS17]'s scripts (> 0 for N >= 2)."""
    return n_sites ** (1.0 / dimension) - 1.0


def paper_density(n_sites, dimension):
    """Site density N / (N^(1/d) - 1)^d of the paper's box: ``box_side`` at this density is
    ``paper_box_side`` (to rounding). It decreases towards 1 as N grows, e.g. in 2D 1.23
    at N = 100 and 1.07 at N = 1000; in 3D 2.07 and 1.37."""
    return n_sites / paper_box_side(n_sites, dimension) ** dimension


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
