"""Mean-field dynamics in time: the deterministic rate equations of the mean occupations.

The kinetic Monte Carlo follows single configurations; averaging its master equation over a
product distribution (each site independent, with mean <2 S_i> or <n_i>) and closing it with
the mean fields gives the nonlinear rate equations integrated here (docs/model.md section 4;
docs/meanfield-dynamics.md has the derivations, tolerances and validation numbers). They
keep the nonlinearity of a large deviation (a quench) and drop the correlations, so beside
the KMC (exact) and the linear prediction (also linear) they locate where mean field fails.
The rates are the KMC's, from the same static prefactor array (and, for the electron
glass, the same hop-pair list, passed in).

TLS glass, well polarization m_i = <2 S_i> = P(S_i = +1/2) - P(S_i = -1/2) (the KMC's
``occupation``). The KMC flips S_i at p_i g(2 S_i h_i) with p_i = a Delta0_i^2 and
g(x) = |E| (n_B(|E|) + [x > 0]), |E| = sqrt(x^2 + Delta0_i^2) (kmc.dynamics.tls_engine);
its expectation over a product state, at the mean field h_i = Delta_i - 1/4 sum_j J_ij m_j::

    dm_i/dt = (1 - m_i) p_i g(-h_i) - (1 + m_i) p_i g(h_i)
            = -lambda_i m_i - p_i |E_i| sgn(h_i)                       (Eq. 11)
    lambda_i = p_i |E_i| coth(|E_i| / 2T)                              (Eq. 12)

In the pseudospin sigma_i = sgn(h_i) m_i (upper minus lower level) this is the paper's Eq. 11,
the equation kmc.solvers.linear.tls linearizes; its Jacobian at the fixed point is
diag(s) B diag(s) with B = ``tls_rate_matrix`` (s = sgn h): the same matrix in the well
variables. sgn(h) jumps where a field crosses zero; a trajectory can slide along such a
surface (Filippov), which stalls an integrator, so sgn(h) is replaced by the smooth
h / sqrt(h^2 + w^2) with w = ``switch_width`` (default 1e-9 J: it changes the rates only
where |h| < ~1e-7 J). ``readout="quantum"`` takes w = Delta0_i instead: F = -lambda m - p h,
the well polarization of the TLS eigenstates ((h/E) sigma), smoother and faster to
integrate but O(Delta0^2 / h^2) away from the KMC's rates and from B. Analytic Jacobian::

    dF_i/dm_j = -lambda_i delta_ij + r_i J_ij,
    r_i = 1/4 [(h_i/|E_i|) (lambda'(|E_i|) m_i + p_i S(h_i)) + p_i |E_i| S'(h_i)],
    lambda'(E) = p [coth(E/2T) - (E/2T) / sinh^2(E/2T)],   S(h) = h / sqrt(h^2 + w^2)

Electron glass, occupations n_i in [0, 1], E_i = eps_i + sum_j C_ij (n_j - K). For each
unordered hop pair p = (a, b) of the KMC's list, with D = E_b - E_a::

    F_p = w_ab n_a (1 - n_b) - w_ba n_b (1 - n_a)       (net current a -> b)
    w_ab = prefactor_p g(x_ab),  w_ba = prefactor_p g(x_ba),
    g(x) = n_B(|x|) + Theta(-x)                          (Miller-Abrahams, Eq. 21)
    dn_a/dt -= F_p,  dn_b/dt += F_p

with the hop energies x set by ``hop_energy``:
- "pair" (default): x_ab = D - C_ab (n_a - n_b) = -x_ba. The KMC's dH = E_b - E_a - C_ab
  (with the electron-hole attraction) evaluated with the hopping pair's own occupations
  exact (a occupied, b empty) and the other sites at their means; equal to the KMC's at
  integer occupations. Each pair obeys detailed balance, but the pair-dependent term
  leaves no common potential, so the stationary state is not the Eq. 20 one (see
  ``stationary_state``).
- "kmc": x_ab = D - C_ab, x_ba = -D - C_ab literally. Moving charge through a pair moves
  x_ab through 0, so trajectories hit the 1/x resonance of g (below) head-on.
- "mean_field": x_ab = D = -x_ba, Amir, Oreg and Imry's model: its fixed point is the Eq. 20
  solution n_i = f(E_i), and its Jacobian there is the ``interaction_term="jacobian"``
  matrix of kmc.solvers.linear.electron over the same pairs.

g diverges as T/|x| at x = 0. Continuous mean occupations cross x = 0; the trajectory then
has a cusp the integrator cannot step through ("step size too small"). (The KMC lands
within rounding of it only in long runs, docs/model.md.) ``resonance_width`` = w > 0
rounds g off, keeping detailed balance exactly: g_w(x) = e^(-x/2T) / (2 sinh(sqrt(x^2 +
w^2)/2T)) (``_ma_factor``; the KMC and the master equation use the same factor,
kmc.model.miller_abrahams_factor), a relative change O(w^2/x^2) for w << |x| <~ T. Jacobian, with u_p = dF_p/dD::

    J = S + L C,   S = the direct terms dF_p/dn_a, dF_p/dn_b (sparse, 4P entries),
    L = sum_p u_p (e_b - e_a)(e_b - e_a)^T (a weighted graph Laplacian, sparse)

Its columns sum to zero (particle number); the integrator also projects each step back
onto sum_i n_i = M, which rounding in BDF's Newton solves would otherwise let drift.

Integration: scipy's BDF (default) or Radau stepped by hand with the analytic Jacobian,
from t = 0 to the last grid time, outputs from each step's dense output at the grid times.
BDF's Newton matrices I - c J are factorized on their strongly coupled rows only
(``_row_sparse_newton``, row_drop 1e-3 for the TLS glass and 1e-5 for the electron
glass; the converged steps are unchanged, tests hold them to the dense LU), the Jacobian
is passed lazily (``_LazyJacobian``; the TLS one as diag + diag(r) J without forming it),
and the N^2 products of the fields and site energies use BLAS dsymv on the symmetric
coupling matrices (``_matvec``). BDF's step and factorization bookkeeping is scipy's
except where ``_BDF`` changes it (same formulas, error test and Newton test): the TLS
glass re-evaluates its Jacobian, O(N) beside the right-hand side at the same state, at
every factorization; the electron glass, whose k x k factorization (k ~ N late) costs
~30 Newton iterations, keeps it while c = h / alpha changes by <= 50% (scaled Newton
increment, up to 8 iterations) and holds the step size against growth below 1.5x.
Tolerances: rtol (default 1e-6) and atol (default 1e-9 per site, the occupations being
O(1)).
"""
from dataclasses import dataclass

