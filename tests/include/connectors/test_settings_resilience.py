"""connectors.yaml validation, SPEC figures, backoff, Retry-After, the daily budget and the state file."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, UTC
from email.utils import format_datetime

import pytest

from include.headroom.connectors.resilience import DailyBudget
from include.headroom.exceptions import QuotaExhaustedError
from include.headroom.resilience import RetryPolicy, StateFile, retry_after_s
from include.headroom.connectors.settings import connector_pools, load_connectors, parse_connector
from include.headroom.exceptions import ConfigError


def test_spec_figures_come_from_connectors_yaml():
    c = load_connectors()
    assert c["hubspot"].quota.calls == 100 and c["hubspot"].quota.per_s == 10  # starter plan: 100 calls per 10 s
    assert c["salesforce"].quota.daily_calls == 100_000 and c["salesforce"].batch_size == 10_000
    assert (c["sap_s4hana"].batch_size, c["sap_s4hana"].concurrency) == (1000, 10)
    assert (c["dynamics_365"].batch_size, c["dynamics_365"].concurrency) == (100, 5)
    assert c["salesforce"].retry.max_attempts == 5 and c["salesforce"].breaker.failure_threshold == 5
    assert {c.kind for c in c.values()} >= {"salesforce", "hubspot", "servicenow", "odata", "s3", "sftp"}
    assert connector_pools(c)["connector_aws_s3"]["slots"] == 2


def test_hubspot_plan_picks_the_quota():
    raw = {"kind": "hubspot", "pool": {"name": "p"}, "plan": "enterprise", "calls_per_10s": {"starter": 100, "enterprise": 200},
           "page_size": 100, "batch_size": 100, "objects": {}}
    assert parse_connector("hubspot", raw, {}, {}).quota.calls == 200
    with pytest.raises(ConfigError, match=r"connectors.hubspot.plan='gold' is not one of \['enterprise', 'starter'\]"):
        parse_connector("hubspot", {**raw, "plan": "gold"}, {}, {})


@pytest.mark.parametrize("change, message", [
    ({"kind": "soap"}, r"connectors.x.kind='soap' is not a connector kind"),
    ({"objects": {"o": {"direction": "sideways"}}}, r"connectors.x.objects.o.direction='sideways' must be 'pull' or 'push'"),
    ({"objects": {"o": {"direction": "push"}}}, r"connectors.x.objects.o: a push object needs a source table"),
    ({"quota": {"calls": 0, "per_s": 1, "burst": 1}}, r"connectors.x.quota=.*calls and per_s must be > 0"),
    ({"pool": {}}, r"connectors.x.pool needs a name"),
])
def test_bad_settings_name_the_key(change, message):
    raw = {"kind": "servicenow", "pool": {"name": "p"}, "quota": {"calls": 1, "per_s": 1, "burst": 1}, "page_size": 10, "batch_size": 1,
           "objects": {}}
    with pytest.raises(ConfigError, match=message):
        parse_connector("x", {**raw, **change}, {}, {})


def test_backoff_grows_caps_and_jitters():
    policy = RetryPolicy(attempts=9, base_delay_s=0.5, max_delay_s=30)
    assert [policy.delay(a) for a in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    rng = random.Random(7)
    jittered = RetryPolicy(attempts=9, base_delay_s=0.5, max_delay_s=30, jitter=True)
    draws = [jittered.delay(3, rng=rng) for _ in range(200)]
    assert min(draws) >= 0 and max(draws) <= 4 and len(set(draws)) == 200


def test_retry_after_seconds_or_http_date():
    assert retry_after_s("7") == 7.0 and retry_after_s(None) is None and retry_after_s("soon") is None
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert 28 <= retry_after_s(format_datetime(when, usegmt=True)) <= 30


def test_daily_budget_stops_at_the_cap_and_persists(tmp_path):
    state = StateFile(tmp_path / "sf.json")
    budget = DailyBudget("salesforce", state, limit=3)
    budget.spend()
    budget.spend(2)
    with pytest.raises(QuotaExhaustedError, match=r"connector 'salesforce': daily budget of 3 calls is spent \(3 used on "):
        DailyBudget("salesforce", StateFile(tmp_path / "sf.json"), limit=3).spend()
    assert state.read()["daily"]["calls"] == 3


def test_cli_prints_pools_and_status(capsys, monkeypatch, tmp_path):
    import json

    from include.headroom.__main__ import main

    assert main(["connectors", "pools"]) == 0
    pools = json.loads(capsys.readouterr().out)
    assert pools["connector_hubspot"] == {"slots": 1, "description": "connector_sync: hubspot syncs (holds its quota across runs)",
                                          "include_deferred": False}
    monkeypatch.setenv("HEADROOM_DATA_DIR", str(tmp_path))
    with StateFile(tmp_path / "connectors" / "state" / "servicenow.json").update() as doc:
        doc["breaker"] = {"state": "open", "failures": 5, "trips": 1, "opened_at": 0}
    assert main(["connectors", "status"]) == 0
    rows = {(r["connector"], r["object"]): r for r in json.loads(capsys.readouterr().out)}
    assert rows[("servicenow", "cmdb_ci_service")]["breaker"] == "open" and rows[("servicenow", "cmdb_ci_service")]["watermark"] is None
    assert rows[("capacity_export", "capacity")]["enabled"] is True
