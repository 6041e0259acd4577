"""Linearized mean-field dynamics: rate matrices and their spectra (relaxation rates).

``kmc.solvers.linear.tls``
    TLS glass: rates of Eq. 12 and the full matrix B = -diag(lambda) + f of Appendix B,
    the exact Jacobian of the mean-field rate equation (Eq. 11) at its fixed point.
``kmc.solvers.linear.electron``
    Electron glass: the linearized master-equation matrix A of Eqs. 22-23, its spectrum by
    detailed-balance symmetrization, the bare distance matrix of Fig. 16 and Eq. A2.
``kmc.solvers.linear.spectrum``
    ``SpectrumResult``, the common result type (rates, zero mode, status counts).

All functions take plain arrays (mean-field fields or energies, chemical potential) plus the
system object, so they do not depend on how the mean-field solution was obtained.
"""
from kmc.solvers.linear.electron import (distance_matrix_spectrum, electron_rate_matrix, electron_spectrum,
                       electron_symmetric_matrix,
                       equilibrium_pair_currents, fermi_occupations,
                       nn_distance_estimate)
from kmc.solvers.linear.spectrum import SpectrumResult
from kmc.solvers.linear.tls import (RateFixedPoint, tls_rate_equation, tls_rate_fixed_point, tls_rate_matrix,
                  tls_rates, tls_spectrum)

__all__ = [
    "RateFixedPoint", "SpectrumResult", "distance_matrix_spectrum", "electron_rate_matrix",
    "electron_spectrum", "electron_symmetric_matrix", "equilibrium_pair_currents", "fermi_occupations", "nn_distance_estimate",
    "tls_rate_equation", "tls_rate_fixed_point", "tls_rate_matrix", "tls_rates",
    "tls_spectrum",
]
