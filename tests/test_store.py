"""Ensembles and result files: reproducibility across backends, kill-and-resume, loading."""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import kmc
from kmc.pipeline import config as config_module
from kmc.storage import store
from kmc.storage.schema import Status
from analysis.run import run

RUN = """
[model]
name = "{model}"
N = {n}
temperature = 0.1
[ensemble]
realizations = {r}
seed = 99
[output]
figures = false
flush_seconds = 0.0
[sweep]
"disorder.W" = [0.5, 1.5]
"""


def make_config(model="tls", n=40, r=4):
    return config_module.loads(RUN.format(model=model, n=n, r=r))


def datasets(path):
    """Every dataset of a result file, by name (attrs of the point groups too)."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
            else:
                for k, v in obj.attrs.items():
                    out[f"{name}@{k}"] = v
        f.visititems(visit)
        for k in ("config", "identity", "run_file", "seed", "model", "schema_version"):
            out[f"root@{k}"] = f[store.ROOT].attrs[k]
    return out


def assert_same_file(a, b, runtime_may_differ=False):
    """Equal datasets and attributes; the stored config and run-file text record workers,
    backend, path and ensemble size, so runs that differ only in those compare everything
    else (``identity``, the part of the config that determines the numbers, included)."""
    da, db = datasets(a), datasets(b)
    if runtime_may_differ:
        for key in ("root@config", f"{store.ROOT}@config", "root@run_file",
                    f"{store.ROOT}@run_file", f"{store.ROOT}@git_commit"):
            da.pop(key), db.pop(key)
    assert da.keys() == db.keys()
    for key in da:
        np.testing.assert_array_equal(da[key], db[key], err_msg=key)


@pytest.mark.parametrize("model", ["tls", "electron"])
def test_same_seed_same_arrays_across_workers_and_dask(tmp_path, model):
    config = make_config(model)
    run(config, out=tmp_path / "w1.h5", workers=1, progress=False)
    run(config, out=tmp_path / "w2.h5", workers=2, progress=False)
    assert_same_file(tmp_path / "w1.h5", tmp_path / "w2.h5", runtime_may_differ=True)
    if model == "tls":  # one Dask LocalCluster start is enough to show the backend agrees
        run(config, out=tmp_path / "dask.h5", workers=2, backend="dask", progress=False)
        assert_same_file(tmp_path / "w1.h5", tmp_path / "dask.h5", runtime_may_differ=True)
    energies = kmc.load(tmp_path / "w1.h5").dataset("energies", 1)
    assert energies.shape == (4, 40) and np.all(np.isfinite(energies))


def test_run_interrupted_by_error_then_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    config = make_config(r=6)
    run(config, out=tmp_path / "full.h5", progress=False)
    from kmc.pipeline import realization
    original = realization.compute

    def failing(cfg, seed, point, k, edges):
        if point == 1 and k == 2:
            raise RuntimeError("node lost")
        return original(cfg, seed, point, k, edges)

    monkeypatch.setattr(realization, "compute", failing)
    with pytest.raises(RuntimeError, match="node lost"):
        run(config, out=tmp_path / "split.h5", progress=False)
    status = kmc.load(tmp_path / "split.h5").dataset("status", 0)
    assert np.all(status == Status.CONVERGED)  # point 0 finished before the failure was kept
    monkeypatch.setattr(realization, "compute", original)
    summary = run(config, out=tmp_path / "split.h5", progress=False)
    assert summary.skipped == 8 and summary.computed == 4
    assert_same_file(tmp_path / "full.h5", tmp_path / "split.h5", runtime_may_differ=True)


def test_killed_process_leaves_readable_file_and_resume_equals_uninterrupted(tmp_path):
    text = RUN.format(model="tls", n=700, r=25)
    path = tmp_path / "run.toml"
    path.write_text(text)
    out = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-m", "kmc", "run", str(path), "--out", str(out),
                             "--quiet"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and done < 3:
        time.sleep(0.02)
        if out.exists():
            try:
                done = int(np.sum(kmc.load(out).dataset("status", 0) != 0))
            except (OSError, ValueError, KeyError):
                pass  # read during a replace: try again
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = kmc.load(out)  # readable after SIGKILL
    finished = sum(int(np.sum(partial.dataset("status", p) != 0)) for p in range(2))
    assert 3 <= finished < 50, "the kill must land part-way through the run"
    subprocess.run([sys.executable, "-m", "kmc", "run", str(path), "--out", str(out),
                    "--resume", "--quiet"], cwd=tmp_path, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "kmc", "run", str(path), "--out",
                    str(tmp_path / "full.h5"), "--quiet"], cwd=tmp_path, check=True,
                   capture_output=True)
    assert_same_file(tmp_path / "full.h5", out, runtime_may_differ=True)


def test_growing_the_ensemble_extends_the_file(tmp_path):
    run(make_config(r=2), out=tmp_path / "a.h5", progress=False)
    summary = run(make_config(r=4), out=tmp_path / "a.h5", progress=False)
    assert summary.computed == 4 and summary.skipped == 4
    run(make_config(r=4), out=tmp_path / "b.h5", progress=False)
    assert_same_file(tmp_path / "a.h5", tmp_path / "b.h5", runtime_may_differ=True)


@pytest.mark.parametrize("model", ["tls", "electron"])
def test_load_realization_rebuilds_disorder_and_solution(tmp_path, model):
    config = make_config(model)
    run(config, out=tmp_path / "r.h5", progress=False)
    res = kmc.load(tmp_path / "r.h5")
    real = res.realization(3, point=1)
    system = real["system"]
    assert real["positions"].shape == (40, 3 if model == "tls" else 2)
    from kmc.solvers import meanfield
    solved = meanfield.solve(system, 0.1, tol=1e-8, rng=kmc.seeding.stream(99, 1, 3, kmc.seeding.SOLVER))
    np.testing.assert_array_equal(solved.fields, real["fields"])
    if model == "tls":
        c = real["couplings"]
        assert c.shape == (40, 40) and np.allclose(c, c.T) and np.all(np.diag(c) == 0)
    else:
        assert real["n_electrons"] == 20
    assert real["status"] == Status.CONVERGED and real["residual"] < 1e-7
    with h5py.File(tmp_path / "r.h5", "r") as f:
        root = f[store.ROOT]
        assert root.attrs["schema_version"] == store.SCHEMA_VERSION
        assert "numba" in root.attrs["versions"] and root.attrs["seed"] == 99
        mean = root["points/p0001/dos/mean"][()]
        edges = root["points/p0001/dos/edges"][()]
        energies = root["points/p0001/energies"][()]
    # normalised per site: integrates to the mean fraction of energies inside the range
    inside = np.mean((energies >= edges[0]) & (energies <= edges[-1]))
    assert np.sum(mean * np.diff(edges)) == pytest.approx(inside, rel=1e-12)
