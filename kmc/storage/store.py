"""HDF5 result files: layout, crash-safe writer and resume.

Layout (schema version 1; docs/hdf5-layout.md is the full reference)::

    /glassrelax                      attrs: schema_version, program_version, versions (JSON),
                                            git_commit, run_file, config (JSON), seed, model
    /glassrelax/points/p0000         attrs: values (JSON), config (JSON), n_sites
        status (R,) int8             0 pending, 1 converged, 2 not converged
        sweeps (R,) int64, residual (R,) float64, mu (R,) float64
        fields, energies (R, N)      mean-field solution (kmc.solvers.meanfield.MeanFieldResult)
        positions (R, N, d)          disorder; TLS: bias, delta0 (R, N); electron:
                                     site_energies (R, N). Couplings are rebuilt from seeds.
        dos/edges (B+1,), dos/counts (R, B), dos/mean, dos/sem (B,)

Crash safety: finished realizations are collected in memory and written every
``flush_seconds`` by copy-on-write: the current file is copied to ``<path>.tmp``, the new
rows are added there, and the copy atomically replaces the file. Killing the run at any
moment leaves the last complete file; a rerun (or ``--resume``) skips realizations whose
status is not pending, so a resumed run ends with the same file as an uninterrupted one.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from kmc import __version__
from kmc.errors import ResultFileError
from kmc.pipeline.realization import payload_layout
from kmc.statistics import mean_sem

ROOT = "glassrelax"
SCHEMA_VERSION = 1
PENDING, CONVERGED, NOT_CONVERGED = 0, 1, 2

# keys that say how a run is executed, not what it computes: a rerun may change them
_RUNTIME_KEYS = {"ensemble": ("workers", "backend", "scheduler", "realizations"),
                 "output": ("path", "figures", "flush_seconds")}


def dos_edges(config):
    """Bin edges of the DOS histogram of a point (fixed before any realization is solved)."""
    out = config.output
    if out.dos_range:
        lo, hi = out.dos_range
    else:
        w, j = config.disorder.W, config.disorder.J
        half = 4.0 * np.hypot(w, j) if config.model.name == "tls" else w / 2.0 + 5.0 * j
        lo, hi = -half, half
    return np.linspace(lo, hi, out.dos_bins + 1)


def identity(config):
    """The part of the resolved config that determines the stored numbers."""
    resolved = config.resolved()
    for table, keys in _RUNTIME_KEYS.items():
        for key in keys:
            resolved[table].pop(key, None)
    if "dynamics" in resolved:  # how often to checkpoint does not change the numbers
        resolved["dynamics"].pop("checkpoint_interval", None)
    return json.dumps(resolved, sort_keys=True)


def point_config_json(config):
    """What defines a point's numbers: its model, disorder, solver, linear, dynamics tables."""
    resolved = config.resolved()
    keep = ("model", "disorder", "solver", "linear", "dynamics")
    return json.dumps({k: resolved[k] for k in keep if k in resolved}, sort_keys=True)