import numpy as np
import scipy.integrate
import scipy.linalg
import scipy.linalg.blas
import scipy.linalg.lapack
import scipy.sparse

from kmc.dynamics.params import HOP_ENERGIES
from kmc.errors import ConfigError
from kmc.model import (electron_energy, tls_energy,
                       tls_local_fields)

METHODS = ("BDF", "Radau")
_GETRF, _GETRS = scipy.linalg.lapack.dgetrf, scipy.linalg.lapack.dgetrs
READOUTS = ("classical", "quantum")


def _bose_times_energy(e, temperature):
    """E n_B(E) for E > 0 (E >= Delta0 > 0 here), without overflow."""
    with np.errstate(over="ignore"):
        return e / np.expm1(e / temperature)


def _coth_derivative(x):
    """d/dE [E coth(E/2T)] = coth(x) - x / sinh(x)^2 at x = E/2T > 0.

    Written with e^(-2x) so that it neither overflows nor cancels at large x; the series
    2x/3 - 4x^3/45 below x = 1e-3 (relative error < 1e-12) avoids the cancellation of the
    two 1/x terms at small x.
    """
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        em = np.expm1(-2.0 * x)               # e^(-2x) - 1 < 0
        e2 = em + 1.0
        coth = -(1.0 + e2) / em
        inv_sinh2 = 4.0 * e2 / (em * em)
        full = coth - x * inv_sinh2
    small = 2.0 * x / 3.0 - 4.0 * x**3 / 45.0
    return np.where(x < 1e-3, small, full)


def _matvec(a, x, symmetric):
    """(N,) a @ x for an (N, N) float64 ``a``; ``symmetric``: a == a.T exactly.

    For a symmetric matrix BLAS dsymv reads one triangle, half the memory traffic of a
    general product, which bounds the cost of this N^2 product (it is most of a
    right-hand side); the result differs from a @ x by rounding only. ``a.T`` is the
    Fortran-ordered view dsymv takes without a copy. The systems accept matrices
    symmetric to np.allclose only, hence the exact flag (``_is_symmetric``).
    """
    if not symmetric:
        return a @ x
    return scipy.linalg.blas.dsymv(1.0, a.T, np.asarray(x, dtype=float))


def _is_symmetric(a):
    """True if the float64 C-ordered ``a`` equals its transpose exactly (dsymv applies)."""
    return bool(a.dtype == np.float64 and a.flags.c_contiguous and np.array_equal(a, a.T))


def _ma_factor(x, temperature, width=0.0):
    """Miller-Abrahams factor g(x) = n_B(|x|) + Theta(-x) and its derivative (Eq. 21).

    Written as g(x) = e^(-x/2T) / (2 sinh(s/2T)) with s = |x|, which shows detailed balance
    g(x) / g(-x) = e^(-x/T). ``width`` > 0 replaces s by sqrt(x^2 + width^2): the factor
    stays finite at the resonance x = 0 (1/x without it), detailed balance is kept exactly,
    and g changes by a relative O(width^2 / x^2) for width << |x| <~ T, O(width^2 / (T |x|))
    beyond (module docstring).
    g'(x) = g (-1/2T - (x / 2Ts) coth(s/2T)); without width, -sgn(x) n_B (n_B + 1) / T.
    """
    x = np.asarray(x, dtype=float)
    s = np.hypot(x, width) if width > 0 else np.abs(x)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        g = np.exp(-(x + s) / (2.0 * temperature)) / -np.expm1(-s / temperature)
        coth = 1.0 + 2.0 / np.expm1(s / temperature)
        dg = g * (-0.5 - 0.5 * (x / s) * coth) / temperature
    return g, dg


def _ma_factor_pair(x, temperature, width=0.0, derivative=True):
    """(g(x), g(-x), g'(x), g'(-x)) of ``_ma_factor``, the two directions of a hop
    sharing s = sqrt(x^2 + width^2), e^(-s/T) and coth(s/2T): the same floating-point
    operations as two calls (bitwise equal, test), a third of the transcendental
    functions. ``derivative`` False: the derivatives are None (the right-hand side)."""
    x = np.asarray(x, dtype=float)
    s = np.hypot(x, width) if width > 0 else np.abs(x)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        den = -np.expm1(-s / temperature)
        g = np.exp(-(x + s) / (2.0 * temperature)) / den
        g_rev = np.exp(-(s - x) / (2.0 * temperature)) / den
        if not derivative:
            return g, g_rev, None, None
        coth = 1.0 + 2.0 / np.expm1(s / temperature)
        q = 0.5 * (x / s) * coth
        dg = g * (-0.5 - q) / temperature
        dg_rev = g_rev * (-0.5 + q) / temperature
    return g, g_rev, dg, dg_rev


