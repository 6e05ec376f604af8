"""``airflow dags test ingest_metrics`` reading a real Prometheus into the PostgreSQL store, twice: same content, no duplicates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from include.headroom.config import CONFIG_DIR
from include.headroom.metrics.exporter import FleetExporter
from include.headroom.store import PostgresStore
from tests.conftest import AIRFLOW
from tests.servers import PrometheusServer, postgres_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e
SERVICES = ["checkout-api", "search-api"]
LOGICAL = "2026-11-01T03:00:00+00:00"  # the run at 03:00 covers the data interval [02:45, 03:00)
START = pd.Timestamp("2026-11-01T02:45Z")


@pytest.fixture(scope="module")
def prometheus(fleet, tmp_path_factory):
    server = PrometheusServer(tmp_path_factory.mktemp("prom-e2e"))
    end = fleet.anchor + pd.Timedelta(hours=6)
    server.backfill(FleetExporter(fleet, origin=fleet.anchor - pd.Timedelta(hours=1), services=SERVICES).openmetrics(fleet.anchor, end))
    server.start()
    yield server
    server.stop()


def _config_dir(tmp_path):
    """The shipped configuration with Prometheus as the source and no initial history load."""
    directory = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, directory)
    pipeline = yaml.safe_load((directory / "pipeline.yaml").read_text())
    pipeline["ingest"].update(source="prometheus", initial_history_days=0)
    (directory / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    return directory


def test_dag_ingests_prometheus_into_postgres_idempotently(airflow_db, prometheus, postgres_server, tmp_path, fleet):
    import psycopg

    env = {
        **os.environ,
        "HEADROOM_CONFIG_DIR": str(_config_dir(tmp_path)),
        "HEADROOM_STORE_BACKEND": "postgres",
        "AIRFLOW_CONN_POSTGRES_HEADROOM": json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": postgres_server.port,
                "login": postgres_server.user,
                "schema": postgres_server.dbname,
            }
        ),
        "AIRFLOW_CONN_PROMETHEUS_DEFAULT": json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": prometheus.port}),
    }
    store = PostgresStore(lambda: psycopg.connect(postgres_server.dsn), schema="headroom")
    snapshots = []
    for attempt in (1, 2):
        try:
            run = subprocess.run([AIRFLOW, "dags", "test", "ingest_metrics", LOGICAL], env=env, capture_output=True, text=True, timeout=90)
        except subprocess.TimeoutExpired as exc:  # a failing task waits for its retry: show why it failed
            out = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
            errors = [line for line in out.splitlines() if "rror" in line or "Traceback" in line][:20]
            pytest.fail(f"run {attempt} did not finish:\n" + "\n".join(errors))
        assert run.returncode == 0, f"run {attempt} failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
        snapshots.append(store.query("SELECT * FROM staging ORDER BY service, metric, ts"))
    first, second = snapshots
    # 12 services are queried; the Prometheus holds two of them: 3 points (02:45, 02:50, 02:55) x 9 metrics x 2 services.
    assert len(first) == 3 * 9 * 2 and sorted(first["service"].unique()) == sorted(SERVICES)
    pd.testing.assert_frame_equal(first, second)
    expected = fleet.generate(START, START + pd.Timedelta(minutes=15), services=SERVICES)
    cpu = first[first["metric"] == "cpu_utilization"].set_index(["service", "ts"])["value"].sort_index()
    want = expected[expected["metric"] == "cpu_utilization"].set_index(["service", "ts"])["value"].sort_index()
    pd.testing.assert_series_equal(cpu, want, check_names=False, check_index_type=False)
    batches = store.read("batches")
    assert batches["batch_id"].tolist() == ["prometheus_20261101T024500Z_20261101T030000Z"] and batches["rows_in"].tolist() == [54]
    assert store.read("watermarks", source="source:prometheus")["watermark"].tolist() == [pd.Timestamp("2026-11-01T03:00Z")]
    assert store.read("source_units", service="checkout-api", metric="memory_utilization")[
        ["original_unit", "unit", "factor"]
    ].values.tolist() == [["ratio", "percent", 100.0]]
    store.drop_schema()
