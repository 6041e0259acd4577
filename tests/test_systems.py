"""Disorder of both models as docs/model.md sections 1-2 define it."""
import numpy as np
import pytest
from scipy import stats

from kmc import seeding
from kmc.errors import ConfigError
from kmc.geometry import box_side, distance_matrix
from kmc.systems import ElectronSystem, TLSSystem


@pytest.mark.parametrize("d", [1, 2, 3])
def test_tls_disorder_distributions(d):
    n, W, U0 = 300, 1.7, 0.6
    s = TLSSystem.random(np.random.default_rng(4), n, d, W=W, J=U0, delta0_min=1e-5,
                         delta0_max=1e-2)
    side = box_side(n, d)
    assert side == pytest.approx(n ** (1 / d)) and s.box == pytest.approx(side)
    assert np.all((s.positions >= 0) & (s.positions < side))
    r = distance_matrix(s.positions, side)
    assert np.all(r <= np.sqrt(d) * side / 2 + 1e-12)  # minimum image
    np.testing.assert_array_equal(s.couplings, s.couplings.T)
    assert np.all(np.diag(s.couplings) == 0)
    iu = np.triu_indices(n, 1)
    u = s.couplings[iu] * r[iu] ** 3
    # u_ij ~ Normal(0, U0^2), Delta_i ~ Normal(0, W^2), ln Delta0 uniform: KS at 1e-3
    assert stats.kstest(u, "norm", args=(0, U0)).pvalue > 1e-3
    assert stats.kstest(s.bias, "norm", args=(0, W)).pvalue > 1e-3
    lo, hi = np.log(1e-5), np.log(1e-2)
    assert stats.kstest(np.log(s.delta0), "uniform", args=(lo, hi - lo)).pvalue > 1e-3


def test_electron_disorder():
    n, W, e2 = 400, 2.0, 0.7
    s = ElectronSystem.random(np.random.default_rng(5), n, 2, W=W, J=e2, filling=0.3)
    assert s.n_electrons == 120 and s.filling == pytest.approx(0.3)
    assert stats.kstest(s.site_energies, "uniform", args=(-W / 2, W)).pvalue > 1e-3
    iu = np.triu_indices(n, 1)
    np.testing.assert_allclose(s.interactions[iu], e2 / s.distances[iu], rtol=1e-13)
    assert np.all(np.diag(s.interactions) == 0)


def test_realization_streams_depend_only_on_seed_point_realization():
    a = seeding.stream(7, 2, 5, seeding.DISORDER).standard_normal(4)
    seeding.stream(7, 0, 0, seeding.DISORDER).standard_normal(100)  # other draws between
    b = seeding.stream(7, 2, 5, seeding.DISORDER).standard_normal(4)
    np.testing.assert_array_equal(a, b)
    c = seeding.stream(7, 2, 6, seeding.DISORDER).standard_normal(4)
    d = seeding.stream(7, 2, 5, seeding.SOLVER).standard_normal(4)
    assert not np.allclose(a, c) and not np.allclose(a, d)


def test_coupling_blocks_do_not_change_the_stream():
    """Rows are drawn in blocks; the matrix must equal one drawn in a single call."""
    n = 600  # more than two blocks of 256 rows
    s = TLSSystem.random(np.random.default_rng(3), n, 3, W=0.0, J=1.0)
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, box_side(n, 3), (n, 3))
    u = rng.standard_normal(n * (n - 1) // 2)
    r = distance_matrix(pos, box_side(n, 3))
    iu = np.triu_indices(n, 1)
    np.testing.assert_allclose(s.couplings[iu], u / r[iu] ** 3, rtol=1e-12)


def test_from_arrays_checks_shapes():
    bias = np.array([0.1, -0.2, 0.3])
    c = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0.0]])
    s = TLSSystem.from_arrays(bias, [1e-3] * 3, c)
    assert s.n_sites == 3 and s.positions is None
    with pytest.raises(ConfigError, match="couplings: matrix must be symmetric"):
        TLSSystem.from_arrays(bias, [1e-3] * 3, c + np.triu(c))
    with pytest.raises(ConfigError, match=r"delta0: expected shape \(3,\)"):
        TLSSystem.from_arrays(bias, [1e-3] * 2, c)
    e = ElectronSystem.from_arrays([0.0, 0.1, 0.2, 0.3], 2, positions=[[0, 0], [1, 0], [0, 1], [1, 1]])
    assert e.interactions[0, 1] == pytest.approx(1.0) and e.distances[0, 3] == pytest.approx(np.sqrt(2))
    with pytest.raises(ConfigError, match="n_electrons"):
        ElectronSystem.from_arrays([0.0, 0.1], 2, distances=[[0, 1], [1, 0]])


