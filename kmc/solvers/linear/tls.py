"""Linearized mean-field dynamics of the TLS glass (Eqs. 11-13 and Appendix B).

The nonlinear mean-field rate equation
--------------------------------------
sigma_i = p_upper,i - p_lower,i is the pseudospin of TLS i in the eigenbasis of its
mean-field Hamiltonian Delta'_i S^z + Delta0_i S^x (Eq. 5). Eq. 11 with the phonon rates of
Eq. 10 (``kmc.model.tls_up_down_rates``, w_up = a Delta0^2 |E| n_B, w_dn = w_up + a Delta0^2 |E|)::

    d sigma_i / dt = F_i(sigma) = w_up,i (1 - sigma_i) - w_dn,i (1 + sigma_i)
                   = -lambda_i sigma_i - a Delta0_i^2 |E_i|                        (Eq. 11)
    |E_i| = sqrt(Delta'_i^2 + Delta0_i^2),  lambda_i = a Delta0_i^2 |E_i| coth(|E_i|/2T)  (Eq. 12)
    Delta'_i(sigma) = Delta_i - 1/2 sum_j J_ij <S_j>,  <S_j> = s_j sigma_j / 2,  s_j = sgn(Delta'_j)

The well occupation of TLS j is read from its pseudospin in the Ising (classical-well)
approximation: the upper level is the well the field Delta'_j disfavours, <S_j> = s_j sigma_j/2,
neglecting the O(Delta0_j^2 / Delta'_j^2) mixing of the wells in the eigenstates, exactly as
Eq. 4 neglects it. At equilibrium sigma_j = -tanh(|E_j|/2T) this gives
<S_j> = -s_j tanh(|E_j|/2T)/2, which is ``model.tls_mean_spins`` (-tanh(Delta'_j/2T)/2) up to
O(Delta0_j^2). The signs s_j are held at their fixed-point values: they change only where a
field crosses zero, which an infinitesimal perturbation does not reach. The price of the
Ising read-out is that <S_j> jumps at Delta'_j = 0 (by tanh(Delta0_j/2T)), so no fixed point
has a field exactly at zero: with continuous disorder that has probability zero, and
``tls_rate_fixed_point`` reports non-convergence if Newton is drawn there. (The quantum
read-out <S_j> = sigma_j Delta'_j / (2|E_j|) is continuous but makes Delta' an implicit
function of sigma and B lose the symmetrizable form below; its fixed point differs from this
one by O(Delta0^2) as well.)

Its fixed point
---------------
F = 0 gives sigma0_i = -tanh(|E_i|/2T) and the self-consistency

    Delta'_i = Delta_i + 1/4 sum_j J_ij s_j tanh(|E_j| / 2T),

which differs from Eq. 4 (tanh(Delta'_j/2T)) by O(Delta0^2). ``tls_rate_fixed_point`` refines
an Eq. 4 solution to this fixed point by Newton's method (a few iterations; the change is
O(Delta0_max^2 / T) in units of J at most and usually far smaller), so that B below is the
exact Jacobian at an exact fixed point. ``tls_rates`` (Eq. 12) uses the fields as given.

The Jacobian B = dF/dsigma at the fixed point
---------------------------------------------
Differentiating F_i through |E_i| (dF_i/d|E_i| = -a Delta0_i^2 |E_i| / (T sinh(|E_i|/T)) at
sigma_i = sigma0_i) and d Delta'_i / d sigma_j = -J_ij s_j / 4::

    B = -diag(lambda) + f,   f_ij = r_i J_ij s_j,
    r_i = a Delta0_i^2 Delta'_i / (4 T sinh(|E_i|/T))

Comparison with the paper (Appendix B): f^paper_ij = 2 a Delta0_i^2 Delta'_i N_i (N_i + 1)
sigma0_i u_ij / (T r_ij^3) = -a Delta0_i^2 Delta'_i J_ij / (T sinh(E_i/T)) with signed E_i,
i.e. -a Delta0_i^2 |Delta'_i| J_ij / (T sinh(|E_i|/T)). In the well variables tau_j = s_j
sigma_j (a similarity transform, same spectrum) ours reads s_i f_ij s_j =
+a Delta0_i^2 |Delta'_i| J_ij / (4 T sinh(|E_i|/T)): the same form, smaller by the factor
-1/4. The 1/4 is the coupling convention (S = sigma/2 and the 1/2 of Eq. 3); the sign does
not change any distribution over realizations (u_ij -> -u_ij is a symmetry of Eq. 2) but
does change single realizations, and ours is the one the finite-difference test confirms.

Symmetrization
--------------
With q_i = s_i r_i = a Delta0_i^2 |Delta'_i| / (4 T sinh(|E_i|/T)) >= 0,
B = diag(s) (-diag(lambda) + diag(q) J) diag(s), which is similar to the symmetric
M = -diag(lambda) + diag(sqrt q) J diag(sqrt q) (also when some q_i underflow to zero: such a
TLS decouples and contributes -lambda_i to both). M = -D (diag(lambda~) - diag(sqrt q~) J
diag(sqrt q~)) D with D = diag(sqrt(a) Delta0) is strongly graded (Delta0 spans six
decades, so its eigenvalues twelve): LAPACK's tridiagonal reduction keeps the small
eigenvalues to high relative accuracy only when the matrix is ordered with the largest
diagonal first, which ``tls_spectrum`` does. The "accurate" method (Cholesky of the inner
matrix, one-sided Jacobi SVD of its column-scaled factor, LAPACK dgejsv) guarantees high
relative accuracy and is the reference the tests compare against.
"""
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.linalg.lapack import dgejsv

