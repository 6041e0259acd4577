"""Run files of the paper's figures and Table I: every one passes ``kmc check``, every
full-size rate/Table I file has a reduced twin writing under results/reduced/, and
runs/README.md maps every paper figure and Table I to a run file."""
import re
from pathlib import Path

import pytest

from kmc.pipeline import cli
from kmc.pipeline import config as config_module

RUNS = Path(__file__).resolve().parents[1] / "runs"
ALL = sorted(RUNS.glob("*.toml")) + sorted((RUNS / "reduced").glob("*.toml"))
RATE_FILES = sorted(p for p in RUNS.glob("*.toml")
                    if re.match(r"(fig(0[3679]|1[135-9]|20)|table1(?!_kmc))_", p.name))


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(RUNS)))
def test_kmc_check(path, capsys):
    assert cli.main(["check", str(path)]) == 0
    assert ": ok (" in capsys.readouterr().out


def test_rate_files_exist():
    # 16 figures and Table I (6 sweeps), plus the N sweeps in the paper's box (2)
    assert len(RATE_FILES) == 20


@pytest.mark.parametrize("path", RATE_FILES, ids=lambda p: p.name)
def test_reduced_twin_has_the_same_physics(path):
    full = config_module.load(path)
    reduced = config_module.load(RUNS / "reduced" / path.name)
    assert full.output.path == f"results/{path.stem}.h5"
    assert reduced.output.path == f"results/reduced/{path.stem}.h5"
    assert full.linear == reduced.linear and full.linear.enabled
    assert reduced.ensemble.realizations <= full.ensemble.realizations
    # same model, disorder, temperature scheme; only sizes and realizations differ
    fp, rp = full.points(), reduced.points()
    assert len(fp) == len(rp)
    for (fv, fc), (rv, rc) in zip(fp, rp):
        assert fc.model.name == rc.model.name
        assert fc.disorder == rc.disorder
        assert fc.model.temperature == rc.model.temperature
        assert fc.model.xi == rc.model.xi
        assert rc.model.N <= fc.model.N
        assert set(fv) == set(rv)


def test_readme_maps_every_figure_and_table1():
    text = (RUNS / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| Fig") or
            line.startswith("| Table")]
    mapped = set()
    rate_figures = {3, 6, 7, 9, 11, 13, 15, 16, 17, 18, 19, 20}
    for line in rows:
        figs = set()
        for fig in re.findall(r"Figs?\. ([\d\-, ]+)", line.split("|")[1]):
            for part in fig.split(","):
                a, _, b = part.strip().partition("-")
                figs.update(range(int(a), int(b or a) + 1))
        mapped |= figs
        if figs & rate_figures or line.startswith("| Table I"):
            for name in re.findall(r"`([\w/]+\.toml)`", line):
                assert (RUNS / name).is_file(), name
    assert mapped >= set(range(1, 21)), sorted(set(range(1, 21)) - mapped)
    assert any(line.startswith("| Table I") for line in rows)
