"""HDF5 result files: creation, a lock per file, crash-safe rows written in place, resume.

The layout (paths, status codes, row datasets) belongs to ``kmc.storage.schema``;
``docs/hdf5-layout.md`` is the full reference. This module only writes: rows of finished
realizations while a run goes on, and, when the analysis has summarised a finished file,
its derived groups (``write_derived``). It never computes anything from the rows.

One writer per file
    ``locked(path)`` holds an exclusive ``flock`` on ``<path>.lock`` for as long as a run
    (rows, then summaries) writes the file; a second run on the same file is refused in
    one line naming the path and the pid that holds it. The lock is re-entrant inside a
    process and its file is removed when released (a kill leaves it, unlocked: harmless).

Rows in place, in two phases (flush cost independent of the file size)
    Row datasets are contiguous and allocated (and filled) when the file is created, so
    their byte offsets are fixed and the HDF5 structure never changes while a run writes.
    A flush writes the queued rows' bytes at their offsets with ``os.pwrite``, fsyncs,
    then writes their one-byte ``status`` values and fsyncs again. A kill before the
    second phase leaves those rows pending (recomputed on resume, bit for bit the same);
    a status byte is only ever written after its row is on disk. No flush copies the file.

Whole-file rewrites (copy to ``<path>.tmp``, fsync, rename) happen only when the
structure changes: creation, growing the ensemble, and writing the derived summaries at the
end of a run, where the row datasets are also compressed (``_rewrite``). A file whose rows
are compressed is unpacked once by the next run that has rows to write.
"""
import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from kmc import __version__
from kmc.errors import ResultFileError
from kmc.storage.schema import (DERIVED_GROUPS, DOS_SUMMARY, POINTS, ROOT, SCHEMA_VERSION,
                                SCALES, Status, checkpoint_dir, dataset_dims, dataset_info,
                                dos_edges, point_name, point_path, row_layout, to_json)

TMP_SUFFIX = ".tmp"
LOCK_SUFFIX = ".lock"
# row datasets larger than this are stored compressed once a run has finished
COMPRESS_BYTES = 1 << 20

log = logging.getLogger("kmc")

# keys that say how a run is executed, not what it computes: a rerun may change them
_RUNTIME_KEYS = {"ensemble": ("workers", "backend", "scheduler", "dashboard", "realizations"),
                 "output": ("path", "figures", "flush_seconds", "format")}


def identity(config):
    """The part of the resolved config that determines the stored numbers."""
    resolved = config.resolved()
    for table, keys in _RUNTIME_KEYS.items():
        for key in keys:
            resolved[table].pop(key, None)
    if "dynamics" in resolved:  # how often to checkpoint does not change the numbers
        resolved["dynamics"].pop("checkpoint_interval", None)
    return to_json(resolved)


def point_config_json(config):
    """What defines a point's numbers: its model, disorder, solver, linear, dynamics tables."""
    resolved = config.resolved()
    keep = ("model", "disorder", "solver", "linear", "dynamics")
    return to_json({k: resolved[k] for k in keep if k in resolved})


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


# -- the lock -------------------------------------------------------------------------

_HELD = {}  # absolute result path -> [fd, depth, lock path]


@contextlib.contextmanager
def locked(path):
    """Hold the exclusive write lock of result file ``path`` (re-entrant in a process).

    Raises
    ------
    ResultFileError
        Another process holds it, or the lock file cannot be created (read-only
        directory, a path under a file, ...): one line naming the path.
    """
    key = os.path.abspath(path)
    if key in _HELD:
        _HELD[key][1] += 1
    else:
        _HELD[key] = [_acquire(path, key + LOCK_SUFFIX), 1, key + LOCK_SUFFIX]
    try:
        yield
    finally:
        entry = _HELD[key]
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[key]
            with contextlib.suppress(OSError):
                os.unlink(entry[2])  # while still holding it: a waiter re-checks the inode
            os.close(entry[0])


def is_locked_here(path):
    """True if this process holds the lock of ``path``."""
    return os.path.abspath(path) in _HELD


def _acquire(path, lock_path):
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ResultFileError(f"{path}: cannot write there ({_reason(exc)}); "
                                  f"choose another --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ResultFileError(f"{path}: another kmc run (pid {holder}) is writing "
                                      f"this file; wait for it to finish or choose another "
                                      f"--out") from None
            raise ResultFileError(f"{path}: cannot lock ({_reason(exc)})") from None
        try:  # the holder before us may have removed the file we opened: lock the new one
            current = os.stat(lock_path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)


def _reason(exc):
    return exc.strerror.lower() if exc.strerror else type(exc).__name__


# -- target checks ----------------------------------------------------------------------

