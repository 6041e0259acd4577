"""Issue 9 catalogue: every bad input is refused with one line naming the key or path.

Each case runs ``kmc run`` (and ``kmc check`` where the file alone is at fault) against an
existing result file and checks: exit status 2, exactly one line on stderr of the form
``kmc: <key>...``, no traceback, done within the test timeout, and the existing result file
and its directory untouched. The infinity and size cases are generated from the config
metadata (every float key, every size key), so a key added later is covered too.
"""
import math
import subprocess
import sys
from dataclasses import fields

import pytest

from kmc.pipeline import cli, config

BASE = """
[model]
name = "tls"
N = 20
temperature = 0.2
[ensemble]
realizations = 2
[output]
figures = false
"""
ELECTRON = BASE.replace('name = "tls"', 'name = "electron"')


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """A finished result file that no refused run may change."""
    folder = tmp_path_factory.mktemp("catalogue")
    good = folder / "good.toml"
    good.write_text(BASE)
    out = folder / "existing.h5"
    assert cli.main(["run", str(good), "--out", str(out), "--quiet"]) == 0
    return folder, out


def _refused(capsys, folder, out, text, *args, key, commands=("check", "run")):
    """Run the case; assert one line naming ``key``, exit 2, nothing changed."""
    path = folder / "case.toml"
    path.write_text(text)
    before = out.read_bytes()
    listing = sorted(p.name for p in folder.iterdir())
    for command in commands:
        extra = ["--out", str(out), "--quiet"] if command == "run" else []
        code = cli.main([command, str(path), *extra, *args])
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == 2, (command, err)
        assert len(lines) == 1 and lines[0].startswith("kmc: "), err
        assert key in lines[0], (key, lines[0])
        assert "Traceback" not in err
    assert out.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == listing


def _with_key(text, table, key, value):
    """``text`` with ``table.key = value`` (a TOML literal), replacing a line that sets
    the key in that table and appending the table when absent."""
    lines = text.splitlines()
    if f"[{table}]" not in lines:
        return text + f"[{table}]\n{key} = {value}\n"
    start = lines.index(f"[{table}]") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    body = [ln for ln in lines[start:end] if not ln.startswith(f"{key} =")]
    lines[start:end] = [f"{key} = {value}"] + body
    return "\n".join(lines) + "\n"


def _float_keys():
    out = []
    for table, section in list(config.SECTIONS.items()) + [("sweep", config.SweepConfig)]:
        for f in fields(section):
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            if kind == "float" or f.metadata.get("item") == "float":
                out.append((table, f.name, kind != "float", f.default))
    return out


INFINITY_CASES = []
for _table, _key, _is_list, _default in _float_keys():
    _values = ["[1.0, inf]", "[nan]"] if _is_list else ["inf", "-inf", "nan"]
    for _value in _values:
        if not _is_list and _value == "inf" and isinstance(_default, float) \
                and math.isinf(_default):
            continue  # inf is this key's documented meaning (initial_temperature)
        INFINITY_CASES.append((_table, _key, _value))


@pytest.mark.parametrize("table,key,value", INFINITY_CASES)
def test_every_float_key_refuses_infinities(capsys, existing, table, key, value):
    """Issue 9: inf was accepted for 17 keys (hangs, tracebacks, NaN output)."""
    text = BASE
    if table == "sweep" and key in ("W_over_J", "W2_plus_J2"):
        text += "[sweep]\nW_over_J = [1.0]\nW2_plus_J2 = 2.0\n"
    text = _with_key(text, table, key, value)
    _refused(capsys, *existing, text, key=f"{table}.{key}")


def test_infinite_sweep_values_refused(capsys, existing):
    text = BASE + '[sweep]\n"disorder.W" = [1.0, inf]\n'
    _refused(capsys, *existing, text, key="disorder.W")
    text = BASE + '[sweep]\n"model.temperature" = [0.1, nan]\n'
    _refused(capsys, *existing, text, key="model.temperature")


SIZE_CASES = [
    (BASE, ("--set", "model.N=1e9"), "model.N"),
    (BASE, ("--set", "model.N=100000"), "model.N"),
    (BASE, ("--set", "ensemble.realizations=1e9"), "ensemble.realizations"),
    (BASE, ("--set", "output.dos_bins=1e9"), "output.dos_bins"),
    (BASE + "[dynamics]\n", ("--set", "dynamics.n_times=1e8"), "dynamics.n_times"),
    (BASE + "[dynamics]\n", ("--set", "dynamics.replicas=1e9"), "dynamics.replicas"),
    (ELECTRON + "[dynamics]\n", ("--set", "dynamics.replicas=1e9"), "dynamics.replicas"),
    (BASE + "[linear]\n", ("--set", "linear.bins=1e10"), "linear.bins"),
    (BASE + "[linear]\n", ("--set", "linear.times_per_decade=1e10"), "linear.times_per_decade"),
    (ELECTRON + "[linear]\n", ("--set", "model.N=200000"), "model.N"),
    (BASE + '[dynamics]\nmethod = "exact"\n', ("--set", "model.N=60"), "dynamics.method"),
    (ELECTRON + '[dynamics]\nmethod = "exact"\n', ("--set", "model.N=60"), "dynamics.method"),
    (BASE, ("--set", "model.N=1e30"), "model.N"),
    (BASE, ("--set", "ensemble.seed=-1"), "ensemble.seed"),
]


