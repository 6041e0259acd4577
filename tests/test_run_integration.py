"""Run files with [linear] and [dynamics]: stored rates and curves equal direct API calls."""
import numpy as np
import pytest

import kmc
from kmc.pipeline import config as config_module
from kmc.solvers import linear
from kmc.dynamics import simulate
from analysis.run import run

TEXT = """
[model]
name = "{model}"
N = {n}
temperature = 0.1
[linear]
interactions = true
distance_matrix = {dist}
[dynamics]
replicas = 3
t_min = 0.01
t_max = 100.0
n_times = 6
mc_sampling_sweeps = 50
mc_equilibration_sweeps = 20
[ensemble]
realizations = 3
seed = 5
[output]
figures = true
flush_seconds = 0.0
"""


@pytest.mark.parametrize("model,n", [("tls", 40), ("electron", 30)])
def test_run_file_rates_and_dynamics_equal_direct_calls(tmp_path, model, n):
    text = TEXT.format(model=model, n=n, dist="true" if model == "electron" else "false")
    cfg = config_module.loads(text)
    summary = run(cfg, out=tmp_path / "r.h5", progress=False)
    names = {p.name for p in summary.figures}
    assert {"r_dos.png", "r_rates.png", "r_dynamics.png", "r_interaction_error.png"} <= names
    res = kmc.load(tmp_path / "r.h5")
    real = res.realization(2)
    system, m = real["system"], res.points[0].config.model
    if model == "tls":
        direct = linear.tls_rates(system, real["fields"], m.temperature, m.a)  # site order
    else:
        direct = linear.electron_spectrum(system, real["fields"], real["mu"], m.temperature,
                                          m.xi, m.gamma0).rates
        dist = linear.distance_matrix_spectrum(system.distances, m.xi).rates
        np.testing.assert_array_equal(res.dataset("rates_distance")[2], dist)
    np.testing.assert_array_equal(res.dataset("rates")[2], direct)
    params = res.points[0].config.dynamics_params()
    from kmc.solvers.meanfield import MeanFieldResult
    mf = MeanFieldResult(real["fields"], real["energies"], real["mu"], m.temperature, True,
                         real["sweeps"], real["residual"])
    again = simulate(system, params, seed=5, point=0, realization=2, mean_field=mf)
    np.testing.assert_array_equal(res.dataset("dynamics/deviation")[2], again.deviation.mean)
    np.testing.assert_array_equal(res.dataset("dynamics/times"), again.times)
    ens = res.dataset("dynamics/ensemble/deviation")
    np.testing.assert_allclose(ens, res.dataset("dynamics/deviation").mean(axis=0), rtol=1e-12)
    lmin = res.dataset("linear/log_edges")  # summary written
    assert lmin.size == 81
    # the stored comparison reads back into the dataclass analysis.compare builds, every
    # field present (one list of names for writer and reader)
    from dataclasses import fields
    from analysis.compare import Comparison
    comp = res.comparison(0)
    assert isinstance(comp, Comparison)
    for f in fields(comp):
        value = getattr(comp, f.name)
        assert value is not None and np.all(np.isfinite(value) | np.isnan(value)), f.name
    np.testing.assert_array_equal(comp.times, res.dataset("dynamics/times"))
    assert comp.predicted_raw.shape == comp.times.shape


def test_bad_dynamics_key_is_one_line(tmp_path):
    with pytest.raises(kmc.errors.ConfigError, match=r"^dynamics.t_min: need 0 < t_min < t_max"):
        config_module.loads("[dynamics]\nt_min = 5.0\nt_max = 1.0\n")
    with pytest.raises(kmc.errors.ConfigError, match=r"^dynamics.protocol: expected one of"):
        config_module.loads("[dynamics]\nprotocol = \"anneal\"\n")
