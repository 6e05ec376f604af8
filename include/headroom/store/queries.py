"""Every named query the code runs against the store, with its SQL per backend dialect.

Callers ask for what they need (``latest_capacity(store, as_of)``) and never write SQL: the text
lives here, portable where both dialects agree, one text per dialect where they differ (DuckDB's
``arg_max`` has no PostgreSQL equivalent: PostgreSQL gets ``DISTINCT ON``). Each query takes
``?`` placeholders and returns a pandas frame (or a scalar) with UTC timestamps.

Also here: the read-model helpers the steps and the report share (:func:`by_service`, :func:`rows_of`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from include.headroom.metrics.schema import table
from include.headroom.store.base import Dialect, Store, in_list
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd


def _per_dialect(store: Store, **texts: str) -> str:
    """The SQL text for ``store``'s dialect among ``texts`` (keyword = dialect value)."""
    dialect = Dialect(getattr(store, "dialect", Dialect.DUCKDB)).value
    try:
        return texts[dialect]
    except KeyError:
        raise NotImplementedError(f"no SQL for dialect {dialect!r}; known: {sorted(texts)}") from None


def _ts(value: Any) -> datetime:
    return utc(value).to_pydatetime()


def _order(name: str) -> str:
    return ", ".join(f'"{c}"' for c in table(name).sort_by) or "1"


# -- frames per service ------------------------------------------------------------------------------------------


