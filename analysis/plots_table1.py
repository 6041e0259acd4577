"""Table I as a figure: lambda_min against the swept parameter, mean field beside KMC.

One panel per (model, parameter) present among the rows of ``analysis.table1``: rows of
the figure are the models, columns the parameters (W; J at fixed W^2 + J^2; N), as in the
paper's Table I. Each panel plots, against the swept parameter, lambda_min with its
standard error on a log axis:

- mean field (``Row``): the lower plateau edge of the linearized rates' density;
- KMC (``KMCRow``, where a response file of the same model and parameter is given): the
  lambda_min of the E1 form fitted to the measured response, and beside it the same fit
  of the linear prediction.

Series of one panel are shifted slightly along x (a fixed fraction of the axis span,
multiplicative on a log axis) so that their error bars do not overlap; the data
(``panels``) keep the true parameter values. A point whose lambda_min is not finite (a
fit at its search bound, '?' in the table) is not drawn and is named in the panel. The
panel title gives the paper's sign, the measured signs with z = ln(ratio)/SE of every
row, and the row's flag (``DISAGREES``, ``not reproduced``).

``panels(rows)`` returns what is drawn (tested against the rows' measures); ``table1_figure``
draws it; ``write_table1_figure`` saves it in the format of the file's suffix.
"""
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from . import labels as lb
from .table1 import KMCRow, MODEL_NAMES, PAPER_NOTES, PAPER_SIGNS

PNG_DPI = 150
FORMATS = ("png", "pdf", "svg")
PARAMETERS = ("W", "J", "N")
MODELS = ("tls", "electron")
# shift between neighbouring series, as a fraction of the x-axis span (log10 span on a
# log axis): enough for markers of 5 pt on a panel 5 inches wide not to overlap
SHIFT = 0.03

# kind -> (colour, marker, filled, legend prefix)
KINDS = {
    "meanfield": ("C0", "o", True, "mean field (linearized rates)"),
    "kmc": ("C3", "s", True, "KMC response (E1 fit)"),
    "linear": ("C2", "D", False, "linear prediction (same fit)"),
}
XLABEL = {
    "W": "disorder $W$",
    "J": "interaction $J$ (at fixed $W^2 + J^2$)",
    "N": "system size $N$ (fixed density)",
}
PARAMETER_TITLE = {"W": "increase of disorder $W$", "J": "increase of interaction $J$",
                   "N": "increase of system size $N$"}


@dataclass(frozen=True)
class Series:
    """One set of points of a panel.

    kind : "meanfield", "kmc" or "linear"
    label : legend text (mathtext)
    x : (P,) float, the swept parameter of each point (W, J or N), increasing
    y : (P,) float, lambda_min, rate units of the model (NaN: not determined)
    yerr : (P,) float, its standard error (NaN: not determined)
    """

    kind: str
    label: str
    x: np.ndarray
    y: np.ndarray
    yerr: np.ndarray


@dataclass(frozen=True)
class Panel:
    """What one panel shows: the series of every row of one (model, parameter), and the
    title lines with the paper's and the measured signs."""

    model: str
    parameter: str
    series: tuple
    title: str


def _sign_text(c):
    """'+ (z = +3.4)', '0 (n.s., z = +0.3)' or '?' of a table1.Change."""
    if c is None or c.sign == "?":
        return "?"
    z = round(c.z, 1) + 0.0          # + 0.0: no "-0.0"
    zt = f"z = {z:+.1f}" if math.isfinite(z) else "z n/a"
    return f"0 (n.s., {zt})" if c.sign == "0" else f"{c.sign} ({zt})"


def _row_signs(row):
    """'MF lambda_min: + (z = ...); median: ...' of one row, its flag on a line below."""
    if isinstance(row, KMCRow):
        text = f"KMC: {_sign_text(row.lambda_min)}; linear: {_sign_text(row.linear)}"
    else:
        text = (rf"MF $\lambda_{{\min}}$: {_sign_text(row.lambda_min)}; "
                f"median: {_sign_text(row.median_rate)}")
    return text + (f"\n    flag: {row.flag}" if row.flag else "")


