"""The paper's box geometry (``model.box = "paper"``, docs/model.md "Conventions").

[AAIS17]'s scripts placed N sites in a periodic box of side N^(1/d) - 1, so their density
N / (N^(1/d) - 1)^d grows as N shrinks; the default keeps the density fixed. These tests pin
the paper box (side, density, minimum-image distances, couplings from an independent
brute-force computation), its validation, the round trip through a result file, and that
the default geometry is untouched.
"""
import itertools
import json

import numpy as np
import pytest

import kmc
from analysis.run import run
from kmc.errors import ConfigError
from kmc.geometry import box_side, paper_box_side, paper_density
from kmc.pipeline import config
from kmc.seeding import DISORDER, stream
from kmc.storage.schema import build_system
from kmc.storage.store import point_config_json
from kmc.systems import ElectronSystem, TLSSystem


def brute_force_distances(positions, side):
    """(N, N) distances minimized over all 3^d periodic images (no rounding trick)."""
    n, d = positions.shape
    best = np.full((n, n), np.inf)
    for shift in itertools.product((-1.0, 0.0, 1.0), repeat=d):
        delta = positions[:, None, :] - positions[None, :, :] + side * np.asarray(shift)
        best = np.minimum(best, np.sqrt((delta ** 2).sum(axis=-1)))
    return best


@pytest.mark.parametrize("n,d,side", [(100, 2, 9.0), (1000, 3, 9.0), (400, 2, 19.0),
                                      (8, 3, 1.0)])
def test_paper_side_and_density(n, d, side):
    # N^(1/d) - 1 at perfect powers, and density N / side^d
    assert paper_box_side(n, d) == pytest.approx(side, rel=1e-14)
    assert paper_density(n, d) == pytest.approx(n / side ** d, rel=1e-13)
    # the fixed-density box at the paper's density is the paper's box
    assert box_side(n, d, paper_density(n, d)) == pytest.approx(side, rel=1e-13)


def test_paper_density_decreases_towards_one_with_n():
    for d in (1, 2, 3):
        rho = [paper_density(n, d) for n in (10, 30, 100, 300, 1000, 10_000)]
        assert all(a > b > 1.0 for a, b in zip(rho, rho[1:]))


@pytest.mark.parametrize("name,d", [("tls", 3), ("electron", 2), ("electron", 1)])
def test_n_sweep_sets_each_points_density(name, d):
    c = config.loads(f'[model]\nname = "{name}"\ndimension = {d}\nbox = "paper"\n'
                     f'[sweep]\n"model.N" = [30, 100, 300]\n')
    for values, point in c.points():
        n = values["model.N"]
        assert point.model.box == "paper"
        assert point.model.density == paper_density(n, d)
        assert box_side(n, d, point.model.density) == pytest.approx(n ** (1 / d) - 1,
                                                                    rel=1e-13)


def test_default_is_fixed_density_one():
    c = config.loads('[model]\nname = "electron"\n[sweep]\n"model.N" = [30, 100]\n')
    assert c.model.box == "fixed-density"
    for values, point in c.points():
        assert point.model.density == 1.0
        system = build_system(point, 7, 0, 0)
        # unchanged draw: the box is exactly N^(1/d) and the disorder that of density 1
        assert system.box == values["model.N"] ** 0.5
        direct = ElectronSystem.random(stream(7, 0, 0, DISORDER), values["model.N"], 2)
        assert np.array_equal(system.positions, direct.positions)
        assert np.array_equal(system.interactions, direct.interactions)


def test_electron_paper_box_distances_and_interactions():
    c = config.loads('[model]\nname = "electron"\nN = 64\nbox = "paper"\n'
                     '[disorder]\nJ = 1.5\n')
    (_, point), = c.points()
    system = build_system(point, 3, 0, 1)
    side = 64 ** 0.5 - 1.0
    assert system.box == pytest.approx(side, rel=1e-14)
    assert np.all((system.positions >= 0) & (system.positions < system.box))
    reference = brute_force_distances(system.positions, system.box)
    np.testing.assert_allclose(system.distances, reference, rtol=1e-12, atol=0)
    assert system.distances.max() <= side * np.sqrt(2) / 2 * (1 + 1e-12)
    off = ~np.eye(64, dtype=bool)
    # C_ij = e^2 / r_ij with e^2 = J in the paper's box units
    np.testing.assert_allclose(system.interactions[off], 1.5 / reference[off], rtol=1e-12)