from kmc import model
from kmc.solvers.linear.spectrum import split_spectrum


@dataclass(frozen=True)
class RateFixedPoint:
    """Fixed point of the mean-field rate equation (see the module docstring).

    fields : (N,) float, units of J -- Delta'_i at the fixed point.
    sigma0 : (N,) float -- equilibrium pseudospins -tanh(|E_i|/2T).
    converged : bool; iterations : int (chord/Newton steps)
    residual : float -- max_i |Delta'_i - Delta_i - 1/4 sum_j J_ij s_j tanh(|E_j|/2T)|, units of J.
    shift : float -- max_i |Delta'_i - input field_i|, units of J (the O(Delta0^2) correction).
    """

    fields: np.ndarray
    sigma0: np.ndarray
    converged: bool
    iterations: int
    residual: float
    shift: float


def _signs(fields):
    # Same convention as model.tls_signed_energies: sgn(0) = +1.
    return np.where(fields >= 0.0, 1.0, -1.0)


def _inverse_sinh(x):
    """1/sinh(x) for x > 0 without overflow (underflows to 0 for x > ~710)."""
    with np.errstate(over="ignore", under="ignore"):
        return 2.0 * np.exp(-x) / -np.expm1(-2.0 * x)


def tls_rates(system, fields, temperature, a=1.0):
    """Relaxation rates of Eq. 12 from mean-field fields, without the interaction term.

    Parameters
    ----------
    system : TLSSystem
    fields : (N,) float, units of J
        Mean-field asymmetries Delta'_i (Eq. 4).
    temperature : float, units of J
    a : float
        Phonon coupling prefactor; rates are in units of a J^3 when a = 1.

    Returns
    -------
    (N,) float
        lambda_i = a Delta0_i^2 |E_i| coth(|E_i|/2T) > 0 with |E_i| = sqrt(Delta'^2 + Delta0^2).
    """
    splittings = model.tls_signed_energies(np.asarray(fields, dtype=float), system.delta0)
    return model.tls_relaxation_rates(splittings, system.delta0, temperature, a)


def tls_rate_equation(sigma, system, signs, temperature, a=1.0):
    """Right-hand side F(sigma) of the nonlinear mean-field rate equation (Eq. 11).

    Parameters
    ----------
    sigma : (N,) float
        Pseudospins p_upper - p_lower in [-1, 1].
    system : TLSSystem
    signs : (N,) float
        s_j = sgn(Delta'_j) of the fixed point, held fixed (module docstring).
    temperature, a : float

    Returns
    -------
    (N,) float, units of a J^3
        d sigma_i / dt with Delta'_i = Delta_i - 1/4 sum_j J_ij s_j sigma_j.
    """
    sigma = np.asarray(sigma, dtype=float)
    fields = system.bias - 0.25 * (system.couplings @ (signs * sigma))
    splittings = np.hypot(fields, system.delta0)
    w_up, w_dn = model.tls_up_down_rates(splittings, system.delta0, temperature, a)
    return w_up * (1.0 - sigma) - w_dn * (1.0 + sigma)


