# lmforge: `make sample` runs the whole graph on the offline sample, `make test` runs the tests.
# Both install into a project-local virtual environment first (only when pyproject.toml changed).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: install sample test lint ui postgres sqlite

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\n' > $@

install: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml

sample: install
	$(PY) -m pipelines.sample_run

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest

ui: install
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1

# Point DAGSTER_HOME at PostgreSQL (connection from DAGSTER_PG_HOST, _PORT, _USER, _PASSWORD,
# _DB when Dagster starts), or back at embedded SQLite.
postgres: install
	$(PY) -m pipelines.dagster_storage $(DAGSTER_HOME) --postgres

sqlite: install
	$(PY) -m pipelines.dagster_storage $(DAGSTER_HOME)