def test_tls_paper_box_couplings_from_an_independent_draw():
    n, d, seed = 50, 3, 11
    c = config.loads(f'[model]\nname = "tls"\nN = {n}\nbox = "paper"\n[disorder]\nJ = 0.7\n')
    (_, point), = c.points()
    system = build_system(point, seed, 0, 2)
    side = n ** (1 / d) - 1
    assert system.box == pytest.approx(side, rel=1e-14)
    # redraw the stream by hand: positions, then u_ij for i < j in row order (one block)
    rng = stream(seed, 0, 2, DISORDER)
    positions = rng.uniform(0.0, system.box, size=(n, d))
    u = rng.standard_normal(n * (n - 1) // 2)
    np.testing.assert_array_equal(system.positions, positions)
    r = brute_force_distances(positions, side)
    expected = np.zeros((n, n))
    expected[np.triu_indices(n, 1)] = 0.7 * u / r[np.triu_indices(n, 1)] ** 3
    expected += expected.T
    np.testing.assert_allclose(system.couplings, expected, rtol=1e-10, atol=0)


def test_paper_box_is_denser_than_fixed_density():
    """Same stream, paper box: positions are the fixed-density ones scaled by L_paper / L."""
    n = 100
    fixed = TLSSystem.random(5, n, 3)
    paper = TLSSystem.random(5, n, 3, density=paper_density(n, 3))
    scale = (n ** (1 / 3) - 1) / n ** (1 / 3)
    np.testing.assert_allclose(paper.positions, fixed.positions * scale, rtol=1e-12)
    # couplings ~ 1 / r^3: stronger by scale^-3 = the density ratio
    np.testing.assert_allclose(paper.couplings, fixed.couplings / scale ** 3, rtol=1e-9)


BAD = [
    ('[model]\nbox = "cube"\n',
     "model.box: expected one of 'fixed-density', 'paper', got 'cube'"),
    ('[model]\nbox = "paper"\ndensity = 2.0\n', "model.density: is set from N by model.box"),
    ('[model]\nbox = "paper"\n[sweep]\n"model.density" = [1.0, 2.0]\n',
     "model.density: is set from N by model.box"),
    ('[model]\nbox = 3\n', "model.box: "),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_box_input_is_one_line(text, message):
    with pytest.raises(ConfigError) as info:
        config.loads(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_box_can_be_swept_and_overridden():
    c = config.loads('[model]\nN = 100\n[sweep]\n"model.box" = ["fixed-density", "paper"]\n')
    assert [p.model.density for _, p in c.points()] == [1.0, paper_density(100, 3)]
    c = config.loads('[model]\nN = 100\n', ["model.box=paper"])
    assert c.points()[0][1].model.density == paper_density(100, 3)


def test_stored_point_config_round_trips(tmp_path):
    """A result file stores each point's resolved config (density included) and re-reads
    it with the same checks: the stored paper density must be accepted and reproduce the
    disorder."""
    text = ('[model]\nname = "electron"\nbox = "paper"\ntemperature = 0.2\n[linear]\n'
            '[ensemble]\nrealizations = 2\nseed = 4\n[output]\nflush_seconds = 0.0\n'
            '[sweep]\n"model.N" = [16, 36]\n')
    c = config.loads(text)
    for _, point in c.points():
        again = config.RunConfig.from_dict(json.loads(point_config_json(point)))
        assert again.points()[0][1].model == point.model
    run(c, out=tmp_path / "r.h5", progress=False)
    res = kmc.load(tmp_path / "r.h5")
    for p, n in enumerate((16, 36)):
        system = res.system(1, point=p)
        assert system.box == pytest.approx(n ** 0.5 - 1, rel=1e-13)
        assert res.points[p].config.model.density == paper_density(n, 2)
