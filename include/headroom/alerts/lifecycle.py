"""The incident lifecycle: conditions in, incidents opened once, updated on a severity change, resolved when clear.

An incident's key is stable: ``headroom/<service>/<kind>/<subject>@<episode>``, the episode being the as-of at
which the condition first held. What is due to be told (open, update, resolve) is derived from the stored state,
never from the run, so a retried or re-run evaluation finds nothing new to send.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from collections.abc import Iterable, Mapping, Sequence

from include.headroom.alerts.settings import AlertSettings, Kind, Severity

# Kinds raised by an event (a failed run, a missed deadline) rather than a standing condition: they are
# told once and closed, never resolved by an evaluation.
ONE_SHOT = frozenset({Kind.RUN_FAILED, Kind.DEADLINE_MISSED})


class Action(StrEnum):
    OPEN = "open"
    UPDATE = "update"
    RESOLVE = "resolve"


@dataclass(frozen=True)
class Condition:
    """Something that holds now and is worth an incident while it holds."""

    service: str
    kind: Kind
    subject: str
    severity: Severity
    summary: str
    tier: str = ""
    owner: str = ""
    link: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.service, self.kind.value, self.subject)


@dataclass(frozen=True)
class Incident:
    """One episode of a condition, as stored in the ``alerts`` table."""

    incident_key: str
    service: str
    kind: str
    subject: str
    tier: str
    owner: str
    episode: datetime
    status: str  # open | resolved
    severity: str
    summary: str
    link: str
    detail: str  # JSON
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    notified_action: str = ""  # the last action told: "", open, update, resolve, closed
    notified_severity: str = ""
    notified_at: datetime | None = None
    notify_log: str = "[]"  # JSON list of ISO times the incident was told (opens and updates), for the rate limit
    delivery: str = "{}"  # JSON: channel -> {state, ref, error, at}
    held: str = ""  # why a due notice was not sent (quiet hours, rate limit, delivery failed, no route)

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.service, self.kind, self.subject)

    def refs(self) -> dict[str, Any]:
        return json.loads(self.delivery or "{}")

    def row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Notice:
    """What a channel is asked to tell: one action on one incident."""

    incident_key: str
    action: Action
    severity: Severity
    previous_severity: Severity | None
    service: str
    kind: str
    subject: str
    tier: str
    owner: str
    summary: str
    link: str
    channels: tuple[str, ...]
    refs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        verb = {Action.OPEN: "OPEN", Action.UPDATE: "UPDATED", Action.RESOLVE: "RESOLVED"}[self.action]
        change = ""
        if self.action is Action.UPDATE and self.previous_severity:
            change = f" ({self.previous_severity.value} -> {self.severity.value})"
        return f"[{self.severity.value.upper()}] {verb}{change}: {self.service} {self.kind} {self.subject}".rstrip()

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.summary}" + (f"\n{self.link}" if self.link else "") + f"\nincident {self.incident_key}"


@dataclass(frozen=True)
class Plan:
    """The incidents to write and the notices to send (each notice's incident is in ``incidents``)."""

    incidents: dict[str, Incident]
    notices: list[Notice]
    held: dict[str, str]  # incident key -> why its due notice waits


def incident_key(service: str, kind: str, subject: str, episode: datetime) -> str:
    return f"headroom/{service}/{kind}/{subject}@{episode.strftime('%Y-%m-%dT%H:%MZ')}"


def incidents_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Incident]:
    """Stored ``alerts`` rows as incidents (missing times become None)."""
    names = Incident.__dataclass_fields__
    out = []
    for r in rows:
        values = {k: r.get(k) for k in names}
        for k in ("resolved_at", "notified_at"):
            v = values[k]
            values[k] = None if v is None or v != v else v  # NaT != NaT
        for k in ("notified_action", "notified_severity", "held", "link", "tier", "owner", "subject"):
            values[k] = values[k] or ""
        values["notify_log"] = values["notify_log"] or "[]"
        values["delivery"] = values["delivery"] or "{}"
        out.append(Incident(**values))
    return out


def due_action(inc: Incident) -> Action | None:
    """What is still to be told about ``inc``, from what was told last."""
    told = inc.notified_action
    if inc.status == "open":
        if not told:
            return Action.OPEN
        if told in ("open", "update") and inc.notified_severity != inc.severity:
            return Action.UPDATE
        return None
    if inc.status == "resolved" and told in ("open", "update"):
        return Action.RESOLVE
    return None


def _recent_notifications(incidents: Iterable[Incident], group: tuple[str, str], now: datetime, window_s: float) -> int:
    since = now - timedelta(seconds=window_s)
    count = 0
    for inc in incidents:
        if (inc.service, inc.kind) == group:
            count += sum(datetime.fromisoformat(t) >= since for t in json.loads(inc.notify_log or "[]"))
    return count


