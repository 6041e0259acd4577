"""Figures of rate distributions, interaction effects and predicted relaxation.

Every function returns a ``matplotlib.figure.Figure`` drawn on the Agg canvas (no pyplot
state, no display); the caller saves it with ``fig.savefig(path)``.

- ``rate_distribution_figure``: the paper's two-panel rate figures (Figs. 3, 6, 7, 9, 11,
  13, 15): (a) density of ln(lambda) with standard-error bars and the plateau edges,
  (b) density of lambda in the cut-off window with the 1/lambda fit.
- ``relative_error_figure``: (lambda' - lambda)/lambda' against lambda' (Figs. 17-19) and
  the two sorted rate sets (Fig. 20).
- ``distance_spectrum_figure``: ln(lambda) density of the bare distance matrix for several
  N with the nearest-neighbour estimate of Eq. A2 (Fig. 16).
- ``relaxation_figure``: predicted |dsigma|(t) with its error band, the E1 form and the
  logarithmic form on a log-time axis.
"""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kmc.solvers.linear.electron import nn_distance_estimate


def _figure(ncols, width=5.0, height=3.8):
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, k + 1) for k in range(ncols)]
    return fig, axes


def _centres(edges):
    edges = np.asarray(edges)
    return 0.5 * (edges[1:] + edges[:-1])


