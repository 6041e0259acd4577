"""Linearized mean-field dynamics of the electron glass (Eqs. 21-23, Appendix A).

Equilibrium pair currents
-------------------------
With mean-field energies E_i and chemical potential mu, n0_i = f(E_i) and 1 - n0_i
(``model.fermi`` and ``model.fermi_holes``, each to full relative precision in its tail) and
the equilibrium current from i to j is (Eq. 21)

    gamma0_ij = n0_i (1 - n0_j) Gamma0 e^(-r_ij/xi) [n_B(|E_j - E_i|) + Theta(E_i - E_j)].

The energy change of the hop is the mean-field difference E_j - E_i, as in Eq. 21 and Amir,
Oreg, Imry (2008); the electron-hole attraction -e^2/r_ij that the kinetic Monte Carlo adds
(``model.electron_hop_energy``) is not part of the mean-field linearization. With it, detailed
balance gives gamma0_ij = gamma0_ji, which ``equilibrium_pair_currents`` verifies.

Linearized master equation (Eqs. 22-23)
---------------------------------------
Linearizing dn_i/dt = sum_k [w_ki n_k (1 - n_i) - w_ik n_i (1 - n_k)] in dn at fixed energies:

    A = G D^-1,  G_ij = gamma0_ij (i != j),  G_ii = -sum_k gamma0_ik,  D = diag(n0 (1 - n0)),

so A_ij = gamma0_ij / (n0_j (1 - n0_j)) and A_jj = -sum_k A_kj (Eq. 23 without its second
term). G is symmetric, so A is similar to S = D^-1/2 G D^-1/2: real eigenvalues, one zero
(particle number; null vector sqrt(D) 1 of S, D 1 of A), the rest negative.

Pair set
--------
Every function building gamma0 takes an optional ``pairs``, the (P, 2) unordered pairs
(a < b) of the hops allowed, e.g. the kinetic Monte Carlo's
``kmc.dynamics.electron_engine.hop_pairs(distances, cutoff)``: gamma0_ij is then zero for
every other pair, so that the linearization, the mean-field dynamics and the KMC use one set
of processes (docs/model.md section 2). None (the default) keeps all pairs.
``dropped_pair_rates`` and ``check_hop_cutoff`` measure what a cut-off drops.

Interaction term
----------------
When the energies respond to the occupations, dE_i = sum_j C_ij dn_j (C_ij = e^2/r_ij), the
pair current responds to the electrochemical-potential difference and the exact Jacobian of
the mean-field master equation is

    A_jac = G (D^-1 + C / T)                         (interaction_term="jacobian")

(similar to a symmetric matrix when the mean-field Hessian D^-1 + C/T is positive definite,
i.e. at a stable fixed point; a positive eigenvalue flags a saddle). The paper's Eq. 23 term,
-sum_{k != i, j} e^2 gamma0_ik / T (1/r_ij - 1/r_jk), is A_jac without its k = j summand
-gamma0_ij C_ij / T in each off-diagonal element (the diagonal again from column sums):

    A_eq23 = A_jac + (gamma0 * C) / T off the diagonal   (interaction_term=True or "eq23").

Both are nonsymmetric; their spectra are computed with the general eigensolver (LAPACK geev)
and the real parts are reported with the largest |imaginary part|.
"""
import math

import numpy as np
import scipy.linalg

from kmc import model
from kmc.errors import ConfigError
from kmc.solvers.linear.spectrum import split_spectrum

# Relative asymmetry |g_ij - g_ji| / max(g_ij, g_ji) tolerated in gamma0 (detailed balance
# holds exactly; the residue is rounding in n_B and the Fermi factors, ~1e-15).
SYMMETRY_RTOL = 1e-8


def fermi_occupations(energies, mu, temperature):
    """(n0, 1 - n0) of the Fermi function f(E) = 1 / (e^((E - mu)/T) + 1).

    ``model.fermi`` and ``model.fermi_holes``: the one Fermi function of the package
    (``model.fermi_factor``), each value to full relative precision. The linearization
    divides by n0 (1 - n0), so it needs both tails to relative precision; computing
    1 - n0 by subtraction would lose it.

    Returns
    -------
    n0, holes : (N,) float
    """
    return model.fermi(energies, mu, temperature), model.fermi_holes(energies, mu, temperature)


