"""Report step: per service, the saturation date, top finding, scaling decision and cache action of the latest runs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig
from include.headroom.store.queries import latest_capacity, recent_findings
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.store import Store


@dataclass(frozen=True)
class ServiceSummary:
    """One line of the fleet summary: each field is display text."""

    service: str
    tier: str
    saturation: str
    model: str
    bottleneck: str
    scaling: str
    cache: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class FleetSummary:
    services: tuple[ServiceSummary, ...]

    def to_rows(self) -> list[dict[str, str]]:
        return [s.to_dict() for s in self.services]


def _bottleneck_line(top: Any) -> str:
    causes = json.loads(top["root_causes"])
    return f"{top['type']} ({top['kind']}, cause {causes[0]['signal'] if causes else '?'}) -> {top['remedy']}"


def _scaling_line(scaling: Any) -> str:
    before, after = json.loads(scaling["before"].iloc[0]), json.loads(scaling["after"].iloc[0])
    return f"{scaling['action'].iloc[0]} {before.get('replicas')}->{after.get('replicas')} [{scaling['status'].iloc[0]}]"


def summary(store: Store, config: HeadroomConfig, as_of: pd.Timestamp) -> FleetSummary:
    """Per service: saturation date, top finding, scaling decision, and what the cache and connector tasks did."""
    from include.headroom.cache.warming import describe_cache_action

    now = as_of
    capacity, _ = latest_capacity(store, now)
    findings = recent_findings(store, now)
    audit = store.read("audit")
    rows = []
    for svc in config.services:
        cap = capacity[(capacity["service"] == svc.name) & (capacity["metric"] == "throughput")] if len(capacity) else capacity
        sat = cap["saturation_at"].iloc[0] if len(cap) else None
        f = findings[findings["service"] == svc.name] if len(findings) else findings
        top = f.sort_values("confidence", ascending=False).iloc[0] if len(f) else None
        acts = audit[audit["service"] == svc.name] if len(audit) else audit
        scaling = acts[acts["kind"] == "scaling"].sort_values("created_at").tail(1) if len(acts) else acts
        cache = acts[acts["kind"] == "cache"].sort_values("created_at").tail(1) if len(acts) else acts
        rows.append(
            ServiceSummary(
                service=svc.name,
                tier=svc.tier.value,
                saturation=f"{utc(sat):%Y-%m-%d %H:%M}" if sat is not None and sat == sat else "none in horizon",
                model=str(cap["model"].iloc[0]) if len(cap) else "",
                bottleneck=_bottleneck_line(top) if top is not None else "none",
                scaling=_scaling_line(scaling) if len(scaling) else "-",
                cache=describe_cache_action(
                    cache["action"].iloc[0], cache["status"].iloc[0], cache["before"].iloc[0], cache["after"].iloc[0]
                )
                if len(cache)
                else "-",
            )
        )
    return FleetSummary(tuple(rows))
