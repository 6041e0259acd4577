"""Figures of a result file, written next to it (Agg canvas, no display).

Each ``*_figure(path)`` writes its file and returns the path (``save=False``: returns the
``Figure`` instead). Every figure shows every sweep point, one colour and marker per point (the same in every
panel), legends name the points by their physical values (``analysis.labels``: W/J =
sqrt(97), not ``W_over_J = 9.84886``), titles name what is fixed, and axes carry units in
mathtext. A histogram drawn from few values (one realization) is coarsened until its
occupied bins average at least 10 values (``analysis.binning``); the stored summaries are
not changed.

The file format follows ``output.format`` of the run: "png" (150 dpi, for the screen),
"pdf" or "svg" (vector, for print; fonts embedded as TrueType in PDF).
"""
import json
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import kmc

from . import labels as lb
from .binning import bin_count, merge_bins, merge_factor
from .dos import normalised_dos
from .plots_rates import points

PNG_DPI = 150
# DOS curves whose widths differ by more than this factor are drawn against E/W
_DOS_WIDTH_SPREAD = 4.0


def _figure(ncols=1, width=6.0, height=4.2):
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, ncols, k + 1) for k in range(ncols)]


def _save(fig, path, suffix, fmt=None):
    """Write ``<stem>_<suffix>.<fmt>`` next to the result file; fmt None = the run's
    ``output.format``."""
    fmt = fmt or _format(path)
    out = Path(path).with_name(Path(path).stem + f"_{suffix}.{fmt}")
    with matplotlib.rc_context({"pdf.fonttype": 42, "svg.fonttype": "path"}):
        fig.savefig(out, dpi=PNG_DPI if fmt == "png" else None)
    return out


def _format(path):
    """``output.format`` of the run that wrote the file (files without it: png)."""
    config = kmc.load(path).attrs.get("config", {})
    if isinstance(config, str):
        config = json.loads(config)
    return config.get("output", {}).get("format", "png")


def _context(res, used=None):
    """(legend labels, title text) of a result file's points."""
    configs = [p.config for p in res.points]
    used = [u for u in (used or []) if u is not None]
    same = used and all(u == used[0] for u in used)
    title = lb.fixed_parameters(configs, realizations=used[0] if same else None)
    names = [n or None for n in lb.point_labels([p.values for p in res.points])]
    if used and not same:
        names = [f"{n or ''} ({u} real.)".strip() for n, u in zip(names, used)]
    return names, title


def _positive_rates(res, point, name="rates"):
    rows = res.rows(name, point)
    return [r[np.isfinite(r) & (r > 0)] for r in rows]


# ---------------------------------------------------------------------------------------


def dos_figure(path, out=None, save=True):
    """Mean-field DOS of every point, mean with standard-error bars (Figs. 1, 2, 4, 5, 8,
    10, 12, 14).

    Points whose DOS widths differ by more than a factor 4 while W varies (Figs. 4 and 10:
    W = 1, 10, 100) are drawn against E/W with density W g(E), so that every curve fills
    the axis; otherwise against E.
    """
    res = kmc.load(path)
    curves, used = [], []
    for p, point in enumerate(res.points):
        dos = res.dos(p)
        if dos is None:
            curves.append(None)
            used.append(None)
            continue
        counts = res.rows("dos/counts", p)
        edges, merged = merge_bins(dos.edges, counts, merge_factor(counts))
        mean, sem = normalised_dos(merged, edges, point.config.model.N)
        centres = 0.5 * (edges[1:] + edges[:-1])
        curves.append((centres, mean, sem))
        used.append(dos.n_used)
    names, title = _context(res, used)
    w = np.array([p.config.disorder.W for p in res.points])
    j = np.array([p.config.disorder.J for p in res.points])
    widths = [np.sqrt(np.sum(m * c * c) / np.sum(m)) for c, m, _ in filter(None, curves)]
    by_w = (len(widths) > 1 and max(widths) > _DOS_WIDTH_SPREAD * min(widths)
            and np.ptp(w) > 0 and np.all(w > 0))
    fig, (ax,) = _figure()
    for k, curve in enumerate(curves):
        if curve is None:
            continue
        c, m, s = curve
        scale = w[k] if by_w else 1.0
        points(ax, c / scale, m * scale, s * scale, k, label=names[k], ms=3, lw=0.8)
    if by_w:
        ax.set_xlabel("$E/W$")
        ax.set_ylabel(r"$W\,g(E)$ (states per site per unit $E/W$)")
    else:
        energy = "E/J" if np.all(j == 1.0) else "E"
        ax.set_xlabel(f"${energy}$")
        ax.set_ylabel(rf"$g(E)$ (states per site per unit ${'J' if energy == 'E/J' else 'E'}$)")
    ax.set_ylim(bottom=0.0)   # a gap's depth reads against zero
    ax.set_title(f"mean-field density of states\n{title}", fontsize="medium")
    if any(names):
        ax.legend(frameon=False, fontsize="small")
    if not save:
        return fig
    if out is not None:
        fig.savefig(out, dpi=PNG_DPI)
        return Path(out)
    return _save(fig, path, "dos")


