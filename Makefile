# Thin targets the README names. Each one creates .venv (if missing) and installs into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv lab test lint format clean

# (Re)install when pyproject.toml changes; the stamp records a finished install.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[test,dev]"
	@touch $(STAMP)

venv: $(STAMP)

lab: venv
	$(BIN)/jupyter lab notebooks/

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check lecture_utils tests notebooks

format: venv
	$(BIN)/ruff format lecture_utils tests

clean:
	rm -rf build .pytest_cache .ruff_cache
