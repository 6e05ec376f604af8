"""The scaling operators' outcomes: dry-run, approval expired / rejected / approved, live apply through the stand-in API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, UTC

import pytest

from tests.k8s_api import KubeApiServer
from tests.servers import moto_server  # noqa: F401 (fixture)
from tests.plugins.test_scaling_targets import decision

TARGET = {"namespace": "commerce", "name": "orders-api", "conn_id": "k8s_standin"}


class RunningTask:
    """The identity and XCom a running task instance offers an operator."""

    def __init__(self, task_id: str, xcom: dict | None = None) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "scaling_actions", f"manual__{task_id}", task_id, 0
        self.start_date = datetime.now(UTC)
        self.xcom = xcom or {}

    def xcom_pull(self, task_ids: str, map_indexes: int) -> dict | None:
        return self.xcom.get((task_ids, map_indexes))


def _audit_rows(run_id: str):
    from headroom_provider.defaults import store

    audit = store().read("audit", kind="scaling")
    return audit[audit["run_id"] == run_id]


@pytest.fixture
def kube(tmp_path, monkeypatch):
    server = KubeApiServer().start()
    server.add_workload("deployments", "commerce", "orders-api", 4)
    monkeypatch.setenv(
        "AIRFLOW_CONN_K8S_STANDIN", json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(server.kubeconfig(tmp_path))}})
    )
    yield server
    server.stop()


def _live(**kw):
    return {**decision("kubernetes_deployment", TARGET, 4, 6, **kw).to_dict(), "live": True, "live_reason": "live"}


def test_approval_waits_five_minutes_then_records_expired():
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    from headroom_provider.operators.scaling import ApproveScalingOperator

    op = ApproveScalingOperator(task_id="approve_scaling", decision=_live(requires_approval=True, impact="high"))
    assert isinstance(op, ApprovalOperator) and op.response_timeout == timedelta(minutes=5) and op.defaults is None
    ti = RunningTask("approve_expired")
    out = op.execute_complete(
        {"ti": ti}, {"error": "The Human-in-the-loop response timeout has passed without a response.", "error_type": "timeout"}
    )
    assert out == {"approved": False, "outcome": "expired", "by": None}
    rows = _audit_rows(ti.run_id)
    assert list(rows["status"]) == ["expired"] and "expired unanswered" in rows["reason"].iloc[0]


def test_approval_answers():
    from headroom_provider.operators.scaling import ApproveScalingOperator

    op = ApproveScalingOperator(task_id="approve_scaling", decision=_live(requires_approval=True))
    now = datetime.now(UTC)
    yes = op.execute_complete(
        {"ti": RunningTask("a")},
        {"chosen_options": ["Approve"], "params_input": {}, "responded_at": now, "responded_by_user": {"id": "7", "name": "alice"}},
    )
    assert yes == {"approved": True, "outcome": "approved", "by": "alice"}
    no = op.execute_complete(
        {"ti": RunningTask("b")},
        {"chosen_options": ["Reject"], "params_input": {}, "responded_at": now, "responded_by_user": {"id": "8", "name": "bob"}},
    )
    assert no == {"approved": False, "outcome": "rejected", "by": "bob"}


def test_apply_after_expired_or_rejected_approval_changes_nothing(kube):
    from headroom_provider.operators.scaling import ScaleWorkloadOperator

    for task, answer, status in (
        ("expired", None, "expired"),
        ("rejected", {"approved": False, "outcome": "rejected", "by": "bob"}, "skipped"),
    ):
        ti = RunningTask(task, {("approve_scaling", 0): answer})
        op = ScaleWorkloadOperator(task_id="apply_approved", decision=_live(requires_approval=True), approval_task_id="approve_scaling")
        assert op.execute({"ti": ti})["status"] == status
        assert list(_audit_rows(ti.run_id)["status"]) == [status]
    assert kube.requests == [] and kube.replicas("deployments", "commerce", "orders-api") == 4


def test_apply_approved_then_idempotent(kube):
    from headroom_provider.operators.scaling import ScaleWorkloadOperator

    ti = RunningTask("approved", {("approve_scaling", 0): {"approved": True, "outcome": "approved", "by": "alice"}})
    op = ScaleWorkloadOperator(task_id="apply_approved", decision=_live(requires_approval=True), approval_task_id="approve_scaling")
    out = op.execute({"ti": ti})
    assert (out["status"], out["before"]["replicas"], out["after"]["replicas"]) == ("applied", 4, 6)
    row = _audit_rows(ti.run_id).iloc[0]
    assert json.loads(row["detail"])["approved_by"] == "alice" and row["executor"] == "kubernetes_deployment"
    again = ScaleWorkloadOperator(task_id="apply_approved", decision=_live(requires_approval=True), approval_task_id="approve_scaling")
    assert again.execute({"ti": RunningTask("approved-again", ti.xcom)})["status"] == "skipped"
    assert kube.replicas("deployments", "commerce", "orders-api") == 6


def test_needs_approval_but_none_asked_is_refused(kube):
    from headroom_provider.operators.scaling import ScaleWorkloadOperator

    ti = RunningTask("no-approval")
    out = ScaleWorkloadOperator(task_id="apply_scaling", decision=_live(requires_approval=True)).execute({"ti": ti})
    assert out["status"] == "skipped" and kube.requests == []
    assert "needs a human approval" in _audit_rows(ti.run_id)["reason"].iloc[0]


def test_not_live_is_dry_run_and_guard_rail_failure_is_final(kube):
    from airflow.sdk.exceptions import AirflowFailException

    from headroom_provider.operators.scaling import ScaleWorkloadOperator

    ti = RunningTask("dry")
    dry = {**_live(), "live": False, "live_reason": "past interval: as-of 2026-11-01T12:00:00+00:00 is not current"}
    assert ScaleWorkloadOperator(task_id="apply_scaling", decision=dry).execute({"ti": ti})["status"] == "dry_run"
    assert "past interval" in _audit_rows(ti.run_id)["reason"].iloc[0] and kube.requests == []
    bad = {**_live(), "target": {**TARGET, "namespace": "Not_Valid"}}
    ti = RunningTask("bad")
    with pytest.raises(AirflowFailException, match="namespace='Not_Valid'"):
        ScaleWorkloadOperator(task_id="apply_scaling", decision=bad).execute({"ti": ti})
    assert list(_audit_rows(ti.run_id)["status"]) == ["failed"] and kube.requests == []


def test_verify_rolls_back_when_not_converged(kube, monkeypatch):
    from headroom_provider.operators.scaling import ScaleWorkloadOperator, VerifyScalingSensor
    from include.headroom.scaling.settings import policy_settings

    applied = ScaleWorkloadOperator(task_id="apply_scaling", decision=_live()).execute({"ti": RunningTask("verify-apply")})
    assert applied["status"] == "applied"
    kube.objects[("deployments", "commerce", "orders-api")]["status"]["replicas"] = 4  # pods never came up
    sensor = VerifyScalingSensor(task_id="verify_scaling", outcome=applied)
    ti = RunningTask("verify")
    assert sensor.poke({"ti": ti}) is False  # still waiting inside the convergence timeout
    ti.start_date = datetime.now(UTC) - timedelta(seconds=policy_settings().verify.converge_timeout_s + 1)
    assert sensor.poke({"ti": ti}) is True
    rows = _audit_rows(ti.run_id)
    assert list(rows["status"]) == ["rolled_back"] and "target runs 4 of 6 replicas" in rows["reason"].iloc[0]
    assert kube.replicas("deployments", "commerce", "orders-api") == 4


def test_operators_per_target_kind_refuse_other_kinds():
    from headroom_provider.operators.scaling import ScaleEcsServiceOperator, ScaleKubernetesWorkloadOperator

    with pytest.raises(
        ValueError, match=r"ScaleEcsServiceOperator applies \['aws_ecs_service'\] targets, not target_kind='kubernetes_deployment'"
    ):
        ScaleEcsServiceOperator(task_id="ecs", decision=_live()).execute({"ti": RunningTask("ecs")})
    assert ScaleKubernetesWorkloadOperator.target_kinds == {"kubernetes_deployment", "kubernetes_statefulset"}


def test_planned_capacity_becomes_scheduled_actions(moto_server, monkeypatch, tmp_path):
    import shutil

    import boto3
    import yaml

    from headroom_provider.operators.scaling import ScheduleCapacityOperator
    from include.headroom.config import CONFIG_DIR

    directory = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, directory)
    catalog = yaml.safe_load((directory / "catalog.yaml").read_text())
    for svc in catalog["services"]:
        if svc["name"] == "user-profile":
            svc["target"].update(enabled=True, conn_id="aws_moto", name="user-profile-planned")
    (directory / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    monkeypatch.setenv("HEADROOM_CONFIG_DIR", str(directory))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_MOTO", moto_server.aws_conn())
    asg = boto3.client(
        "autoscaling", endpoint_url=moto_server.url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    asg.create_launch_configuration(LaunchConfigurationName="lc-planned", ImageId="ami-12c6146b", InstanceType="t3.micro")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="user-profile-planned",
        LaunchConfigurationName="lc-planned",
        MinSize=3,
        MaxSize=10,
        DesiredCapacity=3,
        AvailabilityZones=["us-east-1a"],
    )
    plan = [{"at": f"2030-01-07T{h:02d}:00:00+00:00", "replicas": r} for h, r in ((7, 3), (8, 5), (9, 5), (10, 4))]
    dry = ScheduleCapacityOperator(task_id="plan", service="user-profile", plan=plan, live=False).execute({"ti": RunningTask("plan")})
    assert [c["replicas"] for c in dry] == [3, 5, 4]
    assert asg.describe_scheduled_actions(AutoScalingGroupName="user-profile-planned")["ScheduledUpdateGroupActions"] == []
    ScheduleCapacityOperator(task_id="plan", service="user-profile", plan=plan, live=True).execute({"ti": RunningTask("plan")})
    actions = asg.describe_scheduled_actions(AutoScalingGroupName="user-profile-planned")["ScheduledUpdateGroupActions"]
    assert sorted((a["ScheduledActionName"], a["MinSize"]) for a in actions) == [
        ("headroom-user-profile-20300107T0700", 3),
        ("headroom-user-profile-20300107T0800", 5),
        ("headroom-user-profile-20300107T1000", 4),
    ]
    with pytest.raises(ValueError, match=r"planned replicas=11 at .* outside \[3, 10\]"):
        ScheduleCapacityOperator(
            task_id="plan", service="user-profile", plan=[{"at": "2030-01-07T07:00:00+00:00", "replicas": 11}], live=True
        ).execute({"ti": RunningTask("plan")})
