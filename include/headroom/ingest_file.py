"""Push metric files through the file source and validation, as ``ingest_metrics`` and ``validate_metrics`` do, and say what happened."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from collections.abc import Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from include.headroom.exceptions import DataError
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from include.headroom.config import HeadroomConfig
    from include.headroom.metrics.files import FileSource
    from include.headroom.store import ParquetStore


class _OnlyServices:
    """The file source restricted to some services; the other services' rows are counted, not staged."""

    def __init__(self, source: FileSource, services: Sequence[str]) -> None:
        self.source, self.services = source, list(services)
        self.name = source.name
        self.stats: dict[str, Any] = {}
        self.notes: list[str] = []

    def read(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        rows = self.source.read(start, end)
        keep = rows["service"].isin(self.services)
        self.stats = {**self.source.stats, "rows_other_services": int((~keep).sum())}
        self.notes = list(self.source.notes)
        if not keep.all():
            self.notes.append(f"{int((~keep).sum())} rows of services other than {self.services} not ingested (--service)")
        return rows[keep].reset_index(drop=True)


def default_interval(source: FileSource, paths: Sequence[str], step_s: int, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The files' own span on the step grid: from the oldest row to one step past the newest row not in the future."""
    import pandas as pd

    stamps = []
    for pattern in paths:
        reader = source._reader(pattern)
        for uri in reader.list(pattern):
            stamps.append(source.placed(source.parse(uri, reader.read_bytes(uri))))
    ts = pd.concat(stamps) if stamps else pd.Series([], dtype="datetime64[us, UTC]")
    step = pd.Timedelta(seconds=step_s)
    tolerance = pd.Timedelta(seconds=source.config.pipeline.validation.future_tolerance_s)
    past = ts[ts <= now + tolerance]
    end = (past.max() if len(past) else now).floor(step) + step
    start = min(ts.min().floor(step), end - step) if len(ts) else end - step
    return start, end


def ingest_file(
    paths: Sequence[str | Path],
    config: HeadroomConfig,
    store: ParquetStore | None = None,
    services: Sequence[str] | None = None,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    now: str | datetime | None = None,
    dry_run: bool = False,
    reports_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Stage ``paths`` as one batch through :class:`~include.headroom.metrics.files.FileSource` and validate it.

    The command line's entry: ``start``, ``end`` and ``now`` may be the text given on it (normalised here).
    The columns, formats and units are those of ``sources.yaml`` ``files``; the interval defaults to the
    files' own span. With ``dry_run`` everything runs against a scratch store that is thrown away.

    :returns: the batch outcome: rows in, stored, quarantined (per reason), exact duplicates, warnings.
    :raises DataError: for a file the source refuses (naming file, row and field).
    """
    import pandas as pd

    from include.headroom.metrics.files import FileSource
    from include.headroom.metrics.source_config import load_source_settings
    from include.headroom.store import ParquetStore, open_store
    from include.headroom.steps.ingest import ingest
    from include.headroom.steps.validate import validate_pending
    from include.headroom.validation.quarantine import list_quarantine

    patterns = [str(p) for p in paths]
    for p in patterns:
        if "://" not in p and not any(c in p for c in "*?[") and not Path(p).is_file():
            raise DataError(f"ingest-file: {p} is not a file")
    unknown = sorted(set(services or ()) - {s.name for s in config.services})
    if unknown:
        raise DataError(
            f"ingest-file: --service {unknown} not in the catalog (catalog.yaml); services: {[s.name for s in config.services]}"
        )
    now_ts = utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    settings = replace(load_source_settings().files, paths=tuple(patterns))
    files = FileSource(settings, config, now=now_ts)
    source: Any = _OnlyServices(files, services) if services else files
    first, last = default_interval(files, patterns, config.pipeline.validation.step_s, now_ts)
    start_ts = utc(start) if start is not None else first
    end_ts = utc(end) if end is not None else last
    if end_ts <= start_ts:
        raise DataError(f"ingest-file: the interval [{start_ts.isoformat()}, {end_ts.isoformat()}) is empty: --end must be after --start")
    scratch = Path(tempfile.mkdtemp(prefix="headroom-dry-run-")) if dry_run else None
    try:
        db = ParquetStore(scratch / "store") if scratch else (store or open_store())
        staged = ingest(db, config, source, start_ts, end_ts, read_from=start_ts).to_xcom()
        with suppress(DataError):  # a failed batch is written like any other; its record below says why
            validate_pending(
                db, config, now=now_ts, reports_dir=scratch / "reports" if scratch else reports_dir, batch_ids=[staged["batch_id"]]
            )
        return _outcome(db, staged, list_quarantine(db, batch_id=staged["batch_id"]), source, dry_run, patterns)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _outcome(
    store: ParquetStore, staged: dict[str, Any], quarantined: pd.DataFrame, source: Any, dry_run: bool, paths: list[str]
) -> dict[str, Any]:
    batch = store.read("batches", batch_id=staged["batch_id"]).iloc[0]
    summary = json.loads(batch["failed_expectations"] or "{}")
    reasons: dict[str, int] = {}
    for r in quarantined.itertuples():
        reasons[r.failed_expectations] = reasons.get(r.failed_expectations, 0) + int(r.rows)
    warnings = list(getattr(source, "notes", []) or [])
    for w in summary.get("warnings") or []:
        warnings.append(
            f"{w['expectation']} on {w.get('service')}/{w.get('metric')} ({w.get('rows')} rows)"
            + (f": {w['note']}" if w.get("note") else "")
        )
    return {
        "files": paths,
        "batch_id": staged["batch_id"],
        "dry_run": dry_run,
        "status": str(batch["status"]),
        "interval": [staged["read_start"], staged["interval_end"]],
        "rows_in": int(batch["rows_in"]),
        "rows_stored": int(batch["rows_valid"]),
        "rows_quarantined": int(batch["rows_quarantined"]),
        "rows_duplicate": int(batch["rows_duplicate"]),
        "quarantined_by_reason": dict(sorted(reasons.items())),
        "batch_failure": summary.get("batch_failure") or "",
        "warnings": warnings,
        **{k: staged[k] for k in ("rows_before_window", "rows_after_window", "rows_in_future") if staged.get(k)},
        **({"rows_other_services": source.stats["rows_other_services"]} if source.stats.get("rows_other_services") else {}),
    }