def check_target(path):
    """Refuse an output path that cannot hold a result file, in one line naming it.

    Creates missing parent directories and returns those it created (the caller removes
    them if the run is refused later).
    """
    path = Path(path)
    if path.is_dir():
        raise ResultFileError(f"{path}: is a directory; --out needs a file name")
    created = []
    parent = path.parent if str(path.parent) else Path(".")
    missing = []
    p = parent
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    if p.exists() and not p.is_dir():
        raise ResultFileError(f"{path}: {p} is not a directory")
    for d in reversed(missing):
        try:
            d.mkdir()
        except OSError as exc:
            remove_dirs(created)
            raise ResultFileError(f"{path}: cannot create directory {d} "
                                  f"({_reason(exc)})") from None
        created.append(d)
    if path.exists() and not path.is_file():
        remove_dirs(created)
        raise ResultFileError(f"{path}: is not a regular file")
    return created


def remove_result(path):
    """Delete result file ``path`` with its ``.tmp`` and checkpoints (``--overwrite``).

    Call while holding ``locked(path)``.
    """
    path = Path(path)
    for victim in (path, path.with_name(path.name + TMP_SUFFIX)):
        with contextlib.suppress(FileNotFoundError):
            victim.unlink()
    shutil.rmtree(checkpoint_dir(path), ignore_errors=True)


