"""Reading result files: ``kmc.load(path)``.

``load(path).realization(k, point=0)`` returns one realization as a dict of NumPy arrays:

============== ======================================================================
name           content
============== ======================================================================
positions      (N, d) site positions, units of r_nn
bias           TLS: (N,) Delta_i
delta0         TLS: (N,) tunneling amplitudes
couplings      TLS: (N, N) J_ij, rebuilt from the stored seed
site_energies  electron: (N,) eps_i
interactions   electron: (N, N) e^2 / r_ij, rebuilt from the stored seed
n_electrons    electron: M
fields         (N,) mean-field Delta'_i (TLS) or E_i (electron)
energies       (N,) TLS: signed E_i (Eq. 6); electron: E_i - mu
mu, status, sweeps, residual   scalars (``kmc.storage.schema.Status``)
system         the rebuilt TLSSystem / ElectronSystem, usable by every method
============== ======================================================================

Typed accessors read the summaries the analysis wrote at the end of the run (``None`` when
the file has none, e.g. a run without ``[linear]``): ``dos(p)``, ``linear(p)``,
``dynamics(p)``, ``comparison(p)``; the rows themselves through ``status(p)``,
``converged(p)`` and ``rows(name, p)``. No caller needs to know a path inside the file
(``kmc.storage.schema`` owns them).
"""
import json
from dataclasses import dataclass

import h5py
import numpy as np

from kmc.errors import ResultFileError
from kmc.pipeline.config import RunConfig  # data only (imports kmc.errors): see architecture.md
from kmc.storage.schema import (POINTS, ROOT, SCHEMA_VERSION, Status, build_system,
                                dataset_dims, from_json, point_path)


@dataclass(frozen=True)
class Point:
    index: int
    values: dict
    config: RunConfig


@dataclass(frozen=True)
class DOS:
    """Density of states of a point: edges (B+1,), mean and sem (B,) in states per site per
    J over ``n_used`` converged realizations."""

    edges: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    n_used: int


@dataclass(frozen=True)
class LinearSummary:
    """Rate summary of a point (``linear/``): ln(lambda) density (``log_*``), the window
    density (``lin_*``, None without a lower plateau edge), the plateau edges with the
    bootstrap error of lambda_min, the typical median rate, the 1/lambda fit (dict with
    amplitude, amplitude_se, chi2_dof, exponent, exponent_se; None if it failed) and the
    predicted relaxation (dict with times, mean, sem, e1, log; None without both edges)."""

    log_edges: np.ndarray
    log_mean: np.ndarray
    log_sem: np.ndarray
    lin_edges: np.ndarray | None
    lin_mean: np.ndarray | None
    lin_sem: np.ndarray | None
    lambda_min: float
    lambda_max: float
    lambda_min_se: float
    median_rate: float
    median_rate_se: float
    fit: dict | None
    relaxation: dict | None
    n_used: int
    n_with_positive_eigenvalue: int


@dataclass(frozen=True)
class DynamicsSummary:
    """Ensemble curves of a point: times (T,); mean and stderr {observable: (T,)}."""

    times: np.ndarray
    mean: dict
    stderr: dict
    n_used: int


# the stored comparison of simulated and predicted relaxation (``comparison/``): written by
# analysis.summary, read by Results.comparison; one list of names for both
COMPARISON_CURVES = ("times", "simulated", "simulated_se", "predicted", "predicted_se",
                     "predicted_raw", "log", "in_window")
COMPARISON_SCALARS = ("lambda_min", "lambda_max", "max_rel_deviation", "slope_simulated",
                      "slope_simulated_se", "slope_predicted", "slope_log", "t0_lambda_max")


@dataclass(frozen=True)
class ComparisonSummary:
    """Simulated against predicted relaxation on the simulation's time grid (built by
    ``analysis.compare.compare``, stored under ``comparison/`` of a point).

    times, simulated, simulated_se, predicted, predicted_se, log : (T,) float
    predicted_raw : (T,) float or None, the noiseless prediction sum_i |c_i| e^(-lambda t)
    in_window : (T,) bool, 1/lambda_max < t < 1/lambda_min
    lambda_min, lambda_max : float, the window
    max_rel_deviation : float, max over the window of |sim - pred| / pred (nan if empty)
    slope_simulated, slope_simulated_se, slope_predicted, slope_log : float, per ln t
    t0_lambda_max : float, first sample time times lambda_max (should be << 1)
    """

    times: np.ndarray
    simulated: np.ndarray
    simulated_se: np.ndarray
    predicted: np.ndarray
    predicted_se: np.ndarray
    predicted_raw: np.ndarray | None
    log: np.ndarray
    in_window: np.ndarray
    lambda_min: float
    lambda_max: float
    max_rel_deviation: float
    slope_simulated: float
    slope_simulated_se: float
    slope_predicted: float
    slope_log: float
    t0_lambda_max: float


