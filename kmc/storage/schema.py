"""The result-file layout: the one place that names groups, datasets and status codes.

Every module that writes or reads a result file takes its paths from here
(``docs/hdf5-layout.md`` is the human-readable form of the same schema)::

    /glassrelax                              root attributes (provenance, config, identity)
    /glassrelax/points/p0000                 one group per sweep point
        <row datasets>                       first axis R: one row per realization,
                                             written by the pipeline (``row_layout``)
        dos/edges                            fixed bin edges (``dos_edges``)
        dos/mean, dos/sem, linear/,          summaries derived from the rows by the
        dynamics/ensemble/, comparison/      analysis at the end of a run (``DERIVED``)

A row is *committed* when its ``status`` is not ``Status.PENDING``; everything else in the
row is meaningful only then. Couplings (N x N) are not stored: realization k of point p is
rebuilt from the root seed by ``build_system``, which is therefore part of the format.
"""
import json
import math
from enum import IntEnum

import numpy as np

from kmc.seeding import DISORDER, stream
from kmc.systems import ElectronSystem, TLSSystem

ROOT = "glassrelax"
POINTS = f"{ROOT}/points"
SCHEMA_VERSION = 2

# observables of the time-domain experiment stored per realization (mean and stderr)
DYNAMICS_CURVES = ("energy", "excess_energy", "excitations", "excess_excitations", "deviation")

# groups and datasets of a point written by the analysis from the rows; replaced as a whole
# every time a run finishes (they are recomputed from the committed rows, never appended)
DOS_SUMMARY = ("dos/mean", "dos/sem")
# Per-realization curves of the response protocol: the measured twin differences (paired
# replica SE) and the linear predictions for the same F, g, t_w (TLS with and without f).
_RESPONSE = ("response", "response_stderr", "energy_response", "energy_response_stderr",
             "response_predicted", "energy_response_predicted")
RESPONSE_CURVES = {"tls": _RESPONSE + ("response_predicted_no_f",
                                       "energy_response_predicted_no_f"),
                   "electron": _RESPONSE}
DERIVED_GROUPS = ("linear", "dynamics/ensemble", "comparison")


class Status(IntEnum):
    """Value of ``status[k]``: the state of realization k of a point."""

    PENDING = 0        # not computed yet (or lost in a kill before its flush)
    CONVERGED = 1      # mean field converged; used in every average
    NOT_CONVERGED = 2  # kept in the file, excluded from averages


def point_name(p):
    """Group name of sweep point ``p`` (``p0000``)."""
    return f"p{p:04d}"


def point_path(p):
    """Full path of the group of sweep point ``p``."""
    return f"{POINTS}/{point_name(p)}"


def checkpoint_dir(result_path):
    """Folder of the KMC checkpoints of the realizations of a running result file."""
    return f"{result_path}.checkpoints"


def build_system(config, seed, point, realization):
    """The disorder of realization (point, realization) of a point's RunConfig.

    Drawn from ``SeedSequence(seed, spawn_key=(point, realization, DISORDER))``: the
    pipeline builds each realization with it and ``kmc.load`` rebuilds the couplings that
    the file does not store with it, so it must never change for a schema version.
    """
    m, dis = config.model, config.disorder
    rng = stream(seed, point, realization, DISORDER)
    dtype = np.float32 if config.solver.precision == "float32" else np.float64
    if m.name == "tls":
        return TLSSystem.random(rng, m.N, m.d, W=dis.W, J=dis.J, delta0_min=dis.delta0_min,
                                delta0_max=dis.delta0_max, density=m.density, dtype=dtype)
    return ElectronSystem.random(rng, m.N, m.d, W=dis.W, J=dis.J, filling=m.filling,
                                 density=m.density, dtype=dtype)


def dos_edges(config):
    """Bin edges (B+1,) of the DOS histogram of a point, units of J.

    Fixed before any realization is solved so that every row histograms into the same
    bins: ``output.dos_range``, or automatic from W and J (TLS: +-4 sqrt(W^2 + J^2);
    electron: +-(W/2 + 5 J)).
    """
    out = config.output
    if out.dos_range:
        lo, hi = out.dos_range
    else:
        w, j = config.disorder.W, config.disorder.J
        half = 4.0 * np.hypot(w, j) if config.model.name == "tls" else w / 2.0 + 5.0 * j
        lo, hi = -half, half
    return np.linspace(lo, hi, out.dos_bins + 1)


