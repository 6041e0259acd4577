"""Progress inside a realization (issue 10, item 6): KMC replicas and simulated time."""
import numpy as np

from kmc import TLSSystem
from kmc.dynamics import DynamicsParams, simulate
from kmc.pipeline import ensemble


def test_simulate_reports_replicas_and_time_without_changing_the_result():
    system = TLSSystem.random(3, n_sites=8, W=1.0, J=1.0, delta0_min=0.05, delta0_max=0.5)
    params = DynamicsParams(temperature=0.3, replicas=3, t_min=1e-1, t_max=1e3, n_times=8,
                            chunk_trials=50)
    calls = []
    with_bar = simulate(system, params, seed=5, progress=lambda *a: calls.append(a))
    plain = simulate(system, params, seed=5)
    np.testing.assert_array_equal(with_bar.energy.mean, plain.energy.mean)
    done = [c[0] for c in calls]
    assert calls and all(c[1] == 3 for c in calls)
    assert done == sorted(done) and done[-1] == 3 and done[0] < 3
    assert calls[-1][2] == params.times()[-1]
    assert all(0 <= c[2] <= params.times()[-1] for c in calls)


def _sink(_):
    return ensemble.task_progress.get() is not None


def test_in_process_tasks_get_a_progress_sink_and_quiet_runs_do_not():
    tasks = [(k, (k,)) for k in range(2)]
    assert all(r for _, r in ensemble.run_tasks(_sink, tasks, workers=1, progress=True))
    assert not any(r for _, r in ensemble.run_tasks(_sink, tasks, workers=1, progress=False))
    # pool workers cannot draw on the parent's terminal: no sink there
    assert not any(r for _, r in ensemble.run_tasks(_sink, tasks, workers=2, progress=True))


def test_dask_dashboard_is_announced_and_off_by_default(capfd):
    """issue 10, item 6: ``ensemble.dashboard`` starts the LocalCluster's dashboard and the
    run prints where it is; without it no dashboard (no port taken)."""
    tasks = [(0, (0,))]
    list(ensemble.run_tasks(_sink, tasks, workers=1, backend="dask", dashboard=":0",
                            progress=False))
    err = capfd.readouterr().err
    assert "kmc: Dask dashboard at http" in err, err
    list(ensemble.run_tasks(_sink, tasks, workers=1, backend="dask", progress=False))
    assert "dashboard" not in capfd.readouterr().err


def test_dashboard_without_bokeh_is_one_line(monkeypatch):
    import sys

    import pytest

    from kmc.errors import ConfigError
    monkeypatch.setitem(sys.modules, "bokeh", None)  # import bokeh now raises ImportError
    with pytest.raises(ConfigError, match="ensemble.dashboard: a Dask dashboard needs bokeh"):
        ensemble._dashboard(":8787")
