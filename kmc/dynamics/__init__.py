"""Time-domain dynamics: exact kinetic Monte Carlo engines and the exact master equation.

Modules: ``tls_engine`` and ``electron_engine`` (fast exact kernels), ``reference`` (slow
Gillespie kernels they are tested against), ``master`` (all-configuration master
equation), ``preparation`` (random / static-MC states, baselines, pulses),
``observables``, ``params`` and the driver ``run.simulate``. Shared by the kernels:
``counters`` (counter layout, grid step, recorders), ``state`` (typed engine states) and
``sumtree``; energies and rates come from kmc.model. Imports point one way:
params, counters, state, sumtree <- reference <- engines <- run (checkpoint files:
kmc.storage.checkpoint).
"""
from kmc.dynamics.master import MasterEquation
from kmc.dynamics.params import DynamicsParams
from kmc.dynamics.run import DynamicsResult, simulate

__all__ = ["DynamicsParams", "DynamicsResult", "MasterEquation", "simulate"]
