"""Linear response around the mean-field state: the no-free-parameter prediction of a
weak-pulse (or temperature-step) experiment (docs/model.md section 4).

Protocol
--------
From the stationary state, a weak perturbation of amplitude F (a bias pulse F g_i, or a
temperature step dT) acts for a waiting time t_w and is removed at t = 0. The observable is
a projection P(t) = sum_i w_i dx_i(t) of the deviation from the unperturbed evolution, with
x_i = <sigma_i> = <2 S_i> (TLS glass, the well variable the kinetic Monte Carlo records) or
x_i = <n_i> (electron glass); for the pulse w = g.

Linearized dynamics
-------------------
Both models relax each variable towards its local equilibrium, and the perturbation moves
that equilibrium, so to first order in F

    d dx/dt = B dx + F b     (0 > t > -t_w: perturbation on),    d dx/dt = B dx   (t > 0)

TLS glass, in the well variable x_i = s_i sigma_i (s_i = sgn Delta'_i, a similarity
transform of ``tls.tls_rate_matrix``): x_i relaxes as -lambda_i (x_i - x_i^eq(h_i)),
x_i^eq = -s_i tanh(|E_i|/2T), h_i = Delta_i - 1/4 sum_j J_ij x_j, so

    B = -diag(lambda) + diag(q) J     (or -diag(lambda) without the interaction term f)
    b = lambda chi g  = -4 q g        (pulse: Delta_i -> Delta_i + F g_i)
    b = lambda chi_T                  (temperature step T -> T + dT, F = dT)

with the susceptibilities chi_i = dx_i^eq/dh_i = -4 q_i / lambda_i (= -sech^2(|E_i|/2T)
|Delta'_i| / (2T |E_i|)), chi_T,i = dx_i^eq/dT = s_i sech^2(|E_i|/2T) |E_i| / (2T^2) and
q_i = a Delta0_i^2 |Delta'_i| / (4T sinh(|E_i|/T)) (module ``tls``). The rates' own
dependence on h and T multiplies x - x^eq = 0 and drops out at first order.

Electron glass (A = G D^-1 of Eqs. 22-23, module ``electron``; D = diag(n0 (1 - n0))): the
pair current is proportional to the difference of electrochemical potentials
dE_i + T dn_i / D_i, so

    B = A = G D^-1,   b = G g / T   (pulse: eps_i -> eps_i + F g_i),
                      b = -G x / T  (temperature step, x_i = (E_i - mu)/T).

Exact solution through a symmetric eigendecomposition
-----------------------------------------------------
In both models B = diag(c) M diag(c)^-1 with M symmetric: TLS c = sqrt(q),
M = -diag(lambda) + diag(sqrt q) J diag(sqrt q); electron c = sqrt(D), M = S of
``electron.electron_symmetric_matrix``. With y = dx / c, M = U diag(mu) U^T and the drive
in these coordinates beta = b / c (TLS pulse: -4 sqrt(q) g; electron pulse: S (c g) / T,
no division by a small c anywhere), the solution at t >= 0 is

    y(t) = U diag(e^(mu t) (e^(mu t_w) - 1) / mu) U^T beta,
    P(t) = F sum_k (U^T (c w))_k e^(mu_k t) (e^(mu_k t_w) - 1) / mu_k (U^T beta)_k,

evaluated with expm1 (the factor tends to t_w as mu -> 0). For the pulse with w = g every
term has the sign of chi: P(t) = -F sum_k a_k e^(-lambda_k t) (1 - e^(-lambda_k t_w)) with
a_k >= 0, a completely monotone decay (the form behind Eq. 17 and the ln(1 + t_w/t) aging
of Amir, Oreg, Imry, PNAS 109, 1850 (2012)). The electron glass's zero mode (particle
number) is not driven (1^T b = 0) and is dropped.

At J = 0 (no f) the TLSs are independent and P(t) is the first-order term of the exact
two-level solution x_i(t) - x_i^eq = e^(-lambda_i t) (x_i^eq(h_i + F g_i) - x_i^eq(h_i))
(1 - e^(-lambda_i(h_i + F g_i) t_w)); the difference is O(F^2) (tests/test_response.py).
``reference_response`` integrates the same equations with a matrix exponential of the
nonsymmetric B (the slow reference the tests hold the fast path to).
"""
import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from kmc.solvers.linear.electron import electron_rate_matrix, electron_symmetric_matrix
from kmc.solvers.linear.tls import _coupling_weights, tls_rate_fixed_point


