# nnpipe: every set-up step lives here, so a fresh clone needs only `make run` / `make test`.
# Needs python3 (3.11 or 3.12) with venv and pip; everything else comes from PyPI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup system-deps run test test-unit test-integration test-realdata lint repro ui bench clean

# uv lives in its own small venv: `uv sync` makes .venv exactly what uv.lock pins.
# --compile-bytecode: every package's .pyc written once at install, so no process compiles
# TensorFlow's, DVC's or MLflow's sources again (where PYTHONDONTWRITEBYTECODE is set, as
# in many CI images, Python never caches them: each stage's start paid ~20 s for it).
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --extra dev --python $(PYTHON)
	$(BIN)/python -m nnpipe.dvc.plots
	@touch $@

setup: $(VENV)/.synced

## The main job: the whole pipeline, end to end, on the built-in synthetic data.
run: setup
	$(BIN)/nnpipe run

# The stack test starts PostgreSQL's server as a process: Debian's package, installed when
# missing and this runs as root (elsewhere: apt-get install postgresql, or the test fails).
system-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	     postgresql >/dev/null; } \
	  || echo "note: PostgreSQL's server is missing (apt-get install postgresql)" >&2
	@# the MLflow UI browser test drives Debian's Chromium (Playwright, no browser download)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	     chromium >/dev/null; } \
	  || echo "note: Chromium is missing (apt-get install chromium)" >&2

## The tests (unit, integration with real Prefect/DVC/MLflow, real data where ../shared exists).
test: setup system-deps
	$(BIN)/python -m pytest

# One tier each (tests/<tier>/, marked so by tests/conftest.py): unit is the fast one (no
# network, no real data, no servers); integration starts real servers; realdata reads
# ../shared/data and the network, skipping where they are absent.
test-unit: setup
	$(BIN)/python -m pytest tests/unit

test-integration: setup system-deps
	$(BIN)/python -m pytest tests/integration

test-realdata: setup
	$(BIN)/python -m pytest tests/realdata

lint: setup
	$(BIN)/ruff check src flows tests bench
	$(BIN)/ruff format --check src flows tests bench
	$(BIN)/mypy

## Reproduce the pipeline with DVC (the same stages as `make run`).
repro: setup
	$(BIN)/dvc repro

ui: setup
	$(BIN)/nnpipe ui

bench: setup
	$(BIN)/python bench/input_pipeline.py

clean:
	rm -rf data models reports mlflow.db mlartifacts .cache
