"""Checkpoint and resume: a run interrupted between kernel chunks and resumed from its last
checkpoint gives bit-for-bit the result of an uninterrupted run with the same seed."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from kmc import ElectronSystem, TLSSystem
from kmc.dynamics import DynamicsParams, run, simulate
from kmc.errors import ResultFileError


class Killed(Exception):
    pass


def tls_system():
    return TLSSystem.random(np.random.default_rng(1), 30, delta0_min=0.03, delta0_max=0.3)


def electron_system():
    return ElectronSystem.random(np.random.default_rng(2), 30)


PARAMS = {
    "tls": DynamicsParams(temperature=0.3, t_min=1.0, t_max=1e4, n_times=12, replicas=3,
                          chunk_trials=100, checkpoint_interval=0.0,
                          mc_equilibration_sweeps=20, mc_sampling_sweeps=50),
    "electron": DynamicsParams(temperature=0.3, xi=0.3, t_min=0.1, t_max=1e3, n_times=12,
                               replicas=3, chunk_trials=100, checkpoint_interval=0.0,
                               mc_equilibration_sweeps=20, mc_sampling_sweeps=50,
                               hop_cutoff=10.0),    # every pair: passes check_hop_cutoff
    "pulse": DynamicsParams(temperature=0.3, protocol="pulse", pulse_strength=1.0,
                            waiting_time=300.0, t_min=1.0, t_max=1e4, n_times=12, replicas=3,
                            chunk_trials=100, checkpoint_interval=0.0,
                            mc_preparation_sweeps=20, mc_equilibration_sweeps=20,
                            mc_sampling_sweeps=50),
}


def system_for(case):
    return electron_system() if case == "electron" else tls_system()


def assert_same(a, b):
    for name in ("energy", "excitations", "deviation", "occupation"):
        np.testing.assert_array_equal(getattr(a, name).mean, getattr(b, name).mean)
        np.testing.assert_array_equal(getattr(a, name).stderr, getattr(b, name).stderr)
    assert a.counters == b.counters


@pytest.mark.parametrize("case", ["tls", "electron", "pulse"])
@pytest.mark.parametrize("stop_after", [3, 17])
def test_resume_equals_continuous_run(case, stop_after, tmp_path, monkeypatch):
    system, params = system_for(case), PARAMS[case]
    mf = np.zeros(system.n_sites)
    continuous = simulate(system, params, seed=4, mean_field=mf)
    assert continuous.counters["events"] > 0
    path = tmp_path / "run.ckpt"
    calls = {"n": 0}

    def kill_after_chunks():
        calls["n"] += 1
        if calls["n"] == stop_after:
            raise Killed

    monkeypatch.setattr(run, "_after_chunk", kill_after_chunks)
    with pytest.raises(Killed):
        simulate(system, params, seed=4, checkpoint=path, mean_field=mf)
    assert path.exists()
    monkeypatch.setattr(run, "_after_chunk", None)
    resumed = simulate(system, params, seed=4, checkpoint=path, mean_field=mf)
    assert_same(continuous, resumed)
    assert not path.exists()          # removed once the run completed


def test_resume_after_sigkill(tmp_path):
    """A real SIGKILL of a child process mid-run; the parent resumes from the file.

    The child sleeps between chunks (a hook that does not touch the state or the random
    stream) so that it is still running when it is killed.
    """
    path = tmp_path / "run.ckpt"
    script = textwrap.dedent(f"""
        import numpy as np, sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from kmc import TLSSystem
        from kmc.dynamics import DynamicsParams, run, simulate
        run._after_chunk = lambda: time.sleep(0.05)   # slow the child down, not its result
        system = TLSSystem.random(np.random.default_rng(1), 30, delta0_min=0.03, delta0_max=0.3)
        params = DynamicsParams(temperature=0.3, t_min=1.0, t_max=1e4, n_times=12, replicas=2,
                                chunk_trials=50, checkpoint_interval=0.0,
                                mc_equilibration_sweeps=20, mc_sampling_sweeps=50)
        simulate(system, params, seed=4, checkpoint={str(path)!r}, mean_field=np.zeros(30))
    """)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd())
    deadline = time.time() + 60
    while not path.exists() and time.time() < deadline and child.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert path.exists(), "child never wrote a checkpoint"
    system = tls_system()
    params = DynamicsParams(temperature=0.3, t_min=1.0, t_max=1e4, n_times=12, replicas=2,
                            chunk_trials=50, checkpoint_interval=0.0,
                            mc_equilibration_sweeps=20, mc_sampling_sweeps=50)
    mf = np.zeros(30)
    resumed = simulate(system, params, seed=4, checkpoint=path, mean_field=mf)
    continuous = simulate(system, params, seed=4, mean_field=mf)
    assert_same(continuous, resumed)


def test_same_seed_identical_other_seed_different():
    system, params = tls_system(), PARAMS["tls"]
    mf = np.zeros(30)
    a = simulate(system, params, seed=8, mean_field=mf)
    b = simulate(system, params, seed=8, mean_field=mf)
    c = simulate(system, params, seed=9, mean_field=mf)
    assert_same(a, b)
    assert not np.array_equal(a.energy.mean, c.energy.mean)


def test_chunk_size_does_not_change_the_result():
    system = tls_system()
    mf = np.zeros(30)
    a = simulate(system, PARAMS["tls"], seed=8, mean_field=mf)
    b = simulate(system, DynamicsParams(**{**PARAMS["tls"].__dict__, "chunk_trials": 10**9}),
                 seed=8, mean_field=mf)
    assert_same(a, b)


def test_checkpoint_of_another_run_is_refused(tmp_path, monkeypatch):
    system, params = tls_system(), PARAMS["tls"]
    path = tmp_path / "run.ckpt"
    monkeypatch.setattr(run, "_after_chunk", lambda: (_ for _ in ()).throw(Killed))
    with pytest.raises(Killed):
        simulate(system, params, seed=4, checkpoint=path, mean_field=np.zeros(30))
    monkeypatch.setattr(run, "_after_chunk", None)
    with pytest.raises(ResultFileError, match="another run"):
        simulate(system, params, seed=5, checkpoint=path, mean_field=np.zeros(30))
