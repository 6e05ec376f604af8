"""The alerts DAG and the callbacks that reach the same channels: failed runs, approvals waiting, the daily deadline."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_capacity_forecast_has_a_deadline_2_hours_after_it_is_queued_on_the_serialized_dag(dagbag):
    from airflow.sdk.definitions.deadline import DagRunQueuedAtDeadline
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.dags["capacity_forecast"]
    data = DagSerialization.to_dict(dag)
    (deadline,) = DagSerialization.from_dict(data).deadline  # what the scheduler reads
    assert deadline["reference"] == {"reference_type": "DagRunQueuedAtDeadline"}
    assert deadline["interval"]["__data__"] == timedelta(hours=2).total_seconds()
    callback = deadline["callback"]
    assert callback["__classname__"] == "airflow.sdk.definitions.callback.AsyncCallback"
    assert callback["__data__"]["path"] == "headroom_provider.notifications.alerts.deadline_missed"
    assert isinstance(dag.deadline[0].reference, DagRunQueuedAtDeadline)


def test_the_deadline_callback_is_an_importable_coroutine():
    import inspect

    from headroom_provider.notifications.alerts import deadline_missed

    assert inspect.iscoroutinefunction(deadline_missed)


def test_the_alerts_dag_runs_on_the_tables_it_reads_and_writes_the_alerts_table(dagbag):
    from headroom_provider.assets import ACTIONS, ALERTS, FINDINGS, FORECASTS

    dag = dagbag.dags["alerts"]
    uris = {a.uri for a in dag.timetable.asset_condition.objects}
    assert uris == {FINDINGS.uri, FORECASTS.uri, ACTIONS.uri}
    assert [o.uri for o in dag.get_task("evaluate_alerts").outlets] == [ALERTS.uri]
    assert dag.get_task("push_metrics").upstream_task_ids == {"evaluate_alerts"}


def test_every_task_tells_its_failure_through_the_alert_channels(dagbag):
    from headroom_provider.notifications.alerts import HeadroomAlertNotifier

    for dag in dagbag.dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [task.on_failure_callback]
            assert any(isinstance(c, HeadroomAlertNotifier) and c.kind == "run_failed" for c in callbacks), (dag.dag_id, task.task_id)


def test_a_scaling_approval_notifies_with_its_required_actions_link(dagbag):
    from headroom_provider.notifications.alerts import HeadroomAlertNotifier

    approve = dagbag.dags["scaling_actions"].get_task("approve_scaling")
    notifiers = approve.partial_kwargs.get("notifiers") if hasattr(approve, "partial_kwargs") else approve.notifiers
    if not notifiers:  # a mapped operator builds its notifiers when it is unmapped
        from headroom_provider.operators.scaling import ApproveScalingOperator

        notifiers = ApproveScalingOperator(task_id="probe", decision={}).notifiers
    assert [n.kind for n in notifiers if isinstance(n, HeadroomAlertNotifier)] == ["approval_waiting"]


def test_a_missed_deadline_is_told_once_through_the_shipped_log_channel(monkeypatch, tmp_path):
    import asyncio
    import json

    from headroom_provider.notifications.alerts import deadline_missed
    from include.headroom.config import data_dir
    from include.headroom.store import ParquetStore

    monkeypatch.setenv("AIRFLOW_CONN_HEADROOM_STORE", json.dumps({"conn_type": "fs", "extra": {"path": str(tmp_path / "store")}}))
    monkeypatch.setenv("HEADROOM_DATA_DIR", str(tmp_path))  # the log channel's outbox: this test's own, not the session's
    outbox = data_dir() / "outbox" / "alerts.jsonl"
    before = outbox.read_text().splitlines() if outbox.exists() else []
    context = {"dag_run": {"dag_id": "capacity_forecast", "run_id": "scheduled__2026-12-05T02:00:00+00:00"}}
    for _ in range(2):  # the triggerer may run a callback again after a restart
        asyncio.run(deadline_missed(context=context, dag_id="capacity_forecast", deadline="2 hours after it was queued at 02:00 UTC"))
    new = [json.loads(line) for line in outbox.read_text().splitlines()[len(before):]]
    assert [(n["action"], n["severity"]) for n in new] == [("open", "ticket")]
    assert new[0]["incident_key"].startswith("headroom/capacity_forecast/deadline_missed/scheduled__2026-12-05T02:00:00+00:00@")
    assert new[0]["link"] == "http://127.0.0.1:8080/dags/capacity_forecast/runs/scheduled__2026-12-05T02:00:00+00:00"
    row = ParquetStore(tmp_path / "store").read("alerts").iloc[0]
    assert (row.kind, row.status, row.notified_action) == ("deadline_missed", "resolved", "closed")


def test_a_failure_in_a_backfill_run_never_notifies(monkeypatch, tmp_path):
    import json
    from types import SimpleNamespace

    from airflow.utils.types import DagRunType

    from headroom_provider.notifications.alerts import HeadroomAlertNotifier
    from include.headroom.config import data_dir
    from include.headroom.store import ParquetStore

    monkeypatch.setenv("AIRFLOW_CONN_HEADROOM_STORE", json.dumps({"conn_type": "fs", "extra": {"path": str(tmp_path / "store")}}))
    monkeypatch.setenv("HEADROOM_DATA_DIR", str(tmp_path))  # the log channel's outbox: this test's own, not the session's
    outbox = data_dir() / "outbox" / "alerts.jsonl"
    before = len(outbox.read_text().splitlines()) if outbox.exists() else 0
    ti = SimpleNamespace(dag_id="ingest_metrics", run_id="backfill__2026-11-20T00:00:00+00:00", task_id="stage_batch", map_index=-1)
    notifier = HeadroomAlertNotifier(kind="run_failed")
    notifier.notify({"ti": ti, "dag_run": SimpleNamespace(run_type=DagRunType.BACKFILL_JOB), "exception": RuntimeError("boom")})
    assert (len(outbox.read_text().splitlines()) if outbox.exists() else 0) == before
    assert ParquetStore(tmp_path / "store").read("alerts").empty
    notifier.notify({"ti": replace_run(ti), "dag_run": SimpleNamespace(run_type=DagRunType.SCHEDULED), "exception": RuntimeError("boom")})
    told = json.loads(outbox.read_text().splitlines()[-1])
    assert told["incident_key"].startswith("headroom/ingest_metrics/run_failed/scheduled__2026-12-05T02:00:00+00:00@")
    assert "task stage_batch of ingest_metrics failed after its retries (RuntimeError)" in told["summary"]


def replace_run(ti):
    from types import SimpleNamespace

    return SimpleNamespace(**{**vars(ti), "run_id": "scheduled__2026-12-05T02:00:00+00:00"})


def test_in_process_dag_tests_run_without_the_deadline(monkeypatch):
    """`airflow dags test` in Airflow 3.3.2 crashes finishing a run that has a deadline; pipeline_run turns it off."""
    import inspect

    from airflow.dag_processing.dagbag import DagBag

    from scripts import pipeline_run

    assert '"HEADROOM_DAG_DEADLINES": "off"' in inspect.getsource(pipeline_run.dags_test)
    monkeypatch.setenv("HEADROOM_DAG_DEADLINES", "off")
    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "capacity_forecast.py")).dags["capacity_forecast"]
    assert not dag.deadline
