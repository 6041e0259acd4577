"""Run files: TOML parsed once into frozen, typed config objects.

The Python API builds the same objects (``RunConfig.from_dict``), so there is one set of
checks. Unknown keys are errors; every error names the dotted key, what was expected and
what was found. ``[sweep]`` expands a run into points, each a complete ``RunConfig``.

Layout of a run file (all tables optional except ``[model]``)::

    [model]     name, N, dimension, density, temperature, filling, a, xi, gamma0
    [disorder]  W, J, delta0_min, delta0_max
    [solver]    tol, max_sweeps, init, anneal, precision
    [linear]    linearized rates per realization (present = enabled)
    [dynamics]  time-domain experiment per realization (present = enabled)
    [ensemble]  realizations, seed, workers, backend, scheduler
    [output]    path, figures, dos_bins, dos_range, flush_seconds
    [sweep]     mode = "grid" | "zip", "<table>.<key>" = [values...],
                W_over_T = ratio, W_over_J = [...] with W2_plus_J2 = total
"""
import dataclasses
import itertools
import math
import tomllib
from dataclasses import dataclass, field, fields, replace

from kmc.dynamics.params import DynamicsParams
from kmc.errors import ConfigError
from kmc.model import check_temperature

MODELS = ("tls", "electron")


def _positive(key, v):
    if not v > 0:
        raise ConfigError(key, f"must be > 0, got {v}")


def _non_negative(key, v):
    if not v >= 0:
        raise ConfigError(key, f"must be >= 0, got {v}")


def _choice(*allowed):
    def check(key, v):
        if v not in allowed:
            names = ", ".join(repr(a) for a in allowed)
            raise ConfigError(key, f"expected one of {names}, got {v!r}")
    return check


def _spec(default, check=None, doc=""):
    return field(default=default, metadata={"check": check, "doc": doc})


@dataclass(frozen=True)
class ModelConfig:
    name: str = _spec("tls", _choice(*MODELS), "model: 'tls' or 'electron'")
    N: int = _spec(1000, None, "number of sites, >= 2")
    dimension: int = _spec(0, None, "1, 2 or 3; 0 means the model's default (TLS 3, electron 2)")
    density: float = _spec(1.0, _positive, "sites per unit volume (lengths in r_nn)")
    temperature: float = _spec(0.05, check_temperature, "T in units of J")
    filling: float = _spec(0.5, None, "electron glass: K = M / N in (0, 1)")
    a: float = _spec(1.0, _positive, "TLS phonon prefactor: rates a Delta0^2 ..., time in 1/(a J^3)")
    xi: float = _spec(0.1, _positive, "electron localization length (r_nn / xi = 10)")
    gamma0: float = _spec(1.0, _positive, "electron rate prefactor Gamma0, time in 1/Gamma0")

    @property
    def d(self):
        return self.dimension or (3 if self.name == "tls" else 2)


@dataclass(frozen=True)
class DisorderConfig:
    W: float = _spec(1.0, _non_negative, "TLS: std of Delta_i; electron: width of eps_i")
    J: float = _spec(1.0, _non_negative, "interaction: U0 (TLS) or e^2/r_nn (electron)")
    delta0_min: float = _spec(1e-7, _positive, "TLS: smallest tunneling amplitude")
    delta0_max: float = _spec(1e-1, _positive, "TLS: largest tunneling amplitude")


@dataclass(frozen=True)
class SolverConfig:
    tol: float = _spec(1e-8, _positive, "convergence: max |change| of a field in a sweep")
    max_sweeps: int = _spec(10_000, _positive, "sweeps allowed per temperature stage")
    init: str = _spec("bare", _choice("bare", "random"), "initial fields")
    anneal: tuple = _spec((), None, "temperatures visited before the target one")
    precision: str = _spec("float64", _choice("float64", "float32"), "coupling matrix dtype")