class TLSMeanField:
    """Right-hand side and Jacobian of the TLS mean-field rate equation (module docstring).

    Parameters
    ----------
    system : TLSSystem
    temperature : float, T > 0, units of J
    prefactors : (N,) float
        Static prefactors a Delta0_i^2, the KMC engine's array (kmc.dynamics.run.rate_setup).
    bias : (N,) float or None
        Delta_i replacing the system's (a pulse), units of J.
    switch_width : float, > 0, units of J
        Width w of the smooth sgn(h) ~ h / sqrt(h^2 + w^2) of the classical read-out.
    readout : "classical" or "quantum"
        The KMC's well rates (default), or the eigenstate read-out (w = Delta0_i); see
        the module docstring.
    """

    model = "tls"
    conserves_total = False
    row_drop = 1e-3          # default of integrate's row_drop (docs/meanfield-dynamics.md)
    # integrate's step bookkeeping (``_BDF``, docs/meanfield-dynamics.md): the Jacobian
    # costs O(N) beside the right-hand side at the same state, so it is re-evaluated
    # at every factorization, which saves failed Newton iterations (right-hand sides)
    hold, lu_reuse, jac_refresh, newton_maxiter = 1.0, 0.0, True, 4

    def __init__(self, system, temperature, prefactors, bias=None, switch_width=1e-9,
                 readout="classical"):
        if readout not in READOUTS:
            raise ConfigError("readout", f"expected one of {READOUTS}, got {readout!r}")
        self.readout = readout
        if not temperature > 0:
            raise ConfigError("temperature", f"must be > 0, got {temperature}")
        if not switch_width > 0:
            raise ConfigError("switch_width", f"must be > 0, got {switch_width}")
        self.switch_width = float(switch_width)
        self.system = system
        self.temperature = float(temperature)
        self.prefactors = np.asarray(prefactors, dtype=float)
        self.bias = np.asarray(system.bias if bias is None else bias, dtype=float)
        self.couplings = np.ascontiguousarray(system.couplings, dtype=float)
        self._symmetric = _is_symmetric(self.couplings)
        self.delta0 = np.asarray(system.delta0, dtype=float)
        self._last = None
        n = system.n_sites
        if self.prefactors.shape != (n,) or self.bias.shape != (n,):
            raise ConfigError("prefactors", f"expected ({n},) prefactors and bias, got "
                              f"{self.prefactors.shape} and {self.bias.shape}")

    def fields(self, m):
        """(N,) local fields h_i = Delta_i - 1/4 sum_j J_ij m_j, units of J."""
        return self.bias - 0.25 * _matvec(self.couplings, m, self._symmetric)

    def _parts(self, m):
        # BDF evaluates the Jacobian and then the right-hand side at the same predicted
        # state (``_BDF.jac_refresh``): the second call reuses the first's N^2 product
        if self._last is not None and np.array_equal(m, self._last[0]):
            return self._last[1]
        h = self.fields(m)
        e = np.hypot(h, self.delta0)
        en = _bose_times_energy(e, self.temperature)
        lam = self.prefactors * (2.0 * en + e)
        self._last = (np.array(m, dtype=float), (h, e, lam))
        return h, e, lam

    def rhs(self, m):
        """(N,) dm/dt, units of a J^3 (Eq. 11 in the well variables)."""
        m = np.asarray(m, dtype=float)
        h, e, lam = self._parts(m)
        # (1 - m) g(-h) - (1 + m) g(h), g(x) = p |E| (n_B + [x > 0]), with the step
        # [h > 0] - [h < 0] resolved over |h| < switch_width (module docstring)
        return -lam * m - self.prefactors * e * self._switch(h)

    def _switch_width(self):
        return self.delta0 if self.readout == "quantum" else self.switch_width

    def _switch(self, h):
        # sgn(h) rounded off over the width w: h / sqrt(h^2 + w^2), smooth (module docstring)
        return h / np.hypot(h, self._switch_width())

    def _coupling_rows(self, m, h, e):
        """r_i = -1/4 dF_i/dh_i: the Jacobian is -diag(lambda) + diag(r) J."""
        dlam = self.prefactors * _coth_derivative(e / (2.0 * self.temperature))
        w = self._switch_width()
        hw = np.hypot(h, w)
        slope = w * w / hw**3                  # d/dh of h / sqrt(h^2 + w^2)
        return 0.25 * ((h / e) * (dlam * m + self.prefactors * h / hw)
                       + self.prefactors * e * slope)

    def jacobian(self, m):
        """(N, N) dense dF_i/dm_j, units of a J^3 (module docstring)."""
        diag, rows = self.jacobian_factors(m)
        jac = rows[:, None] * self.couplings
        jac[np.diag_indices_from(jac)] += diag
        return jac

    def jacobian_factors(self, m):
        """(diag, rows), both (N,): the Jacobian is diag(diag) + diag(rows) J."""
        m = np.asarray(m, dtype=float)
        h, e, lam = self._parts(m)
        return -lam, self._coupling_rows(m, h, e)

    def bias_response(self, m):
        """(N, N) dF_i/dDelta_j = -4 r_i delta_ij: a bias moves its own field only.

        The drive of the linearized pulse: d dm/dt = jacobian dm + bias_response (F g).
        """
        m = np.asarray(m, dtype=float)
        h, e, _ = self._parts(m)
        return np.diag(-4.0 * self._coupling_rows(m, h, e))

    def observables(self, m):
        """(energy, excitations) of the product state with polarizations ``m``.

        energy = <H> = H(<S>) exactly (J_ii = 0), units of J; excitations = expected number
        of TLSs in the upper well of their mean field, sum_i (1 + sgn(h_i) m_i) / 2 (the KMC
        counts #{S_i h_i > 0} with the instantaneous fields).
        """
        s = 0.5 * np.asarray(m, dtype=float)
        h = tls_local_fields(s, self.bias, self.couplings)
        return (tls_energy(s, self.bias, self.couplings),
                float(np.sum(0.5 * (1.0 + np.sign(h) * 2.0 * s))))


