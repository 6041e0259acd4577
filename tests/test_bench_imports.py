"""Every benchmark script imports (its module-level imports resolve against the package):
bench/bench_linear.py still imported ``kmc.meanfield`` after the restructure into
kmc/solvers and failed on its first line. Importing runs no benchmark (each one runs
under ``if __name__ == "__main__"``)."""
import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("path", sorted(BENCH.glob("bench_*.py")), ids=lambda p: p.name)
def test_bench_script_imports(path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location(f"_bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
