"""Exact classical master equation over all configurations of a small system.

dp/dt = p Q, with Q[c, c'] the rate of the single event c -> c' and Q[c, c] = -sum of the
row. The rates are computed with the same functions and static prefactors as the kinetic
engines (kmc.model.tls_flip_factor and electron_pair_factor, the same hop-pair list), so
the master equation is the test oracle for the KMC and also the user-visible
``method="exact"`` (docs/model.md section 5).

TLS glass: 2^N configurations, index c has S_i = +1/2 iff bit i of c is set.
Electron glass: the C(N, M) configurations with M electrons, in lexicographic order of
the occupied-site tuples (itertools.combinations).

Propagation: p(t) = p0 expm(Q t) (scipy.linalg.expm, dense) for up to 2048 configurations,
scipy.sparse.linalg.expm_multiply above. Stationary vector: the solution of p Q = 0,
sum p = 1 (the TLS rates use the splitting sqrt(h^2 + Delta0^2), which is not the
classical flip energy |h|, so that stationary vector is close to, but not exactly, the
Boltzmann distribution of H; both are available).
"""
import itertools
import math

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from kmc.errors import ConfigError
from kmc.model import (check_resonance_width, check_temperature, electron_energy,
                       electron_pair_factor, electron_site_energies, tls_energy, tls_flip_energy,
                       tls_flip_factor, tls_local_fields)
from kmc.dynamics.observables import electron_excitations, tls_excitations

_DENSE_LIMIT = 2048
MAX_CONFIGURATIONS = 1 << 16


