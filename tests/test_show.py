"""``kmc show`` (kmc/pipeline/show.py) on response-protocol files: the aging of the
prepared state and its measured drift over the window are printed as stored."""
import shutil
import warnings

import h5py
import numpy as np
import pytest

import kmc
from kmc.pipeline import config as config_module
from kmc.pipeline.run import run
from kmc.pipeline.show import describe

RESPONSE = """
[model]
name = "tls"
N = 12
temperature = 0.3
a = 10.0
[disorder]
delta0_min = 0.3
delta0_max = 1.0
[dynamics]
protocol = "response"
pulse_strength = 0.2
waiting_time = 5.0
aging = "{aging}"
aging_time = 2.0
aging_time_max = 200.0
stationarity_tolerance = {tolerance}
replicas = 6
t_min = 0.1
t_max = 50.0
n_times = 5
mc_preparation_sweeps = 40
[ensemble]
realizations = 3
seed = 3
[output]
flush_seconds = 0.0
figures = false
"""


def _run(directory, aging, tolerance):
    cfg = config_module.loads(RESPONSE.format(aging=aging, tolerance=tolerance))
    path = directory / f"{aging}.h5"
    with warnings.catch_warnings():   # the run's own "drift is not negligible" warnings
        warnings.simplefilter("ignore")
        run(cfg, out=path, progress=False)
    return path


@pytest.fixture(scope="module")
def until_stationary(tmp_path_factory):
    """aging = "until_stationary" (2, 20, 200) with a tolerance of 1e-9 of the signal."""
    return _run(tmp_path_factory.mktemp("show"), "until_stationary", 1e-9)


def _stored(path):
    res = kmc.load(path)
    return {n: res.rows(f"dynamics/{n}") for n in
            ("aging_time_used", "aging_attempts", "aging_stationary", "twin_drift",
             "twin_drift_stderr", "twin_energy_drift")}


def _lines(path):
    text = describe(path)
    heads = ("  response preparation", "  twin drift", "    per realization",
             "  stationarity", "  until_stationary")
    return text, [x for x in text.splitlines() if x.startswith(heads)]


def _g(x, digits=4):
    return f"{x:.{digits}g}"


def test_show_prints_the_stored_aging_and_drift(until_stationary):
    """Every number kmc show prints about the prepared state is the stored one: the aging
    asked for, the aging time used and the attempts, the realization mean of the twin's
    g-projection and energy drifts with their SE, each realization's drift with its SE
    over replicas, and the count of realizations whose drift was negligible."""
    v = _stored(until_stationary)
    text, lines = _lines(until_stationary)
    assert len(lines) == 5, text
    assert ('aging "until_stationary", aging_time 2 up to aging_time_max 200, '
            'stationarity_tolerance 1e-09 x signal' in lines[0])
    used, tried = v["aging_time_used"], v["aging_attempts"]
    if np.all(used == used[0]) and np.all(tried == tried[0]):
        assert (f"aged {_g(used[0])} in all 3 realization(s), {tried[0]} aging time(s) "
                "tried" in lines[0])
    else:
        assert f"aged {_g(used.min())}..{_g(used.max())} (median " in lines[0]
    mean = v["twin_drift"].mean()
    se = v["twin_drift"].std(ddof=1) / np.sqrt(3)
    emean = v["twin_energy_drift"].mean()
    assert f"g-projection {_g(mean)} +- {_g(se, 2)}" in lines[1]
    assert f"energy {_g(emean)} +- " in lines[1] and lines[1].endswith(" J")
    for r in range(3):
        assert (f"r{r} {_g(v['twin_drift'][r], 3)} +- {_g(v['twin_drift_stderr'][r], 2)}"
                in lines[2])
    k = int(np.sum(v["aging_stationary"] == 1))
    assert f"below the tolerance at 2 SE): {k} of 3 realization(s)" in lines[3]
    assert lines[4].startswith(f"  until_stationary: tolerance reached in {k} of 3")


def test_show_counts_until_stationary_outcomes(until_stationary, tmp_path):
    """The stored outcomes set by hand in a copy (r0 reached the tolerance after 2 aging
    times, r1 stopped at aging_time_max = 200 still drifting, r2 stopped at 2 with an
    unresolved drift): kmc show names the range of aging times and counts each outcome."""
    path = tmp_path / "set.h5"
    shutil.copy(until_stationary, path)
    with h5py.File(path, "r+") as f:
        d = f["glassrelax/points/p0000/dynamics"]
        d["aging_time_used"][:3] = [20.0, 200.0, 2.0]
        d["aging_attempts"][:3] = [2, 3, 1]
        d["aging_stationary"][:3] = [1, 0, 0]
    text, lines = _lines(path)
    assert "aged 2..200 (median 20), 1..3 aging time(s) tried" in lines[0], text
    assert lines[3].endswith("2 SE): 1 of 3 realization(s); not r1, r2"), text
    assert lines[4] == ("  until_stationary: tolerance reached in 1 of 3, stopped at "
                        "aging_time_max in 1, stopped with an unresolved drift (more "
                        "replicas needed) in 1")


def test_show_prints_fixed_aging(tmp_path):
    """aging = "fixed": one aging time, no until_stationary line; the negligible count is
    the stored one."""
    path = _run(tmp_path, "fixed", 100.0)
    v = _stored(path)
    text, lines = _lines(path)
    assert len(lines) == 4, text
    assert 'aging "fixed", aging_time 2, stationarity_tolerance 100 x signal' in lines[0]
    assert "aging_time_max" not in lines[0]
    assert "aged 2 in all 3 realization(s), 1 aging time(s) tried" in lines[0]
    k = int(np.sum(v["aging_stationary"] == 1))
    assert f"2 SE): {k} of 3 realization(s)" in lines[3]


def test_show_says_when_the_file_has_no_aging_record(until_stationary, tmp_path):
    """A response file written before the aging and drift were stored: one line says so,
    no traceback."""
    old = tmp_path / "old.h5"
    shutil.copy(until_stationary, old)
    with h5py.File(old, "r+") as f:
        for name in ("aging_time_used", "aging_stationary"):
            del f[f"glassrelax/points/p0000/dynamics/{name}"]
    text = describe(old)
    assert "response preparation: aging and drift not in this file" in text
    assert "twin drift" not in text
