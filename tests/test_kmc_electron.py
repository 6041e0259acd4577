"""Kinetic Monte Carlo of the electron glass: exactness of the thinning kernel.

Fixed seeds; 4-standard-error z-tests or p > 1e-3 for KS and chi-square tests.
"""
import numpy as np
import pytest
from scipy import stats

from kmc import ElectronSystem
from kmc.dynamics import DynamicsParams, MasterEquation, simulate
from kmc.dynamics.electron_engine import ElectronEngine, hop_pairs, pair_prefactors
from kmc.dynamics.counters import EVENTS, VIOLATIONS
from kmc.errors import ConfigError
from kmc.model import miller_abrahams_factor, miller_abrahams_peak

Z = 4.0
P_MIN = 1e-3


def engine_for(system, temperature, xi=0.5, cutoff=2.0, kernel="fast"):
    pairs, r = hop_pairs(system.distances, cutoff)
    return ElectronEngine(system, temperature, pairs, pair_prefactors(r, xi), kernel=kernel)


def empty_out(n_times, n):
    return {"energy": np.zeros(n_times), "excitations": np.zeros(n_times),
            "config": np.zeros((n_times, n), dtype=np.int8)}


def random_occupation(rng, n, m):
    occ = np.zeros(n, dtype=np.int8)
    occ[rng.permutation(n)[:m]] = 1
    return occ


def assert_bounds_hold(engine, state):
    """The thinning invariant: every active pair inside its window, every bound >= rate."""
    occ, e = state["config"], state["fields"]
    a, b = engine.pair_a, engine.pair_b
    active = occ[a] != occ[b]
    d = e[b] - e[a]
    inside = (d >= state["lo"]) & (d <= state["hi"])
    assert np.all(inside[active])
    p = state["tree"].shape[0] // 2
    assert np.all(state["tree"][p:p + len(a)] >= engine.rates(state))


def chi_square_p(counts, probabilities):
    expected = probabilities * counts.sum()
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return stats.chisquare(obs, exp).pvalue


def test_hop_pairs_respect_cutoff():
    system = ElectronSystem.random(np.random.default_rng(1), 50)
    pairs, r = hop_pairs(system.distances, 1.5)
    d = system.distances
    assert np.all(r <= 1.5) and np.all(pairs[:, 0] < pairs[:, 1])
    assert len(pairs) == np.count_nonzero(np.triu(d <= 1.5, 1))


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_waiting_times_and_hop_choice_are_exact(kernel):
    """From a frozen configuration: first-hop time ~ Exp(total rate) (KS, p > 1e-3) and the
    hopping pair is chosen with probability gamma_p / total (chi-square, p > 1e-3)."""
    system = ElectronSystem.random(np.random.default_rng(2), 14)
    engine = engine_for(system, 0.3, kernel=kernel)
    occ = random_occupation(np.random.default_rng(3), 14, 7)
    rates = engine.rates(engine.new_state(occ))
    rng = np.random.default_rng(4)
    grid, out = np.array([np.inf]), empty_out(1, 14)
    count = 4000
    waits, chosen = np.empty(count), np.empty(count, dtype=int)
    lookup = {tuple(p): k for k, p in enumerate(engine.pairs)}
    for k in range(count):
        state = engine.new_state(occ)
        while state["counters"][EVENTS] == 0:
            engine.advance(state, grid, rng, 1, out)
        assert state["counters"][VIOLATIONS] == 0
        waits[k] = state["scalars"][0]
        changed = np.flatnonzero(state["config"] != occ)
        assert changed.size == 2 and state["config"].sum() == 7
        chosen[k] = lookup[tuple(changed)]
    assert stats.kstest(waits, "expon", args=(0, 1.0 / rates.sum())).pvalue > P_MIN
    assert chi_square_p(np.bincount(chosen, minlength=len(rates)), rates / rates.sum()) > P_MIN


