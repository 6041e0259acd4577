"""Figures of rate distributions, interaction effects and predicted relaxation.

Every function returns a ``matplotlib.figure.Figure`` drawn on the Agg canvas (no pyplot
state, no display); the caller saves it with ``fig.savefig(path)``.

- ``rate_distribution_figure``: the paper's two-panel rate figures (Figs. 3, 6, 7, 9, 11,
  13, 15): (a) density of ln(lambda) with standard-error bars and the plateau edges,
  (b) density of lambda in the cut-off window with the fitted C/lambda.
- ``relative_error_figure``: (lambda' - lambda)/lambda' against lambda' (Figs. 17-19) and
  the two sorted rate sets (Fig. 20).
- ``distance_spectrum_figure``: ln(lambda) density of the bare distance matrix for several
  N with the nearest-neighbour estimate of Eq. A2 (Fig. 16).
- ``relaxation_figure``: predicted relaxation of every point with its error band, the E1
  form and the logarithmic form on a log-time axis.

Conventions: one colour and one marker per sweep point, the same in every panel; one
legend entry per point and one per kind of line (fits, cut-offs, continuum forms), drawn in
grey; labels and units in mathtext (``analysis.labels``). Curves with a single realization
have no error bars (there is no spread to show).
"""
import re

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.ticker import ScalarFormatter

from kmc.solvers.linear.electron import nn_distance_estimate

from .labels import value_error

MARKERS = ("*", "s", "^", "o", "d", "v", "P", "X")
GREY = "0.45"

# a window whose lambda_min values differ by more than this factor is drawn in units of
# each point's own lambda_min, else the curves would sit decades apart on one linear axis
_SCALE_SPREAD = 3.0


def _figure(ncols, width=5.0, height=3.8):
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, k + 1) for k in range(ncols)]
    return fig, axes


def _centres(edges):
    edges = np.asarray(edges)
    return 0.5 * (edges[1:] + edges[:-1])


def style(k):
    """Colour and marker of curve k (the same in every panel and figure)."""
    return {"color": f"C{k % 10}", "marker": MARKERS[k % len(MARKERS)]}


def points(ax, x, mean, sem, k, label=None, ms=4, lw=0.0):
    """Mean with standard-error bars (none where the error is not finite, e.g. one
    realization) in the style of curve k."""
    st = style(k)
    sem = np.asarray(sem, dtype=float)
    yerr = np.where(np.isfinite(sem), sem, 0.0) if np.any(np.isfinite(sem)) else None
    return ax.errorbar(x, mean, yerr=yerr, color=st["color"], marker=st["marker"], ms=ms,
                       lw=lw, elinewidth=0.7, capsize=0, label=label)


def kind_handle(ls, label, marker=None):
    """Grey legend proxy for a kind of line drawn once per point in the points' colours."""
    return Line2D([], [], color=GREY, ls=ls, lw=1.2, marker=marker, label=label)


def _sci_axis(axis):
    fmt = ScalarFormatter(useMathText=True)
    fmt.set_powerlimits((-2, 3))
    axis.set_major_formatter(fmt)


def _inverse(unit):
    """1/unit in mathtext, with parentheses unless the unit is one symbol (\\Gamma_0)."""
    single = re.fullmatch(r"\\?[A-Za-z]+(_[A-Za-z0-9]|_\{[^}]*\})?", unit)
    return f"1/{unit}" if single else f"1/({unit})"


def _unit(unit):
    return f" (${unit}$)" if unit else ""


