"""Slow relaxation in the TLS glass and the electron glass: mean field, linearized
dynamics, kinetic Monte Carlo and master equations (Asban, Amir, Imry, Schechter,
PRB 95, 144207 (2017)).
"""
__version__ = "0.1.0"

from kmc.storage.results import load  # noqa: E402
from kmc.systems import ElectronSystem, TLSSystem  # noqa: E402

__all__ = ["ElectronSystem", "TLSSystem", "load", "__version__"]