def test_long_run_occupations_match_boltzmann():
    """Miller-Abrahams rates obey detailed balance: configurations sampled 5 relaxation
    times apart along one trajectory follow the master equation's stationary vector,
    which is the Boltzmann distribution (chi-square over C(6, 3) = 20, p > 1e-3)."""
    system = ElectronSystem.random(np.random.default_rng(5), 6)
    t = 0.4
    engine = engine_for(system, t)
    me = MasterEquation(system, t, engine.prefactors, pairs=engine.pairs)
    np.testing.assert_allclose(me.stationary(), me.boltzmann(t), rtol=1e-8, atol=1e-14)
    gap = np.sort(-np.linalg.eigvals(me.generator).real)[1]
    n_samples = 3000
    times = 10.0 / gap + np.arange(n_samples) * 5.0 / gap
    state = engine.new_state(me.configs[0])
    out = empty_out(n_samples, 6)
    assert engine.advance(state, times, np.random.default_rng(6), 10**9, out)
    index = {tuple(c): k for k, c in enumerate(me.configs)}
    counts = np.bincount([index[tuple(c)] for c in out["config"]], minlength=me.n_states)
    assert chi_square_p(counts, me.stationary()) > P_MIN


def test_incremental_site_energies_equal_recomputation_after_1e5_events():
    """E_i and H kept by O(N) updates equal a full recomputation after 1e5 hops (1e-9)."""
    system = ElectronSystem.random(np.random.default_rng(7), 200)
    engine = engine_for(system, 0.3, xi=0.3)
    state = engine.new_state(random_occupation(np.random.default_rng(8), 200, 100))
    grid, out = np.array([np.inf]), empty_out(1, 200)
    rng = np.random.default_rng(9)
    while state["counters"][EVENTS] < 100_000:
        engine.advance(state, grid, rng, 50_000, out)
        err_h, err_e = engine.field_error(state)
        assert err_h < 1e-9 and err_e < 1e-9, (state["counters"], err_h, err_e)
        assert_bounds_hold(engine, state)
    assert state["config"].sum() == 100
    assert state["counters"][VIOLATIONS] == 0


def assert_fast_equals_reference(system, seed, **base):
    """Both kernels from the same seeds: energy, excitation and occupation curves agree
    within 4 two-sample SE and the fast kernel never saw rate > bound; returns the fast
    kernel's result."""
    mf = np.zeros(system.n_sites)
    fast = simulate(system, DynamicsParams(**base), seed=seed, mean_field=mf)
    ref = simulate(system, DynamicsParams(kernel="reference", **base), seed=seed, mean_field=mf)
    assert fast.counters["bound_violations"] == 0
    for a, b in ((fast.energy, ref.energy), (fast.excitations, ref.excitations),
                 (fast.occupation, ref.occupation)):
        se = np.sqrt(a.stderr**2 + b.stderr**2)
        assert np.all(np.abs(a.mean - b.mean) <= Z * np.maximum(se, 1e-12))
    return fast


def test_fast_and_reference_kernels_agree():
    """Same seeds: energy, excitation and occupation curves agree within 4 two-sample SE."""
    system = ElectronSystem.random(np.random.default_rng(10), 8)
    assert_fast_equals_reference(system, 13, temperature=0.3, xi=0.5, t_min=0.1, t_max=300.0,
                                 n_times=10, replicas=3000, mc_equilibration_sweeps=100,
                                 mc_sampling_sweeps=200)


def test_empty_pair_list_is_an_error():
    system = ElectronSystem.random(np.random.default_rng(1), 6)
    with pytest.raises(ValueError, match="hop_cutoff"):
        simulate(system, DynamicsParams(temperature=1.0, hop_cutoff=1e-6), mean_field=np.zeros(6))