def _series(row):
    x = np.array([m.value for m in row.points], dtype=float)
    tail = f":\n{row.setting}" if row.setting else ""
    if isinstance(row, KMCRow):
        return (Series("kmc", KINDS["kmc"][3] + tail, x,
                       np.array([m.lambda_min for m in row.points], dtype=float),
                       np.array([m.lambda_min_se for m in row.points], dtype=float)),
                Series("linear", KINDS["linear"][3], x,
                       np.array([m.predicted for m in row.points], dtype=float),
                       np.array([m.predicted_se for m in row.points], dtype=float)))
    return (Series("meanfield", KINDS["meanfield"][3] + tail, x,
                   np.array([m.lambda_min for m in row.points], dtype=float),
                   np.array([m.lambda_min_se for m in row.points], dtype=float)),)


def panels(rows):
    """The panels of the Table I figure, in Table I's order.

    Parameters
    ----------
    rows : sequence of table1.Row / table1.KMCRow (``table1.table_row``)

    Returns
    -------
    list of Panel, one per (model, parameter) present: mean-field rows first, then KMC
    rows (each a KMC and a linear-prediction series), in the order given.
    """
    out = []
    for model in MODELS:
        for parameter in PARAMETERS:
            mine = [r for r in rows if (r.model, r.parameter) == (model, parameter)]
            if not mine:
                continue
            mine = ([r for r in mine if not isinstance(r, KMCRow)]
                    + [r for r in mine if isinstance(r, KMCRow)])
            paper = PAPER_SIGNS[(model, parameter)]
            note = PAPER_NOTES.get((model, parameter))
            head = (f"{MODEL_NAMES[model]}, {PARAMETER_TITLE[parameter]}\n"
                    f"paper: {paper}" + (f" ({note})" if note else ""))
            lines = [head] + [_row_signs(r) for r in mine]
            series = tuple(s for r in mine for s in _series(r))
            out.append(Panel(model, parameter, series, "\n".join(lines)))
    return out


def _shifted(x, k, n, log):
    """x of series k of n, shifted by SHIFT of the span per step around the true value."""
    lo, hi = np.nanmin(x), np.nanmax(x)
    step = k - (n - 1) / 2.0
    if log:
        span = math.log10(hi / lo) if hi > lo else 1.0
        return x * 10.0 ** (SHIFT * span * step)
    span = hi - lo if hi > lo else 1.0
    return x + SHIFT * span * step


def _tick(v):
    """Tick label of a sweep value: exact for integers (N, W), 3 digits else (the J of a
    W/J sweep at fixed W^2 + J^2, e.g. 0.144)."""
    v = float(v)
    return f"${lb.value_tex(v)}$" if v.is_integer() else f"${v:.3g}$"


