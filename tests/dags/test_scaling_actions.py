"""scaling_actions through real Airflow: a run for a past interval records what it would have done and applies nothing,
even for a service enabled against a (stand-in) Kubernetes API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from include.headroom.config import CONFIG_DIR
from tests.conftest import AIRFLOW, PROJECT_ROOT
from tests.k8s_api import KubeApiServer
from tests.servers import moto_server  # noqa: F401 (fixture)

AS_OF = pd.Timestamp("2026-11-01T12:00Z")


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "scaling_actions.py"))
    assert bag.import_errors == {}
    return bag.dags["scaling_actions"]


def test_shape_pool_and_approval(dag):
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    assert dag.max_active_runs == 1
    assert dag.get_task("apply_scaling").pool == dag.get_task("apply_approved").pool == "headroom_scaling"
    approve = dag.get_task("approve_scaling")
    assert issubclass(approve.operator_class, ApprovalOperator)
    assert dag.get_task("apply_approved").trigger_rule == "all_done"
    assert dag.get_task("schedule_capacity").pool == "headroom_scaling"
    assert dag.get_task("plan_capacity_schedules").downstream_task_ids == {"schedule_capacity"}
    assert set(dag.get_task("approve_scaling").downstream_task_ids) == {"apply_approved"}
    pools = yaml.safe_load((PROJECT_ROOT / "airflow_settings.yaml").read_text())["airflow"]["pools"]
    assert {"pool_name": "headroom_scaling", "pool_slot": 1}.items() <= next(
        p for p in pools if p["pool_name"] == "headroom_scaling"
    ).items()


@pytest.fixture
def enabled_config(tmp_path):
    """The shipped configuration with orders-api enabled against the stand-in and a floor that forces a scale-out."""
    directory = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, directory)
    catalog = yaml.safe_load((directory / "catalog.yaml").read_text())
    for svc in catalog["services"]:
        if svc["name"] == "orders-api":
            svc["target"].update(enabled=True, conn_id="k8s_standin")
        if svc["name"] == "user-profile":
            svc["target"].update(enabled=True, conn_id="aws_moto", name="user-profile-dag")
    (directory / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    scaling = yaml.safe_load((directory / "scaling.yaml").read_text())
    scaling["scheduled"].append(
        {
            "name": "test-floor",
            "services": ["orders-api"],
            "timezone": "UTC",
            "days": ["sun"],
            "start": "00:00",
            "end": "23:59",
            "min_replicas": 12,
        }
    )
    scaling["scheduled"].append(
        {
            "name": "test-planned",
            "services": ["user-profile"],
            "timezone": "UTC",
            "days": ["sun"],
            "start": "14:00",
            "end": "16:00",
            "min_replicas": 6,
        }
    )
    (directory / "scaling.yaml").write_text(yaml.safe_dump(scaling))
    return directory


def test_past_interval_records_and_applies_nothing(airflow_db, enabled_config, tmp_path, config, moto_server):
    from include.headroom.steps import ingest, validate
    from include.headroom.metrics.sources import SampleFleetSource
    from include.headroom.store import ParquetStore

    data = tmp_path / "data"
    store = ParquetStore(data / "store")
    ingest.ingest(store, config, SampleFleetSource(config, anchor="2026-11-01"), AS_OF - pd.Timedelta(minutes=15), AS_OF, history_days=1)
    validate.validate_pending(store, config)
    import boto3

    asg = boto3.client(
        "autoscaling", endpoint_url=moto_server.url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    asg.create_launch_configuration(LaunchConfigurationName="lc-dag", ImageId="ami-12c6146b", InstanceType="t3.micro")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="user-profile-dag",
        LaunchConfigurationName="lc-dag",
        MinSize=3,
        MaxSize=10,
        DesiredCapacity=3,
        AvailabilityZones=["us-east-1a"],
    )
    kube = KubeApiServer().start()
    try:
        kube.add_workload("deployments", "commerce", "orders-api", 4)
        env = {
            **os.environ,
            "HEADROOM_DATA_DIR": str(data),
            "HEADROOM_CONFIG_DIR": str(enabled_config),
            "AIRFLOW_CONN_AWS_MOTO": moto_server.aws_conn(),
            "AIRFLOW_CONN_K8S_STANDIN": json.dumps(
                {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kube.kubeconfig(tmp_path))}}
            ),
        }
        run = subprocess.run(
            [AIRFLOW, "dags", "test", "scaling_actions", AS_OF.isoformat()], env=env, capture_output=True, text=True, timeout=240
        )
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
        assert kube.requests == []  # production untouched
        # the planned capacity (the 14:00-16:00 floor of 6) is only logged for a past interval, never put on the group
        assert "would schedule" in run.stdout + run.stderr and "headroom-user-profile-20261101T1400" in run.stdout + run.stderr
        assert asg.describe_scheduled_actions(AutoScalingGroupName="user-profile-dag")["ScheduledUpdateGroupActions"] == []
        assert kube.replicas("deployments", "commerce", "orders-api") == 4
    finally:
        kube.stop()
    audit = store.read("audit", kind="scaling")
    assert sorted(audit["service"]) == sorted(s.name for s in config.services)
    orders = audit[audit["service"] == "orders-api"].iloc[0]
    assert (orders["action"], orders["status"], bool(orders["dry_run"])) == ("scale", "dry_run", True)
    assert "past interval: as-of 2026-11-01T12:00:00+00:00 is not current" in orders["reason"]
    assert "would scale kubernetes_deployment" in orders["reason"]
    after = json.loads(orders["after"])["replicas"]
    assert json.loads(orders["before"])["replicas"] < after <= 12
    assert set(audit["status"]) <= {"dry_run", "skipped"}
