"""Random streams: one helper turns a seed into independent per-realization generators.

A realization's stream depends only on (seed, sweep point, realization index), never on the
worker that computes it, so results do not depend on the number of workers or the backend.
"""
import numpy as np

from kmc.errors import ConfigError

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
    """Normalise ``None | int | SeedSequence | BitGenerator | Generator`` to a Generator.

    An integer seed must be >= 0 (``numpy.random.SeedSequence`` refuses negative entropy);
    anything else is refused with a one-line ConfigError naming ``rng``.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (bool, np.bool_)) or not (
            rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence,
                                            np.random.BitGenerator))):
        raise ConfigError("rng", f"expected None, an integer seed >= 0, a SeedSequence or a "
                                 f"numpy.random.Generator, got {rng!r}")
    if isinstance(rng, (int, np.integer)) and rng < 0:
        raise ConfigError("rng", f"an integer seed must be >= 0, got {rng}")
    return np.random.default_rng(rng)
