"""The result of diagonalizing a linearized rate matrix, and the zero-mode bookkeeping.

A linearized rate matrix M (d x/dt = M x) has eigenvalues -lambda; the relaxation rates are
lambda. For the electron glass one eigenvalue is zero (particle-number conservation); it is
identified, checked and excluded from the rates. An eigenvalue above the zero tolerance
means the linearization point is not a stable fixed point (a saddle of the mean-field free
energy): it is counted in ``n_positive`` and left in ``rates`` as a negative rate, never
silently dropped.
"""
from dataclasses import dataclass

import numpy as np

# Eigenvalues within ZERO_TOL_FACTOR * sqrt(N) * eps * max|eigenvalue| of zero are
# numerically zero: the typical error of a backward-stable eigensolver is O(sqrt(N) eps ||M||)
# (the worst-case bound grows like N but is far from attained). Measured on N = 1000 electron
# glasses (xi = 0.1, T = 0.1) the computed zero mode is ~1e-2 eps ||M|| while the smallest
# genuine rates are >= 2e4 eps ||M||; the threshold (~500 eps ||M|| at N = 1000) separates
# them. More than one eigenvalue below it (n_zero > 1) means rates below the resolution of
# the eigensolver, which the caller should report.
ZERO_TOL_FACTOR = 16.0


@dataclass(frozen=True)
class SpectrumResult:
    """Spectrum of one linearized rate matrix.

    rates : (M,) float, units of the matrix (a J^3 for the TLS glass, Gamma0 for the
        electron glass)
        Relaxation rates lambda = -eigenvalue, ascending; the zero mode, if the dynamics
        conserves a quantity, is excluded (M = N - 1), otherwise M = N.
    eigenvalues : (N,) float
        All eigenvalues (real parts), ascending.
    method : str
        Eigensolver used: "symmetric" (symmetrized matrix, LAPACK syevd), "accurate"
        (Cholesky + one-sided Jacobi SVD, high relative accuracy), "general" (LAPACK geev on
        the nonsymmetric matrix) or "diagonal" (no interaction term).
    zero_mode : float or None
        The eigenvalue identified as the conserved mode (closest to zero), or None.
    n_zero : int
        Number of eigenvalues with |eigenvalue| <= tolerance (1 expected when conserving).
    n_positive : int
        Eigenvalues > tolerance other than the zero mode (0 at a stable fixed point).
    tolerance : float
        ZERO_TOL_FACTOR * sqrt(N) * eps * max|eigenvalue|.
    max_imag : float
        Largest |imaginary part| (0 for the symmetric paths).
    zero_mode_residual : float or None
        ||M y|| / (||M|| ||y||) for the known null vector y of the conserving matrix
        (sqrt(n0 (1 - n0)) for the symmetrized electron matrix, the vector of ones for the
        column-sum-free nonsymmetric ones, used as a left null vector).
    zero_mode_overlap : float or None
        |<v0, y>| / (|v0| |y|) of the computed eigenvector v0 of the zero mode with y
        (only when eigenvectors were requested).
    fixed_point : object or None
        Status of the refined fixed point (TLS, ``RateFixedPoint``) when one was computed.
    """

    rates: np.ndarray
    eigenvalues: np.ndarray
    method: str
    zero_mode: float | None = None
    n_zero: int = 0
    n_positive: int = 0
    tolerance: float = 0.0
    max_imag: float = 0.0
    zero_mode_residual: float | None = None
    zero_mode_overlap: float | None = None
    fixed_point: object | None = None


def zero_tolerance(eigenvalues):
    """ZERO_TOL_FACTOR * sqrt(N) * eps * max|eigenvalue|, the numerical-zero threshold."""
    eigenvalues = np.asarray(eigenvalues)
    scale = float(np.max(np.abs(eigenvalues))) if eigenvalues.size else 0.0
    return ZERO_TOL_FACTOR * np.sqrt(eigenvalues.size) * np.finfo(float).eps * scale


def split_spectrum(eigenvalues, conserving, method, **extra):
    """Sort real eigenvalues, identify the zero mode if ``conserving``, build the result.

    Parameters
    ----------
    eigenvalues : (N,) float
        Real parts of the eigenvalues of the rate matrix.
    conserving : bool
        Whether the dynamics conserves a quantity (one exact zero eigenvalue).
    method : str
        Name of the eigensolver, stored in the result.
    **extra
        Further ``SpectrumResult`` fields (max_imag, zero_mode_residual, ...).
    """
    ev = np.sort(np.asarray(eigenvalues, dtype=float))
    tol = zero_tolerance(ev)
    n_zero = int(np.count_nonzero(np.abs(ev) <= tol))
    zero_mode = None
    rest = ev
    if conserving:
        k = int(np.argmin(np.abs(ev)))
        zero_mode = float(ev[k])
        rest = np.delete(ev, k)
    n_positive = int(np.count_nonzero(rest > tol))
    return SpectrumResult(rates=np.sort(-rest), eigenvalues=ev, method=method,
                          zero_mode=zero_mode, n_zero=n_zero, n_positive=n_positive,
                          tolerance=tol, **extra)
