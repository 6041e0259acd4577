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