class ElectronMeanField:
    """Right-hand side and Jacobian of the electron-glass mean-field rate equation.

    Parameters
    ----------
    system : ElectronSystem
    temperature : float, T > 0, units of J
    pairs : (P, 2) int
        Unordered hop pairs (a, b), a < b: the KMC's list (kmc.dynamics.electron_engine.
        hop_pairs), passed in so that one list serves the KMC, the A matrix and this.
    prefactors : (P,) float
        Gamma0 e^(-r_ab/xi) of those pairs (the KMC engine's array).
    site_energies : (N,) float or None
        eps_i replacing the system's (a pulse), units of J.
    hop_energy : "pair", "kmc" or "mean_field"
        Energy change of a hop a -> b with D = E_b - E_a (module docstring):
        "pair" (default) D - C_ab (n_a - n_b), the KMC's E_b - E_a - C_ab averaged over the
        other sites only (equal to it at integer occupations); "kmc" D - C_ab literally;
        "mean_field" D, the Amir-Oreg-Imry model whose fixed point is the Eq. 20 solution.
    resonance_width : float, >= 0, units of J
        Width over which the 1/|dH| divergence of the Miller-Abrahams factor at dH = 0 is
        rounded off, keeping detailed balance (``_ma_factor``); 0 is the exact factor
        (module docstring: mean-field trajectories can cross dH = 0, where it is singular).
    """

    model = "electron"
    conserves_total = True   # sum_i n_i (the Jacobian's columns sum to zero)
    row_drop = 1e-5          # default of integrate's row_drop (docs/meanfield-dynamics.md)
    # integrate's step bookkeeping (``_BDF``, docs/meanfield-dynamics.md): a factorization
    # (k x k, k ~ N) costs ~30 Newton iterations, so it is kept while c changes by 50%
    # with up to 8 iterations, and the step size is held against growth below 1.5x
    hold, lu_reuse, jac_refresh, newton_maxiter = 1.5, 0.5, False, 8

    def __init__(self, system, temperature, pairs, prefactors, site_energies=None,
                 hop_energy="pair", resonance_width=0.0):
        if not temperature > 0:
            raise ConfigError("temperature", f"must be > 0, got {temperature}")
        n = system.n_sites
        pairs = np.asarray(pairs, dtype=np.int64)
        prefactors = np.asarray(prefactors, dtype=float)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or prefactors.shape != (pairs.shape[0],):
            raise ConfigError("pairs", f"expected (P, 2) pairs and (P,) prefactors, got "
                              f"{pairs.shape} and {prefactors.shape}")
        if pairs.size and (pairs.min() < 0 or pairs.max() >= n or
                           np.any(pairs[:, 0] == pairs[:, 1])):
            raise ConfigError("pairs", f"expected distinct site indices in [0, {n}), got "
                              f"a pair outside it")
        self.system = system
        self.temperature = float(temperature)
        self.pairs = pairs
        self.prefactors = prefactors
        self.site_energies = np.asarray(system.site_energies if site_energies is None
                                        else site_energies, dtype=float)
        self.interactions = np.ascontiguousarray(system.interactions, dtype=float)
        self._symmetric = _is_symmetric(self.interactions)
        self.filling = system.filling
        if hop_energy not in HOP_ENERGIES:
            raise ConfigError("hop_energy", f"expected one of {HOP_ENERGIES}, got "
                              f"{hop_energy!r}")
        self.hop_energy = hop_energy
        if not resonance_width >= 0:
            raise ConfigError("resonance_width", f"must be >= 0, got {resonance_width}")
        self.resonance_width = float(resonance_width)
        self._a, self._b = pairs[:, 0], pairs[:, 1]
        self._c = self.interactions[self._a, self._b] if hop_energy != "mean_field" \
            else np.zeros(pairs.shape[0])
        # incidence matrix: dn/dt = M F, M[a, p] = -1, M[b, p] = +1
        p = np.arange(pairs.shape[0])
        self._incidence = scipy.sparse.csr_matrix(
            (np.concatenate([-np.ones(p.size), np.ones(p.size)]),
             (np.concatenate([self._a, self._b]), np.concatenate([p, p]))),
            shape=(n, p.size))

    def energies(self, n):
        """(N,) mean-field site energies E_i = eps_i + sum_j C_ij (n_j - K), units of J.

        kmc.model.electron_site_energies with the symmetric product (``_matvec``)."""
        q = np.asarray(n, dtype=float) - self.filling
        return self.site_energies + _matvec(self.interactions, q, self._symmetric)

    def _currents(self, n, derivative=True):
        e = self.energies(n)
        a, b = self._a, self._b
        d = e[b] - e[a]
        if self.hop_energy == "kmc":
            x_ab, x_ba = d - self._c, -d - self._c
            g_ab, dg_ab = _ma_factor(x_ab, self.temperature, self.resonance_width)
            g_ba, dg_ba = _ma_factor(x_ba, self.temperature, self.resonance_width)
        else:
            # x_ba = -x_ab: one shared evaluation of both directions
            x_ab = d - self._c * (n[a] - n[b]) if self.hop_energy == "pair" else d
            g_ab, g_ba, dg_ab, dg_ba = _ma_factor_pair(
                x_ab, self.temperature, self.resonance_width, derivative)
        w_ab, w_ba = self.prefactors * g_ab, self.prefactors * g_ba
        return a, b, w_ab, w_ba, dg_ab, dg_ba

    def rhs(self, n):
        """(N,) dn/dt, units of Gamma0."""
        n = np.asarray(n, dtype=float)
        a, b, w_ab, w_ba, _, _ = self._currents(n, derivative=False)
        flux = w_ab * n[a] * (1.0 - n[b]) - w_ba * n[b] * (1.0 - n[a])
        return self._incidence @ flux

    def _laplacian(self, n, u=None):
        """Sparse L = sum_p u_p (e_b - e_a)(e_b - e_a)^T, u_p = dF_p/dD (module docstring)."""
        a, b = self._a, self._b
        if u is None:
            _, _, _, _, dg_ab, dg_ba = self._currents(n)
            na, nb = n[a], n[b]
            u = self.prefactors * (dg_ab * na * (1.0 - nb) + dg_ba * nb * (1.0 - na))
        return scipy.sparse.coo_matrix(
            (np.concatenate([u, u, -u, -u]),
             (np.concatenate([a, b, a, b]), np.concatenate([a, b, b, a]))),
            shape=(n.size, n.size)).tocsr()

    def jacobian(self, n):
        """(N, N) dense dF_i/dn_j, units of Gamma0 (module docstring)."""
        n = np.asarray(n, dtype=float)
        a, b, w_ab, w_ba, dg_ab, dg_ba = self._currents(n)
        na, nb = n[a], n[b]
        alpha = w_ab * (1.0 - nb) + w_ba * nb          # dF_p / dn_a
        beta = -(w_ab * na + w_ba * (1.0 - na))        # dF_p / dn_b
        u = self.prefactors * (dg_ab * na * (1.0 - nb) + dg_ba * nb * (1.0 - na))
        if self.hop_energy == "pair":
            # the hop energy's own -C_ab (n_a - n_b)
            alpha = alpha - u * self._c
            beta = beta + u * self._c
        size = n.size
        jac = np.asarray(self._laplacian(n, u) @ self.interactions)
        direct = scipy.sparse.coo_matrix(
            (np.concatenate([-alpha, -beta, alpha, beta]),
             (np.concatenate([a, a, b, b]), np.concatenate([a, b, a, b]))),
            shape=(size, size)).toarray()
        return jac + direct

    def bias_response(self, n):
        """(N, N) dF_i/deps_j = L (the Laplacian of the jacobian; dE/deps = 1).

        The drive of the linearized pulse: d dn/dt = jacobian dn + bias_response (F g).
        """
        return self._laplacian(np.asarray(n, dtype=float)).toarray()

    def observables(self, n):
        """(energy, excitations) of the product state with occupations ``n``.

        energy = <H> = H(<n>) exactly (C_ii = 0), units of J; excitations = sum of n_i over
        the sites outside the M of lowest mean-field E_i (the KMC's Aufbau count, ties by
        index), i.e. the expected number of electrons above the Aufbau filling.
        """
        n = np.asarray(n, dtype=float)
        e = self.energies(n)
        order = np.argsort(e, kind="mergesort")
        exc = float(n[order[self.system.n_electrons:]].sum())
        return (electron_energy(n, self.site_energies, self.interactions, self.filling), exc)


