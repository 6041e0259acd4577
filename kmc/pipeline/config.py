"""Run files: TOML parsed once into frozen, typed config objects.

The Python API builds the same objects (``RunConfig.from_dict``), so there is one set of
checks. Unknown keys are errors; every error names the dotted key, what was expected and
what was found. ``[sweep]`` expands a run into points, each a complete ``RunConfig``.

Layout of a run file (all tables optional except ``[model]``)::

    [model]     name, N, dimension, density, box, temperature, filling, a, xi, gamma0
    [disorder]  W, J, delta0_min, delta0_max
    [solver]    tol, max_sweeps, init, anneal, precision
    [linear]    linearized rates per realization (present = enabled)
    [dynamics]  time-domain experiment per realization (present = enabled)
    [ensemble]  realizations, seed, workers, backend, scheduler, dashboard
    [output]    path, figures, dos_bins, dos_range, flush_seconds
    [sweep]     mode = "grid" | "zip", "<table>.<key>" = [values...],
                W_over_T = ratio, W_over_J = [...] with W2_plus_J2 = total
"""
import contextlib
import dataclasses
import difflib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field, fields, replace

from kmc.dynamics.params import DynamicsParams
from kmc.errors import ConfigError
from kmc.geometry import BOX_KINDS, paper_density
from kmc.model import check_temperature

MODELS = ("tls", "electron")

# Integers are stored in int64 datasets and passed to NumPy: refuse what does not fit.
_INT_LIMIT = 2 ** 63


def _check(describe, ok):
    """A check of one value: ``describe`` completes "must be ..." and is shown in the key
    reference (``kmc keys``)."""
    def check(key, v):
        if not ok(v):
            raise ConfigError(key, f"must be {describe}, got {v}")
    check.describe = describe
    return check


_positive = _check("> 0", lambda v: v > 0)
_non_negative = _check(">= 0", lambda v: v >= 0)


def _at_least(n):
    return _check(f">= {n}", lambda v: v >= n)


_unit_interval = _check("in (0, 1)", lambda v: 0 < v < 1)


def _choice(*allowed):
    names = ", ".join(repr(a) for a in allowed)

    def check(key, v):
        if v not in allowed:
            raise ConfigError(key, f"expected one of {names}, got {v!r}")
    check.describe = f"one of {names}"
    return check


def _spec(default, check=None, doc="", *, item=None, unit="", accepted=""):
    """Metadata of one key: default, check of the value, meaning, element type of a list.

    Every float must be finite unless its default is inf, which is then its documented
    meaning (``dynamics.initial_temperature = inf``: random initial states). ``item`` is the
    element type of a list ("float"); ``check`` then applies to each element. ``accepted``
    describes the accepted values for the key reference when another object checks them.
    """
    return field(default=default, metadata={"check": check, "doc": doc, "item": item,
                                            "unit": unit, "accepted": accepted})


@dataclass(frozen=True)
class ModelConfig:
    name: str = _spec("tls", _choice(*MODELS), "model: 'tls' or 'electron'")
    N: int = _spec(1000, _at_least(2), "number of sites")
    dimension: int = _spec(0, _choice(0, 1, 2, 3), "1, 2 or 3; 0 means the model's default (TLS 3, electron 2)")
    density: float = _spec(1.0, _positive, "sites per unit volume; distances and xi in that "
                                           "length unit, J the interaction at unit distance "
                                           "(density 1: unit = r_nn)")
    box: str = _spec("fixed-density", _choice(*BOX_KINDS),
                     "geometry: 'fixed-density' (side (N/density)^(1/d)) or 'paper' (side "
                     "N^(1/d) - 1 of the paper's scripts: each point's density is set to "
                     "N / (N^(1/d) - 1)^d, which grows as N shrinks; model.density not set)")
    temperature: float = _spec(0.05, check_temperature, "T in units of J")
    filling: float = _spec(0.5, _unit_interval, "electron glass: K = M / N")
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
    delta0_min: float = _spec(1e-7, _positive, "TLS: smallest tunneling amplitude (<= delta0_max; equal: one Delta0)")
    delta0_max: float = _spec(1e-1, _positive, "TLS: largest tunneling amplitude")


