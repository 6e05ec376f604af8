"""cache_warming in real Airflow (``airflow dags test``) against a real redis-server: keys land with their TTLs under the
memory fraction, and the audit trail holds what was warmed and the hit ratio before and after."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest

from include.headroom.steps import ingest, validate
from include.headroom.metrics.sources import SampleFleetSource
from include.headroom.store import ParquetStore
from scripts.pipeline_run import dags_test
from tests.conftest import ANCHOR, PROJECT_ROOT
from tests.servers import redis_server  # noqa: F401 (fixture)

AS_OF = datetime.fromisoformat(f"{ANCHOR}T12:00:00+00:00")
SERVICES = ["catalog-api", "orders-api"]


def test_schedule_triggers_and_params():
    from airflow.dag_processing.dagbag import DagBag

    from dags.cache_warming import SCHEDULE
    from headroom_provider.assets import ACTIONS, FINDINGS

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "cache_warming.py")).dags["cache_warming"]
    assert {a.uri for a in dag.timetable.asset_condition.objects} == {FINDINGS.uri}
    assert dag.timetable.timetable.expression == SCHEDULE == "15 */6 * * *"
    assert {a.uri for t in dag.tasks for a in t.outlets} == {ACTIONS.uri}
    assert dag.params["dry_run"] is None and dag.params["trigger"] is None  # unset: cache.yaml decides at run time


@pytest.mark.e2e
def test_manual_warming_fills_redis_and_is_audited(airflow_db, config, tmp_path, redis_server):
    client = redis_server.client()
    client.flushall()
    store = ParquetStore(tmp_path / "data" / "store")
    ingest.ingest(store, config, SampleFleetSource(config, anchor=ANCHOR), pd.Timestamp(AS_OF) - pd.Timedelta(hours=1),
                    pd.Timestamp(AS_OF), history_days=1 / 24)
    validate.validate_pending(store, config, now=pd.Timestamp(AS_OF), reports_dir=tmp_path / "reports")
    env = {"HEADROOM_DATA_DIR": str(tmp_path / "data"), "HEADROOM_REPORTS_DIR": str(tmp_path / "reports"),
           "HEADROOM_SAMPLE_ANCHOR": ANCHOR, "AIRFLOW_CONN_HEADROOM_REDIS": redis_server.conn_uri()}
    run = dags_test("cache_warming", AS_OF, conf={"dry_run": False, "trigger": "manual", "services": SERVICES}, env=env,
                    log_dir=tmp_path / "logs")
    assert run.ok, run.log.read_text()[-4000:]

    audit = store.read("audit", kind="cache").set_index("service")
    assert sorted(audit.index) == SERVICES and set(audit["status"]) == {"applied"} and not audit["dry_run"].any()
    for service in SERVICES:
        result = json.loads(audit.loc[service, "detail"])["result"]
        assert result["status"] == "complete" and result["warmed"] == result["planned"] == 500 and result["errors"] == 0
        assert result["used_memory_after"] <= result["memory_limit_bytes"]
        assert result["hit_ratio_after"] > result["hit_ratio_before"]
        keys = client.keys(f"{service}:item:*")
        assert len(keys) == 500 and all(client.ttl(k) in range(1, 3601) for k in keys[:50])
        assert audit.loc[service, "reason"].startswith("manual: complete: 500/500 keys warmed")
    assert client.dbsize() == 1000
    client.flushall()
