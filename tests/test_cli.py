"""The command line: bad input gives one line, exit 2, no traceback, nothing lost."""
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

SMALL = """
[model]
name = "tls"
N = 30
[ensemble]
realizations = 3
[output]
figures = false
"""


def kmc(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kmc", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("text,key", [
    ("[model]\ntemperature = -1\n", "model.temperature"),
    ("[model]\nwhat = 1\n", "model.what"),
    ("[disorder]\ndelta0_min = 1.0\n", "disorder.delta0_min"),
    ("[model]\nname = \"electron\"\nfilling = 2\n", "model.filling"),
])
def test_bad_run_file_one_line_no_traceback(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    for command in ("check", "run"):
        proc = kmc(command, str(path), cwd=tmp_path)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"kmc: {key}:"), proc.stderr
        assert "Traceback" not in proc.stderr


def test_check_valid_file(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(SMALL)
    proc = kmc("check", str(path), cwd=tmp_path)
    assert proc.returncode == 0 and "ok (tls, 1 point(s) x 3 realization(s))" in proc.stdout


def test_bad_override_keeps_existing_results(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(SMALL)
    out = tmp_path / "r.h5"
    assert kmc("run", str(path), "--out", str(out), "--quiet", cwd=tmp_path).returncode == 0
    before = out.read_bytes()
    proc = kmc("run", str(path), "--out", str(out), "--set", "model.temperature=-3", cwd=tmp_path)
    assert proc.returncode == 2 and "model.temperature: must be > 0" in proc.stderr
    assert out.read_bytes() == before


def test_result_file_of_other_run_is_refused(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(SMALL)
    out = tmp_path / "r.h5"
    assert kmc("run", str(path), "--out", str(out), "--quiet", cwd=tmp_path).returncode == 0
    proc = kmc("run", str(path), "--out", str(out), "--set", "disorder.W=3.0", cwd=tmp_path)
    assert proc.returncode == 2
    assert "another configuration" in proc.stderr and "Traceback" not in proc.stderr
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    proc = kmc("run", str(path), "--out", str(foreign), cwd=tmp_path)
    assert proc.returncode == 2 and "another layout" in proc.stderr


def test_run_writes_file_and_figure(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(SMALL.replace("figures = false", "figures = true"))
    proc = kmc("run", str(path), "--out", str(tmp_path / "r.h5"), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "results:" in proc.stdout and Path(tmp_path / "r_dos.png").stat().st_size > 1000


def test_version_show_overwrite_and_resume(tmp_path):
    """--version; kmc show prints points, status counts and rates; --overwrite starts
    afresh; --resume refuses a missing file; the run ends with the show summary."""
    proc = kmc("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("kmc (glassrelax) ")
    path = tmp_path / "lin.toml"
    path.write_text(SMALL + "[linear]\n")
    out = tmp_path / "r.h5"
    proc = kmc("run", str(path), "--out", str(out), "--resume", cwd=tmp_path)
    assert proc.returncode == 2 and "no result file to resume" in proc.stderr
    assert not out.exists()
    proc = kmc("run", str(path), "--out", str(out), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "status: 3 converged, 0 not converged, 0 pending" in proc.stdout
    shown = kmc("show", str(out), cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.strip() in proc.stdout
    assert "p0000: N = 30, T = 0.05, W = 1, J = 1" in shown.stdout
    import kmc as kmc_package
    lin = kmc_package.load(out).linear(0)
    assert f"lambda_min = {lin.lambda_min:.4g} +- {lin.lambda_min_se:.2g}" in shown.stdout
    with h5py.File(out, "r+") as f:   # mark the file so a rewrite from scratch is visible
        f.attrs["marker"] = 1
    proc = kmc("run", str(path), "--out", str(out), "--quiet", "--overwrite", cwd=tmp_path)
    assert proc.returncode == 0 and "(3 computed, 0 already done" in proc.stdout
    with h5py.File(out, "r") as f:
        assert "marker" not in f.attrs
    proc = kmc("run", str(path), "--out", str(out), "--resume", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0 and "(0 computed, 3 already done" in proc.stdout
    missing = kmc("show", str(tmp_path / "none.h5"), cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip() == \
        f"kmc: {tmp_path / 'none.h5'}: no such file"


def test_log_file_and_verbose(tmp_path):
    """--log FILE keeps every message with its time; -v prints debug lines on stderr;
    without -v they stay out of stderr; an unwritable --log is one line."""
    path = tmp_path / "ok.toml"
    path.write_text(SMALL)
    log = tmp_path / "run.log"
    proc = kmc("run", str(path), "--out", str(tmp_path / "r.h5"), "--quiet", "--log",
               str(log), cwd=tmp_path)
    assert proc.returncode == 0 and "flushed" not in proc.stderr
    text = log.read_text()
    assert "DEBUG" in text and "flushed 3 row(s) in place" in text
    assert text.splitlines()[0][:4].isdigit()            # starts with the date
    proc = kmc("run", str(path), "--out", str(tmp_path / "r.h5"), "--quiet", "-v",
               cwd=tmp_path)
    assert proc.returncode == 0 and "kmc: " in proc.stderr and "0 to compute" in proc.stderr
    proc = kmc("run", str(path), "--out", str(tmp_path / "s.h5"), "--log",
               str(tmp_path / "nodir" / "x" / "run.log"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("kmc: --log: cannot write") and not (tmp_path / "s.h5").exists()