@dataclass(frozen=True)
class Trajectory:
    """Mean-field trajectory on a time grid.

    times : (n_times,) float; states : (n_times, N) float, m_i(t) or n_i(t)
    energy, excitations : (n_times,) float (``observables`` of each state)
    n_steps : int, accepted integrator steps; nfev, njev, nlu : right-hand-side and
        Jacobian evaluations, LU factorizations (summed over the segments of a protocol)
    n_rejected, n_newton_failed : int, steps rejected by the error test and Newton
        iterations that did not converge (``_BDF`` only, else 0)
    success : bool; message : str (the integrator's, of the failing segment if any)
    """

    times: np.ndarray
    states: np.ndarray
    energy: np.ndarray
    excitations: np.ndarray
    n_steps: int
    nfev: int
    njev: int
    nlu: int
    success: bool
    message: str
    n_rejected: int = 0
    n_newton_failed: int = 0


def integrate(model, x0, times, rtol=1e-6, atol=1e-9, method="BDF", jacobian="analytic",
              pulse_model=None, waiting_time=0.0, row_drop=None, hold=None, lu_reuse=None,
              jac_refresh=None, newton_maxiter=None):
    """Integrate the mean-field rate equation of ``model`` and sample it on ``times``.

    Parameters
    ----------
    model : TLSMeanField or ElectronMeanField
        The dynamics after t = 0.
    x0 : (N,) float
        Initial m_i (TLS, in [-1, 1]) or n_i (electron, in [0, 1]).
    times : (n_times,) float, ascending, > 0
        Sampling grid (DynamicsParams.times()), units of 1/(a J^3) or 1/Gamma0.
    rtol, atol : float
        Integrator tolerances (relative, and absolute per site).
    method : "BDF" or "Radau"
        Implicit scheme of scipy.integrate.solve_ivp.
    jacobian : "analytic" or "numerical"
        The model's analytic Jacobian, or scipy's finite differences (the slow reference
        the benchmark compares against).
    pulse_model, waiting_time
        Pulse protocol: integrate ``pulse_model`` (the same system with the extra bias)
        for ``waiting_time`` from x0 first; its end state starts the sampled segment.
    row_drop : float, >= 0, or None
        BDF only: Newton matrices keep only the rows of I - c J whose off-diagonal l1 norm
        exceeds row_drop times the diagonal (``_row_sparse_newton``); 0 is the dense LU
        of the whole matrix (the reference). None: the model's ``row_drop`` (TLS 1e-3;
        electron 1e-5, with 1e-3 the N = 1000 electron quench stalls at t > 1e10,
        docs/meanfield-dynamics.md).
    hold, lu_reuse : float or None
        BDF only: keep the step size when scipy would grow it by less than ``hold``
        (> 1; 1 = scipy's rule) and the factorized Newton matrix while c = h / alpha
        changes by at most ``lu_reuse`` (relative; 0 = scipy's rule); see ``_BDF``.
        None: the model's (docs/meanfield-dynamics.md).

    Returns
    -------
    Trajectory
    """
    if method not in METHODS:
        raise ConfigError("method", f"expected one of {METHODS}, got {method!r}")
    if row_drop is None:
        row_drop = model.row_drop
    control = dict(hold=model.hold if hold is None else float(hold),
                   lu_reuse=model.lu_reuse if lu_reuse is None else float(lu_reuse),
                   jac_refresh=model.jac_refresh if jac_refresh is None else bool(jac_refresh),
                   newton_maxiter=(model.newton_maxiter if newton_maxiter is None
                                   else int(newton_maxiter)))
    for key, low in (("hold", 1.0), ("lu_reuse", 0.0), ("newton_maxiter", 2)):
        if not control[key] >= low:
            raise ConfigError(key, f"must be >= {low}, got {control[key]}")
    if jacobian not in ("analytic", "numerical"):
        raise ConfigError("jacobian", f"expected 'analytic' or 'numerical', got {jacobian!r}")
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size == 0 or times[0] <= 0 or np.any(np.diff(times) <= 0):
        raise ConfigError("times", "expected an ascending grid of positive times")
    x = np.asarray(x0, dtype=float)
    totals = dict(n_steps=0, nfev=0, njev=0, nlu=0, n_rejected=0, n_newton_failed=0)
    states = np.full((times.size, x.size), np.nan)
    ok, message = True, "finished"
    if pulse_model is not None and waiting_time > 0:
        ok, message, end = _run(pulse_model, x, float(waiting_time), None, None, rtol, atol,
                                method, jacobian, totals, row_drop, control)
        x = end
    if ok:
        ok, message, _ = _run(model, x, float(times[-1]), times, states, rtol, atol, method,
                              jacobian, totals, row_drop, control)
    obs = np.full((times.size, 2), np.nan)
    if ok:
        obs = np.array([model.observables(s) for s in states])
    return Trajectory(times, states, obs[:, 0], obs[:, 1], success=ok, message=message,
                      **totals)


