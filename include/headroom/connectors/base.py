"""The connector framework: incremental reads from a durable watermark, idempotent landing, quota and audit figures."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from collections.abc import Iterable

from include.headroom.exceptions import ActionError
from include.headroom.fileio import write_atomic
from include.headroom.resilience import TokenBucket

__all__ = ["TokenBucket"]  # re-exported: connectors pace their calls with the shared kit
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.store import Store


@dataclass(frozen=True)
class Record:
    """A canonical record: the remote's id, its version (change stamp unless the object names a version field),
    when it last changed (an aware UTC timestamp or datetime), and its mapped fields."""

    record_id: str
    version: str
    modified: pd.Timestamp | datetime
    payload: dict[str, Any]


class Connector(Protocol):
    name: str

    def read_changes(self, obj: str, since: pd.Timestamp | None) -> Iterable[list[Record]]:
        """Pages of records of ``obj`` changed after ``since``."""

    def write(self, obj: str, records: list[Record]) -> int:
        """Deliver records to the remote; return how many were accepted."""


@dataclass
class SyncReport:
    connector: str
    object: str
    pages: int = 0
    read: int = 0
    written: int = 0
    failed: int = 0
    calls: int = 0
    throttled_s: float = 0.0
    duration_s: float = 0.0
    watermark_before: str | None = None
    watermark_after: str | None = None
    errors: list[str] = field(default_factory=list)
    direction: str = "push"
    landed: int = 0
    throttles: int = 0
    retries: int = 0
    breaker_trips: int = 0
    backoff_s: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_watermark(store: Store, source: str) -> pd.Timestamp | None:
    rows = store.read("watermarks", source=source)
    return None if rows.empty else utc(rows["watermark"].iloc[0])


def write_watermark(store: Store, source: str, watermark: Any) -> None:
    import pandas as pd

    store.upsert("watermarks", pd.DataFrame([{"source": source, "watermark": utc(watermark), "updated_at": pd.Timestamp.now(tz="UTC")}]))


def sync(store: Store, connector: Connector, obj: str, bucket: TokenBucket) -> SyncReport:
    """Read what changed since the watermark, land it idempotently, deliver it, then advance the watermark.

    The watermark moves only after records are landed, so a crash re-reads rather than loses.
    """
    import pandas as pd

    started = time.monotonic()
    source = f"connector:{connector.name}:{obj}"
    since = read_watermark(store, source)
    report = SyncReport(connector=connector.name, object=obj, watermark_before=since.isoformat() if since is not None else None)
    newest = since
    for page in connector.read_changes(obj, since):
        bucket.acquire()
        report.calls += 1
        report.pages += 1
        report.read += len(page)
        if not page:
            continue
        landed = pd.DataFrame(
            [
                {
                    "connector": connector.name,
                    "object": obj,
                    "record_id": r.record_id,
                    "version": r.version,
                    "payload": json.dumps(r.payload, default=str, sort_keys=True),
                    "landed_at": pd.Timestamp.now(tz="UTC"),
                }
                for r in page
            ]
        )
        store.upsert("connector_records", landed)
        bucket.acquire()
        report.calls += 1
        accepted = connector.write(obj, page)
        report.written += accepted
        report.failed += len(page) - accepted
        page_newest = max(r.modified for r in page)
        newest = page_newest if newest is None else max(newest, page_newest)
    if newest is not None and newest != since and report.failed == 0:
        write_watermark(store, source, newest)
    report.watermark_after = newest.isoformat() if newest is not None else None
    report.throttled_s = round(bucket.waited_s, 3)
    report.duration_s = round(time.monotonic() - started, 3)
    return report


class CapacityExportConnector:
    """Exports headroom's capacity and cost figures to a JSON outbox folder, the embedded stand-in for a finance or CMDB system."""

    name = "capacity_export"

    def __init__(self, store: Store, outbox: str | Path, page_size: int = 500) -> None:
        self.store, self.outbox, self.page_size = store, Path(outbox), page_size

    def read_changes(self, obj: str, since: pd.Timestamp | None) -> Iterable[list[Record]]:
        if obj != "capacity":
            raise ActionError(f"connector {self.name!r} has no object {obj!r}; objects: ['capacity']")
        rows = self.store.read("capacity")
        if rows.empty:
            return
        rows["modified"] = [utc(d) for d in rows["run_date"]]
        if since is not None:
            rows = rows[rows["modified"] > since]
        for start in range(0, len(rows), self.page_size):
            page = rows.iloc[start : start + self.page_size]
            yield [
                Record(
                    record_id=f"{r['service']}/{r['metric']}",
                    version=str(r["run_date"]),
                    modified=r["modified"],
                    payload={
                        k: r[k]
                        for k in ("service", "tier", "metric", "model", "saturation_at", "cost_now_month", "cost_forecast_month", "trusted")
                    },
                )
                for r in page.to_dict("records")
            ]

    def write(self, obj: str, records: list[Record]) -> int:
        """One JSON document per (object, version, record id): delivering a page again overwrites, never duplicates."""
        for r in records:
            path = self.outbox / obj / r.version / (r.record_id.replace("/", "__") + ".json")
            write_atomic(path, json.dumps({"id": r.record_id, "version": r.version, **r.payload}, default=str, sort_keys=True))
        return len(records)
