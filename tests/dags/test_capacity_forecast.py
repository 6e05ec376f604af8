"""capacity_forecast fans out over batches of services in its own pool, and the pool is declared for local Airflow."""

from __future__ import annotations

import yaml

from tests.conftest import PROJECT_ROOT


def test_mapped_forecasts_run_in_the_declared_pool():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "capacity_forecast.py")).dags["capacity_forecast"]
    mapped = dag.get_task("forecast_services")
    assert mapped.pool == "headroom_forecasting"
    assert dag.params["batch_size"] == 50
    settings = yaml.safe_load((PROJECT_ROOT / "airflow_settings.yaml").read_text())
    pools = {p["pool_name"]: p for p in settings["airflow"]["pools"]}
    assert pools["headroom_forecasting"]["pool_slot"] >= 1
    assert "python -m include.headroom pools" in (PROJECT_ROOT / "Makefile").read_text()  # make airflow-db imports them all
