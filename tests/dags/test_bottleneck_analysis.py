"""bottleneck_analysis runs hourly and on validated metrics, mapped over services, and emits the findings Asset."""

from __future__ import annotations

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "bottleneck_analysis.py"))
    assert bag.import_errors == {}
    return bag.dags["bottleneck_analysis"]


def test_hourly_or_on_validated_metrics(dag):
    from headroom_provider.assets import FINDINGS, METRICS_VALIDATED, SLO_STATUS

    assert {a.uri for a in dag.timetable.asset_condition.objects} == {METRICS_VALIDATED.uri}
    assert type(dag.timetable.timetable).__name__ == "CronDataIntervalTimetable" and dag.timetable.timetable.expression == "0 * * * *"
    assert {a.uri for t in dag.tasks for a in t.outlets} == {FINDINGS.uri, SLO_STATUS.uri}


def test_mapped_over_service_batches(dag):
    analyse = dag.get_task("analyse_services")
    assert analyse.__class__.__name__ == "MappedOperator" or hasattr(analyse, "expand_input")
    assert dag.params["batch_size"] == 4 and dag.params["window_hours"] is None