def rate_distribution_figure(log_histograms, linear_histograms=None, fits=None,
                             cutoffs=None, labels=None, rate_unit="rate"):
    """Two-panel rate distribution: (a) ln(lambda) density, (b) linear window with 1/lambda fit.

    Parameters
    ----------
    log_histograms : list of (edges, mean, sem)
        From ``analysis.rates.rate_histogram(..., log=True)``, one per curve.
    linear_histograms : list of (edges, mean, sem) or None
        From ``rate_histogram(..., log=False)`` over the cut-off window; None = one panel.
    fits : list of InverseRateFit or None
        From ``analysis.rates.fit_inverse_rate``; drawn as C / lambda in panel (b).
    cutoffs : list of (lambda_min, lambda_max) or None
        Marked as vertical lines at ln(lambda) in panel (a).
    labels : list of str or None
    rate_unit : str
        Unit label of lambda for the axes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(log_histograms)
    labels = labels or [None] * n
    fig, axes = _figure(2 if linear_histograms is not None else 1)
    ax = axes[0]
    for k, (edges, mean, sem) in enumerate(log_histograms):
        line = ax.errorbar(_centres(edges), mean, yerr=sem, fmt=".", ms=3, capsize=0,
                           label=labels[k])
        if cutoffs is not None:
            for value in cutoffs[k]:
                if np.isfinite(value):
                    ax.axvline(np.log(value), color=line[0].get_color(), ls="--", lw=0.8)
    ax.set_xlabel(rf"$\ln\lambda$ ($\lambda$ in {rate_unit})")
    ax.set_ylabel(r"$p(\ln\lambda)$")
    ax.set_title("(a)", loc="left")
    if any(labels):
        ax.legend(frameon=False)
    if linear_histograms is not None:
        ax = axes[1]
        for k, (edges, mean, sem) in enumerate(linear_histograms):
            x = _centres(edges)
            line = ax.errorbar(x, mean, yerr=sem, fmt=".", ms=3, capsize=0, label=labels[k])
            if fits is not None and fits[k] is not None:
                grid = np.linspace(x[0], x[-1], 200)
                ax.plot(grid, fits[k].amplitude / grid, color=line[0].get_color(), lw=1,
                        label=rf"$C/\lambda$, $\beta = {fits[k].exponent:.2f}"
                              rf"\pm{fits[k].exponent_se:.2f}$")
        ax.set_xlabel(rf"$\lambda$ ({rate_unit})")
        ax.set_ylabel(r"$p(\lambda)$")
        ax.set_title("(b)", loc="left")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
        ax.legend(frameon=False, fontsize="small")
    return fig


def relative_error_figure(lam_with, rel_error, lam_without=None, label=None):
    """Relative error (lambda' - lambda)/lambda' against lambda' (Figs. 17-19) and, if
    ``lam_without`` is given, both sorted rate sets against their index (Fig. 20).

    Parameters
    ----------
    lam_with, rel_error : (N,) float
        From ``analysis.rates.paired_relative_error``.
    lam_without : (N,) float or None
        Rates without the interaction term.
    label : str or None
        Title, e.g. the parameters.
    """
    fig, axes = _figure(2 if lam_without is not None else 1)
    ax = axes[0]
    ax.semilogx(lam_with, rel_error, ".", ms=3)
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xlabel(r"$\lambda'$ (with interaction term)")
    ax.set_ylabel(r"$(\lambda' - \lambda)/\lambda'$")
    if label:
        ax.set_title(label)
    if lam_without is not None:
        ax = axes[1]
        idx = np.arange(len(lam_with))
        ax.semilogy(idx, np.sort(lam_without), "*", ms=3, label=r"$f_{ij} = 0$")
        ax.semilogy(idx, np.sort(lam_with), "+", ms=4, label=r"$f_{ij} \neq 0$")
        ax.set_xlabel("index")
        ax.set_ylabel(r"$\lambda$")
        ax.legend(frameon=False)
    return fig


def distance_spectrum_figure(log_histograms, n_sites, xi, d=2, side=None, labels=None):
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
    """
    fig, (ax,) = _figure(1)
    labels = labels or [f"N = {n}" for n in n_sites]
    for (edges, mean, sem), n, lab in zip(log_histograms, n_sites, labels):
        x = _centres(edges)
        line = ax.errorbar(x, mean, yerr=sem, fmt=".", ms=3, capsize=0, label=lab)
        grid = np.linspace(edges[0], edges[-1], 400)
        # a nearest-neighbour pair relaxes at 2 e^(-r/xi): ln(lambda) = ln 2 + x (Eq. A2)
        est = nn_distance_estimate(grid - np.log(2.0), n, xi, d=d,
                                   side=None if side is None else side(n))
        ax.plot(grid, est, color=line[0].get_color(), lw=1)
    ax.set_xlabel(r"$\ln\lambda$")
    ax.set_ylabel(r"$p(\ln\lambda)$")
    ax.set_title(rf"$A_{{ij}} = e^{{-r_{{ij}}/\xi}}$, $\xi = {xi:g}$; lines: Eq. A2")
    ax.legend(frameon=False)
    return fig


def relaxation_figure(series, label=None, time_unit="1/rate"):
    """Predicted relaxation on a log-time axis with the E1 and logarithmic forms.

    Parameters
    ----------
    series : RelaxationSeries
        From ``analysis.relaxation.relaxation_series``.
    label : str or None
    time_unit : str
    """
    fig, (ax,) = _figure(1)
    t = series.times
    ax.semilogx(t, series.mean, "-", lw=1.5, label=label or r"$\sum_i c_i e^{-\lambda_i t}$")
    if np.all(np.isfinite(series.sem)):
        ax.fill_between(t, series.mean - series.sem, series.mean + series.sem, alpha=0.3,
                        lw=0)
    ax.semilogx(t, series.e1, "--", lw=1, label=r"$E_1$ form")
    window = (t > 1.0 / series.lambda_max) & (t < 1.0 / series.lambda_min)
    ax.semilogx(t[window], series.log[window], ":", lw=1.5,
                label=r"$-c[\gamma_E + \ln(\lambda_{\min} t)]/\ln(\lambda_{\max}/\lambda_{\min})$")
    for value in (1.0 / series.lambda_max, 1.0 / series.lambda_min):
        ax.axvline(value, color="0.6", lw=0.6)
    ax.set_xlabel(f"t ({time_unit})")
    ax.set_ylabel(r"$|\delta\sigma|(t)$")
    ax.set_ylim(bottom=min(0.0, float(np.min(series.mean))))
    ax.legend(frameon=False, fontsize="small")
    return fig
