"""The main job: an ensemble of realizations per sweep point, written to an HDF5 file.

This computes and stores rows only. Summaries and figures are made from the finished file
by the analysis layer (``analysis.run``), which the ``kmc`` command calls after this job
(docs/architecture.md: the engine never runs the analysis).
"""
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from kmc.pipeline import realization
from kmc.pipeline.ensemble import run_tasks
from kmc.storage import store
from kmc.storage.schema import Status, dos_edges


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


def run(config, *, out=None, workers=None, backend=None, progress=True):
    """Run (or resume) ``config``; realizations already in the result file are skipped.

    Parameters
    ----------
    config : RunConfig
    out : path, optional; overrides ``output.path``
    workers, backend : override ``ensemble.workers`` / ``ensemble.backend``
    progress : bool, show a progress bar

    Returns
    -------
    RunSummary
    """
    config = resolve(config, out=out, workers=workers, backend=backend)
    ens = config.ensemble
    writer = store.ResultWriter(config.output.path, config)
    todo = writer.todo()
    total = len(writer.points) * ens.realizations
    edges = [dos_edges(point_config) for _, point_config in writer.points]
    tasks = [((p, k), (writer.points[p][1], ens.seed, p, k, edges[p])) for p, k in todo]
    not_converged = 0
    last_flush = time.monotonic()
    try:
        for (p, k), row in run_tasks(realization.compute, tasks, workers=ens.workers,
                                     backend=ens.backend, scheduler=ens.scheduler,
                                     progress=progress):
            writer.add(p, k, row)
            if row["status"] != Status.CONVERGED:
                not_converged += 1
                warnings.warn(f"point {p} realization {k}: mean field did not converge "
                              f"(residual {row['residual']:.3g} after "
                              f"{row['sweeps']} sweeps); recorded with status "
                              f"{int(Status.NOT_CONVERGED)}", stacklevel=2)
            if time.monotonic() - last_flush >= config.output.flush_seconds:
                writer.flush()
                last_flush = time.monotonic()
    finally:
        writer.flush()  # whatever finished is kept, also on Ctrl-C or an error
    return RunSummary(Path(config.output.path), len(todo), total - len(todo), not_converged)
