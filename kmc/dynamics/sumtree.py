"""Partial-sum tree over per-process rate bounds: O(log n) update and O(log n) sampling.

Layout: ``tree`` has 2 P entries, P a power of two >= n; leaf i lives at ``tree[P + i]``
and every internal node j holds ``tree[2j] + tree[2j + 1]``; ``tree[1]`` is the total.
Internal nodes are always recomputed as the sum of their two children (never by adding
differences), so rounding errors cannot accumulate, and rebuilding the tree from its
leaves reproduces it bit for bit (which is what makes a checkpoint exact).
"""
import numba
import numpy as np


def tree_size(n_leaves):
    """Number P of leaf slots: the smallest power of two >= n_leaves."""
    p = 1
    while p < n_leaves:
        p *= 2
    return p


def new_tree(n_leaves):
    """(2 P,) float zeros for ``n_leaves`` leaves."""
    return np.zeros(2 * tree_size(n_leaves))


@numba.njit(cache=True)
def tree_rebuild(tree):
    """Recompute every internal node from the leaves."""
    p = tree.shape[0] // 2
    for j in range(p - 1, 0, -1):
        tree[j] = tree[2 * j] + tree[2 * j + 1]


@numba.njit(cache=True, inline="always")
def tree_set(tree, leaf, value):
    """Set leaf ``leaf`` to ``value`` and recompute its ancestors."""
    p = tree.shape[0] // 2
    j = p + leaf
    tree[j] = value
    j //= 2
    while j >= 1:
        tree[j] = tree[2 * j] + tree[2 * j + 1]
        j //= 2


@numba.njit(cache=True, inline="always")
def tree_sample(tree, u):
    """Leaf index i with u in the i-th cumulative interval; u in [0, tree[1]).

    Rounding can land on a leaf of value 0 (or a padding leaf >= n) with probability of
    order 1e-16; callers treat such a draw as a rejected trial, which keeps thinning exact.
    """
    p = tree.shape[0] // 2
    j = 1
    while j < p:
        j, u = _step_down(tree, j, u)
    return j - p


@numba.njit(cache=True, inline="always")
def _step_down(tree, j, u):
    """One level of the descent: the child of node j whose interval holds u, and u within
    it."""
    left = tree[2 * j]
    if u < left:
        return 2 * j, u
    return 2 * j + 1, u - left


@numba.njit(cache=True, inline="always")
def tree_sample_paired(tree, u):
    """tree_sample, two levels per step (the engines' fast path; tree_sample is its
    reference, held equal by tests/test_kmc_electron.py): the same comparisons and
    subtractions in the same order (the same leaf and the same rounding), but the three
    nodes a step reads (2j, 4j, 4j + 2) are known at its start, so that the descent waits
    for memory once per two levels instead of once per level."""
    half = tree.shape[0] // 2
    j = 1
    first = 1       # the first node of j's level: two more levels exist below if 4 first <= half
    while 4 * first <= half:
        first *= 4
        left = tree[2 * j]
        g0 = tree[4 * j]
        g2 = tree[4 * j + 2]
        if u < left:
            if u < g0:
                j = 4 * j
            else:
                u -= g0
                j = 4 * j + 1
        else:
            u -= left
            if u < g2:
                j = 4 * j + 2
            else:
                u -= g2
                j = 4 * j + 3
    if j < half:
        j, u = _step_down(tree, j, u)     # an odd number of levels: the last one alone
    return j - half
