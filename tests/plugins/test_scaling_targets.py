"""Scalers driven through the real provider hooks: Kubernetes via KubernetesHook against the local API stand-in,
AWS via AwsBaseHook against moto in server mode."""

from __future__ import annotations

import json

import pytest

from include.headroom.audit import Status
from include.headroom.exceptions import ActionError, GuardRailError
from include.headroom.scaling.decide import ScalingDecision
from include.headroom.scaling.executors import TargetState, Verdict, apply_decision, judge, roll_back
from include.headroom.scaling.settings import VerifySettings
from tests.k8s_api import KubeApiServer
from tests.servers import moto_server  # noqa: F401 (fixture)


def decision(kind: str, target: dict, current: int, desired: int, **kw) -> ScalingDecision:
    base = dict(
        decision_id="d1",
        service="orders-api",
        tier="professional",
        as_of="2026-11-01T12:00:00+00:00",
        action="scale",
        rule="hpa_cpu",
        reason="cpu 95% vs target 70%",
        current_replicas=current,
        desired_replicas=desired,
        cost_change_month=146.0,
        impact="medium",
        requires_approval=False,
        target_kind=kind,
        target=target,
        enabled=True,
        min_replicas=2,
        max_replicas=12,
        max_step=6,
        recommendation=desired,
    )
    return ScalingDecision(**{**base, **kw})


@pytest.fixture
def kube(tmp_path, monkeypatch):
    server = KubeApiServer().start()
    server.add_workload("deployments", "commerce", "orders-api", 4)
    server.add_workload("statefulsets", "identity", "session-service", 3)
    server.add_hpa("commerce", "orders-api", "orders-api", 2, 12)
    conn = {"conn_type": "kubernetes", "extra": {"kube_config_path": str(server.kubeconfig(tmp_path))}}
    monkeypatch.setenv("AIRFLOW_CONN_K8S_STANDIN", json.dumps(conn))
    yield server
    server.stop()


def scaler_for(kind: str, target: dict):
    from headroom_provider.hooks.scaling import ScalingTargetHook

    scaler = ScalingTargetHook(kind, target).get_scaler()
    if hasattr(scaler, "backoff_s"):
        scaler.backoff_s = 0.01
    return scaler


DEPLOY = {"namespace": "commerce", "name": "orders-api", "conn_id": "k8s_standin"}


def test_deployment_scaled_through_scale_subresource_and_idempotent(kube):
    scaler = scaler_for("kubernetes_deployment", DEPLOY)
    rec = apply_decision(decision("kubernetes_deployment", DEPLOY, 4, 6), scaler)
    assert (rec.status, rec.before["replicas"], rec.after["replicas"]) == (Status.APPLIED, 4, 6)
    assert kube.replicas("deployments", "commerce", "orders-api") == 6
    assert ("PUT", "/apis/apps/v1/namespaces/commerce/deployments/orders-api/scale") in kube.requests
    writes = sum(m == "PUT" for m, _ in kube.requests)
    again = apply_decision(decision("kubernetes_deployment", DEPLOY, 4, 6), scaler)
    assert again.status is Status.SKIPPED and again.detail["idempotent"] is True
    assert sum(m == "PUT" for m, _ in kube.requests) == writes  # the second apply wrote nothing


def test_statefulset_and_hpa_floor(kube):
    sts = {"namespace": "identity", "name": "session-service", "conn_id": "k8s_standin"}
    rec = apply_decision(
        decision("kubernetes_statefulset", sts, 3, 5, service="session-service"), scaler_for("kubernetes_statefulset", sts)
    )
    assert rec.status is Status.APPLIED and kube.replicas("statefulsets", "identity", "session-service") == 5
    hpa = {**DEPLOY, "hpa": "orders-api"}
    floor = apply_decision(decision("kubernetes_deployment", hpa, 2, 5, rule="predictive_floor"), scaler_for("kubernetes_deployment", hpa))
    assert floor.status is Status.APPLIED and kube.objects[("hpa", "commerce", "orders-api")]["spec"]["minReplicas"] == 5
    assert kube.replicas("deployments", "commerce", "orders-api") == 4  # the HPA scales the workload, not headroom


def test_conflict_is_reread_and_retried(kube):
    kube.conflict_next = 2  # two other writers get in first
    rec = apply_decision(decision("kubernetes_deployment", DEPLOY, 4, 7), scaler_for("kubernetes_deployment", DEPLOY))
    assert rec.status is Status.APPLIED and kube.replicas("deployments", "commerce", "orders-api") == 7
    puts = [p for m, p in kube.requests if m == "PUT"]
    assert len(puts) == 3


