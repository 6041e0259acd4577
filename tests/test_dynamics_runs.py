"""One set of processes per comparison (docs/linear-response.md section 3): every electron
KMC and mean-field-dynamics protocol refuses a hop cut-off whose dropped rates fire over the
run, and every shipped run file's realizations pass that check."""
from pathlib import Path

import numpy as np
import pytest

from kmc.dynamics import DynamicsParams, simulate
from kmc.dynamics.run import run_time
from kmc.errors import ConfigError
from kmc.pipeline import config as cfg
from kmc.solvers.linear.electron import check_hop_cutoff
from kmc.storage.schema import build_system
from kmc.systems import ElectronSystem

RUNS = Path(__file__).resolve().parents[1] / "runs"
ALL = sorted(RUNS.glob("*.toml")) + sorted((RUNS / "reduced").glob("*.toml"))


def _electron_dynamics(path):
    c = cfg.load(path)
    return c.model.name == "electron" and c.dynamics.enabled \
        and c.dynamics.method in ("kmc", "meanfield")


ELECTRON_RUNS = [p for p in ALL if _electron_dynamics(p)]


def test_there_are_electron_dynamics_run_files():
    assert len(ELECTRON_RUNS) >= 4


@pytest.mark.parametrize("path", ELECTRON_RUNS, ids=lambda p: str(p.relative_to(RUNS)))
def test_shipped_run_file_hop_cutoff_passes_the_check(path):
    """Each realization of each point (rebuilt from the run file's seed as the pipeline
    builds it) keeps the processes beyond dynamics.hop_cutoff below the margin over the
    whole run (t_max, plus t_w and the longest aging where the protocol has them)."""
    c = cfg.load(path)
    for p, (_, point) in enumerate(c.points()):
        params = point.dynamics_params()
        for k in range(point.ensemble.realizations):
            system = build_system(point, point.ensemble.seed, p, k)
            check_hop_cutoff(system.distances, params.hop_cutoff, params.xi,
                             run_time(params), params.gamma0)


@pytest.mark.parametrize("extra", [
    {"protocol": "quench"},
    {"protocol": "pulse", "pulse_strength": 0.1, "waiting_time": 10.0},
    {"protocol": "state", "initial_state": (1, 0) * 30},
    {"protocol": "quench", "method": "meanfield"},
], ids=["quench", "pulse", "state", "meanfield"])
def test_every_electron_protocol_refuses_a_cutoff_that_drops_rates(extra):
    """The issue's cut-off (xi = 0.2, 1.5 r_nn, t_max = 1e4; ~28 dropped hops per site)
    is refused before anything runs, with the one-line error naming dynamics.hop_cutoff,
    by the KMC protocols and the mean-field dynamics alike."""
    system = ElectronSystem.random(np.random.default_rng(17), 60)
    params = DynamicsParams(temperature=0.1, t_max=1e4, xi=0.2, hop_cutoff=1.5, replicas=2,
                            **extra)
    with pytest.raises(ConfigError, match=r"^dynamics\.hop_cutoff: .*hops per site by "
                                          r"t_max = 10\d*"):
        simulate(system, params)


def test_run_time_counts_every_phase():
    assert run_time(DynamicsParams(temperature=0.1, t_max=1e4)) == 1e4
    assert run_time(DynamicsParams(temperature=0.1, t_max=1e4, protocol="pulse",
                                   waiting_time=100.0)) == 1e4 + 100.0
    assert run_time(DynamicsParams(temperature=0.1, t_max=1e4, protocol="response",
                                   pulse_strength=0.1, waiting_time=100.0, aging_time=10.0,
                                   aging="until_stationary", aging_time_max=1e3)) \
        == 1e4 + 100.0 + 1e3
