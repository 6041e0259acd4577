"""Memory a run needs, estimated from its configuration before anything is allocated.

A run whose arrays cannot fit (``model.N = 1e9``, ``ensemble.realizations = 1e9``,
``output.dos_bins = 1e9``, ``dynamics.n_times = 1e8``, ``dynamics.replicas = 1e9``) used to
pass ``kmc check`` and die of MemoryError after up to 40 s. ``estimate`` counts the largest
arrays of one task (one realization in a worker) and of the main process, term by term with
the key that drives each term; ``check`` refuses a run whose total exceeds the available
memory, naming the key of the largest term. The terms are upper-side estimates of the peak
(arrays alive at the same time are added); small O(N) arrays are covered by a fixed margin.
"""
import math
from dataclasses import dataclass, fields, replace

import numpy as np

from kmc.errors import ConfigError
from kmc.pipeline.ensemble import resolve_workers
from kmc.resources import available_memory, format_bytes
from kmc.storage.schema import row_layout

F8 = 8
# Python overhead of one queued task (tuple, key, future) in the main process, bytes
TASK_OVERHEAD = 1_000
# interpreter, NumPy, SciPy and numba loaded in every worker, bytes
PROCESS_BASE = 200 * 2 ** 20
# decades spanned by the relaxation prediction's time grid (rates from 1e-30 to 1)
PREDICTION_DECADES = 30


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed, per term.

    Attributes
    ----------
    task : tuple of (key, bytes)
        Arrays of one realization in one worker, by the key that sets their size.
    main : tuple of (key, bytes)
        Arrays held by the main process (task queue, unwritten rows, summaries).
    workers : int
        Worker processes running tasks at the same time (1: in-process).
    remote : bool
        Tasks run on a remote Dask cluster (its memory is not this machine's).
    available : int or None
        Bytes available on this machine (None: unknown).
    """

    task: tuple
    main: tuple
    workers: int
    remote: bool
    available: int | None

    @property
    def per_worker(self):
        return PROCESS_BASE + sum(b for _, b in self.task)

    @property
    def main_process(self):
        return PROCESS_BASE + sum(b for _, b in self.main)

    @property
    def total(self):
        """Bytes needed on this machine."""
        local_workers = 0 if self.remote else (self.workers if self.workers > 1 else 0)
        in_process = self.per_worker - PROCESS_BASE if self.workers == 1 and not self.remote else 0
        return self.main_process + local_workers * self.per_worker + in_process

    def largest_key(self):
        """The key that drives the largest term (named when the run cannot fit)."""
        terms = list(self.main) + [(k, b * (1 if self.remote else self.workers))
                                   for k, b in self.task]
        return max(terms, key=lambda t: t[1])[0]

    def describe(self):
        where = "remote worker" if self.remote else "worker"
        avail = "unknown" if self.available is None else format_bytes(self.available)
        return (f"memory: about {format_bytes(self.per_worker)} per {where} x {self.workers} "
                f"+ {format_bytes(self.main_process)} in the main process; "
                f"{format_bytes(self.total)} needed here, {avail} available")


def estimate(config, workers=None, backend=None):
    """MemoryEstimate of ``config`` run with ``workers`` (default ``ensemble.workers``)."""
    ens = config.ensemble
    workers = ens.workers if workers is None else workers
    backend = ens.backend if backend is None else backend
    points = config.points()
    n_tasks = len(points) * ens.realizations
    workers = min(resolve_workers(workers), max(n_tasks, 1))
    task, main = {}, {}
    for _, point in points:  # the largest point sets the per-task peak
        for key, b in _task_terms(point):
            task[key] = max(task.get(key, 0), b)
        for key, b in _main_terms(point, ens.realizations):
            main[key] = main.get(key, 0) + b
    main["ensemble.realizations"] = main.get("ensemble.realizations", 0) + n_tasks * TASK_OVERHEAD
    remote = backend == "dask" and bool(ens.scheduler)
    return MemoryEstimate(tuple(task.items()), tuple(main.items()), workers, remote,
                          available_memory())


def check(config, workers=None, backend=None):
    """The estimate; ConfigError naming the key of the largest term if it cannot fit."""
    est = estimate(config, workers, backend)
    if est.available is not None and est.total > est.available:
        key = est.largest_key()
        in_workers = est.workers > 1 and key in dict(est.task)
        raise ConfigError(key, f"the run needs about {format_bytes(est.total)} "
                               f"({format_bytes(est.per_worker)} per worker x {est.workers} + "
                               f"{format_bytes(est.main_process)} main), "
                               f"{format_bytes(est.available)} available; reduce {key}"
                               f"{' or ensemble.workers' if in_workers else ''}")
    return est


def _driver(config, *keys):
    """Of the keys whose product sets a term's size, the one furthest above its default
    (the one to name when the term does not fit)."""
    def ratio(dotted):
        section, name = dotted.split(".")
        obj = getattr(config, section)
        default = next(f.default for f in fields(obj) if f.name == name)
        return getattr(obj, name) / max(default, 1)
    return max(keys, key=ratio)


def _row_terms(config, count=1):
    """[(key, bytes)] of ``count`` realizations' stored values (what ``realization.compute``
    returns and the result file holds, ``kmc.storage.schema.row_layout``)."""
    t = config.dynamics.n_times
    out = []
    for name, (shape, dtype, _) in row_layout(config).items():
        size = count * math.prod(shape) * np.dtype(dtype).itemsize
        keys = ["ensemble.realizations"] if count > 1 else []
        if name == "dos/counts":
            keys.append("output.dos_bins")
        elif name.startswith("dynamics/") and shape and shape[0] == t:
            keys.append("dynamics.n_times")
        if any(dim == config.model.N for dim in shape) or not keys:
            keys.append("model.N")
        out.append((_driver(config, *keys), size))
    return out


def _task_terms(config):
    m, lin, dyn = config.model, config.linear, config.dynamics
    n = m.N
    item = 4 if config.solver.precision == "float32" else F8
    # couplings or interactions, plus the electron distances the rates need
    matrices = n * n * item
    if m.name == "electron" and (lin.enabled or dyn.enabled):
        matrices += n * n * F8
    if lin.enabled and (m.name == "electron" or lin.interactions):
        matrices += 4 * n * n * F8  # dense rate matrix, its copy and the eigensolver work
    terms = [("model.N", matrices), ("output.dos_bins", 3 * config.output.dos_bins * F8)]
    terms += [(k, 2 * b) for k, b in _row_terms(config)]  # the payload and its pickle
    if dyn.enabled:
        terms += _dynamics_terms(config)
    return _summed(terms)


def _dynamics_terms(config):
    m, dyn = config.model, config.dynamics
    n, t, r = m.N, dyn.n_times, dyn.replicas
    if dyn.method == "exact":
        states = _exact_states(config)
        return [("dynamics.method", states * (n + 4 * F8) + t * states * F8
                 + (states * states * F8 if states <= 2048 else 0))]
    # trajectories: configurations (replicas, times, N) int8, energies and excitations
    terms = [(_driver(config, "dynamics.replicas", "dynamics.n_times", "model.N"),
              r * t * (n + 3 * F8)), (_driver(config, "dynamics.n_times", "model.N"), t * n * F8)]
    # per-replica state and, for the electron glass, the hop pairs within hop_cutoff
    state = r * n * (F8 + 1)
    if m.name == "electron":
        c = dyn.hop_cutoff
        volume = math.pi * c ** 2 if m.d == 2 else 4 / 3 * math.pi * c ** 3 if m.d == 3 else 2 * c
        pairs = min(n * (n - 1) / 2, n * m.density * volume / 2)
        state += r * pairs * 6 * F8
    terms.append((_driver(config, "dynamics.replicas", "model.N"), state))
    return terms


def _exact_states(config):
    from kmc.dynamics.master import MAX_CONFIGURATIONS
    m = config.model
    if m.name == "tls":
        states = 2 ** m.N if m.N < 64 else math.inf
    else:
        states = math.comb(m.N, round(m.filling * m.N)) if m.N < 200 else math.inf
    if states > MAX_CONFIGURATIONS:
        what = "2^N" if m.name == "tls" else "C(N, M)"
        raise ConfigError("dynamics.method", f"'exact' enumerates {what} configurations, more "
                                             f"than {MAX_CONFIGURATIONS} at model.N = {m.N}; "
                                             f"use method = 'kmc'")
    return states


def _main_terms(config, realizations):
    lin = config.linear
    n = config.model.N
    # rows waiting for a flush (at most all of them); the DOS summary reads every count
    terms = _row_terms(replace(config, ensemble=replace(config.ensemble,
                                                        realizations=realizations)),
                       realizations)
    terms.append((_driver(config, "ensemble.realizations", "output.dos_bins"),
                  realizations * config.output.dos_bins * F8))
    if lin.enabled:
        terms.append((_driver(config, "ensemble.realizations", "model.N"),
                      realizations * n * F8 * 3))  # rates at the summary
        terms.append((_driver(config, "ensemble.realizations", "linear.bins"),
                      realizations * lin.bins * F8 * 2))
        terms.append((_driver(config, "linear.times_per_decade", "model.N"),
                      PREDICTION_DECADES * lin.times_per_decade * n * F8))
    return _summed(terms)


def _summed(terms):
    out = {}
    for key, b in terms:
        out[key] = out.get(key, 0) + b
    return list(out.items())