def test_server_errors_retried_then_clean_failure(kube):
    scaler = scaler_for("kubernetes_deployment", DEPLOY)
    kube.fail_next = [500]
    assert apply_decision(decision("kubernetes_deployment", DEPLOY, 4, 5), scaler).status is Status.APPLIED
    kube.fail_next = [500] * 20
    with pytest.raises(ActionError, match=r"read deployment/orders-api scale in commerce failed after 4 attempt\(s\): HTTP 500"):
        apply_decision(decision("kubernetes_deployment", DEPLOY, 5, 6), scaler)
    kube.fail_next = []
    assert kube.replicas("deployments", "commerce", "orders-api") == 5  # unchanged by the failed attempt


def test_missing_object_fails_at_once(kube):
    missing = {**DEPLOY, "name": "ghost"}
    with pytest.raises(ActionError, match=r"failed after 1 attempt\(s\): HTTP 404"):
        apply_decision(decision("kubernetes_deployment", missing, 4, 5), scaler_for("kubernetes_deployment", missing))


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ({"namespace": "Commerce", "name": "orders-api"}, "namespace='Commerce' is not a valid Kubernetes namespace"),
        ({"namespace": "commerce", "name": "orders_api"}, "name='orders_api' is not a valid Kubernetes object name"),
        ({"namespace": "commerce"}, "target field 'name' is missing"),
    ],
)
def test_invalid_names_refused_before_any_call(kube, target, match):
    scaler = scaler_for("kubernetes_deployment", {**DEPLOY})
    with pytest.raises(GuardRailError, match=match):
        apply_decision(decision("kubernetes_deployment", target, 4, 5), scaler)
    assert kube.requests == []


def test_live_step_limit_and_rollback(kube):
    scaler = scaler_for("kubernetes_deployment", DEPLOY)
    kube.external_write("deployments", "commerce", "orders-api", 12)  # someone else scaled it meanwhile
    with pytest.raises(GuardRailError, match="runs 12 replicas now; moving to 5 exceeds the step limit of 3"):
        apply_decision(decision("kubernetes_deployment", DEPLOY, 4, 5, max_step=3), scaler)
    kube.external_write("deployments", "commerce", "orders-api", 4)
    d = decision("kubernetes_deployment", DEPLOY, 4, 6)
    applied = apply_decision(d, scaler)
    back = roll_back(d, scaler, applied.before["replicas"], "CPU got worse")
    assert back.status is Status.ROLLED_BACK and kube.replicas("deployments", "commerce", "orders-api") == 4


def test_verify_verdicts(kube):
    verify = VerifySettings(converge_timeout_s=600, worse_if_cpu_rises_by=10.0)
    kube.converge = False
    scaler = scaler_for("kubernetes_deployment", DEPLOY)
    apply_decision(decision("kubernetes_deployment", DEPLOY, 4, 6), scaler)
    state = scaler.read(DEPLOY)
    assert (state.replicas, state.ready) == (6, 4)
    assert judge(6, state, 60, {}, {}, 70, 0.05, verify)[0] is Verdict.WAIT
    assert judge(6, state, 601, {}, {}, 70, 0.05, verify)[0] is Verdict.NOT_CONVERGED
    done = TargetState(6, 6)
    assert judge(6, done, 60, {"cpu_utilization": 92.0}, {"cpu_utilization": 65.0}, 70, 0.05, verify)[0] is Verdict.OK
    verdict, why = judge(6, done, 60, {"cpu_utilization": 72.0}, {"cpu_utilization": 88.0}, 70, 0.05, verify)
    assert verdict is Verdict.WORSE and "72.0% to 88.0%" in why


# -- AWS through moto -------------------------------------------------------------------------------