def _row_sparse_newton(solver, row_drop, conserves_total=False):
    """Replace BDF's dense LU of I - c J by the LU of its strongly coupled rows only.

    Row i of I - c J is kept if its off-diagonal l1 norm exceeds ``row_drop`` times its
    diagonal; the other rows are replaced by their diagonal. With K the kept rows, the
    solve is x_i = b_i / A_ii off K, then A_KK x_K = b_K - A_K,notK x_notK (one k x k LU,
    k = |K|; "not K" means the columns outside K). Most sites are either slow at the
    current step (c r_i ||J_i|| << 1) or fast and in local equilibrium (r_i ~ e^(-E/T)
    small next to lambda_i), so k << N.
    This changes only the matrix of the Newton iteration (a modified Newton method, whose
    contraction factor is of order row_drop): the converged step solves the same
    implicit equations with the exact right-hand side, to the same Newton tolerance.

    ``conserves_total`` (the electron glass, whose Jacobian's columns sum to zero): the
    exact Newton increment x = A^-1 b has sum(x) = sum(b) (1^T A = 1^T), the truncated
    one not; the missing sum is put back with weights 1 / |A_ii| (the dropped rows'
    error is (their off-diagonal terms) / A_ii). The Newton fixed point is unchanged, and
    the converged step keeps sum_i n_i to rounding instead of to the Newton tolerance:
    the projection of ``_run`` then moves each site by ~1e-13 instead of ~1e-10 per step
    (N = 1000 electron glass near its stationary state).

    Electron glass: with row_drop = 1e-3 the N = 1000 quench stalls at t > 1e10 (BDF at
    order 1, 2 of 3 Newton iterations failing, thousands of steps per decade; from the
    stationary end state: > 650 steps to t = 5e10 against 24 steps to 1e12 with the
    dense LU or row_drop <= 1e-5), hence the electron default 1e-5.
    """
    def lu(a):
        if isinstance(a, _LazyJacobian):
            d, active, block, coupling, row_scale = a.newton_blocks(row_drop)
        else:
            d, active, block, coupling, row_scale = _dense_newton_blocks(np.array(a),
                                                                         row_drop)
        solver.nlu += 1
        factor = None
        if active.size:
            # LAPACK directly: scipy.linalg's lu_factor / lu_solve wrappers (batching,
            # checks) cost as much as a solve at the TLS glass's small k, called
            # ~50 000 times per run; the results are the same getrf / getrs calls
            lu, piv, _ = _GETRF(block, overwrite_a=True)
            factor = (lu, piv)
        weights = None
        if conserves_total:
            weights = 1.0 / np.abs(d)
            weights /= weights.sum()
        return d, active, factor, coupling, row_scale, weights

    def solve_lu(factors, b):
        d, active, factor, coupling, row_scale, weights = factors
        x = b / d
        if factor is not None:
            rhs = b[active]
            if coupling is not None:
                # A_K,notK x_notK as (rows K of A) times x with its K entries zeroed
                masked = x.copy()
                masked[active] = 0.0
                rhs -= row_scale * (coupling @ masked)
            x[active] = _GETRS(*factor, rhs, overwrite_b=True)[0]
        if weights is not None:
            x += (b.sum() - x.sum()) * weights
        return x

    solver.lu, solver.solve_lu = lu, solve_lu


class _LazyJacobian:
    """A Jacobian J and the Newton matrix I - c J, formed only when factorized.

    BDF forms ``self.I - c * J`` before each LU; with this object (numpy defers to it
    through ``__array_ufunc__ = None``) that costs O(1) instead of O(N^2), and the LU of
    ``_row_sparse_newton`` reads the structure of J (subclasses give ``newton_blocks``).
    """

    __array_ufunc__ = None

    def __init__(self, evaluation, size, scale=1.0):
        self.evaluation, self.scale = evaluation, scale
        self.shape = (size, size)

    def __rmul__(self, c):
        return type(self)(self.evaluation, self.shape[0], self.scale * float(c))

    __mul__ = __rmul__

    def __rsub__(self, identity):
        return self           # always I - c J: BDF subtracts from its identity only


class _StructuredJacobian(_LazyJacobian):
    """TLS: J = diag(diag) + diag(rows) J_couplings, ``evaluation`` = (diag, rows,
    couplings, row l1 norms of the couplings); the row-sparse blocks are read from it
    in O(k N)."""

    def newton_blocks(self, row_drop):
        """(d, K, A_KK, R, s) of A = I - c J: the off-diagonal rows K of A are diag(s) R
        (R = None if K is all rows; ``_row_sparse_newton``)."""
        diag, rows, couplings, row_norms = self.evaluation
        c = self.scale
        d = 1.0 - c * diag
        active = np.flatnonzero(c * np.abs(rows) * row_norms > row_drop * np.abs(d))
        scale = -c * rows[active]
        if active.size == d.size:
            block, coupling = scale[:, None] * couplings, None
        else:
            coupling = couplings[active]          # rows first: a contiguous copy
            block = scale[:, None] * coupling[:, active]
        block[np.diag_indices_from(block)] += d[active]
        return d, active, block, coupling, scale


def _dense_newton_blocks(a, row_drop):
    """(d, K, A_KK, rows K of ``a``, 1.0) of a dense Newton matrix ``a``, K the
    rows kept by ``_row_sparse_newton``."""
    d = np.diag(a).copy()
    off = np.abs(a).sum(axis=1) - np.abs(d)
    active = np.flatnonzero(off > row_drop * np.abs(d))
    coupling = a[active]
    block = coupling[:, active]
    return d, active, block, coupling, 1.0


class _DenseJacobian(_LazyJacobian):
    """A dense (N, N) J, ``evaluation`` = (J, diag(J), off-diagonal row l1 norms of J);
    the Newton matrix is formed at factorization, on its kept rows only."""

    def newton_blocks(self, row_drop):
        """(d, K, A_KK, R, s) of A = I - c J: the off-diagonal rows K of A are s R
        (R = None if K is all rows; ``_row_sparse_newton``).

        The off-diagonal norms of A are |c| times those of J, computed once per J."""
        jac, diag, off = self.evaluation
        c = self.scale
        d = 1.0 - c * diag
        active = np.flatnonzero(abs(c) * off > row_drop * np.abs(d))
        if active.size == d.size:
            block, coupling = -c * jac, None
        else:
            coupling = jac[active]                # rows first: a contiguous copy
            block = -c * coupling[:, active]
        block[np.diag_indices_from(block)] = d[active]
        return d, active, block, coupling, -c


def _lazy_jacobian(solver, model):
    """Give a BDF solver the model's Jacobian as a ``_LazyJacobian``."""
    if hasattr(model, "jacobian_factors"):
        norms = np.abs(model.couplings).sum(axis=1)

        def evaluate(y):
            return _StructuredJacobian((*model.jacobian_factors(y), model.couplings, norms),
                                       y.size)
    else:
        def evaluate(y):
            jac = model.jacobian(y)
            diag = np.diag(jac).copy()
            off = np.abs(jac).sum(axis=1) - np.abs(diag)
            return _DenseJacobian((jac, diag, off), y.size)

    def jac(t, y):
        solver.njev += 1
        return evaluate(y)

    solver.jac = jac
    solver.J = evaluate(solver.y)
    solver.LU = None


