"""Alert channels through the providers made for them: Slack (webhook and Web API), SMTP, PagerDuty Events API v2, SNS.

Each channel holds only its ``alerts.yaml`` entry (a connection id, never a secret) and builds its provider hook
when it sends, so importing this module imports no provider.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.headroom.alerts.lifecycle import Notice
    from include.headroom.alerts.settings import Channel

log = logging.getLogger("headroom.alerts")
SEVERITY_TO_PAGERDUTY = {"page": "critical", "ticket": "warning", "info": "info"}


class AlertChannel:
    """Tells one notice; returns a reference to store (a Slack ts, a PagerDuty dedup key) or None.

    Returns the string ``"skipped"`` when the channel does not tell this action (email on an update).
    """

    def __init__(self, channel: Channel, retries_429: int = 2) -> None:
        self.channel = channel
        self.retries_429 = retries_429

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.channel.name!r}, conn_id={self.channel.conn_id!r})"

    def send(self, notice: Notice) -> Any:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """The connection's secret parts, to be redacted from any error text."""
        if not self.channel.conn_id:
            return []
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self.channel.conn_id)
        parts = [conn.password or "", conn.get_uri()]
        if conn.host and self.channel.type == "slack_webhook":
            parts.append(conn.host)
        return [p for p in parts if p and len(p) >= 4]


class LogChannel(AlertChannel):
    """The task log and ``<data>/outbox/alerts.jsonl``: the shipped default, so the demo needs no account."""

    def send(self, notice: Notice) -> Any:
        from include.headroom.config import data_dir

        log.warning("ALERT %s", notice.text.replace("\n", " | "))
        outbox = data_dir() / "outbox" / "alerts.jsonl"
        outbox.parent.mkdir(parents=True, exist_ok=True)
        with outbox.open("a") as fh:
            fh.write(json.dumps({"incident_key": notice.incident_key, "action": notice.action.value, "severity": notice.severity.value,
                                 "title": notice.title, "summary": notice.summary, "link": notice.link}) + "\n")
        return "logged"


def _slack_retry_handlers(retries: int) -> list[Any]:
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    return [RateLimitErrorRetryHandler(max_retry_count=retries)]  # waits what Retry-After says


class SlackWebhookChannel(AlertChannel):
    """An incoming webhook. Webhooks answer no message id, so an update or resolve is a new message naming the incident."""

    def send(self, notice: Notice) -> Any:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        hook = SlackWebhookHook(slack_webhook_conn_id=self.channel.conn_id, retry_handlers=_slack_retry_handlers(self.retries_429))
        hook.send(text=notice.text, blocks=_blocks(notice))
        return None


class SlackApiChannel(AlertChannel):
    """The Web API: ``chat.postMessage`` opens, ``chat.update`` edits that message in place (stored ts) and a thread
    reply under it tells the change, so people following the thread are notified."""

    def send(self, notice: Notice) -> Any:
        from airflow.providers.slack.hooks.slack import SlackHook

        from include.headroom.alerts.lifecycle import Action

        client = SlackHook(slack_conn_id=self.channel.conn_id, retry_handlers=_slack_retry_handlers(self.retries_429)).client
        ref = (notice.refs.get(self.channel.name) or {}).get("ref")
        if notice.action is Action.OPEN or not ref:
            answer = client.chat_postMessage(channel=self.channel.params["channel"], text=notice.text, blocks=_blocks(notice))
            return {"channel": answer["channel"], "ts": answer["ts"]}
        client.chat_update(channel=ref["channel"], ts=ref["ts"], text=notice.text, blocks=_blocks(notice))
        client.chat_postMessage(channel=ref["channel"], thread_ts=ref["ts"], text=notice.title)
        return ref


class EmailChannel(AlertChannel):
    """SMTP through the SMTP provider: one email when an incident opens and one when it resolves, none on updates."""

    def send(self, notice: Notice) -> Any:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        from include.headroom.alerts.lifecycle import Action

        if notice.action is Action.UPDATE:
            return "skipped"
        from html import escape

        body = "<br>".join(escape(line) for line in notice.text.splitlines())
        with SmtpHook(smtp_conn_id=self.channel.conn_id) as hook:
            hook.send_email_smtp(to=list(self.channel.params["to"]), subject=notice.title, html_content=body,
                                 from_email=self.channel.params.get("from"),
                                 custom_headers={"X-Headroom-Incident": notice.incident_key})
        return None


class PagerDutyChannel(AlertChannel):
    """Events API v2 with the incident key as ``dedup_key``: trigger on open and escalation, acknowledge when it
    drops below a page (nobody needs waking), resolve when it clears."""

    def send(self, notice: Notice) -> Any:
        from headroom_provider.hooks.pagerduty_events import HeadroomPagerdutyEventsHook

        from include.headroom.alerts.lifecycle import Action
        from include.headroom.alerts.settings import Severity

        hook = HeadroomPagerdutyEventsHook(pagerduty_events_conn_id=self.channel.conn_id, retries_429=self.retries_429)
        if notice.action is Action.RESOLVE:
            action = "resolve"
        elif notice.action is Action.UPDATE and notice.severity.rank < (notice.previous_severity or Severity.PAGE).rank:
            action = "acknowledge"
        else:
            action = "trigger"
        links = [{"href": notice.link, "text": "Open in Airflow"}] if notice.link else None
        return hook.send_event(summary=f"{notice.title}: {notice.summary}"[:1024], severity=SEVERITY_TO_PAGERDUTY[notice.severity.value],
                               source=notice.service, action=action, dedup_key=notice.incident_key, component=notice.subject,
                               group=notice.owner or None, class_type=notice.kind, links=links,
                               custom_details={"tier": notice.tier, "owner": notice.owner, "summary": notice.summary})


class SnsChannel(AlertChannel):
    """An SNS topic through the Amazon provider: every action is a message, its attributes name incident and action."""

    def send(self, notice: Notice) -> Any:
        from airflow.providers.amazon.aws.hooks.sns import SnsHook

        answer = SnsHook(aws_conn_id=self.channel.conn_id).publish_to_target(
            target_arn=self.channel.params["topic_arn"], message=notice.text, subject=notice.title[:100],
            message_attributes={"incident_key": notice.incident_key, "action": notice.action.value, "severity": notice.severity.value},
        )
        return answer.get("MessageId") if isinstance(answer, dict) else None


def _blocks(notice: Notice) -> list[dict[str, Any]]:
    text = f"*{notice.title}*\n{notice.summary}" + (f"\n<{notice.link}|Open in Airflow>" if notice.link else "")
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"incident `{notice.incident_key}`"}]}]


CHANNEL_TYPES: dict[str, type[AlertChannel]] = {
    "log": LogChannel, "slack_webhook": SlackWebhookChannel, "slack_api": SlackApiChannel, "email": EmailChannel,
    "pagerduty": PagerDutyChannel, "sns": SnsChannel,
}