NAN, INF = np.nan, np.inf
_C = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0.0]])
_POS2 = [[0, 0], [1, 0], [0, 1.0]]


@pytest.mark.parametrize("build,key", [
    (lambda: TLSSystem.from_arrays([NAN, 0, 0], [1e-3] * 3, _C), "bias"),
    (lambda: TLSSystem.from_arrays([0, -INF, 0], [1e-3] * 3, _C), "bias"),
    (lambda: TLSSystem.from_arrays([0, 0, 0], [1e-3, NAN, 1e-3], _C), "delta0"),
    (lambda: TLSSystem.from_arrays([0, 0, 0], [1e-3, 0, 1e-3], _C), "delta0"),
    (lambda: TLSSystem.from_arrays([0, 0, 0], [1e-3] * 3, np.where(_C == 3, INF, _C)), "couplings"),
    (lambda: TLSSystem.from_arrays([0, 0, 0], [1e-3] * 3, _C,
                                   positions=[[0, 0, 0], [NAN, 1, 0], [1, 0, 0]]), "positions"),
    (lambda: TLSSystem.from_arrays([0, 0, 0], [1e-3] * 3, _C, box=-1.0), "box"),
    (lambda: ElectronSystem.from_arrays([0, NAN, 0], 1, positions=_POS2), "site_energies"),
    (lambda: ElectronSystem.from_arrays([0, 0, 0], 1, distances=-_C), "distances"),
    (lambda: ElectronSystem.from_arrays([0, 0, 0], 1, distances=np.where(_C == 1, INF, _C)),
     "distances"),
    (lambda: ElectronSystem.from_arrays([0, 0, 0], 1, positions=[[0, 0], [1, 1], [1, 1]]),
     "positions"),
    (lambda: ElectronSystem.from_arrays([0, 0, 0], 2.7, positions=_POS2), "n_electrons"),
    (lambda: ElectronSystem.from_arrays([0, 0, 0], 1, positions=_POS2,
                                        interactions=np.where(_C == 2, INF, _C)), "interactions"),
    (lambda: TLSSystem.random(-1, 10), "rng"),
    (lambda: TLSSystem.random(1, 10, W=INF), "W"),
    (lambda: TLSSystem.random(1, 10, delta0_min=NAN), "delta0_min"),
    (lambda: ElectronSystem.random(1, 10, J=NAN), "J"),
    (lambda: ElectronSystem.random(1, 10, filling=0.01), "filling"),
    (lambda: TLSSystem.random(1, 10 ** 9), "n_sites"),
])
def test_bad_arrays_refused_in_one_line(build, key):
    """Issue 9: NaN/inf and impossible values were accepted and gave NaN or a hang later."""
    with pytest.raises(ConfigError) as info:
        build()
    assert str(info.value).startswith(f"{key}: ") and "\n" not in str(info.value)


def test_nan_couplings_message_is_not_symmetry():
    """Issue 9: NaN couplings were refused with a misleading 'must be symmetric'."""
    with pytest.raises(ConfigError, match=r"couplings: must be finite, got nan"):
        TLSSystem.from_arrays([0, 0, 0], [1e-3] * 3, np.where(_C == 1, NAN, _C))


def test_integer_seed_equals_generator_and_single_delta0():
    a = TLSSystem.random(7, 20, delta0_min=1e-3, delta0_max=1e-3)
    b = TLSSystem.random(np.random.default_rng(7), 20, delta0_min=1e-3, delta0_max=1e-3)
    np.testing.assert_array_equal(a.couplings, b.couplings)
    np.testing.assert_array_equal(a.delta0, np.full(20, a.delta0[0]))
    e1, e2 = ElectronSystem.random(3, 20), ElectronSystem.random(np.random.default_rng(3), 20)
    np.testing.assert_array_equal(e1.site_energies, e2.site_energies)


def test_repr_is_one_short_line():
    for s in (TLSSystem.random(1, 300), ElectronSystem.random(1, 300)):
        text = repr(s)
        assert "\n" not in text and len(text) < 200 and "n_sites=300" in text