def row_layout(config):
    """{name: (shape, dtype, fill)} of one realization's row (shape without the R axis).

    ``kmc.pipeline.realization.compute`` returns exactly these keys; the writer creates one
    dataset (R,) + shape per key and the fill value marks a row not written yet.
    """
    m = config.model
    n, d = m.N, m.d
    f8 = np.float64
    layout = {
        "status": ((), np.int8, int(Status.PENDING)), "sweeps": ((), np.int64, 0),
        "residual": ((), f8, np.nan), "mu": ((), f8, np.nan),
        "fields": ((n,), f8, np.nan), "energies": ((n,), f8, np.nan),
        "positions": ((n, d), f8, np.nan),
    }
    if m.name == "tls":
        layout.update(bias=((n,), f8, np.nan), delta0=((n,), f8, np.nan))
    else:
        layout["site_energies"] = ((n,), f8, np.nan)
    layout["dos/counts"] = ((config.output.dos_bins,), np.int64, 0)
    lin = config.linear
    if lin.enabled:
        n_rates = n if m.name == "tls" else n - 1  # the conserved mode is excluded
        layout["rates"] = ((n_rates,), f8, np.nan)
        layout["n_positive"] = ((), np.int64, -1)
        if lin.interactions:
            layout["rates_interacting"] = ((n_rates,), f8, np.nan)
            layout["n_positive_interacting"] = ((), np.int64, -1)
            if m.name == "tls":
                layout["rates_refined"] = ((n_rates,), f8, np.nan)
        if lin.distance_matrix and m.name == "electron":
            layout["rates_distance"] = ((n - 1,), f8, np.nan)
    dyn = config.dynamics
    if dyn.enabled:
        t = dyn.n_times
        for name in DYNAMICS_CURVES:
            layout[f"dynamics/{name}"] = ((t,), f8, np.nan)
            layout[f"dynamics/{name}_stderr"] = ((t,), f8, np.nan)
        layout["dynamics/occupation"] = ((t, n), f8, np.nan)
        layout["dynamics/equilibrium_occupation"] = ((n,), f8, np.nan)
        layout["dynamics/mean_field_occupation"] = ((n,), f8, np.nan)
        for name in ("equilibrium_energy", "equilibrium_excitations", "mean_field_energy",
                     "mean_field_excitations"):
            layout[f"dynamics/{name}"] = ((), f8, np.nan)
        layout["dynamics/events"] = ((), np.int64, -1)
        # (replicas, 3): events, trials, estimated events without temporal acceleration
        layout["dynamics/replica_counters"] = ((dyn.replicas, 3), f8, np.nan)
        if dyn.protocol == "response":   # docs/linear-response.md
            layout["dynamics/response_pattern"] = ((n,), f8, np.nan)
            for name in RESPONSE_CURVES[m.name]:
                layout[f"dynamics/{name}"] = ((t,), f8, np.nan)
            for name in ("twin_energy_drift", "twin_energy_drift_stderr", "twin_drift",
                         "twin_drift_stderr", "aging_time_used"):
                layout[f"dynamics/{name}"] = ((), f8, np.nan)
            layout["dynamics/aging_attempts"] = ((), np.int64, -1)
            layout["dynamics/aging_stationary"] = ((), np.int8, -1)
    return layout


# -- attributes: valid JSON, units and descriptions --------------------------------------

_NONFINITE = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}


def to_json(obj):
    """Strict JSON of ``obj`` (sorted keys): non-finite floats become the strings "inf",
    "-inf", "nan" (``json.dumps`` would write ``Infinity``, which is not JSON)."""
    return json.dumps(_finite(obj), sort_keys=True, allow_nan=False)


def from_json(text):
    """Inverse of ``to_json``: the strings "inf", "-inf", "nan" become floats again."""
    return _nonfinite(json.loads(text))


