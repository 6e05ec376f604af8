"""HTTP connectors against their API stand-ins: full and incremental pulls, crash and resume, 429 storms and the
quota, the circuit breaker across processes, remote schema changes, bad credentials, batched pushes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import pandas as pd
import pytest

from include.headroom.connectors.base import read_watermark
from include.headroom.connectors.engine import pull, push, watermark_source
from include.headroom.connectors.http import Credentials
from include.headroom.connectors.registry import build_http_connector
from include.headroom.exceptions import (
    AuthenticationError,
    CircuitOpenError,
    ConnectorError,
    PartialFailureError,
    RemoteSchemaError,
)
from include.headroom.connectors.settings import Quota
from tests.conftest import PROJECT_ROOT
from tests.include.connectors.conftest import creds_for, fast

PULLS = {  # connector -> (server fixture, pull object, seed method, id field of the seed)
    "salesforce": ("salesforce_api", "Account", "seed"),
    "hubspot": ("hubspot_api", "companies", "seed"),
    "servicenow": ("servicenow_api", "cmdb_ci_service", "seed"),
    "sap_s4hana": ("sap_api", "A_CostCenter", "seed_sap"),
    "dynamics_365": ("dynamics_api", "accounts", "seed_dynamics"),
}


def _connector(name, server, tmp_path, **changes):
    return build_http_connector(fast(name, **changes), creds_for(server), tmp_path / "state")


def _landed(store, connector, obj):
    rows = store.read("connector_records", connector=connector)
    return rows[rows["object"] == obj]


def _touch(server, name, obj, indexes, when):
    """Change some remote records at ``when`` the way each system stamps a change."""
    for i in indexes:
        r = server.data[obj][i]
        if name == "salesforce":
            r["SystemModstamp"], r["Name"] = pd.Timestamp(when).strftime("%Y-%m-%dT%H:%M:%S.000+0000"), r["Name"] + "*"
        elif name == "hubspot":
            r["properties"]["lastmodifieddate"] = r["updatedAt"] = pd.Timestamp(when).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            r["properties"]["name"] += "*"
        elif name == "servicenow":
            r["sys_updated_on"], r["name"] = pd.Timestamp(when).strftime("%Y-%m-%d %H:%M:%S"), r["name"] + "*"
        elif name == "sap_s4hana":
            r["LastChangeDateTime"], r["CostCenterName"] = pd.Timestamp(when).strftime("%Y-%m-%dT%H:%M:%SZ"), r["CostCenterName"] + "*"
        else:
            r["modifiedon"], r["name"] = pd.Timestamp(when).strftime("%Y-%m-%dT%H:%M:%SZ"), r["name"] + "*"


@pytest.mark.parametrize("name", list(PULLS))
def test_full_then_incremental_pull(name, request, store, tmp_path):
    fixture, obj, seed = PULLS[name]
    server = request.getfixturevalue(fixture)
    server.reset()
    getattr(server, seed)(obj, 450, step_s=60)
    connector = _connector(name, server, tmp_path, page_size=200)

    full = pull(store, connector, obj)
    assert (full.read, full.landed, full.pages) == (450, 450, 3 if name != "hubspot" else 5)
    assert full.calls == server.calls and full.throttles == 0
    landed = _landed(store, name, obj)
    assert len(landed) == 450 and landed["record_id"].is_unique
    assert read_watermark(store, watermark_source(name, obj)) == pd.Timestamp("2026-11-01T07:29:00Z")
    first = json.loads(landed.sort_values("version").iloc[0]["payload"])
    assert first["name"].endswith("0") and first["modified"]

    _touch(server, name, obj, [3, 7, 11], "2026-11-02T09:00:00Z")
    server.reset()
    inc = pull(store, connector, obj)
    # only what changed at or after the watermark: the boundary record (already landed) and the three changes
    assert inc.read == 4 and inc.landed == 3 and inc.pages == 1
    landed = _landed(store, name, obj)
    assert len(landed) == 453  # three new versions next to the old ones
    newest = landed[landed["version"].str.startswith("2026-11-02T09:00")]
    assert sorted(json.loads(p)["name"][-1] for p in newest["payload"]) == ["*", "*", "*"]
    assert read_watermark(store, watermark_source(name, obj)) == pd.Timestamp("2026-11-02T09:00:00Z")


def test_hubspot_search_beyond_its_window_restarts_from_the_last_change(hubspot_api, store, tmp_path):
    hubspot_api.reset()
    hubspot_api.seed("companies", 1000)
    hubspot_api.search_window = 300
    try:
        connector = _connector("hubspot", hubspot_api, tmp_path)
        connector.SEARCH_WINDOW = 300
        since = pd.Timestamp("2026-11-01T00:00:00Z")
        pages = list(connector.read_changes(fast("hubspot").object("companies"), since))
    finally:
        hubspot_api.search_window = 10_000
    ids = [r["id"] for page in pages for r in page]
    assert set(ids) == {str(1000 + i) for i in range(1000)}  # nothing lost past the window
    assert len(ids) == 1000 + 3  # each restart re-reads the record at its starting instant once


def test_crash_mid_page_resumes_without_loss_or_duplicates(servicenow_api, store, tmp_path):
    servicenow_api.reset()
    servicenow_api.seed("cmdb_ci_service", 1000)
    # pages 1 and 2 arrive and land, then the connection drops on every attempt at page 3
    crashing = _connector("servicenow", servicenow_api, tmp_path, page_size=250, retry={"max_attempts": 3})
    pages = crashing.read_changes

    def crash_after_two(obj, since):
        for i, page in enumerate(pages(obj, since)):
            if i == 1:
                servicenow_api.faults.extend(["drop"] * 3)
            yield page

    crashing.read_changes = crash_after_two
    with pytest.raises(ConnectorError) as info:
        pull(store, crashing, "cmdb_ci_service", flush_records=250)
    assert info.value.sync_report.landed == 500 and info.value.sync_report.retries == 2
    assert read_watermark(store, watermark_source("servicenow", "cmdb_ci_service")) is None
    assert store.count("connector_records") == 500

    servicenow_api.faults.clear()
    resumed = pull(store, _connector("servicenow", servicenow_api, tmp_path, page_size=250), "cmdb_ci_service", flush_records=250)
    assert resumed.read == 1000 and resumed.landed == 500  # re-read from the old watermark; the first 500 replaced, not added
    landed = _landed(store, "servicenow", "cmdb_ci_service")
    assert len(landed) == 1000 and not landed.duplicated(["record_id", "version"]).any()
    assert set(landed["record_id"]) == {r["sys_id"] for r in servicenow_api.data["cmdb_ci_service"]}


def test_429_storm_honours_retry_after_and_counts_calls(hubspot_api, store, tmp_path):
    hubspot_api.reset()
    hubspot_api.seed("companies", 1000)
    hubspot_api.rate_limit = (5, 1.0)  # the remote's own limit is stricter than our configured quota
    hubspot_api.retry_after_s = 1
    connector = _connector("hubspot", hubspot_api, tmp_path, retry={"max_attempts": 6, "max_delay_s": 5})
    report = pull(store, connector, "companies")
    assert report.read == 1000 and store.count("connector_records") == 1000
    assert report.throttles == hubspot_api.throttled >= 1
    assert report.calls == hubspot_api.calls == 10 + hubspot_api.throttled
    assert report.backoff_s >= report.throttles * 1.0  # every 429 waited its Retry-After
    log = hubspot_api.call_log
    for i, (t, _, _) in enumerate(log[:-1]):  # after a throttled call the next one came at least Retry-After later
        if sum(1 for u, _, _ in log[: i + 1] if t - u <= 1.0) > 5:
            assert log[i + 1][0] - t >= 0.95


def test_token_bucket_keeps_calls_within_the_quota(hubspot_api, store, tmp_path):
    hubspot_api.reset()
    hubspot_api.seed("companies", 1200)
    connector = _connector("hubspot", hubspot_api, tmp_path, quota=Quota(calls=10, per_s=1, burst=3))
    report = pull(store, connector, "companies")
    assert report.calls == 12 == hubspot_api.calls and report.throttles == 0
    starts = [t for t, _, _ in hubspot_api.call_log]
    assert starts[-1] - starts[0] >= (12 - 3) / 10 - 0.05  # burst of 3, then 10 a second
    assert max(sum(1 for u in starts if 0 <= u - t < 1.0) for t in starts) <= 13
    assert report.throttled_s >= 0.3


def test_breaker_opens_persists_across_processes_and_recovers(servicenow_api, store, tmp_path):
    servicenow_api.reset()
    servicenow_api.seed("cmdb_ci_service", 300)
    changes = {"retry": {"max_attempts": 2}, "breaker": {"failure_threshold": 3}}  # cool-down 60 s from connectors.yaml
    servicenow_api.faults.extend([503] * 3)
    with pytest.raises(ConnectorError, match="failed after 2 attempts; last: HTTP 503"):
        pull(store, _connector("servicenow", servicenow_api, tmp_path, **changes), "cmdb_ci_service")
    with pytest.raises(ConnectorError) as info:  # the third consecutive failure opens the breaker
        pull(store, _connector("servicenow", servicenow_api, tmp_path, **changes), "cmdb_ci_service")
    assert info.value.sync_report.breaker_trips == 1
    calls = servicenow_api.calls

    # a new process (as a task retry would be) finds the breaker open and makes no call
    script = (
        "import sys; sys.path[:0] = [sys.argv[1]]\n"
        "from tests.include.connectors.conftest import fast\n"
        "from include.headroom.connectors.registry import build_http_connector\n"
        "from include.headroom.connectors.http import Credentials\n"
        "from include.headroom.exceptions import CircuitOpenError\n"
        "c = build_http_connector(fast('servicenow', breaker={'failure_threshold': 3}), "
        "Credentials(base_url=sys.argv[2], login='x', password='y'), sys.argv[3])\n"
        "try:\n    c.client.request('GET', '/api/now/table/cmdb_ci_service')\n"
        "except CircuitOpenError as exc:\n    print('OPEN:', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(PROJECT_ROOT), servicenow_api.url, str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "OPEN: connector 'servicenow': circuit breaker is open after 3 consecutive failures" in out.stdout, out.stderr
    assert servicenow_api.calls == calls
    assert read_watermark(store, watermark_source("servicenow", "cmdb_ci_service")) is None

    time.sleep(0.3)  # a cool-down (0.2 s here) passes: one probe goes through, succeeds, and the breaker closes
    connector = _connector("servicenow", servicenow_api, tmp_path, breaker={"failure_threshold": 3, "cooldown_s": 0.2})
    report = pull(store, connector, "cmdb_ci_service")
    assert report.read == 300 and connector.client.breaker.status().state == "closed"
    assert connector.client.breaker.status().trips == 1


def test_half_open_probe_failure_reopens(servicenow_api, tmp_path):
    servicenow_api.reset()
    servicenow_api.seed("cmdb_ci_service", 10)
    connector = _connector(
        "servicenow", servicenow_api, tmp_path, retry={"max_attempts": 1}, breaker={"failure_threshold": 1, "cooldown_s": 0.2}
    )
    servicenow_api.faults.extend([500, 500])
    with pytest.raises(ConnectorError):
        connector.client.request("GET", "/api/now/table/cmdb_ci_service")
    with pytest.raises(CircuitOpenError):
        connector.client.request("GET", "/api/now/table/cmdb_ci_service")
    time.sleep(0.25)
    with pytest.raises(ConnectorError, match="HTTP 500"):  # the probe fails: open again at once
        connector.client.request("GET", "/api/now/table/cmdb_ci_service")
    assert connector.client.breaker.status().state == "open" and connector.client.breaker.status().trips == 2


def test_remote_schema_change_names_the_field(salesforce_api, store, tmp_path):
    salesforce_api.reset()
    salesforce_api.seed("Account", 50)
    salesforce_api.dropped_fields.add(("Account", "Industry"))
    with pytest.raises(RemoteSchemaError) as info:
        pull(store, _connector("salesforce", salesforce_api, tmp_path), "Account")
    message = str(info.value)
    assert "connector 'salesforce' object 'Account' record '001000000000000': field 'Industry' (mapped to 'industry') is missing" in message
    assert "connectors.salesforce.objects.Account.fields" in message
    assert read_watermark(store, watermark_source("salesforce", "Account")) is None and store.count("connector_records") == 0


def test_unknown_remote_field_is_the_remote_error(sap_api, store, tmp_path):
    sap_api.reset()
    sap_api.seed_sap("A_CostCenter", 5)
    for r in sap_api.data["A_CostCenter"]:
        r.pop("CompanyCode")
    with pytest.raises(ConnectorError, match=r"HTTP 400: 0x0: Could not find a property named 'CompanyCode'"):
        pull(store, _connector("sap_s4hana", sap_api, tmp_path), "A_CostCenter")


@pytest.mark.parametrize("name", ["salesforce", "hubspot", "servicenow", "dynamics_365"])
def test_bad_credentials_fail_clearly_without_the_secret(name, request, store, tmp_path, caplog):
    fixture, obj, seed = PULLS[name]
    server = request.getfixturevalue(fixture)
    server.reset()
    getattr(server, seed)(obj, 5)
    secret = "wrong-Secret-9f8e7d6c"
    good = creds_for(server)
    bad = Credentials(base_url=good.base_url, login=good.login, password=secret)
    caplog.set_level(logging.DEBUG)
    connector = build_http_connector(fast(name), bad, tmp_path / "state")
    with pytest.raises(AuthenticationError) as info:
        pull(store, connector, obj)
    message = str(info.value)
    assert "check the credentials of Airflow connection" in message and f"headroom_{name}" in message
    assert secret not in message and secret not in caplog.text and secret not in repr(bad)
    assert connector.client.breaker.status().state == "closed"  # bad credentials are not an outage


# -- pushes -----------------------------------------------------------------------------------------


def _capacity(store, run_date, n):
    store.upsert(
        "capacity",
        pd.DataFrame(
            [
                {
                    "run_date": run_date,
                    "service": f"svc-{i:04d}",
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
                    "cost_now_month": float(i),
                    "cost_forecast_month": 1.5 * i,
                    "status": "ok",
                    "reason": "",
                    "mase": 0.8,
                    "coverage": 0.8,
                    "hours_over_max": 0,
                    "cost_recommended_month": 1.0,
                }
                for i in range(n)
            ]
        ),
    )


def test_hubspot_batch_upsert_retries_refused_records_then_reports_the_rest(hubspot_api, store, tmp_path):
    hubspot_api.reset()
    hubspot_api.data.pop("headroom_capacity", None)
    _capacity(store, "2026-11-01", 250)
    hubspot_api.reject_once.add("svc-0007/cpu_utilization")
    hubspot_api.reject.add("svc-0042/cpu_utilization")
    connector = _connector("hubspot", hubspot_api, tmp_path)
    with pytest.raises(PartialFailureError) as info:
        push(store, connector, "headroom_capacity")
    assert info.value.failures == {"svc-0042/cpu_utilization": "VALIDATION_ERROR: Property values were not valid"}
    report = info.value.sync_report
    assert (report.read, report.written, report.failed) == (250, 249, 1)
    assert hubspot_api.writes[:3] == [100, 100, 50] and max(hubspot_api.writes) <= 100
    assert read_watermark(store, watermark_source("hubspot", "headroom_capacity")) is None  # kept for the next run
    delivered = {r["properties"]["headroom_key"] for r in hubspot_api.data["headroom_capacity"]}
    assert len(delivered) == 249 and "svc-0007/cpu_utilization" in delivered

    hubspot_api.reject.clear()
    again = push(store, _connector("hubspot", hubspot_api, tmp_path), "headroom_capacity")
    assert (again.read, again.written, again.failed) == (250, 250, 0)
    assert len(hubspot_api.data["headroom_capacity"]) == 250  # upserted by external id: no duplicates
    assert read_watermark(store, watermark_source("hubspot", "headroom_capacity")) == pd.Timestamp("2026-11-01", tz="UTC")
    assert push(store, _connector("hubspot", hubspot_api, tmp_path), "headroom_capacity").read == 0


def test_salesforce_bulk_job_flow(salesforce_api, store, tmp_path):
    salesforce_api.reset()
    salesforce_api.data.pop("Headroom_Capacity__c", None)
    _capacity(store, "2026-11-01", 120)
    salesforce_api.reject_once.add("svc-0003/cpu_utilization")
    connector = _connector("salesforce", salesforce_api, tmp_path, batch_size=50, options={"bulk_poll_s": 0.01})
    report = push(store, connector, "Headroom_Capacity__c")
    assert (report.read, report.written, report.failed) == (120, 120, 0)
    assert salesforce_api.writes == [50, 50, 20, 1]  # three jobs, then one job retrying the refused row
    assert len(salesforce_api.jobs) == 4 and {j["state"] for j in salesforce_api.jobs.values()} == {"JobComplete"}
    row = next(r for r in salesforce_api.data["Headroom_Capacity__c"] if r["Headroom_Key__c"] == "svc-0010/cpu_utilization")
    assert row["Cost_Forecast_Month__c"] == "15.0" and row["Service__c"] == "svc-0010"
    assert fast("salesforce").batch_size == 10000


def test_dynamics_batches_of_100_five_at_a_time(dynamics_api, store, tmp_path):
    dynamics_api.reset()
    dynamics_api.write_delay_s = 0.05
    _capacity(store, "2026-11-01", 1000)
    dynamics_api.reject.add("svc-0500/cpu_utilization")
    connector = _connector("dynamics_365", dynamics_api, tmp_path)
    assert (connector.settings.batch_size, connector.settings.concurrency) == (100, 5)
    with pytest.raises(
        PartialFailureError,
        match=r"1 of 1000 records were refused after 2 retry rounds, e.g. \('svc-0500/cpu_utilization', "
        r"'HTTP 400 0x80040265: Validation failed",
    ):
        push(store, connector, "msdyn_headroomcapacities")
    dynamics_api.write_delay_s = 0.0
    assert dynamics_api.writes[:10] == [100] * 10 and dynamics_api.writes[10:] == [1, 1]
    assert 2 <= dynamics_api.max_inflight <= 5
    assert len(dynamics_api.data["msdyn_headroomcapacities"]) == 999


def test_sap_push_uses_batches_of_1000(sap_api, store, tmp_path):
    sap_api.reset()
    _capacity(store, "2026-11-01", 1500)
    report = push(store, _connector("sap_s4hana", sap_api, tmp_path), "A_CapacityFigure")
    assert report.written == 1500 and sorted(sap_api.writes) == [500, 1000]
    assert {r["_key"] for r in sap_api.data["A_CapacityFigure"]} == {f"svc-{i:04d}/cpu_utilization" for i in range(1500)}