class _BDF(scipy.integrate.BDF):
    """scipy's BDF with changes of its step and factorization bookkeeping only.

    ``_step_impl`` is scipy 1.17's (scipy.integrate._ivp.bdf, BSD licence) with the
    formulas, the error estimate and test, the order selection and the Newton
    convergence test unchanged, and (docs/meanfield-dynamics.md, section Integrator):

    - ``hold`` (> 1): after an accepted step at which scipy would change the step size
      by a factor in [1, hold) without changing the order, keep it (CVODE's rule, its
      threshold 1.5): scipy changes h after every order + 1 steps, and every change
      costs a new factorization of the Newton matrix I - c J (c = h / alpha_k).
    - ``lu_reuse`` (> 0): keep the factorization of I - c_LU J while
      |c / c_LU - 1| <= lu_reuse and solve the Newton system with it, the increment
      scaled by 2 / (1 + c / c_LU) (CVODE, which uses 0.3). On the stiff modes the exact
      increment is c_LU / c times that of the old matrix, on the others equal to it; the
      scaled increment contracts by |c - c_LU| / (c + c_LU) (<= 0.2 at 0.5). This is a
      modified Newton iteration with the same convergence test: a converged step solves
      the same implicit equations to the same tolerance. A Newton failure with a reused
      factorization refactorizes at the current c before the Jacobian is re-evaluated
      or the step halved. After an error-test failure the factorization is kept
      whatever the new c, as scipy does.
    - ``newton_maxiter``: Newton iterations before a failure (scipy: 4); the safety
      factor of the step-size choice counts at most 4 of them.
    - ``jac_refresh``: re-evaluate the Jacobian (at the predicted state) before every
      factorization, not only after a Newton failure.

    With hold = 1, lu_reuse = 0, jac_refresh False, newton_maxiter = 4 ``_run`` uses
    scipy's class itself. ``n_rejected`` counts steps rejected by the error test,
    ``n_newton_failed`` Newton iterations that did not converge.
    """

    hold = 1.0
    lu_reuse = 0.0
    jac_refresh = False
    newton_maxiter = 4

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.n_rejected = 0
        self.n_newton_failed = 0
        self.c_lu = None       # c of the current factorization

    def _step_impl(self):
        from scipy.integrate._ivp.bdf import (MAX_FACTOR, MAX_ORDER, MIN_FACTOR,
                                              NEWTON_MAXITER, change_D)
        from scipy.integrate._ivp.common import norm
        t = self.t
        D = self.D

        max_step = self.max_step
        min_step = 10 * np.abs(np.nextafter(t, self.direction * np.inf) - t)
        if self.h_abs > max_step:
            h_abs = max_step
            change_D(D, self.order, max_step / self.h_abs)
            self.n_equal_steps = 0
        elif self.h_abs < min_step:
            h_abs = min_step
            change_D(D, self.order, min_step / self.h_abs)
            self.n_equal_steps = 0
        else:
            h_abs = self.h_abs

        atol, rtol, order = self.atol, self.rtol, self.order
        alpha, gamma, error_const = self.alpha, self.gamma, self.error_const
        J = self.J
        LU = self.LU
        c_lu = self.c_lu
        current_jac = self.jac is None

        step_accepted = rejected = False
        while not step_accepted:
            if h_abs < min_step:
                return False, self.TOO_SMALL_STEP

            h = h_abs * self.direction
            t_new = t + h
            if self.direction * (t_new - self.t_bound) > 0:
                t_new = self.t_bound
                change_D(D, order, np.abs(t_new - t) / h_abs)
                self.n_equal_steps = 0

            h = t_new - t
            h_abs = np.abs(h)
            y_predict = np.sum(D[:order + 1], axis=0)
            scale = atol + rtol * np.abs(y_predict)
            psi = np.dot(D[1: order + 1].T, gamma[1: order + 1]) / alpha[order]

            converged = False
            c = h / alpha[order]
            while not converged:
                if (LU is not None and not rejected
                        and abs(c / c_lu - 1.0) > self.lu_reuse):
                    LU = None
                if LU is None:
                    if self.jac_refresh and not current_jac:
                        J = self.jac(t_new, y_predict)
                        current_jac = True
                    LU, c_lu = self.lu(self.I - c * J), c
                # 1 for a current factorization, and scipy's 1 after a rejection
                weight = 2.0 / (1.0 + c / c_lu) if self.lu_reuse > 0 else 1.0
                converged, n_iter, y_new, d = _solve_bdf_system(
                    self.fun, t_new, y_predict, c, psi, LU, self.solve_lu, scale,
                    self.newton_tol, weight, self.newton_maxiter)
                rejected = False
                if not converged:
                    self.n_newton_failed += 1
                    if c_lu != c:
                        LU = None                   # first the factorization at this c
                        continue
                    if current_jac:
                        break
                    J = self.jac(t_new, y_predict)
                    LU = None
                    current_jac = True

            if not converged:
                factor = 0.5
                h_abs *= factor
                change_D(D, order, factor)
                self.n_equal_steps = 0
                continue

            # scipy's safety factor; iterations beyond its 4 are the price of a reused
            # factorization (newton_maxiter), not a sign of too long a step
            safety = (0.9 * (2 * NEWTON_MAXITER + 1)
                      / (2 * NEWTON_MAXITER + min(n_iter, NEWTON_MAXITER)))
            scale = atol + rtol * np.abs(y_new)
            error = error_const[order] * d
            error_norm = norm(error / scale)

            if error_norm > 1:
                self.n_rejected += 1
                factor = max(MIN_FACTOR, safety * error_norm ** (-1 / (order + 1)))
                h_abs *= factor
                change_D(D, order, factor)
                self.n_equal_steps = 0
                # scipy keeps the factorization after an error-test failure whatever
                # the new c; so does this (scaled if lu_reuse > 0), refactorizing if
                # Newton then fails
                rejected = True
            else:
                step_accepted = True

        self.n_equal_steps += 1
        self.t = t_new
        self.y = y_new
        self.h_abs = h_abs
        self.J = J
        self.LU = LU
        self.c_lu = c_lu

        D[order + 2] = d - D[order + 1]
        D[order + 1] = d
        for i in reversed(range(order + 1)):
            D[i] += D[i + 1]

        if self.n_equal_steps < order + 1:
            return True, None

        if order > 1:
            error_m_norm = norm(error_const[order - 1] * D[order] / scale)
        else:
            error_m_norm = np.inf
        if order < MAX_ORDER:
            error_p_norm = norm(error_const[order + 1] * D[order + 2] / scale)
        else:
            error_p_norm = np.inf

        error_norms = np.array([error_m_norm, error_norm, error_p_norm])
        with np.errstate(divide='ignore'):
            factors = error_norms ** (-1 / np.arange(order, order + 3))

        delta_order = np.argmax(factors) - 1
        factor = min(MAX_FACTOR, safety * np.max(factors))
        if delta_order == 0 and 1.0 <= factor < self.hold:
            return True, None          # keep h (and the factorization): CVODE's rule
        order += delta_order
        self.order = order
        self.h_abs *= factor
        change_D(D, order, factor)
        self.n_equal_steps = 0
        if self.lu_reuse <= 0:
            self.LU = None
        return True, None


