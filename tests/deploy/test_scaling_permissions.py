"""The shipped RBAC manifest and IAM policy grant exactly what the scaling executors call, for the catalog's targets."""

from __future__ import annotations

import ast
import json
import re

import yaml

from tests.conftest import PROJECT_ROOT

EXECUTORS = PROJECT_ROOT / "include" / "headroom" / "scaling" / "executors.py"
AWS_PREFIX = {"EcsServiceScaler": "ecs", "AutoScalingGroupScaler": "autoscaling", "ApplicationAutoScalingScaler": "application-autoscaling"}
K8S_VERB = {"read": "get", "replace": "update", "patch": "patch"}


def _client_calls() -> dict[str, set[str]]:
    """``self.client.<operation>`` calls per AWS scaler class in the executors' source."""
    tree = ast.parse(EXECUTORS.read_text())
    calls: dict[str, set[str]] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in AWS_PREFIX):
        for node in ast.walk(cls):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "client"
                and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "self"
            ):
                calls.setdefault(cls.name, set()).add(node.attr)
    return calls


def test_iam_policy_allows_every_aws_call_and_nothing_else():
    policy = json.loads((PROJECT_ROOT / "deploy" / "aws" / "headroom-scaling-policy.json").read_text())
    allowed = {a for s in policy["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}
    needed = {f"{AWS_PREFIX[cls]}:{''.join(p.title() for p in op.split('_'))}" for cls, ops in _client_calls().items() for op in ops}
    assert len(needed) == 8, needed
    assert needed == allowed
    assert not any("*" in a for a in allowed)


def test_rbac_covers_the_catalog_namespaces_with_least_privilege(config):
    docs = list(yaml.safe_load_all((PROJECT_ROOT / "deploy" / "kubernetes" / "rbac.yaml").read_text()))
    roles = [d for d in docs if d["kind"] == "Role"]
    bindings = {d["metadata"]["namespace"] for d in docs if d["kind"] == "RoleBinding"}
    namespaces = {s.target.params["namespace"] for s in config.services if s.target.kind.value.startswith("kubernetes_")}
    assert {r["metadata"]["namespace"] for r in roles} == bindings == namespaces
    assert not any(d["kind"] in ("ClusterRole", "ClusterRoleBinding") for d in docs)
    source = EXECUTORS.read_text()
    used = {
        (K8S_VERB[m[0]], m[1])
        for m in re.findall(r"\.(read|replace|patch)_namespaced_(deployment_scale|stateful_set_scale|horizontal_pod_autoscaler)\b", source)
    }
    resource = {
        "deployment_scale": "deployments/scale",
        "stateful_set_scale": "statefulsets/scale",
        "horizontal_pod_autoscaler": "horizontalpodautoscalers",
    }
    for role in roles:
        granted = {(verb, res) for rule in role["rules"] for res in rule["resources"] for verb in rule["verbs"]}
        assert {(v, resource[r]) for v, r in used} <= granted
        assert {res for _, res in granted} == set(resource.values())  # nothing beyond the scale subresources and HPAs
        assert {v for v, _ in granted} <= {"get", "update", "patch"}
