"""The whole pipeline in real Airflow: every DAG run with ``airflow dags test`` on a 21-day slice of the sample fleet.

It runs once on the embedded store and once on PostgreSQL (a database of its own in the test
cluster, reached by the tasks through the ``postgres_headroom`` connection); every test checks both,
and the report's figures (its JSON twin) must be the same on both.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, UTC
from pathlib import Path

import pandas as pd
import pytest

from include.headroom.store import ParquetStore, open_store
from include.headroom.store.queries import duplicate_keys
from scripts.pipeline_run import dags_test, run_pipeline
from tests.conftest import ANCHOR

pytestmark = pytest.mark.e2e
AS_OF = datetime.fromisoformat(f"{ANCHOR}T02:00:00+00:00")
HISTORY_DAYS = 21


STORES = ("parquet", "postgres")
TWINS: dict[str, dict] = {}  # the report's JSON twin per store, kept for the comparison once both have run


def _duplicates(store) -> int:
    return duplicate_keys(store, "metrics")


def _postgres_env(server) -> tuple[dict[str, str], str]:
    """A database of its own for the pipeline's store (other tests drop schemas in the default one), and the env naming it."""
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS headroom_e2e")
        conn.execute("CREATE DATABASE headroom_e2e")
    dsn = server.dsn.replace(f"dbname={server.dbname}", "dbname=headroom_e2e")
    conn_json = json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": server.port, "login": server.user,
                            "schema": "headroom_e2e"})
    return {"HEADROOM_STORE_BACKEND": "postgres", "AIRFLOW_CONN_POSTGRES_HEADROOM": conn_json, "HEADROOM_POSTGRES_DSN": dsn}, dsn


@pytest.fixture(scope="module", params=STORES)
def pipeline(request, airflow_db):
    """On each store: ingest the slice twice (same interval), validate, then run every other DAG once."""
    env: dict[str, str] = {}
    data, reports = Path(os.environ["HEADROOM_DATA_DIR"]), Path(os.environ["HEADROOM_REPORTS_DIR"])
    if request.param == "postgres":
        env, dsn = _postgres_env(request.getfixturevalue("postgres_server"))
        data, reports = data.with_name("data_postgres"), reports.with_name("reports_postgres")
        env.update(HEADROOM_DATA_DIR=str(data), HEADROOM_REPORTS_DIR=str(reports))

        def connect():
            import psycopg

            return psycopg.connect(dsn)

        store = open_store(backend="postgres", connect=connect)
    else:
        store = ParquetStore(data / "store")
    subprocess.run([sys.executable, "-m", "include.headroom", "sample-fleet", "--anchor", ANCHOR, "--days", "2",
                    "--out", str(data / "sample_fleet")], check=True, capture_output=True)
    counts = []
    for _ in range(2):
        for dag_id, conf in (("ingest_metrics", {"history_days": HISTORY_DAYS}), ("validate_metrics", {})):
            result = dags_test(dag_id, AS_OF, conf, env=env)
            assert result.ok, result.log.read_text()[-3000:]
        counts.append((store.count("metrics"), _duplicates(store)))
    incremental = dags_test("ingest_metrics", AS_OF, env=env)
    assert incremental.ok, incremental.log.read_text()[-3000:]
    results = run_pipeline(AS_OF, window_hours=14 * 24, env=env, echo=False)
    failed = [r for r in results if not r.ok]
    assert not failed, failed[0].log.read_text()[-4000:]
    TWINS[request.param] = json.loads((reports / "latest.json").read_text())
    return {"store": store, "counts": counts, "results": results, "data": data, "reports": reports, "backend": request.param,
            "env": env}


def test_every_dag_ran_successfully(pipeline):
    assert [r.dag_id for r in pipeline["results"]] == [
        "ingest_metrics", "validate_metrics", "capacity_forecast", "bottleneck_analysis",
        "scaling_actions", "cache_warming", "connector_sync", "capacity_report",
    ]


def test_store_holds_the_slice_once(config, pipeline):
    expected = HISTORY_DAYS * 288 * len(config.services) * 9
    (first, dupes_first), (second, dupes_second) = pipeline["counts"]
    assert first == second == expected
    assert dupes_first == dupes_second == 0
    store = pipeline["store"]
    assert store.count("metrics") == expected
    assert _duplicates(store) == 0
    batches = store.read("batches")
    assert set(batches["status"]) == {"validated"}
    assert (batches["rows_in"] == batches["rows_valid"] + batches["rows_quarantined"]).all()
    assert store.count("staging") == 0


