"""One task of an ensemble: build a realization from its seed and solve its mean field.

``compute`` is a plain top-level function of (point config, seed, point, realization) so
that any backend (in-process, process pool, Dask) can run it and get identical arrays.
"""
import numpy as np

from . import meanfield
from .seeding import DISORDER, SOLVER, stream
from .systems import ElectronSystem, TLSSystem


def build_system(config, seed, point, realization):
    """The disorder of realization (point, realization) of a point's RunConfig."""
    m, dis = config.model, config.disorder
    rng = stream(seed, point, realization, DISORDER)
    dtype = np.float32 if config.solver.precision == "float32" else np.float64
    if m.name == "tls":
        return TLSSystem.random(rng, m.N, m.d, W=dis.W, J=dis.J, delta0_min=dis.delta0_min,
                                delta0_max=dis.delta0_max, density=m.density, dtype=dtype)
    return ElectronSystem.random(rng, m.N, m.d, W=dis.W, J=dis.J, filling=m.filling,
                                 density=m.density, dtype=dtype)


def solve_system(config, system, seed, point, realization):
    """Mean-field solution of ``system`` with the point's solver settings."""
    s = config.solver
    return meanfield.solve(system, config.model.temperature, tol=s.tol,
                           max_sweeps=s.max_sweeps, init=s.init, anneal=s.anneal,
                           rng=stream(seed, point, realization, SOLVER))


def compute(config, seed, point, realization, dos_edges):
    """Everything stored for one realization, as a dict of NumPy arrays and scalars."""
    system = build_system(config, seed, point, realization)
    result = solve_system(config, system, seed, point, realization)
    out = {
        "positions": system.positions,
        "fields": result.fields,
        "energies": result.energies,
        "mu": result.mu,
        "status": 1 if result.converged else 2,
        "sweeps": result.sweeps,
        "residual": result.residual,
        "dos_counts": np.histogram(result.energies, bins=dos_edges)[0],
    }
    if isinstance(system, TLSSystem):
        out["bias"] = system.bias
        out["delta0"] = system.delta0
    else:
        out["site_energies"] = system.site_energies
    return out
