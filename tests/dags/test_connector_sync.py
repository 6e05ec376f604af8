"""connector_sync in real Airflow (``airflow dags test``): every connector enabled against its stand-in (the API
servers on 127.0.0.1, moto server for S3, OpenSSH for SFTP), connections from ``AIRFLOW_CONN_*``."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, UTC

import pandas as pd
import pytest
import yaml

from include.headroom.connectors.base import read_watermark
from include.headroom.connectors.engine import watermark_source
from include.headroom.connectors.settings import read_connectors_file
from include.headroom.store import ParquetStore
from scripts.pipeline_run import dags_test
from tests.conftest import PROJECT_ROOT
from tests.connectors_api import HubSpotApi, ODataApi, SalesforceApi, ServiceNowApi, SshdServer
from tests.servers import moto_server  # noqa: F401 - the session fixture

pytestmark = pytest.mark.e2e
AS_OF = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def _http_conn(url, login="", password=""):
    return json.dumps({"conn_type": "http", "host": url, "login": login, "password": password})


def test_dag_maps_one_task_per_connector_in_its_own_pool():
    from dags.connector_sync import CONNECTORS, connector_sync

    dag = connector_sync()
    shipped = read_connectors_file()
    assert {name: c.pool for name, c in shipped.items() if c.objects} == CONNECTORS  # the DAG's static list follows connectors.yaml
    for name, pool in CONNECTORS.items():
        task = dag.get_task(f"sync_{name}")
        assert task.pool == pool == f"connector_{name}"
        assert dag.get_task(f"objects_{name}") in task.upstream_list
    assert {"salesforce", "hubspot", "servicenow", "sap_s4hana", "dynamics_365", "aws_s3", "sftp"} <= set(CONNECTORS)
    pools = {p["pool_name"] for p in yaml.safe_load((PROJECT_ROOT / "airflow_settings.yaml").read_text())["airflow"]["pools"]}
    assert {c.pool for c in read_connectors_file().values()} <= pools
    assert "python -m include.headroom pools" in (PROJECT_ROOT / "Makefile").read_text()


def test_connector_sync_lands_every_connector(airflow_db, moto_server, tmp_path):
    import boto3

    data = tmp_path / "data"
    store = ParquetStore(data / "store")
    store.upsert(
        "capacity",
        pd.DataFrame(
            [
                {
                    "run_date": "2026-11-01",
                    "service": f"svc-{i}",
                    "tier": "standard",
                    "metric": "cpu_utilization",
                    "model": "holt_winters",
                    "scores": "{}",
                    "mape": 0.1,
                    "trusted": True,
                    "data_points": 1,
                    "capacity_limit": 1.0,
                    "last_value": 1.0,
                    "saturation_at": None,
                    "saturation_at_upper": None,
                    "saturation_probability": 0.0,
                    "replicas_needed_peak": 1,
                    "max_replicas_enough": True,
                    "cost_now_month": 10.0 * i,
                    "cost_forecast_month": 12.0 * i,
                    "status": "ok",
                    "reason": "",
                    "mase": 0.8,
                    "coverage": 0.8,
                    "hours_over_max": 0,
                    "cost_recommended_month": 1.0,
                }
                for i in range(12)
            ]
        ),
    )

    raw = yaml.safe_load((PROJECT_ROOT / "include/headroom/config/connectors.yaml").read_text())
    sf, hs, sn = SalesforceApi().start(), HubSpotApi().start(), ServiceNowApi().start()
    sap = ODataApi(raw["connectors"]["sap_s4hana"]["service_path"], "basic").start()
    dyn = ODataApi(raw["connectors"]["dynamics_365"]["service_path"], "bearer", secret="eyJ-dynamics-9c1d").start()
    sshd = SshdServer(tmp_path / "sshd").start()
    try:
        sf.seed("Account", 300)
        hs.seed("companies", 250)
        sn.seed("cmdb_ci_service", 300)
        sap.seed_sap("A_CostCenter", 300)
        dyn.seed_dynamics("accounts", 300)
        s3 = boto3.client(
            "s3", endpoint_url=moto_server.url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        s3.create_bucket(Bucket="headroom-exchange")
        for i in range(3):
            s3.put_object(Bucket="headroom-exchange", Key=f"exports/cost/part-{i}.csv", Body=b"service,cost\na,1\n")
        remote = tmp_path / "remote"
        remote.mkdir()
        for i in range(2):
            (remote / f"extract-{i}.csv").write_bytes(b"x" * (1000 + i))

        config = tmp_path / "config"
        shutil.copytree(PROJECT_ROOT / "include/headroom/config", config)
        for spec in raw["connectors"].values():
            spec["enabled"] = bool(spec.get("objects"))
        raw["connectors"]["sftp"]["objects"]["mainframe_extracts"]["path"] = str(remote)
        raw["connectors"]["salesforce"]["bulk_poll_s"] = 0.05
        raw["retry"].update(base_delay_s=0.05, max_delay_s=0.2)
        (config / "connectors.yaml").write_text(yaml.safe_dump(raw))

        secrets = [sf.client_secret, hs.token, sn.password, sap.secret, dyn.secret]
        env = {
            "HEADROOM_DATA_DIR": str(data),
            "HEADROOM_REPORTS_DIR": str(tmp_path / "reports"),
            "HEADROOM_CONFIG_DIR": str(config),
            "AIRFLOW_CONN_HEADROOM_SALESFORCE": _http_conn(sf.url, sf.client_id, sf.client_secret),
            "AIRFLOW_CONN_HEADROOM_HUBSPOT": _http_conn(hs.url, "", hs.token),
            "AIRFLOW_CONN_HEADROOM_SERVICENOW": _http_conn(sn.url, sn.user, sn.password),
            "AIRFLOW_CONN_HEADROOM_SAP_S4HANA": _http_conn(sap.url, sap.login, sap.secret),
            "AIRFLOW_CONN_HEADROOM_DYNAMICS_365": _http_conn(dyn.url, "", dyn.secret),
            "AIRFLOW_CONN_AWS_DEFAULT": moto_server.aws_conn(),
            "AIRFLOW_CONN_HEADROOM_SFTP": sshd.airflow_conn(),
        }
        result = dags_test("connector_sync", AS_OF, env=env, log_dir=tmp_path / "logs")
        log = result.log.read_text()
        assert result.ok, log[-4000:]
    finally:
        for server in (sf, hs, sn, sap, dyn, sshd):
            server.stop()

    landed = store.read("connector_records")
    counts = landed.groupby(["connector", "object"]).size().to_dict()
    assert counts == {
        ("salesforce", "Account"): 300,
        ("salesforce", "Headroom_Capacity__c"): 12,
        ("hubspot", "companies"): 250,
        ("hubspot", "headroom_capacity"): 12,
        ("servicenow", "cmdb_ci_service"): 300,
        ("sap_s4hana", "A_CostCenter"): 300,
        ("sap_s4hana", "A_CapacityFigure"): 12,
        ("dynamics_365", "accounts"): 300,
        ("dynamics_365", "msdyn_headroomcapacities"): 12,
        ("aws_s3", "cost_exports"): 3,
        ("sftp", "mainframe_extracts"): 2,
        ("capacity_export", "capacity"): 12,
    }
    assert len(sf.data["Headroom_Capacity__c"]) == len(hs.data["headroom_capacity"]) == len(dyn.data["msdyn_headroomcapacities"]) == 12
    assert read_watermark(store, watermark_source("servicenow", "cmdb_ci_service")) == pd.Timestamp("2026-11-01 04:59:00", tz="UTC")
    assert (data / "connectors/files/sftp/mainframe_extracts" / str(remote).lstrip("/") / "extract-1.csv").stat().st_size == 1001

    audits = store.read("audit", kind="connector")
    assert len(audits) == 12 and set(audits["status"]) == {"applied"}
    detail = json.loads(audits[audits["service"] == "hubspot:companies"].iloc[0]["detail"])
    assert (detail["pages"], detail["read"], detail["calls"], detail["throttles"], detail["breaker_trips"]) == (3, 250, 3, 0, 0)
    assert detail["duration_s"] > 0
    for secret in secrets:
        assert secret not in log

    db = sqlite3.connect(airflow_db / "airflow.db")
    uris = {u for (u,) in db.execute("select a.uri from asset_event e join asset a on a.id = e.asset_id")}
    assert {
        "headroom://connectors/salesforce/Account",
        "headroom://connectors/sftp/mainframe_extracts",
        "headroom://connectors/dynamics_365/msdyn_headroomcapacities",
    } <= uris
    pools = dict(db.execute("select task_id, pool from task_instance where dag_id = 'connector_sync' and task_id like 'sync_%'").fetchall())
    assert pools["sync_hubspot"] == "connector_hubspot" and pools["sync_sftp"] == "connector_sftp"
