"""Figures of a result file, written as PNG next to it (headless Agg backend)."""
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import kmc  # noqa: E402

_MARKERS = ("*", "s", "^", "o", "d", "v", "x", "+")


def point_label(values, config):
    """Legend text of a sweep point: its swept values, or the main parameters."""
    if values:
        return ", ".join(f"{k.split('.')[-1]} = {v:g}" if isinstance(v, (int, float))
                         else f"{k} = {v}" for k, v in values.items())
    m, d = config.model, config.disorder
    return f"N = {m.N}, W = {d.W:g}, J = {d.J:g}, T = {m.temperature:g}"


def dos_figure(path, out=None):
    """DOS of every sweep point of a result file, mean with standard-error band."""
    res = kmc.load(path)
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    for p, point in enumerate(res.points):
        dos = res.dos(p)
        edges, mean, sem, used = dos.edges, dos.mean, dos.sem, dos.n_used
        centres = 0.5 * (edges[1:] + edges[:-1])
        label = f"{point_label(point.values, point.config)} ({used} real.)"
        ax.errorbar(centres, mean, yerr=sem, marker=_MARKERS[p % len(_MARKERS)], ms=3,
                    lw=0.8, elinewidth=0.6, capsize=0, label=label)
    kind = "TLS" if res.model == "tls" else "electron-glass"
    first = res.points[0].config
    ax.set_xlabel("E / J")
    ax.set_ylabel("DOS (per site per J)")
    ax.set_title(f"{kind} mean-field DOS, T = {first.model.temperature:g}"
                 if len(res.points) == 1 else f"{kind} mean-field DOS")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out) if out else Path(path).with_name(Path(path).stem + "_dos.png")
    fig.savefig(out)
    plt.close(fig)
    return out


def _save(fig, path, suffix):
    out = Path(path).with_name(Path(path).stem + f"_{suffix}.png")
    if not fig.get_layout_engine():
        fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _rate_unit(res):
    return "a J^3" if res.model == "tls" else "Gamma0"


def rates_figure(path):
    """Rate distributions of every point: ln(lambda) density with the cut-offs, and the
    cut-off window on a linear scale with the 1/lambda fit (Figs. 3, 6, 7, 9, 11, 13, 15)."""
    from analysis.plots_rates import rate_distribution_figure
    from analysis.rates import InverseRateFit
    res = kmc.load(path)
    logs, lins, fits, cuts, labels = [], [], [], [], []
    for p, point in enumerate(res.points):
        lin = res.linear(p)
        logs.append((lin.log_edges, lin.log_mean, lin.log_sem))
        if lin.lin_edges is not None:
            lins.append((lin.lin_edges, lin.lin_mean, lin.lin_sem))
        fits.append(InverseRateFit(**lin.fit, n_bins=0) if lin.fit is not None else None)
        cuts.append((lin.lambda_min, lin.lambda_max))
        labels.append(point_label(point.values, point.config))
    fig = rate_distribution_figure(logs, lins if len(lins) == len(logs) else None, fits, cuts,
                                   labels, rate_unit=_rate_unit(res))
    return _save(fig, path, "rates")


def prediction_figure(path):
    """Predicted relaxation sum_i c_i e^(-lambda_i t) of the first point with its E1 and
    logarithmic forms (Section III)."""
    from analysis.plots_rates import relaxation_figure
    from analysis.relaxation import RelaxationSeries
    res = kmc.load(path)
    lin = res.linear(0)
    if lin is None or lin.relaxation is None:
        return None
    rel = lin.relaxation
    series = RelaxationSeries(rel["times"], rel["mean"], rel["sem"], rel["e1"], rel["log"],
                              lin.lambda_min, lin.lambda_max, lin.n_used)
    fig = relaxation_figure(series, time_unit=f"1/({_rate_unit(res)})")
    return _save(fig, path, "prediction")


def interaction_error_figure(path, point=0, realization=0):
    """Relative error of the rates with and without the interaction term (Figs. 17-20)."""
    from analysis.plots_rates import relative_error_figure
    from analysis.rates import paired_relative_error
    res = kmc.load(path)
    with_f = res.dataset("rates_interacting", point)[realization]
    # TLS: the same refined fixed point without f; electron: A without the Eq. 23 term
    name = "rates_refined" if res.model == "tls" else "rates"
    without = np.sort(res.dataset(name, point)[realization])
    lam, err = paired_relative_error(with_f, without)
    fig = relative_error_figure(lam, err, without,
                                label=point_label(res.points[point].values, res.points[point].config))
    return _save(fig, path, "interaction_error")


def distance_figure(path):
    """Spectrum of the bare distance matrix e^(-r/xi) with the Eq. A2 estimate (Fig. 16)."""
    from analysis.plots_rates import distance_spectrum_figure
    from analysis.rates import rate_histogram
    res = kmc.load(path)
    hists, sizes = [], []
    for p, point in enumerate(res.points):
        rates = res.dataset("rates_distance", p)
        hists.append(rate_histogram([r[r > 0] for r in rates], 60, log=True))
        sizes.append(point.config.model.N)
    fig = distance_spectrum_figure(hists, sizes, res.points[0].config.model.xi,
                                   d=res.points[0].config.model.d)
    return _save(fig, path, "distance_matrix")


def dynamics_figure(path):
    """Simulated relaxation |dsigma|(t) (or |dn|(t)) and the excess energy on a log-time axis,
    mean and standard error over realizations, for every point."""
    res = kmc.load(path)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for p, point in enumerate(res.points):
        dyn = res.dynamics(p)
        cmp = res.comparison(p)
        times = dyn.times
        label = point_label(point.values, point.config)
        for ax, name in zip(axes, ("deviation", "excess_energy")):
            mean, err = dyn.mean[name], dyn.stderr[name]
            line = ax.errorbar(times, mean, yerr=err, marker=_MARKERS[p % len(_MARKERS)],
                               ms=3, lw=0.8, capsize=0, label=label)
            if name == "deviation" and cmp is not None:
                ax.plot(cmp.times, cmp.predicted, "--", color=line[0].get_color(), lw=1,
                        label="linear prediction (same estimator)")
    unit = "1/(a J^3)" if res.model == "tls" else "1/Gamma0"
    dev = r"$|\delta\sigma|(t)$" if res.model == "tls" else r"$|\delta n|(t)$"
    for ax, ylabel in zip(axes, (dev, "excess energy / J")):
        ax.set_xscale("log")
        ax.set_xlabel(f"t ({unit})")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=7)
    return _save(fig, path, "dynamics")


def figures_for_run(path):
    """Every figure a finished run makes; returns the PNG paths."""
    res = kmc.load(path)
    config = res.points[0].config
    made = [dos_figure(path)]
    if config.linear.enabled:
        made += [rates_figure(path), prediction_figure(path)]
        if config.linear.interactions:
            made.append(interaction_error_figure(path))
        if config.linear.distance_matrix and res.model == "electron":
            made.append(distance_figure(path))
    if config.dynamics.enabled:
        made.append(dynamics_figure(path))
    return [m for m in made if m is not None]
