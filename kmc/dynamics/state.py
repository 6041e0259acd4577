"""Typed states of the KMC engines: named arrays that the numba kernels update in place.

A state is everything a run needs to continue bit for bit (with the random generator):
checkpoints store ``state.arrays()`` and rebuild it with ``from_arrays``. Item access
``state["fields"]`` reads the same arrays by name (tests and benchmarks select them so).
"""
from dataclasses import dataclass, fields

import numpy as np


class _NamedArrays:
    def arrays(self):
        """Dict name -> array of every field (the arrays themselves, not copies)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_arrays(cls, arrays):
        """The state whose fields are ``arrays[name]`` (extra keys are an error)."""
        names = {f.name for f in fields(cls)}
        if set(arrays) != names:
            raise KeyError(f"{cls.__name__}: expected arrays {sorted(names)}, "
                           f"got {sorted(arrays)}")
        return cls(**arrays)

    def __getitem__(self, name):
        return getattr(self, name)


@dataclass(frozen=True, eq=False)
class TLSState(_NamedArrays):
    """State of kmc.dynamics.tls_engine.TLSEngine (N sites).

    config : (N,) float, S_i = +-1/2
    fields : (N,) float, local fields h_i (Eq. 3), updated incrementally, units of J
    lo, hi : (N,) float, thinning windows of h_i
    tree : (2P,) float, sum tree of the rate bounds (kmc.dynamics.sumtree)
    scalars : (2,) float, [clock, energy H]
    counters : (5,) int64, kmc.dynamics.counters layout
    executions : (2, N) int64, flips of each TLS to S = +1/2 and to S = -1/2 (read by
        kmc.dynamics.acceleration)
    """

    config: np.ndarray
    fields: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    tree: np.ndarray
    scalars: np.ndarray
    counters: np.ndarray
    executions: np.ndarray


@dataclass(frozen=True, eq=False)
class ElectronState(_NamedArrays):
    """State of kmc.dynamics.electron_engine.ElectronEngine (N sites, P hop pairs).

    config : (N,) int8, n_i in {0, 1}
    fields : (N,) float, site energies E_i (Eq. 20), updated incrementally, units of J
    lo, hi : (P,) float, thinning windows of the pair differences E_b - E_a
    tree : (2Q,) float, sum tree of the pair rate bounds
    elo, ehi : (N,) float, per-site energy intervals of the window checks
    scalars : (2,) float, [clock, energy H]
    counters : (5,) int64, kmc.dynamics.counters layout
    executions : (2, P) int64, hops of each pair (a, b), a < b, a -> b and b -> a
    """

    config: np.ndarray
    fields: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    tree: np.ndarray
    elo: np.ndarray
    ehi: np.ndarray
    scalars: np.ndarray
    counters: np.ndarray
    executions: np.ndarray