@dataclass(frozen=True)
class LinearConfig:
    enabled: bool = _spec(False, None, "compute the linearized rates (a [linear] table enables)")
    interactions: bool = _spec(False, None, "also the spectrum with the interaction term "
                                            "(TLS: f of App. B; electron: Eq. 23)")
    distance_matrix: bool = _spec(False, None, "electron: also the bare e^(-r/xi) spectrum (Fig. 16)")
    bins: int = _spec(80, _positive, "bins of the ln(lambda) histogram")
    alpha: float = _spec(0.5, _positive, "plateau-edge level (analysis.rates.plateau_edges)")
    times_per_decade: int = _spec(10, _positive, "time grid of the relaxation prediction")


def _dynamics_config():
    """[dynamics] of a run file: the run-file fields of kmc.dynamics.DynamicsParams (same
    names, types, defaults and order), plus ``enabled`` and ``initial_state_file`` in place
    of ``initial_state``. The values are checked once, by DynamicsParams
    (RunConfig.validate); T, a, xi and gamma0 come from [model]."""
    spec = [("enabled", bool, _spec(False, None, "run the experiment (a [dynamics] table "
                                                 "enables)"))]
    for f in fields(DynamicsParams):
        if f.name == "initial_state":
            spec.append(("initial_state_file", str,
                         _spec("", None, "state: .npy of shape (N,) or (R, N)")))
        elif f.metadata.get("run_file"):
            spec.append((f.name, f.type, _spec(f.default, None, f.metadata["doc"])))
    cls = dataclasses.make_dataclass("DynamicsConfig", spec, frozen=True)
    cls.__module__ = __name__  # picklable: worker processes receive RunConfigs
    return cls


DynamicsConfig = _dynamics_config()


@dataclass(frozen=True)
class EnsembleConfig:
    realizations: int = _spec(10, _positive, "disorder realizations per sweep point")
    seed: int = _spec(2017, _non_negative, "root seed")
    workers: int = _spec(1, _non_negative, "worker processes (0: all cores)")
    backend: str = _spec("local", _choice("local", "dask"), "where the tasks run")
    scheduler: str = _spec("", None, "dask scheduler address ('' starts a LocalCluster)")


@dataclass(frozen=True)
class OutputConfig:
    path: str = _spec("results/run.h5", None, "result file")
    figures: bool = _spec(True, None, "write PNG figures next to the result file")
    dos_bins: int = _spec(120, _positive, "bins of the DOS histogram")
    dos_range: tuple = _spec((), None, "[lo, hi] of the DOS histogram; [] = automatic")
    flush_seconds: float = _spec(10.0, _non_negative, "how often finished work is written")


@dataclass(frozen=True)
class SweepConfig:
    mode: str = _spec("grid", _choice("grid", "zip"), "combine axes as a grid or in parallel")
    axes: tuple = _spec((), None, "((dotted key, (values...)), ...)")
    W_over_T: float = _spec(0.0, _non_negative, "if > 0: T = W / W_over_T at every point")
    W_over_J: tuple = _spec((), None, "ratios W/J; with W2_plus_J2 sets W and J")
    W2_plus_J2: float = _spec(2.0, _positive, "W^2 + J^2 kept fixed with W_over_J")


SECTIONS = {"model": ModelConfig, "disorder": DisorderConfig, "solver": SolverConfig,
            "linear": LinearConfig, "dynamics": DynamicsConfig,
            "ensemble": EnsembleConfig, "output": OutputConfig}
_SWEEPABLE = ("model", "disorder", "solver", "linear", "dynamics")
_ENABLED_BY_PRESENCE = ("linear", "dynamics")


