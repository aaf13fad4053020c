# Thin targets the README names. Each one creates .venv (if missing) and installs into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv lab present test lint format clean lecture notebooks exercises autograder grade release bench gpu-check

# (Re)install when pyproject.toml changes; the stamp records a finished install.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[test,dev,grading,present]"
	@touch $(STAMP)

venv: $(STAMP)

# The benchmarks need only the package and Captum (the `bench` extra), not the test tools.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[bench]"
	@touch $(BENCH_STAMP)

# The whole project is the root (students need exercises/ too); the browser opens on notebooks/.
# Jupyter refuses to run as root unless told; containers and hubs often run as root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: venv
	$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Execute the notebooks headless into build/: HTML pages, reveal.js slides, index.html.
# `make lecture NOTEBOOKS=notebooks/05_guided_backprop.ipynb` builds one; LECTURE_DIR moves build/.
NOTEBOOKS   ?= $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
LECTURE_DIR ?= build

lecture: venv
	$(BIN)/python tools/build_lecture.py --out $(LECTURE_DIR) $(NOTEBOOKS)

# Re-execute the committed notebooks in fresh kernels and write them back normalised (tools/notebooks.py):
# pictures as JPEG, no timestamps, temp paths or widget state beyond the panels. Run it after changing
# a notebook or what it shows; `python tools/notebooks.py --check` checks the 1.5 MB budget.
notebooks: venv
	$(BIN)/python tools/notebooks.py $(NOTEBOOKS)

# The notebooks as live pages on localhost with Voila (tools/present.py): code hidden, panels live,
# a kernel per browser tab. Each notebook is run once at start so pages open at once; PORT picks
# the port, DEVICE (cpu, cuda, mps) the kernels' device. Voila, unlike Jupyter, runs as root unasked.
PORT   ?= 8866
DEVICE ?=

present: venv
	$(BIN)/python tools/present.py --port $(PORT) $(if $(DEVICE),--device $(DEVICE)) $(NOTEBOOKS)

# Exercises from one source (python -m grading, the package grading/): otter assign
# solutions/NN_*.ipynb, then exercises/ (student notebooks, committed) and autograder/NN_*.zip
# (generated, ignored). `make grade SUBMISSIONS=folder` grades every notebook in it into
# grades.csv (GRADES moves it): each notebook's functions run in a bubblewrap sandbox
# (GRADE_MEMORY bytes, GRADE_TIMEOUT seconds; GRADE_SANDBOX=none is unsafe), and a separate
# judge that never runs student code gives the points.
SUBMISSIONS   ?=
GRADES        ?= grades.csv
GRADE_TIMEOUT ?= 600
GRADE_JOBS    ?= 2

FORCE ?=

exercises: venv
	$(BIN)/python -m grading assign $(if $(FORCE),--force)

autograder: exercises

grade: venv
	@test -n "$(SUBMISSIONS)" || (echo "usage: make grade SUBMISSIONS=folder-of-notebooks" && false)
	$(BIN)/python -m grading grade "$(SUBMISSIONS)" --out "$(GRADES)" --timeout $(GRADE_TIMEOUT) --jobs $(GRADE_JOBS) --logs grading-logs

# The students' edition: build/student-release/ and build/student-release.zip, without
# solutions/, hidden tests or grading tools (REPLACE=1 replaces an existing one whole).
REPLACE ?=

release: venv
	$(BIN)/python -m grading release $(if $(REPLACE),--replace)

# Speed against a bare loop and Captum, notebook wall times, teaching-quality figures:
# prints tables and updates benchmarks/RESULTS.md. `make bench BENCHMARKS="loops quality"`
# runs some of them. Run it on a quiet machine.
BENCHMARKS ?=

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks $(BENCHMARKS)

# On a machine with a CUDA GPU: unit tests, notebooks and benchmarks on the GPU (tools/gpu_check.sh).
gpu-check: $(STAMP) $(BENCH_STAMP)
	PY=$(BIN)/python tools/gpu_check.sh

lint: venv
	$(BIN)/ruff check lecture_utils grading tests notebooks benchmarks tools

format: venv
	$(BIN)/ruff format lecture_utils grading tests benchmarks

clean:
	rm -rf build .pytest_cache .ruff_cache
