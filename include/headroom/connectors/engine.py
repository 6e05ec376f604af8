"""Running a sync: map remote records into canonical ones, land them idempotently, then move the watermark.

Pull: read pages changed since the durable watermark of (connector, object), map each record through the
object's field mapping, land them in the store's ``connector_records`` (or S3) keyed by
(connector, object, record id, version), and advance the watermark only after everything read is landed:
a crash at any point re-reads rather than loses, and re-landing replaces rather than duplicates.

Push: read the source table's rows changed since the watermark, send them in batches (of the connector's
batch size, ``concurrency`` batches at once), retry the records a batch refused, and advance the watermark
only when every record was accepted; records still refused are reported by id and kept for the next run.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, UTC
from typing import TYPE_CHECKING, Any, Protocol
from collections.abc import Iterable, Iterator, Mapping

from include.headroom.connectors.base import Record, SyncReport, read_watermark, write_watermark
from include.headroom.exceptions import ConnectorError, PartialFailureError, RemoteSchemaError
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.connectors.http import CallStats
    from include.headroom.connectors.settings import ConnectorSettings, LandingSettings, ObjectSpec
    from include.headroom.store import Store


class PullConnector(Protocol):
    settings: ConnectorSettings
    stats: CallStats

    def read_changes(self, obj: ObjectSpec, since: pd.Timestamp | None) -> Iterable[list[Any]]:
        """Pages of remote records (dicts, or ready :class:`Record` s) of ``obj`` modified at or after ``since``."""


class PushConnector(Protocol):
    settings: ConnectorSettings
    stats: CallStats

    def write_batch(self, obj: ObjectSpec, rows: list[dict[str, Any]]) -> dict[str, str]:
        """Upsert one batch (rows carry the external id under ``obj.external_id``); return refused id -> remote error."""


def watermark_source(connector: str, obj: str) -> str:
    return f"connector:{connector}:{obj}"


# -- mapping ----------------------------------------------------------------------------------------

_MISSING = object()


def _get(raw: Mapping[str, Any], path: str) -> Any:
    if "." not in path:  # the common case, kept cheap: this runs for every field of every record
        return raw.get(path, _MISSING) if type(raw) is dict else (raw.get(path, _MISSING))
    value: Any = raw
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _timestamp(value: Any) -> datetime:
    """A remote timestamp as an aware UTC datetime: ISO strings take the fast path, anything else goes through :func:`utc`."""
    if isinstance(value, str):
        text = value[:-5] + value[-5:-2] + ":" + value[-2:] if len(value) > 5 and value[-5] in "+-" and value[-3] != ":" else value
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return utc(value).to_pydatetime()
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return utc(value).to_pydatetime()


class RecordMapper:
    """Maps remote records of one object into canonical :class:`Record` s (id, version, modified, mapped fields).

    :raises RemoteSchemaError: naming connector, object, record and the missing field, and what the record has.
    """

    def __init__(self, connector: str, obj: ObjectSpec) -> None:
        self.connector, self.obj = connector, obj
        self.pairs = tuple({"modified": obj.modified, **obj.fields}.items())

    def _missing(self, rid: Any, canonical: str, remote: str, raw: Mapping[str, Any]) -> RemoteSchemaError:
        c, o = self.connector, self.obj.name
        return RemoteSchemaError(
            f"connector {c!r} object {o!r} record {rid!r}: field {remote!r} (mapped to {canonical!r}) is missing from the remote "
            f"payload; record fields: {sorted(raw)}. The remote schema changed: update connectors.yaml connectors.{c}.objects.{o}.fields"
        )

    def __call__(self, raw: Mapping[str, Any]) -> Record:
        obj = self.obj
        rid = _get(raw, obj.id)
        if rid is _MISSING or rid in (None, ""):
            raise RemoteSchemaError(f"connector {self.connector!r} object {obj.name!r}: a record has no id field {obj.id!r}; "
                                    f"record fields: {sorted(raw)}")
        payload: dict[str, Any] = {}
        for canonical, remote in self.pairs:
            value = _get(raw, remote)
            if value is _MISSING:
                raise self._missing(rid, canonical, remote, raw)
            payload[canonical] = value
        try:
            modified = _timestamp(payload["modified"])
        except Exception as exc:  # noqa: BLE001 - re-raised naming the field
            raise RemoteSchemaError(f"connector {self.connector!r} object {obj.name!r} record {rid!r}: field {obj.modified!r}="
                                    f"{payload['modified']!r} is not a timestamp") from exc
        version = _get(raw, obj.version) if obj.version else modified.isoformat()
        return Record(record_id=str(rid), version=str(version), modified=modified, payload=payload)  # type: ignore[arg-type]


def map_record(connector: str, obj: ObjectSpec, raw: Mapping[str, Any]) -> Record:
    """One remote record as a canonical :class:`Record` (see :class:`RecordMapper`)."""
    return RecordMapper(connector, obj)(raw)


# -- landing ----------------------------------------------------------------------------------------

class StoreLander:
    """Lands records in the store's ``connector_records`` table (upsert by connector, object, record id, version)."""

    target = "store"

    def __init__(self, store: Store) -> None:
        self.store = store

    def land(self, connector: str, obj: str, records: list[Record]) -> int:
        import pandas as pd

        if not records:
            return 0
        now = pd.Timestamp.now(tz="UTC")
        rows = {(r.record_id, r.version): r for r in records}  # a record read twice in one flush lands once
        frame = pd.DataFrame([
            {"connector": connector, "object": obj, "record_id": rid, "version": ver,
             "payload": json.dumps(r.payload, default=str, sort_keys=True), "landed_at": now}
            for (rid, ver), r in rows.items()
        ])
        result = self.store.upsert("connector_records", frame)
        return result.inserted


