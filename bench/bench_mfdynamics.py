"""Benchmark of the mean-field dynamics over 14 decades (run: python bench/bench_mfdynamics.py).

TLS glass at the paper's parameters (N = 1000, W = J = 1, T = 0.1, Delta0 log-uniform on
[1e-7, 1e-1], 3D dipolar couplings), quenched from a random well configuration (T0 = inf,
one replica's start), sampled at 57 times from 1 to 1e14 (1/(a J^3)); target < 10 s.
Electron glass (N = 1000, 2D, W = 1, xi = 0.1, T = 0.1, hop pairs r <= 2, the KMC's
list), quenched from random occupations, 57 times from 1e-2 to 1e12 (1/Gamma0);
target < 60 s.

Each line prints wall and CPU time (on a shared machine the CPU time of this one-thread
process is the better measure), accepted steps, right-hand-side and Jacobian evaluations,
LU factorizations (each Newton iteration is one right-hand side and one solve with the
current LU), and for the new bookkeeping (``_BDF``) the steps rejected by the error test
and the Newton iterations that failed to converge (scipy's class does not count them:
"-"). Ratios are of CPU times measured in this run against the previous default
("previous": scipy's own BDF step and factorization bookkeeping, ``hold=1,
lu_reuse=0, jac_refresh=False, newton_maxiter=4``, with the same row-sparse Newton
matrix and products), with the largest difference of the two trajectories.
``--dense`` adds the dense LU of the whole Newton matrix under scipy's bookkeeping
(``row_drop=0``, the reference the tests hold the defaults to; slow) on t <=
--dense-t-max. The quantum read-out and (``--aoi``) the Amir-Oreg-Imry hop energy are
measured beside the defaults because they change the number of steps.

BLAS threads: ``--threads 1`` (default) measures one worker of a parallel ensemble.
"""
import argparse
import time

from _blas import limit_blas_threads


def _parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-tls", type=int, default=1000)
    parser.add_argument("--n-electron", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--resonance-width", type=float, default=1e-2,
                        help="electron glass: Miller-Abrahams resonance width, units of J")
    parser.add_argument("--dense", action="store_true",
                        help="also the dense LU of the whole Newton matrix (slow)")
    parser.add_argument("--dense-t-max", type=float, default=1e6,
                        help="electron glass: end of the span of the dense LU (1/Gamma0)")
    parser.add_argument("--aoi", action="store_true",
                        help="also the electron glass with the mean-field hop energy")
    parser.add_argument("--skip-tls", action="store_true")
    parser.add_argument("--skip-electron", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads (0 = library default)")
    return parser.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    limit_blas_threads(ARGS.threads)    # before numpy loads its BLAS

import numpy as np  # noqa: E402

from kmc.dynamics.electron_engine import hop_pairs, pair_prefactors  # noqa: E402
from kmc.dynamics.meanfield_dynamics import (ElectronMeanField, TLSMeanField,  # noqa: E402
                                             integrate)
from kmc.systems import ElectronSystem, TLSSystem  # noqa: E402


SCIPY = dict(hold=1.0, lu_reuse=0.0, jac_refresh=False, newton_maxiter=4)


def run(label, model, x0, times, **kw):
    """Integrate, print one line, return (CPU seconds, Trajectory)."""
    start, cpu = time.perf_counter(), time.process_time()
    traj = integrate(model, x0, times, **kw)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    scipy_class = all(kw.get(key) == value for key, value in SCIPY.items())
    counts = ("     -      -" if scipy_class else
              f"{traj.n_rejected:6d} {traj.n_newton_failed:6d}")
    print(f"  {label:<40s} {wall:8.2f} s (cpu {cpu:7.2f} s)  steps {traj.n_steps:6d}  "
          f"f {traj.nfev:6d}  jac {traj.njev:5d}  LU {traj.nlu:5d}  rej/Nfail {counts}  "
          f"{'ok' if traj.success else traj.message}", flush=True)
    return cpu, traj


def compare(label, fast, traj, slow, ref):
    print(f"  CPU ratio {label} / default: {slow / fast:.2f}x; max |x - x_{label}| = "
          f"{np.max(np.abs(traj.states - ref.states)):.2e}")


def bench_tls(n, seed, dense):
    rng = np.random.default_rng(seed)
    system = TLSSystem.random(rng, n, W=1.0, J=1.0, delta0_min=1e-7, delta0_max=1e-1)
    start = rng.choice([-1.0, 1.0], n)
    times = np.logspace(0, 14, 57)
    print(f"TLS glass N = {n}, T = 0.1, t = 1 .. 1e14 (target < 10 s)")
    model = TLSMeanField(system, 0.1, system.delta0**2)
    fast, traj = run("classical (default)", model, start, times)
    slow, ref = run("classical, scipy's bookkeeping (previous)", model, start, times,
                    **SCIPY)
    compare("previous", fast, traj, slow, ref)
    quantum = TLSMeanField(system, 0.1, system.delta0**2, readout="quantum")
    run("quantum read-out", quantum, start, times)
    print(f"  energy {traj.energy[0]:.1f} -> {traj.energy[-1]:.1f} J")
    if dense:
        cpu, ref = run("classical, dense LU (reference)", model, start, times,
                       row_drop=0.0, **SCIPY)
        compare("dense", fast, traj, cpu, ref)


def bench_electron(n, seed, width, t_dense, dense, aoi):
    rng = np.random.default_rng(seed)
    system = ElectronSystem.random(rng, n, W=1.0)
    pairs, r = hop_pairs(system.distances, 2.0)
    prefactors = pair_prefactors(r, 0.1)
    start = np.zeros(n)
    start[rng.permutation(n)[:system.n_electrons]] = 1.0
    times = np.logspace(-2, 12, 57)
    print(f"electron glass N = {n}, {pairs.shape[0]} hop pairs, T = 0.1, xi = 0.1, "
          f"resonance width {width} J, t = 1e-2 .. 1e12 (target < 60 s)")
    model = ElectronMeanField(system, 0.1, pairs, prefactors, resonance_width=width)
    fast, traj = run("pair hop energy (default)", model, start, times)
    drift = np.max(np.abs(traj.states.sum(axis=1) - system.n_electrons))
    print(f"  particle-number drift {drift:.1e}; energy {traj.energy[0]:.2f} -> "
          f"{traj.energy[-1]:.2f} J")
    slow, ref = run("pair, scipy's bookkeeping (previous)", model, start, times, **SCIPY)
    compare("previous", fast, traj, slow, ref)
    if dense:
        short = times[times <= t_dense]
        print(f"  on t = 1e-2 .. {short[-1]:.0e}:")
        fast, part = run("pair hop energy (default)", model, start, short)
        cpu, ref = run("pair, dense LU (reference)", model, start, short, row_drop=0.0,
                       **SCIPY)
        compare("dense", fast, part, cpu, ref)
    if aoi:
        mfm = ElectronMeanField(system, 0.1, pairs, prefactors, hop_energy="mean_field",
                                resonance_width=width)
        run("mean-field hop energy (AOI model)", mfm, start, times)


if __name__ == "__main__":
    if not ARGS.skip_tls:
        bench_tls(ARGS.n_tls, ARGS.seed, ARGS.dense)
    if not ARGS.skip_electron:
        bench_electron(ARGS.n_electron, ARGS.seed, ARGS.resonance_width, ARGS.dense_t_max,
                       ARGS.dense, ARGS.aoi)