def _finite(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _nonfinite(obj):
    if isinstance(obj, str) and obj in _NONFINITE:
        return _NONFINITE[obj]
    if isinstance(obj, dict):
        return {k: _nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nonfinite(v) for v in obj]
    return obj


_OBSERVABLES = {
    "energy": ("J", "energy H of the configuration (a total, not per site)"),
    "excess_energy": ("J", "energy H above the equilibrium baseline (total)"),
    "excitations": ("1", "number of excited sites (TLS in the upper well of its field; "
                        "electrons outside the lowest-energy sites)"),
    "excess_excitations": ("1", "number of excited sites above the equilibrium baseline"),
    "deviation": ("1", "|dsigma|(t) = sum_i |<sigma_i(t)> - sigma_i^eq| (TLS) or |dn|(t) "
                       "(electron)"),
    # the response protocol (docs/linear-response.md)
    "response": ("1", "signed projection P(t) = sum_i g_i (<x_i> - <x_i>_twin) after the pulse"),
    "energy_response": ("J", "energy H minus the twin's after the pulse (total)"),
    "response_predicted": ("1", "linear prediction of P(t) (B with f; electron: A)"),
    "response_predicted_no_f": ("1", "linear prediction of P(t) without the interaction term f"),
    "energy_response_predicted": ("J", "linear prediction of the energy response"),
    "energy_response_predicted_no_f": ("J", "linear prediction of the energy response "
                                            "without f"),
}


def dataset_info(name, model):
    """(units, description) of dataset ``name`` (relative to a point group, or one of the
    root datasets ``sweep/<key>``) in a file of ``model`` ("tls" or "electron").

    Units: energies in J, lengths in r_nn, rates in a J^3 (TLS) or Gamma0 (electron), times
    in their inverse; "1" is dimensionless.
    """
    tls = model == "tls"
    rate = "a J^3" if tls else "Gamma0"
    time = f"1/({rate})"
    x = "sigma_i" if tls else "n_i"
    fixed = {
        "realization": ("1", "realization index k (disorder seed spawn_key (point, k, 0))"),
        "site": ("1", "site index i"),
        "status": ("1", "0 pending, 1 converged, 2 not converged (kmc.storage.schema.Status)"),
        "sweeps": ("1", "mean-field Gauss-Seidel sweeps, all anneal stages"),
        "residual": ("J" if tls else "1", "mean-field fixed-point residual max|x - map(x)|"),
        "mu": ("J", "chemical potential (0 for the TLS glass)"),
        "fields": ("J", "mean-field bias Delta'_i (Eq. 4)" if tls
                   else "mean-field site energy E_i (Eq. 20)"),
        "energies": ("J", "signed excitation energy E_i (Eq. 6)" if tls else "E_i - mu"),
        "positions": ("r_nn", "site positions in the periodic box"),
        "bias": ("J", "bare bias Delta_i ~ Normal(0, W^2)"),
        "delta0": ("J", "tunneling amplitude Delta0_i, log-uniform"),
        "site_energies": ("J", "bare site energy eps_i ~ U[-W/2, W/2]"),
        "dos/counts": ("1", "histogram of energies over dos/edges, per realization"),
        "dos/edges": ("J", "bin edges of the DOS histogram"),
        "dos/centres": ("J", "bin centres of the DOS histogram"),
        "dos/mean": ("1/J", "normalised DOS, mean over converged realizations (states per "
                            "site per J)"),
        "dos/sem": ("1/J", "standard error of dos/mean"),
        "rates": (rate, "linear relaxation rates lambda (Eq. 12 in site order)" if tls else
                  "linear relaxation rates: spectrum of A (Eqs. 22-23), ascending"),
        "n_positive": ("1", "positive eigenvalues (0 at a stable mean-field point)"),
        "rates_interacting": (rate, "rates with the interaction term (App. B f / Eq. 23)"),
        "n_positive_interacting": ("1", "positive eigenvalues with the interaction term"),
        "rates_refined": (rate, "rates without f at the refined fixed point (Figs. 17-20)"),
        "rates_distance": ("1", "spectrum of the bare distance matrix e^(-r/xi) (Fig. 16)"),
        "linear/log_edges": ("1", f"bin edges in ln(lambda / {rate})"),
        "linear/log_mean": ("1", "density of ln(lambda), mean over realizations"),
        "linear/log_sem": ("1", "standard error of linear/log_mean"),
        "linear/lin_edges": (rate, "bin edges in lambda over [lambda_min, 10 lambda_min]"),
        "linear/lin_mean": (time, "density of lambda in the window, mean over realizations"),
        "linear/lin_sem": (time, "standard error of linear/lin_mean"),
        "linear/relaxation/times": (time, "times of the predicted relaxation"),
        "linear/relaxation/mean": ("1", "predicted sum_i c_i e^(-lambda_i t), c_i = 1/N"),
        "linear/relaxation/sem": ("1", "standard error of the predicted relaxation"),
        "linear/relaxation/e1": ("1", "continuum E1 form of the prediction"),
        "linear/relaxation/log": ("1", "logarithmic form of the prediction"),
        "dynamics/times": (time, "sample times of the time-domain experiment"),
        "dynamics/occupation": ("1", f"replica mean of {x}(t)"),
        "dynamics/equilibrium_occupation": ("1", f"equilibrium <{x}> at T (static MC or "
                                                 "Boltzmann)"),
        "dynamics/mean_field_occupation": ("1", f"mean-field <{x}> at T"),
        "dynamics/equilibrium_energy": ("J", "equilibrium energy H at T (total)"),
        "dynamics/equilibrium_excitations": ("1", "equilibrium number of excited sites"),
        "dynamics/mean_field_energy": ("J", "mean-field energy H at T (total)"),
        "dynamics/mean_field_excitations": ("1", "mean-field expected number of excited sites"),
        "dynamics/events": ("1", "KMC events over all replicas"),
        "dynamics/replica_counters": ("1", "per trajectory: events, trials, estimated events "
                                           "without temporal acceleration (docs/acceleration.md)"),
        "dynamics/response_pattern": ("1", "pulse pattern g_i of the response protocol"),
        "dynamics/twin_energy_drift": ("J", "twin energy change over the window"),
        "dynamics/twin_energy_drift_stderr": ("J", "standard error of the twin energy drift"),
        "dynamics/twin_drift": ("1", "twin g-projection change over the window (the "
                                     "prepared state's own drift)"),
        "dynamics/twin_drift_stderr": ("1", "standard error of the twin g-projection drift"),
        "dynamics/aging_time_used": (time, "aging time of the recorded ensembles (response; "
                                           "the last one tried with aging 'until_stationary')"),
        "dynamics/aging_attempts": ("1", "aging times tried (response; 1 with aging 'fixed')"),
        "dynamics/aging_stationary": ("1", "1 if the twin's drift was bounded below "
                                           "stationarity_tolerance times the signal, else 0 "
                                           "(kmc.dynamics.stationarity)"),
        # comparison/: |dx| against the static-MC baseline at T, an equilibrium assumed, not
        # measured (a glass at T << J need not reach it; docs/model.md section 4); kept for
        # older files and labelled, the measured-baseline comparisons are analysis.compare
        # and the response protocol's twin
        "comparison/times": (time, "sample times of the comparison against the assumed "
                                   "static-MC equilibrium"),
        "comparison/simulated": ("1", "simulated |dx|(t) against the static-MC baseline at T "
                                      "(an assumed equilibrium the glass need not reach), "
                                      "mean over realizations"),
        "comparison/simulated_se": ("1", "standard error of comparison/simulated"),
        "comparison/predicted": ("1", "linear prediction of the replica-averaged estimator "
                                      "around the assumed static-MC baseline"),
        "comparison/predicted_se": ("1", "standard error of comparison/predicted"),
        "comparison/predicted_raw": ("1", "noiseless prediction sum_i |c_i| e^(-lambda t)"),
        "comparison/log": ("1", "logarithmic form of the prediction"),
        "comparison/in_window": ("1", "true inside 1/lambda_max < t < 1/lambda_min"),
    }
    if name in fixed:
        return fixed[name]
    for prefix, what in (("dynamics/ensemble/", "mean over realizations"),
                         ("dynamics/", "replica mean")):
        if name.startswith(prefix):
            obs = name[len(prefix):]
            err = obs.endswith("_stderr")
            units, text = _OBSERVABLES[obs.removesuffix("_stderr")]
            return units, (f"standard error of the {what} of the {text}" if err
                           else f"{what} of the {text}")
    if name.startswith("sweep/"):
        key = name[len("sweep/"):]
        units = {"model.temperature": "J", "disorder.W": "J", "disorder.J": "J",
                 "model.N": "1", "W_over_J": "1"}.get(key, "as the run-file key")
        return units, f"value of the swept key {key} at every point (axis: point)"
    raise KeyError(f"no units/description for dataset {name!r}")


def dataset_dims(name):
    """Dimension-scale names of the axes of dataset ``name`` (None: unnamed axis).

    Scales: ``realization`` (R,) and ``site`` (N,) in each point group, ``time``
    (``dynamics/times``), ``bin`` (``dos/centres``).
    """
    site = {"fields", "energies", "bias", "delta0", "site_energies",
            "dynamics/equilibrium_occupation", "dynamics/mean_field_occupation",
            "dynamics/response_pattern"}
    if name in site:
        return ("realization", "site")
    if name == "positions":
        return ("realization", "site", None)
    if name == "dos/counts":
        return ("realization", "bin")
    if name in ("dos/mean", "dos/sem"):
        return ("bin",)
    if name == "dynamics/occupation":
        return ("realization", "time", "site")
    if name == "dynamics/replica_counters":
        return ("realization", None, None)
    if name.startswith("dynamics/ensemble/") or (name.startswith("comparison/")
                                                 and name != "comparison/times"):
        return ("time",)
    if name.startswith("dynamics/") and name.split("/")[1].removesuffix("_stderr") in \
            _OBSERVABLES:
        return ("realization", "time")
    if name in ("status", "sweeps", "residual", "mu", "n_positive", "n_positive_interacting",
                "dynamics/equilibrium_energy", "dynamics/equilibrium_excitations",
                "dynamics/mean_field_energy", "dynamics/mean_field_excitations",
                "dynamics/events", "dynamics/twin_energy_drift",
                "dynamics/twin_energy_drift_stderr", "dynamics/twin_drift",
                "dynamics/twin_drift_stderr", "dynamics/aging_time_used",
                "dynamics/aging_attempts", "dynamics/aging_stationary"):
        return ("realization",)
    if name.startswith("rates"):
        return ("realization", None)
    return ()


SCALES = {"realization": "realization", "site": "site", "time": "dynamics/times",
          "bin": "dos/centres"}
