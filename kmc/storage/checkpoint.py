"""Checkpoints of a running KMC realization: atomic writes, exact resume.

A checkpoint holds everything the kernel loop needs to continue bit for bit: the replica
index and phase, the engine state (configuration, incrementally updated fields, thinning
windows and bound tree, clock, energy, counters including the event count), the outputs
recorded so far, and ``rng.bit_generator.state``. The kernels only stop between trials,
so a resumed run draws exactly the random numbers an uninterrupted run would.

Files are written to ``<path>.tmp`` and moved over ``path`` with os.replace, so a kill
during a write leaves the previous checkpoint intact. A fingerprint of the run (model,
N, seed, point, realization, parameters) is stored and checked on load, so a checkpoint of
another run is refused rather than silently continued.
"""
import hashlib
import json
import os
import time

import numpy as np

from kmc.errors import ResultFileError

# 2: the electron engine's state holds per-site energy intervals (elo, ehi) in place of
# (eref, theta); a checkpoint of format 1 cannot be resumed by this code.
# 3: the acceleration state holds the burst-stop bookkeeping (carry, last_update), and
# burst stops change the accelerated trajectory: format 2 cannot be resumed bit for bit.
FORMAT = 3


def fingerprint(*parts):
    """Short hash of the repr of ``parts`` (run identity)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def save(path, fingerprint_value, meta, arrays, rng):
    """Atomically write a checkpoint.

    meta : dict of JSON-serialisable scalars; arrays : dict name -> ndarray;
    rng : numpy Generator whose bit_generator.state is saved.
    """
    path = os.fspath(path)
    header = {"format": FORMAT, "fingerprint": fingerprint_value, "meta": meta,
              "rng": rng.bit_generator.state}
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, _header=np.array(json.dumps(header)), **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(path, fingerprint_value, rng):
    """Read a checkpoint into (meta, arrays) and restore ``rng``; None if there is none."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["_header"]))
        arrays = {k: data[k].copy() for k in data.files if k != "_header"}
    if header.get("format") != FORMAT:
        raise ResultFileError(f"{path}: checkpoint format {header.get('format')}, expected "
                              f"{FORMAT} (written by another version; delete it to rerun "
                              f"that realization)")
    if header["fingerprint"] != fingerprint_value:
        raise ResultFileError(f"{path}: checkpoint belongs to another run (fingerprint "
                              f"{header['fingerprint']}, expected {fingerprint_value})")
    rng.bit_generator.state = header["rng"]
    return header["meta"], arrays


def remove(path):
    """Delete a finished run's checkpoint (missing file is fine)."""
    try:
        os.remove(os.fspath(path))
    except FileNotFoundError:
        pass


class ReplicaCheckpoints:
    """Periodic checkpoints of one realization's KMC replicas (kmc.dynamics.run).

    The file holds the replica index and phase (0: pulse, 1: relaxation), the outputs
    recorded so far and the running counter totals (named arrays), the state of the replica
    in progress (its arrays under ``state_<name>``; none between replicas) and the random
    generator. ``due()`` says whether ``interval`` seconds of wall time have passed since the
    last write (or the start).

    Parameters
    ----------
    path : str or PathLike, the checkpoint file
    fingerprint_value : str, from :func:`fingerprint` of the run's identity
    interval : float, seconds of wall time between writes
    """

    _STATE = "state_"

    def __init__(self, path, fingerprint_value, interval):
        self.path = path
        self.fingerprint = fingerprint_value
        self.interval = float(interval)
        self._last = time.monotonic()

    def resume(self, rng):
        """Restore ``rng`` and return (replica, phase, state_arrays or None, outputs) of the
        checkpoint; None if there is no checkpoint yet."""
        loaded = load(self.path, self.fingerprint, rng)
        if loaded is None:
            return None
        meta, arrays = loaded
        state = {k[len(self._STATE):]: v for k, v in arrays.items() if k.startswith(self._STATE)}
        outputs = {k: v for k, v in arrays.items() if not k.startswith(self._STATE)}
        return meta["replica"], meta["phase"], (state if meta["has_state"] else None), outputs

    def due(self):
        """True when the interval has passed since the last write."""
        return time.monotonic() - self._last >= self.interval

    def save(self, replica, phase, state_arrays, outputs, rng):
        """Write the checkpoint (atomically) and restart the interval."""
        arrays = dict(outputs)
        if state_arrays is not None:
            arrays.update({self._STATE + k: v for k, v in state_arrays.items()})
        save(self.path, self.fingerprint, {"replica": replica, "phase": phase,
                                           "has_state": state_arrays is not None}, arrays, rng)
        self._last = time.monotonic()

    def finish(self):
        """The run completed: delete the checkpoint."""
        remove(self.path)