def by_service(frame: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """The rows of ``frame`` per service, split in one pass: filtering the whole frame once per service costs the
    fleet's size squared (at 1,000 services, most of a batch task's time)."""
    if frame is None or not len(frame):
        return {}
    return dict(tuple(frame.groupby("service", sort=False)))


def rows_of(split: Mapping[str, pd.DataFrame], name: str, frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """``name``'s rows from :func:`by_service` output; none (with ``frame``'s columns) when it has no rows."""
    if name in split:
        return split[name]
    return None if frame is None else frame.iloc[0:0]


# -- any table ---------------------------------------------------------------------------------------------------


def empty(store: Store, name: str) -> pd.DataFrame:
    """No rows of table ``name``, with its columns and types."""
    return store.query(f"SELECT * FROM {table(name).name} WHERE false")


def rows_where_in(store: Store, name: str, column: str, values: Sequence[Any]) -> pd.DataFrame:
    """The rows of ``name`` whose ``column`` is one of ``values``, in key order."""
    if column not in table(name).columns:
        raise ValueError(f"table {name!r} has no column {column!r}")
    clause, params = in_list(f'"{column}"', values)
    return store.query(f"SELECT * FROM {name} WHERE {clause} ORDER BY {_order(name)}", params)


def duplicate_keys(store: Store, name: str) -> int:
    """How many keys of ``name`` are held by more than one row (0 in a healthy store: every write is an upsert)."""
    key = ", ".join(f'"{c}"' for c in table(name).key)
    sql = f"SELECT count(*) AS n FROM (SELECT {key} FROM {name} GROUP BY {key} HAVING count(*) > 1) AS dupes"
    return int(store.query(sql)["n"].iloc[0])


# -- ingest and validation ---------------------------------------------------------------------------------------


def new_staged_rows(store: Store, batch_id: str, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """Rows of staged batch ``batch_id`` whose key is not yet in ``metrics`` (``metrics`` looked up in ``[start, end)``)."""
    sql = (
        "SELECT count(*) AS n FROM (SELECT service, metric, labels, ts FROM staging WHERE batch_id = ?) s "
        "LEFT JOIN (SELECT service, metric, labels, ts FROM metrics WHERE ts >= ? AND ts < ?) m "
        "ON m.service = s.service AND m.metric = s.metric AND m.labels = s.labels AND m.ts = s.ts WHERE m.ts IS NULL"
    )
    return int(store.query(sql, [batch_id, _ts(start), _ts(end)])["n"].iloc[0])


def staged_batches(store: Store) -> pd.DataFrame:
    """Batches waiting for validation, oldest interval first."""
    return store.query("SELECT * FROM batches WHERE status = 'staged' ORDER BY interval_end")


def pending_batches(store: Store, claimed_before: pd.Timestamp) -> pd.DataFrame:
    """Batches waiting for validation (staged, or claimed by a validation before ``claimed_before`` that never finished)."""
    return store.query("SELECT * FROM batches WHERE status = 'staged' OR (status = 'validating' AND validated_at < ?) "
                       "ORDER BY interval_end", [_ts(claimed_before)])


def metrics_in_batch(store: Store, batch_id: str, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """How many ``metrics`` rows with ``start <= ts <= end`` are stored under ``batch_id``."""
    found = store.query("SELECT count(*) AS n FROM metrics WHERE batch_id = ? AND ts >= ? AND ts <= ?",
                        [batch_id, _ts(start), _ts(end)])
    return int(found["n"].iloc[0])


def staged_rows(store: Store, batch_id: str) -> pd.DataFrame:
    """The staged rows of one batch, by series and time."""
    return store.query("SELECT * FROM staging WHERE batch_id = ? ORDER BY service, metric, ts", [batch_id])


def batch_metrics(store: Store, batch_id: str) -> pd.DataFrame:
    """The validated rows a batch brought into ``metrics``."""
    return store.query("SELECT * FROM metrics WHERE batch_id = ? ORDER BY service, metric, ts", [batch_id])


def latest_validations(store: Store, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per service (and ``*``), the newest validation result of a batch whose interval ended by ``as_of``."""
    return store.query(
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY service ORDER BY interval_end DESC, validated_at DESC) AS n "
        "FROM validation_results WHERE interval_end <= ?) AS latest WHERE n = 1",
        [_ts(as_of)],
    )


def newest_points(store: Store, services: Sequence[str], until: pd.Timestamp, since: pd.Timestamp | None = None) -> pd.DataFrame:
    """``service``, ``newest``: each of ``services``' newest validated point at or before ``until`` (and at or after ``since``)."""
    clause, params = in_list("service", services)
    window = " AND ts >= ?" if since is not None else ""
    params += [_ts(until)] + ([_ts(since)] if since is not None else [])
    return store.query(f"SELECT service, max(ts) AS newest FROM metrics WHERE {clause} AND ts <= ?{window} GROUP BY service", params)


# -- quarantine --------------------------------------------------------------------------------------------------


def _quarantine_filters(batch_id: str | None, service: str | None, rows: Sequence[int] | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if batch_id:
        clauses.append("batch_id = ?")
        params.append(batch_id)
    if service:
        clauses.append("service = ?")
        params.append(service)
    if rows:
        clause, more = in_list('"row"', [int(r) for r in rows])
        clauses.append(clause)
        params += more
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def quarantine_counts(store: Store, batch_id: str | None = None, service: str | None = None) -> pd.DataFrame:
    """Quarantined rows counted per batch, series and failed expectations, with their first and last timestamps."""
    where, params = _quarantine_filters(batch_id, service, None)
    return store.query(
        "SELECT batch_id, service, metric, failed_expectations, count(*) AS rows, min(ts) AS first_ts, max(ts) AS last_ts "
        f"FROM quarantine {where} GROUP BY batch_id, service, metric, failed_expectations "
        "ORDER BY batch_id, service, metric, failed_expectations",
        params,
    )


def quarantined_rows(store: Store, batch_id: str | None = None, service: str | None = None,
                     rows: Sequence[int] | None = None) -> pd.DataFrame:
    """The quarantined rows themselves (optionally of a batch, a service, some row numbers), by batch and row."""
    where, params = _quarantine_filters(batch_id, service, rows)
    return store.query(f'SELECT * FROM quarantine {where} ORDER BY batch_id, "row"', params)


def quarantined_per_service(store: Store, batch_id: str) -> pd.DataFrame:
    """``service``, ``n``: rows of ``batch_id`` still in quarantine, per service."""
    return store.query("SELECT service, count(*) AS n FROM quarantine WHERE batch_id = ? GROUP BY service", [batch_id])


# -- forecasts and capacity --------------------------------------------------------------------------------------


def earlier_forecasts(store: Store, before_run: str, oldest_run: str, until: pd.Timestamp, services: Sequence[str]) -> pd.DataFrame:
    """Forecasts of ``services`` made by runs in ``[oldest_run, before_run)`` for times up to ``until`` (to score them)."""
    clause, params = in_list("service", services)
    # in key order: scoring reads each run's step from consecutive rows (an unordered heap, as PostgreSQL's, would shift it)
    return store.query(f"SELECT * FROM forecasts WHERE run_date < ? AND run_date >= ? AND ds <= ? AND {clause} "
                       f"ORDER BY {_order('forecasts')}", [before_run, oldest_run, _ts(until), *params])


def latest_capacity(store: Store, as_of: pd.Timestamp, services: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The newest capacity rows and their forecasts made on or before ``as_of`` (of ``services`` only, when given)."""
    run = store.query("SELECT max(run_date) AS d FROM capacity WHERE run_date <= ?", [f"{as_of:%Y-%m-%d}"])["d"].iloc[0]
    if run is None or run != run:
        return empty(store, "capacity"), empty(store, "forecasts")
    if services is None:
        return store.read("capacity", run_date=run), store.read("forecasts", run_date=run)
    clause, params = in_list("service", services)
    capacity, forecasts = (store.query(f"SELECT * FROM {name} WHERE run_date = ? AND {clause} ORDER BY {_order(name)}", [run, *params])
                           for name in ("capacity", "forecasts"))
    return capacity, forecasts


def run_forecasts(store: Store, run_date: str, metric: str, services: Sequence[str]) -> pd.DataFrame:
    """One run's forecasts of ``metric`` for ``services``, by service and time."""
    clause, params = in_list("service", services)
    return store.query(f"SELECT * FROM forecasts WHERE run_date = ? AND metric = ? AND {clause} ORDER BY service, ds",
                       [run_date, metric, *params])


def planned_earlier(
    store: Store, metric: str, before_run: str, start: pd.Timestamp, end: pd.Timestamp, services: Sequence[str]
) -> pd.DataFrame:
    """``service``, ``ds``, ``replicas``: for each hour in ``[start, end]``, the replicas the newest run before ``before_run`` planned."""
    clause, params = in_list("service", services)
    where = f"metric = ? AND run_date < ? AND ds >= ? AND ds <= ? AND replicas IS NOT NULL AND {clause}"
    sql = _per_dialect(
        store,
        duckdb=f"SELECT service, ds, arg_max(replicas, run_date) AS replicas FROM forecasts WHERE {where} GROUP BY service, ds "
               "ORDER BY service, ds",
        postgres=f"SELECT DISTINCT ON (service, ds) service, ds, replicas FROM forecasts WHERE {where} ORDER BY service, ds, run_date DESC",
    )
    return store.query(sql, [metric, before_run, _ts(start), _ts(end), *params])


def scenarios_of_run(store: Store, run_date: str | None) -> pd.DataFrame:
    """The what-if scenarios of one forecast run (none without a run)."""
    return store.read("scenarios", run_date=run_date) if run_date else empty(store, "scenarios")


def accuracy_until(store: Store, run_date: str) -> pd.DataFrame:
    """Every accuracy score of forecasts made on or before ``run_date``."""
    return store.query(f"SELECT * FROM forecast_accuracy WHERE run_date <= ? ORDER BY {_order('forecast_accuracy')}", [run_date])


def recent_accuracy(store: Store, as_of: pd.Timestamp, metric: str, days: int = 2) -> pd.DataFrame:
    """The first-day accuracy scores (``horizon_days`` 1) of ``metric``'s forecasts made by runs in the ``days`` before
    ``as_of`` (UTC dates, ``as_of``'s day included), by service and run: what the live predictive floors trust."""
    from datetime import timedelta

    first = f"{as_of - timedelta(days=days):%Y-%m-%d}"
    return store.query(
        f"SELECT * FROM forecast_accuracy WHERE metric = ? AND horizon_days = 1 AND run_date >= ? AND run_date <= ? "
        f"ORDER BY {_order('forecast_accuracy')}",
        [metric, first, f"{as_of:%Y-%m-%d}"],
    )


def accuracy_by_run(store: Store, run_date: str) -> pd.DataFrame:
    """Accuracy per (run, metric, model, days ahead) over the fleet, runs on or before ``run_date``.

    Counted series and points, median MAPE and coverage.
    """
    return store.query(
        "SELECT run_date, metric, model, horizon_days, count(*) AS series, CAST(sum(points) AS DOUBLE PRECISION) AS points, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY mape) AS mape, percentile_cont(0.5) WITHIN GROUP (ORDER BY coverage) AS coverage "
        "FROM forecast_accuracy WHERE run_date <= ? GROUP BY run_date, metric, model, horizon_days "
        "ORDER BY run_date, metric, model, horizon_days",
        [run_date],
    )


def slot_means(
    store: Store, services: Sequence[str], metrics: Sequence[str], start: pd.Timestamp, end: pd.Timestamp, step_s: int
) -> pd.DataFrame:
    """``service``, ``metric``, ``ts`` (start of a ``step_s`` slot, UTC), ``value`` (the mean of the points in it) and ``points``
    (how many), in ``[start, end)``.

    What the forecasts read: a slot's mean is what resampling the raw points gives, computed
    where the points are, so a batch reads one row per hour instead of twelve; with ``points``,
    longer means (a day's) follow exactly without reading the points again.
    """
    s_clause, s_params = in_list("service", services)
    m_clause, m_params = in_list("metric", metrics)
    step = int(step_s)
    if step < 1:
        raise ValueError(f"step_s={step_s!r} must be a whole number of seconds, at least 1")
    slot = _per_dialect(store, duckdb=f"to_timestamp(floor(epoch(ts) / {step}) * {step})",
                        postgres=f"to_timestamp(floor(extract(epoch FROM ts) / {step}) * {step})")
    return store.query(
        f"SELECT service, metric, {slot} AS ts, avg(value) AS value, count(*) AS points FROM metrics "
        f"WHERE {s_clause} AND {m_clause} AND ts >= ? AND ts < ? "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        [*s_params, *m_params, _ts(start), _ts(end)], via_arrow=True,
    )


def daily_means(store: Store, metric: str, before: pd.Timestamp, services: Sequence[str] | None = None) -> pd.DataFrame:
    """``service``, ``ds`` (UTC day), ``y``: the daily mean of ``metric`` per service before ``before``.

    Of ``services`` only, when given.
    """
    clause, params = in_list("service", services) if services is not None else ("true", [])
    return store.query(
        f"SELECT service, date_trunc('day', ts) AS ds, avg(value) AS y FROM metrics WHERE metric = ? AND ts < ? AND {clause} "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        [metric, _ts(before), *params],
    )


def capacity_plans_of_run(store: Store, run_date: str | None, services: Sequence[str] | None = None) -> pd.DataFrame:
    """The medium and long capacity plans of one forecast run (of ``services`` only, when given), in key order."""
    if not run_date:
        return empty(store, "capacity_plans")
    clause, params = in_list("service", services) if services is not None else ("true", [])
    return store.query(f"SELECT * FROM capacity_plans WHERE run_date = ? AND {clause} ORDER BY {_order('capacity_plans')}",
                       [run_date, *params])


def newest_values(store: Store, metric: str, until: pd.Timestamp, since: pd.Timestamp) -> pd.DataFrame:
    """``service``, ``value``: each service's newest value of ``metric`` in ``(since, until]``."""
    where = "metric = ? AND ts <= ? AND ts > ?"
    sql = _per_dialect(
        store,
        duckdb=f"SELECT service, arg_max(value, ts) AS value FROM metrics WHERE {where} GROUP BY service",
        postgres=f"SELECT DISTINCT ON (service) service, value FROM metrics WHERE {where} ORDER BY service, ts DESC",
    )
    return store.query(sql, [metric, _ts(until), _ts(since)])


# -- analysis ----------------------------------------------------------------------------------------------------


def recent_findings(store: Store, as_of: pd.Timestamp, hours: float = 24.0 * 14) -> pd.DataFrame:
    """Findings of the newest analysis at or before ``as_of`` whose episode ended within ``hours``."""
    import pandas as pd

    now = as_of
    last = store.query("SELECT max(window_end) AS w FROM findings WHERE window_end <= ?", [now.to_pydatetime()])["w"].iloc[0]
    if last is None or last != last:
        return empty(store, "findings")
    return store.query('SELECT * FROM findings WHERE window_end = ? AND "end" >= ? ORDER BY service, start',
                       [_ts(last), (now - pd.Timedelta(hours=hours)).to_pydatetime()])


def latest_slo(store: Store, now: pd.Timestamp) -> pd.DataFrame:
    """The newest SLO status per service at or before ``now``."""
    return store.query("SELECT * FROM slo_status WHERE window_end = (SELECT max(window_end) FROM slo_status WHERE window_end <= ?) "
                       "ORDER BY service", [_ts(now)])


def slo_rows_per_service(store: Store, window_end: pd.Timestamp) -> pd.DataFrame:
    """``service``, ``window_end``, ``n``: SLO rows per service of one analysis window (1 each when writes are idempotent)."""
    return store.query("SELECT service, window_end, count(*) AS n FROM slo_status WHERE window_end = ? GROUP BY service, window_end",
                       [_ts(window_end)])


# -- audit -------------------------------------------------------------------------------------------------------


def audit_listing(store: Store, kind: str, limit: int) -> pd.DataFrame:
    """The ``limit`` newest audit records of ``kind``: when, service, action, status and reason."""
    return store.query("SELECT created_at, kind, service, action, status, reason FROM audit WHERE kind = ? "
                       "ORDER BY created_at DESC LIMIT ?", [kind, int(limit)])


def scaling_actions_of_run(store: Store, run_id: str) -> pd.DataFrame:
    """``service``, ``action``, ``task_id``, ``n``, ``applied``: the scaling audit records of one DAG run, counted."""
    return store.query(
        "SELECT service, action, task_id, count(*) AS n, sum(CASE WHEN status = 'applied' THEN 1 ELSE 0 END) AS applied "
        "FROM audit WHERE kind = 'scaling' AND run_id = ? GROUP BY service, action, task_id",
        [run_id],
    )
