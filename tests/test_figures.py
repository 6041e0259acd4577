"""Figures: legends in physical notation, bins that are not empty, every point drawn,
the file format of ``output.format``."""
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.mathtext import MathTextParser

from analysis import binning, labels

_PARSER = MathTextParser("agg")


def _renders(text):
    """Mathtext in ``text`` parses (an error here is a broken label on a figure)."""
    for k, piece in enumerate(text.split("$")):
        if k % 2:
            _PARSER.parse(f"${piece}$")
    return True


@pytest.mark.parametrize("value,expected", [
    (9.848857801796104, r"\sqrt{97}"),       # the paper's W/J = sqrt(97) (Fig. 12)
    (4.123105625617661, r"\sqrt{17}"),
    (97 ** 0.5 / 7, r"\sqrt{97}/7"),         # W at W/J = sqrt(97), W^2 + J^2 = 2
    (2 ** 0.5, r"\sqrt{2}"),
    (9.8, "9.8"),                            # typed decimals stay decimals
    (3.1, "3.1"),
    (0.05, "0.05"),
    (1 / 7, "1/7"),
    (1.0, "1"),
    (300, "300"),
    (1e4, "10^{4}"),
    (1e-7, "10^{-7}"),
    (2e-7, r"2\times10^{-7}"),
    (float("inf"), r"\infty"),
    (1.23456789, "1.235"),
])
def test_values_print_as_the_paper_writes_them(value, expected):
    assert labels.value_tex(value) == expected


def test_point_labels_use_symbols_and_render():
    text = labels.point_label({"W_over_J": 9.848857801796104, "disorder.W": 10.0,
                               "model.temperature": 0.05, "dynamics.waiting_time": 1e5,
                               "some.new_key": 2.0})
    assert text == (r"$W/J = \sqrt{97}$, $W = 10$, $T = 0.05$, $t_w = 10^{5}$, "
                    r"$\mathrm{new\_key} = 2$")
    assert _renders(text)


def _config(name="tls", N=300, W=1.0, J=1.0, T=0.1, xi=0.1):
    return SimpleNamespace(model=SimpleNamespace(name=name, N=N, temperature=T, xi=xi),
                           disorder=SimpleNamespace(W=W, J=J))


def test_title_names_what_is_fixed_and_the_paper_schemes():
    # disorder scheme: W = 1, 10, 100 at W/T = 10
    configs = [_config(W=w, T=w / 10) for w in (1.0, 10.0, 100.0)]
    text = labels.fixed_parameters(configs, realizations=8)
    assert text == "TLS glass, $N = 300$, $J = 1$, $W/T = 10$, 8 realizations"
    # interaction scheme: W/J varies at W^2 + J^2 = 2
    configs = [_config("electron", W=(2 * r * r / (1 + r * r)) ** 0.5,
                       J=(2 / (1 + r * r)) ** 0.5) for r in (1.0, 17 ** 0.5, 97 ** 0.5)]
    text = labels.fixed_parameters(configs, realizations=1)
    assert text == (r"electron glass, $N = 300$, $T = 0.1$, $\xi = 0.1$, $W^2 + J^2 = 2$, "
                    "1 realization")
    assert _renders(text)