@dataclass(frozen=True)
class SolverConfig:
    tol: float = _spec(1e-8, _positive, "convergence: max |change| of a field in a sweep")
    max_sweeps: int = _spec(10_000, _positive, "sweeps allowed per temperature stage")
    init: str = _spec("bare", _choice("bare", "random"), "initial fields")
    anneal: tuple = _spec((), _positive, "temperatures visited before the target one",
                         item="float")
    precision: str = _spec("float64", _choice("float64", "float32"), "coupling matrix dtype")


@dataclass(frozen=True)
class LinearConfig:
    enabled: bool = _spec(False, None, "compute the linearized rates (a [linear] table enables)")
    interactions: bool = _spec(False, None, "also the spectrum with the interaction term "
                                            "(TLS: f of App. B; electron: Eq. 23)")
    distance_matrix: bool = _spec(False, None, "electron: also the bare e^(-r/xi) spectrum (Fig. 16)")
    bins: int = _spec(80, _positive, "bins of the ln(lambda) histogram")
    alpha: float = _spec(0.5, _unit_interval, "plateau-edge level (analysis.rates.plateau_edges)")
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
            spec.append((f.name, f.type, _spec(f.default, None, f.metadata["doc"],
                                               accepted=f.metadata.get("accepted", ""))))
    cls = dataclasses.make_dataclass("DynamicsConfig", spec, frozen=True)
    cls.__module__ = __name__  # picklable: worker processes receive RunConfigs
    return cls


DynamicsConfig = _dynamics_config()


@dataclass(frozen=True)
class EnsembleConfig:
    realizations: int = _spec(10, _positive, "disorder realizations per sweep point")
    seed: int = _spec(2017, _non_negative, "root seed")
    workers: int = _spec(1, _non_negative, "worker processes (0: every CPU this process may use: affinity mask, SLURM allocation)")
    backend: str = _spec("local", _choice("local", "dask"), "where the tasks run")
    scheduler: str = _spec("", None, "dask scheduler address ('' starts a LocalCluster)")
    dashboard: str = _spec("", None, "dashboard address of the Dask LocalCluster, e.g. "
                           "':8787' ('' = none; needs bokeh, in the dask extra)")


@dataclass(frozen=True)
class OutputConfig:
    path: str = _spec("results/run.h5", None, "result file")
    figures: bool = _spec(True, None, "write figures next to the result file")
    dos_bins: int = _spec(120, _positive, "bins of the DOS histogram")
    dos_range: tuple = _spec((), None, "[lo, hi] of the DOS histogram; [] = automatic",
                            item="float")
    flush_seconds: float = _spec(10.0, _non_negative, "how often finished work is written")
    format: str = _spec("png", _choice("png", "pdf", "svg"),
                        "figure files: png (150 dpi, screen), pdf or svg (vector, print)")


@dataclass(frozen=True)
class SweepConfig:
    mode: str = _spec("grid", _choice("grid", "zip"), "combine axes as a grid or in parallel")
    axes: tuple = _spec((), None, "((dotted key, (values...)), ...)")
    W_over_T: float = _spec(0.0, _non_negative, "if > 0: T = W / W_over_T at every point")
    W_over_J: tuple = _spec((), _positive, "ratios W/J; with W2_plus_J2 sets W and J",
                           item="float")
    W2_plus_J2: float = _spec(2.0, _positive, "W^2 + J^2 kept fixed with W_over_J")


SECTIONS = {"model": ModelConfig, "disorder": DisorderConfig, "solver": SolverConfig,
            "linear": LinearConfig, "dynamics": DynamicsConfig,
            "ensemble": EnsembleConfig, "output": OutputConfig}
_SWEEPABLE = ("model", "disorder", "solver", "linear", "dynamics")
_ENABLED_BY_PRESENCE = ("linear", "dynamics")
# keys of [sweep] that are settings of the sweep, not axes
_SWEEP_SCALARS = ("mode", "W_over_T", "W_over_J", "W2_plus_J2")