class MasterEquation:
    """Generator, observables and propagation over every configuration.

    Parameters
    ----------
    system : TLSSystem or ElectronSystem
    temperature : float, T > 0
    prefactors : (N,) a Delta0_i^2 (TLS) or (P,) Gamma0 e^(-r/xi) over ``pairs`` (electron)
    bias : (N,) or None, Delta_i (TLS) or eps_i (electron) replacing the system's (pulses)
    pairs : (P, 2) int, electron hop pairs (kmc.dynamics.electron_engine.hop_pairs)
    resonance_width : float >= 0, electron glass: w of kmc.model.miller_abrahams_factor
        (0: the exact factor, as the KMC engine's default)

    Attributes
    ----------
    configs : (S, N) S_i = +-1/2 (TLS) or n_i int8 (electron)
    generator : (S, S) dense ndarray or sparse CSR matrix, Q
    energy : (S,) H of each configuration; excitations : (S,) (observables module)
    occupation : (S, N) sigma_i = 2 S_i (TLS) or n_i
    """

    def __init__(self, system, temperature, prefactors, bias=None, pairs=None,
                 resonance_width=0.0):
        check_temperature("temperature", temperature)
        self.resonance_width = check_resonance_width("resonance_width", resonance_width)
        self.system = system
        self.temperature = float(temperature)
        n = system.n_sites
        if system.model == "tls":
            if 2**n > MAX_CONFIGURATIONS:
                raise ConfigError("method", f"exact: 2^N must be <= {MAX_CONFIGURATIONS}, N = {n}")
            bias = system.bias if bias is None else np.asarray(bias, dtype=float)
            self._build_tls(system, np.asarray(prefactors, dtype=float), bias)
        else:
            if pairs is None:
                raise ConfigError("pairs", "the electron master equation needs the hop pairs")
            if math.comb(n, system.n_electrons) > MAX_CONFIGURATIONS:
                raise ConfigError("method", f"exact: C(N, M) must be <= {MAX_CONFIGURATIONS}")
            eps = system.site_energies if bias is None else np.asarray(bias, dtype=float)
            self._build_electron(system, np.asarray(prefactors, dtype=float), eps,
                                 np.asarray(pairs, dtype=np.int64))
        self.n_states = self.configs.shape[0]

    def _build_tls(self, system, prefactors, bias):
        n = system.n_sites
        s_count = 2**n
        idx = np.arange(s_count)
        self.configs = np.where((idx[:, None] >> np.arange(n)) & 1, 0.5, -0.5)
        self.occupation = 2.0 * self.configs
        couplings = np.asarray(system.couplings, dtype=float)
        d0sq = np.asarray(system.delta0, dtype=float) ** 2
        rows, cols, vals = [], [], []
        energy = np.empty(s_count)
        exc = np.empty(s_count)
        for c in range(s_count):
            spins = self.configs[c]
            fields = tls_local_fields(spins, bias, couplings)
            energy[c] = tls_energy(spins, bias, couplings)
            exc[c] = tls_excitations(spins, fields)
            for i in range(n):
                rows.append(c)
                cols.append(c ^ (1 << i))
                vals.append(prefactors[i] * tls_flip_factor(tls_flip_energy(spins[i], fields[i]),
                                                            d0sq[i], self.temperature))
        self.energy = energy
        self.excitations = exc
        self._assemble(rows, cols, vals, s_count)

    def _build_electron(self, system, prefactors, eps, pairs):
        n, m = system.n_sites, system.n_electrons
        combos = list(itertools.combinations(range(n), m))
        index = {c: k for k, c in enumerate(combos)}
        configs = np.zeros((len(combos), n), dtype=np.int8)
        for k, c in enumerate(combos):
            configs[k, list(c)] = 1
        self.configs = configs
        self.occupation = configs.astype(float)
        c_mat = np.asarray(system.interactions, dtype=float)
        pair_c = c_mat[pairs[:, 0], pairs[:, 1]]
        rows, cols, vals = [], [], []
        energy = np.empty(len(combos))
        exc = np.empty(len(combos))
        for k in range(len(combos)):
            occ = configs[k]
            e_site = np.ascontiguousarray(electron_site_energies(occ, eps, c_mat, system.filling))
            energy[k] = electron_energy(occ, eps, c_mat, system.filling)
            exc[k] = electron_excitations(occ, e_site, m)
            for p in range(pairs.shape[0]):
                a, b = pairs[p]
                if occ[a] == occ[b]:
                    continue
                rate = prefactors[p] * electron_pair_factor(occ, e_site, a, b, pair_c[p],
                                                            self.temperature,
                                                            self.resonance_width)
                target = occ.copy()
                target[a], target[b] = occ[b], occ[a]
                rows.append(k)
                cols.append(index[tuple(np.flatnonzero(target))])
                vals.append(rate)
        self.energy = energy
        self.excitations = exc
        self._assemble(rows, cols, vals, len(combos))

    def _assemble(self, rows, cols, vals, s_count):
        q = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(s_count, s_count))
        out = np.asarray(q.sum(axis=1)).ravel()
        q = (q - scipy.sparse.diags(out)).tocsr()
        self.generator = q.toarray() if s_count <= _DENSE_LIMIT else q

    # -----------------------------------------------------------------------------------

    def propagate(self, p0, times):
        """(n_times, S) probabilities p(t) = p0 expm(Q t) at each of ``times``."""
        p0 = np.asarray(p0, dtype=float)
        times = np.asarray(times, dtype=float)
        out = np.empty((times.shape[0], self.n_states))
        if isinstance(self.generator, np.ndarray):
            for k, t in enumerate(times):
                out[k] = p0 @ scipy.linalg.expm(self.generator * t)
        else:
            qt = self.generator.T.tocsr()
            for k, t in enumerate(times):
                out[k] = scipy.sparse.linalg.expm_multiply(qt * t, p0)
        return np.clip(out, 0.0, None)

    def stationary(self):
        """(S,) stationary probabilities: p Q = 0, sum p = 1."""
        a = self.generator.T.copy() if isinstance(self.generator, np.ndarray) \
            else self.generator.T.tolil()
        a[-1, :] = 1.0
        b = np.zeros(self.n_states)
        b[-1] = 1.0
        if isinstance(a, np.ndarray):
            p = np.linalg.solve(a, b)
        else:
            p = scipy.sparse.linalg.spsolve(a.tocsc(), b)
        return np.clip(p, 0.0, None) / np.clip(p, 0.0, None).sum()

    def boltzmann(self, temperature):
        """(S,) Boltzmann probabilities of H at ``temperature`` (inf: uniform)."""
        if math.isinf(temperature):
            return np.full(self.n_states, 1.0 / self.n_states)
        w = np.exp(-(self.energy - self.energy.min()) / temperature)
        return w / w.sum()

    def delta(self, config):
        """(S,) distribution concentrated on ``config``."""
        config = np.asarray(config)
        hit = np.flatnonzero(np.all(self.configs == config, axis=1))
        if hit.size != 1:
            raise ConfigError("initial_state", "configuration not in the state space")
        p = np.zeros(self.n_states)
        p[hit[0]] = 1.0
        return p

    def expectations(self, probabilities):
        """Mean energy (n,), excitations (n,) and occupation (n, N) of distributions (n, S)."""
        p = np.atleast_2d(probabilities)
        return p @ self.energy, p @ self.excitations, p @ self.occupation