def pair_mask(n_sites, pairs=None):
    """(N, N) bool, True on the allowed hop pairs (both orders), False on the diagonal.

    Parameters
    ----------
    n_sites : int
    pairs : (P, 2) int or None
        Unordered pairs (a, b); None allows every pair of distinct sites.
    """
    if pairs is None:
        return ~np.eye(n_sites, dtype=bool)
    pairs = np.asarray(pairs, dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or np.any(pairs < 0) \
            or np.any(pairs >= n_sites) or np.any(pairs[:, 0] == pairs[:, 1]):
        raise ValueError(f"pairs: expected (P, 2) distinct site indices in [0, {n_sites}), "
                         f"got shape {pairs.shape}")
    mask = np.zeros((n_sites, n_sites), dtype=bool)
    mask[pairs[:, 0], pairs[:, 1]] = True
    mask[pairs[:, 1], pairs[:, 0]] = True
    return mask


def equilibrium_pair_currents(energies, mu, distances, xi, temperature, gamma0=1.0,
                              pairs=None):
    """Equilibrium Miller-Abrahams pair currents gamma0_ij (Eq. 21), symmetric.

    Parameters
    ----------
    energies : (N,) float, units of J
        Mean-field site energies E_i (Eq. 20).
    mu : float, units of J
        Chemical potential.
    distances : (N, N) float, units of r_nn
    xi : float, units of r_nn
        Localization length.
    temperature : float, units of J
    gamma0 : float
        Rate prefactor Gamma0.
    pairs : (P, 2) int or None
        Allowed hop pairs (module docstring, "Pair set"); None = all pairs.

    Returns
    -------
    (N, N) float, units of Gamma0
        gamma0_ij with zero diagonal (and zero off the pair set), symmetrized after the
        check below.

    Raises
    ------
    ValueError
        If an off-diagonal current is not finite (two equal energies) or detailed balance
        fails beyond SYMMETRY_RTOL.
    """
    e = np.asarray(energies, dtype=float)
    n0, holes = fermi_occupations(e, mu, temperature)
    delta_e = e[None, :] - e[:, None]       # [i, j]: E_j - E_i, energy cost of a hop i -> j
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        w = model.miller_abrahams_rates(delta_e, distances, xi, temperature, gamma0)
        g = n0[:, None] * holes[None, :] * w
    g[~pair_mask(e.size, pairs)] = 0.0
    if not np.all(np.isfinite(g)):
        i, j = np.argwhere(~np.isfinite(g))[0]
        raise _equal_energies(i, j)
    gt = g.T
    asym = np.abs(g - gt)
    if np.any(asym > SYMMETRY_RTOL * np.maximum(g, gt)):
        worst = float(np.max(asym / np.where(np.maximum(g, gt) > 0, np.maximum(g, gt), 1.0)))
        raise ValueError(f"gamma0: detailed balance violated, relative asymmetry {worst:.3g} "
                         f"> {SYMMETRY_RTOL}")
    return 0.5 * (g + gt)


def _equal_energies(i, j):
    """One-line error (a ConfigError, so it crosses worker processes and the command line
    prints it as one line): the linearization is undefined, not a numerical accident."""
    return ConfigError("linear", f"sites {i} and {j} have equal mean-field energies, where "
                                 "the equilibrium Miller-Abrahams current (Eq. 21) diverges; "
                                 "the linearized rates need distinct energies "
                                 "(disorder.W > 0)")


def _occupation_weights(energies, mu, temperature):
    n0, holes = fermi_occupations(energies, mu, temperature)
    d = n0 * holes
    if np.any(d <= 0.0):
        raise ValueError("temperature: n0 (1 - n0) underflows to 0 for some site "
                         f"(|E - mu| / T up to {np.max(np.abs(energies - mu)) / temperature:.3g})")
    return d


def _laplacian(currents):
    g = currents.copy()
    g[np.diag_indices_from(g)] = -currents.sum(axis=1)
    return g


def electron_rate_matrix(system, energies, mu, temperature, xi, gamma0=1.0,
                         interaction_term=False, pairs=None):
    """Linearized rate matrix A of Eqs. 22-23 (d dn/dt = A dn).

    Parameters
    ----------
    system : ElectronSystem
    energies : (N,) float, units of J
        Mean-field site energies E_i (not shifted by mu).
    mu : float
        Chemical potential, units of J.
    temperature, xi, gamma0 : float
    interaction_term : {False, True, "eq23", "jacobian"}
        False: A = G D^-1 (the paper's choice for Figs. 9-15). True / "eq23": with the
        second term of Eq. 23 as printed. "jacobian": the exact Jacobian G (D^-1 + C/T)
        (module docstring).
    pairs : (P, 2) int or None
        Allowed hop pairs (module docstring, "Pair set"); None = all pairs.

    Returns
    -------
    (N, N) float, units of Gamma0
        Column sums are zero (particle-number conservation).
    """
    gam = equilibrium_pair_currents(energies, mu, system.distances, xi, temperature, gamma0,
                                    pairs)
    d = _occupation_weights(energies, mu, temperature)
    lap = _laplacian(gam)
    a = lap / d[None, :]
    if interaction_term is False:
        return a
    c = system.interactions
    a += lap @ c / temperature
    if interaction_term in (True, "eq23"):
        extra = gam * c / temperature
        a += extra
        # The diagonal of Eq. 23 is fixed by A_jj = -sum_{k != j} A_kj.
        a[np.diag_indices_from(a)] -= extra.sum(axis=0)
    elif interaction_term != "jacobian":
        raise ValueError("interaction_term: expected False, True, 'eq23' or 'jacobian', "
                         f"got {interaction_term!r}")
    return a


def electron_spectrum(system, energies, mu, temperature, xi, gamma0=1.0,
                      interaction_term=False, vectors=False, pairs=None):
    """Relaxation rates of the electron glass: minus the nonzero eigenvalues of A.

    Without the interaction term the spectrum comes from the symmetric
    S = D^-1/2 G D^-1/2 (similar to A by detailed balance) with a symmetric eigensolver
    (LAPACK syevd); the zero mode is the eigenvalue closest to 0 and is checked against the
    exact null vector y = sqrt(D) 1 (``zero_mode_residual`` = ||S y|| / (||S|| ||y||); with
    ``vectors`` also the eigenvector overlap). With an interaction term A is not symmetric
    and the general eigensolver (geev) is used; the zero mode is checked through the
    vanishing column sums (left null vector 1).

    Parameters
    ----------
    system, energies, mu, temperature, xi, gamma0, interaction_term
        As in ``electron_rate_matrix``. Energies enter only through E - mu and through
        differences E_j - E_i, so a mean-field result's (fields, mu) and (energies, 0)
        (energies measured from mu) give the same spectrum.
    vectors : bool
        Also compute eigenvectors of S to report the zero-mode overlap (about 3x slower).
    pairs : (P, 2) int or None
        Allowed hop pairs (module docstring, "Pair set"); None = all pairs.

    Returns
    -------
    SpectrumResult
        ``rates`` (N - 1,) ascending, the zero mode excluded. ``n_positive`` > 0 means a
        positive eigenvalue: the linearization point is a saddle of the mean-field
        free energy (or, without interaction term, a numerical failure).
    """
    if interaction_term is not False:
        a = electron_rate_matrix(system, energies, mu, temperature, xi, gamma0,
                                 interaction_term, pairs)
        norm = np.max(np.abs(a).sum(axis=0))
        col_res = float(np.max(np.abs(a.sum(axis=0))) / (norm * math.sqrt(a.shape[0])))
        ev = scipy.linalg.eigvals(a, overwrite_a=True, check_finite=False)
        return split_spectrum(ev.real, True, "general", max_imag=float(np.max(np.abs(ev.imag))),
                              zero_mode_residual=col_res)
    sym, root = electron_symmetric_matrix(system, energies, mu, temperature, xi, gamma0,
                                          pairs)
    return _symmetric_conserving_spectrum(sym, root, vectors)


def electron_symmetric_matrix(system, energies, mu, temperature, xi, gamma0=1.0, pairs=None):
    """The symmetrized matrix S = D^-1/2 G D^-1/2 and the scale sqrt(D).

    A = G D^-1 = diag(root) S diag(root)^-1 (without interaction term), so e^(A t) =
    diag(root) U e^(Lambda t) U^T diag(root)^-1 with S = U Lambda U^T; ``root`` is also the
    null vector of S.

    With x_i = (E_i - mu)/T, sqrt(D_i) = 1/(2 cosh(x_i/2)) and the Fermi factors cancel:

        S_ij = Gamma0 e^(-r_ij/xi) / (2 sinh(|x_j - x_i|/2))                  (i != j)
        S_ii = -sum_k S_ik cosh(x_i/2) / cosh(x_k/2)

    evaluated in logarithms, so that sites far from mu (a close pair has E - mu ~ +-1/(2r),
    |x| of several hundred at T = 0.1) neither underflow n0 (1 - n0) nor make gamma0_ij
    subnormal (the detailed-balance check of ``equilibrium_pair_currents`` then fails on
    rounding of numbers below 1e-308).

    ``pairs`` restricts S to the allowed hop pairs (module docstring, "Pair set").

    Returns
    -------
    sym : (N, N) float, units of Gamma0
    root : (N,) float
        sqrt(n0 (1 - n0)) (0 where it underflows).
    """
    x = (np.asarray(energies, dtype=float) - mu) / temperature
    dx = 0.5 * np.abs(x[None, :] - x[:, None])
    off = pair_mask(x.size, pairs)
    if np.any(dx[off] == 0.0):
        i, j = np.argwhere((dx == 0.0) & off)[0]
        raise _equal_energies(i, j)
    # ln(2 sinh(y)) = y + ln(1 - e^(-2y)); ln cosh(y) = |y| + ln(1 + e^(-2|y|)) - ln 2
    with np.errstate(divide="ignore"):
        log_s = -np.asarray(system.distances, dtype=float) / xi - dx - np.log1p(-np.exp(-2.0 * dx))
    log_s[~off] = -np.inf
    y = 0.5 * np.abs(x)
    log_cosh = y + np.log1p(np.exp(-2.0 * y)) - math.log(2.0)
    sym = gamma0 * np.exp(log_s)
    diag = -gamma0 * np.exp(log_s + log_cosh[:, None] - log_cosh[None, :]).sum(axis=1)
    sym[np.diag_indices_from(sym)] = diag
    root = np.exp(-log_cosh - math.log(2.0))
    return sym, root


def _symmetric_conserving_spectrum(sym, null, vectors):
    residual_vec = sym @ null
    if vectors:
        ev, vec = scipy.linalg.eigh(sym, check_finite=False, driver="evd")
    else:
        ev = scipy.linalg.eigvalsh(sym, check_finite=False, driver="evd")
    scale = float(np.max(np.abs(ev)))
    # every rate underflows to 0 (T far below the level spacing): S = 0 and its null
    # vector is exact, rather than 0/0
    denominator = scale * np.linalg.norm(null)
    residual = float(np.linalg.norm(residual_vec) / denominator) if denominator > 0 else 0.0
    overlap = None
    if vectors:
        v0 = vec[:, int(np.argmin(np.abs(ev)))]
        overlap = float(abs(v0 @ null) / np.linalg.norm(null))
    return split_spectrum(ev, True, "symmetric", zero_mode_residual=residual,
                          zero_mode_overlap=overlap)


def distance_matrix_spectrum(distances, xi, vectors=False):
    """Spectrum of the bare distance matrix of Fig. 16 and Appendix A.

    A_ij = e^(-r_ij/xi) (i != j), A_jj = -sum_{k != j} A_kj: symmetric, one zero mode
    (null vector 1). Two sites at distance r: eigenvalues {0, -2 e^(-r/xi)}.

    Parameters
    ----------
    distances : (N, N) float, units of r_nn
    xi : float, units of r_nn
    vectors : bool
        Also report the zero-mode eigenvector overlap with 1.

    Returns
    -------
    SpectrumResult
        ``rates`` (N - 1,) ascending (dimensionless, units of the prefactor of e^(-r/xi)).
    """
    a = np.exp(-np.asarray(distances, dtype=float) / xi)
    np.fill_diagonal(a, 0.0)
    a[np.diag_indices_from(a)] = -a.sum(axis=0)
    return _symmetric_conserving_spectrum(a, np.ones(a.shape[0]), vectors)


# Volume of the unit ball in d dimensions (V_1 = 2, V_2 = pi, V_3 = 4 pi / 3), Eq. A1.
_UNIT_BALL = {1: 2.0, 2: math.pi, 3: 4.0 * math.pi / 3.0}


def nn_distance_estimate(x, n_sites, xi, d=2, side=None):
    """Nearest-neighbour estimate of the rate density of the distance matrix (Eqs. A1-A2).

    A site's nearest neighbour at distance r gives a pair rate 2 e^(-r/xi) (two-site
    eigenvalue), so with x = ln(lambda/2) = -r/xi the density of x follows from Eq. A1,
    p(r) = V_d d rho r^(d-1) exp(-V_d rho r^d), rho = (N - 1)/L^d:

        p(x) = xi p(r = -xi x),   x <= 0.

    For d = 2 and the paper's L = sqrt(N) - 1 this is Eq. A2 (with |x| for the paper's x),
    2 pi xi^2 |x| k exp(-pi xi^2 x^2 k), k = (sqrt(N) + 1)/(sqrt(N) - 1).

    Parameters
    ----------
    x : array_like of float
        ln(lambda / 2) (dimensionless, <= 0); the density is 0 for x > 0.
    n_sites : int
    xi : float, units of r_nn
    d : int
        Dimension (1, 2 or 3).
    side : float or None
        Box side L; None = N^(1/d) (site density 1, the package default).

    Returns
    -------
    ndarray of float
        Probability density per unit x (per unit ln lambda), normalized over x <= 0.
    """
    if d not in _UNIT_BALL:
        raise ValueError(f"d: expected 1, 2 or 3, got {d}")
    side = n_sites ** (1.0 / d) if side is None else float(side)
    rho = (n_sites - 1) / side**d
    r = -xi * np.asarray(x, dtype=float)
    r_pos = np.maximum(r, 0.0)
    vd = _UNIT_BALL[d]
    p = xi * vd * d * rho * r_pos ** (d - 1) * np.exp(-vd * rho * r_pos**d)
    return np.where(r >= 0.0, p, 0.0)


# A hop cut-off is accepted when the dropped processes could fire at most HOP_CUTOFF_MARGIN
# times per site over the whole run: max_i sum_{j: r_ij > cutoff} Gamma0 e^(-r_ij/xi) times
# t_max <= HOP_CUTOFF_MARGIN (docs/model.md section 4: one set of processes per comparison).
HOP_CUTOFF_MARGIN = 1e-2


def dropped_pair_rates(distances, cutoff, xi, gamma0=1.0):
    """Bare rates Gamma0 e^(-r/xi) of the pairs a hop cut-off drops.

    The bare rate is the Miller-Abrahams rate of a downhill hop with |dH| >> T (factor
    n_B + 1 -> 1); an uphill hop is slower by e^(-|dH|/T). Only a hop with |dH| < T is
    faster, by the factor n_B(|dH|) + Theta(-dH) ~ T/|dH| (this bound does not cover it).

    Parameters
    ----------
    distances : (N, N) float, units of r_nn
    cutoff : float, units of r_nn
        Pairs with r_ij <= cutoff are kept (``kmc.dynamics.electron_engine.hop_pairs``).
    xi, gamma0 : float

    Returns
    -------
    largest_pair : float, units of Gamma0
        The largest single dropped rate (0 when nothing is dropped).
    largest_site : float, units of Gamma0
        max_i sum_{j: r_ij > cutoff} Gamma0 e^(-r_ij/xi): the total dropped rate of the
        worst site.
    """
    r = np.asarray(distances, dtype=float)
    dropped = (r > cutoff) & ~np.eye(r.shape[0], dtype=bool)
    rates = np.where(dropped, gamma0 * np.exp(-np.where(dropped, r, 0.0) / xi), 0.0)
    return float(rates.max(initial=0.0)), float(rates.sum(axis=1).max(initial=0.0))


def check_hop_cutoff(distances, cutoff, xi, t_max, gamma0=1.0, margin=HOP_CUTOFF_MARGIN,
                     key="dynamics.hop_cutoff"):
    """Accept a hop cut-off only if the rates it drops are negligible over the run.

    Accepted when ``largest_site * t_max <= margin`` (``dropped_pair_rates``): every site's
    dropped processes then fire at most ``margin`` times (|dH| >~ T) over the observation
    window [0, t_max].

    Parameters
    ----------
    distances : (N, N) float; cutoff, xi, gamma0 : float
    t_max : float, units of 1/Gamma0
        Longest observed time.
    margin : float
        Accepted expected number of dropped hops per site over t_max (default 1e-2).
    key : str
        Dotted key named in the error.

    Returns
    -------
    float
        largest_site * t_max, the measured expected number of dropped hops per site.

    Raises
    ------
    ConfigError
        One line naming ``key``, the measured value and the cut-off the margin needs.
    """
    _, site = dropped_pair_rates(distances, cutoff, xi, gamma0)
    expected = site * t_max
    if expected > margin:
        raise ConfigError(key, f"the pairs beyond {cutoff:g} carry a dropped rate of "
                               f"{site:.3g} per site, {expected:.3g} hops per site by t_max = "
                               f"{t_max:g} (accepted <= {margin:g}); use hop_cutoff >= "
                               f"{math.ceil(1e3 * _needed_cutoff(distances, xi, gamma0, margin / t_max)) / 1e3:g} "
                               "or a shorter t_max")
    return expected


def _needed_cutoff(distances, xi, gamma0, threshold):
    """Smallest cut-off (one of the distances) whose dropped rate per site is <= threshold."""
    r = np.sort(np.asarray(distances, dtype=float), axis=1)[:, 1:]   # drop the self-distance
    rates = gamma0 * np.exp(-r / xi)
    tail = np.cumsum(rates[:, ::-1], axis=1)[:, ::-1]   # tail[i, k]: dropped if cut below r[i, k]
    need = np.where(tail > threshold, r, 0.0)
    return float(need.max())
