"""Random streams: one helper turns a seed into independent per-realization generators.

A realization's stream depends only on (seed, sweep point, realization index), never on the
worker that computes it, so results do not depend on the number of workers or the backend.
"""
import numpy as np

# Sub-streams of one realization: disorder and the solver's random sweep order are drawn
# from separate children so that changing a solver option never changes the disorder.
DISORDER, SOLVER, DYNAMICS, PREPARATION = 0, 1, 2, 3


def realization_seed(seed, point, realization):
    """SeedSequence of one realization: spawn key (point, realization) under ``seed``."""
    return np.random.SeedSequence(int(seed), spawn_key=(int(point), int(realization)))


def stream(seed, point, realization, purpose):
    """Generator for one purpose (DISORDER, SOLVER, ...) of one realization."""
    base = realization_seed(seed, point, realization)
    child = np.random.SeedSequence(base.entropy, spawn_key=base.spawn_key + (int(purpose),))
    return np.random.default_rng(child)


def as_generator(rng):
    """Normalise ``None | int | SeedSequence | Generator`` to a ``numpy.random.Generator``."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
