"""Figures of a time-domain result file: KMC, mean-field dynamics and linear prediction.

``three_curves_figure(res, curves)`` draws, for every observable of ``analysis.compare``
(one column each), the three curves of every point on one normalisation (per site) and one
measured baseline: KMC as markers with a band of one standard error over realizations,
the mean-field dynamics as a solid line with its band, the linear prediction dashed; below,
the residual panel: the realization mean of KMC_k - model_k in units of its own standard
error (solid: against mean-field dynamics, dashed: against the linear prediction), with
the +-2 band. ``aging_figure(res, curves)`` draws the response against t/t_w with the
jointly fitted -A ln(1 + t_w/t) (``analysis.response.fit_log_aging``).

Conventions as ``analysis.figures``: one colour and marker per point, legends by physical
values, mathtext units; the caller saves in the run's ``output.format``.
"""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import labels as lb
from .plots_rates import kind_handle, style

YLABEL = {
    "excess_energy": (r"$[E(t) - E(t_L)]/N$ ($J$ per site)",
                      r"$[E(t) - E(t_L)]/N$ ($J$ per site)"),
    "projection": (r"$\sum_i g_i\,[x_i(t) - x_i(t_L)]/N$", r"$P(t)/N$"),
    "energy_response": (r"$[E(t) - E_{\mathrm{twin}}(t)]/N$ ($J$ per site)",) * 2,
}
TITLE = {
    "excess_energy": "excess energy",
    "projection": "projection on the pulse pattern $g$",
    "energy_response": "energy response",
}
KINDS = (("meanfield", "-", "mean-field dynamics"), ("linear", "--", "linear prediction"))


def _time_tex(t):
    """Mathtext of a waiting time: 10^k for powers of ten (one style for every t_w)."""
    k = np.log10(t)
    return f"10^{{{int(round(k))}}}" if t > 0 and abs(k - round(k)) < 1e-9 else lb.value_tex(t)


def three_curves_figure(curves, names, title, model, protocol, experiment=None):
    """Figure of ThreeCurves per point and observable.

    Parameters
    ----------
    curves : list over points of lists of ``analysis.compare.ThreeCurves`` (same
        observables in every point)
    names : list of str or None, legend label per point
    title : str, the fixed parameters
    model : "tls" or "electron"; protocol : "quench", "pulse" or "response"
    experiment : str or None, the title's description of the experiment (mathtext);
        None = the protocol's name
    """
    observables = [c.name for c in curves[0]]
    ncols = len(observables)
    fig = Figure(figsize=(max(6.4, 5.4 * ncols), 6.2), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, ncols, height_ratios=(3.0, 1.4))
    unit = lb.TIME_UNIT[model]
    drawn = set()
    for col, obs in enumerate(observables):
        ax = fig.add_subplot(grid[0, col])
        res_ax = fig.add_subplot(grid[1, col], sharex=ax)
        for p, point_curves in enumerate(curves):
            cur = next(c for c in point_curves if c.name == obs)
            st = style(p)
            t = cur.times
            mean, se = cur.mean("kmc"), cur.stderr("kmc")
            ax.fill_between(t, mean - se, mean + se, color=st["color"], alpha=0.2, lw=0)
            ax.plot(t, mean, ls="none", marker=st["marker"], ms=3.5, color=st["color"],
                    label=names[p] if names and names[p] else None)
            for kind, ls, _ in KINDS:
                if kind not in cur.rows:
                    continue
                drawn.add(kind)
                m = cur.mean(kind)
                ax.plot(t, m, ls=ls, color=st["color"], lw=1.1)
                if kind == "meanfield":
                    s = cur.stderr(kind)
                    ax.fill_between(t, m - s, m + s, color=st["color"], alpha=0.1, lw=0)
                z = cur.residual(kind)[0]
                res_ax.plot(t, z, ls=ls, color=st["color"], lw=1.0, marker=st["marker"],
                            ms=2.5)
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_xscale("log")
        ax.set_ylabel(YLABEL[obs][0 if protocol != "response" else 1])
        ax.set_title(f"({'abcd'[col]}) {TITLE[obs]}", loc="left", fontsize="medium")
        ax.tick_params(labelbottom=False)
        res_ax.axhspan(-2.0, 2.0, color="0.85", lw=0)
        res_ax.axhline(0.0, color="0.5", lw=0.6)
        res_ax.set_xscale("log")
        res_ax.set_xlabel(f"$t$ (${unit}$)")
        res_ax.set_ylabel(r"(KMC $-$ model) / SE")
        zs = [np.abs(c.residual(k)[0]) for pc in curves for c in pc if c.name == obs
              for k in c.rows if k != "kmc"]
        zmax = max([float(np.nanmax(z)) for z in zs if np.isfinite(z).any()], default=0.0)
        lim = max(3.0, 1.15 * zmax)
        if lim > 10.0:      # a few large residuals must not flatten the +-2 band
            res_ax.set_yscale("symlog", linthresh=3.0)
            ticks = [v for v in (2, 10, 30, 100, 300, 1000) if v <= lim]
            res_ax.set_yticks([-v for v in ticks[::-1]] + [0] + ticks,
                              [f"{-v}" for v in ticks[::-1]] + ["0"] + [f"{v}" for v in ticks])
        res_ax.set_ylim(-lim, lim)
        if col == 0:
            handles, _ = ax.get_legend_handles_labels()
            handles.append(kind_handle("none", "KMC (band: 1 SE)", marker="o"))
            handles += [kind_handle(ls, label) for kind, ls, label in KINDS if kind in drawn]
            ax.legend(handles=handles, frameon=False, fontsize="small")
    notes = sorted({c.note for pc in curves for c in pc if c.note})
    what = {"quench": "quench", "pulse": "bias pulse", "response": "linear response"}
    head = (f"{experiment or what.get(protocol, protocol)}; baseline: {curves[0][0].baseline}"
            + "".join(f"\n{note}" for note in notes))
    fig.suptitle(f"{head}\n{title}", fontsize="medium")
    return fig


