"""Run independent tasks in-process, in a local process pool, or on a Dask cluster.

Each task is (key, args) and runs ``fn(*args)``; results are yielded as they complete, in
any order. Results depend only on the task arguments, never on the backend, the worker count
or the host's core count: every task runs with one BLAS thread (a multithreaded BLAS sums in
an order that depends on its thread count, which changed ``rates`` by up to 7e-8 relative
between backends). Errors raised by a task (``ConfigError``) reach the caller unchanged.
Local workers (process pool and LocalCluster) exit when the process that started them dies.
"""
import contextlib
import contextvars
import logging
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from tqdm import tqdm

from kmc.errors import ConfigError
from kmc.resources import usable_cpus

# Seconds to reach a Dask scheduler before giving up (an unreachable address otherwise
# waits for distributed's 30 s default before a traceback).
SCHEDULER_TIMEOUT = 5
# How often a local worker checks that the process that started it is alive.
WATCHDOG_SECONDS = 0.5
# Thread-count variables of the BLAS and OpenMP runtimes NumPy and SciPy may load; set for
# worker processes before they import NumPy (threadpoolctl then also pins what is loaded).
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                         "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def resolve_workers(workers):
    """Worker count: ``workers`` if > 0, else the CPUs this process may use
    (affinity mask and SLURM allocation, not the machine's core count)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError("ensemble.workers", f"must be an integer >= 0 (0: all usable CPUs), "
                                              f"got {workers!r}")
    return workers if workers > 0 else usable_cpus()


def run_tasks(fn, tasks, *, workers=1, backend="local", scheduler="", dashboard="",
              progress=True,
              description="realizations"):
    """Yield (key, result) for every (key, args) in ``tasks``."""
    tasks = list(tasks)
    workers = resolve_workers(workers)
    if backend not in ("local", "dask"):
        raise ConfigError("ensemble.backend", f"expected 'local' or 'dask', got {backend!r}")
    bar = tqdm(total=len(tasks), desc=description, unit="task", disable=not progress,
               dynamic_ncols=True)
    try:
        if backend == "dask":
            yield from _dask(fn, tasks, workers, scheduler, bar, dashboard)
        elif workers == 1 or len(tasks) <= 1:
            for key, args in tasks:
                with _inner_bar(progress) as inner:
                    token = task_progress.set(inner)
                    try:
                        result = call_with_one_blas_thread(fn, args)
                    finally:
                        task_progress.reset(token)
                bar.update()
                yield key, result
        else:
            yield from _pool(fn, tasks, workers, bar)
    finally:
        bar.close()


# Progress inside one task (KMC replicas and simulated time), for in-process runs only:
# pool and Dask workers cannot draw on the parent's terminal, so there it stays None.
task_progress = contextvars.ContextVar("task_progress", default=None)


@contextlib.contextmanager
def _inner_bar(enabled):
    """A second tqdm line, or None: callable(done, total, t) for kmc.dynamics.simulate."""
    if not enabled:
        yield None
        return
    bar = tqdm(total=0, desc="  replicas", unit="replica", leave=False, position=1,
               dynamic_ncols=True)

    def update(done, total, t):
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.set_postfix_str(f"t = {t:.3g}", refresh=False)
        bar.refresh() if done == total else bar.update(0)

    try:
        yield update
    finally:
        bar.close()


def call_with_one_blas_thread(fn, args, parent=None):
    """``fn(*args)`` with BLAS and OpenMP pools limited to one thread.

    ``parent`` (pid, start time) of the process that started this worker: when given, a
    watchdog thread ends this process once that one is gone.
    """
    if parent is not None:
        _start_watchdog(parent)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):
        return fn(*args)


def _pool(fn, tasks, workers, bar):
    # forkserver: no fork of a process that already runs threads (tqdm, BLAS)
    context = multiprocessing.get_context("forkserver")
    parent = _identity(os.getpid())
    with _worker_environment(), ProcessPoolExecutor(
            max_workers=min(workers, len(tasks)), mp_context=context,
            initializer=_start_watchdog, initargs=(parent,)) as pool:
        futures = {pool.submit(call_with_one_blas_thread, fn, args): key for key, args in tasks}
        try:
            for future in as_completed(futures):
                bar.update()
                yield futures[future], future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _dask(fn, tasks, workers, scheduler, bar, dashboard=""):
    try:
        from dask.distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError:
        raise ConfigError("ensemble.backend", "'dask' needs the dask extra: "
                                              "pip install 'glassrelax[dask]'") from None
    cluster = None
    parent = None
    if scheduler:
        client = _connect(Client, scheduler)
    else:
        with _worker_environment():
            # silence_logs: a task's error reaches the caller as one line; the workers'
            # own "Compute Failed" log with its traceback would add a dozen
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=_dashboard(dashboard),
                                   silence_logs=logging.CRITICAL)
        client = Client(cluster)
        # local workers end with this process; remote ones belong to their cluster
        parent = _identity(os.getpid())
        client.run(_start_watchdog, parent)
        client.run(_start_watchdog, parent, nanny=True)
    if dashboard or scheduler:
        link = getattr(client, "dashboard_link", None)
        if link:
            bar.write(f"kmc: Dask dashboard at {link}", file=sys.stderr)
    try:
        futures = {client.submit(call_with_one_blas_thread, fn, args, parent, pure=False): key
                   for key, args in tasks}
        for future in dask_completed(futures):
            bar.update()
            yield futures[future], future.result()
            future.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _dashboard(address):
    """``dashboard_address`` of a LocalCluster: None (no dashboard) or ``address``, which
    needs bokeh; a missing bokeh is refused in one line before the cluster starts."""
    if not address:
        return None
    try:
        import bokeh  # noqa: F401  (the dashboard's only extra dependency)
    except ImportError:
        raise ConfigError("ensemble.dashboard", "a Dask dashboard needs bokeh: "
                                                "pip install 'glassrelax[dask]'") from None
    return address


def _connect(client_cls, scheduler):
    """A Dask client of ``scheduler``, or a one-line ConfigError within SCHEDULER_TIMEOUT s."""
    try:
        return client_cls(scheduler, timeout=SCHEDULER_TIMEOUT)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError("ensemble.scheduler", f"cannot reach the Dask scheduler "
                                                f"{scheduler!r} within {SCHEDULER_TIMEOUT} s: "
                                                f"{reason}") from None


class _worker_environment:
    """Set the BLAS thread variables while worker processes start (they inherit them
    and import NumPy with one thread), restoring the caller's environment afterwards."""

    def __enter__(self):
        self.saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
        os.environ.update({name: "1" for name in BLAS_THREAD_VARIABLES})
        return self

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        return False


def _identity(pid):
    """(pid, start time) of a process: a pid alone may be reused after the process ends."""
    return pid, _stat(pid)[1]


def _stat(pid):
    """(state, start time) from /proc/<pid>/stat, or (None, None) when unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # fields after the parenthesised command name: state is field 3, starttime 22
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[19])
    except (OSError, ValueError, IndexError):
        return None, None


def _alive(parent):
    pid, start = parent
    if start is not None:  # /proc: same process (not a reused pid) and not a zombie
        state, now = _stat(pid)
        return now == start and state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_watchdog_started = False


def _start_watchdog(parent):
    """Once per process: a daemon thread that ends this process when ``parent`` is gone.

    A SIGKILL of the parent gives its workers no signal; without this they (and through
    them the forkserver and the resource tracker) run on indefinitely.
    """
    global _watchdog_started
    if _watchdog_started or parent is None:
        return
    _watchdog_started = True

    def watch():
        while _alive(parent):
            time.sleep(WATCHDOG_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="kmc-parent-watchdog", daemon=True).start()