class _Problems:
    """Every problem found in a run file, so that one error reports them all at once."""

    def __init__(self):
        self.items = []

    def add(self, key, message):
        self.items.append((key, message))

    @contextlib.contextmanager
    def catch(self):
        try:
            yield
        except ConfigError as exc:
            self.items.extend(exc.problems)

    def raise_if_any(self):
        if self.items:
            raise ConfigError.combine(self.items)


@dataclass(frozen=True)
class RunConfig:
    """A complete, validated run: one object per table of the run file.

    ``text`` is the run file as written and ``overrides`` the ``--set`` values applied to it,
    as ((dotted key, value), ...); neither takes part in comparisons.
    """

    model: ModelConfig = ModelConfig()
    disorder: DisorderConfig = DisorderConfig()
    solver: SolverConfig = SolverConfig()
    linear: LinearConfig = LinearConfig()
    dynamics: DynamicsConfig = DynamicsConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    output: OutputConfig = OutputConfig()
    sweep: SweepConfig = SweepConfig()
    text: str = field(default="", compare=False, repr=False)
    overrides: tuple = field(default=(), compare=False, repr=False)

    @classmethod
    def from_dict(cls, data, text="", overrides=(), require_model=False):
        """Build and validate from a nested dict (the parsed TOML).

        Every problem of the file is reported in one ConfigError (joined with "; ");
        ``require_model`` adds one saying that the run file has no ``[model]`` table.
        """
        if not isinstance(data, dict):
            raise ConfigError("", f"expected a table, got {type(data).__name__}")
        problems = _Problems()
        tables = sorted(list(SECTIONS) + ["sweep"])
        for key in sorted(set(data) - set(tables)):
            problems.add(key, f"unknown table; expected one of {', '.join(tables)}"
                              f"{_did_you_mean(key, tables)}")
        parts = {}
        for name, section in SECTIONS.items():
            table = data.get(name, {})
            if name in _ENABLED_BY_PRESENCE and name in data and isinstance(table, dict):
                table = {"enabled": True, **table}
            parts[name] = _build(section, table, name, problems)
        parts["sweep"] = _build_sweep(data.get("sweep", {}), problems)
        if not problems.items:
            config = cls(**parts, text=text, overrides=tuple(overrides))
            with problems.catch():
                config.validate()
                for _, point in config.points():
                    point.validate()
        if require_model:
            what = "is empty" if not text.strip() else "has no [model] table"
            problems.add("model", f"the run file {what}; it needs at least [model] with "
                                  f"name = 'tls' or 'electron'")
        problems.raise_if_any()
        return config

    def validate(self):
        """Checks that involve more than one key (each key's own range is checked on input)."""
        problems = _Problems()
        m, dis = self.model, self.disorder
        if m.name == "electron":
            electrons = round(m.filling * m.N)
            if not 0 < electrons < m.N:
                problems.add("model.filling",
                             f"gives {electrons} electrons on {m.N} sites; need 0 < M < N")
        if m.box == "paper" and ("model.density" in dict(self.sweep.axes)
                                 or m.density not in (1.0, paper_density(m.N, m.d))):
            # a stored point holds the density that the paper's box gave it
            problems.add("model.density", "is set from N by model.box = 'paper' "
                                          "(N / (N^(1/d) - 1)^d); remove it or use "
                                          "model.box = 'fixed-density'")
        # delta0_min = delta0_max is a legitimate single-Delta0 ensemble
        if dis.delta0_min > dis.delta0_max:
            problems.add("disorder.delta0_min",
                         f"must be < disorder.delta0_max = {dis.delta0_max}, got "
                         f"{dis.delta0_min} (or equal to it, for a single Delta0)")
        if self.dynamics.enabled:
            state = self.dynamics.protocol == "state"
            if state and not self.dynamics.initial_state_file:
                problems.add("dynamics.initial_state_file",
                             "protocol 'state' needs a .npy file of initial states")
            # DynamicsParams checks every value; the file is read per realization, so an
            # empty placeholder state stands in for it here
            with problems.catch():
                self.dynamics_params(initial_state=() if state else None)
        if (m.name == "electron" and self.linear.enabled and dis.W == 0
                and self.solver.init == "bare"):
            # eps_i = 0 and uniform initial fields: the uniform solution E_i = 0 is a fixed
            # point the solver never leaves, and Eq. 21 diverges at equal energies
            problems.add("disorder.W", "the electron glass at W = 0 with solver.init = "
                                       "'bare' stays at the uniform mean field (all energies "
                                       "equal), where the linearized rates (Eq. 21) diverge; "
                                       "use W > 0 or solver.init = 'random'")
        out = self.output
        if out.dos_range:
            if not (len(out.dos_range) == 2 and out.dos_range[0] < out.dos_range[1]):
                problems.add("output.dos_range", f"expected [lo, hi] with lo < hi, "
                                                 f"got {list(out.dos_range)}")
        elif dis.W == 0 and dis.J == 0 and not self.sweep.W_over_J:
            problems.add("output.dos_range", "the automatic range (a multiple of W and J) is "
                                             "empty at disorder.W = disorder.J = 0; give "
                                             "[lo, hi]")
        problems.raise_if_any()

    def check_files(self):
        """Check the input files a run reads (before it starts; not on reading a result
        file, whose run may have had them elsewhere): the initial states of protocol
        'state' at every point."""
        problems = _Problems()
        for _, point in self.points():
            if point.dynamics.enabled and point.dynamics.protocol == "state":
                with problems.catch():
                    point._check_state_file()
        problems.raise_if_any()

    def _check_state_file(self):
        """The initial states of protocol 'state' (read again per realization): a readable
        .npy array of shape (N,) or (R, N) with R >= ensemble.realizations, holding
        S_i = +-1/2 (TLS) or n_i in {0, 1} with M electrons (electron glass)."""
        import numpy as np
        key, path = "dynamics.initial_state_file", self.dynamics.initial_state_file
        try:
            states = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            # numpy reports a file without the .npy header as "pickled data"
            reason = getattr(exc, "strerror", None) or "not a .npy file of numbers"
            raise ConfigError(key, f"cannot read {path!r} as a .npy array: {reason}") from None
        n, r = self.model.N, self.ensemble.realizations
        if not (states.shape == (n,) or (states.ndim == 2 and states.shape[1] == n
                                         and states.shape[0] >= r)):
            raise ConfigError(key, f"{path!r}: expected shape ({n},) or (R >= {r}, {n}), got "
                                   f"{states.shape}")
        if not np.issubdtype(states.dtype, np.number):
            raise ConfigError(key, f"{path!r}: expected numbers, got dtype {states.dtype}")
        rows = states.reshape(-1, n).astype(float)
        if self.model.name == "tls":
            if not np.all(np.isin(rows, (-0.5, 0.5))):
                raise ConfigError(key, f"{path!r}: TLS states must be -0.5 or +0.5")
        else:
            electrons = round(self.model.filling * n)
            if not np.all(np.isin(rows, (0, 1))) or np.any(rows.sum(axis=1) != electrons):
                raise ConfigError(key, f"{path!r}: electron states must be 0 or 1 with "
                                       f"{electrons} electrons (model.filling) per row")

    def dynamics_params(self, initial_state=None):
        """kmc.dynamics.DynamicsParams of this (point) configuration.

        With protocol 'state' and no ``initial_state`` (the time grid, the checks), an empty
        placeholder stands in for the states that each realization reads from its file.
        """
        if initial_state is None and self.dynamics.protocol == "state":
            initial_state = ()
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
            if config.model.box == "paper":
                config = config.with_value("model.density",
                                           paper_density(config.model.N, config.model.d))
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
    """Parse a TOML run file and ``--set`` overrides into a RunConfig.

    A run file must name its model: a file without a ``[model]`` table (an empty file, a
    misspelt table) is refused rather than run on defaults.
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError("", f"cannot read run file {path}: {exc.strerror}") from None
    text = raw.decode("utf-8", errors="replace")
    return loads(text, overrides, require_model=True)


def loads(text, overrides=(), *, require_model=False):
    """Parse run-file text and overrides into a RunConfig.

    Parameters
    ----------
    text : str
        TOML run file.
    overrides : sequence of str
        ``--set`` values, each a TOML ``key = value`` line with TOML's own dotted and quoted
        keys (``model.N=200``, ``sweep."disorder.J"=[1.0]``); a value that is not TOML is
        taken as a string (``model.name=electron``). An override replaces what it names: a
        sweep axis given as ``sweep.disorder.J`` or ``sweep."disorder.J"`` is the same axis.
        The same key given twice is refused.
    require_model : bool
        Refuse text without a ``[model]`` table (``load`` of a run file sets it).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"run file is not valid TOML: {exc}") from None
    has_model = "model" in data  # in the file itself, not only from an override
    if isinstance(data.get("sweep"), dict):
        data["sweep"] = _canonical_sweep(data["sweep"])
    applied = _apply_overrides(data, overrides)
    config = RunConfig.from_dict(data, text=text, overrides=applied,
                                 require_model=require_model and not has_model)
    return config


