"""Disorder realizations of the two models, generated or built from explicit arrays.

Every method of the package (mean field, linearized dynamics, master equation, kinetic
Monte Carlo) takes one of these two objects. They hold plain NumPy arrays:

``TLSSystem``
    bias : (N,) float, Delta_i in units of J
    delta0 : (N,) float, tunneling amplitudes Delta0_i
    couplings : (N, N) float, J_ij = u_ij / r_ij^3, symmetric, zero diagonal
    positions : (N, d) float or None; box : float or None (periodic side; None = open)
``ElectronSystem``
    site_energies : (N,) float, eps_i
    interactions : (N, N) float, C_ij = e^2 / r_ij, symmetric, zero diagonal
    n_electrons : int, M; filling K = M / N
    distances : (N, N) float, r_ij (from positions, computed on first use)
"""
import math
import numbers
from dataclasses import dataclass, field

import numba
import numpy as np

from kmc.errors import ConfigError
from kmc.geometry import box_side, distance_matrix, random_positions
from kmc.resources import available_memory, format_bytes
from kmc.seeding import as_generator

# Couplings are drawn in blocks of rows so that the peak memory stays near one N x N array;
# the block size is fixed because it does not change the stream (draws concatenate).
_ROW_BLOCK = 256


@dataclass(frozen=True, eq=False, repr=False)
class TLSSystem:
    """One realization of the TLS glass (docs/model.md section 1)."""

    bias: np.ndarray
    delta0: np.ndarray
    couplings: np.ndarray
    positions: np.ndarray | None = None
    box: float | None = None

    model = "tls"

    @property
    def n_sites(self):
        return self.bias.shape[0]

    @classmethod
    def from_arrays(cls, bias, delta0, couplings, positions=None, box=None):
        """Build a system from explicit arrays (checked once here)."""
        bias = _vector("bias", bias)
        n = bias.shape[0]
        delta0 = _vector("delta0", delta0, n)
        if np.any(delta0 <= 0):
            i = int(np.flatnonzero(delta0 <= 0)[0])
            raise ConfigError("delta0", f"tunneling amplitudes must be > 0, got "
                                        f"delta0[{i}] = {delta0[i]}")
        couplings = _coupling_matrix("couplings", couplings, n)
        positions = None if positions is None else _positions(positions, n)
        return cls(bias, delta0, couplings, positions, _box(box))

    @classmethod
    def random(cls, rng, n_sites, dimension=3, W=1.0, J=1.0, delta0_min=1e-7,
               delta0_max=1e-1, density=1.0, dtype=np.float64):
        """Draw a realization: positions, u_ij ~ N(0, J^2), Delta_i ~ N(0, W^2), Delta0 log-uniform.

        The draw order (positions, couplings, biases, tunneling amplitudes) is part of the
        reproducibility contract: changing it changes every stored result. ``rng`` is a
        Generator or anything ``numpy.random.default_rng`` takes (an integer seed).
        ``density``: sites per unit volume of the periodic box (side (N / density)^(1/d));
        ``kmc.geometry.paper_density(N, d)`` gives the paper's box of side N^(1/d) - 1.
        """
        rng = as_generator(rng)
        n_sites, dimension = _check_draw(n_sites, dimension, density, W=W, J=J)
        _finite_positive("delta0_min", delta0_min)
        _finite_positive("delta0_max", delta0_max)
        if delta0_min > delta0_max:
            raise ConfigError("delta0_min", f"must be <= delta0_max = {delta0_max}, "
                                            f"got {delta0_min}")
        _check_matrix_fits(n_sites, dtype)
        side = box_side(n_sites, dimension, density)
        positions = random_positions(rng, n_sites, dimension, side)
        couplings = np.zeros((n_sites, n_sites), dtype=dtype)
        for start in range(0, n_sites, _ROW_BLOCK):
            stop = min(start + _ROW_BLOCK, n_sites)
            # row i holds u_ij for j > i: N - 1 - i draws
            count = sum(n_sites - 1 - i for i in range(start, stop))
            u = rng.standard_normal(count)
            _fill_dipolar_rows(couplings, u, positions, side, float(J), start, stop)
        _mirror_upper(couplings)
        bias = rng.normal(0.0, W, n_sites) if W > 0 else np.zeros(n_sites)
        log_d0 = rng.uniform(np.log(delta0_min), np.log(delta0_max), n_sites)
        return cls(bias, np.exp(log_d0), couplings, positions, side)