@dataclass(frozen=True)
class Linearization:
    """d dx/dt = B dx + F b with B = diag(scale) M diag(scale)^-1, M = U diag(mu) U^T.

    model : "tls" or "electron"
    eigenvalues : (N,) float, mu ascending (units of a J^3 or Gamma0); -lambda_k
    vectors : (N, N) float, U (columns orthonormal eigenvectors of M)
    scale : (N,) float, c (TLS sqrt(q), electron sqrt(n0 (1 - n0)))
    fields : (N,) float, units of J -- TLS Delta'_i (refined fixed point) or electron E_i
    mu : float -- chemical potential (electron glass; 0 for the TLS glass)
    temperature : float
    rates : (N,) float -- TLS lambda_i of Eq. 12; electron: -diag(A)
    susceptibility : (N,) float -- chi_i = dx_i^eq/dh_i (local, others held fixed)
    temperature_susceptibility : (N,) float -- dx_i^eq/dT at fixed fields
    conserved : bool -- an exact zero mode (electron glass) exists and is not driven
    zero_index : int or None -- index of that mode in ``eigenvalues``
    n_positive : int -- eigenvalues > 0 beyond the zero mode (unstable: no prediction)
    fixed_point : RateFixedPoint or None -- TLS refinement status
    """

    model: str
    eigenvalues: np.ndarray
    vectors: np.ndarray
    scale: np.ndarray
    fields: np.ndarray
    mu: float
    temperature: float
    rates: np.ndarray
    susceptibility: np.ndarray
    temperature_susceptibility: np.ndarray
    conserved: bool
    zero_index: int | None
    n_positive: int
    fixed_point: object = None
    _sym: np.ndarray | None = None
    _lam_chi_t: np.ndarray | None = None


def _sech(x):
    with np.errstate(over="ignore", under="ignore"):
        return 2.0 * np.exp(-np.abs(x)) / (1.0 + np.exp(-2.0 * np.abs(x)))


def tls_linearization(system, fields, temperature, a=1.0, interactions=True, refine=True):
    """Linearized TLS dynamics in the well variable x_i = <2 S_i> (module docstring).

    Parameters
    ----------
    system : TLSSystem
    fields : (N,) float, units of J
        Mean-field fields Delta'_i (Eq. 4 solution, e.g. ``meanfield.solve(...).fields``).
    temperature, a : float
    interactions : bool
        With the interaction term f (B of Appendix B) or without (-diag(lambda), Eq. 13).
    refine : bool
        Refine ``fields`` to the fixed point of the rate equation (``tls_rate_fixed_point``)
        first; with and without ``interactions`` alike, so the two predictions share fields.

    Returns
    -------
    Linearization
    """
    fixed_point = None
    fields = np.asarray(fields, dtype=float)
    if refine:
        fixed_point = tls_rate_fixed_point(system, fields, temperature)
        fields = fixed_point.fields
        if not fixed_point.converged:
            warnings.warn(f"rate fixed point not converged (residual "
                          f"{fixed_point.residual:.3g} J); prediction kept, status in "
                          "Linearization.fixed_point")
    lam, q, s = _coupling_weights(system, fields, temperature, a)
    if np.any(fields == 0.0):
        raise ValueError("fields: a mean-field Delta'_i is exactly 0, where the Ising "
                         "read-out of the TLS is discontinuous (module tls)")
    e = np.hypot(fields, system.delta0)
    sech2 = _sech(e / (2.0 * temperature)) ** 2
    chi = -sech2 * np.abs(fields) / (2.0 * temperature * e)
    chi_t = s * sech2 * e / (2.0 * temperature**2)
    # lambda chi_T / sqrt(q) = 2 sqrt(lambda) chi_T / sqrt|chi|, free of 0/0 when sech^2
    # underflows: chi_T / sqrt|chi| = s sech(x) |E| / (2T^2) sqrt(2T|E| / |Delta'|)
    lam_chi_t_y = 2.0 * np.sqrt(lam) * s * _sech(e / (2.0 * temperature)) * e \
        / (2.0 * temperature**2) * np.sqrt(2.0 * temperature * e / np.abs(fields))
    sq = np.sqrt(q)
    if interactions:
        sym = sq[:, None] * system.couplings * sq[None, :]
    else:
        sym = np.zeros((lam.size, lam.size))
    sym[np.diag_indices_from(sym)] -= lam
    # Largest diagonal first: the graded ordering under which the symmetric reduction keeps
    # the small eigenvalues accurate (module tls, "Symmetrization").
    order = np.argsort(-lam, kind="stable")
    ev, vec_o = scipy.linalg.eigh(sym[np.ix_(order, order)], check_finite=False, driver="evd")
    vec = np.empty_like(vec_o)
    vec[order] = vec_o
    return Linearization("tls", ev, vec, sq, fields, 0.0, float(temperature), lam, chi, chi_t,
                         False, None, int(np.sum(ev > 0.0)), fixed_point,
                         _lam_chi_t=lam_chi_t_y)