def versions():
    import numba
    import scipy
    return {"python": sys.version.split()[0], "numpy": np.__version__,
            "numba": numba.__version__, "scipy": scipy.__version__, "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version}


def git_commit():
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


class ResultWriter:
    """Creates or reopens a result file and adds finished realizations to it."""

    def __init__(self, path, config):
        self.path = Path(path)
        self.config = config
        self.points = config.points()
        self.n_realizations = config.ensemble.realizations
        self.pending = []
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        if self._tmp.exists():  # left by a run killed during a flush
            self._tmp.unlink()
        if self.path.exists():
            self._check_existing()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._create()

    # -- reading the state ------------------------------------------------------------

    def todo(self):
        """(point, realization) pairs not yet finished, in order."""
        with h5py.File(self.path, "r") as f:
            out = []
            for p in range(len(self.points)):
                status = f[f"{ROOT}/points/{_name(p)}/status"][: self.n_realizations]
                out += [(p, int(k)) for k in np.flatnonzero(status == PENDING)]
        return out

    # -- writing ----------------------------------------------------------------------

    def add(self, point, realization, payload):
        self.pending.append((point, realization, payload))

    def flush(self, finalize=False):
        """Write pending rows (and, at the end, the DOS summaries) by copy-on-write."""
        if not self.pending and not finalize:
            return
        shutil.copyfile(self.path, self._tmp)
        with h5py.File(self._tmp, "r+") as f:
            for p, k, payload in self.pending:
                _write_row(f[f"{ROOT}/points/{_name(p)}"], k, payload)
            if finalize:
                from kmc import summary
                for p, (_, point_config) in enumerate(self.points):
                    group = f[f"{ROOT}/points/{_name(p)}"]
                    _summarise_dos(group, self.n_realizations)
                    if point_config.linear.enabled:
                        summary.summarise_linear(group, self.n_realizations, point_config)
                    if point_config.dynamics.enabled:
                        summary.summarise_dynamics(group, self.n_realizations)
                    if point_config.dynamics.enabled and point_config.linear.enabled:
                        summary.summarise_comparison(group, self.n_realizations,
                                                     point_config, self.config.ensemble.seed, p)
        _replace(self._tmp, self.path)
        self.pending.clear()

    # -- creation and checks ----------------------------------------------------------

    def _create(self):
        config = self.config
        with h5py.File(self._tmp, "w") as f:
            root = f.create_group(ROOT)
            root.attrs["schema_version"] = SCHEMA_VERSION
            root.attrs["program_version"] = __version__
            root.attrs["versions"] = json.dumps(versions(), sort_keys=True)
            root.attrs["git_commit"] = git_commit()
            root.attrs["run_file"] = config.text
            root.attrs["config"] = json.dumps(config.resolved(), sort_keys=True)
            root.attrs["identity"] = identity(config)
            root.attrs["seed"] = config.ensemble.seed
            root.attrs["model"] = config.model.name
            points = root.create_group("points")
            for p, (values, point_config) in enumerate(self.points):
                _create_point(points.create_group(_name(p)), values, point_config,
                              self.n_realizations)
        _replace(self._tmp, self.path)

    def _check_existing(self):
        try:
            f = h5py.File(self.path, "r")
        except OSError:
            raise ResultFileError(f"{self.path}: exists but is not an HDF5 file; "
                                  f"choose another --out") from None
        with f:
            if ROOT not in f or f[ROOT].attrs.get("schema_version") != SCHEMA_VERSION:
                raise ResultFileError(f"{self.path}: has another layout (expected group "
                                      f"/{ROOT}, schema {SCHEMA_VERSION}); choose another --out")
            if f[ROOT].attrs["identity"] != identity(self.config):
                raise ResultFileError(f"{self.path}: was written by a run with another "
                                      f"configuration; choose another --out or delete it")
            stored = f[f"{ROOT}/points/{_name(0)}/status"].shape[0]
        if stored < self.n_realizations:  # the ensemble grew: extend every dataset
            shutil.copyfile(self.path, self._tmp)
            with h5py.File(self._tmp, "r+") as f:
                for p in range(len(self.points)):
                    group = f[f"{ROOT}/points/{_name(p)}"]
                    for ds in _row_datasets(group):
                        ds.resize(self.n_realizations, axis=0)
            _replace(self._tmp, self.path)


def _name(p):
    return f"p{p:04d}"


def _row_datasets(group):
    """Every dataset with one row per realization (first axis R)."""
    out = []
    group.visititems(lambda name, obj: out.append(obj) if isinstance(obj, h5py.Dataset)
                     and obj.maxshape[0] is None else None)
    return out


def _create_point(group, values, config, n_realizations):
    group.attrs["values"] = json.dumps(values, sort_keys=True)
    group.attrs["config"] = point_config_json(config)
    group.attrs["n_sites"] = config.model.N
    for name, (shape, dtype, fill) in payload_layout(config).items():
        group.create_dataset(name, shape=(n_realizations,) + shape, dtype=dtype,
                             maxshape=(None,) + shape, chunks=(1,) + shape if shape else (1024,),
                             fillvalue=fill)
    if config.dynamics.enabled:
        group["dynamics"].create_dataset("times", data=config.dynamics_params().times())
    edges = dos_edges(config)
    dos = group.create_group("dos")
    dos.create_dataset("edges", data=edges)
    dos.create_dataset("counts", shape=(n_realizations, edges.size - 1), dtype=np.int64,
                       maxshape=(None, edges.size - 1), chunks=(1, edges.size - 1))
    dos.attrs["normalisation"] = ("per realization counts / (N * bin width): integrates to "
                                  "the fraction of sites inside the range")


def _write_row(group, k, payload):
    for key, value in payload.items():
        if key == "dos_counts":
            group["dos/counts"][k] = value
        else:
            group[key][k] = value


def _summarise_dos(group, n_realizations):
    """Mean and standard error over the converged realizations of the normalised DOS."""
    status = group["status"][:n_realizations]
    ok = np.flatnonzero(status == CONVERGED)
    edges = group["dos/edges"][:]
    n = int(group.attrs["n_sites"])
    counts = group["dos/counts"][:n_realizations][ok] if ok.size else np.zeros((0, edges.size - 1))
    mean, sem = (mean_sem(counts / (n * np.diff(edges))) if ok.size
                 else (np.full(edges.size - 1, np.nan),) * 2)
    dos = group["dos"]
    for name, data in (("mean", mean), ("sem", sem)):
        if name in dos:
            del dos[name]
        dos.create_dataset(name, data=data)
    dos.attrs["n_used"] = ok.size


def _replace(tmp, path):
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