def plan(conditions: Sequence[Condition], stored: Sequence[Incident], settings: AlertSettings, as_of: datetime, now: datetime,
         evaluated_kinds: Iterable[Kind] | None = None) -> Plan:
    """Open, update and resolve incidents for ``conditions`` at ``as_of`` and pick the notices due at ``now``.

    :param conditions: what holds at ``as_of`` (several for one group keep the most severe).
    :param stored: the incidents in the store (any status).
    :param evaluated_kinds: the kinds this evaluation looked at; an open incident of one of them whose condition
        no longer holds is resolved. Default: the kinds of ``conditions`` only (events never resolve others).
    :param now: the wall-clock time, for quiet hours and the rate limit.
    """
    kinds = {Kind(k).value for k in (evaluated_kinds if evaluated_kinds is not None else {c.kind for c in conditions})}
    strongest: dict[tuple[str, str, str], Condition] = {}
    for c in conditions:
        if c.group not in strongest or c.severity.rank > strongest[c.group].severity.rank:
            strongest[c.group] = c
    by_key = {inc.incident_key: inc for inc in stored}
    open_by_group = {inc.group: inc for inc in stored if inc.status == "open"}
    changed: dict[str, Incident] = {}

    for group, c in strongest.items():
        inc = open_by_group.get(group)
        detail = json.dumps(dict(c.detail), sort_keys=True, default=str)
        if inc is None:
            key = incident_key(c.service, c.kind.value, c.subject, as_of)
            if key in by_key:  # the same episode was opened and closed at this as-of already (a re-run): keep it
                continue
            inc = Incident(incident_key=key, service=c.service, kind=c.kind.value, subject=c.subject, tier=c.tier, owner=c.owner,
                           episode=as_of, status="open", severity=c.severity.value, summary=c.summary, link=c.link, detail=detail,
                           opened_at=as_of, updated_at=as_of)
        elif (inc.severity, inc.summary, inc.detail, inc.link) != (c.severity.value, c.summary, detail, c.link):
            inc = replace(inc, severity=c.severity.value, summary=c.summary, detail=detail, link=c.link, updated_at=as_of)
        else:
            continue
        changed[inc.incident_key] = inc

    for group, inc in open_by_group.items():
        if inc.kind in kinds and group not in strongest and Kind(inc.kind) not in ONE_SHOT:
            changed[inc.incident_key] = replace(inc, status="resolved", resolved_at=as_of, updated_at=as_of)

    current = {**by_key, **changed}
    notices, held = [], {}
    for key, inc in sorted(current.items()):
        action = due_action(inc)
        if action is None:
            if inc.status == "resolved" and not inc.notified_action and inc.held != "resolved before it was told":
                changed[key] = replace(inc, held="resolved before it was told")  # nothing to resolve for anyone
            continue
        severity = Severity(inc.severity)
        route = settings.route({"severity": inc.severity, "tier": inc.tier, "owner": inc.owner, "kind": inc.kind})
        why = ""
        if route is None:
            why = "no route matches"
        elif route.quiet_hours and settings.quiet_hours.holds(severity, now):
            why = f"quiet hours until {settings.quiet_hours.end.strftime('%H:%M')} {settings.quiet_hours.timezone}"
        elif action is not Action.RESOLVE and _recent_notifications(
                current.values(), (inc.service, inc.kind), now, settings.rate_limit.window_s) >= settings.rate_limit.max_notifications:
            why = f"rate limit: {settings.rate_limit.max_notifications} notices within {settings.rate_limit.window_s:.0f} s"
        if why:
            held[key] = why
            if inc.held != why:
                changed[key] = replace(inc, held=why)
            continue
        previous = Severity(inc.notified_severity) if inc.notified_severity else None
        notices.append(Notice(
            incident_key=key, action=action, severity=severity, previous_severity=previous, service=inc.service, kind=inc.kind,
            subject=inc.subject, tier=inc.tier, owner=inc.owner, summary=inc.summary, link=inc.link, channels=route.channels,
            refs=inc.refs(),
        ))
        changed.setdefault(key, inc)
    return Plan(incidents=changed, notices=notices, held=held)


@dataclass(frozen=True)
class DeliveryResult:
    """One channel's answer to one notice: ``sent``, ``skipped`` (the channel does not tell this action) or ``failed``."""

    channel: str
    state: str
    ref: Any = None
    error: str = ""
    attempts: int = 1


def record_delivery(inc: Incident, notice: Notice, results: Sequence[DeliveryResult], now: datetime) -> Incident:
    """The incident after ``notice`` was delivered: told when at least one channel took it, else still due."""
    delivery = inc.refs()
    for r in results:
        entry = dict(delivery.get(r.channel) or {})
        entry.update(state=r.state, error=r.error, at=now.isoformat(), action=notice.action.value, attempts=r.attempts)
        if r.ref is not None:
            entry["ref"] = r.ref
        delivery[r.channel] = entry
    told = any(r.state == "sent" for r in results) or (bool(results) and all(r.state == "skipped" for r in results))
    if not told:
        failed = "; ".join(f"{r.channel}: {r.error}" for r in results if r.state == "failed")
        return replace(inc, delivery=json.dumps(delivery, sort_keys=True), held=f"delivery failed: {failed}"[:500])
    log = json.loads(inc.notify_log or "[]")
    if notice.action is not Action.RESOLVE:
        log.append(now.isoformat())
    out = replace(inc, delivery=json.dumps(delivery, sort_keys=True), notified_action=notice.action.value,
                  notified_severity=notice.severity.value, notified_at=now, notify_log=json.dumps(log[-50:]), held="")
    if Kind(inc.kind) in ONE_SHOT and notice.action is Action.OPEN:
        out = replace(out, status="resolved", resolved_at=inc.opened_at, notified_action="closed")
    return out