@pytest.mark.parametrize("text,args,key", SIZE_CASES)
def test_sizes_that_cannot_fit_are_refused_up_front(capsys, existing, text, args, key):
    """Issue 9: these passed `kmc check` and died of MemoryError after up to 40 s."""
    _refused(capsys, *existing, text, *args, key=key)


LOGIC_CASES = [
    ("", (), "model"),
    ("# only a comment\n", (), "model"),
    ("[disorder]\nW = 2.0\n", (), "model"),
    (BASE + "[sweep]\nW_over_J = [1.0, 3.0]\nW2_plus_J2 = 2.0\n\"disorder.W\" = [5.0, 6.0]\n",
     (), "W_over_J"),
    (BASE + "[sweep]\nW_over_J = [1.0]\nW2_plus_J2 = 2.0\n[sweep.disorder]\nJ = [1.0]\n",
     (), "W_over_J"),
    (BASE + "[sweep]\nW_over_J = []\nW2_plus_J2 = 2.0\n", (), "sweep.W_over_J"),
    (BASE + "[sweep]\nW_over_J = [1.0, 2.0]\n", (), "sweep.W2_plus_J2"),
    (BASE + "[sweep]\nW_over_J = [1.0, -2.0]\nW2_plus_J2 = 2.0\n", (), "sweep.W_over_J"),
    (BASE + "[sweep]\nW_over_T = 10\n\"model.temperature\" = [0.1]\n", (), "W_over_T"),
    (BASE + "[sweep]\n\"disorder.W\" = [1.0]\n[sweep.disorder]\nW = [2.0]\n", (),
     "sweep.disorder.W"),
    (BASE + "[sweep]\n\"disorder.W\" = []\n", (), "sweep.disorder.W"),
    (BASE + "[sweep]\n\"disorder.W\" = 1.0\n", (), "sweep.disorder.W"),
    (BASE + "[sweep]\n\"ensemble.seed\" = [1, 2]\n", (), "sweep"),
    (BASE + "[sweep]\nmode = \"zip\"\n\"disorder.W\" = [1.0, 2.0]\n\"disorder.J\" = [1.0]\n",
     (), "sweep"),
    (BASE + "[solver]\nanneal = [\"hot\"]\n", (), "solver.anneal"),
    (BASE + "[solver]\nanneal = [1.0, -1.0]\n", (), "solver.anneal"),
    (BASE + "[solver]\nanneal = 1.0\n", (), "solver.anneal"),
    (BASE.replace("figures = false", "figures = false\ndos_range = [\"a\", \"b\"]"), (),
     "output.dos_range"),
    (BASE.replace("figures = false", "figures = false\ndos_range = [1.0]"), (),
     "output.dos_range"),
    (BASE.replace("figures = false", "figures = false\ndos_range = [2.0, 1.0]"), (),
     "output.dos_range"),
    (BASE + "[disorder]\nW = 0.0\nJ = 0.0\n", (), "output.dos_range"),
    (BASE + "[linear]\n", ("--set", "linear.alpha=1.5"), "linear.alpha"),
    (ELECTRON + "[linear]\n[disorder]\nW = 0.0\n", (), "disorder.W"),
    (BASE, ("--set", "model.tempreature=0.1"), "did you mean 'temperature'"),
    (BASE + "[modle]\nN = 3\n", (), "did you mean 'model'"),
    (BASE, ("--set", "N=5"), "--set"),
    (BASE, ("--set", "model.N=5", "--set", "model.N=6"), "--set"),
    (BASE + '[sweep]\n"disorder.J" = [0.0, 1.0]\n',
     ("--set", "sweep.disorder.J=[1.0]", "--set", 'sweep."disorder.J"=[2.0]'), "--set"),
    (BASE, ("--set", "model=3"), "--set"),
    (BASE, ("--set", "model.N.x=3"), "model.N"),
    (BASE + "[dynamics]\nprotocol = \"state\"\n", (), "dynamics.initial_state_file"),
    (BASE + "[dynamics]\nprotocol = \"state\"\ninitial_state_file = \"missing.npy\"\n", (),
     "dynamics.initial_state_file"),
    (BASE + "[dynamics]\nt_min = 10.0\nt_max = 1.0\n", (), "dynamics.t_min"),
    (BASE + "[dynamics]\nmethod = \"magic\"\n", (), "dynamics.method"),
    (BASE + "[disorder]\ndelta0_min = 0.5\ndelta0_max = 0.1\n", (), "disorder.delta0_min"),
    (ELECTRON.replace("N = 20", "N = 20\nfilling = 0.01"), (), "model.filling"),
    (BASE.replace("N = 20", "N = 1.5"), (), "model.N"),
    (BASE.replace("N = 20", "N = true"), (), "model.N"),
    (BASE.replace("N = 20", "dimension = 4"), (), "model.dimension"),
    (BASE + "[ensemble]\nworkers = -1\n", (), "ensemble.workers"),
    ("[model\nN = 3\n", (), "not valid TOML"),
]


