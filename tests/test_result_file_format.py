"""Self-describing result files (issue 10.3): units and description on every dataset,
dimension scales, sweep values as datasets, strict JSON attributes, compressed large rows
that a later run can still extend."""
import json

import h5py
import numpy as np
import pytest

import kmc
from analysis.run import run
from kmc.pipeline import config as config_module
from kmc.storage import store
from kmc.storage.schema import POINTS, ROOT, Status, from_json, point_path, row_layout, to_json

TEXT = """
[model]
name = "{model}"
N = 20
temperature = 0.2
[linear]
[dynamics]
replicas = 2
t_min = 0.1
t_max = 10.0
n_times = 5
initial_temperature = inf
mc_sampling_sweeps = 20
mc_equilibration_sweeps = 10
[ensemble]
realizations = 2
seed = 4
[output]
figures = false
flush_seconds = 0.0
[sweep]
"disorder.W" = [0.5, 1.5]
"""


def strict_json(text):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module", params=["tls", "electron"])
def finished(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "r.h5"
    run(config_module.loads(TEXT.format(model=request.param)), out=path, progress=False)
    return path


def test_every_dataset_has_units_and_description(finished):
    missing = []
    with h5py.File(finished, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not (obj.attrs.get("units") and
                                                      obj.attrs.get("description")):
                missing.append(name)
        f.visititems(visit)
        assert f[f"{point_path(0)}/rates"].attrs["units"] in ("a J^3", "Gamma0")
        assert f[f"{point_path(0)}/dos/mean"].attrs["units"] == "1/J"
    assert missing == []


def test_dimension_scales_and_sweep_values(finished):
    with h5py.File(finished, "r") as f:
        g = f[point_path(1)]
        def dims(name):
            return tuple(d[0].name.rsplit("/", 1)[-1] if len(d) else None for d in g[name].dims)
        assert dims("fields") == ("realization", "site")
        assert dims("dynamics/occupation") == ("realization", "times", "site")
        assert dims("dos/counts") == ("realization", "centres")
        assert dims("dos/mean") == ("centres",)
        assert dims("dynamics/ensemble/deviation") == ("times",)
        assert np.array_equal(g["realization"][()], np.arange(2))
        assert np.array_equal(f[f"{ROOT}/sweep/disorder.W"][()], [0.5, 1.5])


def test_attributes_are_strict_json(finished):
    """initial_temperature = inf used to be written as Infinity (not JSON)."""
    with h5py.File(finished, "r") as f:
        texts = [f[ROOT].attrs["config"], f[ROOT].attrs["identity"]]
        texts += [g.attrs[k] for g in f[POINTS].values() for k in ("values", "config", "rows")]
    for text in texts:
        strict_json(text)
    assert kmc.load(finished).points[0].config.dynamics.initial_temperature == np.inf
    assert from_json(to_json({"a": [np.inf, -np.inf, 1.5]})) == {"a": [np.inf, -np.inf, 1.5]}


def test_large_rows_compressed_at_the_end_and_extended_later(tmp_path):
    """Rows above 1 MB are gzip-chunked once a run has written its summaries; a rerun with
    more realizations unpacks them, keeps every committed row and writes the new ones."""
    text = "[model]\nname = \"tls\"\nN = 2000\n[ensemble]\nrealizations = {r}\n"
    small, large = (config_module.loads(text.format(r=r)) for r in (100, 102))
    path = tmp_path / "big.h5"
    rng = np.random.default_rng(1)

    def rows(config):
        out = {k: rng.standard_normal(s).astype(d) for k, (s, d, _) in
               row_layout(config).items() if np.dtype(d).kind == "f"}
        out["status"] = int(Status.CONVERGED)
        return out

    written = {}
    with store.locked(path):
        writer = store.ResultWriter(path, small)
        for k in range(100):
            written[k] = rows(small)
            writer.add(0, k, written[k])
        writer.flush()
    store.write_derived(path, {})
    with h5py.File(path, "r") as f:
        assert f[point_path(0)]["fields"].compression == "gzip"      # 100 x 2000 x 8 B
        assert f[point_path(0)]["positions"].compression == "gzip"
        assert f[point_path(0)]["status"].compression is None          # 100 B
    with store.locked(path):
        writer = store.ResultWriter(path, large)
        assert writer.todo() == [(0, 100), (0, 101)]
        for k in (100, 101):
            written[k] = rows(large)
            writer.add(0, k, written[k])
        writer.flush()
    res = kmc.load(path)
    for name in ("fields", "positions", "energies"):
        stored = res.dataset(name)
        for k, row in written.items():
            np.testing.assert_array_equal(stored[k], row[name], err_msg=f"{name}[{k}]")
    assert np.all(res.status() == Status.CONVERGED)


def test_to_xarray_is_optional_with_a_clear_error(finished, monkeypatch):
    res = kmc.load(finished)
    monkeypatch.setitem(__import__("sys").modules, "xarray", None)   # as if not installed
    with pytest.raises(ImportError, match=r"^Results.to_xarray needs xarray.*pip install"):
        res.to_xarray()


def test_to_xarray_dims_coords_and_values(finished):
    pytest.importorskip("xarray")
    res = kmc.load(finished)
    ds = res.to_xarray(1)
    assert ds["fields"].dims == ("realization", "site")
    assert ds["dynamics_occupation"].dims == ("realization", "time", "site")
    np.testing.assert_array_equal(ds["fields"].values, res.dataset("fields", 1))
    np.testing.assert_array_equal(ds["time"].values, res.dynamics(1).times)
    assert ds["dos_mean"].attrs["units"] == "1/J"
    assert ds.attrs["linear_lambda_min"] == res.linear(1).lambda_min
    assert ds.attrs["sweep_disorder.W"] == 1.5