@pytest.mark.parametrize("t,w", [(0.1, 1e-6), (0.1, 1e-2), (0.3, 0.5), (1.0, 3.0)])
def test_resonance_factor_is_the_mean_field_factor_and_its_peak_bounds_it(t, w):
    """The KMC's rounded Miller-Abrahams factor is the mean-field dynamics' (one rate law
    per comparison), keeps detailed balance exactly, equals the exact factor at w = 0, and
    miller_abrahams_peak bounds it over 4e5 dH on both sides of 0 and exceeds the supremum
    (their maximum, or the limit 1 far downhill) by less than 1e-5."""
    from kmc.dynamics.meanfield_dynamics import _ma_factor
    y = np.geomspace(1e-12, 60.0 * t, 200_000)
    x = np.concatenate([-y[::-1], [0.0], y])
    g = np.array([miller_abrahams_factor(v, t, w) for v in x])
    np.testing.assert_allclose(g, _ma_factor(x, t, w)[0], rtol=1e-13)
    np.testing.assert_allclose(g[:y.size] / g[::-1][:y.size], np.exp(y[::-1] / t), rtol=1e-10)
    peak = miller_abrahams_peak(t, w)
    # the supremum is the local maximum near dH = -w^2/2T, or the limit 1 far downhill
    assert g.max() <= peak < max(g.max(), 1.0) * (1.0 + 1e-5)
    exact = np.array([miller_abrahams_factor(v, t) for v in (-0.3, -1e-3, 1e-3, 0.3)])
    np.testing.assert_array_equal(exact, [miller_abrahams_factor(v, t, 0.0)
                                          for v in (-0.3, -1e-3, 1e-3, 0.3)])
    np.testing.assert_allclose(exact, _ma_factor(np.array([-0.3, -1e-3, 1e-3, 0.3]), t)[0],
                               rtol=1e-13)


def degenerate_pair():
    """Two sites, one electron, eps equal: E_b - E_a - C_ab = 0 exactly for the hop either
    way (E_a = -C/2, E_b = +C/2), the Miller-Abrahams resonance."""
    return ElectronSystem.from_arrays([0.0, 0.0], 1, distances=np.array([[0, 1.0], [1.0, 0]]))


def test_degenerate_hop_with_zero_energy_change_is_an_error():
    """dH = 0 exactly makes n_B(|dH|) infinite; without a resonance width the engine says so
    in one line naming the key that rounds it off, and does not run on inf."""
    engine = engine_for(degenerate_pair(), 0.5)
    with pytest.raises(ConfigError, match="dynamics.resonance_width"):
        engine.new_state(np.array([1, 0], dtype=np.int8))


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_resonance_width_makes_the_degenerate_hop_finite_and_exact(kernel):
    """With w > 0 the degenerate pair hops at Gamma0 e^(-r/xi) / (2 sinh(w/2T)) both ways
    (dH stays 0 after each hop): the waiting times of 3000 hops are Exp(that rate) (KS,
    p > 1e-3), the bound (the factor's peak, a whole-line window) is never exceeded."""
    pairs, r = hop_pairs(degenerate_pair().distances, 2.0)
    w, t = 1e-3, 0.5
    engine = ElectronEngine(degenerate_pair(), t, pairs, pair_prefactors(r, 0.5),
                            kernel=kernel, resonance_width=w)
    state = engine.new_state(np.array([1, 0], dtype=np.int8))
    rate = pair_prefactors(r, 0.5)[0] / (2.0 * np.sinh(w / (2.0 * t)))
    np.testing.assert_allclose(engine.rates(state), [rate], rtol=1e-12)
    rng = np.random.default_rng(21)
    grid, out = np.array([np.inf]), empty_out(1, 2)
    waits = np.empty(3000)
    for k in range(waits.size):
        t0 = state["scalars"][0]
        events = state["counters"][EVENTS]
        while state["counters"][EVENTS] == events:
            engine.advance(state, grid, rng, 1, out)
        waits[k] = state["scalars"][0] - t0
    assert state["counters"][VIOLATIONS] == 0
    assert stats.kstest(waits, "expon", args=(0, 1.0 / rate)).pvalue > P_MIN


def test_fast_and_reference_kernels_agree_with_a_resonance_width():
    """w = 0.5 J at T = 0.3 changes most rates (the energy curve by up to 0.12, ~8 SE), and
    the factor's peak (its limit 1 far downhill) bounds every downhill pair and every uphill
    one within T ln 2 of its resonance through a whole-line window: the fast kernel's curves
    equal the reference Gillespie kernel's within 4 two-sample SE, and the master
    equation's with the same width, with no bound violated; the master equation without
    the width is rejected."""
    system = ElectronSystem.random(np.random.default_rng(10), 8)
    fast = assert_fast_equals_reference(system, 14, temperature=0.3, xi=0.5, t_min=0.1,
                                        t_max=300.0, n_times=10, replicas=2000,
                                        mc_equilibration_sweeps=100, mc_sampling_sweeps=200,
                                        resonance_width=0.5)
    # against the master equation with the same width (quench from T0 = inf: uniform
    # start; the default hop cut-off 2), and the width is not a no-op: without it the
    # master equation is rejected
    pairs, r = hop_pairs(system.distances, 2.0)
    pref = pair_prefactors(r, 0.5)
    energy = {}
    for w in (0.5, 0.0):
        me = MasterEquation(system, 0.3, pref, pairs=pairs, resonance_width=w)
        energy[w] = me.expectations(me.propagate(me.boltzmann(np.inf), fast.times))[0]
    se = np.maximum(fast.energy.stderr, 1e-12)
    assert np.all(np.abs(fast.energy.mean - energy[0.5]) <= Z * se)
    assert np.max(np.abs(fast.energy.mean - energy[0.0]) / se) > Z


