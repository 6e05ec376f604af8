"""Every DAG imports cleanly, follows the house rules, and stays cheap to parse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

DAG_FILES = sorted((PROJECT_ROOT / "dags").glob("*.py"))
HEAVY = ("pandas", "numpy", "prophet", "statsmodels", "great_expectations", "duckdb", "pyarrow", "matplotlib",
         "slack_sdk", "pagerduty", "prometheus_client", "airflow.providers.smtp.hooks", "airflow.providers.slack.hooks",
         "airflow.providers.pagerduty.hooks")
EXPECTED = {"ingest_metrics", "validate_metrics", "capacity_forecast", "bottleneck_analysis",
            "scaling_actions", "cache_warming", "connector_sync", "capacity_report", "alerts"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_every_pipeline_dag_is_present_one_per_file(dagbag):
    assert set(dagbag.dag_ids) == EXPECTED
    for dag_id in EXPECTED:
        assert Path(dagbag.dags[dag_id].fileloc).stem == dag_id


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_house_rules(dagbag, dag_id):
    from headroom_provider.defaults import TAGS

    dag = dagbag.dags[dag_id]
    assert dag.tags and set(dag.tags) <= TAGS and "headroom" in dag.tags
    assert dag.doc_md and dag.doc_md.strip().startswith(f"### {dag_id}")
    assert dag.catchup is False
    for task in dag.tasks:
        assert task.owner == "headroom", task.task_id
        assert task.retries >= 2, task.task_id


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parsing_imports_nothing_heavy(path):
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(path)!r})\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_assets_link_the_chain(dagbag):
    from headroom_provider.assets import FINDINGS, FORECASTS, METRICS_STAGED, METRICS_VALIDATED

    def outlets(dag_id):
        return {a.uri for t in dagbag.dags[dag_id].tasks for a in t.outlets}

    assert METRICS_STAGED.uri in outlets("ingest_metrics")
    assert METRICS_VALIDATED.uri in outlets("validate_metrics")
    assert FORECASTS.uri in outlets("capacity_forecast")
    assert FINDINGS.uri in outlets("bottleneck_analysis")
    def triggers(dag_id):
        return {asset.uri for asset in dagbag.dags[dag_id].timetable.asset_condition.objects}

    assert triggers("validate_metrics") == {METRICS_STAGED.uri}
    assert triggers("scaling_actions") == triggers("cache_warming") == {FINDINGS.uri}
    assert triggers("capacity_report") == {FORECASTS.uri, FINDINGS.uri}


def test_every_store_table_has_an_asset_that_a_dag_writes(dagbag):
    from headroom_provider.assets import TABLE_ASSETS
    from include.headroom.metrics.schema import TABLES

    assert set(TABLE_ASSETS) == set(TABLES)
    written = {a.uri for dag in dagbag.dags.values() for t in dag.tasks for a in t.outlets if hasattr(a, "uri")}  # not aliases
    assert {a.uri for a in TABLE_ASSETS.values()} <= written, sorted({a.uri for a in TABLE_ASSETS.values()} - written)
    assert TABLE_ASSETS["metrics"].uri == "headroom://store/metrics"