def tls_rate_fixed_point(system, fields, temperature, tol=1e-13, max_iter=50):
    """Refine mean-field fields to the exact fixed point of the rate equation.

    Newton (chord) iterations on G(x) = x - Delta - 1/4 J (s tanh(|E(x)|/2T)), started from
    ``fields`` (an Eq. 4 solution, which is within O(Delta0^2) of it), with s = sgn(x)
    recomputed each step.

    Parameters
    ----------
    system : TLSSystem
    fields : (N,) float, units of J
        Starting fields, normally the Eq. 4 solution.
    temperature : float
    tol : float
        Convergence threshold on max |G|, units of J.
    max_iter : int

    Returns
    -------
    RateFixedPoint
    """
    x0 = np.asarray(fields, dtype=float)
    x = x0.copy()
    d0, couplings = system.delta0, system.couplings
    t2 = 2.0 * temperature

    def residual(x):
        e = np.hypot(x, d0)
        return x - system.bias - 0.25 * (couplings @ (_signs(x) * np.tanh(e / t2))), e

    def factor(x, e):
        # d/dx_j [s_j tanh(|E_j|/2T)] = sech^2(|E_j|/2T) |x_j| / (2T |E_j|)
        deriv = np.abs(x) / (t2 * e * np.cosh(np.minimum(e / t2, 350.0)) ** 2)
        jac = np.eye(x.size) - 0.25 * couplings * deriv[None, :]
        return scipy.linalg.lu_factor(jac, overwrite_a=True, check_finite=False)

    g, e = residual(x)
    best = (float(np.max(np.abs(g))), x, e)
    it = 0
    lu = None
    while best[0] > tol and it < max_iter:
        # Chord iterations: the Jacobian changes little over the O(Delta0^2) correction,
        # so one LU factor is reused (O(N^2) per step) and renewed only when the residual
        # stops halving -- which makes the iteration Newton's method again.
        if lu is None:
            with warnings.catch_warnings():
                # an exactly singular Jacobian (a bifurcation point) gives non-finite
                # steps, caught below; its LinAlgWarning would only repeat that
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                lu = factor(x, e)
        step = scipy.linalg.lu_solve(lu, g, check_finite=False)
        if not np.all(np.isfinite(step)):
            break   # report the best iterate, not converged
        x = x - step
        g, e = residual(x)
        it += 1
        res = float(np.max(np.abs(g)))
        if not res < 0.5 * best[0]:
            lu = None
        if res < best[0]:
            best = (res, x, e)
    # Without convergence the best iterate is returned with converged=False: the caller
    # sees the status (and the residual) instead of a silently wrong fixed point.
    res, x, e = best
    return RateFixedPoint(fields=x, sigma0=-np.tanh(e / t2), converged=res <= tol,
                          iterations=it, residual=res, shift=float(np.max(np.abs(x - x0))))


def _coupling_weights(system, fields, temperature, a):
    """(lambda, q, s): rates, symmetrization weights q_i >= 0 and signs (module docstring)."""
    fields = np.asarray(fields, dtype=float)
    d0 = system.delta0
    e = np.hypot(fields, d0)
    lam = model.tls_relaxation_rates(e, d0, temperature, a)
    q = a * d0**2 * np.abs(fields) * _inverse_sinh(e / temperature) / (4.0 * temperature)
    return lam, q, _signs(fields)


def tls_rate_matrix(system, fields, temperature, a=1.0, interactions=True):
    """Linearized rate matrix B = -diag(lambda) + f of Appendix B (Eq. B1).

    B is the Jacobian dF/dsigma of ``tls_rate_equation`` when ``fields`` is its fixed point
    (``tls_rate_fixed_point``); at an Eq. 4 solution it is that Jacobian up to O(Delta0^2).

    Parameters
    ----------
    system : TLSSystem
    fields : (N,) float, units of J
        Mean-field asymmetries Delta'_i.
    temperature, a : float
    interactions : bool
        Include f (True) or return -diag(lambda) (False, Eq. 13).

    Returns
    -------
    (N, N) float, units of a J^3
        d(d sigma_i/dt)/d sigma_j; f_ij = a Delta0_i^2 Delta'_i J_ij s_j / (4 T sinh(|E_i|/T)).
    """
    lam, q, s = _coupling_weights(system, fields, temperature, a)
    if interactions:
        b = (s * q)[:, None] * system.couplings * s[None, :]
    else:
        b = np.zeros((lam.size, lam.size))
    b[np.diag_indices_from(b)] -= lam
    return b