class S3Lander:
    """Lands one JSON object per (connector, object, record id, version) under ``prefix`` in ``bucket``: writing it again
    replaces it, so landing is idempotent. ``client`` is a boto3 S3 client (from the amazon provider's hook in Airflow)."""

    target = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "connectors/", workers: int = 8) -> None:
        self.client, self.bucket, self.prefix, self.workers = client, bucket, prefix.rstrip("/") + "/", workers

    def key(self, connector: str, obj: str, record: Record) -> str:
        from urllib.parse import quote

        return f"{self.prefix}{connector}/{obj}/{quote(record.record_id, safe='')}/{quote(record.version, safe='')}.json"

    def land(self, connector: str, obj: str, records: list[Record]) -> int:
        def put(r: Record) -> None:
            body = json.dumps({"connector": connector, "object": obj, "record_id": r.record_id, "version": r.version,
                               "modified": r.modified.isoformat(), "payload": r.payload}, default=str, sort_keys=True)
            self.client.put_object(Bucket=self.bucket, Key=self.key(connector, obj, r), Body=body.encode(), ContentType="application/json")

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(put, records))
        return len(records)


def make_lander(settings: LandingSettings, store: Store, s3_client: Any = None) -> StoreLander | S3Lander:
    if settings.target == "s3":
        if s3_client is None:
            raise ConnectorError("connectors.yaml landing.target='s3' needs an S3 client (the landing.conn_id connection)")
        return S3Lander(s3_client, settings.bucket, settings.prefix)
    return StoreLander(store)


# -- pull -------------------------------------------------------------------------------------------

_STAT_FIELDS = ("calls", "throttles", "retries", "breaker_trips", "throttled_s", "backoff_s")


def _snapshot(connector: Any) -> dict[str, float]:
    stats = getattr(connector, "stats", None)
    return {f: getattr(stats, f, 0) for f in _STAT_FIELDS}


def _finish(report: SyncReport, connector: Any, started: float, before: dict[str, float] | None = None) -> SyncReport:
    """Fill the report's API figures with what this sync spent (the connector's counters since ``before``)."""
    now, before = _snapshot(connector), before or dict.fromkeys(_STAT_FIELDS, 0)
    for f in _STAT_FIELDS:
        value = now[f] - before[f]
        setattr(report, f, round(value, 3) if isinstance(value, float) else int(value))
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def pull(store: Store, connector: PullConnector, obj: str, lander: StoreLander | S3Lander | None = None,
         flush_records: int = 10000) -> SyncReport:
    """Incremental read of ``obj`` into the landing target; the watermark moves only after everything read is landed.

    On failure the exception carries the partial report as ``exc.sync_report`` (for the audit).
    """
    started, before = time.monotonic(), _snapshot(connector)
    settings = connector.settings
    spec = settings.object(obj)
    lander = lander or StoreLander(store)
    source = watermark_source(settings.name, obj)
    since = read_watermark(store, source)
    report = SyncReport(connector=settings.name, object=obj, direction="pull",
                        watermark_before=since.isoformat() if since is not None else None)
    newest = since
    buffer: list[Record] = []
    mapper = RecordMapper(settings.name, spec)

    def flush() -> None:
        report.landed += lander.land(settings.name, obj, buffer)
        report.written += len(buffer)
        buffer.clear()

    try:
        for page in connector.read_changes(spec, since):
            report.pages += 1
            records = [r if isinstance(r, Record) else mapper(r) for r in page]
            report.read += len(records)
            buffer.extend(records)
            for r in records:
                newest = r.modified if newest is None else max(newest, r.modified)
            if len(buffer) >= flush_records:
                flush()
        flush()
    except Exception as exc:
        report.errors.append(str(exc))
        exc.sync_report = _finish(report, connector, started, before)  # type: ignore[attr-defined]
        raise
    newest = utc(newest) if newest is not None else None
    if newest is not None and newest != since:
        write_watermark(store, source, newest)
    report.watermark_after = newest.isoformat() if newest is not None else None
    return _finish(report, connector, started, before)


