"""Table definitions of the store: the canonical long metrics schema and the tables built on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from collections.abc import Mapping

from include.headroom.exceptions import SchemaError, StoreError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# Column kinds, mapped to Arrow types lazily so this module stays cheap to import.
TS, STR, F64, I64, BOOL = "timestamp", "string", "float64", "int64", "bool"

CANONICAL_COLUMNS: dict[str, str] = {
    "ts": TS,
    "service": STR,
    "tier": STR,
    "metric": STR,
    "value": F64,
    "unit": STR,
    "source": STR,
    "labels": STR,
}
METRIC_KEY = ("service", "metric", "ts", "labels")


@dataclass(frozen=True)
class TableSpec:
    """A store table: its columns, its unique key and how it is partitioned.

    :param partition_by: ``"date:<column>"`` partitions by the UTC date of a time column,
        ``"<column>"`` by the column's value, ``None`` keeps one file.
    :param part_by: a key column by which writers append: each upsert of such a table is a
        part of its partition holding the values of this column it wrote (e.g. one mapped
        task's services), and an upsert touches only the parts holding any of its values
        (stores built on files; a database upserts by key anyway).
    """

    name: str
    columns: Mapping[str, str]
    key: tuple[str, ...]
    partition_by: str | None = None
    sort_by: tuple[str, ...] = ()
    defaults: Mapping[str, object] = field(default_factory=dict)  # columns added later: rows without them get this value
    part_by: str | None = None

    def __post_init__(self) -> None:
        missing = [k for k in self.key if k not in self.columns]
        if missing:
            raise SchemaError(f"table {self.name!r}: key columns {missing} are not columns")
        if self.part_by is not None and self.part_by not in self.key:
            raise SchemaError(f"table {self.name!r}: part_by {self.part_by!r} must be a key column")

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        types = {TS: pa.timestamp("us", tz="UTC"), STR: pa.string(), F64: pa.float64(), I64: pa.int64(), BOOL: pa.bool_()}
        return pa.schema([(name, types[kind]) for name, kind in self.columns.items()])

    def conform(self, df: pd.DataFrame, fill_missing: bool = False) -> pd.DataFrame:
        """Return ``df`` with exactly this table's columns and dtypes; raise naming what is missing or unconvertible.

        :param fill_missing: give columns ``df`` lacks their empty value (0, false, empty text, null time) instead of
            refusing: for files written before a column was added.
        """
        import pandas as pd

        missing = [c for c in self.columns if c not in df.columns]
        if any(c in self.defaults for c in missing):
            df = df.assign(**{c: self.defaults[c] for c in missing if c in self.defaults})
            missing = [c for c in missing if c not in self.defaults]
        if missing and fill_missing:
            empty = {TS: pd.NaT, STR: "", F64: float("nan"), I64: 0, BOOL: False}
            df = df.assign(**{c: empty[self.columns[c]] for c in missing})
            missing = []
        if missing:
            raise SchemaError(f"table {self.name!r}: rows lack required columns {missing} (got {list(df.columns)})")
        out = pd.DataFrame(index=range(len(df)))
        for name, kind in self.columns.items():
            col = df[name].reset_index(drop=True)
            try:
                if kind == TS:
                    out[name] = pd.to_datetime(col, utc=True).astype("datetime64[us, UTC]")
                elif kind == F64:
                    out[name] = pd.to_numeric(col, errors="raise").astype("float64")
                elif kind == I64:
                    out[name] = pd.to_numeric(col, errors="raise").astype("int64")
                elif kind == BOOL:
                    out[name] = col.astype("bool")
                else:
                    out[name] = col.astype("string").fillna("").astype(object)
            except (ValueError, TypeError) as exc:
                raise SchemaError(f"table {self.name!r}: column {name!r} cannot be read as {kind}: {exc}") from exc
        return out

    def conform_keyed(self, df: pd.DataFrame) -> pd.DataFrame:
        """:meth:`conform`, and refuse rows that repeat a key among themselves (an upsert could not tell which wins).

        :raises StoreError: naming the key and a few repeated values.
        """
        out = self.conform(df)
        dupes = out.duplicated(list(self.key), keep=False)
        if dupes.any():
            sample = out.loc[dupes, list(self.key)].head(3).to_dict("records")
            raise StoreError(f"table {self.name!r}: {int(dupes.sum())} rows repeat a key {self.key}, e.g. {sample}")
        return out


def _table(
    name: str,
    columns: Mapping[str, str],
    key: tuple[str, ...],
    partition_by: str | None = None,
    defaults: Mapping[str, object] | None = None,
    part_by: str | None = None,
) -> TableSpec:
    return TableSpec(name=name, columns=dict(columns), key=key, partition_by=partition_by, sort_by=key, defaults=dict(defaults or {}),
                     part_by=part_by)


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        # Raw batches as ingested (values already in canonical units), before validation.
        # ``ts_naive``: the timestamp was written without a zone; ``ts`` holds its wall-clock time as if UTC, and
        # validation judges it with the configured zone policy (validation.yaml naive_timestamps).
        _table(
            "staging",
            {**CANONICAL_COLUMNS, "batch_id": STR, "ts_naive": BOOL},
            ("batch_id", *METRIC_KEY),
            "batch_id",
            defaults={"ts_naive": False},
        ),
        # Validated canonical metrics: the store every decision reads.
        _table("metrics", {**CANONICAL_COLUMNS, "batch_id": STR}, METRIC_KEY, "date:ts"),
        # Rows that failed validation, with why: nothing is dropped.
        _table(
            "quarantine",
            {
                **CANONICAL_COLUMNS,
                "batch_id": STR,
                "row": I64,
                "raw_value": STR,
                "raw_record": STR,
                "failed_expectations": STR,
                "quarantined_at": TS,
            },
            ("batch_id", "row"),
            "batch_id",
        ),
        _table(
            "batches",
            {
                "batch_id": STR,
                "source": STR,
                "interval_start": TS,
                "interval_end": TS,
                "status": STR,
                "rows_in": I64,
                "rows_valid": I64,
                "rows_quarantined": I64,
                "ingested_at": TS,
                "validated_at": TS,
                "failed_expectations": STR,
                "newest_ts": TS,
                # rows the source read that repeat another row exactly (dropped, counted):
                # rows_in == rows_valid + rows_quarantined + rows_duplicate
                "rows_duplicate": I64,
            },
            ("batch_id",),
            defaults={"rows_duplicate": 0},
        ),
        # One validation outcome per (batch, service): what the gates read. Service "*" stands for the whole
        # batch when its rows cannot be attributed (empty batch, no service column).
        _table(
            "validation_results",
            {
                "batch_id": STR,
                "service": STR,
                "tier": STR,
                "interval_start": TS,
                "interval_end": TS,
                "validated_at": TS,
                "success": BOOL,
                "rows_in": I64,
                "rows_valid": I64,
                "rows_quarantined": I64,
                "failure_ratio": F64,
                "max_failure_ratio": F64,
                "newest_ts": TS,
                "batch_failure": STR,
                "failed_expectations": STR,
                "statistics": STR,
                "data_docs": STR,
            },
            ("batch_id", "service"),
            "date:interval_end",
        ),
        _table("watermarks", {"source": STR, "watermark": TS, "updated_at": TS}, ("source",)),
        # The unit each source delivers a series in, and the factor that converted it to the stored unit.
        _table(
            "source_units",
            {
                "source": STR,
                "service": STR,
                "metric": STR,
                "labels": STR,
                "original_unit": STR,
                "unit": STR,
                "factor": F64,
                "updated_at": TS,
            },
            ("source", "service", "metric", "labels"),
        ),
        _table(
            "forecasts",
            {
                "run_date": STR,
                "service": STR,
                "metric": STR,
                "model": STR,
                "ds": TS,
                "yhat": F64,
                "yhat_lower": F64,
                "yhat_upper": F64,
                "replicas": F64,
            },  # replicas needed at the tier's target, clipped to [min, max]; load metric only
            ("run_date", "service", "metric", "ds"),
            "run_date",
            part_by="service",
        ),
        _table(
            "capacity",
            {
                "run_date": STR,
                "service": STR,
                "tier": STR,
                "metric": STR,
                "model": STR,
                "scores": STR,
                "mape": F64,
                "trusted": BOOL,
                "data_points": I64,
                "capacity_limit": F64,
                "last_value": F64,
                "saturation_at": TS,
                "saturation_at_upper": TS,
                "saturation_probability": F64,
                "replicas_needed_peak": I64,
                "max_replicas_enough": BOOL,
                "cost_now_month": F64,
                "cost_forecast_month": F64,
                "status": STR,
                "reason": STR,
                "mase": F64,
                "coverage": F64,
                "hours_over_max": F64,
                "cost_recommended_month": F64,
            },
            ("run_date", "service", "metric"),
            "run_date",
            part_by="service",
        ),
        # The load forecast reshaped by each configured what-if scenario.
        _table(
            "scenarios",
            {
                "run_date": STR,
                "service": STR,
                "metric": STR,
                "scenario": STR,
                "description": STR,
                "model": STR,
                "trusted": BOOL,
                "saturation_at": TS,
                "saturation_at_upper": TS,
                "saturation_probability": F64,
                "replicas_needed_peak": I64,
                "max_replicas_enough": BOOL,
                "hours_over_max": F64,
                "cost_now_month": F64,
                "cost_forecast_month": F64,
                "cost_recommended_month": F64,
            },
            ("run_date", "service", "metric", "scenario"),
            "run_date",
            part_by="service",
        ),
        # Medium (12 months, daily) and long (3 years, weekly) capacity plans of the load, per scenario, with the accuracy
        # measured for the horizon and its expected band (forecasting/plans.py).
        _table(
            "capacity_plans",
            {
                "run_date": STR,
                "service": STR,
                "metric": STR,
                "horizon": STR,
                "scenario": STR,
                "ds": TS,
                "resample": STR,
                "model": STR,
                "yhat": F64,
                "yhat_lower": F64,
                "yhat_upper": F64,
                "replicas": F64,
                "capacity_limit": F64,
                "saturation_at": TS,
                "accuracy": F64,
                "band_low": F64,
                "band_high": F64,
                "status": STR,
                "reason": STR,
            },
            ("run_date", "service", "metric", "horizon", "scenario", "ds"),
            "run_date",
            part_by="service",
        ),
        # Forecasts of earlier runs scored against the actuals that have arrived since, by days ahead.
        _table(
            "forecast_accuracy",
            {
                "run_date": STR,
                "service": STR,
                "metric": STR,
                "model": STR,
                "horizon_days": I64,
                "points": I64,
                "mae": F64,
                "mape": F64,
                "coverage": F64,
                "scored_at": TS,
            },
            ("run_date", "service", "metric", "horizon_days"),
            "run_date",
            part_by="service",
        ),
        _table(
            "findings",
            {
                "window_start": TS,
                "window_end": TS,
                "service": STR,
                "tier": STR,
                "type": STR,
                "confidence": F64,
                "start": TS,
                "end": TS,
                "kind": STR,
                "root_causes": STR,
                "evidence": STR,
                "remedy": STR,
                "severity": STR,
                "summary": STR,
            },
            ("window_end", "service", "kind", "type", "start"),
            "date:window_end",
        ),
        # Per analysis: the tier's SLOs, the rolling error budget, burn-rate alerts (JSON) and USE figures (JSON).
        _table(
            "slo_status",
            {
                "window_end": TS,
                "service": STR,
                "tier": STR,
                "latency_percentile": I64,
                "latency_slo_ms": F64,
                "latency_observed_ms": F64,
                "latency_compliance": F64,
                "uptime_slo": F64,
                "availability": F64,
                "error_budget_remaining": F64,
                "budget_consumed": F64,
                "burn_rate": F64,
                "budget_exhausted_at": TS,
                "alert": STR,
                "burn_alerts": STR,
                "use": STR,
                "status": STR,
            },
            ("window_end", "service"),
            "date:window_end",
        ),
        # Every decision and action: applied, dry-run, skipped, failed.
        _table(
            "audit",
            {
                "audit_id": STR,
                "created_at": TS,
                "kind": STR,
                "service": STR,
                "action": STR,
                "status": STR,
                "dry_run": BOOL,
                "executor": STR,
                "before": STR,
                "after": STR,
                "reason": STR,
                "detail": STR,
                "dag_id": STR,
                "run_id": STR,
                "task_id": STR,
            },
            ("audit_id",),
            "kind",  # the key (audit_id) hashes the kind, so a record never moves partition
        ),
        # Alert incidents and what was told about them (include/headroom/alerts): one row per incident episode,
        # so a retried or re-run evaluation finds what it already sent.
        _table(
            "alerts",
            {
                "incident_key": STR,
                "service": STR,
                "kind": STR,
                "subject": STR,
                "tier": STR,
                "owner": STR,
                "episode": TS,
                "status": STR,
                "severity": STR,
                "summary": STR,
                "link": STR,
                "detail": STR,
                "opened_at": TS,
                "updated_at": TS,
                "resolved_at": TS,
                "notified_action": STR,
                "notified_severity": STR,
                "notified_at": TS,
                "notify_log": STR,
                "delivery": STR,
                "held": STR,
            },
            ("incident_key",),
        ),
        # Records landed by connector syncs, idempotent by (connector, object, record id, version).
        _table(
            "connector_records",
            {"connector": STR, "object": STR, "record_id": STR, "version": STR, "payload": STR, "landed_at": TS},
            ("connector", "object", "record_id", "version"),
            "connector",
        ),
    )
}


def table(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise SchemaError(f"unknown table {name!r}; tables are {sorted(TABLES)}") from None


def format_labels(labels: Mapping[str, str] | None) -> str:
    """Canonical label string: ``k=v`` pairs sorted by key, comma separated; empty for none."""
    if not labels:
        return ""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))
