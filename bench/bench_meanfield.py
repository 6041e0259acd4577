"""Mean-field benchmark: numba Gauss-Seidel vs plain NumPy fixed-point iterations, same run.

Prints, per case, the time per realization (disorder generation and solve separately),
the NumPy baselines on the same realization and their ratio, and the peak memory of a
worker. Then projects the paper's Fig. 1 (N = 10000, 300 realizations, 2 workers) from a
short run of the real pipeline. Usage: python bench/bench_meanfield.py [--quick]
"""
import multiprocessing
import resource
import sys
import tempfile
import time

import numpy as np

QUICK = "--quick" in sys.argv


def numpy_jacobi(system, temperature, tol, max_iter):
    """x <- map(x) for all sites at once (one BLAS matvec per iteration)."""
    from kmc import model
    if system.model == "tls":
        x = system.bias.copy()
        step = lambda x: model.tls_mean_field_map(x, system.bias, system.couplings, temperature)  # noqa: E731
    else:
        from kmc.solvers.meanfield import chemical_potential
        x = system.site_energies.copy()

        def step(x):
            mu = chemical_potential(x, system.n_electrons, temperature)
            return model.electron_mean_field_map(x, system.site_energies, system.interactions,
                                                 system.filling, mu, temperature)
    for it in range(1, max_iter + 1):
        new = step(x)
        change = np.max(np.abs(new - x))
        x = new
        if change < tol:
            return it, True, change
    return max_iter, False, change


def case(kind, n, temperature, numpy_gs, queue):
    from kmc.solvers import meanfield
    from kmc.systems import ElectronSystem, TLSSystem
    make = TLSSystem.random if kind == "tls" else ElectronSystem.random
    make(np.random.default_rng(0), 50)  # compile
    meanfield.solve(make(np.random.default_rng(0), 50), temperature, rng=0)
    t0 = time.perf_counter()
    system = make(np.random.default_rng(1), n)
    t1 = time.perf_counter()
    result = meanfield.solve(system, temperature, tol=1e-8, rng=2)
    t2 = time.perf_counter()
    row = {"gen": t1 - t0, "solve": t2 - t1, "sweeps": result.sweeps,
           "converged": result.converged}
    cap = 400 if n <= 1000 else 60
    t3 = time.perf_counter()
    its, ok, change = numpy_jacobi(system, temperature, 1e-8, cap)
    t4 = time.perf_counter()
    row.update(jacobi=t4 - t3, jacobi_its=its, jacobi_ok=ok, jacobi_change=change)
    if numpy_gs:
        t5 = time.perf_counter()
        ref = meanfield.solve_reference(system, temperature, tol=1e-8, rng=2)
        row.update(numpy_gs=time.perf_counter() - t5, numpy_gs_sweeps=ref.sweeps)
    row["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(row)


def run_case(*args):
    ctx = multiprocessing.get_context("spawn")  # fresh process: its peak memory is the case's
    queue = ctx.Queue()
    proc = ctx.Process(target=case, args=args + (queue,))
    proc.start()
    row = queue.get()
    proc.join()
    return row


def report(label, row):
    print(f"{label}")
    print(f"  numba Gauss-Seidel: generate {row['gen']:.3f} s + solve {row['solve']:.3f} s "
          f"({row['sweeps']} sweeps, converged={row['converged']}); peak memory "
          f"{row['maxrss_mb']:.0f} MB")
    status = (f"converged in {row['jacobi_its']} iterations" if row["jacobi_ok"] else
              f"NOT converged after {row['jacobi_its']} iterations (last change "
              f"{row['jacobi_change']:.2g})")
    print(f"  NumPy Jacobi fixed point (BLAS matvec): {row['jacobi']:.3f} s, {status}; "
          f"ratio NumPy/numba = {row['jacobi'] / row['solve']:.1f}")
    if "numpy_gs" in row:
        print(f"  NumPy Gauss-Seidel reference (same sweep order): {row['numpy_gs']:.3f} s, "
              f"{row['numpy_gs_sweeps']} sweeps; ratio = {row['numpy_gs'] / row['solve']:.1f}")


def project_fig1(n, realizations):
    from kmc.pipeline import config
    from kmc.pipeline.run import run
    text = f"""
[model]
name = "tls"
N = {n}
temperature = 0.05
[ensemble]
realizations = {realizations}
workers = 2
[output]
figures = false
"""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.loads(text)
        run(cfg, out=f"{tmp}/warm.h5", progress=False, workers=1)  # not timed: compile
        cfg = config.loads(text.replace("seed", "seed") + "")
        t0 = time.perf_counter()
        run(cfg, out=f"{tmp}/fig1.h5", progress=False)
        return (time.perf_counter() - t0) / realizations


if __name__ == "__main__":
    print("TLS glass W = J = 1, T = 0.05; electron glass W = 1, e^2/r_nn = 1, T = 0.05; tol 1e-8")
    report("TLS N = 1000", run_case("tls", 1000, 0.05, True))
    report("electron glass N = 1000", run_case("electron", 1000, 0.05, True))
    if not QUICK:
        report("TLS N = 10000", run_case("tls", 10000, 0.05, False))
        per = project_fig1(10000, 4)
        print(f"Fig. 1 pipeline (N = 10000, 2 workers, 4 realizations): {per:.2f} s per "
              f"realization -> 300 realizations in {300 * per / 60:.1f} min")