def electron_linearization(system, energies, mu, temperature, xi, gamma0=1.0, pairs=None):
    """Linearized electron-glass dynamics A = G D^-1 in x_i = <n_i> (module docstring).

    Parameters
    ----------
    system : ElectronSystem
    energies : (N,) float, units of J
        Mean-field site energies E_i (``meanfield.solve(...).fields``).
    mu : float
        Chemical potential (``meanfield.solve(...).mu``).
    temperature, xi, gamma0 : float
    pairs : (P, 2) int or None
        The hop pairs of the kinetic Monte Carlo (``electron_engine.hop_pairs``), so that
        prediction and simulation use one set of processes; None = all pairs.

    Returns
    -------
    Linearization
    """
    energies = np.asarray(energies, dtype=float)
    sym, root = electron_symmetric_matrix(system, energies, mu, temperature, xi, gamma0, pairs)
    ev, vec = scipy.linalg.eigh(sym, check_finite=False, driver="evd")
    # The zero mode is the eigenvector along the exact null vector root = sqrt(D).
    zero = int(np.argmax(np.abs(vec.T @ root)))
    n_pos = int(np.sum(np.delete(ev, zero) > 0.0))
    x = (energies - mu) / temperature
    d = root**2
    chi = -d / temperature
    chi_t = d * x / temperature
    return Linearization("electron", ev, vec, root, energies, float(mu), float(temperature),
                         -np.diag(sym).copy(), chi, chi_t, True, zero, n_pos, None, _sym=sym)


def field_drive(lin, pattern):
    """Drive beta = b / c (y coordinates) of a unit bias pulse along ``pattern``.

    Parameters
    ----------
    lin : Linearization
    pattern : (N,) float
        g_i: Delta_i -> Delta_i + F g_i (TLS) or eps_i -> eps_i + F g_i (electron glass).

    Returns
    -------
    (N,) float, per unit F
    """
    g = np.asarray(pattern, dtype=float)
    if lin.model == "tls":
        return -4.0 * lin.scale * g
    return lin._sym @ (lin.scale * g) / lin.temperature


def temperature_drive(lin):
    """Drive beta = b / c (y coordinates) of a unit temperature step T -> T + dT."""
    if lin.model == "tls":
        return lin._lam_chi_t.copy()
    x = (lin.fields - lin.mu) / lin.temperature
    return -lin._sym @ (lin.scale * x) / lin.temperature


def energy_weights(lin):
    """Weights w of the first-order energy change dH = sum_i w_i dx_i at the mean-field state.

    TLS: dH = sum_i Delta'_i dS_i = sum_i (Delta'_i / 2) dx_i; electron glass:
    dH = sum_i (E_i - mu) dn_i (the mu term vanishes with sum dn = 0).
    """
    if lin.model == "tls":
        return 0.5 * lin.fields
    return lin.fields - lin.mu