@pytest.fixture
def aws(moto_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_MOTO", moto_server.aws_conn())
    import boto3

    kw = dict(endpoint_url=moto_server.url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    return {name: boto3.client(name, **kw) for name in ("ecs", "autoscaling", "ec2", "application-autoscaling")}


def test_ecs_service_desired_count(aws):
    ecs = aws["ecs"]
    ecs.create_cluster(clusterName="platform")
    ecs.register_task_definition(family="notifications", containerDefinitions=[{"name": "app", "image": "app:1", "memory": 256}])
    ecs.create_service(cluster="platform", serviceName="notifications", taskDefinition="notifications", desiredCount=2)
    target = {"cluster": "platform", "service": "notifications", "conn_id": "aws_moto"}
    scaler = scaler_for("aws_ecs_service", target)
    rec = apply_decision(decision("aws_ecs_service", target, 2, 4, service="notifications"), scaler)
    assert (rec.status, rec.before["replicas"], rec.after["replicas"]) == (Status.APPLIED, 2, 4)
    assert ecs.describe_services(cluster="platform", services=["notifications"])["services"][0]["desiredCount"] == 4
    assert apply_decision(decision("aws_ecs_service", target, 2, 4, service="notifications"), scaler).status is Status.SKIPPED


def test_autoscaling_group_desired_capacity_and_scheduled_floor(aws):
    aws["autoscaling"].create_launch_configuration(LaunchConfigurationName="lc-up", ImageId="ami-12c6146b", InstanceType="t3.micro")
    aws["autoscaling"].create_auto_scaling_group(
        AutoScalingGroupName="user-profile-asg",
        LaunchConfigurationName="lc-up",
        MinSize=3,
        MaxSize=10,
        DesiredCapacity=3,
        AvailabilityZones=["us-east-1a"],
    )
    target = {"name": "user-profile-asg", "conn_id": "aws_moto"}
    scaler = scaler_for("aws_autoscaling_group", target)
    rec = apply_decision(decision("aws_autoscaling_group", target, 3, 5, service="user-profile", min_replicas=3, max_replicas=10), scaler)
    assert rec.status is Status.APPLIED and rec.after["replicas"] == 5
    group = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=["user-profile-asg"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 5
    scaler.schedule_floor(target, "headroom-floor-0800", "2030-01-06T08:00:00Z", 6)
    actions = aws["autoscaling"].describe_scheduled_actions(AutoScalingGroupName="user-profile-asg")["ScheduledUpdateGroupActions"]
    assert [(a["ScheduledActionName"], a["MinSize"], a["DesiredCapacity"]) for a in actions] == [("headroom-floor-0800", 6, 6)]


def test_application_autoscaling_targets_and_scheduled_action(aws):
    target = {
        "service_namespace": "dynamodb",
        "resource_id": "table/orders",
        "scalable_dimension": "dynamodb:table:ReadCapacityUnits",
        "conn_id": "aws_moto",
    }
    scaler = scaler_for("aws_application_autoscaling", target)
    scaler.register(target, 5, 50)
    rec = apply_decision(decision("aws_application_autoscaling", target, 5, 8, min_replicas=1, max_replicas=50), scaler)
    assert rec.status is Status.APPLIED and (rec.before["replicas"], rec.after["replicas"]) == (5, 8)
    got = aws["application-autoscaling"].describe_scalable_targets(ServiceNamespace="dynamodb", ResourceIds=["table/orders"])
    assert got["ScalableTargets"][0]["MinCapacity"] == 8 and got["ScalableTargets"][0]["MaxCapacity"] == 50
    scaler.schedule_floor(target, "headroom-planned-0900", "2030-01-06T09:00:00Z", 12)
    actions = aws["application-autoscaling"].describe_scheduled_actions(ServiceNamespace="dynamodb")["ScheduledActions"]
    assert [(a["ScheduledActionName"], a["Schedule"], a["ScalableTargetAction"]["MinCapacity"]) for a in actions] == [
        ("headroom-planned-0900", "at(2030-01-06T09:00:00)", 12)
    ]
    bad = {**target, "resource_id": "table/x"}
    with pytest.raises(GuardRailError, match="resource_id='table/x' is not a valid dynamodb resource id"):
        apply_decision(decision("aws_application_autoscaling", bad, 5, 8), scaler)


def _inject(client, code: str, times: int, status: int = 400):
    """Make the next ``times`` requests of a real botocore client answer with error ``code``."""
    from botocore.awsrequest import AWSResponse

    left = {"n": times}

    class Raw:
        def stream(self, **_):
            yield b""

    def before_send(request, **_):
        if left["n"] <= 0:
            return None
        left["n"] -= 1
        body = json.dumps({"__type": code, "message": f"injected {code}"}).encode()
        response = AWSResponse(request.url, status, {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.1"}, Raw())
        response._content = body
        return response

    client.meta.events.register("before-send", before_send)
    return left


def test_throttling_retried_and_access_denied_clean(aws):
    target = {
        "service_namespace": "dynamodb",
        "resource_id": "table/throttled",
        "scalable_dimension": "dynamodb:table:ReadCapacityUnits",
        "conn_id": "aws_moto",
    }
    scaler = scaler_for("aws_application_autoscaling", target)
    scaler.client.meta.config.retries = {"max_attempts": 0}
    scaler.register(target, 2, 20)
    left = _inject(scaler.client, "ThrottlingException", 2)
    rec = apply_decision(decision("aws_application_autoscaling", target, 2, 3, min_replicas=1, max_replicas=20), scaler)
    assert rec.status is Status.APPLIED and left["n"] == 0
    _inject(scaler.client, "AccessDeniedException", 1)
    with pytest.raises(ActionError, match="access denied .*IAM policy in deploy/aws/"):
        apply_decision(decision("aws_application_autoscaling", target, 3, 4, min_replicas=1, max_replicas=20), scaler)
    got = aws["application-autoscaling"].describe_scalable_targets(ServiceNamespace="dynamodb", ResourceIds=["table/throttled"])
    assert got["ScalableTargets"][0]["MinCapacity"] == 3  # the refused call changed nothing