def _apply_overrides(data, overrides):
    """Set every ``--set`` value into ``data``; returns ((dotted key, value), ...)."""
    applied = {}
    for item in overrides:
        for path, value in _parse_override(item):
            if len(path) == 1 and value == {}:  # --set linear={} enables a table
                path, value = path, {}
            elif len(path) < 2:
                raise ConfigError("--set", f"expected table.key=value, got {item!r}")
            if path[0] == "sweep" and len(path) == 3:  # sweep.disorder.J names one axis
                path = ("sweep", f"{path[1]}.{path[2]}")
            dotted = ".".join(path[:1] + tuple(f'"{p}"' if "." in p else p for p in path[1:]))
            if path in applied:
                raise ConfigError("--set", f"{dotted} given twice")
            target = data
            for depth, name in enumerate(path[:-1]):
                target = target.setdefault(name, {})
                if not isinstance(target, dict):
                    raise ConfigError(".".join(path[:depth + 1]), "is not a table")
            if isinstance(target.get(path[-1]), dict) and value != {}:
                raise ConfigError(dotted, "is a table; set one of its keys")
            target[path[-1]] = value
            applied[path] = (dotted, value)
    return tuple(applied.values())


def _parse_override(item):
    """[(key path, value), ...] of one ``--set`` item."""
    try:
        parsed = tomllib.loads(item)
    except tomllib.TOMLDecodeError as exc:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", f"expected table.key=value, got {item!r}") from None
        try:  # a bare word is a string: --set model.name=electron
            parsed = tomllib.loads(f"{key.strip()} = {json.dumps(raw.strip())}")
        except tomllib.TOMLDecodeError:
            raise ConfigError("--set", f"cannot parse {item!r} as key = value: {exc}") from None
    if not parsed:
        raise ConfigError("--set", f"expected table.key=value, got {item!r}")
    return list(_leaves(parsed))


