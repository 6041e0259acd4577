"""Cost of one flush of finished rows against the size of the result file.

Run: python bench/bench_flush.py [--quick] [--dir DIR]

Two result files of the same layout (TLS, N = 2000 sites, rows of ~113 kB) are created,
one of about 10 MB and one of about 1 GB (--quick: 100 MB), each with its rows allocated at
creation as ``kmc run`` does. For each file the same run measures, over several repeats
(median), the time to flush 8 finished rows:

- in place (``kmc.storage.store.ResultWriter.flush``): pwrite the row bytes, fsync, pwrite
  the status bytes, fsync;
- copy-on-write (the previous writer, kept here as the reference): copy the file to
  <path>.tmp, write the rows with h5py, fsync, rename over the file.

It prints both costs and the ratio large / small for each: the in-place flush should not
grow with the file (ratio near 1), the copy grows with it (ratio near the size ratio).
Files go to --dir (default: a temporary directory on the same disk as /tmp) and are removed.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kmc.pipeline import config as config_module  # noqa: E402
from kmc.storage import store  # noqa: E402
from kmc.storage.schema import Status, point_path, row_layout  # noqa: E402

N = 2000
ROWS_PER_FLUSH = 8
TEXT = """
[model]
name = "tls"
N = {n}
[ensemble]
realizations = {r}
[output]
figures = false
"""


def make_file(path, realizations):
    config = config_module.loads(TEXT.format(n=N, r=realizations))
    with store.locked(path):
        store.ResultWriter(path, config)
    return config


def fake_rows(config, rng):
    """A row of every dataset of the layout, random numbers of the right shape."""
    row = {}
    for name, (shape, dtype, _) in row_layout(config).items():
        row[name] = rng.integers(0, 100, shape).astype(dtype) if np.dtype(dtype).kind == "i" \
            else rng.standard_normal(shape).astype(dtype)
    row["status"] = int(Status.CONVERGED)
    return row


def flush_in_place(path, config, ks, rows):
    with store.locked(path):
        writer = store.ResultWriter(path, config)
        for k, row in zip(ks, rows):
            writer.add(0, k, row)
        writer._offsets = writer._row_offsets()  # looked up once per run, not per flush
        start = time.perf_counter()
        writer.flush()
        return time.perf_counter() - start


def flush_copy(path, ks, rows):
    """The previous flush: copy-on-write of the whole file (reference for the ratio)."""
    tmp = Path(str(path) + ".tmp")
    start = time.perf_counter()
    shutil.copyfile(path, tmp)
    with h5py.File(tmp, "r+") as f:
        group = f[point_path(0)]
        for k, row in zip(ks, rows):
            for name, value in row.items():
                group[name][k] = value
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return time.perf_counter() - start


def measure(folder, realizations, repeats, rng):
    path = Path(folder) / f"flush_{realizations}.h5"
    config = make_file(path, realizations)
    size = path.stat().st_size
    rows = [fake_rows(config, rng) for _ in range(ROWS_PER_FLUSH)]
    in_place, copy = [], []
    for rep in range(repeats):
        ks = rng.choice(realizations, ROWS_PER_FLUSH, replace=False)
        in_place.append(flush_in_place(path, config, ks, rows))
        copy.append(flush_copy(path, ks, rows))
    path.unlink()
    return size, statistics.median(in_place), statistics.median(copy)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 MB instead of 1 GB")
    parser.add_argument("--dir", default=None, help="where the files are written")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    row_bytes = sum(np.dtype(d).itemsize * int(np.prod(s))
                    for s, d, _ in row_layout(config_module.loads(TEXT.format(n=N, r=1)))
                    .values())
    small_r = int(10e6 / row_bytes)
    large_r = int((100e6 if args.quick else 1e9) / row_bytes)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        small = measure(folder, small_r, 7, rng)
        large = measure(folder, large_r, 5 if not args.quick else 7, rng)
    print(f"flush of {ROWS_PER_FLUSH} rows ({ROWS_PER_FLUSH * row_bytes / 1e6:.2f} MB), "
          f"TLS N = {N}, median of repeats")
    print(f"{'file size':>12} {'in place':>12} {'copy-on-write':>15}")
    for size, a, b in (small, large):
        print(f"{size / 1e6:10.1f} MB {a * 1e3:9.2f} ms {b * 1e3:12.1f} ms")
    print(f"ratio large/small file: in place {large[1] / small[1]:.2f}, "
          f"copy-on-write {large[2] / small[2]:.1f} (file size ratio {large[0] / small[0]:.0f})")


if __name__ == "__main__":
    main()