def test_forecasts_for_every_service(config, pipeline):
    store = pipeline["store"]
    capacity = store.read("capacity", run_date=ANCHOR)
    throughput = capacity[capacity["metric"] == "throughput"]
    assert sorted(throughput["service"]) == sorted(s.name for s in config.services)
    assert set(throughput["status"]) == {"ok"}
    forecasts = store.read("forecasts", run_date=ANCHOR, metric="throughput")
    assert forecasts.groupby("service").size().min() == config.forecasting.horizon_days * 24
    assert (forecasts["yhat_lower"] <= forecasts["yhat"]).all() and (forecasts["yhat"] <= forecasts["yhat_upper"]).all()


def test_injected_saturation_is_found(fleet, pipeline):
    truth = next(t for t in fleet.ground_truth() if t.kind == "saturation")
    capacity = pipeline["store"].read("capacity", run_date=ANCHOR, service=truth.service, metric="throughput").iloc[0]
    assert pd.notna(capacity["saturation_at"])
    # 12.5 days ahead from 21 days of history: the weekday peak grows about 1.5 % a day, so a few
    # percent of level error moves the crossing by days (with 56 days of history it is within hours).
    late = capacity["saturation_at"] - pd.Timestamp(truth.saturation_at)
    assert pd.Timedelta(days=-1) <= late <= pd.Timedelta(days=3.5)
    assert capacity["saturation_at_upper"] <= capacity["saturation_at"]
    assert capacity["saturation_probability"] > 0.7
    others = pipeline["store"].read("capacity", run_date=ANCHOR, metric="throughput")
    assert others.loc[others["service"] != truth.service, "saturation_at"].isna().all()


def test_injected_incidents_are_classified(fleet, pipeline):
    findings = pipeline["store"].read("findings")
    for truth in fleet.ground_truth():
        if truth.kind == "saturation":
            continue
        hits = findings[(findings["service"] == truth.service) & (findings["type"] == truth.expected_type)]
        assert len(hits) >= 1, f"{truth.kind} on {truth.service} not found as {truth.expected_type}"
        assert json.loads(hits["root_causes"].iloc[0])[0]["signal"] == truth.expected_cause
        assert set(hits["remedy"]) == {truth.remedy}
        # the root cause across services: the injected node, and the team to tell
        named = {json.loads(e).get("root_cause", {}).get("service") for e in hits["evidence"]}
        assert truth.root_cause in named, f"{truth.kind} on {truth.service}: root cause {named}, expected {truth.root_cause}"
    incident_services = {t.service for t in fleet.ground_truth()}
    assert findings[~findings["service"].isin(incident_services)].empty


def test_actions_are_audited_in_dry_run(config, pipeline):
    audit = pipeline["store"].read("audit")
    scaling = audit[audit["kind"] == "scaling"]
    assert sorted(scaling["service"]) == sorted(s.name for s in config.services)
    assert set(scaling["status"]) == {"dry_run"} and scaling["dry_run"].all()
    cache = audit[audit["kind"] == "cache"]
    assert set(cache.loc[cache["status"] == "dry_run", "service"]) == {"catalog-api"}
    connector = audit[audit["kind"] == "connector"].iloc[0]
    assert json.loads(connector["detail"])["written"] == len(config.services) * len(config.forecasting.metrics)
    outbox = list((pipeline["data"] / "outbox" / "capacity").rglob("*.json"))
    assert len(outbox) == len(config.services) * len(config.forecasting.metrics)


def test_report_has_a_plot_per_service(config, pipeline):
    reports = pipeline["reports"]
    page = (reports / f"capacity_report_{ANCHOR}.html").read_text()
    assert page.count("data:image/png;base64,") == len(config.services)
    assert "search-api" in page and "saturation" in page
    twin = json.loads((reports / "latest.json").read_text())
    assert len(twin["overview"]) == len(config.services)