def aging_figure(curves, waiting_times, title, model, window=None):
    """The response P(t)/N of every t_w against t/t_w: KMC with bands, mean-field dynamics
    (solid), linear prediction (dashed), and -A ln(1 + t_w/t) fitted jointly to the KMC
    curves (one amplitude, weights 1/SE^2).

    curves : list over points of ThreeCurves of the projection; waiting_times : list of
    float. Returns (Figure, AgingFit or None when no KMC point has a positive SE).
    """
    from .response import Estimate, fit_log_aging, log_aging_form
    est = {tw: (c.times, Estimate(c.mean("kmc"), c.stderr("kmc"), c.rows["kmc"].shape[0]))
           for tw, c in zip(waiting_times, curves)}
    try:
        fit = fit_log_aging(est, window)
    except ValueError:          # no time with a positive SE (e.g. no event differed)
        fit = None
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = []
    order = np.argsort(waiting_times)
    for p in order:
        tw, c = waiting_times[p], curves[p]
        st = style(int(p))
        x = c.times / tw
        xs.append(x)
        mean, se = c.mean("kmc"), c.stderr("kmc")
        ax.fill_between(x, mean - se, mean + se, color=st["color"], alpha=0.2, lw=0)
        ax.plot(x, mean, ls="none", marker=st["marker"], ms=3.5, color=st["color"],
                label=f"$t_w = {_time_tex(tw)}$")
        for kind, ls, _ in KINDS:
            if kind in c.rows:
                ax.plot(x, c.mean(kind), ls=ls, color=st["color"], lw=1.0)
    grid = np.logspace(np.log10(min(v.min() for v in xs)), np.log10(max(v.max() for v in xs)),
                       200)
    if fit is not None:
        amp = lb.value_error(fit.amplitude, fit.stderr)
        ax.plot(grid, log_aging_form(grid, 1.0, fit.amplitude), color="k", lw=1.4, ls=":",
                label=rf"$-A\,\ln(1 + t_w/t)$, $A = {amp}$" + "\n"
                      + rf"($\chi^2$/dof = {fit.chi2:.0f}/{fit.dof})")
    else:
        ax.plot([], [], color="k", lw=1.4, ls=":",
                label=r"$-A\,\ln(1 + t_w/t)$ not fitted: no KMC point with SE > 0")
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel(r"$t/t_w$")
    ax.set_ylabel(r"$P(t)/N = \sum_i g_i\,[x_i(t) - x_i^{\mathrm{twin}}(t)]/N$")
    handles, _ = ax.get_legend_handles_labels()
    handles.append(kind_handle("none", "KMC (band: 1 SE)", marker="o"))
    handles += [kind_handle(ls, label) for _, ls, label in KINDS]
    ax.legend(handles=handles, frameon=False, fontsize="small")
    ax.set_title(f"aging after a bias pulse of duration $t_w$\n{title}",
                 fontsize="medium")
    return fig, fit
