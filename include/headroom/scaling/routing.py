"""Between deciding and applying: the memory of earlier decisions, and which decisions may touch production."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from include.headroom.scaling.policy import Recommendation, ScaleEvent
from include.headroom.scaling.settings import ScalingConfig
from include.headroom.scaling.safety import interval_is_current
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.store import Store


def scaling_memory(store: Store, as_of: pd.Timestamp, window_s: int) -> dict[str, tuple[list[Recommendation], list[ScaleEvent]]]:
    """Per service, the recommendations and applied changes of the audit trail in the ``window_s`` before ``as_of``.

    The stabilization windows and rate policies of the HPA algorithm need them; the time of each is the
    decision's as-of, so a replay or a re-run sees the same memory. A service with no entry is seen for the
    first time (``plan_scaling(first_seen=True)``).
    """
    import pandas as pd

    now = as_of
    audit = store.read("audit", kind="scaling")
    out: dict[str, tuple[list[Recommendation], list[ScaleEvent]]] = {}
    for row in audit.itertuples(index=False):
        detail = json.loads(row.detail or "{}")
        if "as_of" not in detail:
            continue
        at = utc(detail["as_of"])
        if not now - pd.Timedelta(seconds=window_s) <= at < now:
            continue
        recs, events = out.setdefault(row.service, ([], []))
        if detail.get("seed") is not None:  # the current replicas recorded when the target was first seen
            recs.append(Recommendation(at.timestamp(), int(detail["seed"])))
        if detail.get("recommendation") is not None:  # 0 is a recommendation too (scale to zero)
            recs.append(Recommendation(at.timestamp(), int(detail["recommendation"])))
        if row.status == "applied":
            before, after = json.loads(row.before or "{}"), json.loads(row.after or "{}")
            if before.get("replicas") is not None and after.get("replicas") is not None:
                events.append(ScaleEvent(at.timestamp(), int(after["replicas"]) - int(before["replicas"])))
    return out


def route_decisions(decisions: Sequence[dict[str, Any]], now: pd.Timestamp, settings: ScalingConfig) -> list[dict[str, Any]]:
    """Mark each decision ``live`` (may be applied) or not, with the reason.

    Live only when: it is a scale action, it is for the current interval (a backfill, catch-up or re-run
    of an old interval only records what it would have done, which the reason says first), its service
    is enabled in the catalog, and no other service names the same target.
    """
    targets = Counter(json.dumps([d.get("target_kind"), d.get("target")], sort_keys=True) for d in decisions)
    out = []
    for raw in decisions:
        d = dict(raw)
        if d.get("action") != "scale":
            live, why = False, f"action {d.get('action')!r} changes nothing"
        elif not interval_is_current(utc(d["as_of"]), now, settings):  # first: a backfill never scales, enabled or not
            live, why = (
                False,
                f"past interval: as-of {d['as_of']} is not current at {now.isoformat()}; recorded what it would have done",
            )
        elif not d.get("enabled"):
            live, why = False, "dry-run: the service is not enabled in the catalog"
        elif targets[json.dumps([d.get("target_kind"), d.get("target")], sort_keys=True)] > 1:
            live, why = False, f"target {d.get('target')} is named by more than one service; refusing to apply"
        else:
            live, why = True, "live"
        d.update(live=live, live_reason=why)
        out.append(d)
    return out
