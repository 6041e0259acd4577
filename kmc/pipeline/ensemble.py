"""Run independent tasks in-process, in a local process pool, or on a Dask cluster.

Each task is (key, args) and runs ``fn(*args)``; results are yielded as they complete, in
any order. Results depend only on the task arguments, never on the backend or worker count.
"""
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from tqdm import tqdm

from kmc.errors import ConfigError


def resolve_workers(workers):
    return workers if workers > 0 else (os.cpu_count() or 1)


def run_tasks(fn, tasks, *, workers=1, backend="local", scheduler="", progress=True,
              description="realizations"):
    """Yield (key, result) for every (key, args) in ``tasks``."""
    tasks = list(tasks)
    workers = resolve_workers(workers)
    bar = tqdm(total=len(tasks), desc=description, unit="task", disable=not progress,
               dynamic_ncols=True)
    try:
        if backend == "dask":
            yield from _dask(fn, tasks, workers, scheduler, bar)
        elif backend == "local" and (workers == 1 or len(tasks) <= 1):
            for key, args in tasks:
                result = fn(*args)
                bar.update()
                yield key, result
        elif backend == "local":
            yield from _pool(fn, tasks, workers, bar)
        else:
            raise ConfigError("ensemble.backend", f"expected 'local' or 'dask', got {backend!r}")
    finally:
        bar.close()


def _pool(fn, tasks, workers, bar):
    # forkserver: no fork of a process that already runs threads (tqdm, BLAS)
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
        futures = {pool.submit(fn, *args): key for key, args in tasks}
        try:
            for future in as_completed(futures):
                bar.update()
                yield futures[future], future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _dask(fn, tasks, workers, scheduler, bar):
    try:
        from dask.distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError:
        raise ConfigError("ensemble.backend", "'dask' needs the dask extra: "
                                              "pip install 'glassrelax[dask]'") from None
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = {client.submit(fn, *args, pure=False): key for key, args in tasks}
        for future in dask_completed(futures):
            bar.update()
            yield futures[future], future.result()
            future.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