def rate_distribution_figure(log_histograms, linear_histograms=None, fits=None,
                             cutoffs=None, labels=None, rate_unit=None, title=None,
                             scaled=None):
    """Two-panel rate distribution: (a) ln(lambda) density, (b) cut-off window with C/lambda.

    Parameters
    ----------
    log_histograms : list of (edges, mean, sem)
        From ``analysis.rates.rate_histogram(..., log=True)``, one per curve.
    linear_histograms : list of (edges, mean, sem) or None
        From ``rate_histogram(..., log=False)`` over the cut-off window; None = one panel.
    fits : list of InverseRateFit or None
        From ``analysis.rates.fit_inverse_rate``; the fitted C / lambda is drawn in (b).
    cutoffs : list of (lambda_min, lambda_max) or None
        Marked as vertical dashed lines at ln(lambda) in panel (a).
    labels : list of str or None
    rate_unit : str or None
        Mathtext unit of lambda (without $), e.g. ``aJ^3``.
    title : str or None
        Figure title (the fixed parameters).
    scaled : bool or None
        Panel (b) in units of each curve's lambda_min (x = lambda/lambda_min,
        y = lambda_min p(lambda), where C/lambda becomes C/x with the same C). None: scaled
        when the lambda_min of the curves differ by more than a factor 3.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(log_histograms)
    labels = labels or [None] * n
    fig, axes = _figure(2 if linear_histograms is not None else 1)
    ax = axes[0]
    for k, (edges, mean, sem) in enumerate(log_histograms):
        points(ax, _centres(edges), mean, sem, k, label=labels[k], ms=3)
        if cutoffs is not None:
            for value in cutoffs[k]:
                if np.isfinite(value):
                    ax.axvline(np.log(value), color=style(k)["color"], ls="--", lw=0.8)
    unit = f", $\\lambda$ in ${rate_unit}$" if rate_unit else ""
    ax.set_xlabel(rf"$\ln\lambda${unit}")
    ax.set_ylabel(r"$p(\ln\lambda)$")
    ax.set_title("(a)", loc="left")
    handles, _ = ax.get_legend_handles_labels()
    if cutoffs is not None:
        handles.append(kind_handle("--", r"$\lambda_{\min}$, $\lambda_{\max}$"))
    if any(labels) or cutoffs is not None:
        ax.legend(handles=handles, frameon=False, fontsize="small")
    if linear_histograms is not None:
        _window_panel(axes[1], linear_histograms, fits, cutoffs, labels, rate_unit, scaled)
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig


def _window_panel(ax, histograms, fits, cutoffs, labels, rate_unit, scaled):
    lmins = [float(edges[0]) for edges, _, _ in histograms]
    if scaled is None:
        spread = max(lmins) / min(lmins) if min(lmins) > 0 else np.inf
        scaled = len(histograms) > 1 and spread > _SCALE_SPREAD
    handles = []
    for k, (edges, mean, sem) in enumerate(histograms):
        x, y, e = _centres(edges), np.asarray(mean), np.asarray(sem, dtype=float)
        s = lmins[k] if scaled else 1.0
        bars = points(ax, x / s, y * s, e * s, k, ms=3)
        parts = [bars]
        if fits is not None and fits[k] is not None:
            grid = np.linspace(x[0], x[-1], 200)
            (line,) = ax.plot(grid / s, fits[k].amplitude / grid * s,
                              color=style(k)["color"], lw=1)
            parts.append(line)
        handles.append(tuple(parts))
    if scaled:
        ax.set_xlabel(r"$\lambda/\lambda_{\min}$")
        ax.set_ylabel(r"$\lambda_{\min}\,p(\lambda)$")
    else:
        ax.set_xlabel(r"$\lambda$" + _unit(rate_unit))
        ax.set_ylabel(r"$p(\lambda)$" + (f" (${_inverse(rate_unit)}$)" if rate_unit else ""))
        _sci_axis(ax.xaxis)
        _sci_axis(ax.yaxis)
    ax.set_title("(b)", loc="left")
    texts = []
    for k in range(len(histograms)):
        name = labels[k] if labels and labels[k] else ""
        if fits is not None and fits[k] is not None:
            c = f"$C = {value_error(fits[k].amplitude, fits[k].amplitude_se)}$"
            name = f"{name}: {c}" if name else c
        texts.append(name)
    if not any(np.any(np.isfinite(np.asarray(sem, dtype=float))) for _, _, sem in histograms):
        ax.text(0.97, 0.97, "one realization: no error bars, no fit", transform=ax.transAxes,
                ha="right", va="top", fontsize="small", color=GREY)
    if fits is not None and any(f is not None for f in fits):
        ax.legend(handles, texts, handler_map={tuple: HandlerTuple(ndivide=None)},
                  frameon=False, fontsize="small",
                  title=r"lines: fitted $p(\lambda) = C/\lambda$", title_fontsize="small")
    elif any(texts):
        ax.legend(handles, texts, handler_map={tuple: HandlerTuple(ndivide=None)},
                  frameon=False, fontsize="small")


def relative_error_figure(lam_with, rel_error, lam_without=None, label=None, rate_unit=None):
    """Relative error (lambda' - lambda)/lambda' against lambda' (Figs. 17-19) and, if
    ``lam_without`` is given, both sorted rate sets against their rank (Fig. 20).

    Parameters
    ----------
    lam_with, rel_error : (N,) float
        From ``analysis.rates.paired_relative_error``.
    lam_without : (N,) float or None
        Rates without the interaction term.
    label : str or None
        Title, e.g. the parameters.
    rate_unit : str or None
        Mathtext unit of the rates (without $).
    """
    fig, axes = _figure(2 if lam_without is not None else 1)
    ax = axes[0]
    ax.semilogx(lam_with, rel_error, ".", ms=3, color=style(0)["color"])
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xlabel(r"$\lambda'$" + _unit(rate_unit) + r", with the interaction term $f_{ij}$")
    ax.set_ylabel(r"$(\lambda' - \lambda)/\lambda'$")
    ax.set_title("(a)", loc="left")
    if label:
        fig.suptitle(label, fontsize="medium")
    if lam_without is not None:
        ax = axes[1]
        idx = np.arange(len(lam_with))
        ax.semilogy(idx, np.sort(lam_without), "*", ms=4, label=r"$f_{ij} = 0$")
        ax.semilogy(idx, np.sort(lam_with), "+", ms=5, label=r"$f_{ij} \neq 0$")
        ax.set_xlabel("rank")
        ax.set_ylabel(r"$\lambda$" + _unit(rate_unit))
        ax.set_title("(b)", loc="left")
        ax.legend(frameon=False)
    return fig


def distance_spectrum_figure(log_histograms, n_sites, xi, d=2, side=None, labels=None,
                             title=None):
    """ln(lambda) density of the bare distance matrix with the Eq. A2 estimate (Fig. 16).

    Parameters
    ----------
    log_histograms : list of (edges, mean, sem)
        ``rate_histogram(..., log=True)`` of ``distance_matrix_spectrum`` rates, one per N.
    n_sites : list of int
        N of each histogram.
    xi : float
        Localization length, units of r_nn.
    d : int
    side : callable or None
        side(N) -> box side for the estimate; None = N^(1/d) (density 1). Pass
        ``lambda n: n ** 0.5 - 1`` for the paper's Eq. A2.
    labels : list of str or None
    title : str or None
    """
    fig, (ax,) = _figure(1, width=5.5)
    labels = labels or [f"$N = {n}$" for n in n_sites]
    for k, ((edges, mean, sem), n, lab) in enumerate(zip(log_histograms, n_sites, labels)):
        points(ax, _centres(edges), mean, sem, k, label=lab, ms=3)
        grid = np.linspace(edges[0], edges[-1], 400)
        # a nearest-neighbour pair relaxes at 2 e^(-r/xi): ln(lambda) = ln 2 + x (Eq. A2)
        est = nn_distance_estimate(grid - np.log(2.0), n, xi, d=d,
                                   side=None if side is None else side(n))
        ax.plot(grid, est, color=style(k)["color"], lw=1)
    ax.set_xlabel(r"$\ln\lambda$, $\lambda$ in units of the hop prefactor")
    ax.set_ylabel(r"$p(\ln\lambda)$")
    handles, _ = ax.get_legend_handles_labels()
    handles.append(kind_handle("-", "nearest-neighbour estimate, Eq. A2"))
    ax.legend(handles=handles, frameon=False, fontsize="small")
    ax.set_title(title or rf"$A_{{ij}} = e^{{-r_{{ij}}/\xi}}$, $\xi = {xi:g}$",
                 fontsize="medium")
    return fig


def relaxation_figure(series, label=None, time_unit=None, labels=None, model="tls",
                      title=None):
    """Predicted relaxation of one or several points on a log-time axis, with the E1 and
    logarithmic forms (Eqs. 15-17, 24).

    Parameters
    ----------
    series : RelaxationSeries or list of RelaxationSeries
        From ``analysis.relaxation.relaxation_series``; c_i = 1/N, so every curve starts at 1.
    label : str or None
        Legend label of a single series (kept for one-series calls); see ``labels``.
    time_unit : str or None
        Mathtext unit of t (without $), e.g. ``1/(aJ^3)``.
    labels : list of str or None
        One legend label per series.
    model : "tls" or "electron"
        Names the observable: |dsigma| over TLSs (Eq. 15) or |dn| over the eigenmodes of A
        (Eq. 24).
    title : str or None
    """
    many = isinstance(series, (list, tuple))
    series = list(series) if many else [series]
    labels = labels or ([label] if label else [None] * len(series))
    fig, (ax,) = _figure(1, width=6.0, height=4.2)
    obs = r"|\delta\sigma|" if model == "tls" else r"|\delta n|"
    mode = "i" if model == "tls" else "k"
    for k, s in enumerate(series):
        color = style(k)["color"]
        t = s.times
        name = labels[k] or rf"$\sum_{mode} c_{mode} e^{{-\lambda_{mode} t}}$"
        ax.semilogx(t, s.mean, "-", lw=1.6, color=color, label=name)
        if np.all(np.isfinite(s.sem)) and s.n_realizations > 1:
            ax.fill_between(t, s.mean - s.sem, s.mean + s.sem, alpha=0.25, lw=0, color=color)
        ax.semilogx(t, s.e1, "--", lw=1, color=color)
        window = (t > 1.0 / s.lambda_max) & (t < 1.0 / s.lambda_min)
        ax.semilogx(t[window], s.log[window], ":", lw=1.8, color=color)
        for value in (1.0 / s.lambda_max, 1.0 / s.lambda_min):
            ax.axvline(value, color=color, lw=0.6, alpha=0.5)
    handles, _ = ax.get_legend_handles_labels()
    # the TLS paper's Eqs. 16-17; the electron glass has only the log form, Eq. 24
    e1_eq, log_eq = (", Eq. 16", ", Eq. 17") if model == "tls" else ("", ", Eq. 24")
    handles += [kind_handle("--", r"$E_1$ form" + e1_eq),
                kind_handle(":", r"log form $-c[\gamma_E + \ln(\lambda_{\min}t)]$" + log_eq),
                Line2D([], [], color=GREY, lw=0.6, label=r"$1/\lambda_{\max}$, $1/\lambda_{\min}$")]
    ax.set_xlabel("$t$" + _unit(time_unit))
    ax.set_ylabel(rf"${obs}(t)\,/\,{obs}(0)$")
    low = min(float(np.min(s.mean)) for s in series)
    ax.set_ylim(min(0.0, low), 1.05)
    ax.legend(handles=handles, frameon=False, fontsize="small")
    ax.set_title(title or rf"predicted relaxation, uniform $c_{mode}$", fontsize="medium")
    return fig
