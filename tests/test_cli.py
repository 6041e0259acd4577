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
