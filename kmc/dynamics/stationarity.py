"""Is the prepared state of the response protocol stationary over the window?

The twin subtraction removes what the prepared state does on its own only to first order:
from a start that is not stationary, the change of the rates under the pulse adds a
first-order term to P(t) (docs/linear-response.md, "Limits of the linearization"). So the
state is aged until its own drift over the observation window is measured negligible
(docs/model.md section 4). The drift is the twin ensemble's change of the observable from
the first to the last sampled time; it is compared with the response signal, the largest
|twin difference| over the grid:

- negligible: |D| + Z SE_D <= tolerance * signal (the Z-SE upper bound of the drift is a
  small fraction of the signal; Z = ``DRIFT_Z``);
- drifting: not negligible, and |D| > Z SE_D (a resolved drift that cannot be bounded
  below the tolerance: aging longer helps);
- otherwise unresolved: no resolved drift, but the replicas cannot bound it below the
  tolerance (more replicas help, longer aging does not).
"""
from dataclasses import dataclass

import numpy as np

from kmc.statistics import mean_sem

# Standard errors of the drift bound (two: a one-sided 97.7 % bound for Gaussian errors).
DRIFT_Z = 2.0


def twin_drift(values):
    """Drift of the prepared state over the window, from the twin ensemble alone.

    Parameters
    ----------
    values : (R, T) float
        Per-replica observable of the twin (energy, or a projection) on the time grid.

    Returns
    -------
    drift, stderr : float
        mean_r [v_r(t_last) - v_r(t_first)] and its standard error over replicas.
    """
    v = np.asarray(values, dtype=float)
    mean, se = mean_sem(v[:, -1] - v[:, 0])
    return float(mean), float(se)


@dataclass(frozen=True)
class DriftCheck:
    """The twin's drift of one observable against the response signal (module doc).

    name : str, the observable ("projection" or "energy")
    drift, stderr : float, ``twin_drift`` of the twin ensemble (units of the observable)
    signal : float, max over the grid of |mean_r (perturbed_r - twin_r)|
    tolerance : float, accepted drift as a fraction of the signal
    """

    name: str
    drift: float
    stderr: float
    signal: float
    tolerance: float

    @property
    def negligible(self):
        """The Z-SE upper bound of |drift| is at most tolerance * signal."""
        return bool(abs(self.drift) + DRIFT_Z * self.stderr <= self.tolerance * self.signal)

    @property
    def drifting(self):
        """Not negligible, and a drift resolved beyond Z SE."""
        return bool(not self.negligible and abs(self.drift) > DRIFT_Z * self.stderr)

    def describe(self):
        """One line: drift +- SE against the signal, and the verdict."""
        verdict = ("negligible" if self.negligible else
                   "drifting" if self.drifting else "unresolved (more replicas)")
        return (f"twin {self.name} drift {self.drift:.3g} +- {self.stderr:.3g} against "
                f"signal {self.signal:.3g} (tolerance {self.tolerance:g}): {verdict}")


def check_drift(name, perturbed, twin, tolerance):
    """DriftCheck of one observable.

    Parameters
    ----------
    name : str
    perturbed, twin : (R, T) float, the per-replica observable of both ensembles
    tolerance : float, > 0
    """
    drift, se = twin_drift(twin)
    diff = np.asarray(perturbed, dtype=float) - np.asarray(twin, dtype=float)
    signal = float(np.max(np.abs(diff.mean(axis=0))))
    return DriftCheck(name, drift, se, signal, float(tolerance))