@dataclass(frozen=True)
class RunConfig:
    """A complete, validated run: one object per table of the run file."""

    model: ModelConfig = ModelConfig()
    disorder: DisorderConfig = DisorderConfig()
    solver: SolverConfig = SolverConfig()
    linear: LinearConfig = LinearConfig()
    dynamics: DynamicsConfig = DynamicsConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    output: OutputConfig = OutputConfig()
    sweep: SweepConfig = SweepConfig()
    text: str = field(default="", compare=False, repr=False)

    @classmethod
    def from_dict(cls, data, text=""):
        """Build and validate from a nested dict (the parsed TOML)."""
        if not isinstance(data, dict):
            raise ConfigError("", f"expected a table, got {type(data).__name__}")
        unknown = set(data) - set(SECTIONS) - {"sweep"}
        if unknown:
            key = sorted(unknown)[0]
            raise ConfigError(key, f"unknown table; expected one of "
                                   f"{', '.join(sorted(list(SECTIONS) + ['sweep']))}")
        parts = {}
        for name, section in SECTIONS.items():
            table = data.get(name, {})
            if name in _ENABLED_BY_PRESENCE and name in data and isinstance(table, dict):
                table = {"enabled": True, **table}
            parts[name] = _build(section, table, name)
        parts["sweep"] = _build_sweep(data.get("sweep", {}))
        config = cls(**parts, text=text)
        config.validate()
        for _, point in config.points():
            point.validate()
        return config

    def validate(self):
        """Checks that involve more than one key."""
        m, dis = self.model, self.disorder
        if m.N < 2:
            raise ConfigError("model.N", f"must be >= 2, got {m.N}")
        if m.dimension not in (0, 1, 2, 3):
            raise ConfigError("model.dimension", f"expected 1, 2 or 3, got {m.dimension}")
        if m.name == "electron":
            if not 0.0 < m.filling < 1.0:
                raise ConfigError("model.filling", f"must be in (0, 1), got {m.filling}")
            electrons = round(m.filling * m.N)
            if not 0 < electrons < m.N:
                raise ConfigError("model.filling",
                                  f"gives {electrons} electrons on {m.N} sites; need 0 < M < N")
        if dis.delta0_min >= dis.delta0_max:
            raise ConfigError("disorder.delta0_min",
                              f"must be < disorder.delta0_max = {dis.delta0_max}, "
                              f"got {dis.delta0_min}")
        for t in self.solver.anneal:
            _positive("solver.anneal", t)
        if self.dynamics.enabled:
            state = self.dynamics.protocol == "state"
            if state and not self.dynamics.initial_state_file:
                raise ConfigError("dynamics.initial_state_file",
                                  "protocol 'state' needs a .npy file of initial states")
            # DynamicsParams checks every value; the file is read per realization, so an
            # empty placeholder state stands in for it here
            self.dynamics_params(initial_state=() if state else None)
        if self.output.dos_range and not (len(self.output.dos_range) == 2
                                          and self.output.dos_range[0] < self.output.dos_range[1]):
            raise ConfigError("output.dos_range", f"expected [lo, hi] with lo < hi, "
                                                  f"got {list(self.output.dos_range)}")

    def dynamics_params(self, initial_state=None):
        """kmc.dynamics.DynamicsParams of this (point) configuration."""
        values = dataclasses.asdict(self.dynamics)
        values.pop("enabled"), values.pop("initial_state_file")
        m = self.model
        return DynamicsParams(temperature=m.temperature, a=m.a, xi=m.xi, gamma0=m.gamma0,
                              initial_state=initial_state, **values)

    def points(self):
        """The sweep points, each a RunConfig with the swept values substituted.

        Returns a list of (values, RunConfig), values a dict {dotted key: value}.
        """
        sw = self.sweep
        axes = list(sw.axes)
        if sw.W_over_J:
            axes.append(("W_over_J", sw.W_over_J))
        if not axes:
            combos = [()]
        elif sw.mode == "grid":
            combos = list(itertools.product(*[v for _, v in axes]))
        else:
            lengths = {len(v) for _, v in axes}
            if len(lengths) != 1:
                raise ConfigError("sweep", f"mode 'zip' needs lists of equal length, got "
                                           f"lengths {sorted(lengths)}")
            combos = list(zip(*[v for _, v in axes]))
        out = []
        for combo in combos:
            values = dict(zip([k for k, _ in axes], combo))
            config = self
            for key, value in values.items():
                if key == "W_over_J":
                    j = math.sqrt(sw.W2_plus_J2 / (1.0 + value * value))
                    config = config.with_value("disorder.W", value * j)
                    config = config.with_value("disorder.J", j)
                else:
                    config = config.with_value(key, value)
            if sw.W_over_T > 0:
                config = config.with_value("model.temperature",
                                           config.disorder.W / sw.W_over_T)
            out.append((values, replace(config, sweep=SweepConfig())))
        return out

    def with_value(self, dotted, value):
        """A copy with one ``table.key`` replaced (type-checked)."""
        section, key = _split(dotted)
        current = getattr(self, section)
        spec = {f.name: f for f in fields(current)}
        value = _coerce(spec[key], value, dotted)
        return replace(self, **{section: replace(current, **{key: value})})

    def resolved(self):
        """Plain nested dict of every value, defaults included (stored in result files)."""
        out = {}
        for name in list(SECTIONS) + ["sweep"]:
            out[name] = {k: _plain(v) for k, v in
                         dataclasses.asdict(getattr(self, name)).items()}
        for name in _ENABLED_BY_PRESENCE:  # a disabled table is written as absent
            if not out[name]["enabled"]:
                del out[name]
        return out


