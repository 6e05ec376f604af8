"""What holds at an as-of, read from the store: burn-rate alerts, scaling alarms, predicted bottlenecks, saturation."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from include.headroom.alerts.lifecycle import Condition
from include.headroom.alerts.settings import AlertSettings, Kind, Severity
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig
    from include.headroom.store import ParquetStore

# The kinds an evaluation of the store looks at (and may resolve); the others are raised by events.
EVALUATED_KINDS = (Kind.SLO_BURN, Kind.ERROR_RATE_ALARM, Kind.OUT_OF_BOUNDS, Kind.PREDICTED_BOTTLENECK, Kind.SATURATION)


def _latest(df: pd.DataFrame, column: str, as_of: datetime) -> pd.DataFrame:
    """The rows at the newest ``column`` value not after ``as_of``."""
    if df.empty:
        return df
    df = df[df[column] <= utc(as_of)]
    return df[df[column] == df[column].max()] if len(df) else df


def _service_fields(config: HeadroomConfig) -> Callable[[str], dict[str, str]]:
    services = {s.name: s for s in config.services}

    def fields(name: str) -> dict[str, str]:
        s = services.get(name)
        return {"tier": s.tier.value, "owner": s.owner} if s else {"tier": "", "owner": ""}

    return fields


def burn_rate_conditions(store: ParquetStore, config: HeadroomConfig, as_of: datetime) -> list[Condition]:
    """A paging or ticketing multi-window burn-rate alert of the newest SLO evaluation."""
    fields = _service_fields(config)
    out = []
    for r in _latest(store.read("slo_status"), "window_end", as_of).itertuples():
        if r.alert not in ("page", "ticket"):
            continue
        firing = [a["name"] for a in json.loads(r.burn_alerts or "[]") if a.get("firing")]
        budget = r.error_budget_remaining
        out.append(Condition(
            service=r.service, kind=Kind.SLO_BURN, subject="error_budget", severity=Severity(r.alert), **fields(r.service),
            summary=(f"error budget burning at {r.burn_rate:.1f}x ({', '.join(firing) or r.alert}); "
                     f"{budget:.0%} of the 30-day budget left" if budget == budget else f"burn-rate alert {r.alert}"),
            detail={"burn_rate": r.burn_rate, "error_budget_remaining": budget, "firing": firing, "window_end": str(r.window_end)},
        ))
    return out


def scaling_alarm_conditions(store: ParquetStore, config: HeadroomConfig, settings: AlertSettings, as_of: datetime) -> list[Condition]:
    """The newest scaling plan's alarms instead of scaling: error rate above the alarm level, target out of bounds."""
    fields = _service_fields(config)
    audit = store.read("audit", kind="scaling")
    if audit.empty:
        return []
    details = [json.loads(d or "{}") for d in audit["detail"]]
    as_ofs = [utc(d["as_of"]) if d.get("as_of") else None for d in details]
    eligible = [a for a in as_ofs if a is not None and a <= utc(as_of)]
    if not eligible:
        return []
    newest = max(eligible)
    kinds = {"error_rate_alarm": Kind.ERROR_RATE_ALARM, "out_of_bounds": Kind.OUT_OF_BOUNDS}
    out = []
    for row, detail, at in zip(audit.itertuples(), details, as_ofs, strict=False):
        kind = kinds.get(detail.get("rule", ""))
        if at != newest or row.action != "alarm" or kind is None:
            continue
        severity = settings.kind(kind).severity or Severity.PAGE
        reason = row.reason.split(": ", 1)[-1] if row.reason.startswith(("dry-run", "past interval")) else row.reason
        out.append(Condition(service=row.service, kind=kind, subject="scaling", severity=severity, **fields(row.service),
                             summary=f"alarm instead of scaling: {reason}", detail={"rule": detail.get("rule"), "as_of": str(newest)}))
    return out


def predicted_bottleneck_conditions(store: ParquetStore, config: HeadroomConfig, settings: AlertSettings,
                                    as_of: datetime) -> list[Condition]:
    """Predicted bottlenecks of the newest analysis whose probability passes ``min_probability``, with their lead time."""
    fields = _service_fields(config)
    kind = settings.kind(Kind.PREDICTED_BOTTLENECK)
    findings = _latest(store.read("findings", kind="predicted"), "window_end", as_of)
    out = []
    for r in findings.itertuples():
        if not r.confidence > kind.min_probability:
            continue
        lead_h = (r.start - r.window_end).total_seconds() / 3600
        out.append(Condition(
            service=r.service, kind=Kind.PREDICTED_BOTTLENECK, subject=r.type, severity=kind.severity or Severity.TICKET,
            **fields(r.service),
            summary=(f"{r.type} predicted with probability {r.confidence:.0%} in {lead_h:.0f} h "
                     f"(at {r.start:%Y-%m-%d %H:%M} UTC): {r.summary}"),
            detail={"probability": r.confidence, "lead_time_h": round(lead_h, 1), "at": str(r.start)},
        ))
    return out


def saturation_conditions(store: ParquetStore, config: HeadroomConfig, settings: AlertSettings, as_of: datetime) -> list[Condition]:
    """Series of the newest capacity run that saturate within ``within_days`` (a page within ``page_within_days``)."""
    import pandas as pd

    fields = _service_fields(config)
    kind = settings.kind(Kind.SATURATION)
    capacity = store.read("capacity")
    if capacity.empty:
        return []
    capacity = capacity[capacity["run_date"] <= utc(as_of).strftime("%Y-%m-%d")]
    capacity = capacity[capacity["run_date"] == capacity["run_date"].max()]
    out = []
    for r in capacity.itertuples():
        if pd.isna(r.saturation_at):
            continue
        days = (r.saturation_at - utc(as_of)).total_seconds() / 86400
        if days > kind.within_days:
            continue
        page = kind.page_within_days is not None and days <= kind.page_within_days
        severity = Severity.PAGE if page else (kind.severity or Severity.TICKET)
        out.append(Condition(
            service=r.service, kind=Kind.SATURATION, subject=r.metric, severity=severity, **fields(r.service),
            summary=(f"{r.metric} reaches its capacity {r.capacity_limit:g} in {max(days, 0):.1f} days "
                     f"(at {r.saturation_at:%Y-%m-%d %H:%M} UTC, probability {r.saturation_probability:.0%}); "
                     f"{r.replicas_needed_peak} replicas needed at the peak"),
            detail={"days": round(days, 2), "saturation_at": str(r.saturation_at), "run_date": r.run_date},
        ))
    return out


def evaluate_conditions(store: ParquetStore, config: HeadroomConfig, settings: AlertSettings, as_of: datetime) -> list[Condition]:
    """Every condition of :data:`EVALUATED_KINDS` that holds at ``as_of``."""
    return [
        *burn_rate_conditions(store, config, as_of),
        *scaling_alarm_conditions(store, config, settings, as_of),
        *predicted_bottleneck_conditions(store, config, settings, as_of),
        *saturation_conditions(store, config, settings, as_of),
    ]


def event_condition(kind: Kind, service: str, subject: str, summary: str, settings: AlertSettings, link: str = "",
                    tier: str = "", owner: str = "", **detail: Any) -> Condition:
    """A condition raised by an event (failed run, missed deadline, approval waiting) at the kind's severity."""
    return Condition(service=service, kind=kind, subject=subject, severity=settings.kind(kind).severity or Severity.TICKET,
                     summary=summary, link=link, tier=tier, owner=owner, detail=detail)
