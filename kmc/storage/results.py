"""Reading result files: ``kmc.load(path)``.

``load(path).realization(k, point=0)`` returns one realization as a dict of NumPy arrays:

============== ======================================================================
name           content
============== ======================================================================
positions      (N, d) site positions, units of r_nn
bias           TLS: (N,) Delta_i
delta0         TLS: (N,) tunneling amplitudes
couplings      TLS: (N, N) J_ij, rebuilt from the stored seed
site_energies  electron: (N,) eps_i
interactions   electron: (N, N) e^2 / r_ij, rebuilt from the stored seed
n_electrons    electron: M
fields         (N,) mean-field Delta'_i (TLS) or E_i (electron)
energies       (N,) TLS: signed E_i (Eq. 6); electron: E_i - mu
mu, status, sweeps, residual   scalars (status 1 converged, 2 not converged, 0 pending)
system         the rebuilt TLSSystem / ElectronSystem, usable by every method
============== ======================================================================
"""
import json
from dataclasses import dataclass

import h5py
import numpy as np

from kmc.pipeline import realization as _realization
from kmc.pipeline.config import RunConfig
from kmc.errors import ResultFileError
from kmc.storage.store import ROOT, SCHEMA_VERSION, _name


@dataclass(frozen=True)
class Point:
    index: int
    values: dict
    config: RunConfig


class Results:
    """A result file opened for reading (nothing is held open between calls)."""

    def __init__(self, path):
        self.path = str(path)
        try:
            f = h5py.File(self.path, "r")
        except OSError:
            raise ResultFileError(f"{self.path}: not a readable HDF5 file") from None
        with f:
            if ROOT not in f or f[ROOT].attrs.get("schema_version") != SCHEMA_VERSION:
                raise ResultFileError(f"{self.path}: not a result file of schema "
                                      f"{SCHEMA_VERSION}")
            root = f[ROOT]
            self.attrs = {k: _attr(v) for k, v in root.attrs.items()}
            self.seed = int(root.attrs["seed"])
            self.model = str(root.attrs["model"])
            self.points = []
            for p, name in enumerate(sorted(root["points"])):
                g = root["points"][name]
                config = RunConfig.from_dict(json.loads(g.attrs["config"]))
                self.points.append(Point(p, json.loads(g.attrs["values"]), config))

    def __repr__(self):
        return f"Results({self.path!r}, model={self.model!r}, points={len(self.points)})"

    def dataset(self, name, point=0):
        """A whole per-point dataset, e.g. ``energies`` (R, N) or ``dos/mean``."""
        with h5py.File(self.path, "r") as f:
            return f[f"{ROOT}/points/{_name(point)}/{name}"][()]

    def realization(self, k, point=0):
        """Disorder and mean-field solution of realization ``k`` of ``point`` (see module doc)."""
        config = self.points[point].config
        with h5py.File(self.path, "r") as f:
            g = f[f"{ROOT}/points/{_name(point)}"]
            if not 0 <= k < g["status"].shape[0]:
                raise IndexError(f"realization {k} out of range 0..{g['status'].shape[0] - 1}")
            out = {name: g[name][k] for name in g if isinstance(g[name], h5py.Dataset)}
        system = _realization.build_system(config, self.seed, point, k)
        if out["status"] != 0 and not np.array_equal(system.positions, out["positions"]):
            raise ResultFileError(f"{self.path}: rebuilt realization {k} differs from the "
                                  f"stored one (other program version?)")
        out["positions"] = system.positions
        if system.model == "tls":
            out.update(bias=system.bias, delta0=system.delta0, couplings=system.couplings)
        else:
            out.update(site_energies=system.site_energies, interactions=system.interactions,
                       n_electrons=system.n_electrons)
        out["system"] = system
        for key in ("mu", "residual"):
            out[key] = float(out[key])
        for key in ("status", "sweeps"):
            out[key] = int(out[key])
        return out


def load(path):
    """Open a result file written by ``kmc run``."""
    return Results(path)


def _attr(v):
    return v.decode() if isinstance(v, bytes) else v