def load(path, overrides=()):
    """Parse a TOML run file and ``--set key=value`` overrides into a RunConfig."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError("", f"cannot read run file {path}: {exc.strerror}") from None
    text = raw.decode("utf-8", errors="replace")
    return loads(text, overrides)


def loads(text, overrides=()):
    """Parse run-file text (and overrides) into a RunConfig."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"run file is not valid TOML: {exc}") from None
    for item in overrides:
        key, sep, raw_value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError("--set", f"expected table.key=value, got {item!r}")
        *tables, last = key.strip().split(".")
        target = data
        for t in tables:
            target = target.setdefault(t, {})
            if not isinstance(target, dict):
                raise ConfigError(key, "is not a table")
        target[last] = _parse_value(raw_value.strip())
    return RunConfig.from_dict(data, text=text)


def _parse_value(raw):
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _split(dotted):
    section, _, key = dotted.partition(".")
    if section not in _SWEEPABLE or key not in {f.name for f in fields(SECTIONS[section])}:
        allowed = ", ".join(f"{s}.<key>" for s in _SWEEPABLE)
        raise ConfigError("sweep", f"unknown parameter {dotted!r}; expected {allowed}")
    return section, key


def _build(section_cls, table, path):
    if not isinstance(table, dict):
        raise ConfigError(path, f"expected a table, got {type(table).__name__}")
    spec = {f.name: f for f in fields(section_cls)}
    unknown = set(table) - set(spec)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{path}.{key}", f"unknown key; expected one of {', '.join(spec)}")
    values = {k: _coerce(spec[k], v, f"{path}.{k}") for k, v in table.items()}
    return section_cls(**values)


def _coerce(spec, value, key):
    kind = spec.type
    if kind in ("float", float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"expected a number, got {value!r}")
        value = float(value)
        if math.isnan(value):
            raise ConfigError(key, "expected a number, got nan")
    elif kind in ("int", int):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(key, f"expected an integer, got {value!r}")
    elif kind in ("bool", bool):
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
    elif kind in ("str", str):
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
    elif kind in ("tuple", tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"expected a list, got {value!r}")
        value = tuple(value)
    check = spec.metadata.get("check")
    if check is not None:
        check(key, value)
    return value


def _build_sweep(table):
    if not isinstance(table, dict):
        raise ConfigError("sweep", f"expected a table, got {type(table).__name__}")
    table = dict(table)
    scalars = {}
    for name in ("mode", "W_over_T", "W_over_J", "W2_plus_J2"):
        if name in table:
            scalars[name] = table.pop(name)
    config = _build(SweepConfig, scalars, "sweep")
    axes = []
    for key, values in table.items():
        if isinstance(values, dict):  # a nested table [sweep.disorder] W = [...]
            for sub, sub_values in values.items():
                axes.append(_axis(f"{key}.{sub}", sub_values))
        else:
            axes.append(_axis(key, values))
    for t in config.W_over_J:
        _positive("sweep.W_over_J", t)
    return replace(config, axes=tuple(axes))


def _axis(dotted, values):
    _split(dotted)
    if not isinstance(values, list) or not values:
        raise ConfigError(f"sweep.{dotted}", f"expected a non-empty list, got {values!r}")
    return dotted, tuple(values)


def _plain(v):
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v