def tls_spectrum(system, fields, temperature, a=1.0, interactions=True, refine=True,
                 method="symmetric"):
    """Relaxation rates of the TLS glass: minus the eigenvalues of B.

    Parameters
    ----------
    system : TLSSystem
    fields : (N,) float, units of J
        Mean-field asymmetries Delta'_i (Eq. 4 solution).
    temperature, a : float
    interactions : bool
        With the interaction term f (Appendix B) or without (Eq. 13: rates = Eq. 12).
    refine : bool
        Refine ``fields`` to the exact fixed point of the rate equation first
        (``tls_rate_fixed_point``); its status is stored in ``result.fixed_point``. Done
        with and without ``interactions``, so that two calls differing only in
        ``interactions`` compare rates at the same fields (Figs. 17-20). For the paper's
        rates of Eq. 12 at the Eq. 4 fields use ``tls_rates`` (or ``refine=False``).
    method : {"symmetric", "accurate", "general"}
        "symmetric": syevd on the symmetrized matrix, ordered by decreasing |diagonal|;
        "accurate": Cholesky + Jacobi SVD (high relative accuracy; needs a stable fixed
        point, otherwise falls back to "symmetric"); "general": geev on B itself
        (the slow reference).

    Returns
    -------
    SpectrumResult
        ``rates`` (N,) ascending; no conserved mode. ``n_positive`` > 0 flags an unstable
        (saddle-point) fixed point.
    """
    fixed_point = None
    if refine:
        fixed_point = tls_rate_fixed_point(system, fields, temperature)
        fields = fixed_point.fields
    if not interactions:
        lam = tls_rates(system, fields, temperature, a)
        return split_spectrum(-lam, False, "diagonal", fixed_point=fixed_point)
    if method == "general":
        ev = scipy.linalg.eigvals(tls_rate_matrix(system, fields, temperature, a),
                                  overwrite_a=True, check_finite=False)
        return split_spectrum(ev.real, False, method, max_imag=float(np.max(np.abs(ev.imag))),
                              fixed_point=fixed_point)
    lam, q, _ = _coupling_weights(system, fields, temperature, a)
    # Largest diagonal first: the graded ordering under which Householder reduction keeps
    # the smallest eigenvalues to high relative accuracy (module docstring).
    order = np.argsort(-lam, kind="stable")
    lam, sq = lam[order], np.sqrt(q[order])
    couplings = system.couplings[np.ix_(order, order)]
    if method == "accurate":
        d = np.sqrt(a) * system.delta0[order]
        inner = -(sq / d)[:, None] * couplings * (sq / d)[None, :]
        inner[np.diag_indices_from(inner)] += lam / d**2
        try:
            upper = scipy.linalg.cholesky(inner, lower=False, check_finite=False)
        except np.linalg.LinAlgError:
            method = "symmetric"   # not positive definite: unstable fixed point
        else:
            sva, _, _, work, _, info = dgejsv(upper * d[None, :], joba=0, jobu=3, jobv=3)
            if info != 0:
                raise np.linalg.LinAlgError(f"dgejsv failed with info = {info}")
            # dgejsv returns scaled singular values: sigma = (work[1] / work[0]) * sva
            ev = -((work[1] / work[0]) * sva) ** 2
            return split_spectrum(ev, False, "accurate", fixed_point=fixed_point)
    if method != "symmetric":
        raise ValueError(f"method: expected 'symmetric', 'accurate' or 'general', got {method!r}")
    sym = sq[:, None] * couplings * sq[None, :]
    sym[np.diag_indices_from(sym)] -= lam
    ev = scipy.linalg.eigvalsh(sym, overwrite_a=True, check_finite=False, driver="evd")
    return split_spectrum(ev, False, "symmetric", fixed_point=fixed_point)