def rates_figure(path, save=True):
    """Rate distributions of every point: (a) ln(lambda) density with the plateau edges,
    (b) the cut-off window on a linear scale with the fitted C/lambda (Figs. 3, 6, 7, 9,
    11, 13, 15).

    The histograms are those of ``analysis.rates.rate_histogram`` on the stored rates of the
    converged realizations, with the run's bins unless that leaves fewer than 10 rates per
    bin; the cut-offs and the fit are the stored summary values.
    """
    from analysis.plots_rates import rate_distribution_figure
    from analysis.rates import InverseRateFit, rate_histogram
    res = kmc.load(path)
    logs, lins, fits, cuts, used = [], [], [], [], []
    for p, point in enumerate(res.points):
        lin = res.linear(p)
        rates = _positive_rates(res, p)
        n = sum(r.size for r in rates)
        logs.append(rate_histogram(rates, bin_count(n, point.config.linear.bins), log=True))
        if lin.lin_edges is not None:
            lo, hi = float(lin.lin_edges[0]), float(lin.lin_edges[-1])
            inside = sum(int(np.sum((r >= lo) & (r <= hi))) for r in rates)
            lins.append(rate_histogram(rates, bin_count(inside, lin.lin_edges.size - 1),
                                       log=False, range=(lo, hi)))
        fits.append(InverseRateFit(**lin.fit, n_bins=0) if lin.fit is not None else None)
        cuts.append((lin.lambda_min, lin.lambda_max))
        used.append(lin.n_used)
    names, title = _context(res, used)
    fig = rate_distribution_figure(logs, lins if len(lins) == len(logs) else None, fits, cuts,
                                   names, rate_unit=lb.RATE_UNIT[res.model],
                                   title=f"relaxation rates of the linearized mean field\n{title}")
    return _save(fig, path, "rates") if save else fig


def prediction_figure(path, save=True):
    """Predicted relaxation of every point, sum_i c_i e^(-lambda_i t) with c_i = 1/N, with
    its E1 and logarithmic forms (Eqs. 15-17; electron glass: |dn| over the modes of A,
    Eq. 24)."""
    from analysis.plots_rates import relaxation_figure
    from analysis.relaxation import RelaxationSeries
    res = kmc.load(path)
    series, keep, used = [], [], []
    for p in range(len(res.points)):
        lin = res.linear(p)
        if lin is None or lin.relaxation is None:
            continue
        rel = lin.relaxation
        series.append(RelaxationSeries(rel["times"], rel["mean"], rel["sem"], rel["e1"],
                                       rel["log"], lin.lambda_min, lin.lambda_max, lin.n_used))
        keep.append(p)
        used.append(lin.n_used)
    if not series:
        return None
    names, title = _context(res, [u for u in used])
    names = [names[p] for p in keep]
    obs = r"|\delta\sigma|" if res.model == "tls" else r"|\delta n|"
    fig = relaxation_figure(series, labels=names if any(names) else None,
                            time_unit=lb.TIME_UNIT[res.model], model=res.model,
                            title=f"predicted ${obs}(t)$, uniform $c = 1/N$\n{title}")
    return _save(fig, path, "prediction") if save else fig


def interaction_error_figure(path, point=0, realization=0, save=True):
    """Relative error of the rates with and without the interaction term (Figs. 17-20)."""
    from analysis.plots_rates import relative_error_figure
    from analysis.rates import paired_relative_error
    res = kmc.load(path)
    with_f = res.rows("rates_interacting", point)[realization]
    # TLS: the same refined fixed point without f; electron: A without the Eq. 23 term
    name = "rates_refined" if res.model == "tls" else "rates"
    without = np.sort(res.rows(name, point)[realization])
    lam, err = paired_relative_error(with_f, without)
    names, title = _context(res)
    label = title if not names[point] else f"{title}, {names[point]}"
    fig = relative_error_figure(lam, err, without, label=f"{label}, one realization",
                                rate_unit=lb.RATE_UNIT[res.model])
    return _save(fig, path, "interaction_error") if save else fig


