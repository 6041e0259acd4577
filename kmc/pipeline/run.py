"""The main job: an ensemble of realizations per sweep point, written to an HDF5 file."""
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from kmc.pipeline import memory, realization

from kmc.storage import store
from kmc.pipeline.ensemble import run_tasks


@dataclass(frozen=True)
class RunSummary:
    path: Path
    computed: int
    skipped: int
    not_converged: int
    figures: tuple


def run(config, *, out=None, workers=None, backend=None, progress=True, figures=None):
    """Run (or resume) ``config``; realizations already in the result file are skipped.

    Parameters
    ----------
    config : RunConfig
    out : path, optional; overrides ``output.path``
    workers, backend : override ``ensemble.workers`` / ``ensemble.backend``
    figures : bool, optional; overrides ``output.figures``

    Returns
    -------
    RunSummary
    """
    ens = config.ensemble
    if workers is not None:
        ens = replace(ens, workers=workers)
    if backend is not None:
        ens = replace(ens, backend=backend)
    output = config.output if out is None else replace(config.output, path=str(out))
    config = replace(config, ensemble=ens, output=output)
    memory.check(config)  # refuse what cannot fit before the result file is created
    writer = store.ResultWriter(config.output.path, config)
    todo = writer.todo()
    total = len(writer.points) * config.ensemble.realizations
    edges = [store.dos_edges(point_config) for _, point_config in writer.points]
    tasks = [((p, k), (writer.points[p][1], ens.seed, p, k, edges[p])) for p, k in todo]
    not_converged = 0
    last_flush = time.monotonic()
    try:
        for (p, k), payload in run_tasks(realization.compute, tasks, workers=ens.workers,
                                         backend=ens.backend, scheduler=ens.scheduler,
                                         progress=progress):
            writer.add(p, k, payload)
            if payload["status"] != store.CONVERGED:
                not_converged += 1
                warnings.warn(f"point {p} realization {k}: mean field did not converge "
                              f"(residual {payload['residual']:.3g} after "
                              f"{payload['sweeps']} sweeps); recorded with status 2",
                              stacklevel=2)
            if time.monotonic() - last_flush >= config.output.flush_seconds:
                writer.flush()
                last_flush = time.monotonic()
    finally:
        writer.flush()  # whatever finished is kept, also on Ctrl-C or an error
    writer.flush(finalize=True)
    made = ()
    if config.output.figures if figures is None else figures:
        from analysis.figures import figures_for_run
        made = tuple(figures_for_run(config.output.path))
    return RunSummary(Path(config.output.path), len(todo), total - len(todo), not_converged,
                      made)
