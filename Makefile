# Two entry points: `make run` (install what the demo needs + run it end to end) and
# `make test` (install everything + run the whole suite). Everything comes from PyPI and
# Debian's packages; nothing here names a file of one particular machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# --compile-bytecode: every package's modules as bytecode at install time, hyperflow's own
# too (compileall), so that no process compiles them again where PYTHONDONTWRITEBYTECODE
# is set (many CI runners and container images): importing SQLAlchemy, optuna, pydantic
# and httpx from source costs 2-3 s of CPU in every process that does it, 0.7 s compiled.
UV     := $(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode
COMPILE := $(BIN)/python -m compileall -q -j 0 hyperflow tuner serving pipelines
# pip/uv resolve torch nowhere: no extra of hyperflow needs it.

.PHONY: install install-dev system-deps run test lint typecheck bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "hyperflow needs Python >= 3.11: make ... PYTHON=python3.12" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# `make run`: the core distribution only (what the demo needs).
install: $(VENV)/.core
$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(UV) -e .
	$(COMPILE)
	touch $@

# `make test`: every extra, the test tools, and the system packages the tests drive.
install-dev: $(VENV)/.dev
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(UV) -e ".[dev]"
	$(COMPILE)
	touch $@ $(VENV)/.core

system-deps:
	@sh scripts/system-deps.sh

run: install
	$(BIN)/hyperflow experiment run -f examples/experiments/sklearn-digits.yaml

test: install-dev system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install-dev
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python benchmarks/cli.py
	$(BIN)/python benchmarks/suggest.py
	$(BIN)/python benchmarks/trials.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/pipelines.py
	$(BIN)/python benchmarks/bayesopt.py
	$(BIN)/python benchmarks/server.py
	$(BIN)/python benchmarks/ui.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
