"""alerts.yaml: the shipped file loads; every mistake is named by its key at load time."""

from __future__ import annotations

import copy

import pytest

from include.headroom.alerts import parse_alert_settings
from include.headroom.alerts.settings import Kind, Severity
from include.headroom.exceptions import ConfigError
from datetime import UTC

BASE = {
    "channels": {"log": {"type": "log"}, "pager": {"type": "pagerduty", "conn_id": "pd_payments"}},
    "routes": [{"match": {"severity": "page", "owner": "payments"}, "channels": ["pager", "log"], "quiet_hours": False},
               {"match": {}, "channels": ["log"]}],
    "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin", "severities": ["ticket", "info"]},
    "rate_limit": {"max_notifications": 3, "window_s": 3600},
    "delivery": {"attempts": 3, "backoff_s": 1, "max_backoff_s": 30},
    "past_interval_s": 4200,
    "airflow_base_url": "http://127.0.0.1:8080/",
    "kinds": {"predicted_bottleneck": {"min_probability": 0.7}, "saturation": {"within_days": 7, "page_within_days": 2},
              "error_rate_alarm": {"severity": "page"}},
}
OWNERS, TIERS = {"payments", "commerce"}, {"critical", "standard"}


def parse(raw, exists=None):
    return parse_alert_settings(raw, OWNERS, TIERS, connection_exists=exists)


def test_the_shipped_file_loads_with_the_log_channel_only(config):
    from include.headroom.alerts import load_alert_settings

    settings = load_alert_settings()
    assert {c.type for c in settings.channels.values()} == {"log"}
    assert settings.kind(Kind.PREDICTED_BOTTLENECK).min_probability == 0.7
    assert settings.route({"severity": "page", "tier": "critical", "owner": "payments", "kind": "slo_burn"}).channels == ("log",)


def test_routes_by_severity_and_owner_first_match_wins():
    s = parse(BASE)
    assert s.route({"severity": "page", "owner": "payments", "tier": "critical", "kind": "slo_burn"}).channels == ("pager", "log")
    assert s.route({"severity": "page", "owner": "commerce", "tier": "critical", "kind": "slo_burn"}).channels == ("log",)
    assert s.airflow_base_url == "http://127.0.0.1:8080"
    assert s.kind(Kind.ERROR_RATE_ALARM).severity is Severity.PAGE


def test_quiet_hours_in_the_configured_time_zone_span_midnight():
    from datetime import datetime

    q = parse(BASE).quiet_hours
    assert q.holds(Severity.TICKET, datetime(2026, 12, 5, 21, 30, tzinfo=UTC))  # 22:30 in Berlin
    assert q.holds(Severity.INFO, datetime(2026, 12, 5, 5, 0, tzinfo=UTC))  # 06:00 in Berlin
    assert not q.holds(Severity.TICKET, datetime(2026, 12, 5, 6, 30, tzinfo=UTC))  # 07:30 in Berlin
    assert not q.holds(Severity.PAGE, datetime(2026, 12, 5, 23, 0, tzinfo=UTC))


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["routes"][0].update(channels=["pager", "slack"]), r"routes\[0\]\.channels: unknown channels \['slack'\]"),
    (lambda r: r["channels"].update(mail={"type": "email", "conn_id": "smtp"}), r"channels\.mail: email channels need \['to'\]"),
    (lambda r: r["channels"].update(x={"type": "teams"}), r"channels\.x\.type='teams' is not a channel type"),
    (lambda r: r["channels"]["pager"].update(routing_key="abc"), r"channels\.pager: unknown keys \['routing_key'\]"),
    (lambda r: r["routes"][0]["match"].update(owner="nobody"), r"routes\[0\]\.match\.owner: unknown owner \['nobody'\]"),
    (lambda r: r["routes"][0]["match"].update(severity="urgent"), r"routes\[0\]\.match\.severity: unknown severity \['urgent'\]"),
    (lambda r: r["routes"][0]["match"].update(team="x"), r"routes\[0\]\.match: unknown keys \['team'\]"),
    (lambda r: r.update(routes=[{"match": {"severity": "page"}, "channels": ["log"]}]), r"routes: no route takes severity 'ticket'"),
    (lambda r: r["quiet_hours"].update(severities=["page"]), r"quiet_hours\.severities: \['page'\] cannot wait"),
    (lambda r: r["quiet_hours"].update(start="25:99"), r"quiet_hours\.start='25:99' must be a time of day"),
    (lambda r: r["quiet_hours"].update(timezone="Mars/Olympus"), r"quiet_hours\.timezone='Mars/Olympus'"),
    (lambda r: r["rate_limit"].update(max_notifications=0), r"rate_limit\.max_notifications=0 must be a number >= 1"),
    (lambda r: r["kinds"].update(flood={}), r"kinds\.flood: unknown alert kind"),
    (lambda r: r["kinds"]["saturation"].pop("within_days"), r"kinds\.saturation\.within_days is missing"),
    (lambda r: r.update(pager_duty={}), r"top level: unknown keys \['pager_duty'\]"),
])
def test_mistakes_are_named_by_their_key(change, message):
    raw = copy.deepcopy(BASE)
    change(raw)
    with pytest.raises(ConfigError, match=message):
        parse(raw)


def test_a_missing_connection_is_named_at_load_time():
    with pytest.raises(ConfigError, match=r"alerts\.yaml channels\.pager\.conn_id: Airflow connection 'pd_payments' does not exist"):
        parse(BASE, exists=lambda conn_id: conn_id != "pd_payments")
    assert parse(BASE, exists=lambda conn_id: True).channels["pager"].conn_id == "pd_payments"
