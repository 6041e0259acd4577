"""The top of the pipeline: run the ensemble, then analyse the finished file.

``kmc.pipeline.run.run`` computes and stores rows; it never imports the analysis
(docs/architecture.md). This module sits above both: ``run`` is the whole job the ``kmc
run`` command does (rows, then point summaries, then figures), and ``finish`` is the
analysis part alone, for a file whose rows are written.
"""
from kmc.pipeline import run as pipeline

from .summary import summarise


def finish(path, *, realizations=None, figures=True):
    """Write the point summaries of a result file and, if asked, its figures.

    Parameters
    ----------
    path : result file with its rows written
    realizations : int or None, rows per point to summarise (None: all)
    figures : bool

    Returns
    -------
    tuple of Path, the figures written
    """
    summarise(path, realizations)
    if not figures:
        return ()
    from .figures import figures_for_run  # matplotlib only when figures are made
    return tuple(figures_for_run(path))


def run(config, *, out=None, workers=None, backend=None, progress=True, figures=None,
        resume=False):
    """Run (or resume) ``config`` and analyse the result (the ``kmc run`` command).

    Parameters
    ----------
    config : RunConfig
    out, workers, backend, progress, resume : as ``kmc.pipeline.run.run``
    figures : bool or None; None = ``output.figures``

    Returns
    -------
    kmc.pipeline.run.RunSummary, with the figures written
    """
    draw = config.output.figures if figures is None else figures
    return pipeline.run(config, out=out, workers=workers, backend=backend, progress=progress,
                        resume=resume, after_run=lambda path, cfg: finish(
                            path, realizations=cfg.ensemble.realizations, figures=draw))
