"""Benchmark of the linearized-dynamics spectra at N = 1000 (run: python bench/bench_linear.py).

Electron glass: the symmetric path (``electron_spectrum``: build gamma0, symmetrize,
syevd) against a general eigensolver (LAPACK geev via numpy and scipy) on the same matrix A,
measured in the same run; target: symmetric path < 0.3 s per realization.
TLS glass: ``tls_spectrum`` (Newton refinement of the fixed point + graded syevd), its parts,
the high-relative-accuracy Jacobi-SVD path and geev on B.

Each timing is the best of ``--repeat`` runs (the machine may be shared; the minimum is the
least disturbed measurement). Mean-field solutions are computed once and not timed.

BLAS threads: ``--threads 1`` (default) measures one worker of a parallel ensemble, the way
realizations are run; ``--threads 0`` keeps the library default (all cores), which on a
loaded machine can be several times slower because the threads contend.
"""
import argparse
import os
import time

from _blas import limit_blas_threads


def _parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--realizations", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads (0 = library default)")
    return parser.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    limit_blas_threads(ARGS.threads)    # before numpy loads its BLAS

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

from kmc.solvers import meanfield  # noqa: E402
from kmc.solvers.linear import (electron_rate_matrix, electron_spectrum, tls_rate_fixed_point,  # noqa: E402
                        tls_rate_matrix, tls_spectrum)
from kmc.systems import ElectronSystem, TLSSystem  # noqa: E402


def best_time(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def electron(n, realizations, repeat, temperature=0.1, xi=0.1):
    print(f"electron glass: N = {n}, d = 2, W = 1, e^2/r_nn = 1, T = {temperature}, "
          f"xi = {xi}, {realizations} realizations, best of {repeat}")
    rows = []
    for r in range(realizations):
        system = ElectronSystem.random(np.random.default_rng(1000 + r), n)
        _ = system.distances
        mf = meanfield.solve(system, temperature, tol=1e-10, rng=r)
        args = (system, mf.fields, mf.mu, temperature, xi)
        t_sym = best_time(lambda: electron_spectrum(*args), repeat)
        t_vec = best_time(lambda: electron_spectrum(*args, vectors=True), repeat)
        t_build = best_time(lambda: electron_rate_matrix(*args), repeat)
        a = electron_rate_matrix(*args)
        t_np = best_time(lambda: np.linalg.eigvals(a), repeat)
        t_sp = best_time(lambda: scipy.linalg.eigvals(a, check_finite=False), repeat)
        res = electron_spectrum(*args)
        ev = np.sort(np.linalg.eigvals(a).real)
        ev = np.delete(ev, np.argmin(np.abs(ev)))
        agree = np.max(np.abs(np.sort(-ev) - res.rates) / res.rates)
        rows.append((t_sym, t_vec, t_build, t_np, t_sp))
        print(f"  r{r}: symmetric {t_sym:.3f} s (with eigenvectors {t_vec:.3f} s) | build A "
              f"{t_build:.3f} s + numpy eig {t_np:.3f} s / scipy eig {t_sp:.3f} s | "
              f"ratio (build+eig)/symmetric {(t_build + t_np) / t_sym:.1f} | n_zero "
              f"{res.n_zero}, n_positive {res.n_positive}, max rel. diff of rates {agree:.1e}")
    t = np.median(np.array(rows), axis=0)
    print(f"  median: symmetric {t[0]:.3f} s per realization (target < 0.3 s); general "
          f"path {t[2] + t[3]:.3f} s; ratio general/symmetric = {(t[2] + t[3]) / t[0]:.1f}")


def tls(n, realizations, repeat, temperature=0.1):
    print(f"TLS glass: N = {n}, d = 3, W = J = 1, T = {temperature}, Delta0 in [1e-7, 1e-1], "
          f"{realizations} realizations, best of {repeat}")
    rows = []
    for r in range(realizations):
        system = TLSSystem.random(np.random.default_rng(2000 + r), n)
        mf = meanfield.solve(system, temperature, tol=1e-12, rng=r)
        fp = tls_rate_fixed_point(system, mf.fields, temperature)
        t_total = best_time(lambda: tls_spectrum(system, mf.fields, temperature), repeat)
        t_refine = best_time(lambda: tls_rate_fixed_point(system, mf.fields, temperature),
                             repeat)
        t_sym = best_time(lambda: tls_spectrum(system, fp.fields, temperature, refine=False),
                          repeat)
        t_acc = best_time(lambda: tls_spectrum(system, fp.fields, temperature, refine=False,
                                               method="accurate"), 1)
        b = tls_rate_matrix(system, fp.fields, temperature)
        t_gen = best_time(lambda: np.linalg.eigvals(b), repeat)
        sym = tls_spectrum(system, fp.fields, temperature, refine=False)
        acc = tls_spectrum(system, fp.fields, temperature, refine=False, method="accurate")
        gen = np.sort(-np.linalg.eigvals(b).real)
        rel_acc = np.max(np.abs(sym.rates - acc.rates) / acc.rates)
        rel_gen = np.max(np.abs(gen - acc.rates) / acc.rates)
        rows.append((t_total, t_refine, t_sym, t_acc, t_gen))
        print(f"  r{r}: tls_spectrum {t_total:.3f} s = refine {t_refine:.3f} s + symmetric "
              f"{t_sym:.3f} s | accurate (Jacobi SVD) {t_acc:.3f} s | numpy eig on B "
              f"{t_gen:.3f} s | max rel. error vs accurate: symmetric {rel_acc:.1e}, "
              f"general {rel_gen:.1e} (rates span {acc.rates[-1] / acc.rates[0]:.0e})")
    t = np.median(np.array(rows), axis=0)
    print(f"  median: tls_spectrum {t[0]:.3f} s (symmetric eigensolve {t[2]:.3f} s); general "
          f"eig {t[4]:.3f} s; ratio general/symmetric eigensolve = {t[4] / t[2]:.1f}")


def main(args):
    try:
        import threadpoolctl
        info = threadpoolctl.threadpool_info()
        blas = ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in info)
    except ImportError:
        blas = "threadpoolctl not installed"
    threads = args.threads if args.threads > 0 else "library default"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, BLAS threads: {threads} "
          f"({blas}), cpus {os.cpu_count()}, load average {load:.2f}")
    electron(args.n, args.realizations, args.repeat)
    tls(args.n, args.realizations, args.repeat)


if __name__ == "__main__":
    main(ARGS)
