"""Frozen, validated parameters of one dynamics run (kmc.dynamics.run.simulate).

Units: temperatures and energies in J; times in 1/(a J^3) (TLS) or 1/Gamma0 (electron glass);
lengths in r_nn.
"""
import math
from dataclasses import dataclass, field, fields

import numpy as np

from kmc.errors import ConfigError
from kmc.model import check_temperature

METHODS = ("kmc", "exact", "meanfield")
HOP_ENERGIES = ("pair", "kmc", "mean_field")
KERNELS = ("fast", "reference")
PROTOCOLS = ("quench", "pulse", "state", "response")
ACCELERATIONS = ("off", "quasi_equilibrium")
AGINGS = ("fixed", "until_stationary")
# until_stationary: each further aging is this many times longer than the last
AGING_GROWTH = 10.0


def check_kernel(key, value):
    """The one check of a KMC kernel name (DynamicsParams and the engines call it)."""
    if value not in KERNELS:
        raise ConfigError(key, f"expected one of {KERNELS}, got {value!r}")


def _key(default, doc, accepted=""):
    """A field that is also a key of the run file's [dynamics] table (kmc.pipeline.config
    builds DynamicsConfig from these fields, so defaults and docs exist once). ``accepted``
    describes, for the key reference, the values ``__post_init__`` accepts."""
    return field(default=default, metadata={"doc": doc, "run_file": True,
                                            "accepted": accepted})


