"""The result-file layout: the one place that names groups, datasets and status codes.

Every module that writes or reads a result file takes its paths from here
(``docs/hdf5-layout.md`` is the human-readable form of the same schema)::

    /glassrelax                              root attributes (provenance, config, identity)
    /glassrelax/points/p0000                 one group per sweep point
        <row datasets>                       first axis R: one row per realization,
                                             written by the pipeline (``row_layout``)
        dos/edges                            fixed bin edges (``dos_edges``)
        dos/mean, dos/sem, linear/,          summaries derived from the rows by the
        dynamics/ensemble/, comparison/      analysis at the end of a run (``DERIVED``)

A row is *committed* when its ``status`` is not ``Status.PENDING``; everything else in the
row is meaningful only then. Couplings (N x N) are not stored: realization k of point p is
rebuilt from the root seed by ``build_system``, which is therefore part of the format.
"""
from enum import IntEnum

import numpy as np

from kmc.seeding import DISORDER, stream
from kmc.systems import ElectronSystem, TLSSystem

ROOT = "glassrelax"
POINTS = f"{ROOT}/points"
SCHEMA_VERSION = 2

# observables of the time-domain experiment stored per realization (mean and stderr)
DYNAMICS_CURVES = ("energy", "excess_energy", "excitations", "excess_excitations", "deviation")

# groups and datasets of a point written by the analysis from the rows; replaced as a whole
# every time a run finishes (they are recomputed from the committed rows, never appended)
DOS_SUMMARY = ("dos/mean", "dos/sem")
DERIVED_GROUPS = ("linear", "dynamics/ensemble", "comparison")


class Status(IntEnum):
    """Value of ``status[k]``: the state of realization k of a point."""

    PENDING = 0        # not computed yet (or lost in a kill before its flush)
    CONVERGED = 1      # mean field converged; used in every average
    NOT_CONVERGED = 2  # kept in the file, excluded from averages


def point_name(p):
    """Group name of sweep point ``p`` (``p0000``)."""
    return f"p{p:04d}"


def point_path(p):
    """Full path of the group of sweep point ``p``."""
    return f"{POINTS}/{point_name(p)}"


def checkpoint_dir(result_path):
    """Folder of the KMC checkpoints of the realizations of a running result file."""
    return f"{result_path}.checkpoints"


def build_system(config, seed, point, realization):
    """The disorder of realization (point, realization) of a point's RunConfig.

    Drawn from ``SeedSequence(seed, spawn_key=(point, realization, DISORDER))``: the
    pipeline builds each realization with it and ``kmc.load`` rebuilds the couplings that
    the file does not store with it, so it must never change for a schema version.
    """
    m, dis = config.model, config.disorder
    rng = stream(seed, point, realization, DISORDER)
    dtype = np.float32 if config.solver.precision == "float32" else np.float64
    if m.name == "tls":
        return TLSSystem.random(rng, m.N, m.d, W=dis.W, J=dis.J, delta0_min=dis.delta0_min,
                                delta0_max=dis.delta0_max, density=m.density, dtype=dtype)
    return ElectronSystem.random(rng, m.N, m.d, W=dis.W, J=dis.J, filling=m.filling,
                                 density=m.density, dtype=dtype)


def dos_edges(config):
    """Bin edges (B+1,) of the DOS histogram of a point, units of J.

    Fixed before any realization is solved so that every row histograms into the same
    bins: ``output.dos_range``, or automatic from W and J (TLS: +-4 sqrt(W^2 + J^2);
    electron: +-(W/2 + 5 J)).
    """
    out = config.output
    if out.dos_range:
        lo, hi = out.dos_range
    else:
        w, j = config.disorder.W, config.disorder.J
        half = 4.0 * np.hypot(w, j) if config.model.name == "tls" else w / 2.0 + 5.0 * j
        lo, hi = -half, half
    return np.linspace(lo, hi, out.dos_bins + 1)


def row_layout(config):
    """{name: (shape, dtype, fill)} of one realization's row (shape without the R axis).

    ``kmc.pipeline.realization.compute`` returns exactly these keys; the writer creates one
    dataset (R,) + shape per key and the fill value marks a row not written yet.
    """
    m = config.model
    n, d = m.N, m.d
    f8 = np.float64
    layout = {
        "status": ((), np.int8, int(Status.PENDING)), "sweeps": ((), np.int64, 0),
        "residual": ((), f8, np.nan), "mu": ((), f8, np.nan),
        "fields": ((n,), f8, np.nan), "energies": ((n,), f8, np.nan),
        "positions": ((n, d), f8, np.nan),
    }
    if m.name == "tls":
        layout.update(bias=((n,), f8, np.nan), delta0=((n,), f8, np.nan))
    else:
        layout["site_energies"] = ((n,), f8, np.nan)
    layout["dos/counts"] = ((config.output.dos_bins,), np.int64, 0)
    lin = config.linear
    if lin.enabled:
        n_rates = n if m.name == "tls" else n - 1  # the conserved mode is excluded
        layout["rates"] = ((n_rates,), f8, np.nan)
        layout["n_positive"] = ((), np.int64, -1)
        if lin.interactions:
            layout["rates_interacting"] = ((n_rates,), f8, np.nan)
            layout["n_positive_interacting"] = ((), np.int64, -1)
            if m.name == "tls":
                layout["rates_refined"] = ((n_rates,), f8, np.nan)
        if lin.distance_matrix and m.name == "electron":
            layout["rates_distance"] = ((n - 1,), f8, np.nan)
    dyn = config.dynamics
    if dyn.enabled:
        t = dyn.n_times
        for name in DYNAMICS_CURVES:
            layout[f"dynamics/{name}"] = ((t,), f8, np.nan)
            layout[f"dynamics/{name}_stderr"] = ((t,), f8, np.nan)
        layout["dynamics/occupation"] = ((t, n), f8, np.nan)
        layout["dynamics/equilibrium_occupation"] = ((n,), f8, np.nan)
        layout["dynamics/mean_field_occupation"] = ((n,), f8, np.nan)
        for name in ("equilibrium_energy", "equilibrium_excitations", "mean_field_energy",
                     "mean_field_excitations"):
            layout[f"dynamics/{name}"] = ((), f8, np.nan)
        layout["dynamics/events"] = ((), np.int64, -1)
        # (replicas, 3): events, trials, estimated events without temporal acceleration
        layout["dynamics/replica_counters"] = ((dyn.replicas, 3), f8, np.nan)
    return layout
