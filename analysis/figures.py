"""Figures of a result file, written as PNG next to it (headless Agg backend)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import kmc  # noqa: E402

from .dos import dos_from_file  # noqa: E402

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
        edges, mean, sem, used = dos_from_file(res, p)
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


def figures_for_run(path):
    """Every figure a finished run makes; returns the PNG paths."""
    return [dos_figure(path)]
