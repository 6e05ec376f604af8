"""Alert channels end to end through the real provider hooks and clients: Slack (webhook and Web API) and PagerDuty
stand-ins speaking their real paths and errors, aiosmtpd, SNS on moto, Debian's Pushgateway."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, UTC

import pandas as pd
import pytest

from include.headroom.alerts import Condition, Kind, Severity, parse_alert_settings, run_alerts
from tests.alert_servers import PagerDutyStandIn, PushgatewayServer, SlackStandIn, SmtpServer
from tests.servers import moto_server, serve  # noqa: F401, F811 (fixture)

WEBHOOK_TOKEN = "XwebhookSECRETtoken0123456789"
BOT_TOKEN = "xoxb-bot-SECRET-token-0123456789"
ROUTING_KEY = "R0UT1NGKEYSECRET0123456789abcdef"
SMTP_PASSWORD = "smtp-SECRET-password-42"
SECRETS = (WEBHOOK_TOKEN, BOT_TOKEN, ROUTING_KEY, SMTP_PASSWORD)
T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def slack():
    yield from serve(SlackStandIn(WEBHOOK_TOKEN, BOT_TOKEN))


@pytest.fixture(scope="module")
def pagerduty():
    yield from serve(PagerDutyStandIn(ROUTING_KEY))


@pytest.fixture(scope="module")
def smtp():
    yield from serve(SmtpServer("alerts@headroom.test", SMTP_PASSWORD))


@pytest.fixture(scope="module")
def sns_topic(moto_server):  # noqa: F811 (the fixture imported above)
    import boto3

    kw = {"endpoint_url": moto_server.url, "region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    sns, sqs = boto3.client("sns", **kw), boto3.client("sqs", **kw)
    topic = sns.create_topic(Name="headroom-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="headroom-alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "false"})

    def received() -> list[dict]:
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    return {"arn": topic, "received": received, "url": moto_server.url}


@pytest.fixture
def connections(monkeypatch, slack, pagerduty, smtp, sns_topic):
    conns = {
        "ALERTS_SLACK_WEBHOOK": {"conn_type": "slackwebhook", "host": f"{slack.url}{SlackStandIn.WEBHOOK_PATH}", "password": WEBHOOK_TOKEN},
        "ALERTS_SLACK_API": {"conn_type": "slack", "password": BOT_TOKEN, "extra": {"base_url": f"{slack.url}/api/"}},
        "ALERTS_PAGERDUTY": {"conn_type": "pagerduty_events", "host": pagerduty.url, "password": ROUTING_KEY,
                             "extra": {"ca_bundle": pagerduty.ca_bundle}},
        "ALERTS_SMTP": {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port, "login": "alerts@headroom.test",
                        "password": SMTP_PASSWORD, "extra": {"disable_ssl": True, "disable_tls": True, "retry_limit": 0, "timeout": 5}},
        "ALERTS_AWS": {"conn_type": "aws", "login": "testing", "password": "testing",
                       "extra": {"region_name": "us-east-1", "endpoint_url": sns_topic["url"]}},
    }
    for name, conn in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    return conns


def settings_for(sns_arn: str, channels: list[str] | None = None, **overrides):
    raw = {
        "channels": {
            "log": {"type": "log"},
            "slack_hook": {"type": "slack_webhook", "conn_id": "alerts_slack_webhook"},
            "slack": {"type": "slack_api", "conn_id": "alerts_slack_api", "channel": "#capacity-alerts"},
            "pager": {"type": "pagerduty", "conn_id": "alerts_pagerduty"},
            "mail": {"type": "email", "conn_id": "alerts_smtp", "to": ["oncall@headroom.test"], "from": "alerts@headroom.test"},
            "sns": {"type": "sns", "conn_id": "alerts_aws", "topic_arn": sns_arn},
        },
        "routes": [{"match": {}, "channels": channels or ["slack_hook", "slack", "pager", "mail", "sns"]}],
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "UTC", "severities": ["info"]},
        "rate_limit": {"max_notifications": 10, "window_s": 3600},
        "delivery": {"attempts": 3, "backoff_s": 0.01, "max_backoff_s": 2},
        "past_interval_s": 4200,
        "airflow_base_url": "http://127.0.0.1:8080",
        "kinds": {"predicted_bottleneck": {"min_probability": 0.7}, "saturation": {"within_days": 7}},
        "metrics": {"pushgateway_conn_id": None, "job": "headroom"},
    }
    raw.update(overrides)
    from headroom_provider.notifications.dispatch import connection_exists

    return parse_alert_settings(raw, owners={"payments", "commerce"}, tiers={"critical", "standard"}, connection_exists=connection_exists)


def burn(severity: Severity) -> Condition:
    return Condition(service="payments-gateway", kind=Kind.SLO_BURN, subject="error_budget", severity=severity, tier="critical",
                     owner="payments", summary=f"error budget burning ({severity.value})")


def evaluate(store, settings, conditions, at):
    from headroom_provider.notifications.dispatch import Dispatcher

    return run_alerts(store, settings, conditions, at, at, Dispatcher(settings), evaluated_kinds=[Kind.SLO_BURN])


def test_one_page_per_incident_updated_in_place_and_resolved_on_every_channel(store, connections, slack, pagerduty, smtp, sns_topic):
    settings = settings_for(sns_topic["arn"])
    sns_topic["received"]()
    first = evaluate(store, settings, [burn(Severity.TICKET)], T0)
    assert [n.action.value for n in first.notices] == ["open"]
    key = first.notices[0].incident_key
    assert key == "headroom/payments-gateway/slo_burn/error_budget@2026-12-05T12:00Z"
    assert {r.channel: r.state for r in first.deliveries[key]} == {c: "sent" for c in ("slack_hook", "slack", "pager", "mail", "sns")}

    # A retried task and a re-run of the same evaluation send nothing more.
    for _ in range(2):
        again = evaluate(store, settings, [burn(Severity.TICKET)], T0 + timedelta(minutes=5))
        assert again.notices == []
    assert pagerduty.alerts == {key: "triggered"} and len(pagerduty.events) == 1
    assert len(slack.top_level()) == 1 and len(slack.webhook_messages) == 1 and len(smtp.messages) == 1

    # Escalation: the same PagerDuty alert re-triggered as critical, the Slack message edited in place plus a thread reply.
    up = evaluate(store, settings, [burn(Severity.PAGE)], T0 + timedelta(hours=1))
    assert [n.action.value for n in up.notices] == ["update"]
    assert [e["event_action"] for e in pagerduty.events] == ["trigger", "trigger"]
    assert pagerduty.events[-1]["dedup_key"] == key and pagerduty.events[-1]["payload"]["severity"] == "critical"
    (message,) = slack.top_level()
    assert message["updates"] == 1 and "UPDATED (ticket -> page)" in message["text"]
    replies = [m for m in slack.messages.values() if m["thread_ts"]]
    assert len(replies) == 1 and replies[0]["thread_ts"] in slack.messages
    assert len(smtp.messages) == 1, "email is sent once per open and once per resolve, never on an update"
    assert [r.state for r in up.deliveries[key] if r.channel == "mail"] == ["skipped"]

    # The condition clears: resolved everywhere, once.
    done = evaluate(store, settings, [], T0 + timedelta(hours=2))
    assert [n.action.value for n in done.notices] == ["resolve"]
    assert pagerduty.alerts[key] == "resolved" and pagerduty.events[-1]["event_action"] == "resolve"
    assert "RESOLVED" in slack.top_level()[0]["text"]
    assert [m["Subject"].split(":")[0] for m in smtp.messages] == ["[TICKET] OPEN", "[PAGE] RESOLVED"]
    assert smtp.messages[0]["X-Headroom-Incident"] == key
    assert len(slack.webhook_messages) == 3
    sns = sns_topic["received"]()
    assert [m["MessageAttributes"]["action"]["Value"] for m in sns] == ["open", "update", "resolve"]
    assert evaluate(store, settings, [], T0 + timedelta(hours=3)).notices == []
    row = store.read("alerts").iloc[0]
    assert (row.status, row.notified_action, row.severity) == ("resolved", "resolve", "page")
    assert json.loads(row.delivery)["slack"]["ref"]["ts"] == message_ts(slack)


def message_ts(slack) -> str:
    return next(ts for ts, m in slack.messages.items() if not m["thread_ts"])


def test_pagerduty_is_acknowledged_when_a_page_drops_to_a_ticket(store, connections, pagerduty, sns_topic):
    settings = settings_for(sns_topic["arn"], channels=["pager"])
    start = len(pagerduty.events)
    opened = evaluate(store, settings, [burn(Severity.PAGE)], T0)
    key = opened.notices[0].incident_key
    evaluate(store, settings, [burn(Severity.TICKET)], T0 + timedelta(minutes=10))
    assert pagerduty.alerts[key] == "acknowledged"
    assert [e["event_action"] for e in pagerduty.events[start:]] == ["trigger", "acknowledge"]


def test_quiet_hours_hold_info_until_they_end_but_never_a_page(store, connections, slack, sns_topic):
    settings = settings_for(sns_topic["arn"], channels=["slack_hook"])
    before = len(slack.webhook_messages)
    night = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)
    info = Condition(service="catalog-api", kind=Kind.SATURATION, subject="requests", severity=Severity.INFO, tier="standard",
                     owner="commerce", summary="saturates in 6 days")
    held = run_alerts(store, settings, [info, burn(Severity.PAGE)], night, night, _dispatcher(settings), [Kind.SATURATION, Kind.SLO_BURN])
    assert [n.kind for n in held.notices] == ["slo_burn"]
    assert list(held.held.values()) == ["quiet hours until 07:00 UTC"]
    assert len(slack.webhook_messages) == before + 1
    morning = datetime(2026, 12, 6, 7, 5, tzinfo=UTC)
    kinds = [Kind.SATURATION, Kind.SLO_BURN]
    sent = run_alerts(store, settings, [info, burn(Severity.PAGE)], morning, morning, _dispatcher(settings), kinds)
    assert [(n.kind, n.action.value) for n in sent.notices] == [("saturation", "open")]
    assert "catalog-api" in slack.webhook_messages[-1]["text"]


def _dispatcher(settings):
    from headroom_provider.notifications.dispatch import Dispatcher

    return Dispatcher(settings)


def test_rate_limit_holds_a_flapping_incident(store, connections, slack, sns_topic):
    settings = settings_for(sns_topic["arn"], channels=["slack_hook"], rate_limit={"max_notifications": 2, "window_s": 3600})
    severities = [Severity.TICKET, Severity.PAGE, Severity.TICKET, Severity.TICKET]
    told = []
    for i, severity in enumerate(severities):
        result = evaluate(store, settings, [burn(severity)], T0 + timedelta(minutes=10 * i))
        told.append([n.action.value for n in result.notices])
        if i >= 2:
            assert list(result.held.values()) == ["rate limit: 2 notices within 3600 s"]
    assert told == [["open"], ["update"], [], []]
    # Once the window has passed the held change goes out; a resolve is never held.
    later = evaluate(store, settings, [burn(Severity.TICKET)], T0 + timedelta(minutes=71))
    assert [(n.action.value, n.previous_severity, n.severity) for n in later.notices] == [("update", Severity.PAGE, Severity.TICKET)]
    evaluate(store, settings, [burn(Severity.PAGE)], T0 + timedelta(minutes=75))  # 2 notices again within the hour
    assert [n.action.value for n in evaluate(store, settings, [], T0 + timedelta(minutes=80)).notices] == ["resolve"]


def test_a_channel_down_is_retried_then_recorded_as_failed_and_sent_when_back(store, connections, slack, pagerduty, sns_topic, caplog):
    settings = settings_for(sns_topic["arn"], channels=["pager", "slack_hook"])
    pagerduty.down = True
    try:
        with caplog.at_level(logging.WARNING, logger="headroom.alerts"):
            result = evaluate(store, settings, [burn(Severity.PAGE)], T0)
    finally:
        pagerduty.down = False
    states = {r.channel: (r.state, r.attempts) for r in result.deliveries[result.notices[0].incident_key]}
    assert states == {"pager": ("failed", 3), "slack_hook": ("sent", 1)}
    assert "HTTP 503" in json.loads(store.read("alerts").iloc[0].delivery)["pager"]["error"]
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 2

    # Every channel down: the notice stays due and goes out on the next evaluation.
    only_pd = settings_for(sns_topic["arn"], channels=["pager"])
    cond = Condition(service="orders-api", kind=Kind.SLO_BURN, subject="error_budget", severity=Severity.PAGE, summary="burning")
    pagerduty.down = True
    try:
        failed = evaluate(store, only_pd, [cond], T0)
    finally:
        pagerduty.down = False
    key = next(n.incident_key for n in failed.notices if n.service == "orders-api")
    assert failed.held[key] == "delivery failed"
    assert store.read("alerts", incident_key=key).iloc[0].held.startswith("delivery failed: pager: ServerHttpError (HTTP 503)")
    retried = evaluate(store, only_pd, [cond], T0 + timedelta(minutes=5))
    assert [n.action.value for n in retried.notices if n.incident_key == key] == ["open"] and pagerduty.alerts[key] == "triggered"


@pytest.mark.parametrize("channel", ["slack_hook", "slack", "pager"])
def test_429_with_retry_after_is_waited_out_by_the_clients(store, connections, slack, pagerduty, sns_topic, channel):
    import time

    server = pagerduty if channel == "pager" else slack
    settings = settings_for(sns_topic["arn"], channels=[channel])
    before = len(server.requests)
    server.fail_next = [429]
    started = time.monotonic()
    result = evaluate(store, settings, [burn(Severity.PAGE)], T0)
    elapsed = time.monotonic() - started
    (delivery,) = next(iter(result.deliveries.values()))
    assert (delivery.state, delivery.attempts) == ("sent", 1), "the client itself retried the 429"
    assert len(server.requests) - before == 2 and server.fail_next == []
    if channel != "pager":  # slack_sdk's RateLimitErrorRetryHandler waits what Retry-After says (1 s)
        assert elapsed >= 1.0


def test_a_bad_payload_is_refused_once_and_recorded(store, connections, pagerduty, sns_topic, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_PAGERDUTY", json.dumps({"conn_type": "pagerduty_events", "host": pagerduty.url,
                                                                     "password": "WRONGKEY-" + ROUTING_KEY[:8],
                                                                     "extra": {"ca_bundle": pagerduty.ca_bundle}}))
    settings = settings_for(sns_topic["arn"], channels=["pager"])
    before = len(pagerduty.requests)
    result = evaluate(store, settings, [burn(Severity.PAGE)], T0)
    (delivery,) = next(iter(result.deliveries.values()))
    assert (delivery.state, delivery.attempts) == ("failed", 1) and len(pagerduty.requests) == before + 1
    assert "HTTP 400" in delivery.error and "routing_key" in delivery.error
    assert "WRONGKEY" not in delivery.error


def test_secrets_never_in_a_log_an_error_or_a_repr(store, connections, slack, pagerduty, smtp, sns_topic, caplog, monkeypatch):
    from headroom_provider.hooks.pagerduty_events import HeadroomPagerdutyEventsHook
    from headroom_provider.notifications.dispatch import Dispatcher

    settings = settings_for(sns_topic["arn"], channels=["slack_hook", "slack", "pager", "mail"])
    dispatcher = Dispatcher(settings)
    texts = [repr(dispatcher), *map(repr, dispatcher.channels.values()), repr(settings),
             repr(HeadroomPagerdutyEventsHook(pagerduty_events_conn_id="alerts_pagerduty"))]
    # Every channel refuses: a wrong SMTP password, the webhook's 403, PagerDuty and Slack down.
    monkeypatch.setattr(smtp, "password", "another-password")
    monkeypatch.setattr(slack, "webhook_token", "another-token")
    pagerduty.down, slack.fail_next = True, [500] * 6
    try:
        with caplog.at_level(logging.DEBUG):
            result = evaluate(store, settings, [burn(Severity.PAGE)], T0)
    finally:
        pagerduty.down, slack.fail_next = False, []
    deliveries = next(iter(result.deliveries.values()))
    assert {r.channel: r.state for r in deliveries} == {c: "failed" for c in ("slack_hook", "slack", "pager", "mail")}
    assert smtp.auth_failures >= 1
    texts += [r.error for r in deliveries] + [caplog.text] + [json.dumps(store.read("alerts").astype(str).to_dict("records"))]
    texts += [str(result.summary())]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret[:6], text[:300])
    assert any("SMTPAuthenticationError" in r.error for r in deliveries), [r.error for r in deliveries]


def table_rows(name: str, records: list[dict]) -> pd.DataFrame:
    """Rows of a store table: the given values, every other column empty."""
    from include.headroom.metrics.schema import TABLES

    defaults = {"timestamp": pd.NaT, "string": "", "float64": float("nan"), "int64": 0, "bool": False}
    return pd.DataFrame([{c: r.get(c, defaults[k]) for c, k in TABLES[name].columns.items()} for r in records])


def test_metrics_pushed_to_the_pushgateway(store, monkeypatch, tmp_path):
    import shutil

    import yaml

    from headroom_provider.notifications.alerts import push_metrics
    from include.headroom.config import config_directory

    at = pd.Timestamp("2026-12-05T02:00:00Z")
    store.upsert("capacity", table_rows("capacity", [
        {"run_date": "2026-12-05", "service": "checkout-api", "metric": "requests", "saturation_at": at + pd.Timedelta(days=3),
         "replicas_needed_peak": 9},
        {"run_date": "2026-12-05", "service": "checkout-api", "metric": "cpu", "replicas_needed_peak": 7},
        {"run_date": "2026-12-04", "service": "checkout-api", "metric": "requests", "saturation_at": at, "replicas_needed_peak": 99},
    ]))
    store.upsert("slo_status", table_rows("slo_status", [
        {"window_end": at, "service": "checkout-api", "tier": "enterprise", "error_budget_remaining": 0.42, "burn_rate": 3.5},
        {"window_end": at - pd.Timedelta(hours=1), "service": "checkout-api", "tier": "enterprise", "error_budget_remaining": 0.9,
         "burn_rate": 1.0},
    ]))
    store.upsert("findings", table_rows("findings", [
        {"window_end": at, "service": "checkout-api", "kind": "predicted", "type": "cpu_bound", "start": at},
        {"window_end": at, "service": "checkout-api", "kind": "observed", "type": "database_bound", "start": at},
        {"window_end": at, "service": "checkout-api", "kind": "observed", "type": "cache_bound", "start": at},
    ]))
    store.upsert("alerts", table_rows("alerts", [
        {"incident_key": "a", "service": "checkout-api", "status": "open", "severity": "page"},
        {"incident_key": "b", "service": "checkout-api", "status": "resolved", "severity": "page"},
    ]))
    config_dir = tmp_path / "config"
    shutil.copytree(config_directory(), config_dir)
    raw = yaml.safe_load((config_dir / "alerts.yaml").read_text())
    raw["metrics"]["pushgateway_conn_id"] = "alerts_pushgateway"
    (config_dir / "alerts.yaml").write_text(yaml.safe_dump(raw))
    gateway = PushgatewayServer()
    for env, value in (("HEADROOM_CONFIG_DIR", str(config_dir)),
                       ("AIRFLOW_CONN_HEADROOM_STORE", json.dumps({"conn_type": "fs", "extra": {"path": str(store.root)}})),
                       ("AIRFLOW_CONN_ALERTS_PUSHGATEWAY", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": gateway.port}))):
        monkeypatch.setenv(env, value)
    for server in serve(gateway):
        pushed = push_metrics(at.to_pydatetime())
        assert pushed == {"samples": 8, "pushed_to": gateway.url}
        text = server.metrics()
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line.startswith("headroom_") and "push_time" not in line}
    job = 'instance="",job="headroom"'
    assert values[f'headroom_time_to_saturation_seconds{{{job},metric="requests",service="checkout-api"}}'] == 3 * 86400
    assert values[f'headroom_forecast_replica_floor{{{job},service="checkout-api"}}'] == 9
    assert values[f'headroom_error_budget_remaining_ratio{{{job},service="checkout-api",tier="enterprise"}}'] == 0.42
    assert values[f'headroom_burn_rate{{{job},service="checkout-api",tier="enterprise"}}'] == 3.5
    assert values[f'headroom_open_findings{{{job},kind="observed",service="checkout-api"}}'] == 2
    assert values[f'headroom_open_findings{{{job},kind="predicted",service="checkout-api"}}'] == 1
    assert values[f'headroom_open_alerts{{{job},service="checkout-api",severity="page"}}'] == 1
    assert values[f'headroom_last_evaluation_timestamp_seconds{{{job}}}'] == at.timestamp()