def distance_figure(path, save=True):
    """Spectrum of the bare distance matrix e^(-r/xi) with the Eq. A2 estimate (Fig. 16)."""
    from analysis.plots_rates import distance_spectrum_figure
    from analysis.rates import rate_histogram
    res = kmc.load(path)
    hists, sizes, used = [], [], []
    for p, point in enumerate(res.points):
        rates = _positive_rates(res, p, "rates_distance")
        hists.append(rate_histogram(rates, bin_count(sum(r.size for r in rates), 60), log=True))
        sizes.append(point.config.model.N)
        used.append(len(rates))
    names, title = _context(res, used)
    m = res.points[0].config.model
    fig = distance_spectrum_figure(
        hists, sizes, m.xi, d=m.d, labels=names if all(names) else None,
        title=rf"bare distance matrix $A_{{ij}} = e^{{-r_{{ij}}/\xi}}$" + f"\n{title}")
    return _save(fig, path, "distance_matrix") if save else fig


def dynamics_figure(path, save=True):
    """KMC, mean-field dynamics and linear prediction of every point, on one normalisation
    (per site) and one measured baseline, with error bands and the residual panel
    (``analysis.compare.dynamics_curves``, ``analysis.plots_dynamics``).

    Quench: the excess energy against each curve's own value at the last sample time.
    Pulse: the same and the projection on the pulse pattern. Response: the projection and
    the energy, perturbed minus twin. Other protocols: None.
    """
    from analysis.compare import dynamics_curves
    from analysis.plots_dynamics import three_curves_figure
    res = kmc.load(path)
    curves = [dynamics_curves(res, p) for p in range(len(res.points))]
    if not all(curves):
        return None
    names, title = _context(res, [c[0].rows["kmc"].shape[0] for c in curves])
    dyn = res.points[0].config.dynamics
    # a sweep that scales the pulse with T (Table I by KMC) names F per point in the legend
    strengths = {p.config.dynamics.pulse_strength for p in res.points}
    pulse = (f"$F = {lb.value_tex(dyn.pulse_strength)}$" if len(strengths) == 1
             else "$F$ per point")
    experiment = {"quench": f"quench from $T_0 = {lb.value_tex(dyn.initial_temperature)}$",
                  "pulse": f"bias pulse {pulse}",
                  "response": f"linear response, pulse {pulse}"
                              + (f", $\\delta T = {lb.value_tex(dyn.temperature_step)}$"
                                 if dyn.temperature_step else "")}.get(dyn.protocol)
    fig = three_curves_figure(curves, names, title, res.model, dyn.protocol, experiment)
    return _save(fig, path, "dynamics") if save else fig


def aging_figure(path, save=True):
    """The response of every waiting time against t/t_w with the fitted -A ln(1 + t_w/t)
    (``analysis.plots_dynamics.aging_figure``); None unless the file is a response run
    with at least two waiting times."""
    from analysis.compare import dynamics_curves
    from analysis.plots_dynamics import aging_figure as draw
    res = kmc.load(path)
    if res.points[0].config.dynamics.protocol != "response":
        return None
    waits = [p.config.dynamics.waiting_time for p in res.points]
    if len(set(waits)) < 2:
        return None
    curves = [next(c for c in dynamics_curves(res, p) if c.name == "projection")
              for p in range(len(res.points))]
    _, title = _context(res, [c.rows["kmc"].shape[0] for c in curves])
    fig, _ = draw(curves, waits, title, res.model)
    return _save(fig, path, "aging") if save else fig


def figures_for_run(path, fmt=None):
    """Every figure a finished run makes; returns their paths.

    fmt : "png", "pdf", "svg" or None
        File format; None = the run's ``output.format``. Redraws an existing file in
        another format, e.g. ``figures_for_run("results/x.h5", fmt="pdf")``.
    """
    if fmt not in (None, "png", "pdf", "svg"):
        raise ValueError(f"fmt: expected one of 'png', 'pdf', 'svg', got {fmt!r}")
    fmt = fmt or _format(path)
    res = kmc.load(path)
    config = res.points[0].config
    jobs = [("dos", dos_figure)]
    if config.linear.enabled:
        jobs += [("rates", rates_figure), ("prediction", prediction_figure)]
        if config.linear.interactions:
            jobs.append(("interaction_error", interaction_error_figure))
        if config.linear.distance_matrix and res.model == "electron":
            jobs.append(("distance_matrix", distance_figure))
    if config.dynamics.enabled:
        jobs += [("dynamics", dynamics_figure), ("aging", aging_figure)]
    made = []
    for suffix, draw in jobs:
        fig = draw(path, save=False)
        if fig is not None:
            made.append(_save(fig, path, suffix, fmt))
    return made