def step_response(lin, drive, weights, times, waiting_time):
    """P(t) = w . dx(t) per unit amplitude, after a drive on during [-t_w, 0].

    Parameters
    ----------
    lin : Linearization
    drive : (N,) float
        beta from ``field_drive`` or ``temperature_drive``.
    weights : (N,) float
        w of the projection (the pulse pattern g, or ``energy_weights``).
    times : (T,) float >= 0
        Times after the drive is removed (units of 1/(a J^3) or 1/Gamma0).
    waiting_time : float > 0 or inf
        t_w; inf gives the relaxation from the fully adapted (static-response) state.

    Returns
    -------
    (T,) float, P(t) per unit F (or per unit dT)

    Raises
    ------
    ValueError
        If the linearization point is unstable (n_positive > 0): no stationary state to
        respond around.
    """
    if lin.n_positive:
        raise ValueError(f"mean-field state: {lin.n_positive} unstable mode(s); the linear "
                         "response is undefined at a saddle point")
    times = np.asarray(times, dtype=float)
    left = lin.vectors.T @ (lin.scale * np.asarray(weights, dtype=float))
    right = lin.vectors.T @ np.asarray(drive, dtype=float)
    mu = np.minimum(lin.eigenvalues, 0.0)
    if lin.conserved:
        right[lin.zero_index] = 0.0
    amp = left * right * _memory(mu, waiting_time)
    with np.errstate(under="ignore"):
        return np.exp(np.outer(times, mu)) @ amp


def _memory(mu, waiting_time):
    """(e^(mu t_w) - 1) / mu, -> t_w as mu -> 0, -1/mu for t_w = inf."""
    if math.isinf(waiting_time):
        with np.errstate(divide="ignore"):
            return np.where(mu < 0.0, -1.0 / np.where(mu < 0.0, mu, -1.0), math.inf)
    safe = np.where(mu < 0.0, mu, -1.0)
    return np.where(mu < 0.0, np.expm1(safe * waiting_time) / safe, waiting_time)


def pulse_response(lin, pattern, times, waiting_time, strength=1.0):
    """P(t) = sum_i g_i dx_i(t) after a bias pulse F g of duration t_w (module docstring).

    Returns (T,) float, units of x (dimensionless), proportional to ``strength`` = F.
    """
    return strength * step_response(lin, field_drive(lin, pattern), pattern, times,
                                    waiting_time)


def temperature_step_response(lin, delta_t, times, waiting_time, weights=None):
    """w . dx(t) after T -> T + dT during t_w; default w = ``energy_weights`` (the energy).

    Returns (T,) float, units of J when w is the energy (proportional to ``delta_t``).
    """
    w = energy_weights(lin) if weights is None else weights
    return delta_t * step_response(lin, temperature_drive(lin), w, times, waiting_time)


def rate_matrix(lin, system, xi=None, gamma0=1.0, pairs=None, a=1.0, interactions=True):
    """The nonsymmetric B in x coordinates, built independently (for ``reference_response``).

    TLS: -diag(lambda) + diag(q) J from ``tls._coupling_weights`` at ``lin.fields``;
    electron glass: ``electron_rate_matrix`` (needs ``xi``).
    """
    if lin.model == "tls":
        lam, q, _ = _coupling_weights(system, lin.fields, lin.temperature, a)
        b = q[:, None] * system.couplings if interactions else np.zeros((lam.size,) * 2)
        b[np.diag_indices_from(b)] -= lam
        return b
    return electron_rate_matrix(system, lin.fields, lin.mu, lin.temperature, xi, gamma0,
                                pairs=pairs)


