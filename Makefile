# make demo: fresh venv, install, run the quick-start run file
# make test: fresh venv if needed, install test extras, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-full bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,dask]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/kmc run runs/quickstart.toml

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

# the slow physics validation at full size (CI runs the reduced form inside `make test`)
test-full: $(VENV)/.installed
	KMC_VALIDATE=full $(BIN)/python -m pytest -q -m slow

bench: $(VENV)/.installed
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) results *.egg-info