@pytest.mark.parametrize("text,args,key", LOGIC_CASES)
def test_run_file_logic(capsys, existing, text, args, key):
    """Issue 9 "Run-file logic" and issue 10.7 (all errors at once, did you mean)."""
    if "[ensemble]\nworkers" in text:  # a second [ensemble] table would be invalid TOML
        text = text.replace("[ensemble]\nrealizations = 2\n", "") \
                   .replace("[ensemble]\nworkers", "[ensemble]\nrealizations = 2\nworkers")
    _refused(capsys, *existing, text, *args, key=key)


@pytest.mark.parametrize("args", [("--workers", "-1"), ("--workers", "two")])
def test_bad_command_line_arguments(existing, args):
    folder, out = existing
    path = folder / "ok.toml"
    path.write_text(BASE)
    before = out.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "kmc", "run", str(path), "--out", str(out),
                           *args], capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "--workers" in lines[0], proc.stderr
    assert out.read_bytes() == before
    path.unlink()


def test_all_problems_reported_at_once(capsys, existing):
    text = BASE.replace("temperature = 0.2", "temperature = -1\ncolour = 3") \
        + "[disorder]\nW = inf\n"
    path = existing[0] / "many.toml"
    path.write_text(text)
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    for key in ("model.temperature", "model.colour", "disorder.W"):
        assert key in err
    path.unlink()


def test_single_delta0_and_state_protocol_from_a_run_file(tmp_path, capsys):
    """Issue 9: delta0_min = delta0_max and protocol 'state' were refused from run files."""
    import numpy as np
    states = np.tile([0.5, -0.5] * 10, (2, 1))
    np.save(tmp_path / "states.npy", states)
    text = BASE.replace("[ensemble]", "[disorder]\ndelta0_min = 0.01\ndelta0_max = 0.01\n"
                                      "[dynamics]\nprotocol = \"state\"\n"
                                      "initial_state_file = \"states.npy\"\nt_max = 10.0\n"
                                      "n_times = 4\nreplicas = 2\n[ensemble]")
    path = tmp_path / "state.toml"
    path.write_text(text)
    import os
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert cli.main(["run", str(path), "--out", str(tmp_path / "s.h5"), "--quiet"]) == 0
    finally:
        os.chdir(cwd)
    import h5py
    with h5py.File(tmp_path / "s.h5", "r") as f:
        delta0 = f["glassrelax/points/p0000/delta0"][:]
        assert np.all(delta0 == delta0[0, 0]) and np.all(f["glassrelax/points/p0000/status"][:] == 1)


@pytest.mark.parametrize("override", ["model.temperature=1e-4", "disorder.J=100",
                                      "disorder.W=0", "model.N=2"])
def test_electron_linear_extremes_run_or_refuse_in_one_line(tmp_path, capsys, override):
    """Issue 9 "Extremes": [linear] at T = 1e-4 or J = 100 ended in a ValueError traceback;
    at W = 0 (bare start) the energies are equal and Eq. 21 diverges: refused up front."""
    path = tmp_path / "extreme.toml"
    path.write_text(ELECTRON + "[linear]\n")
    code = cli.main(["run", str(path), "--out", str(tmp_path / "x.h5"), "--quiet",
                     "--set", override])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if override == "disorder.W=0":
        assert code == 2 and err.strip().startswith("kmc: disorder.W: ")
        assert len(err.strip().splitlines()) == 1 and not (tmp_path / "x.h5").exists()
    else:
        assert code == 0, err


def test_error_inside_a_worker_leaves_nothing_behind(tmp_path):
    """A ConfigError raised in a pool worker (a hop cut-off that leaves no pair) reaches the
    user as the same one line, exit 2; the result file this run created, with nothing
    finished in it, and its checkpoint folder are removed (they were left behind before)."""
    run = tmp_path / "q.toml"
    run.write_text(ELECTRON + "[dynamics]\nt_max = 10.0\nreplicas = 2\n")
    proc = subprocess.run([sys.executable, "-m", "kmc", "run", str(run), "--out", "q.h5",
                           "--quiet", "--workers", "2", "--set", "dynamics.hop_cutoff=0.01"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("kmc: dynamics.hop_cutoff"), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.toml"]


def test_two_sites_say_why_lambda_min_is_undefined(tmp_path):
    """Electron N = 2 has one rate per realization and no plateau: lambda_min was NaN without
    a word; the run now warns, and the note is stored with the summary."""
    run = tmp_path / "n2.toml"
    run.write_text(ELECTRON.replace("N = 20", "N = 2") + "[linear]\n")
    proc = subprocess.run([sys.executable, "-m", "kmc", "run", str(run), "--out", "n2.h5",
                           "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "lambda_min/lambda_max undefined" in proc.stderr
    import h5py
    from kmc.storage.schema import point_path
    with h5py.File(tmp_path / "n2.h5", "r") as f:
        assert "undefined" in f[point_path(0)]["linear"].attrs["note"]