def _leaves(table, prefix=()):
    for key, value in table.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def _canonical_sweep(table):
    """[sweep] with every axis under its dotted name: ``"disorder.W" = [...]`` and
    ``[sweep.disorder] W = [...]`` are the same axis, given twice if both appear."""
    out = {}
    for key, value in table.items():
        if key in _SWEEP_SCALARS or not isinstance(value, dict):
            items = [(key, value)]
        else:
            items = [(f"{key}.{sub}", v) for sub, v in value.items()]
        for name, v in items:
            if name in out:
                raise ConfigError(f"sweep.{name}", "axis given twice")
            out[name] = v
    return out


def _did_you_mean(key, candidates):
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _split(dotted):
    section, _, key = dotted.partition(".")
    if section not in _SWEEPABLE or key not in {f.name for f in fields(SECTIONS[section])}:
        allowed = ", ".join(f"{s}.<key>" for s in _SWEEPABLE)
        names = [f"{s}.{f.name}" for s in _SWEEPABLE for f in fields(SECTIONS[s])]
        raise ConfigError("sweep", f"unknown parameter {dotted!r}; expected {allowed}"
                                   f"{_did_you_mean(dotted, names)}")
    return section, key


def _build(section_cls, table, path, problems):
    """One section from its table; problems are collected, the section falls back to
    defaults for the keys in error (the caller raises before using it)."""
    if not isinstance(table, dict):
        problems.add(path, f"expected a table, got {type(table).__name__}")
        return section_cls()
    spec = {f.name: f for f in fields(section_cls)}
    values = {}
    for key in table:
        if key not in spec:
            problems.add(f"{path}.{key}", f"unknown key; expected one of {', '.join(spec)}"
                                          f"{_did_you_mean(key, spec)}")
            continue
        with problems.catch():
            values[key] = _coerce(spec[key], table[key], f"{path}.{key}")
    return section_cls(**values)


