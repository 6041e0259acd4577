"""Command line of the analysis package: ``python -m analysis table1 FILE [FILE ...]
[--details] [--figure PATH]`` (Table I as text, and as a figure with ``--figure``),
``python -m analysis compare FILE [FILE ...]`` (KMC, mean-field dynamics and linear
prediction of dynamics result files, ``analysis.compare.format_comparison``).

Bad input (missing file, not a result file, no rates, mixed models, no recognised sweep)
ends with one line on stderr and exit status 2; no traceback.
"""
import argparse
import sys


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Analyses of glassrelax result files.")
    sub = parser.add_subparsers(dest="command", required=True)
    t1 = sub.add_parser(
        "table1", help="print the paper's Table I as measured from sweep result files",
        description="Table I (direction of the relaxation speed) from sweep result files: "
                    "one file per (model, parameter), sweeping disorder.W, W_over_J (J at "
                    "fixed W^2 + J^2) or model.N. Measures: lambda_min and the median rate, "
                    "each with its standard error; see analysis/table1.py.")
    t1.add_argument("files", nargs="+", metavar="FILE", help="result files (.h5) of kmc run")
    t1.add_argument("--details", action="store_true",
                    help="also print the measures of every sweep point")
    t1.add_argument("--figure", metavar="PATH",
                    help="also draw the table: lambda_min against the swept parameter, one "
                         "panel per (model, parameter), mean field beside KMC and the "
                         "linear prediction (analysis/plots_table1.py); format from the "
                         "suffix: .png, .pdf or .svg")
    cmp = sub.add_parser(
        "compare", help="slopes and residuals of KMC, mean-field dynamics and linear "
                        "prediction of dynamics result files (analysis/compare.py)")
    cmp.add_argument("files", nargs="+", metavar="FILE", help="result files (.h5) of kmc run")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    from pathlib import Path

    from .table1 import TableError, format_details, format_table, table_row
    if args.command == "compare":
        from .compare import format_comparison
        for path in args.files:
            if not Path(path).is_file():
                print(f"analysis: {path}: no such file", file=sys.stderr)
                return 2
            print(format_comparison(path))
        return 0
    if args.figure is not None:
        from .plots_table1 import FORMATS
        if Path(args.figure).suffix.lstrip(".").lower() not in FORMATS:
            print(f"analysis: --figure: expected a file ending in one of "
                  f"{', '.join('.' + f for f in FORMATS)}, got {args.figure!r}",
                  file=sys.stderr)
            return 2
    try:
        rows = []
        for path in args.files:
            if not Path(path).is_file():
                raise TableError(f"{path}: no such file")
            rows.append(table_row(path))
    except TableError as exc:
        print(f"analysis: {exc}", file=sys.stderr)
        return 2
    if args.details:
        for row in rows:
            print(format_details(row))
            print()
    print(format_table(rows))
    if args.figure is not None:
        from .plots_table1 import write_table1_figure
        print(f"figure: {write_table1_figure(rows, args.figure)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