def assert_site_intervals_hold(engine, state):
    """The check invariant: every E_m inside [elo_m, ehi_m], and every active pair inside its
    window for all site energies within the two intervals (the box fits the window), up
    to the rounding of these sums (1e-12 of the energies: the bounds are taken that far
    inside the window edge)."""
    e, elo, ehi = state["fields"], state["elo"], state["ehi"]
    assert np.all((elo <= e) & (e <= ehi))
    occ = state["config"]
    a, b = engine.pair_a, engine.pair_b
    active = occ[a] != occ[b]
    tol = 1e-12 * (1.0 + np.abs(e[a]) + np.abs(e[b]) + engine.pair_c)
    assert np.all((ehi[b] - elo[a] <= state["hi"] + tol)[active])
    assert np.all((elo[b] - ehi[a] >= state["lo"] - tol)[active])


def test_bounds_hold_along_a_trajectory_with_static_pairs():
    """Paper-like rates (xi = 0.1, T = 0.1: prefactors over 9 decades), so that most pairs
    have the activity-free static bound: after every chunk of a 3e4-event quench, every
    leaf >= its pair's rate (inactive static pairs: > 0), every active pair inside its
    window, the site intervals fitted, and no trial ever saw rate > bound."""
    system = ElectronSystem.random(np.random.default_rng(11), 300)
    engine = engine_for(system, 0.1, xi=0.1)
    static, f_static, x_abs = engine._bound_args()
    assert 0.5 < static.mean() < 1.0      # both kinds of bound are exercised
    state = engine.new_state(random_occupation(np.random.default_rng(12), 300, 150))
    grid, out = np.array([np.inf]), empty_out(1, 300)
    rng = np.random.default_rng(13)
    leaves = state["tree"].shape[0] // 2
    inactive_static_drawn = False
    while state["counters"][EVENTS] < 30_000:
        engine.advance(state, grid, rng, 3_000, out)
        assert_bounds_hold(engine, state)
        assert_site_intervals_hold(engine, state)
        occ = state["config"]
        idle = (occ[engine.pair_a] == occ[engine.pair_b]) & (static == 1)
        bounds = state["tree"][leaves:leaves + len(static)]
        assert np.all(bounds[idle] > 0)
        inactive_static_drawn |= bool(idle.any())
    assert inactive_static_drawn
    assert state["counters"][VIOLATIONS] == 0
    err_h, err_e = engine.field_error(state)
    assert err_h < 1e-9 and err_e < 1e-9


def test_fast_and_reference_kernels_agree_with_static_pairs():
    """As test_fast_and_reference_kernels_agree, at xi = 0.15 where 9 of the 28 pairs have
    the static bound (inactive ones are drawn and rejected): energy, excitation and
    occupation curves over 4 decades agree within 4 two-sample SE."""
    system = ElectronSystem.random(np.random.default_rng(10), 8)
    pairs, r = hop_pairs(system.distances, 2.0)
    engine = ElectronEngine(system, 0.3, pairs, pair_prefactors(r, 0.15))
    assert engine._bound_args()[0].sum() >= 5
    assert_fast_equals_reference(system, 14, temperature=0.3, xi=0.15, t_min=1.0, t_max=1e4,
                                 n_times=9, replicas=1500, mc_equilibration_sweeps=100,
                                 mc_sampling_sweeps=200)


