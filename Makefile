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

.PHONY: help install airflow-db demo test airflow backfill dags-check clean

help:
	@echo "make demo      set up, generate the sample fleet, run every DAG end to end, print a summary"
	@echo "make test      set up and run the test suite"
	@echo "make airflow   start Airflow (api-server, scheduler, dag-processor, triggerer) on http://127.0.0.1:8080"
	@echo "make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD [DAG=ingest_metrics]   create a backfill (with Airflow stopped: SQLite); make airflow runs it"
	@echo "make clean     remove .venv, .airflow, data and reports"

$(STAMP): requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

install: $(STAMP)

$(AIRFLOW_HOME)/airflow.db: $(STAMP)
	mkdir -p $(AIRFLOW_HOME)
	airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	airflow pools set headroom_forecasting 2 "capacity_forecast mapped tasks" > /dev/null

airflow-db: $(AIRFLOW_HOME)/airflow.db

demo: install airflow-db
	python scripts/demo.py $(DEMO_ARGS)

test: install
	python -m pytest $(PYTEST_ARGS)

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
