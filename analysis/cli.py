"""The ``kmc`` command: ``kmc.pipeline.cli`` with the analysis run on every finished file.

The command line lives in the pipeline (``kmc.pipeline.cli``), but what a finished run
file gets (point summaries, figures) is analysis, and ``kmc`` never imports ``analysis``
(docs/architecture.md). This module sits above both and plugs the analysis in. It is the
console script ``kmc`` (pyproject ``[project.scripts]``); ``python -m kmc`` hands over to
``python -m analysis.cli`` (``kmc/__main__.py``).
"""
import sys

from kmc.pipeline import cli


def after_run(path, config):
    """Summaries (over the ensemble the run asked for) and figures of a finished file."""
    # imported here, not at the top: `kmc check` and one-line errors need no SciPy
    from .run import finish
    return finish(path, realizations=config.ensemble.realizations,
                  figures=config.output.figures)


def main(argv=None):
    """``kmc`` command line; returns the exit status."""
    return cli.main(argv, after_run=after_run)


if __name__ == "__main__":
    sys.exit(main())
