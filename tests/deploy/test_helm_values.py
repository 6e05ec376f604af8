"""deploy/helm/values.yaml: valid YAML for the official Airflow chart, CeleryExecutor, secrets only by reference.

``helm`` and the chart cannot be installed from the package registries this project uses, so
``helm template`` does not run here; these checks are the lint.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
VALUES = PROJECT / "deploy" / "helm" / "values.yaml"
BENCH_WORKER_PEAK_GIB = 0.93  # benchmarks/bench_fleet.py --services 1000: peak RSS of one worker's process tree


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with the same key twice (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {dupes}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_values(text: str) -> dict:
    return yaml.load(text, Loader=_UniqueKeyLoader)


@pytest.fixture(scope="module")
def values() -> dict:
    return load_values(VALUES.read_text())


def _gib(quantity: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", quantity)
    assert match, f"memory quantity {quantity!r} is not in Mi or Gi"
    return float(match.group(1)) / (1024 if match.group(2) == "Mi" else 1)


def test_the_loader_catches_duplicate_keys():
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate keys"):
        load_values("workers:\n  replicas: 1\nworkers:\n  replicas: 2\n")


def test_celery_executor_with_the_pinned_airflow(values):
    assert values["executor"] == "CeleryExecutor"
    pinned = re.search(r"^apache-airflow==(\S+)$", (PROJECT / "requirements.txt").read_text(), re.M).group(1)
    assert values["airflowVersion"] == pinned == values["defaultAirflowTag"]
    assert values["postgresql"]["enabled"] is False and values["redis"]["enabled"] is False
    assert values["dagProcessor"]["enabled"] is True


def test_credentials_only_from_secrets(values):
    assert "metadataConnection" not in values.get("data", {}) and "brokerUrl" not in values.get("data", {})
    for key in ("fernetKey", "webserverSecretKey", "apiSecretKey", "jwtSecret"):
        assert key not in values, f"{key} would put a secret in the values file; use {key}SecretName"
    envs = {e["name"]: e["value"] for e in values["env"]}
    assert not [n for n in envs if re.search(r"PASSWORD|SECRET|TOKEN|AIRFLOW_CONN_", n)], envs
    # Every secret the values refer to is created by the commands documented at the top of the file.
    referenced = {values["data"]["metadataSecretName"], values["data"]["brokerUrlSecretName"], values["fernetKeySecretName"],
                  values["apiSecretKeySecretName"], values["jwtSecretName"]}
    referenced |= {item["secretRef"]["name"] for item in yaml.safe_load(values["extraEnvFrom"])}
    created = set(re.findall(r"create secret generic (\S+)", VALUES.read_text()))
    assert referenced <= created, f"secrets referenced but never created: {sorted(referenced - created)}"


def test_worker_resources_sized_for_the_benchmark(values):
    workers = values["workers"]
    requests, limits = workers["resources"]["requests"], workers["resources"]["limits"]
    concurrency = int(values["config"]["celery"]["worker_concurrency"])
    # bench_fleet.py, 1,000 services: a worker with concurrency 2 peaked at 0.93 GiB; requests leave 50 % room.
    assert concurrency == 2 and _gib(requests["memory"]) >= 1.5 * BENCH_WORKER_PEAK_GIB
    assert _gib(limits["memory"]) >= 2 * _gib(requests["memory"]) - 0.01
    assert float(requests["cpu"]) >= concurrency / 2
    assert workers["replicas"] >= 2
    assert workers["serviceAccount"]["name"] == "headroom-worker"
