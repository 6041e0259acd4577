"""Slow relaxation in the TLS glass and the electron glass: mean field, linearized
dynamics, kinetic Monte Carlo and master equations (Asban, Amir, Imry, Schechter,
PRB 95, 144207 (2017)).
"""
from .systems import ElectronSystem, TLSSystem

__version__ = "0.1.0"

__all__ = ["ElectronSystem", "TLSSystem", "__version__"]
