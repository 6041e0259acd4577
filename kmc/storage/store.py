"""HDF5 result files: creation, crash-safe row writer, resume.

The layout (paths, status codes, row datasets) belongs to ``kmc.storage.schema``;
``docs/hdf5-layout.md`` is the full reference. This module only writes: rows of finished
realizations while a run goes on, and, when the analysis has summarised a finished file,
its derived groups (``write_derived``). It never computes anything from the rows.

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
from kmc.storage.schema import (DERIVED_GROUPS, DOS_SUMMARY, POINTS, ROOT, SCHEMA_VERSION,
                                Status, dos_edges, point_name, point_path, row_layout)

# keys that say how a run is executed, not what it computes: a rerun may change them
_RUNTIME_KEYS = {"ensemble": ("workers", "backend", "scheduler", "realizations"),
                 "output": ("path", "figures", "flush_seconds", "format")}


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
    """Creates or reopens a result file and adds finished realizations to it as rows."""

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
                status = f[point_path(p)]["status"][: self.n_realizations]
                out += [(p, int(k)) for k in np.flatnonzero(status == Status.PENDING)]
        return out

    # -- writing ----------------------------------------------------------------------

    def add(self, point, realization, row):
        """Queue the row of a finished realization (keys of ``schema.row_layout``)."""
        self.pending.append((point, realization, row))

    def flush(self):
        """Write the queued rows by copy-on-write (nothing to do: no copy)."""
        if not self.pending:
            return
        shutil.copyfile(self.path, self._tmp)
        with h5py.File(self._tmp, "r+") as f:
            for p, k, row in self.pending:
                group = f[point_path(p)]
                for name, value in row.items():
                    group[name][k] = value
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
            points = f.create_group(POINTS)
            for p, (values, point_config) in enumerate(self.points):
                _create_point(points.create_group(point_name(p)), values, point_config,
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
            stored = f[point_path(0)]["status"].shape[0]
        if stored < self.n_realizations:  # the ensemble grew: extend every row dataset
            shutil.copyfile(self.path, self._tmp)
            with h5py.File(self._tmp, "r+") as f:
                for p, (_, point_config) in enumerate(self.points):
                    group = f[point_path(p)]
                    for name in row_layout(point_config):
                        group[name].resize(self.n_realizations, axis=0)
            _replace(self._tmp, self.path)


def write_derived(path, derived):
    """Replace the derived groups of a finished file (summaries made by the analysis).

    Parameters
    ----------
    path : path of a result file (no run may be writing it)
    derived : dict point index -> (datasets, attrs)
        datasets: {path relative to the point group: array}; attrs: {group path relative
        to the point group: {name: value}}. Every group of ``schema.DERIVED_GROUPS`` is
        removed first and rebuilt from ``derived``, so a summary never mixes two runs.

    Written by copy-on-write like the rows, so a kill leaves the file with its rows intact.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.copyfile(path, tmp)
    with h5py.File(tmp, "r+") as f:
        for p, (datasets, attrs) in derived.items():
            group = f[point_path(p)]
            for name in DERIVED_GROUPS:
                if name in group:
                    del group[name]
            for name in DOS_SUMMARY:
                if name in group:
                    del group[name]
            for name, data in datasets.items():
                group.create_dataset(name, data=data)
            for name, values in attrs.items():
                target = group.require_group(name)
                for key, value in values.items():
                    target.attrs[key] = value
    _replace(tmp, path)


def _create_point(group, values, config, n_realizations):
    group.attrs["values"] = json.dumps(values, sort_keys=True)
    group.attrs["config"] = point_config_json(config)
    group.attrs["n_sites"] = config.model.N
    for name, (shape, dtype, fill) in row_layout(config).items():
        group.create_dataset(name, shape=(n_realizations,) + shape, dtype=dtype,
                             maxshape=(None,) + shape, chunks=(1,) + shape if shape else (1024,),
                             fillvalue=fill)
    if config.dynamics.enabled:
        group["dynamics"].create_dataset("times", data=config.dynamics_params().times())
    dos = group.require_group("dos")
    dos.create_dataset("edges", data=dos_edges(config))
    dos.attrs["normalisation"] = ("per realization counts / (N * bin width): integrates to "
                                  "the fraction of sites inside the range")


def _replace(tmp, path):
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
