"""BLAS threads of a benchmark (imported by the bench scripts before numpy)."""
import os


def limit_blas_threads(threads):
    """threads > 0: OpenBLAS, OpenMP and MKL use that many threads; 0: the library default.

    Must run before numpy is imported: numpy's BLAS reads these variables when it loads.
    """
    if threads > 0:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
