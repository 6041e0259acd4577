"""Command line: ``kmc run FILE``, ``kmc check FILE``, ``kmc show FILE`` and ``kmc keys``.

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


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (``kmc: argument --workers: ...``)."""

    def error(self, message):
        self.exit(2, f"kmc: {message}\n")


def _workers(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0 (0: every usable CPU), "
                                         f"got {text!r}")
    return value


def _parser():
    from kmc import __version__
    parser = _Parser(prog="kmc", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kmc (glassrelax) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) the ensemble of a run file")
    run.add_argument("file", help="TOML run file")
    run.add_argument("--out", help="result file (default: output.path of the run file)")
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="only continue an existing result file: refuse to start a new "
                            "one (a plain rerun also continues a matching file)")
    again.add_argument("--overwrite", action="store_true",
                       help="delete an existing result file (and its checkpoints) and start "
                            "afresh")
    run.add_argument("--workers", type=_workers,
                     help="worker processes (0: every CPU of the affinity mask / SLURM job)")
    run.add_argument("--backend", choices=("local", "dask"), help="where tasks run")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a run-file value, e.g. --set model.N=200 (repeatable)")
    run.add_argument("--no-figures", action="store_true", help="do not write PNG figures")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("-v", "--verbose", action="store_true",
                     help="also print debug messages (flushes, rewrites, timings)")
    run.add_argument("--log", metavar="FILE",
                     help="append every message, with its time, to FILE")
    check = sub.add_parser("check", help="validate a run file without running it")
    check.add_argument("file")
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    check.add_argument("--workers", type=_workers, help="workers for the memory estimate")
    show = sub.add_parser("show", help="summarise a result file (points, status, rates, "
                                       "comparison)")
    show.add_argument("file", help="result file (.h5) written by kmc run")
    keys = sub.add_parser("keys", help="every run-file key: default, accepted values, meaning")
    keys.add_argument("--markdown", action="store_true",
                      help="as docs/run-file.md (python -m kmc keys --markdown > docs/run-file.md)")
    return parser


def _logging(verbose=False, log_file=None):
    """Messages of the ``kmc`` logger: ``kmc: ...`` lines on stderr (INFO and up; DEBUG
    with -v) and, with --log FILE, every message with its time in FILE (appended)."""
    import logging
    logger = logging.getLogger("kmc")
    for handler in [h for h in logger.handlers if getattr(h, "_kmc_cli", False)]:
        logger.removeHandler(handler)
        handler.close()
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("kmc: %(message)s"))
    stderr.setLevel(logging.DEBUG if verbose else logging.INFO)
    handlers = [stderr]
    if log_file:
        try:
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except OSError as exc:
            raise ConfigError("--log", f"cannot write {log_file} ({exc.strerror})") from None
        handlers[-1].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handlers[-1].setLevel(logging.DEBUG)
    for handler in handlers:
        handler._kmc_cli = True
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


def main(argv=None, *, after_run=None):
    """Entry point; returns the exit status.

    Parameters
    ----------
    argv : list of str or None (sys.argv[1:])
    after_run : callable or None
        ``after_run(path, config)`` is called on the finished result file of ``kmc run``
        (``config.output.figures`` says whether to draw) and returns the paths of the
        figures it wrote (``kmc.pipeline.run.run``).
    """
    args = _parser().parse_args(argv)
    if args.command == "keys":
        sys.stdout.write(config_module.key_reference(markdown=args.markdown))
        return 0
    try:
        _logging(getattr(args, "verbose", False), getattr(args, "log", None))
        if args.command == "show":
            return _show(args.file)
        config = config_module.load(args.file, args.set)
        if args.command == "check":
            return _check(config, args)
        return _run(config, args, after_run)
    except (ConfigError, ResultFileError) as exc:
        print(f"kmc: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kmc: interrupted; finished realizations are saved, rerun to resume",
              file=sys.stderr)
        return 130


def _check(config, args):
    """The file is valid: its points with physical values, the overrides, the memory."""
    from kmc.pipeline import memory
    config.check_files()
    estimate = memory.check(config, workers=args.workers)
    points = config.points()
    print(f"{args.file}: ok ({config.model.name}, {len(points)} point(s) x "
          f"{config.ensemble.realizations} realization(s))")
    for key, value in config.overrides:
        print(f"override: {key} = {value!r}")
    for p, (values, point) in enumerate(points):
        m, dis = point.model, point.disorder
        swept = ", ".join(f"{k} = {v!r}" for k, v in values.items())
        physical = f"N = {m.N}, T = {m.temperature:.6g}, W = {dis.W:.6g}, J = {dis.J:.6g}"
        print(f"point {p}: {physical}" + (f"  ({swept})" if swept else ""))
    print(estimate.describe())
    return 0


def _run(config, args, after_run):
    from dataclasses import replace

    from kmc.pipeline.run import run
    hook = after_run
    if after_run is not None and args.no_figures:  # the stored config keeps its own value
        def hook(path, cfg):
            return after_run(path, replace(cfg, output=replace(cfg.output, figures=False)))
    import logging
    log = logging.getLogger("kmc")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda msg, *a, **k: log.warning("warning: %s", msg)
        summary = run(config, out=args.out, workers=args.workers, backend=args.backend,
                      progress=not args.quiet, resume=args.resume, overwrite=args.overwrite,
                      after_run=hook)
    print(f"results: {summary.path} ({summary.computed} computed, {summary.skipped} already "
          f"done, {summary.not_converged} not converged)")
    for fig in summary.figures:
        print(f"figure:  {fig}")
    if after_run is None:
        print("kmc: rows only (no summaries, no figures): the analysis runs through the "
              "`kmc` command or `python -m kmc`", file=sys.stderr)
    from kmc.pipeline.show import describe
    print(describe(summary.path))
    return 1 if summary.not_converged else 0


def _show(path):
    from pathlib import Path

    from kmc.pipeline.show import describe
    if not Path(path).is_file():
        raise ResultFileError(f"{path}: no such file")
    print(describe(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
