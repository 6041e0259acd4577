"""The main job: an ensemble of realizations per sweep point, written to an HDF5 file.

This computes and stores rows only. Summaries and figures are made from the finished file
by the analysis layer (``analysis.run``), which the ``kmc`` command calls after this job
(docs/architecture.md: the engine never runs the analysis).
"""
import logging
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from kmc.errors import ConfigError, ResultFileError
from kmc.pipeline import memory, realization
from kmc.pipeline.ensemble import run_tasks
from kmc.storage import store
from kmc.storage.schema import Status, checkpoint_dir, dos_edges

log = logging.getLogger("kmc")


@dataclass(frozen=True)
class RunSummary:
    """What a run did: the file, realizations computed now, found already done, and not
    converged among those computed now; ``figures`` is filled by the analysis layer."""

    path: Path
    computed: int
    skipped: int
    not_converged: int
    figures: tuple = ()


def resolve(config, *, out=None, workers=None, backend=None):
    """``config`` with the command-line overrides of the output path, workers and backend."""
    ens = config.ensemble
    if workers is not None:
        ens = replace(ens, workers=workers)
    if backend is not None:
        ens = replace(ens, backend=backend)
    output = config.output if out is None else replace(config.output, path=str(out))
    return replace(config, ensemble=ens, output=output)


def run(config, *, out=None, workers=None, backend=None, progress=True, resume=False,
        overwrite=False, after_run=None):
    """Run (or resume) ``config``; realizations already in the result file are skipped.

    Parameters
    ----------
    config : RunConfig
    out : path, optional; overrides ``output.path``
    workers, backend : override ``ensemble.workers`` / ``ensemble.backend``
    progress : bool, show a progress bar
    resume : bool, refuse to start a new file (the result file must exist)
    overwrite : bool, delete an existing result file (and its checkpoints) first, under
        the file's lock; a directory is still refused
    after_run : callable or None
        ``after_run(path, config)`` runs on the finished file while this run still holds
        its lock (the analysis layer passes its summaries and figures here) and returns
        the paths of the figures it wrote.

    Returns
    -------
    RunSummary

    Raises
    ------
    ResultFileError
        The output path cannot hold this run's file, or another run is writing it; a
        refused run leaves nothing it created behind.
    """
    config = resolve(config, out=out, workers=workers, backend=backend)
    path = Path(config.output.path)
    config.check_files()  # refuse unreadable inputs and what cannot fit,
    memory.check(config)  # before anything is created
    created = store.check_target(path)
    try:
        with store.locked(path):  # first: another run writing it is the news to report
            if resume and not path.is_file():
                raise ResultFileError(f"{path}: no result file to resume (run without "
                                      f"--resume to start it)")
            if overwrite:
                store.remove_result(path)
            writer = store.ResultWriter(path, config)
            if writer.existed:
                log.info("%s exists; continuing it (finished realizations are skipped)", path)
            try:
                summary = _compute(config, writer, progress)
            except ConfigError:
                # refused inside a task (e.g. a hop cut-off that leaves a site without
                # pairs): a file this run created and nothing finished in goes away
                if not writer.existed and len(writer.todo()) == len(writer.points) * \
                        config.ensemble.realizations:
                    store.remove_result(path)
                raise
            if after_run is not None:
                summary = replace(summary, figures=tuple(after_run(path, config)))
            return summary
    except (ResultFileError, ConfigError):
        store.remove_dirs(created)
        raise
    finally:
        store.remove_dirs([Path(checkpoint_dir(path))])  # only if empty


def _compute(config, writer, progress):
    ens = config.ensemble
    todo = writer.todo()
    total = len(writer.points) * ens.realizations
    log.debug("%s: %d point(s) x %d realization(s), %d to compute, workers %s, backend %s",
              writer.path, len(writer.points), ens.realizations, len(todo), ens.workers,
              ens.backend)
    started = time.monotonic()
    edges = [dos_edges(point_config) for _, point_config in writer.points]
    tasks = [((p, k), (writer.points[p][1], ens.seed, p, k, edges[p])) for p, k in todo]
    not_converged = 0
    last_flush = time.monotonic()
    try:
        for (p, k), row in run_tasks(realization.compute, tasks, workers=ens.workers,
                                     backend=ens.backend, scheduler=ens.scheduler,
                                     dashboard=ens.dashboard, progress=progress):
            writer.add(p, k, row)
            if "dynamics/aging_time_used" in row:   # response protocol: the aging it used
                log.info("point %d realization %d: aged %.4g (%d aging time(s) tried); twin "
                         "drift %.3g +- %.3g over the window, %s", p, k,
                         row["dynamics/aging_time_used"], row["dynamics/aging_attempts"],
                         row["dynamics/twin_drift"], row["dynamics/twin_drift_stderr"],
                         "negligible" if row["dynamics/aging_stationary"] == 1
                         else "not measured negligible")
            if row["status"] != Status.CONVERGED:
                not_converged += 1
                warnings.warn(f"point {p} realization {k}: mean field did not converge "
                              f"(residual {row['residual']:.3g} after "
                              f"{row['sweeps']} sweeps); recorded with status "
                              f"{int(Status.NOT_CONVERGED)}", stacklevel=3)
            if time.monotonic() - last_flush >= config.output.flush_seconds:
                writer.flush()
                last_flush = time.monotonic()
    finally:
        writer.flush()  # whatever finished is kept, also on Ctrl-C or an error
    log.debug("%s: %d realization(s) computed in %.3g s", writer.path, len(todo),
              time.monotonic() - started)
    return RunSummary(writer.path, len(todo), total - len(todo), not_converged)