def test_validation_results_data_docs_and_gates(config, pipeline):
    store = pipeline["store"]
    results = store.read("validation_results")
    assert set(results["service"]) == {s.name for s in config.services} and results["success"].all()
    reports = pipeline["reports"]
    index = (reports / "data_docs" / "index.html").read_text()
    for batch_id in store.read("batches")["batch_id"]:
        assert batch_id in index and (reports / "data_docs" / batch_id / "index.html").exists()
    validate = next(r for r in pipeline["results"] if r.dag_id == "validate_metrics")
    assert f"Data Docs: {reports / 'data_docs'}" in validate.log.read_text()
    assert store.read("audit", kind="gate").empty  # every service was fresh and valid: nothing refused


def test_alerts_dag_tells_each_incident_once_and_never_for_a_past_interval(pipeline):
    """The alerts DAG on the pipeline's store: a run for the slice's (old) interval sends and records nothing; a run
    now opens one incident per condition through the shipped log channel; the next run sends nothing again."""
    from datetime import timedelta

    store, outbox = pipeline["store"], pipeline["data"] / "outbox" / "alerts.jsonl"
    env = pipeline["env"]
    past = dags_test("alerts", AS_OF, env=env)
    assert past.ok, past.log.read_text()[-3000:]
    assert store.read("alerts").empty and not outbox.exists()
    assert "is a past interval: nothing is recorded or sent" in past.log.read_text()

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    live = dags_test("alerts", now, env=env)
    assert live.ok, live.log.read_text()[-3000:]
    incidents = store.read("alerts")
    told = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert len(incidents) > 0 and set(incidents["status"]) == {"open"}
    assert sorted(n["incident_key"] for n in told) == sorted(incidents["incident_key"])
    assert {n["action"] for n in told} == {"open"}
    kinds = set(incidents["kind"])
    assert kinds <= {"slo_burn", "error_rate_alarm", "out_of_bounds", "predicted_bottleneck", "saturation"} and kinds, kinds
    print(f"alerts DAG opened {len(incidents)} incidents: {incidents.groupby(['kind', 'severity']).size().to_dict()}")

    again = dags_test("alerts", now + timedelta(minutes=1), env=env)
    assert again.ok, again.log.read_text()[-3000:]
    assert len(outbox.read_text().splitlines()) == len(told), "a second evaluation of the same conditions sends nothing"
    assert len(store.read("alerts")) == len(incidents)


# Written when the task ran, or measured while it ran: not figures of the fleet. An audit record's id hashes its
# run id, which `airflow dags test` names after the moment it started.
VOLATILE = {"created_at", "scored_at", "validated_at", "ingested_at", "updated_at", "landed_at", "seconds", "elapsed_s", "rate",
            "duration_s", "audit_id", "run_id"}
TOOK = re.compile(r" in [0-9.]+ s\b")  # a connector sync's reason ends with the seconds it took


def _figures_only(value):
    """The twin without the moments records were written, how long they took and the run ids (they differ between any two runs)."""
    if isinstance(value, dict):
        return {k: (TOOK.sub(" in - s", v) if k == "reason" and isinstance(v, str) else _figures_only(v))
                for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        items = [_figures_only(v) for v in value]
        if value and all(isinstance(v, dict) and "audit_id" in v for v in value):
            # records written at the same moment are listed by id, which differs between runs: compare them as a set
            items.sort(key=lambda v: json.dumps(v, sort_keys=True, default=str))
        return items
    return value


def _differences(a, b, path="") -> list[str]:
    """Where two twins differ: keys, lengths, and values (floats to 1e-9 relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a.keys() ^ b.keys())}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items against {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return [] if abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b)) else [f"{path}: {a!r} against {b!r}"]
    return [] if a == b else [f"{path}: {a!r} against {b!r}"]


def test_report_twin_is_the_store_and_equal_on_both_stores(config, pipeline):
    """The twin holds what the store says now; on PostgreSQL it also equals the embedded store's, figure for figure."""
    from include.headroom.report.figures import collect_figures
    from include.headroom.report.settings import load_report_settings

    twin = TWINS[pipeline["backend"]]
    again = json.loads(json.dumps(collect_figures(pipeline["store"], config, pd.Timestamp(AS_OF), load_report_settings())))
    assert _differences(twin, again) == []
    assert len(twin["overview"]) == len(config.services) and twin["run_date"] == ANCHOR
    assert twin["accuracy"]["horizons"] and twin["fleet"]["findings"] > 0
    if pipeline["backend"] == "postgres":
        assert "parquet" in TWINS, "the embedded store's run comes first (STORES order)"
        assert _differences(_figures_only(TWINS["parquet"]), _figures_only(twin)) == []