@dataclass(frozen=True)
class DynamicsParams:
    """Parameters of a time-domain experiment (docs/model.md section 4).

    Attributes
    ----------
    temperature : float
        T at which the system evolves (the final temperature), > 0.
    method : "kmc", "exact" or "meanfield"
        Kinetic Monte Carlo, the master equation over all configurations (small N), or the
        deterministic mean-field rate equations (kmc.dynamics.meanfield_dynamics).
    kernel : "fast" or "reference"
        KMC kernel: exact thinning (default) or the slow Gillespie reference.
    protocol : "quench", "pulse", "state" or "response"
        quench: start in equilibrium at ``initial_temperature`` (inf: random states);
        pulse: start in equilibrium at T, evolve for ``waiting_time`` with the extra bias
        ``pulse_strength`` g_i (g ~ N(0, 1), one pattern per realization), then remove it
        at t = 0; state: start from ``initial_state``; response: linear response around
        one prepared state, a perturbed and a twin ensemble (docs/linear-response.md;
        KMC only).
    initial_temperature : float
        T0 of the quench, > 0 or inf.
    pulse_strength, waiting_time : float
        F (units of J) and t_w of the pulse and response protocols.
    temperature_step : float
        response: the perturbed ensemble runs at T + temperature_step during t_w (units of
        J; 0 = no step). At least one of pulse_strength and temperature_step is nonzero.
    aging_time : float
        response: each replica first evolves at T for this time from the common annealed
        state (>= 0; the first one tried with aging = "until_stationary"). The twin's drift
        over the window is measured and stored either way (kmc.dynamics.stationarity).
    aging : "fixed" or "until_stationary"
        response: fixed ages every replica for ``aging_time``. until_stationary measures the
        twin ensemble's own drift over the window after each aging (kmc.dynamics.stationarity)
        and, while it is resolved and above ``stationarity_tolerance`` times the response
        signal, ages again from the common state AGING_GROWTH = 10 times longer (up to
        ``aging_time_max``) and reruns both ensembles. Both modes store and report the
        measured drift; fixed is the default because every further aging costs a full run.
    aging_time_max : float
        response, until_stationary: the longest aging tried (>= aging_time).
    stationarity_tolerance : float
        response: the drift is negligible when its 2-SE upper bound is at most this fraction
        of the response signal max_t |P(t)| (> 0).
    anneal_temperature : float
        response: the static-MC anneal of the common state starts here (units of J, > 0)
        and goes down to T in ``mc_preparation_sweeps`` sweeps.
    initial_state : tuple or None
        (N,) S_i = +-1/2 (TLS) or n_i in {0, 1} (electron) for the "state" protocol.
    t_min, t_max, n_times : float, float, int
        Log-spaced sampling grid, n_times points from t_min to t_max inclusive.
    replicas : int
        Independent trajectories of the realization (independent initial states too).
    a : float
        TLS phonon coupling; static prefactor a Delta0_i^2.
    gamma0, xi, hop_cutoff : float
        Electron glass: static prefactor Gamma0 e^(-r_ij/xi) on the pairs r_ij <= hop_cutoff.
        Defaults: xi = 0.1 (the paper's r_nn/xi = 10) and hop_cutoff = 2 r_nn, where
        e^(-r/xi) = 2e-9 is negligible next to the typical nearest-neighbour e^(-r_nn/xi).
        Methods kmc and meanfield refuse a cut-off whose dropped pairs fire more than 0.01
        times per site over the run (kmc.solvers.linear.electron.check_hop_cutoff; the
        default passes at xi = 0.1 up to a run time of about 1e6; measured 0.9e6-1.4e6).
    mc_preparation_sweeps : int
        Static-MC sweeps of each replica's independent chain when preparing equilibrium
        at a finite T0 (or at T for the pulse protocol).
    mc_equilibration_sweeps, mc_sampling_sweeps : int
        Static-MC baseline at T: discarded sweeps, then measured sweeps.
    window : float
        Thinning window half-width in units of T (efficiency only; results are exact).
    checkpoint_interval : float
        Wall-clock seconds between checkpoints (only with a checkpoint path).
    chunk_trials : int
        Trials per kernel call; checkpoints are written between calls.
    meanfield_rtol, meanfield_atol : float
        method "meanfield": integrator tolerances (relative; absolute per site).
    hop_energy : "pair", "kmc" or "mean_field"
        method "meanfield", electron glass: hop energy of the rate equations
        (kmc.dynamics.meanfield_dynamics.ElectronMeanField).
    resonance_width : float
        Electron glass, every method (kmc, exact, meanfield), so that a comparison uses one
        rate law: width w (units of J) rounding off the divergence of the Miller-Abrahams
        factor at dH = 0, with detailed balance kept exactly (kmc.model.
        miller_abrahams_factor). An approximation, off by default: 0 is the exact factor,
        with which a mean-field quench usually stops at a resonance
        (docs/meanfield-dynamics.md) and a long KMC run can reach a hop within rounding of
        dH = 0 (then a one-line error names this key; docs/model.md).
    acceleration : "off" or "quasi_equilibrium"
        Temporal acceleration of the KMC relaxation phase (docs/acceleration.md): the rates of
        processes observed to be quasi-equilibrated are scaled down, both directions alike.
        An approximation, off by default; the pulse phase (t_w) is never accelerated. The
        response protocol accelerates each replica's aging and both relaxations after t_w
        (docs/linear-response.md has the measured agreement with the exact dynamics).
    acceleration_executions : float
        Its accuracy parameter N_e (>= 10): executions per schedule interval before a
        process is scaled, and kept after; the guard's separation is M = 0.3 N_e. Default
        100 (M = 30), the setting validated against the exact master equation at full size
        (docs/acceleration.md has the measured errors); larger is more accurate and slower.
    acceleration_burst : float
        B (0, or >= 2): a process that executes B N_e times since the last update of the
        scales triggers an update at once (a burst stop) instead of running at its old
        scale to the next schedule point; 0 switches burst stops off. Default 10.
    """

    temperature: float = field(metadata={"doc": "T, from [model]"})
    method: str = _key("kmc", "kinetic Monte Carlo, master equation or mean-field rate "
                       "equations", "one of 'kmc', 'exact', 'meanfield'")
    kernel: str = _key("fast", "KMC kernel", "one of 'fast', 'reference'")
    protocol: str = _key("quench", "experiment",
                         "one of 'quench', 'pulse', 'state', 'response'")
    initial_temperature: float = _key(math.inf, "quench: T0 (inf = random states)", "> 0, or inf")
    pulse_strength: float = _key(0.0, "pulse, response: F, units of J", ">= 0, finite")
    waiting_time: float = _key(0.0, "pulse, response: t_w", ">= 0, finite")
    temperature_step: float = _key(0.0, "response: dT during t_w, units of J",
                                   "finite, T + dT > 0")
    aging_time: float = _key(0.0, "response: aging of each replica at T before t_w",
                             ">= 0, finite")
    aging: str = _key("fixed", "response: fixed aging time, or aged until the twin's "
                      "drift is negligible", "one of 'fixed', 'until_stationary'")
    aging_time_max: float = _key(1e8, "response, until_stationary: longest aging",
                                 ">= aging_time, finite")
    stationarity_tolerance: float = _key(0.1, "response: accepted twin drift over the "
                                         "window, fraction of the signal", "> 0, finite")
    anneal_temperature: float = _key(2.0, "response: anneal start temperature, units of J",
                                     "> 0, finite")
    initial_state: tuple | None = field(default=None, metadata={
        "doc": "state: (N,) values; run files name a .npy file instead"})
    t_min: float = _key(1e-2, "first sample time", "> 0, < t_max")
    t_max: float = _key(1e4, "last sample time", "> t_min, finite")
    n_times: int = _key(40, "log-spaced sample times", ">= 2")
    replicas: int = _key(16, "trajectories per realization", ">= 1")
    a: float = field(default=1.0, metadata={"doc": "TLS phonon prefactor, from [model]"})
    gamma0: float = field(default=1.0, metadata={"doc": "electron prefactor, from [model]"})
    xi: float = field(default=0.1, metadata={"doc": "localization length, from [model]"})
    hop_cutoff: float = _key(2.0, "electron: largest hop distance, units of r_nn", "> 0, finite")
    mc_preparation_sweeps: int = _key(500, "static MC sweeps to prepare T0", ">= 0")
    mc_equilibration_sweeps: int = _key(500, "static MC baseline: discarded", ">= 0")
    mc_sampling_sweeps: int = _key(2000, "static MC baseline: measured", ">= 1")
    window: float = _key(1.0, "thinning window, units of T (speed only)", "> 0, finite")
    checkpoint_interval: float = _key(600.0, "seconds between checkpoints", ">= 0 (0: none), finite")
    chunk_trials: int = field(default=1_000_000, metadata={
        "doc": "trials per kernel call (API only)"})
    meanfield_rtol: float = _key(1e-6, "meanfield: relative integrator tolerance", "> 0, < 1")
    meanfield_atol: float = _key(1e-9, "meanfield: absolute tolerance per site", "> 0, finite")
    hop_energy: str = _key("pair", "meanfield, electron: hop energy",
                           "one of 'pair', 'kmc', 'mean_field'")
    resonance_width: float = _key(0.0, "electron (kmc, exact, meanfield): Miller-Abrahams "
                                  "resonance width, units of J (0: exact)", ">= 0, finite")
    acceleration: str = _key("off", "temporal acceleration (docs/acceleration.md)",
                             "one of 'off', 'quasi_equilibrium'")
    acceleration_executions: float = _key(100.0, "acceleration accuracy N_e (separation "
                                                 "M = 0.3 N_e; 100 validated)", ">= 10, finite")
    acceleration_burst: float = _key(10.0, "acceleration: executions (in N_e) that trigger "
                                     "an update at once", "0 (off) or >= 2, finite")

    def __post_init__(self):
        def need(ok, key, msg, value):
            if not ok:
                raise ConfigError(f"dynamics.{key}", f"{msg}, got {value!r}")

        for f in fields(self):  # finite unless inf has a meaning (initial_temperature)
            value = getattr(self, f.name)
            if (f.type in (float, "float") and isinstance(value, (int, float))
                    and math.isinf(value) and f.default != math.inf):
                raise ConfigError(f"dynamics.{f.name}", f"must be finite, got {value}")
        check_temperature("dynamics.temperature", self.temperature)
        need(self.method in METHODS, "method", f"expected one of {METHODS}", self.method)
        check_kernel("dynamics.kernel", self.kernel)
        need(self.protocol in PROTOCOLS, "protocol", f"expected one of {PROTOCOLS}",
             self.protocol)
        need(self.initial_temperature > 0, "initial_temperature", "must be > 0 or inf",
             self.initial_temperature)
        need(self.pulse_strength >= 0, "pulse_strength", "must be >= 0", self.pulse_strength)
        need(self.waiting_time >= 0, "waiting_time", "must be >= 0", self.waiting_time)
        need(0 < self.t_min < self.t_max, "t_min", "need 0 < t_min < t_max",
             (self.t_min, self.t_max))
        need(self.n_times >= 2, "n_times", "must be >= 2", self.n_times)
        need(self.replicas >= 1, "replicas", "must be >= 1", self.replicas)
        for key in ("a", "gamma0", "xi", "hop_cutoff", "window", "chunk_trials"):
            need(getattr(self, key) > 0, key, "must be > 0", getattr(self, key))
        for key in ("mc_preparation_sweeps", "mc_equilibration_sweeps"):
            need(getattr(self, key) >= 0, key, "must be >= 0", getattr(self, key))
        need(self.mc_sampling_sweeps >= 1, "mc_sampling_sweeps", "must be >= 1",
             self.mc_sampling_sweeps)
        need(self.checkpoint_interval >= 0, "checkpoint_interval", "must be >= 0",
             self.checkpoint_interval)
        need(0 < self.meanfield_rtol < 1, "meanfield_rtol", "must be > 0 and < 1",
             self.meanfield_rtol)
        need(self.meanfield_atol > 0, "meanfield_atol", "must be > 0", self.meanfield_atol)
        need(self.hop_energy in HOP_ENERGIES, "hop_energy", f"expected one of {HOP_ENERGIES}",
             self.hop_energy)
        need(self.resonance_width >= 0, "resonance_width", "must be >= 0",
             self.resonance_width)
        need(self.aging_time >= 0, "aging_time", "must be >= 0", self.aging_time)
        need(self.anneal_temperature > 0, "anneal_temperature", "must be > 0",
             self.anneal_temperature)
        need(self.aging in AGINGS, "aging", f"expected one of {AGINGS}", self.aging)
        need(self.stationarity_tolerance > 0, "stationarity_tolerance", "must be > 0",
             self.stationarity_tolerance)
        if self.aging == "until_stationary":
            need(self.aging_time > 0, "aging_time", "aging 'until_stationary' needs "
                 "aging_time > 0", self.aging_time)
            need(self.aging_time_max >= self.aging_time, "aging_time_max",
                 "must be >= aging_time", (self.aging_time_max, self.aging_time))
        if self.protocol == "response":
            need(self.method == "kmc", "method", "protocol 'response' needs 'kmc'", self.method)
            need(self.waiting_time > 0, "waiting_time", "protocol 'response' needs t_w > 0",
                 self.waiting_time)
            need(self.pulse_strength > 0 or self.temperature_step != 0, "pulse_strength",
                 "protocol 'response' needs pulse_strength > 0 or temperature_step != 0",
                 (self.pulse_strength, self.temperature_step))
            need(self.temperature + self.temperature_step > 0, "temperature_step",
                 "T + temperature_step must be > 0", self.temperature_step)
        need(self.acceleration in ACCELERATIONS, "acceleration",
             f"expected one of {ACCELERATIONS}", self.acceleration)
        need(isinstance(self.acceleration_executions, (int, float))
             and not isinstance(self.acceleration_executions, bool)
             and math.isfinite(self.acceleration_executions)
             and self.acceleration_executions >= 10, "acceleration_executions",
             "must be a finite number >= 10", self.acceleration_executions)
        need(isinstance(self.acceleration_burst, (int, float))
             and not isinstance(self.acceleration_burst, bool)
             and (self.acceleration_burst == 0 or (math.isfinite(self.acceleration_burst)
                                                   and self.acceleration_burst >= 2)),
             "acceleration_burst", "must be 0 (off) or a finite number >= 2",
             self.acceleration_burst)
        if self.protocol == "state":
            need(self.initial_state is not None, "initial_state",
                 "protocol 'state' needs an initial state", None)
        if self.initial_state is not None:
            object.__setattr__(self, "initial_state",
                               tuple(float(v) for v in np.ravel(self.initial_state)))

    def aging_times(self):
        """Aging times the response protocol tries, in order: aging_time alone (fixed), or
        aging_time, AGING_GROWTH times that, ... up to aging_time_max (the last one clamped
        to it)."""
        out = [float(self.aging_time)]
        if self.aging == "until_stationary":
            while out[-1] < self.aging_time_max:
                out.append(min(float(self.aging_time_max), out[-1] * AGING_GROWTH))
        return out

    def times(self):
        """(n_times,) log-spaced sampling times from t_min to t_max."""
        return np.logspace(np.log10(self.t_min), np.log10(self.t_max), self.n_times)
