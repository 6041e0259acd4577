"""Run files: parsing, overrides, sweeps and one-line errors for bad input."""
import math

import pytest

from kmc.pipeline import config
from kmc.errors import ConfigError

BAD = [
    ("[model]\nfoo = 1\n", "model.foo: unknown key; expected one of name, N"),
    ("[modle]\nN = 3\n", "modle: unknown table"),
    ("[model]\nN = \"many\"\n", "model.N: expected an integer, got 'many'"),
    ("[model]\ntemperature = -1\n", "model.temperature: must be > 0, got -1.0"),
    ("[model]\ntemperature = 0\n", "model.temperature: must be > 0, got 0.0"),
    ("[model]\nN = 1\n", "model.N: must be >= 2, got 1"),
    ("[disorder]\ndelta0_min = 0.2\ndelta0_max = 0.1\n",
     "disorder.delta0_min: must be < disorder.delta0_max = 0.1, got 0.2"),
    ("[model]\nname = \"electron\"\nfilling = 1.2\n", "model.filling: must be in (0, 1), got 1.2"),
    ("[model]\nname = \"electron\"\nfilling = 0.0\n", "model.filling: must be in (0, 1), got 0.0"),
    ("[model]\nname = \"spin\"\n", "model.name: expected one of 'tls', 'electron', got 'spin'"),
    ("[ensemble]\nbackend = \"mpi\"\n", "ensemble.backend: expected one of 'local', 'dask', got 'mpi'"),
    ("[sweep]\n\"model.colour\" = [1]\n", "sweep: unknown parameter 'model.colour'"),
    ("[sweep]\n\"disorder.W\" = [1, -2]\n", "disorder.W: must be >= 0, got -2.0"),
    ("[model\nN=3", "run file is not valid TOML"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_input_message(text, message):
    with pytest.raises(ConfigError) as info:
        config.loads(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_defaults_and_model_dimension():
    c = config.loads("")
    assert c.model.name == "tls" and c.model.d == 3
    assert config.loads("[model]\nname = \"electron\"\n").model.d == 2


def test_set_overrides_are_typed_and_checked():
    c = config.loads("[model]\nN = 100\n", ["model.N=50", "disorder.W=2", "solver.anneal=[1.0, 0.5]"])
    assert c.model.N == 50 and c.disorder.W == 2.0 and c.solver.anneal == (1.0, 0.5)
    with pytest.raises(ConfigError, match="model.N: must be >= 2, got 1"):
        config.loads("", ["model.N=1"])
    with pytest.raises(ConfigError, match="--set: expected table.key=value"):
        config.loads("", ["N50"])


def test_sweep_grid_and_zip():
    c = config.loads('[sweep]\n"disorder.W" = [1, 2]\n"model.N" = [10, 20, 30]\n')
    assert len(c.points()) == 6
    c = config.loads('[sweep]\nmode = "zip"\n"disorder.W" = [1, 2]\n"model.N" = [10, 20]\n')
    assert [(p.disorder.W, p.model.N) for _, p in c.points()] == [(1.0, 10), (2.0, 20)]
    with pytest.raises(ConfigError, match="equal length"):
        config.loads('[sweep]\nmode = "zip"\n"disorder.W" = [1, 2]\n"model.N" = [10]\n')


def test_fixed_variance_and_fixed_ratio_schemes():
    c = config.loads("[sweep]\nW_over_J = [1.0, 3.1, 9.8]\nW2_plus_J2 = 2.0\n")
    for values, p in c.points():
        assert p.disorder.W ** 2 + p.disorder.J ** 2 == pytest.approx(2.0)
        assert p.disorder.W / p.disorder.J == pytest.approx(values["W_over_J"])
    c = config.loads('[sweep]\n"disorder.W" = [1.0, 10.0]\nW_over_T = 10\n')
    assert [p.model.temperature for _, p in c.points()] == [0.1, 1.0]


def test_resolved_config_round_trips():
    c = config.loads('[model]\nN = 77\n[solver]\nanneal = [1.0]\n')
    resolved = c.resolved()
    resolved.pop("sweep")
    again = config.RunConfig.from_dict(resolved)
    assert again == c
    assert math.isclose(again.model.temperature, 0.05)


SWEEP_J = """
[model]
name = "tls"
N = 30
[sweep]
"disorder.J" = [0.0, 1.0]
"""


@pytest.mark.parametrize("override", ['sweep."disorder.J"=[1.0]', "sweep.disorder.J=[1.0]"])
def test_set_replaces_the_sweep_axis_it_names(tmp_path, override):
    """Issue 10.1: the quoted form was rejected and the dotted form added a second axis
    (2 points, both J = 1, J = 0 lost). Both now replace the file's axis."""
    import subprocess
    import sys
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP_J)
    proc = subprocess.run([sys.executable, "-m", "kmc", "check", str(path), "--set", override],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ok (tls, 1 point(s) x 10 realization(s))" in out
    assert 'override: sweep."disorder.J" = [1.0]' in out
    points = [line for line in out.splitlines() if line.startswith("point ")]
    assert len(points) == 1 and ", J = 1 " in points[0] and "(disorder.J = 1.0)" in points[0]
    c = config.loads(SWEEP_J, [override])
    assert [p.disorder.J for _, p in c.points()] == [1.0]


def test_set_duplicates_and_same_axis_twice_refused():
    with pytest.raises(ConfigError, match=r'--set: sweep."disorder.J" given twice'):
        config.loads(SWEEP_J, ["sweep.disorder.J=[1.0]", 'sweep."disorder.J"=[2.0]'])
    with pytest.raises(ConfigError, match="--set: model.N given twice"):
        config.loads(SWEEP_J, ["model.N=10", "model.N = 20"])
    with pytest.raises(ConfigError, match="sweep.disorder.J: axis given twice"):
        config.loads(SWEEP_J + "[sweep.disorder]\nJ = [3.0]\n")


def test_set_values_are_toml_with_bare_strings_as_strings():
    c = config.loads(SWEEP_J, ["model.name=electron", 'output.path = "x y.h5"',
                               "solver.anneal = [1, 0.5]", "linear={}"])
    assert c.model.name == "electron" and c.output.path == "x y.h5"
    assert c.solver.anneal == (1.0, 0.5) and c.linear.enabled
    assert dict(c.overrides)["model.name"] == "electron"


def test_check_prints_physical_values_of_ratio_sweeps(tmp_path):
    from kmc.pipeline import cli
    path = tmp_path / "ratio.toml"
    path.write_text("[model]\nN = 30\n[sweep]\nW_over_J = [1.0, 3.0]\nW2_plus_J2 = 2.0\n"
                    "W_over_T = 10\n")
    import contextlib
    import io
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli.main(["check", str(path)]) == 0
    lines = [ln for ln in buffer.getvalue().splitlines() if ln.startswith("point ")]
    j = math.sqrt(2.0 / 10.0)
    assert f"W = {3 * j:.6g}, J = {j:.6g}" in lines[1] and f"T = {3 * j / 10:.6g}" in lines[1]
    assert "memory: about" in buffer.getvalue()


def test_run_file_reference_is_current():
    """docs/run-file.md is generated: python -m kmc keys --markdown > docs/run-file.md"""
    from pathlib import Path
    doc = Path(__file__).resolve().parents[1] / "docs" / "run-file.md"
    assert doc.read_text() == config.key_reference(markdown=True)
    for table, key, *_ in config.key_rows():
        assert f"`{key}`" in doc.read_text()


def test_every_key_has_a_meaning_and_a_default():
    for table, key, kind, default, accepted, doc in config.key_rows():
        assert doc, f"{table}.{key} has no meaning"
        if kind == "float":
            assert "finite" in accepted or "inf" in accepted, f"{table}.{key}"


def test_run_files_in_the_repository_are_valid():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "runs"
    files = sorted(root.glob("*.toml")) + sorted(root.glob("reduced/*.toml"))
    assert files
    for path in files:
        config.load(path)
