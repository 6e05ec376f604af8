# headroom: one command to set up and run the demo, one to set up and run the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__PARALLELISM ?= 4
export AIRFLOW__API__HOST ?= 127.0.0.1
export AIRFLOW__API__PORT ?= 8080
export PYTHONPATH := $(CURDIR)
export HEADROOM_DATA_DIR ?= $(CURDIR)/data
export HEADROOM_REPORTS_DIR ?= $(CURDIR)/reports
export PATH := $(BIN):$(PATH)
export GX_ANALYTICS_ENABLED := False

.PHONY: help install airflow-db demo test lint airflow backfill dags-check clean

help:
	@echo "make demo      set up, generate the sample fleet, run every DAG end to end, print a summary"
	@echo "make test      set up and run the test suite"
	@echo "make lint      ruff (E, F, B, UP, SIM, AIR; configured in pyproject.toml)"
	@echo "make airflow   start Airflow (api-server, scheduler, dag-processor, triggerer) on http://127.0.0.1:8080"
	@echo "make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD [DAG=ingest_metrics]   create a backfill (with Airflow stopped: SQLite); make airflow runs it"
	@echo "make clean     remove .venv, .airflow, data and reports"
	@echo "make cluster   start a CeleryExecutor cluster (PostgreSQL, Redis, 2 Celery workers) on 127.0.0.1; make cluster-down stops it"
	@echo "make bench-fleet [SERVICES=1000]   the daily pipeline on a large fleet through that cluster, timed per stage"
	@echo "make drills [DRILL=name]   fault drills against the cluster (worker kill, scheduler/PostgreSQL/Redis restart)"

$(STAMP): requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

install: $(STAMP)

$(AIRFLOW_HOME)/airflow.db: $(STAMP)
	mkdir -p $(AIRFLOW_HOME)
	airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	python -m include.headroom pools > $(AIRFLOW_HOME)/pools.json && airflow pools import $(AIRFLOW_HOME)/pools.json > /dev/null

airflow-db: $(AIRFLOW_HOME)/airflow.db

demo: install airflow-db
	python scripts/demo.py $(DEMO_ARGS)

test: install
	python -m pytest $(PYTEST_ARGS)

lint: install
	ruff check .

dags-check: install airflow-db
	airflow dags reserialize > /dev/null 2>&1
	airflow dags list-import-errors

airflow: install airflow-db
	airflow dags reserialize > /dev/null 2>&1
	python -m include.headroom sample-fleet > /dev/null
	airflow standalone

backfill: install airflow-db
	@test -n "$(FROM)" -a -n "$(TO)" || (echo "usage: make backfill FROM=2026-11-20 TO=2026-11-22 [DAG=ingest_metrics]"; exit 2)
	airflow dags reserialize > /dev/null 2>&1
	airflow dags unpause $(or $(DAG),ingest_metrics)
	airflow dags unpause validate_metrics
	airflow backfill create --dag-id $(or $(DAG),ingest_metrics) --from-date $(FROM) --to-date $(TO) --reprocess-behavior completed

clean:
	rm -rf $(VENV) $(AIRFLOW_HOME) $(HEADROOM_DATA_DIR) $(HEADROOM_REPORTS_DIR)

# Running at scale: a local CeleryExecutor cluster (PostgreSQL, Redis, two Celery workers) on 127.0.0.1.
CLUSTER_DIR ?= /tmp/headroom-cluster
SERVICES ?= 1000
.PHONY: cluster cluster-down cluster-status bench-fleet drills

cluster: install
	python scripts/cluster.py --dir $(CLUSTER_DIR) up $(if $(CONFIG_DIR),--config-dir $(CONFIG_DIR)) $(CLUSTER_ARGS)

cluster-down:
	python scripts/cluster.py --dir $(CLUSTER_DIR) down

cluster-status:
	python scripts/cluster.py --dir $(CLUSTER_DIR) status

bench-fleet: install
	python benchmarks/bench_fleet.py --services $(SERVICES) $(BENCH_ARGS)

drills: install
	python scripts/drills.py $(or $(DRILL),all)
