"""Result files under contention and bad output paths (issue 9): one writer per file, no row
written twice or lost, every refused output path one line naming it, nothing left behind."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from test_store import assert_same_file

TEXT = """
[model]
name = "tls"
N = {n}
temperature = 0.1
[ensemble]
realizations = {r}
seed = 99
workers = 1
[output]
figures = false
flush_seconds = 0.0
[sweep]
"disorder.W" = [0.5, 1.5]
"""


def write_run(tmp_path, n=700, r=12):
    path = tmp_path / f"run_{n}_{r}.toml"
    path.write_text(TEXT.format(n=n, r=r))
    return path


def kmc(*args, cwd, background=False):
    cmd = [sys.executable, "-m", "kmc", *map(str, args)]
    if background:
        return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def assert_refused_one_line(proc, path, words):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kmc: ") and str(path) in lines[0] and words in lines[0], lines
    assert "continuing" not in proc.stderr and "Traceback" not in proc.stderr


def wait_for(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_second_writer_resume_and_grown_ensemble_are_refused_while_a_run_writes(tmp_path):
    """While run A writes x.h5: the same command, --resume and realizations = 50 on the
    same file are each refused in one line naming the file. Afterwards the grown ensemble
    runs and the file equals a fresh 50-realization run: no row written twice, none
    dropped (growing 30 -> 60 under a running writer lost 8 rows before the lock)."""
    run40, run50 = write_run(tmp_path, r=40), write_run(tmp_path, r=50)
    out = tmp_path / "x.h5"
    first = kmc("run", run40, "--out", out, "--quiet", cwd=tmp_path, background=True)
    wait_for(Path(str(out) + ".lock"))
    wait_for(out)
    # A is paused while it holds the lock, so the test does not depend on how fast the
    # others start (on a loaded machine A could otherwise finish before they try)
    os.kill(first.pid, signal.SIGSTOP)
    try:
        others = [kmc("run", *args, "--out", out, "--quiet", cwd=tmp_path, background=True)
                  for args in ((run40,), (run40, "--resume"), (run50,))]
        for proc in others:
            proc.wait(timeout=300)
            proc.stderr = proc.stderr.read()
            assert_refused_one_line(proc, out, "another kmc run")
        # A was writing all along: still running and holding its lock
        assert first.poll() is None and Path(str(out) + ".lock").exists()
    finally:
        os.kill(first.pid, signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0 and "(80 computed, 0 already done" in stdout, stderr
    grown = kmc("run", run50, "--out", out, "--quiet", cwd=tmp_path)
    assert grown.returncode == 0 and "(20 computed, 80 already done" in grown.stdout, grown
    kmc("run", run50, "--out", tmp_path / "fresh.h5", "--quiet", cwd=tmp_path)
    assert_same_file(tmp_path / "fresh.h5", out, runtime_may_differ=True)
    assert not list(tmp_path.glob("*.lock")) and not list(tmp_path.glob("*.tmp"))


def test_two_runs_started_together_one_wins_and_the_file_is_complete(tmp_path):
    """The same command started twice at once: exactly one runs, the other is refused in
    one line; the file equals an uninterrupted run (it matched 0 of 3 times before)."""
    run = write_run(tmp_path, n=300, r=8)
    out = tmp_path / "x.h5"
    procs = [kmc("run", run, "--out", out, "--quiet", cwd=tmp_path, background=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    if codes == [0, 0]:
        # no overlap after all (one started after the other had finished, which a loaded
        # machine can do): the later one must then have found every row done (2 sweep
        # points x 8 realizations; this branch expected 8 and had never been taken before)
        assert sum("(0 computed, 16 already done" in out for _, out, _ in results) == 1, results
    else:
        assert codes == [0, 2], results
        loser = next(r for r in results if r[0] == 2)
        assert loser[2].strip().count("\n") == 0 and "another kmc run" in loser[2]
    kmc("run", run, "--out", tmp_path / "fresh.h5", "--quiet", cwd=tmp_path)
    assert_same_file(tmp_path / "fresh.h5", out, runtime_may_differ=True)


def _plain_hdf5(path):
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)


def _truncated_result(path, tmp_path):
    good = tmp_path / "good.h5"
    proc = kmc("run", write_run(tmp_path, n=30, r=2), "--out", good, "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    good.unlink()


def _other_run(path, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text(TEXT.format(n=30, r=2).replace("temperature = 0.1", "temperature = 0.2"))
    assert kmc("run", other, "--out", path, "--quiet", cwd=tmp_path).returncode == 0
    other.unlink()


@pytest.mark.parametrize("case,words", [
    ("text file", "not a readable HDF5 file"),
    ("plain hdf5", "another layout"),
    ("directory", "is a directory"),
    ("under a file", "is not a directory"),
    ("another run", "another configuration"),
    ("truncated result", "not a readable HDF5 file"),
    ("proc", "cannot write there"),
    ("missing for resume", "no result file to resume"),
])
def test_bad_output_path_one_line_nothing_left_behind(tmp_path, case, words):
    run = write_run(tmp_path, n=30, r=2)
    out = tmp_path / "out.h5"
    extra = []
    if case == "text file":
        out.write_text("my notes\n")
    elif case == "plain hdf5":
        _plain_hdf5(out)
    elif case == "directory":
        out.mkdir()
    elif case == "under a file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "sub" / "out.h5"
    elif case == "another run":
        _other_run(out, tmp_path)
    elif case == "truncated result":
        _truncated_result(out, tmp_path)
    elif case == "proc":
        out = Path("/proc/kmc_test_out.h5")
    elif case == "missing for resume":
        out = tmp_path / "new" / "out.h5"
        extra = ["--resume"]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None)
              for p in tmp_path.rglob("*")}
    proc = kmc("run", run, "--out", out, "--quiet", *extra, cwd=tmp_path)
    assert_refused_one_line(proc, out, words)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None)
             for p in tmp_path.rglob("*")}
    assert after == before, set(after) ^ set(before)   # nothing created, nothing changed
    assert not Path(str(out) + ".lock").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_is_one_line(tmp_path):
    run = write_run(tmp_path, n=30, r=2)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        proc = kmc("run", run, "--out", ro / "x.h5", "--quiet", cwd=tmp_path)
        assert_refused_one_line(proc, ro / "x.h5", "cannot write there")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_resume_with_another_checkpoint_interval_is_accepted(tmp_path, monkeypatch):
    """checkpoint_interval says how often to save, not what is computed: a KMC realization
    interrupted with one interval resumes from its checkpoint with another (it was refused
    as 'belongs to another run'), bit for bit; a result file accepts it too."""
    from dataclasses import replace

    from kmc import TLSSystem
    from kmc.dynamics import DynamicsParams, run as dyn_run, simulate

    class Stop(Exception):
        pass

    system = TLSSystem.random(np.random.default_rng(1), 30, delta0_min=0.03, delta0_max=0.3)
    params = DynamicsParams(temperature=0.3, t_min=1.0, t_max=1e4, n_times=12, replicas=2,
                            chunk_trials=100, checkpoint_interval=0.0,
                            mc_equilibration_sweeps=20, mc_sampling_sweeps=50)
    mf = np.zeros(30)
    continuous = simulate(system, params, seed=4, mean_field=mf)
    calls = {"n": 0}

    def stop_after_five():
        calls["n"] += 1
        if calls["n"] == 5:
            raise Stop

    path = tmp_path / "r.ckpt"
    monkeypatch.setattr(dyn_run, "_after_chunk", stop_after_five)
    with pytest.raises(Stop):
        simulate(system, params, seed=4, checkpoint=path, mean_field=mf)
    assert path.exists()
    monkeypatch.setattr(dyn_run, "_after_chunk", None)
    resumed = simulate(system, replace(params, checkpoint_interval=30.0), seed=4,
                       checkpoint=path, mean_field=mf)
    np.testing.assert_array_equal(resumed.deviation.mean, continuous.deviation.mean)
    assert resumed.counters == continuous.counters

    text = tmp_path / "dyn.toml"
    text.write_text(TEXT.format(n=20, r=2) + "[dynamics]\nreplicas = 2\nn_times = 4\n"
                    "t_min = 0.1\nt_max = 10.0\nmc_sampling_sweeps = 20\n"
                    "mc_equilibration_sweeps = 10\n")
    out = tmp_path / "dyn.h5"
    assert kmc("run", text, "--out", out, "--quiet", cwd=tmp_path).returncode == 0
    assert not Path(str(out) + ".checkpoints").exists()   # emptied and removed at the end
    again = kmc("run", text, "--out", out, "--quiet", "--set",
                "dynamics.checkpoint_interval=5.0", cwd=tmp_path)
    assert again.returncode == 0 and "(0 computed, 4 already done" in again.stdout, again