class Results:
    """A result file opened for reading (nothing is held open between calls)."""

    def __init__(self, path):
        self.path = str(path)
        try:
            f = h5py.File(self.path, "r")
        except OSError:
            raise ResultFileError(f"{self.path}: not a readable HDF5 file") from None
        with f:
            if ROOT not in f or f[ROOT].attrs.get("schema_version") != SCHEMA_VERSION:
                raise ResultFileError(f"{self.path}: not a result file of schema "
                                      f"{SCHEMA_VERSION}")
            root = f[ROOT]
            self.attrs = {k: _attr(v) for k, v in root.attrs.items()}
            self.seed = int(root.attrs["seed"])
            self.model = str(root.attrs["model"])
            self.points = []
            for p, name in enumerate(sorted(f[POINTS])):
                g = f[POINTS][name]
                config = RunConfig.from_dict(from_json(g.attrs["config"]))
                self.points.append(Point(p, from_json(g.attrs["values"]), config))

    def __repr__(self):
        return f"Results({self.path!r}, model={self.model!r}, points={len(self.points)})"

    def dataset(self, name, point=0):
        """A whole per-point dataset, e.g. ``energies`` (R, N) or ``dos/edges``."""
        with h5py.File(self.path, "r") as f:
            return f[point_path(point)][name][()]

    def status(self, point=0):
        """(R,) int8 ``Status`` of every realization of ``point``."""
        return self.dataset("status", point)

    def converged(self, point=0, realizations=None):
        """Indices of the converged realizations of ``point`` among the first
        ``realizations`` (None: all rows of the file)."""
        return np.flatnonzero(self.status(point)[:realizations] == Status.CONVERGED)

    def rows(self, name, point=0, realizations=None):
        """The rows of dataset ``name`` of the converged realizations, (R_ok, ...)."""
        ok = self.converged(point, realizations)
        with h5py.File(self.path, "r") as f:
            data = f[point_path(point)][name]
            return data[:realizations][ok] if ok.size else np.zeros((0,) + data.shape[1:],
                                                                    data.dtype)

    def dos(self, point=0):
        """DOS summary of ``point`` (None before the run finished)."""
        with h5py.File(self.path, "r") as f:
            dos = f[point_path(point)]["dos"]
            if "mean" not in dos:
                return None
            return DOS(dos["edges"][()], dos["mean"][()], dos["sem"][()],
                       int(dos.attrs["n_used"]))

    def linear(self, point=0):
        """LinearSummary of ``point`` (None without ``[linear]`` or converged rows)."""
        with h5py.File(self.path, "r") as f:
            lin = f[point_path(point)].get("linear")
            if lin is None:
                return None
            a = lin.attrs
            get = (lambda n: lin[n][()] if n in lin else None)
            fit = ({k: float(a[f"fit_{k}"]) for k in ("amplitude", "amplitude_se", "chi2_dof",
                                                       "exponent", "exponent_se")}
                   if "fit_amplitude" in a else None)
            rel = lin.get("relaxation")
            relaxation = ({k: rel[k][()] for k in ("times", "mean", "sem", "e1", "log")}
                          if rel is not None else None)
            return LinearSummary(get("log_edges"), get("log_mean"), get("log_sem"),
                                 get("lin_edges"), get("lin_mean"), get("lin_sem"),
                                 *(float(a[k]) for k in ("lambda_min", "lambda_max",
                                                         "lambda_min_se", "median_rate",
                                                         "median_rate_se")),
                                 fit, relaxation, int(a["n_used"]),
                                 int(a["n_with_positive_eigenvalue"]))

    def dynamics(self, point=0):
        """DynamicsSummary of ``point`` (None without ``[dynamics]`` or converged rows)."""
        with h5py.File(self.path, "r") as f:
            g = f[point_path(point)]
            if "dynamics/ensemble" not in g:
                return None
            ens = g["dynamics/ensemble"]
            names = [n for n in ens if not n.endswith("_stderr")]
            return DynamicsSummary(g["dynamics/times"][()], {n: ens[n][()] for n in names},
                                   {n: ens[f"{n}_stderr"][()] for n in names},
                                   int(ens.attrs["n_used"]))

    def comparison(self, point=0):
        """ComparisonSummary of ``point`` (None without both ``[linear]`` and ``[dynamics]``)."""
        with h5py.File(self.path, "r") as f:
            c = f[point_path(point)].get("comparison")
            if c is None:
                return None
            curves = {k: c[k][()] for k in COMPARISON_CURVES}
            scalars = {k: float(c.attrs[k]) for k in COMPARISON_SCALARS}
            return ComparisonSummary(**curves, **scalars)

    def system(self, k, point=0):
        """The TLSSystem / ElectronSystem of realization ``k`` of ``point``, rebuilt from
        its seed (couplings and distances are not stored)."""
        return build_system(self.points[point].config, self.seed, point, k)

    def realization(self, k, point=0):
        """Disorder and mean-field solution of realization ``k`` of ``point`` (see module doc)."""
        with h5py.File(self.path, "r") as f:
            g = f[point_path(point)]
            if not 0 <= k < g["status"].shape[0]:
                raise IndexError(f"realization {k} out of range 0..{g['status'].shape[0] - 1}")
            out = {name: g[name][k] for name in json.loads(g.attrs["rows"]) if "/" not in name}
        system = self.system(k, point)
        if (out["status"] != Status.PENDING
                and not np.array_equal(system.positions, out["positions"])):
            raise ResultFileError(f"{self.path}: rebuilt realization {k} differs from the "
                                  f"stored one (other program version?)")
        out["positions"] = system.positions
        if system.model == "tls":
            out.update(bias=system.bias, delta0=system.delta0, couplings=system.couplings)
        else:
            out.update(site_energies=system.site_energies, interactions=system.interactions,
                       n_electrons=system.n_electrons)
        out["system"] = system
        for key in ("mu", "residual"):
            out[key] = float(out[key])
        for key in ("status", "sweeps"):
            out[key] = int(out[key])
        return out


    def to_xarray(self, point=0):
        """Every dataset of ``point`` as an ``xarray.Dataset`` (optional extra: needs xarray).

        Variables are named by their path with ``/`` replaced by ``_`` (``dos/counts`` ->
        ``dos_counts``); dimensions are the file's dimension scales (realization, site,
        time, bin, ``kmc.storage.schema.dataset_dims``) with their values as coordinates;
        each variable keeps its ``units`` and ``description``; the point's swept values and
        the summary attributes (``linear_lambda_min``, ...) are dataset attributes.

        Raises
        ------
        ImportError
            xarray is not installed (one line saying how to install it).
        """
        try:
            import xarray
        except ImportError:
            raise ImportError("Results.to_xarray needs xarray, an optional extra: "
                              "pip install xarray") from None
        coords = {"realization": "realization", "site": "site", "time": "dynamics/times",
                  "bin": "dos/centres"}
        data, coord_values, attrs = {}, {}, {}
        with h5py.File(self.path, "r") as f:
            g = f[point_path(point)]
            names = []
            g.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            for dim, name in coords.items():
                if name in g:
                    coord_values[dim] = g[name][()]
            for name in names:
                ds = g[name]
                if name in coords.values():
                    continue
                dims = list(dataset_dims(name)) + [None] * ds.ndim
                key = name.replace("/", "_")
                dims = [d if d is not None and d in coord_values
                        and coord_values[d].shape[0] == ds.shape[i] else f"{key}_dim{i}"
                        for i, d in enumerate(dims[:ds.ndim])]
                data[key] = xarray.Variable(dims, ds[()], attrs={
                    k: _attr(ds.attrs[k]) for k in ("units", "description") if k in ds.attrs})
            def collect(name, obj):
                if isinstance(obj, h5py.Group):
                    for k, v in obj.attrs.items():
                        attrs[f"{name.replace('/', '_')}_{k}"] = _attr(v)
            g.visititems(collect)
            attrs.update({f"point_{k}": _attr(v) for k, v in g.attrs.items()})
        attrs.update({f"sweep_{k}": v for k, v in self.points[point].values.items()})
        attrs.update(model=self.model, seed=self.seed, source=self.path)
        return xarray.Dataset(data, coords={k: v for k, v in coord_values.items()},
                              attrs=attrs)


def load(path):
    """Open a result file written by ``kmc run``."""
    return Results(path)


def _attr(v):
    return v.decode() if isinstance(v, bytes) else v