@dataclass(frozen=True, eq=False, repr=False)
class ElectronSystem:
    """One realization of the electron glass (docs/model.md section 2)."""

    site_energies: np.ndarray
    interactions: np.ndarray
    n_electrons: int
    positions: np.ndarray | None = None
    box: float | None = None
    _distances: np.ndarray | None = field(default=None, repr=False)

    model = "electron"

    @property
    def n_sites(self):
        return self.site_energies.shape[0]

    @property
    def filling(self):
        return self.n_electrons / self.n_sites

    @property
    def distances(self):
        """(N, N) r_ij, minimum image when the box is periodic; computed once on first use."""
        if self._distances is None:
            if self.positions is None:
                raise ConfigError("distances", "system has neither positions nor distances")
            object.__setattr__(self, "_distances", distance_matrix(self.positions, self.box))
        return self._distances

    @classmethod
    def from_arrays(cls, site_energies, n_electrons, positions=None, box=None, distances=None,
                    e2=1.0, interactions=None):
        """Build a system from explicit arrays.

        Give ``positions`` (with ``box`` for periodic boundaries) or ``distances``; the
        interactions default to e2 / r_ij unless an ``interactions`` matrix is given.
        """
        eps = _vector("site_energies", site_energies)
        n = eps.shape[0]
        n_electrons = _integer("n_electrons", n_electrons)
        if not 0 < n_electrons < n:
            raise ConfigError("n_electrons", f"must be in (0, {n}), got {n_electrons}")
        if not (isinstance(e2, numbers.Real) and math.isfinite(e2)):
            raise ConfigError("e2", f"must be a finite number, got {e2!r}")
        box = _box(box)
        positions = None if positions is None else _positions(positions, n)
        if distances is None:
            if positions is None:
                raise ConfigError("positions", "give positions or distances")
            distances = distance_matrix(positions, box)
        distances = _coupling_matrix("distances", distances, n)
        _check_distances(distances, "positions" if positions is not None else "distances")
        if interactions is None:
            with np.errstate(divide="ignore"):
                interactions = np.where(distances > 0, e2 / distances, 0.0)
            np.fill_diagonal(interactions, 0.0)
        interactions = _coupling_matrix("interactions", interactions, n)
        return cls(eps, interactions, n_electrons, positions, box, distances)

    @classmethod
    def random(cls, rng, n_sites, dimension=2, W=1.0, J=1.0, filling=0.5, density=1.0,
               dtype=np.float64):
        """Draw a realization: positions, eps_i ~ U[-W/2, W/2]; C_ij = J / r_ij (J = e^2/r_nn).

        ``rng`` is a Generator or anything ``numpy.random.default_rng`` takes (an integer seed).
        ``density`` as in ``TLSSystem.random`` (``kmc.geometry.paper_density``: the paper's box).
        """
        rng = as_generator(rng)
        n_sites, dimension = _check_draw(n_sites, dimension, density, W=W, J=J)
        if not (isinstance(filling, numbers.Real) and 0 < round(filling * n_sites) < n_sites):
            raise ConfigError("filling", f"must give 0 < round(filling * N) < N = {n_sites}, "
                                         f"got {filling!r}")
        _check_matrix_fits(n_sites, dtype)
        side = box_side(n_sites, dimension, density)
        positions = random_positions(rng, n_sites, dimension, side)
        eps = rng.uniform(-W / 2.0, W / 2.0, n_sites)
        interactions = np.zeros((n_sites, n_sites), dtype=dtype)
        _fill_coulomb(interactions, positions, side, float(J))
        return cls(eps, interactions, int(round(filling * n_sites)), positions, side)


def _short_repr(self):
    """One line: size, geometry and the scale of the disorder (the arrays would be
    thousands of lines)."""
    n = self.n_sites
    d = "-" if self.positions is None else self.positions.shape[1]
    box = "open" if self.box is None else f"{self.box:.4g}"
    if self.model == "tls":
        extra = (f"bias std {np.std(self.bias):.3g}, delta0 in [{self.delta0.min():.3g}, "
                 f"{self.delta0.max():.3g}], couplings {self.couplings.dtype}")
    else:
        extra = (f"n_electrons={self.n_electrons}, site_energies in "
                 f"[{self.site_energies.min():.3g}, {self.site_energies.max():.3g}], "
                 f"interactions {self.interactions.dtype}")
    return f"{type(self).__name__}(n_sites={n}, dimension={d}, box={box}, {extra})"


TLSSystem.__repr__ = _short_repr
ElectronSystem.__repr__ = _short_repr


def _first_bad(mask):
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _vector(key, values, n=None):
    values = _float_array(key, values)
    if values.ndim != 1 or (n is not None and values.shape[0] != n):
        raise ConfigError(key, f"expected shape ({n if n else 'N'},), got {values.shape}")
    if values.shape[0] < 2:
        raise ConfigError(key, f"need at least 2 sites, got {values.shape[0]}")
    _check_finite(key, values)
    return values