def _coerce(spec, value, key):
    """Type-check and normalise one value against its field's metadata."""
    kind = spec.type
    check = spec.metadata.get("check")
    if kind in ("tuple", tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"expected a list, got {value!r}")
        if spec.metadata.get("item") == "float":
            items = []
            for i, v in enumerate(value):
                try:
                    items.append(_number(v, key, allow_inf=False))
                except ConfigError as exc:
                    raise ConfigError(key, f"element {i}: {exc.message}") from None
                if check is not None:
                    check(key, items[-1])
            return tuple(items)
        return tuple(value)
    if kind in ("float", float):
        value = _number(value, key, allow_inf=math.isinf(spec.default))
    elif kind in ("int", int):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(key, f"expected an integer, got {value!r}")
        if abs(value) >= _INT_LIMIT:
            raise ConfigError(key, f"must be below 2^63, got {value}")
    elif kind in ("bool", bool):
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
    elif kind in ("str", str):
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
    if check is not None:
        check(key, value)
    return value


def _number(value, key, allow_inf):
    """A finite float (or +-inf when the key documents a meaning for it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"expected a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:
        raise ConfigError(key, f"must be finite, got {value}") from None
    if math.isnan(value):
        raise ConfigError(key, "expected a number, got nan")
    if math.isinf(value) and not allow_inf:
        raise ConfigError(key, f"must be finite, got {value}")
    return value


def _build_sweep(table, problems):
    if not isinstance(table, dict):
        problems.add("sweep", f"expected a table, got {type(table).__name__}")
        return SweepConfig()
    try:
        table = _canonical_sweep(table)
    except ConfigError as exc:
        problems.items.extend(exc.problems)
        return SweepConfig()
    scalars = {name: table.pop(name) for name in _SWEEP_SCALARS if name in table}
    config = _build(SweepConfig, scalars, "sweep", problems)
    axes = []
    for key, values in table.items():
        with problems.catch():
            axes.append(_axis(key, values))
    if "W_over_J" in scalars:
        if scalars["W_over_J"] == []:
            problems.add("sweep.W_over_J", "expected a non-empty list of ratios W/J > 0, "
                                           "got []")
        if "W2_plus_J2" not in scalars:
            problems.add("sweep.W2_plus_J2", "required with sweep.W_over_J (the fixed "
                                             "W^2 + J^2 that sets W and J at every point)")
        for name in ("disorder.W", "disorder.J"):
            if name in table:
                problems.add("sweep.W_over_J", f"conflicts with the axis {name!r}: W_over_J "
                                               f"sets disorder.W and disorder.J; keep one")
    elif "W2_plus_J2" in scalars:
        problems.add("sweep.W2_plus_J2", "is only used with sweep.W_over_J, which is not given")
    if config.W_over_T > 0 and "model.temperature" in table:
        problems.add("sweep.W_over_T", "conflicts with the axis 'model.temperature': W_over_T "
                                       "sets model.temperature = W / W_over_T; keep one")
    return replace(config, axes=tuple(axes))


def _axis(dotted, values):
    section, key = _split(dotted)
    if not isinstance(values, list) or not values:
        raise ConfigError(f"sweep.{dotted}", f"expected a non-empty list, got {values!r}")
    spec = {f.name: f for f in fields(SECTIONS[section])}[key]
    for v in values:
        _coerce(spec, v, f"sweep.{dotted}")
    return dotted, tuple(values)


def _plain(v):
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


# ---------------------------------------------------------------------------------------
# Key reference (``kmc keys``, docs/run-file.md), generated from the metadata above
# ---------------------------------------------------------------------------------------

_TABLE_DOCS = {
    "model": "which glass, its size, geometry, temperature and rate prefactors (required)",
    "disorder": "disorder and interaction strengths",
    "solver": "mean-field solver (Eq. 4 for the TLS glass, Eq. 18 for the electron glass)",
    "linear": "linearized relaxation rates per realization; present = enabled",
    "dynamics": "time-domain experiment per realization; present = enabled. T, a, xi and "
                "gamma0 come from [model]",
    "ensemble": "realizations and where they run (not part of a result file's identity)",
    "output": "result file, figures, DOS histogram",
    "sweep": "points of the run: \"table.key\" = [values] axes, combined by mode; W_over_J "
             "with W2_plus_J2 and W_over_T set W, J and T from ratios",
}


def key_rows():
    """[(table, key, type, default, accepted values, meaning)] of every run-file key."""
    rows = []
    for name, section in list(SECTIONS.items()) + [("sweep", SweepConfig)]:
        for f in fields(section):
            if f.name == "enabled" or (name == "sweep" and f.name == "axes"):
                continue
            rows.append((name, f.name, _type_name(f), _default_text(f.default),
                         _accepted(f), f.metadata.get("doc", "")))
        if name == "sweep":
            rows.append(("sweep", '"<table>.<key>"', "list", "-",
                         "non-empty list of values of that key; tables model, disorder, "
                         "solver, linear, dynamics", "one sweep axis"))
    return rows


def key_reference(markdown=False):
    """Text (or Markdown) of every key with its default, accepted values and meaning."""
    rows = key_rows()
    lines = []
    if markdown:
        lines += ["# Run-file keys", "",
                  "Generated from the config metadata (`kmc/pipeline/config.py`, "
                  "`kmc/dynamics/params.py`) by", "",
                  "    python -m kmc keys --markdown > docs/run-file.md", "",
                  "Every float must be finite unless its accepted values say inf. A run "
                  "file needs at least a `[model]` table; unknown tables and keys are "
                  "errors. `--set` overrides take the same keys as TOML `key = value`, "
                  "e.g. `--set model.N=200` or `--set 'sweep.\"disorder.J\"=[1.0]'`.", ""]
    table = None
    for t, key, kind, default, accepted, doc in rows:
        if t != table:
            table = t
            if markdown:
                lines += [f"## [{t}]", "", _TABLE_DOCS[t], "",
                          "| key | type | default | accepted | meaning |",
                          "| --- | --- | --- | --- | --- |"]
            else:
                lines += ["" if lines else "", f"[{t}]  {_TABLE_DOCS[t]}"]
        if markdown:
            cells = [f"`{key}`", kind, f"`{default}`", accepted, doc]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        else:
            lines.append(f"  {key:<24} {kind:<6} default {default:<16} {accepted}")
            lines.append(f"  {'':<24} {doc}")
        if markdown and (t, key) == rows[-1][:2]:
            lines.append("")
    text = "\n".join(lines).strip("\n") + "\n"
    if markdown:
        text = text.replace("\n## ", "\n\n## ").replace("\n\n\n", "\n\n")
    return text


def _type_name(f):
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    if kind == "tuple":
        return "list of float" if f.metadata.get("item") == "float" else "list"
    return {"str": "string", "bool": "bool", "int": "int", "float": "float"}.get(kind, kind)


def _default_text(value):
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return repr(value)


def _accepted(f):
    parts = []
    check = f.metadata.get("check")
    if check is not None and hasattr(check, "describe"):
        parts.append(check.describe)
    elif f.metadata.get("accepted"):
        parts.append(f.metadata["accepted"])
    elif f.name == "temperature":
        parts.append("> 0")
    kind = _type_name(f)
    if kind == "float" and not (isinstance(f.default, float) and math.isinf(f.default)):
        if not any("finite" in p for p in parts):
            parts.append("finite")
    if kind == "list of float":
        parts = [("each " + p) if p else p for p in parts] + ["finite"]
    return ", ".join(p for p in parts if p)
