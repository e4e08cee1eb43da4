# Two entry points: `make run` (install + end-to-end demo) and `make test` (install + whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# A CPU build of torch (for the GP sampler) lies on this kind of machine's disk; pip takes it from there.
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-*+cpu-*.whl))

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	@if [ -n "$(TORCH_WHEEL)" ]; then $(BIN)/uv pip install --python $(BIN)/python --quiet "$(TORCH_WHEEL)"; \
	 else $(BIN)/uv pip install --python $(BIN)/python --quiet torch --index-url https://download.pytorch.org/whl/cpu || true; fi
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e ".[dev]"
	touch $(STAMP)

run: install
	$(BIN)/hyperflow experiment run -f examples/experiments/sklearn-digits.yaml

test: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: install
	$(BIN)/python benchmarks/suggest.py
	$(BIN)/python benchmarks/trials.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/server.py
	$(BIN)/python benchmarks/ui.py

clean:
	rm -rf $(VENV) .pytest_cache