def _solve_bdf_system(fun, t_new, y_predict, c, psi, LU, solve_lu, scale, tol, weight,
                      maxiter):
    """scipy's solve_bdf_system (scipy.integrate._ivp.bdf) with each increment scaled by
    ``weight`` (``_BDF.lu_reuse``; weight = 1 is scipy's iteration) and at most
    ``maxiter`` iterations (scipy: 4)."""
    from scipy.integrate._ivp.common import norm
    NEWTON_MAXITER = maxiter
    d = 0
    y = y_predict.copy()
    dy_norm_old = None
    converged = False
    for k in range(NEWTON_MAXITER):
        f = fun(t_new, y)
        if not np.all(np.isfinite(f)):
            break
        dy = solve_lu(LU, c * f - psi - d)
        if weight != 1.0:
            dy *= weight
        dy_norm = norm(dy / scale)
        rate = None if dy_norm_old is None else dy_norm / dy_norm_old
        if (rate is not None and (rate >= 1 or
                rate ** (NEWTON_MAXITER - k) / (1 - rate) * dy_norm > tol)):
            break
        y += dy
        d += dy
        if dy_norm == 0 or rate is not None and rate / (1 - rate) * dy_norm < tol:
            converged = True
            break
        dy_norm_old = dy_norm
    return converged, k + 1, y, d


def _run(model, x0, t_end, grid, out, rtol, atol, method, jacobian, totals, row_drop=0.0,
         control=None):
    """Step one implicit solver from 0 to t_end, filling out[k] = x(grid[k]).

    The solver is stepped by hand (rather than through solve_ivp) so that the accepted
    steps can be counted; grid values come from each step's dense output (the BDF or
    Radau interpolant, accurate to the step's error tolerance).
    """
    control = control or dict(hold=1.0, lu_reuse=0.0, jac_refresh=False, newton_maxiter=4)
    solver_cls = scipy.integrate.Radau
    if method == "BDF":
        # scipy's own BDF unless the step or factorization bookkeeping changes
        tuned = (control["hold"] > 1.0 or control["lu_reuse"] > 0.0
                 or control["jac_refresh"] or control["newton_maxiter"] != 4)
        solver_cls = _BDF if tuned else scipy.integrate.BDF
    jac = (lambda t, y: model.jacobian(y)) if jacobian == "analytic" else None
    solver = solver_cls(lambda t, y: model.rhs(y), 0.0, x0, t_end, rtol=rtol, atol=atol,
                        jac=jac)
    if isinstance(solver, _BDF):
        solver.hold, solver.lu_reuse = control["hold"], control["lu_reuse"]
        solver.jac_refresh = control["jac_refresh"]
        solver.newton_maxiter = control["newton_maxiter"]
    if method == "BDF" and row_drop > 0:
        _row_sparse_newton(solver, row_drop, model.conserves_total)
        if jacobian == "analytic":
            _lazy_jacobian(solver, model)
    total = float(np.sum(x0))
    k, steps, message = 0, 0, "finished"
    while solver.status == "running":
        message = solver.step()
        if solver.status == "failed":
            break
        steps += 1
        if model.conserves_total:
            # Project back onto sum_i x_i = const: BDF keeps linear invariants only up to
            # the rounding of c f (c = h/alpha reaches 1e12 at late times, and the net
            # pair currents are differences of large one-way currents), which otherwise
            # accumulates into a particle-number drift of ~1e-8 over 14 decades.
            shift = (total - float(np.sum(solver.y))) / solver.y.size
            solver.y += shift
            if method == "BDF":
                solver.D[0] += shift
        if grid is not None and k < grid.size and grid[k] <= solver.t:
            interp = solver.dense_output()
            while k < grid.size and grid[k] <= solver.t:
                out[k] = interp(grid[k])
                if model.conserves_total:
                    out[k] += (total - out[k].sum()) / out[k].size
                k += 1
    totals["n_steps"] += steps
    totals["nfev"] += int(solver.nfev)
    totals["njev"] += int(solver.njev)
    totals["nlu"] += int(solver.nlu)
    totals["n_rejected"] += getattr(solver, "n_rejected", 0)
    totals["n_newton_failed"] += getattr(solver, "n_newton_failed", 0)
    ok = solver.status == "finished"
    return ok, ("finished" if ok else str(message)), solver.y.copy()


@dataclass(frozen=True)
class StationaryState:
    """Fixed point of a mean-field rate equation found by Newton's method.

    state : (N,) float; converged : bool (max |rhs| <= tol); residual : float, max |rhs|
    (units of a J^3 or Gamma0); iterations : int
    """

    state: np.ndarray
    converged: bool
    residual: float
    iterations: int


def stationary_state(model, x0, tol=1e-14, max_iter=50):
    """Newton's method on rhs(x) = 0 from ``x0`` (e.g. the end of a trajectory).

    For the electron glass the Jacobian is singular (its columns sum to zero); one of its
    rows is replaced by sum_i dn_i = 0 so that the particle number of ``x0`` is kept.
    Steps are halved while they do not reduce max |rhs|. Non-convergence is a status.

    Parameters
    ----------
    model : TLSMeanField or ElectronMeanField
    x0 : (N,) float
    tol : float, threshold on max |rhs|
    max_iter : int

    Returns
    -------
    StationaryState
    """
    x = np.asarray(x0, dtype=float).copy()
    f = model.rhs(x)
    res = float(np.max(np.abs(f)))
    it = 0
    while res > tol and it < max_iter:
        jac = model.jacobian(x)
        g = -f
        if model.model == "electron":
            jac[-1, :] = 1.0
            g = g.copy()
            g[-1] = 0.0
        try:
            step = np.linalg.solve(jac, g)
        except np.linalg.LinAlgError:
            break
        it += 1
        scale = 1.0
        while scale > 1e-6:
            trial = x + scale * step
            f_trial = model.rhs(trial)
            res_trial = float(np.max(np.abs(f_trial)))
            if res_trial < res:
                break
            scale *= 0.5
        else:
            break
        x, f, res = trial, f_trial, res_trial
    return StationaryState(x, res <= tol, res, it)
