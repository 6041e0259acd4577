"""Command line: ``kmc run FILE`` and ``kmc check FILE``.

Bad input ends with one line on stderr (``kmc: model.temperature: must be > 0, got -1``)
and exit status 2; no traceback. Ctrl-C keeps everything already finished (exit 130).

This module parses, runs the pipeline and prints; what happens to a finished file
(summaries, figures) is the ``after_run`` hook given by the layer above. The ``kmc``
command is ``analysis.cli.main``, which passes the analysis as that hook
(docs/architecture.md); called without a hook, ``kmc run`` writes the rows only.
"""
import argparse
import sys
import warnings

from kmc.errors import ConfigError, ResultFileError
from kmc.pipeline import config as config_module


def _parser():
    parser = argparse.ArgumentParser(prog="kmc", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) the ensemble of a run file")
    run.add_argument("file", help="TOML run file")
    run.add_argument("--out", help="result file (default: output.path of the run file)")
    run.add_argument("--resume", action="store_true",
                     help="continue an existing result file (rerunning does the same)")
    run.add_argument("--workers", type=int, help="worker processes (0: all cores)")
    run.add_argument("--backend", choices=("local", "dask"), help="where tasks run")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a run-file value, e.g. --set model.N=200 (repeatable)")
    run.add_argument("--no-figures", action="store_true", help="do not write PNG figures")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    check = sub.add_parser("check", help="validate a run file without running it")
    check.add_argument("file")
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return parser


def main(argv=None, *, after_run=None):
    """Entry point; returns the exit status.

    Parameters
    ----------
    argv : list of str or None (sys.argv[1:])
    after_run : callable or None
        ``after_run(path, config, figures)`` is called on the finished result file of
        ``kmc run`` (``figures``: bool) and returns the paths of the figures it wrote.
    """
    args = _parser().parse_args(argv)
    try:
        config = config_module.load(args.file, args.set)
        if args.command == "check":
            points = config.points()
            print(f"{args.file}: ok ({config.model.name}, {len(points)} point(s) x "
                  f"{config.ensemble.realizations} realization(s))")
            return 0
        return _run(config, args, after_run)
    except (ConfigError, ResultFileError) as exc:
        print(f"kmc: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kmc: interrupted; finished realizations are saved, rerun to resume",
              file=sys.stderr)
        return 130


def _run(config, args, after_run):
    from pathlib import Path

    from kmc.pipeline.run import resolve, run
    config = resolve(config, out=args.out, workers=args.workers, backend=args.backend)
    out = config.output.path
    if Path(out).exists() and not args.resume:
        print(f"kmc: {out} exists; continuing it (finished realizations are skipped)",
              file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.formatwarning = lambda msg, *a, **k: f"kmc: warning: {msg}\n"
        summary = run(config, progress=not args.quiet)
        figures = ()
        if after_run is not None:
            figures = after_run(summary.path, config,
                                config.output.figures and not args.no_figures)
    print(f"results: {summary.path} ({summary.computed} computed, {summary.skipped} already "
          f"done, {summary.not_converged} not converged)")
    for fig in figures:
        print(f"figure:  {fig}")
    if after_run is None:
        print("kmc: rows only (no summaries, no figures): the analysis runs through the "
              "`kmc` command or `python -m kmc`", file=sys.stderr)
    _print_comparison(summary.path)
    return 1 if summary.not_converged else 0


def _print_comparison(path):
    """One line per point: simulated relaxation against the linear prediction."""
    from kmc.storage.results import load
    from kmc.storage.schema import point_name
    res = load(path)
    for p in range(len(res.points)):
        c = res.comparison(p)
        if c is None:
            continue
        print(f"{point_name(p)}: window 1/lambda_max..1/lambda_min = {1 / c.lambda_max:.3g}.."
              f"{1 / c.lambda_min:.3g}; max |sim - pred|/pred = "
              f"{c.max_rel_deviation:.3g}; slope d|dx|/dln t: simulated "
              f"{c.slope_simulated:.4g} +- {c.slope_simulated_se:.2g}, predicted "
              f"{c.slope_predicted:.4g}, log form {c.slope_log:.4g}")


if __name__ == "__main__":
    sys.exit(main())