def test_merge_factor_fills_the_bins_of_one_realization():
    rng = np.random.default_rng(0)
    edges = np.linspace(-4, 4, 121)
    counts = np.histogram(rng.normal(size=300), edges)[0][None, :]   # one realization
    k = binning.merge_factor(counts)
    new_edges, merged = binning.merge_bins(edges, counts, k)
    filled = np.flatnonzero(merged.sum(axis=0))
    span = merged[:, filled[0]:filled[-1] + 1]
    assert span.mean() >= binning.PER_BIN
    assert k > 1 and new_edges.size - 1 == 120 // k
    # merging only sums neighbours: nothing is lost but the dropped remainder
    assert merged.sum() == counts[:, :(120 // k) * k].sum()
    np.testing.assert_allclose(new_edges, edges[::k][:120 // k + 1])


def test_merge_factor_leaves_full_histograms_alone():
    rng = np.random.default_rng(1)
    edges = np.linspace(-4, 4, 81)
    counts = np.array([np.histogram(rng.normal(size=1000), edges)[0] for _ in range(20)])
    assert binning.merge_factor(counts) == 1
    assert binning.bin_count(20 * 1000, 80) == 80
    assert binning.bin_count(300, 80) == 30
    assert binning.bin_count(12, 80) == 4


def test_labels_of_one_sweep_are_consistent():
    t_w = labels.point_labels([{"dynamics.waiting_time": v} for v in (1e3, 1e4, 1e5)])
    assert t_w == ["$t_w = 10^{3}$", "$t_w = 10^{4}$", "$t_w = 10^{5}$"]
    w = labels.point_labels([{"disorder.W": v} for v in (1.0, 10.0, 100.0)])
    assert w == ["$W = 1$", "$W = 10$", "$W = 100$"]
    assert labels.point_labels([{}, {}]) == ["", ""]


def test_value_with_error_rounds_to_two_digits_of_the_error():
    assert labels.value_error(0.0564, 0.0102) == r"0.056 \pm 0.010"
    assert labels.value_error(123.4, 5.6) == r"123.4 \pm 5.6"
    assert labels.value_error(1.2e-5, 3e-7) == r"(1.200 \pm 0.030)\times10^{-5}"
    assert labels.value_error(0.5, float("nan")) == "0.5"


SWEEP_RUN = """
[model]
name = "{model}"
N = {n}
temperature = 0.1
[linear]
[ensemble]
realizations = {r}
seed = 3
[output]
figures = true
flush_seconds = 0.0
format = "{fmt}"
[sweep]
"disorder.W" = [1.0, 10.0, 100.0]
W_over_T = 10
"""


def _run(tmp_path, model="tls", n=40, r=3, fmt="png"):
    from analysis.run import run
    from kmc.pipeline import config as config_module
    cfg = config_module.loads(SWEEP_RUN.format(model=model, n=n, r=r, fmt=fmt))
    out = tmp_path / f"{model}.h5"
    return out, run(cfg, out=out, progress=False)


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize("model,observable", [("tls", r"|\delta\sigma|"),
                                              ("electron", r"|\delta n|")])
def test_prediction_draws_every_point_with_the_models_observable(tmp_path, model, observable):
    """Regression: _prediction.png drew only point 0 and said |dsigma| for the electron glass."""
    from analysis import figures
    path, _ = _run(tmp_path, model)
    fig = figures.prediction_figure(path, save=False)
    ax = fig.axes[0]
    texts = _legend_texts(ax)
    assert {"$W = 1$", "$W = 10$", "$W = 100$"} <= set(texts)
    assert observable in ax.get_ylabel()
    assert all(_renders(t) for t in texts + [ax.get_xlabel(), ax.get_ylabel()])


def test_rate_figure_labels_what_it_draws_one_entry_per_point(tmp_path):
    """Regression: panel (b) drew C/lambda but its legend gave beta of another fit, and
    listed every point twice (data and fit)."""
    from analysis import figures
    path, _ = _run(tmp_path)
    fig = figures.rates_figure(path, save=False)
    texts_b = _legend_texts(fig.axes[1])
    assert len(texts_b) == 3 and all("C = " in t for t in texts_b)
    assert not any(r"\beta" in t for t in texts_b)
    assert fig.axes[1].get_legend().get_title().get_text() == r"lines: fitted $p(\lambda) = C/\lambda$"
    # W = 1, 10, 100 shift lambda_min by decades: the window panel is in units of lambda_min
    assert fig.axes[1].get_xlabel() == r"$\lambda/\lambda_{\min}$"


def test_dos_of_disorder_sweep_is_drawn_against_e_over_w(tmp_path):
    """Regression: W = 1, 10, 100 on one linear E/J axis left two curves unreadable."""
    from analysis import figures
    path, _ = _run(tmp_path)
    ax = figures.dos_figure(path, save=False).axes[0]
    assert ax.get_xlabel() == "$E/W$"
    spans = [np.ptp(line.get_xdata()) for line in ax.get_lines() if len(line.get_xdata()) > 2]
    assert max(spans) < 4 * min(spans)


def test_one_realization_histograms_have_few_empty_bins(tmp_path):
    from analysis import figures
    path, _ = _run(tmp_path, n=60, r=1)
    for fig in (figures.dos_figure(path, save=False), figures.rates_figure(path, save=False)):
        for line in fig.axes[0].get_lines():
            y = np.asarray(line.get_ydata())
            if y.size < 3:
                continue
            filled = np.flatnonzero(y > 0)
            inside = y[filled[0]:filled[-1] + 1]
            assert np.mean(inside == 0) < 0.2


@pytest.mark.parametrize("fmt,magic", [("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_output_format_writes_vector_figures(tmp_path, fmt, magic):
    _, summary = _run(tmp_path, fmt=fmt)
    assert summary.figures and all(p.suffix == f".{fmt}" for p in summary.figures)
    for p in summary.figures:
        assert p.read_bytes()[:len(magic)] == magic


def test_output_format_is_checked():
    from kmc.errors import ConfigError
    from kmc.pipeline import config as config_module
    with pytest.raises(ConfigError, match="output.format"):
        config_module.loads(SWEEP_RUN.format(model="tls", n=40, r=1, fmt="jpeg"))


def test_existing_file_redrawn_in_another_format(tmp_path):
    from analysis.figures import figures_for_run
    path, summary = _run(tmp_path)
    assert all(p.suffix == ".png" for p in summary.figures)
    redrawn = figures_for_run(path, fmt="svg")
    assert [p.stem for p in redrawn] == [p.stem for p in summary.figures]
    assert all(p.suffix == ".svg" and p.read_bytes()[:5] == b"<?xml" for p in redrawn)
    with pytest.raises(ValueError, match="fmt"):
        figures_for_run(path, fmt="jpeg")


RESPONSE_RUN = """
[model]
name = "tls"
N = 12
temperature = 0.1
[disorder]
delta0_min = 3e-3
[dynamics]
protocol = "response"
pulse_strength = 0.05
waiting_time = 10.0
aging_time = 1e3
t_min = 1.0
t_max = 1e3
n_times = 5
replicas = 4
[ensemble]
realizations = 2
seed = 4
[output]
figures = false
flush_seconds = 0.0
"""


def test_response_protocol_draws_the_twin_projection_and_its_prediction(tmp_path):
    """The response protocol's figure shows P(t) against the twin, not |dsigma| against an
    assumed equilibrium (docs/model.md section 4)."""
    from analysis import figures
    from analysis.run import run
    from kmc.pipeline import config as config_module
    out = tmp_path / "resp.h5"
    run(config_module.loads(RESPONSE_RUN), out=out, progress=False)
    fig = figures.dynamics_figure(out, save=False)
    # three-curve layout (analysis.plots_dynamics): value panels with residual panels below
    assert fig.axes[0].get_ylabel().startswith("$P(t)/N")
    assert "twin" in fig.axes[2].get_ylabel() and "twin" in fig._suptitle.get_text()
    texts = _legend_texts(fig.axes[0])
    assert texts[-1] == "linear prediction"
    assert all(_renders(t) for t in texts + [fig.axes[0].get_ylabel()])
