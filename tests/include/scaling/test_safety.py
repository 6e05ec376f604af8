"""Guard rails: current interval, target validation, step limit, routing to live or dry-run, memory from the audit trail."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from include.headroom.audit import AuditRecord, Status, record
from include.headroom.exceptions import GuardRailError
from include.headroom.scaling.executors import DryRunExecutor
from include.headroom.scaling.settings import policy_settings
from include.headroom.scaling.routing import route_decisions, scaling_memory
from include.headroom.scaling.safety import check_guard_rails, interval_is_current, validate_target
from tests.plugins.test_scaling_targets import decision

NOW = pd.Timestamp("2026-11-01T12:00Z")


def test_only_the_current_interval_is_current():
    s = policy_settings()  # period 300 s + grace 600 s
    assert interval_is_current(NOW, NOW, s)
    assert interval_is_current(NOW - pd.Timedelta(seconds=900), NOW, s)
    assert not interval_is_current(NOW - pd.Timedelta(seconds=901), NOW, s)
    assert not interval_is_current(NOW - pd.Timedelta(days=3), NOW, s)


@pytest.mark.parametrize(
    ("kind", "params", "match"),
    [
        ("kubernetes_deployment", {"namespace": "-bad", "name": "x"}, "namespace='-bad'"),
        ("kubernetes_deployment", {"namespace": "a" * 64, "name": "x"}, "is not a valid Kubernetes namespace"),
        ("kubernetes_statefulset", {"namespace": "ok", "name": "UPPER"}, "name='UPPER'"),
        ("kubernetes_deployment", {"namespace": "ok", "name": "x", "hpa": "bad/hpa"}, "hpa='bad/hpa'"),
        ("aws_ecs_service", {"cluster": "platform", "service": "a b"}, "service='a b' is not a valid ECS name"),
        ("aws_autoscaling_group", {"name": "arn:aws:x"}, "name='arn:aws:x' is not a valid Auto Scaling group name"),
        (
            "aws_application_autoscaling",
            {"service_namespace": "ec2", "resource_id": "x", "scalable_dimension": "y"},
            "service_namespace='ec2'",
        ),
        (
            "aws_application_autoscaling",
            {"service_namespace": "lambda", "resource_id": "function:f:live", "scalable_dimension": "ecs:service:DesiredCount"},
            "scalable_dimension='ecs:service:DesiredCount'",
        ),
        ("nope", {}, "unknown target kind 'nope'"),
    ],
)
def test_invalid_targets_named(kind, params, match):
    with pytest.raises(GuardRailError, match=match):
        validate_target(kind, params, "svc")


def test_valid_targets_pass(config):
    for svc in config.services:
        validate_target(svc.target.kind.value, svc.target.params, svc.name)
    validate_target(
        "aws_application_autoscaling",
        {"service_namespace": "lambda", "resource_id": "function:pay:live", "scalable_dimension": "lambda:function:ProvisionedConcurrency"},
    )
    validate_target(
        "aws_application_autoscaling",
        {"service_namespace": "ecs", "resource_id": "service/platform/notifications", "scalable_dimension": "ecs:service:DesiredCount"},
    )


def test_bounds_and_step_limit():
    with pytest.raises(GuardRailError, match=r"desired_replicas=13 is outside \[2, 12\]"):
        check_guard_rails(decision("kubernetes_deployment", {}, 8, 13), 2, 12)
    with pytest.raises(GuardRailError, match="a step from 2 to 9 exceeds the step limit of 6"):
        check_guard_rails(decision("kubernetes_deployment", {}, 2, 9), 2, 12)
    check_guard_rails(decision("kubernetes_deployment", {}, 2, 8), 2, 12)


def test_dry_run_is_the_default_in_the_shipped_catalog(config):
    assert not any(s.target.enabled for s in config.services)


def test_routing_live_only_when_enabled_current_and_unique():
    target = {"namespace": "commerce", "name": "orders-api"}
    now_iso = NOW.isoformat()
    decisions = [
        decision("kubernetes_deployment", target, 4, 6, as_of=now_iso).to_dict(),
        decision("kubernetes_deployment", {**target, "name": "b"}, 4, 6, as_of=now_iso, enabled=False, service="b").to_dict(),
        decision(
            "kubernetes_deployment", {**target, "name": "c"}, 4, 6, as_of=(NOW - pd.Timedelta(days=2)).isoformat(), service="c"
        ).to_dict(),
        decision("kubernetes_deployment", {**target, "name": "d"}, 4, 4, as_of=now_iso, action="none", service="d").to_dict(),
        decision("kubernetes_deployment", {**target, "name": "e"}, 4, 6, as_of=now_iso, service="e").to_dict(),
        decision("kubernetes_deployment", {**target, "name": "e"}, 4, 6, as_of=now_iso, service="e2").to_dict(),
    ]
    routed = {d["service"]: d for d in route_decisions(decisions, NOW + pd.Timedelta(minutes=2), policy_settings())}
    assert routed["orders-api"]["live"] is True
    assert routed["b"]["live_reason"] == "dry-run: the service is not enabled in the catalog"
    assert routed["c"]["live_reason"].startswith("past interval: as-of 2026-10-30T12:00:00+00:00 is not current")
    assert routed["d"]["live"] is False
    assert not routed["e"]["live"] and "named by more than one service" in routed["e2"]["live_reason"]
    record = DryRunExecutor(why=routed["c"]["live_reason"]).apply(decision("kubernetes_deployment", target, 4, 6))
    assert record.status is Status.DRY_RUN and "would scale kubernetes_deployment" in record.reason and "past interval" in record.reason


def test_memory_from_the_audit_trail(store):
    d = decision("kubernetes_deployment", {"namespace": "commerce", "name": "orders-api"}, 4, 6)
    at = NOW - pd.Timedelta(minutes=5)
    rows = [
        AuditRecord(
            kind="scaling",
            service="orders-api",
            action="scale",
            status=Status.APPLIED,
            dry_run=False,
            executor="k8s",
            reason="",
            before={"replicas": 4},
            after={"replicas": 6},
            run_id="r1",
            detail={"as_of": at.isoformat(), "recommendation": 6, "decision_id": d.decision_id},
        ),
        AuditRecord(
            kind="scaling",
            service="orders-api",
            action="scale",
            status=Status.DRY_RUN,
            dry_run=True,
            executor="dry_run",
            reason="",
            before={"replicas": 6},
            after={"replicas": 6},
            run_id="r0",
            detail={"as_of": (NOW - pd.Timedelta(hours=3)).isoformat(), "recommendation": 9},
        ),
    ]
    record(store, *rows, now=NOW)
    memory = scaling_memory(store, NOW, 600)
    recs, events = memory["orders-api"]
    assert [(r.at, r.replicas) for r in recs] == [(at.timestamp(), 6)]  # the 3-hour-old one is outside the window
    assert [(e.at, e.change) for e in events] == [(at.timestamp(), 2)]
    assert json.loads(store.read("audit")["detail"].iloc[0])["as_of"]


def test_memory_keeps_a_zero_recommendation_and_the_first_seen_seed(store):
    """A recommendation of 0 is a recommendation (the controller keeps it); the seed of a first-seen target is one too."""
    at = NOW - pd.Timedelta(minutes=5)
    record(
        store,
        AuditRecord(
            kind="scaling",
            service="docs-site",
            action="none",
            status=Status.DRY_RUN,
            dry_run=True,
            executor="dry_run",
            reason="",
            before={"replicas": 3},
            after={"replicas": 3},
            run_id="r2",
            detail={"as_of": at.isoformat(), "recommendation": 0, "seed": 3},
        ),
        now=NOW,
    )
    recs, events = scaling_memory(store, NOW, 600)["docs-site"]
    assert sorted((r.at, r.replicas) for r in recs) == [(at.timestamp(), 0), (at.timestamp(), 3)]
    assert events == []
    assert "blog-frontend" not in scaling_memory(store, NOW, 600)  # never decided: plan_scaling(first_seen=True)