def reference_response(matrix, drive_x, weights, times, waiting_time):
    """Slow reference: P(t) = w . e^(B t) int_0^t_w e^(B s) ds b by matrix exponentials.

    The pulse phase uses the augmented matrix [[B, b], [0, 0]], whose exponential carries
    int_0^t_w e^(B s) ds b in its last column (no inverse of B, valid with a zero mode).

    Parameters
    ----------
    matrix : (N, N) float, B; drive_x : (N,) float, b in x coordinates (per unit F)
    weights : (N,) float; times : (T,) float; waiting_time : float

    Returns
    -------
    (T,) float
    """
    n = matrix.shape[0]
    aug = np.zeros((n + 1, n + 1))
    aug[:n, :n] = matrix
    aug[:n, n] = drive_x
    x0 = scipy.linalg.expm(aug * waiting_time)[:n, n]
    return np.array([weights @ (scipy.linalg.expm(matrix * t) @ x0) for t in times])


def exact_independent_tls_pulse(system, fields, temperature, pattern, strength, times,
                                waiting_time, a=1.0, initial=None, temperature_step=0.0,
                                weights=None):
    """Exact pulse (or temperature-step) response of independent TLSs (J = 0), all orders.

    Each TLS is a two-level system in its wells with the rates of Eq. 10 at
    |E| = sqrt(h^2 + Delta0^2); x^eq(h) = -sgn(h) tanh(|E|/2T). From x_i(-t_w) = c_i the
    perturbed TLS relaxes for t_w towards x^eq(h + F g) at rate lambda(h + F g), the twin
    towards x^eq(h) at lambda(h); both then relax at lambda(h), so

        P(t) = sum_i g_i e^(-lambda_i t) [x^eq_i' + (c_i - x^eq_i') e^(-lambda_i' t_w)
                                          - x^eq_i - (c_i - x^eq_i) e^(-lambda_i t_w)]

    (primes at h + F g and, with ``temperature_step`` dT, at T + dT during the pulse; the
    projection uses ``weights`` w instead of g when given). From equilibrium (c = x^eq, ``initial`` None) this is
    sum_i g_i e^(-lambda_i t) (1 - e^(-lambda_i' t_w)) (x^eq_i' - x^eq_i). From any other
    start the change of the rate adds a first-order term (c - x^eq)(e^(-lambda' t_w) -
    e^(-lambda t_w)) that the linearization around a stationary state does not have: the
    reason the prepared state must be aged until its drift is negligible.

    Parameters
    ----------
    system : TLSSystem (its couplings are ignored); fields : (N,) h_i (units of J)
    temperature, strength (F), waiting_time, a : float; pattern : (N,) g; times : (T,)
    initial : (N,) float or None -- c_i = 2 S_i of the common start at -t_w, or None for
        equilibrium
    temperature_step : float -- dT during the pulse (0: none)
    weights : (N,) float or None -- projection w (None: the pattern g)

    Returns
    -------
    (T,) float
    """
    h = np.asarray(fields, dtype=float)
    g = np.asarray(pattern, dtype=float)
    hp = h + strength * g

    w = g if weights is None else np.asarray(weights, dtype=float)
    hot = temperature + temperature_step

    def x_eq(f, t):
        return -np.where(f >= 0.0, 1.0, -1.0) * np.tanh(np.hypot(f, system.delta0) / (2.0 * t))

    def rate(f, t):
        e = np.hypot(f, system.delta0)
        return a * system.delta0**2 * e / np.tanh(e / (2.0 * t))

    x0, x1 = x_eq(h, temperature), x_eq(hp, hot)
    if initial is None:
        jump = (x1 - x0) * -np.expm1(-rate(hp, hot) * waiting_time)
    else:
        c = np.asarray(initial, dtype=float)
        jump = (x1 + (c - x1) * np.exp(-rate(hp, hot) * waiting_time)
                - x0 - (c - x0) * np.exp(-rate(h, temperature) * waiting_time))
    return np.exp(-np.outer(np.asarray(times, dtype=float), rate(h, temperature))) @ (w * jump)


__all__ = ["Linearization", "tls_linearization", "electron_linearization", "field_drive",
           "temperature_drive", "energy_weights", "step_response", "pulse_response",
           "temperature_step_response", "rate_matrix", "reference_response",
           "exact_independent_tls_pulse"]
