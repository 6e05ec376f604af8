"""The local CeleryExecutor cluster: up, one day of the pipeline with mapped tasks spread over both workers, down."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "scripts"))

from big_fleet import seed_history, write_fleet_config  # noqa: E402
from cluster import Cluster, ClusterError, new_state  # noqa: E402
from tests.servers import require_binary, POSTGRES_BIN_DIRS  # noqa: E402

pytestmark = pytest.mark.e2e
END = pd.Timestamp("2026-11-21T02:00Z")
START = END - pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def cluster():
    require_binary("pg_ctl", POSTGRES_BIN_DIRS, "postgresql")
    require_binary("redis-server", package="redis-server")
    # Its own folder directly under /tmp: as root, PostgreSQL runs as "nobody", who must reach it.
    root = Path(tempfile.mkdtemp(prefix="headroom-cluster-"))
    # The shipped 12 services with the four key metrics and three days of history.
    config_dir = write_fleet_config(root / "fleet", services=12, days=3)
    cl = Cluster(new_state(root / "c", workers=2, concurrency=2, config_dir=str(config_dir), schedules=False))
    cl.up()
    try:
        yield cl
    finally:
        pids = dict(cl.state.pids)
        cl.down()
        for pid in pids.values():
            with pytest.raises(ProcessLookupError):
                os.killpg(pid, 0)
        assert not (cl.pg_data / "postmaster.pid").exists(), "PostgreSQL still running after down"
        shutil.rmtree(root, ignore_errors=True)


def test_daily_pipeline_spreads_mapped_tasks_over_both_workers(cluster):
    seeded = seed_history(cluster.state.config_dir, cluster.root / "data" / "store", END - pd.Timedelta(days=3), START)
    assert seeded == 12 * 4 * 288 * 2
    cluster.wait_for_dags(["ingest_metrics", "validate_metrics", "bottleneck_analysis"])
    cluster.unpause("ingest_metrics", "validate_metrics", "bottleneck_analysis")
    stages = [("ingest_metrics", {"history_days": 1}), ("validate_metrics", {}), ("bottleneck_analysis", {"batch_size": 1})]
    for dag_id, conf in stages:
        run_id = cluster.trigger(dag_id, START.to_pydatetime(), END.to_pydatetime(), conf)
        run = cluster.wait_for_run(dag_id, run_id, timeout=240)
        tis = cluster.task_instances(dag_id, run_id)
        assert run["state"] == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]

    mapped = [t for t in tis if t["task_id"] == "analyse_services"]
    assert sorted(t["map_index"] for t in mapped) == list(range(12))
    assert {t["state"] for t in mapped} == {"success"}
    hosts = {t["hostname"] for t in mapped}
    assert hosts == {"worker1", "worker2"}, hosts  # the Celery workers' own names, recorded per task instance
    assert len({(t["hostname"], t["pid"]) for t in mapped}) >= 2

    from include.headroom.store import ParquetStore

    store = ParquetStore(cluster.root / "data" / "store")

    def day_counts() -> pd.DataFrame:
        return store.query("SELECT service, metric, count(*) AS n FROM metrics WHERE ts >= ? AND ts < ? GROUP BY 1, 2",
                           [START.to_pydatetime(), END.to_pydatetime()])

    day = day_counts()
    assert len(day) == 12 * 4 and set(day["n"]) == {288}  # the ingested day, once per key
    slo = store.query("SELECT service, count(*) AS n FROM slo_status WHERE window_end = ? GROUP BY 1", [END.to_pydatetime()])
    assert len(slo) == 12 and set(slo["n"]) == {1}  # every mapped task's result, once


def test_status_names_every_component(cluster):
    status = cluster.status()
    assert status["healthy"] is True
    assert {"api-server", "scheduler", "dag-processor", "redis", "worker1", "worker2"} <= set(status["processes"])
    assert all(p["alive"] for p in status["processes"].values())


def test_up_refuses_an_unknown_cluster_folder(tmp_path):
    from cluster import ClusterState

    with pytest.raises(ClusterError, match="no cluster at"):
        ClusterState.load(tmp_path)
