"""Ingest step: stage one batch from a metrics source, with the watermark, lookback and unit conversion."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig
from include.headroom.connectors.base import read_watermark
from include.headroom.exceptions import DataError
from include.headroom.store import queries
from include.headroom.timeutil import utc
from include.headroom.validation.batch_records import advance_watermark, compare_and_set, same_staging

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.metrics.sources import MetricsSource
    from include.headroom.store import Store

log = logging.getLogger(__name__)

# What a source counted while reading, handed on with the result when present.
SOURCE_STATS = ("empty", "non_finite", "rows_before_window", "rows_after_window", "rows_in_future", "naive_timestamps")


@dataclass(frozen=True)
class IngestResult:
    """One staged batch: its id, what was read, and what the source counted on the way.

    :param new_rows: staged rows whose key is not yet in ``metrics`` (0 when an interval is re-run).
    :param source_stats: the source's own counts (:data:`SOURCE_STATS` present in its ``stats``).
    """

    batch_id: str
    source: str
    rows: int
    new_rows: int
    read_start: pd.Timestamp
    interval_end: pd.Timestamp
    series: int
    seconds: float
    rows_duplicate: int
    source_stats: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_xcom(self) -> dict[str, Any]:
        """The task's return value: times as ISO text, the source's counts and notes inline."""
        return {
            "batch_id": self.batch_id,
            "source": self.source,
            "rows": self.rows,
            "new_rows": self.new_rows,
            "read_start": self.read_start.isoformat(),
            "interval_end": self.interval_end.isoformat(),
            "series": self.series,
            "seconds": self.seconds,
            "rows_duplicate": self.rows_duplicate,
            **self.source_stats,
            **({"notes": list(self.notes)} if self.notes else {}),
        }


def batch_id_for(source: str, start: pd.Timestamp, end: pd.Timestamp) -> str:
    return f"{source}_{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def ingest(
    store: Store,
    config: HeadroomConfig,
    source: MetricsSource,
    interval_start: pd.Timestamp,
    interval_end: pd.Timestamp,
    history_days: float | None = None,
    read_from: pd.Timestamp | None = None,
) -> IngestResult:
    """Stage one batch from ``source`` for the interval (plus late-data lookback, or the initial history on first run).

    Values are converted to each metric's canonical unit (``sources.yaml`` units); the source's
    own unit, per series, is kept in the ``source_units`` table with the factor applied. Nothing is
    written, and the watermark stays, when the source or the unit conversion fails. ``new_rows``
    counts staged rows whose key is not yet in ``metrics``: re-running an interval reports 0.
    Rows the source drops as exact duplicates are counted in the batch's ``rows_duplicate`` (and in
    ``rows_in``), so ``rows_in == rows_valid + rows_quarantined + rows_duplicate`` once validated.

    :param interval_start: the run's data interval, UTC (normalised at the Airflow boundary or the CLI).
    :param read_from: read exactly from this time (``ingest-file``), instead of the watermark's lookback.
    """
    import time

    import pandas as pd

    from include.headroom.metrics.source_config import load_source_settings
    from include.headroom.metrics.units import normalize_units, source_units

    started = time.monotonic()
    start, end = interval_start, interval_end
    if end <= start and history_days is None:
        raise DataError(f"empty data interval [{start}, {end}): schedule ingest_metrics with an interval timetable")
    watermark_key = f"source:{source.name}"
    watermark = read_watermark(store, watermark_key)
    pipe = config.pipeline
    if read_from is not None:
        read_start = read_from
    elif history_days is not None:
        read_start = end - pd.Timedelta(days=history_days)
    elif watermark is None:
        read_start = min(start, end - pd.Timedelta(days=pipe.initial_history_days))
    else:
        read_start = min(start, watermark - pd.Timedelta(seconds=pipe.lookback_s))
    units = load_source_settings().units
    rows = normalize_units(source.read(read_start, end), units, source.name)
    batch_id = batch_id_for(source.name, read_start, end)
    rows = rows.assign(batch_id=batch_id)
    rows["ts_naive"] = rows["ts_naive"].fillna(False).astype(bool) if "ts_naive" in rows.columns else False
    stats = dict(getattr(source, "stats", None) or {})
    duplicates = int(stats.get("duplicates_dropped", 0))
    newest = utc(rows["ts"].max()) if len(rows) else None
    ingested_at = pd.Timestamp.now(tz="UTC")
    record = {
        "batch_id": batch_id,
        "source": source.name,
        "interval_start": read_start,
        "interval_end": end,
        "status": "staging",
        "rows_in": len(rows) + duplicates,
        "rows_valid": 0,
        "rows_quarantined": 0,
        "rows_duplicate": duplicates,
        "ingested_at": ingested_at,
        "validated_at": None,
        "failed_expectations": "",
        "newest_ts": newest,
    }
    # The record first (a re-run always re-stages): a validation of this batch still running will see that its
    # staging was replaced and neither record its outcome over ours nor delete the rows staged here.
    compare_and_set(store, "batches", record, lambda current: True)
    store.replace_partition("staging", batch_id, rows)
    if len(rows):
        store.upsert("source_units", source_units(rows, source.name, units))
    new_rows = queries.new_staged_rows(store, batch_id, read_start, end)
    elapsed = time.monotonic() - started
    log.info(
        "Staged batch %s from %s: %d rows (%d new) in %d series, %.1f s, %.0f rows/s",
        batch_id,
        source.name,
        len(rows),
        new_rows,
        rows.groupby(["service", "metric", "labels"]).ngroups if len(rows) else 0,
        elapsed,
        len(rows) / max(elapsed, 1e-9),
    )
    staged = {**record, "status": "staged"}
    if not compare_and_set(store, "batches", staged, lambda current: same_staging(current, ingested_at, "staging")):
        log.warning("Batch %s was staged again by another run while this one staged it: that run's rows stand", batch_id)
    if newest is not None:
        advance_watermark(store, watermark_key, end)
    return IngestResult(
        batch_id=batch_id,
        source=source.name,
        rows=len(rows),
        new_rows=new_rows,
        read_start=read_start,
        interval_end=end,
        series=int(rows.groupby(["service", "metric"]).ngroups) if len(rows) else 0,
        seconds=round(elapsed, 3),
        rows_duplicate=duplicates,
        source_stats={k: v for k, v in stats.items() if k in SOURCE_STATS},
        notes=tuple(getattr(source, "notes", None) or ()),
    )