def test_site_intervals_hold_after_every_trial():
    """The repair after a hop (settling i, j and the sites that left their intervals, each
    re-centring only the pairs it lists) leaves the check invariant true after every
    single trial, not only at chunk ends; bounds >= rates every 50 trials."""
    system = ElectronSystem.random(np.random.default_rng(21), 120)
    engine = engine_for(system, 0.1, xi=0.2)
    state = engine.new_state(random_occupation(np.random.default_rng(22), 120, 60))
    grid, out = np.array([np.inf]), empty_out(1, 120)
    rng = np.random.default_rng(23)
    for trial in range(3000):
        engine.advance(state, grid, rng, 1, out)
        assert_site_intervals_hold(engine, state)
        if trial % 50 == 0:
            assert_bounds_hold(engine, state)
    assert state["counters"][EVENTS] > 1000
    assert state["counters"][VIOLATIONS] == 0


def test_batched_tree_update_equals_rebuild():
    """_flush (ancestors of the queued leaves recomputed level by level, adjacent repeats
    dropped, the queue flushed early when full) gives bit for bit the tree that
    tree_rebuild gives from the same leaves: the slow reference of the batched update."""
    from kmc.dynamics.electron_engine import _flush, _mark
    from kmc.dynamics.sumtree import new_tree, tree_rebuild
    rng = np.random.default_rng(24)
    n_leaves = 37
    tree = new_tree(n_leaves)
    half = tree.shape[0] // 2
    tree[half:half + n_leaves] = rng.exponential(size=n_leaves)
    tree_rebuild(tree)
    for capacity in (4, 200):       # 4: queue overflows, flushed early
        dirty = np.zeros(capacity + 1, dtype=np.int64)
        for _ in range(50):
            for leaf in rng.integers(0, n_leaves, rng.integers(1, 12)):
                tree[half + leaf] = rng.exponential()
                _mark(tree, dirty, leaf)
            _flush(tree, dirty)
            assert dirty[0] == 0
            expected = tree.copy()
            tree_rebuild(expected)
            np.testing.assert_array_equal(tree, expected)


def test_two_level_sampling_equals_tree_sample():
    """tree_sample_paired (two tree levels per step, both engines' fast path) returns the leaf tree_sample returns, for trees
    of an odd and an even number of levels, u drawn at random and u at the exact
    cumulative sums (the boundaries, where the comparison order decides), zero leaves
    included."""
    from kmc.dynamics.sumtree import new_tree, tree_rebuild, tree_sample, tree_sample_paired
    rng = np.random.default_rng(25)
    for n_leaves in (1, 2, 3, 5, 37, 600, 1025):
        tree = new_tree(n_leaves)
        half = tree.shape[0] // 2
        leaves = rng.exponential(size=n_leaves) * (rng.random(n_leaves) < 0.8)
        tree[half:half + n_leaves] = leaves
        tree_rebuild(tree)
        us = np.concatenate([rng.random(500) * tree[1], np.cumsum(leaves)[:-1], [0.0]])
        for u in us:
            assert tree_sample_paired(tree, u) == tree_sample(tree, u)


@pytest.mark.parametrize("n", [2, 3])
def test_tiny_systems_run_every_site_out_of_its_interval(n):
    """Regression: with N = 2 or 3 sites every site can leave its interval at once, and the
    list of flagged sites, filled from whole 8-site words of flags, was written past its
    end (N entries); with one pair (N = 2) the batched tree update looped forever (the
    single leaf is the root). Both now run: after each trial every bound >= its rate and
    the intervals are fitted; the electrons are conserved and the incremental energies
    equal a recomputation."""
    system = ElectronSystem.random(np.random.default_rng(26 + n), n)
    engine = engine_for(system, 0.5, cutoff=10.0)
    m = system.n_electrons
    state = engine.new_state(random_occupation(np.random.default_rng(27), n, m))
    out, rng = empty_out(1, n), np.random.default_rng(28)
    for _ in range(300):
        engine.advance(state, np.array([np.inf]), rng, 1, out)
        assert_bounds_hold(engine, state)
        assert_site_intervals_hold(engine, state)
    assert state["config"].sum() == m and state["counters"][EVENTS] > 100
    assert state["counters"][VIOLATIONS] == 0
    err_h, err_e = engine.field_error(state)
    assert err_h < 1e-9 and err_e < 1e-9