def _draw(ax, panel):
    xs = np.concatenate([s.x for s in panel.series])
    log = bool(np.all(xs > 0) and xs.max() >= 4 * xs.min())
    missing = []
    lows, highs = [], []
    for k, s in enumerate(panel.series):
        color, marker, filled, _ = KINDS[s.kind]
        ok = np.isfinite(s.y) & (s.y > 0)
        for v in s.x[~ok]:
            missing.append(f"{KINDS[s.kind][3].split(' (')[0]} at "
                           f"${panel.parameter} = {lb.value_tex(float(v))}$")
        x = _shifted(s.x, k, len(panel.series), log)[ok]
        y, e = s.y[ok], s.yerr[ok]
        e = np.where(np.isfinite(e), e, 0.0)
        # on a log axis a bar reaching zero or below has no lower end: draw it to the
        # bottom of the panel (clipped there), the upper end as measured
        lower = np.where(e < y, e, y * (1 - 1e-12))
        ax.errorbar(x, y, yerr=[lower, e], ls="none", marker=marker, ms=5, color=color,
                    mfc=color if filled else "white", elinewidth=0.9, capsize=2.5,
                    label=s.label)
        lows += list(np.where(e < y, y - e, y / 10.0))
        highs += list(y + e)
    ax.set_yscale("log")
    if log:
        ax.set_xscale("log")
    if lows:
        lo, hi = min(lows), max(highs)
        ax.set_ylim(lo / 10 ** (0.08 * math.log10(hi / lo) + 0.05),
                    hi * 10 ** (0.08 * math.log10(hi / lo) + 0.05))
    values = np.unique(xs)
    ax.set_xticks(values, [_tick(v) for v in values])
    ax.xaxis.set_minor_locator(NullLocator())   # the ticks are the sweep's own values
    pad = 10 ** 0.12 if log else None
    if log:
        ax.set_xlim(values.min() / pad, values.max() * pad)
    ax.set_xlabel(XLABEL[panel.parameter])
    ax.set_ylabel(rf"$\lambda_{{\min}}$ (${lb.RATE_UNIT[panel.model]}$)")
    title = panel.title
    if missing:
        title += "\nnot drawn (no finite fit): " + ", ".join(missing)
    ax.set_title(title, loc="left", fontsize="small")
    # below the axes: the settings make long entries that would cover points inside
    ax.legend(frameon=False, fontsize="x-small", loc="upper center",
              bbox_to_anchor=(0.5, -0.14), ncols=1)


def table1_figure(rows):
    """Figure of Table I: one panel per (model, parameter) of ``rows`` (module docstring).

    Parameters
    ----------
    rows : sequence of table1.Row / table1.KMCRow

    Returns
    -------
    matplotlib.figure.Figure (Agg canvas)
    """
    data = panels(rows)
    if not data:
        raise ValueError("no Table I rows to draw")
    models = [m for m in MODELS if any(p.model == m for p in data)]
    params = [q for q in PARAMETERS if any(p.parameter == q for p in data)]
    fig = Figure(figsize=(5.6 * len(params), 6.4 * len(models)), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(models), len(params))
    letters = iter("abcdef")
    for i, model in enumerate(models):
        for j, parameter in enumerate(params):
            panel = next((p for p in data if (p.model, p.parameter) == (model, parameter)),
                         None)
            if panel is None:
                continue
            ax = fig.add_subplot(grid[i, j])
            _draw(ax, Panel(panel.model, panel.parameter, panel.series,
                            f"({next(letters)}) {panel.title}"))
    # wrapped to the figure's width (about 75 characters of the medium font per panel):
    # a figure of one panel must not cut its title off
    head = (r"Table I: slowest relaxation rate $\lambda_{\min}$ (error bars: 1 SE; a bar "
            r"down to the lower edge: SE $\geq$ value).")
    legend = ("+ faster relaxation (larger rates) from the smallest to the largest "
              "parameter, 0 (n.s.) not significant, ? not determined, z = ln(last/first) / "
              r"SE. The level of $\lambda_{\min}$ depends on each file's fixed parameters "
              "(legend); Table I compares directions.")
    width = 75 * len(params)
    fig.suptitle("\n".join(textwrap.wrap(head, width) + textwrap.wrap(legend, width)),
                 fontsize="medium")
    return fig


def write_table1_figure(rows, out):
    """Draw ``table1_figure(rows)`` and save it to ``out`` (format from its suffix: png at
    150 dpi, pdf or svg). Returns the path."""
    out = Path(out)
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"--figure: expected a file ending in one of "
                         f"{', '.join('.' + f for f in FORMATS)}, got {str(out)!r}")
    fig = table1_figure(rows)
    with matplotlib.rc_context({"pdf.fonttype": 42, "svg.fonttype": "path"}):
        fig.savefig(out, dpi=PNG_DPI if fmt == "png" else None)
    return out
