"""Every DAG imports cleanly, follows the house rules, and stays cheap to parse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

DAG_FILES = sorted((PROJECT_ROOT / "dags").glob("*.py"))
HEAVY = ("pandas", "numpy", "prophet", "statsmodels", "great_expectations", "duckdb", "pyarrow", "matplotlib")
EXPECTED = {"ingest_metrics", "validate_metrics", "capacity_forecast", "bottleneck_analysis",
            "scaling_actions", "cache_warming", "connector_sync", "capacity_report"}


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


CLIENTS = ("boto3", "botocore", "kubernetes", "redis", "paramiko")


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parsing_imports_no_client_library_and_reads_no_yaml(path):
    code = (
        "import builtins, io, json, runpy, sys\n"
        "opened = []\n"
        "_open = io.open\n"
        "def recording(file, *a, **k):\n"
        "    opened.append(str(file))\n"
        "    return _open(file, *a, **k)\n"
        "import airflow.sdk\n"
        "builtins.open = io.open = recording\n"
        f"runpy.run_path({str(path)!r})\n"
        "builtins.open = io.open = _open\n"
        f"print(json.dumps({{'clients': sorted({{m.split('.')[0] for m in sys.modules}} & set({CLIENTS!r})),\n"
        "                  'yaml': [f for f in opened if f.endswith(('.yaml', '.yml'))]}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"clients": [], "yaml": []}


def test_the_probe_sees_a_client_import_and_a_yaml_read(tmp_path):
    """The check above can fail: a DAG file that reads YAML and imports boto3 at parse time is caught."""
    bad = tmp_path / "bad_dag.py"
    bad.write_text("import boto3\nfrom include.headroom.cache.settings import load_cache_settings\nload_cache_settings()\n")
    with pytest.raises(AssertionError):
        test_parsing_imports_no_client_library_and_reads_no_yaml(bad)


def test_headroom_asset_uris_are_what_airflow_normalisation_gives():
    """The Assets skip the provider lookup for the ``headroom`` scheme: no provider may handle it, and the URIs must
    come out exactly as Airflow's full normalisation (every provider's handlers loaded) would make them."""
    from airflow.sdk.definitions.asset import _sanitize_uri
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    from headroom_provider.assets import REPORT, SCHEME, TABLE_ASSETS

    assert SCHEME not in ProvidersManagerTaskRuntime().asset_uri_handlers
    for asset in [*TABLE_ASSETS.values(), REPORT]:
        assert _sanitize_uri(asset.uri) == asset.uri
        assert asset.uri.startswith("headroom://")