def remove_dirs(dirs):
    """Remove the directories of ``dirs`` that are empty, deepest first."""
    for d in sorted(dirs, key=lambda d: len(str(d)), reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(d)


# -- the writer -------------------------------------------------------------------------

class ResultWriter:
    """Creates or reopens a result file and adds finished realizations to it as rows.

    Construct it while holding ``locked(path)``. ``existed`` says whether the file was
    there already (and matched the configuration).
    """

    def __init__(self, path, config):
        self.path = Path(path)
        if not is_locked_here(self.path):
            raise RuntimeError(f"{self.path}: open a ResultWriter inside store.locked(path)")
        self.config = config
        self.points = config.points()
        self.n_realizations = config.ensemble.realizations
        self.pending = []
        self._tmp = self.path.with_name(self.path.name + TMP_SUFFIX)
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()  # left by a run killed during a rewrite (we hold the lock)
        self.existed = self.path.exists()
        self._packed = False
        if self.existed:
            self._check_existing()
        else:
            self._create()
        self._offsets = None

    # -- reading the state ------------------------------------------------------------

    def todo(self):
        """(point, realization) pairs not yet finished, in order."""
        out = []
        with _open(self.path) as f:
            for p in range(len(self.points)):
                status = f[point_path(p)]["status"][: self.n_realizations]
                out += [(p, int(k)) for k in np.flatnonzero(status == Status.PENDING)]
        return out

    # -- writing ----------------------------------------------------------------------

    def add(self, point, realization, row):
        """Queue the row of a finished realization (keys of ``schema.row_layout``)."""
        self.pending.append((point, realization, row))

    def flush(self):
        """Write the queued rows in place: their data, fsync, their status bytes, fsync.

        Costs what the rows weigh, whatever the size of the file.
        """
        if not self.pending:
            return
        if self._packed:  # a finished file whose rows were compressed: writable again
            _rewrite(self.path, None, packed=False)
            self._packed = False
        if self._offsets is None:
            self._offsets = self._row_offsets()
        started = time.perf_counter()
        fd = os.open(self.path, os.O_RDWR)
        try:
            for phase in ("data", "status"):
                for p, k, row in self.pending:
                    for name, value in row.items():
                        if (name == "status") != (phase == "status"):
                            continue
                        offset, nbytes, dtype, shape = self._offsets[p][name]
                        data = np.ascontiguousarray(value, dtype=dtype)
                        if data.shape != shape and data.size == int(np.prod(shape)):
                            data = data.reshape(shape)  # e.g. a (1,) mu into a scalar
                        if data.shape != shape:
                            raise ValueError(f"{name}: row of shape {data.shape}, "
                                             f"expected {shape}")
                        os.pwrite(fd, data.tobytes(), offset + k * nbytes)
                os.fsync(fd)
        finally:
            os.close(fd)
        log.debug("%s: flushed %d row(s) in place in %.3g ms", self.path, len(self.pending),
                  1e3 * (time.perf_counter() - started))
        self.pending.clear()

    def _row_offsets(self):
        """{point: {name: (byte offset, bytes per row, dtype, row shape)}} of the rows."""
        out = {}
        with _open(self.path) as f:
            for p, (_, point_config) in enumerate(self.points):
                group = f[point_path(p)]
                out[p] = {}
                for name in row_layout(point_config):
                    ds = group[name]
                    offset = ds.id.get_offset()
                    if ds.chunks is not None or offset is None:
                        raise ResultFileError(f"{self.path}: row dataset {name} is not "
                                              f"contiguous; the file was not opened for "
                                              f"writing")
                    shape = ds.shape[1:]
                    out[p][name] = (offset, ds.dtype.itemsize * int(np.prod(shape)),
                                    ds.dtype, shape)
        return out

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
            root.attrs["config"] = to_json(config.resolved())
            root.attrs["identity"] = identity(config)
            root.attrs["seed"] = config.ensemble.seed
            root.attrs["model"] = config.model.name
            _create_sweep(root, [values for values, _ in self.points], config.model.name)
            points = f.create_group(POINTS)
            for p, (values, point_config) in enumerate(self.points):
                _create_point(points.create_group(point_name(p)), values, point_config,
                              self.n_realizations)
        _replace(self._tmp, self.path)

    def _check_existing(self):
        try:
            f = h5py.File(self.path, "r")
        except OSError:
            raise ResultFileError(f"{self.path}: exists but is not a readable HDF5 file "
                                  f"(another kind of file, or truncated); choose another "
                                  f"--out or delete it") from None
        try:
            with f:
                if ROOT not in f:
                    raise ResultFileError(f"{self.path}: has another layout (no group "
                                          f"/{ROOT}: not a kmc result file); choose another "
                                          f"--out")
                version = f[ROOT].attrs.get("schema_version")
                if version != SCHEMA_VERSION:
                    raise ResultFileError(f"{self.path}: has another layout (schema "
                                          f"{version}, this version writes schema "
                                          f"{SCHEMA_VERSION}); choose another --out")
                if f[ROOT].attrs["identity"] != identity(self.config):
                    raise ResultFileError(f"{self.path}: was written by a run with another "
                                          f"configuration; choose another --out or delete it")
                stored = f[point_path(0)]["status"].shape[0]
                for p in range(len(self.points)):  # every status readable
                    f[point_path(p)]["status"][()]
                self._packed = any(f[point_path(p)][name].chunks is not None
                                   for p, (_, c) in enumerate(self.points)
                                   for name in row_layout(c))
        except (OSError, KeyError, ValueError) as exc:
            raise ResultFileError(f"{self.path}: is damaged ({exc}); choose another --out "
                                  f"or delete it") from None
        if stored < self.n_realizations:  # the ensemble grew: extend every row dataset
            _rewrite(self.path, self.n_realizations, packed=False)
            self._packed = False


def write_derived(path, derived):
    """Replace the derived groups of a finished file (summaries made by the analysis).

    Parameters
    ----------
    path : path of a result file
    derived : dict point index -> (datasets, attrs)
        datasets: {path relative to the point group: array}; attrs: {group path relative
        to the point group: {name: value}}. Every derived group (``schema.DERIVED_GROUPS``,
        ``schema.DOS_SUMMARY``) is dropped and rebuilt from ``derived``, so a summary
        never mixes two runs.

    The file is rewritten (copy-on-write, under the file's lock) with its large row
    datasets compressed; a kill leaves the previous file intact.
    """
    with locked(path):
        _rewrite(path, None, packed=True, derived=derived)


def _open(path):
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot be read ({exc})") from None


def _rewrite(path, n_realizations, packed, derived=None):
    """Copy ``path`` object by object into ``<path>.tmp`` and rename it over ``path``.

    Row datasets (listed in each point's ``rows`` attribute) get ``n_realizations`` rows
    (None: as many as now) and are stored contiguous and allocated (``packed`` False:
    writable in place) or chunked with gzip when larger than COMPRESS_BYTES (``packed``
    True: a finished file). With ``derived``, the derived groups are replaced.
    """
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    started = time.perf_counter()
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        _copy_attrs(src, dst)
        root = dst.create_group(ROOT)
        _copy_attrs(src[ROOT], root)
        for name, obj in src[ROOT].items():  # e.g. sweep/: copied as they are
            if f"{ROOT}/{name}" != POINTS:
                _copy_group(obj, root.create_group(name), set(), set(), None, packed, "")
        dst.create_group(POINTS)
        for name in src[POINTS]:
            p = int(name[1:])
            old, new = src[POINTS][name], dst[POINTS].create_group(name)
            rows = set(json.loads(old.attrs["rows"]))
            drop = set()
            if derived is not None and p in derived:
                drop = set(DERIVED_GROUPS) | set(DOS_SUMMARY)
            drop.add("realization")  # a scale of the new length is made by _describe
            _copy_group(old, new, rows, drop, n_realizations, packed, prefix="")
            if derived is not None and p in derived:
                datasets, attrs = derived[p]
                for key, data in datasets.items():
                    new.create_dataset(key, data=data)
                for key, values in attrs.items():
                    target = new.require_group(key)
                    for a, v in values.items():
                        target.attrs[a] = v
            _describe(new, str(src[ROOT].attrs["model"]), new["status"].shape[0])
    _replace(tmp, path)
    log.debug("%s: rewritten (%s%s) in %.3g s, %.3g MB", path,
              "compressed" if packed else "writable in place",
              ", summaries replaced" if derived is not None else "",
              time.perf_counter() - started, path.stat().st_size / 1e6)


# attributes of HDF5 dimension scales hold object references into their own file: they
# are rebuilt by _describe, never copied
_SCALE_ATTRS = {"CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST"}


def _copy_attrs(src, dst):
    for key, value in src.attrs.items():
        if key not in _SCALE_ATTRS:
            dst.attrs[key] = value


def _copy_group(src, dst, rows, drop, n_realizations, packed, prefix):
    _copy_attrs(src, dst)
    for name, obj in src.items():
        full = prefix + name
        if full in drop:
            continue
        if isinstance(obj, h5py.Group):
            _copy_group(obj, dst.create_group(name), rows, drop, n_realizations, packed,
                        full + "/")
        elif full in rows:
            n = obj.shape[0] if n_realizations is None else n_realizations
            new = _row_dataset(dst, name, (n,) + obj.shape[1:], obj.dtype, obj.fillvalue,
                               packed)
            keep = min(n, obj.shape[0])
            step = max(1, (64 << 20) // max(1, obj.dtype.itemsize * int(np.prod(obj.shape[1:]))))
            for a in range(0, keep, step):  # bounded memory for large files
                new[a:min(a + step, keep)] = obj[a:min(a + step, keep)]
            _copy_attrs(obj, new)
        else:
            dst.create_dataset(name, data=obj[()])
            _copy_attrs(obj, dst[name])


def _row_dataset(group, name, shape, dtype, fill, packed):
    """A row dataset: contiguous and allocated (writable in place) or compressed."""
    nbytes = np.dtype(dtype).itemsize * int(np.prod(shape))
    if packed and nbytes > COMPRESS_BYTES:
        chunk_rows = max(1, min(shape[0], (1 << 20) // max(1, nbytes // max(1, shape[0]))))
        return group.create_dataset(name, shape=shape, dtype=dtype, fillvalue=fill,
                                    chunks=(chunk_rows,) + shape[1:], compression="gzip",
                                    compression_opts=4, shuffle=True)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)  # fixed offsets, filled now
    return group.create_dataset(name, shape=shape, dtype=dtype, fillvalue=fill, dcpl=dcpl)


def _create_sweep(root, values, model):
    """Swept values as datasets /glassrelax/sweep/<key>, one entry per point."""
    sweep = root.create_group("sweep")
    for key in sorted({k for v in values for k in v}):
        column = [v.get(key) for v in values]
        data = (np.array(column, dtype=float) if all(isinstance(c, (int, float))
                                                     for c in column)
                else np.array([str(c) for c in column], dtype=h5py.string_dtype()))
        ds = sweep.create_dataset(key, data=data)
        ds.attrs["units"], ds.attrs["description"] = dataset_info(f"sweep/{key}", model)


def _describe(group, model, n_realizations):
    """Units and descriptions on every dataset of a point group, and its dimension scales
    (realization, site, time, bin) made and attached (``schema.dataset_dims``)."""
    if "realization" not in group:
        group.create_dataset("realization", data=np.arange(n_realizations))
    if "site" not in group:
        group.create_dataset("site", data=np.arange(int(group.attrs["n_sites"])))
    if "dos/centres" not in group:
        edges = group["dos/edges"][()]
        group["dos"].create_dataset("centres", data=0.5 * (edges[1:] + edges[:-1]))
    names = []
    group.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    for dim, name in SCALES.items():
        if name in group:
            group[name].make_scale(dim)
    for name in names:
        ds = group[name]
        ds.attrs["units"], ds.attrs["description"] = dataset_info(name, model)
        for axis, dim in enumerate(dataset_dims(name)):
            if dim is not None and SCALES[dim] in group:
                ds.dims[axis].attach_scale(group[SCALES[dim]])


def _create_point(group, values, config, n_realizations):
    group.attrs["values"] = to_json(values)
    group.attrs["config"] = point_config_json(config)
    group.attrs["n_sites"] = config.model.N
    layout = row_layout(config)
    group.attrs["rows"] = json.dumps(sorted(layout))
    for name, (shape, dtype, fill) in layout.items():
        parent, _, leaf = name.rpartition("/")
        target = group.require_group(parent) if parent else group
        _row_dataset(target, leaf, (n_realizations,) + shape, dtype, fill, packed=False)
    if config.dynamics.enabled:
        group["dynamics"].create_dataset("times", data=config.dynamics_params().times())
    dos = group.require_group("dos")
    dos.create_dataset("edges", data=dos_edges(config))
    dos.attrs["normalisation"] = ("per realization counts / (N * bin width): integrates to "
                                  "the fraction of sites inside the range")
    _describe(group, config.model.name, n_realizations)


def _replace(tmp, path):
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # the rename itself durable
        dirfd = os.open(Path(path).parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