# -- push -------------------------------------------------------------------------------------------

def capacity_rows(store: Store, source: str, since: pd.Timestamp | None) -> list[Record]:
    """Rows of a headroom table changed after ``since`` as records keyed ``service/metric``, versioned by run date."""
    if source != "capacity":
        raise ConnectorError(f"push source table {source!r} is not supported; sources: ['capacity']")
    rows = store.read("capacity")
    if rows.empty:
        return []
    rows["modified"] = [utc(d) for d in rows["run_date"]]
    if since is not None:
        rows = rows[rows["modified"] > since]
    rows = rows.sort_values(["modified", "service", "metric"])
    out = []
    for r in rows.to_dict("records"):
        payload = {k: (None if _isna(v) else (v.isoformat() if hasattr(v, "isoformat") else v)) for k, v in r.items() if k != "modified"}
        out.append(Record(record_id=f"{r['service']}/{r['metric']}", version=str(r["run_date"]), modified=r["modified"], payload=payload))
    return out


def _isna(v: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def remote_row(obj: ObjectSpec, record: Record) -> dict[str, Any]:
    """The remote fields of a record: ``obj.fields`` maps remote field -> canonical column; the external id is the record id."""
    row = {remote: record.payload.get(canonical) for remote, canonical in obj.fields.items()}
    if obj.external_id:
        row[obj.external_id] = record.record_id
    return row


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def push(store: Store, connector: PushConnector, obj: str) -> SyncReport:
    """Send the source table's changes to the remote in batches; refused records are retried, then reported.

    :raises PartialFailureError: when records are still refused after ``retry.record_retry_rounds``; the
        watermark stays, so the next run sends them again (the remote upserts by external id).
    """
    started, before = time.monotonic(), _snapshot(connector)
    settings = connector.settings
    spec = settings.object(obj)
    source = watermark_source(settings.name, obj)
    since = read_watermark(store, source)
    report = SyncReport(connector=settings.name, object=obj, direction="push",
                        watermark_before=since.isoformat() if since is not None else None)
    records = capacity_rows(store, spec.source, since)
    report.read = len(records)
    by_id = {r.record_id: r for r in records}
    pending = list(by_id)
    failures: dict[str, str] = {}
    try:
        for _round in range(settings.retry.record_retry_rounds + 1):
            if not pending:
                break
            batches = list(_batches(pending, settings.batch_size))
            rows = [[remote_row(spec, by_id[i]) for i in batch] for batch in batches]
            report.pages += len(batches)
            with ThreadPoolExecutor(max_workers=max(1, settings.concurrency)) as pool:
                results = list(pool.map(lambda b: connector.write_batch(spec, b), rows))
            failures = {rid: err for res in results for rid, err in res.items()}
            pending = [rid for rid in pending if rid in failures]
            report.written = len(by_id) - len(failures)
    except Exception as exc:
        report.errors.append(str(exc))
        exc.sync_report = _finish(report, connector, started, before)  # type: ignore[attr-defined]
        raise
    report.failed = len(failures)
    report.failures = dict(sorted(failures.items())[:50])
    delivered = [by_id[i] for i in by_id if i not in failures]
    report.landed = StoreLander(store).land(settings.name, obj, delivered)
    newest = max((r.modified for r in records), default=since)
    if failures:
        report.watermark_after = report.watermark_before
        report.errors.append(f"{len(failures)} records refused after {settings.retry.record_retry_rounds} retry rounds")
        exc = PartialFailureError(
            f"connector {settings.name!r} object {obj!r}: {len(failures)} of {len(by_id)} records were refused after "
            f"{settings.retry.record_retry_rounds} retry rounds, e.g. {next(iter(sorted(failures.items())))}; the watermark stays "
            f"so the next run sends them again", failures)
        exc.sync_report = _finish(report, connector, started, before)  # type: ignore[attr-defined]
        raise exc
    if newest is not None and newest != since:
        write_watermark(store, source, newest)
    report.watermark_after = newest.isoformat() if newest is not None else None
    return _finish(report, connector, started, before)


@dataclass(frozen=True)
class SyncOutcome:
    report: SyncReport
    error: BaseException | None = None


def run_sync(store: Store, connector: Any, obj: str, lander: StoreLander | S3Lander | None = None,
             flush_records: int = 10000) -> SyncOutcome:
    """Pull or push ``obj`` by its direction; a failure comes back with the partial report instead of raising."""
    spec = connector.settings.object(obj)
    try:
        if spec.direction == "pull":
            return SyncOutcome(pull(store, connector, obj, lander, flush_records))
        return SyncOutcome(push(store, connector, obj))
    except Exception as exc:  # noqa: BLE001 - handed back with its report; the caller audits and re-raises
        report = getattr(exc, "sync_report", None) or SyncReport(connector=connector.settings.name, object=obj, direction=spec.direction,
                                                                  errors=[str(exc)])
        return SyncOutcome(report, exc)