def _float_array(key, values, dtype=float):
    try:
        return np.ascontiguousarray(values, dtype=dtype)
    except (TypeError, ValueError):
        raise ConfigError(key, f"expected an array of numbers, got {type(values).__name__}") from None


def _check_finite(key, values):
    bad = ~np.isfinite(values)
    if np.any(bad):
        where = _first_bad(bad)
        index = where[0] if len(where) == 1 else where
        raise ConfigError(key, f"must be finite, got {values[where]} at index {index}")


def _positions(values, n):
    values = _float_array("positions", values)
    if values.ndim != 2 or values.shape[0] != n or values.shape[1] not in (1, 2, 3):
        raise ConfigError("positions", f"expected shape ({n}, d) with d in 1..3, got {values.shape}")
    _check_finite("positions", values)
    return values


def _box(box):
    if box is None:
        return None
    if not (isinstance(box, numbers.Real) and math.isfinite(box) and box > 0):
        raise ConfigError("box", f"must be a finite side > 0 or None (open), got {box!r}")
    return float(box)


def _integer(key, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            return int(value)
        raise ConfigError(key, f"expected an integer, got {value!r}")
    return int(value)


def _finite_positive(key, value):
    if not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0):
        raise ConfigError(key, f"must be finite and > 0, got {value!r}")


def _check_draw(n_sites, dimension, density, **scales):
    """Arguments of ``random``: checked before anything is drawn or allocated."""
    n = _integer("n_sites", n_sites)
    if n < 2:
        raise ConfigError("n_sites", f"must be >= 2, got {n}")
    dimension = _integer("dimension", dimension)
    if dimension not in (1, 2, 3):
        raise ConfigError("dimension", f"expected 1, 2 or 3, got {dimension}")
    _finite_positive("density", density)
    for key, value in scales.items():
        if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
            raise ConfigError(key, f"must be finite and >= 0, got {value!r}")
    return n, dimension


def _check_matrix_fits(n, dtype):
    """Refuse an N x N matrix that cannot be allocated, before drawing anything."""
    need = n * n * np.dtype(dtype).itemsize
    available = available_memory()
    if available is not None and need > available:
        raise ConfigError("n_sites", f"N = {n} needs {format_bytes(need)} for the N x N "
                                     f"matrix; {format_bytes(available)} available")


def _check_distances(distances, source):
    """Pair distances r_ij > 0 off the diagonal: two sites at one place have no finite
    interaction e^2 / r."""
    if np.any(distances < 0):
        i, j = _first_bad(distances < 0)
        raise ConfigError("distances", f"must be >= 0, got r[{i}, {j}] = {distances[i, j]}")
    off = distances + np.eye(distances.shape[0])
    if np.any(off == 0):
        i, j = _first_bad(off == 0)
        raise ConfigError(source, f"sites {i} and {j} coincide (r = 0)")


def _coupling_matrix(key, values, n):
    values = np.ascontiguousarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = _float_array(key, values, np.float64)
    if values.shape != (n, n):
        raise ConfigError(key, f"expected shape ({n}, {n}), got {values.shape}")
    _check_finite(key, values)
    if not np.allclose(values, values.T):
        raise ConfigError(key, "matrix must be symmetric")
    if np.any(np.diag(values) != 0):
        raise ConfigError(key, "diagonal must be zero")
    return values


@numba.njit(cache=True)
def _min_image_distance(positions, side, i, j):
    r2 = 0.0
    for k in range(positions.shape[1]):
        # positions lie in [0, side), so |dx| < side and one shift gives the minimum image
        dx = positions[i, k] - positions[j, k]
        if dx > 0.5 * side:
            dx -= side
        elif dx < -0.5 * side:
            dx += side
        r2 += dx * dx
    return np.sqrt(r2)


@numba.njit(cache=True)
def _fill_dipolar_rows(out, u, positions, side, scale, start, stop):
    n = out.shape[0]
    k = 0
    for i in range(start, stop):
        for j in range(i + 1, n):
            r = _min_image_distance(positions, side, i, j)
            out[i, j] = scale * u[k] / (r * r * r)
            k += 1


@numba.njit(cache=True)
def _mirror_upper(out):
    """Copy the upper triangle into the lower one, in tiles that stay in cache."""
    n = out.shape[0]
    tile = 64
    for bi in range(0, n, tile):
        for bj in range(bi, n, tile):
            for i in range(bi, min(bi + tile, n)):
                for j in range(max(bj, i + 1), min(bj + tile, n)):
                    out[j, i] = out[i, j]


@numba.njit(cache=True)
def _fill_coulomb(out, positions, side, scale):
    n = out.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = scale / _min_image_distance(positions, side, i, j)
    _mirror_upper(out)
