"""The quarantine: list and show rows that failed validation, and re-admit them after a fix, without duplicates.

Re-admission rebuilds each row as it arrived (``raw_record``), applies a named fix, and
re-validates it with the current configuration *together with the batch's rows already in
``metrics``*, so context rules (duplicates, spikes, stuck series) still apply. Rows that now
pass move to ``metrics`` (upsert by key: never a second copy) and leave the quarantine;
the batch's counts, its per-service results (which the gates read) and the audit trail are
updated. Rows that still fail stay as they are; the result names what they fail now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Mapping, Sequence

from include.headroom.exceptions import DataError
from include.headroom.store import queries

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig
    from include.headroom.store import Store


@dataclass(frozen=True)
class Fix:
    """A named repair applied to quarantined rows (as they arrived) before they are validated again."""

    name: str
    description: str
    apply: Callable[[HeadroomConfig, pd.DataFrame], pd.DataFrame]


def _no_change(config: HeadroomConfig, rows: pd.DataFrame) -> pd.DataFrame:
    return rows


def _seconds_to_ms(config: HeadroomConfig, rows: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    out = rows.copy()
    latency = {m for fam in config.pipeline.validation.families.values() if fam.plausible_ratio for m in fam.metrics}
    mask = out["metric"].isin(latency) & out["unit"].eq("ms")
    out.loc[mask, "value"] = pd.to_numeric(out.loc[mask, "value"], errors="coerce") * 1000.0
    return out


def _ms_labelled_s(config: HeadroomConfig, rows: pd.DataFrame) -> pd.DataFrame:
    """Latency sent in milliseconds under unit 's' was multiplied by 1000 on the way in (s -> ms): divide it back."""
    import pandas as pd

    out = rows.copy()
    latency = {m for fam in config.pipeline.validation.families.values() if fam.plausible_ratio for m in fam.metrics}
    mask = out["metric"].isin(latency) & out["unit"].eq("ms")
    out.loc[mask, "value"] = pd.to_numeric(out.loc[mask, "value"], errors="coerce") / 1000.0
    return out


def _in_zone(zone: str) -> Callable[[HeadroomConfig, pd.DataFrame], pd.DataFrame]:
    """A fix that reads timestamps written without a zone as wall-clock time in ``zone`` (DST gaps and repeats stay unreadable)."""

    def apply(config: HeadroomConfig, rows: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        out = rows.copy()

        def zoned(value: Any) -> Any:
            if isinstance(value, str):
                try:
                    ts = pd.Timestamp(value)
                except (ValueError, TypeError):
                    return value
                if ts.tzinfo is not None:
                    return value
                placed = pd.Series([ts]).dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").iloc[0]
                return placed.isoformat() if placed is not pd.NaT else value
            return value

        out["ts"] = out["ts"].map(zoned)
        return out

    return apply


_assume_utc = _in_zone("UTC")


def _assume_zone(config: HeadroomConfig, rows: pd.DataFrame) -> pd.DataFrame:
    raise DataError("fix 'assume_zone' needs a zone: --fix assume_zone:Europe/Berlin")


def _drop_unknown_columns(config: HeadroomConfig, rows: pd.DataFrame) -> pd.DataFrame:
    from include.headroom.metrics.schema import CANONICAL_COLUMNS

    return rows[[c for c in rows.columns if c in CANONICAL_COLUMNS]]


FIXES: dict[str, Fix] = {
    fix.name: fix
    for fix in (
        Fix("none", "validate again as they are (after a configuration fix: catalog, units, thresholds)", _no_change),
        Fix("seconds_to_ms", "latency values sent in seconds under unit 'ms': multiply by 1000", _seconds_to_ms),
        Fix(
            "ms_labelled_s",
            "latency values sent in milliseconds under unit 's' (multiplied by 1000 on the way in): divide by 1000",
            _ms_labelled_s,
        ),
        Fix("assume_utc", "timestamps written without a zone are taken as UTC", _assume_utc),
        Fix(
            "assume_zone",
            "timestamps written without a zone are wall-clock time in a zone: assume_zone:<IANA zone>, e.g. assume_zone:Europe/Berlin",
            _assume_zone,
        ),
        Fix("drop_unknown_columns", "drop columns outside the canonical schema (schema drift by an added column)", _drop_unknown_columns),
    )
}


def fix_named(fix: str) -> Callable[[HeadroomConfig, pd.DataFrame], pd.DataFrame]:
    """The repair ``fix`` names (``assume_zone:<zone>`` takes its zone after a colon).

    :raises DataError: for an unknown fix or zone, listing the fixes.
    """
    name, _, argument = fix.partition(":")
    if name not in FIXES or bool(argument) != (name == "assume_zone"):
        raise DataError(f"unknown fix {fix!r}; fixes: {', '.join(f'{f.name} ({f.description})' for f in FIXES.values())}")
    if name != "assume_zone":
        return FIXES[name].apply
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(argument)
    except (ZoneInfoNotFoundError, ValueError):
        raise DataError(f"fix {fix!r}: {argument!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
    return _in_zone(argument)


def list_quarantine(store: Store, batch_id: str | None = None, service: str | None = None) -> pd.DataFrame:
    """Quarantined rows counted per batch, series and failed expectations."""
    return queries.quarantine_counts(store, batch_id=batch_id, service=service)


def show_quarantine(
    store: Store,
    batch_id: str | None = None,
    service: str | None = None,
    expectation: str | None = None,
    rows: Sequence[int] | None = None,
    limit: int | None = 50,
) -> pd.DataFrame:
    """The quarantined rows themselves, with the observed value, the raw record and why."""
    found = _with_expectation(queries.quarantined_rows(store, batch_id=batch_id, service=service, rows=rows), expectation)
    return found.head(limit).reset_index(drop=True) if limit else found.reset_index(drop=True)


def _with_expectation(frame: pd.DataFrame, expectation: str | None) -> pd.DataFrame:
    if not expectation or frame.empty:
        return frame
    return frame[frame["failed_expectations"].map(lambda names: expectation in str(names).split(";"))]


def _as_arrived(q: pd.DataFrame) -> pd.DataFrame:
    """Rebuild quarantined rows from their raw records; a line that never split into fields cannot be rebuilt."""
    import pandas as pd

    records = []
    for raw in q["raw_record"]:
        record = json.loads(raw) if raw else {}
        records.append(None if "line" in record and "error" in record else record)
    usable = [r for r in records if r is not None]
    frame = pd.DataFrame(usable, index=[i for i, r in zip(q.index, records, strict=False) if r is not None])
    if "labels" in frame.columns:
        frame["labels"] = frame["labels"].fillna("")
    return frame


def readmit(
    store: Store,
    config: HeadroomConfig,
    batch_id: str,
    fix: str = "none",
    service: str | None = None,
    expectation: str | None = None,
    rows: Sequence[int] | None = None,
    now: pd.Timestamp | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Re-admit the quarantined rows of ``batch_id`` (optionally only a service's, an expectation's or some rows) after ``fix``.

    :returns: counts (``candidates``, ``readmitted``, ``still_quarantined``) and, per remaining row, why it still fails.
    :raises DataError: for an unknown batch or fix.
    """
    import pandas as pd

    from include.headroom.audit import AuditRecord, Status, record
    from include.headroom.validation.suites import validate_batch

    repair = fix_named(fix)
    batch = store.read("batches", batch_id=batch_id)
    if batch.empty:
        raise DataError(f"unknown batch {batch_id!r}: see `quarantine list`")
    meta = batch.iloc[0].to_dict()
    candidates = _with_expectation(queries.quarantined_rows(store, batch_id=batch_id, service=service, rows=rows), expectation)
    candidates = candidates.reset_index(drop=True)
    if candidates.empty:
        return {"batch_id": batch_id, "fix": fix, "candidates": 0, "readmitted": 0, "still_quarantined": 0, "reasons": {}}

    arrived = repair(config, _as_arrived(candidates))
    context = queries.batch_metrics(store, batch_id)
    context_rows = context.drop(columns=["batch_id"]).astype(object)
    combined = pd.concat([context_rows, arrived.astype(object)], ignore_index=True, sort=False)
    start, end = _shifted_interval(candidates, arrived, meta["interval_start"], meta["interval_end"])
    outcome = validate_batch(config, combined, batch_id, start, end, now=now)
    n_context = len(context_rows)
    still = {int(r.row) - n_context: r.failed_expectations for r in outcome.quarantined.itertuples() if r.row >= n_context}
    positions = list(range(len(arrived)))
    passed = [p for p in positions if p not in still]
    readmitted_rows = [int(candidates.loc[arrived.index[p], "row"]) for p in passed]
    result = {
        "batch_id": batch_id,
        "fix": fix,
        "candidates": len(candidates),
        "readmitted": len(passed),
        "still_quarantined": len(candidates) - len(passed),
        "reasons": {int(candidates.loc[arrived.index[p], "row"]): still[p] for p in positions if p in still},
        "rows_readmitted": readmitted_rows,
    }
    unrebuildable = len(candidates) - len(arrived)
    if unrebuildable:
        result["reasons"].update(
            {int(r): "raw line cannot be rebuilt into fields" for r in candidates.loc[~candidates.index.isin(arrived.index), "row"]}
        )
    if dry_run or not passed:
        return result

    valid = _rows_of(outcome, n_context, passed)
    store.upsert("metrics", valid.assign(batch_id=batch_id))
    store.delete("quarantine", pd.DataFrame({"batch_id": [batch_id] * len(readmitted_rows), "row": readmitted_rows}))
    _refresh_counts(store, config, batch_id, meta)
    per_service = valid.groupby("service").size().to_dict()
    record(
        store,
        *[
            AuditRecord(
                kind="quarantine",
                service=str(svc),
                action="readmit",
                status=Status.APPLIED,
                dry_run=False,
                executor="quarantine",
                reason=f"{n} rows of batch {batch_id} re-admitted after fix {fix!r}",
                detail={
                    "batch_id": batch_id,
                    "fix": fix,
                    "rows": [r for r, p in zip(readmitted_rows, passed, strict=False) if valid.loc[p, "service"] == svc],
                },
                run_id=f"readmit {batch_id} {fix} {pd.Timestamp.now(tz='UTC').isoformat()}",
            )
            for svc, n in per_service.items()
        ],
    )
    return result


def _shifted_interval(candidates: pd.DataFrame, fixed: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> tuple[Any, Any]:
    """The batch interval moved by how far a fix re-timed the rows (a zone fix on naive timestamps).

    A naive row was placed in its batch by its wall-clock time; read in its zone it moves by the zone's
    offset, and it is judged against the interval moved the same way, so the fix re-admits what the
    batch held and nothing from outside it.
    """
    import pandas as pd

    if "ts" not in fixed.columns or fixed.empty:
        return start, end
    before = pd.to_datetime(candidates.loc[fixed.index, "ts"], utc=True, errors="coerce")
    after = pd.to_datetime(fixed["ts"].astype(str), utc=True, errors="coerce", format="ISO8601")
    shift = (after - before).dropna()
    if shift.empty:
        return start, end
    return pd.Timestamp(start) + shift.min(), pd.Timestamp(end) + shift.max()


def _rows_of(outcome: Any, offset: int, positions: Sequence[int]) -> pd.DataFrame:
    """The validated, typed rows for the candidates at ``positions`` (indexed by position)."""
    import pandas as pd

    from include.headroom.metrics.schema import CANONICAL_COLUMNS

    valid = outcome.valid
    # ``valid`` keeps the combined frame's index: candidates sit after the context rows.
    picked = valid.loc[[offset + p for p in positions if offset + p in valid.index]]
    picked = picked[list(CANONICAL_COLUMNS)].copy()
    picked.index = [i - offset for i in picked.index]
    picked["ts"] = pd.to_datetime(picked["ts"], utc=True)
    picked["value"] = pd.to_numeric(picked["value"]).astype(float)
    return picked


def _refresh_counts(store: Store, config: HeadroomConfig, batch_id: str, meta: Mapping[str, Any]) -> None:
    """After re-admission: the batch's counts, its status and its per-service results follow the quarantine."""
    import pandas as pd

    left = queries.quarantined_per_service(store, batch_id)
    left_by = dict(zip(left["service"], left["n"], strict=False))
    quarantined = int(sum(left_by.values()))
    dup = meta.get("rows_duplicate")
    # duplicates dropped at the source are not rows to re-admit
    rows_in = int(meta["rows_in"]) - (int(dup) if dup is not None and dup == dup else 0)
    results = store.read("validation_results", batch_id=batch_id)
    if len(results):
        results = results.copy()
        for i, r in results.iterrows():
            if r["service"] == "*":
                q = quarantined
                results.loc[i, "rows_valid"] = rows_in - q
            else:
                q = int(left_by.get(r["service"], 0))
                results.loc[i, "rows_valid"] = int(r["rows_in"]) - q
            results.loc[i, "rows_quarantined"] = q
            total = int(r["rows_in"]) if r["service"] != "*" else rows_in
            ratio = q / total if total else 0.0
            results.loc[i, "failure_ratio"] = ratio
            batch_level = bool(r["batch_failure"]) and q > 0
            results.loc[i, "success"] = bool(not batch_level and ratio <= float(r["max_failure_ratio"]))
            if not batch_level:
                results.loc[i, "batch_failure"] = ""
        store.upsert("validation_results", results)
    failed = len(results) and not results["success"].all()
    store.upsert(
        "batches",
        pd.DataFrame(
            [
                {
                    **meta,
                    "rows_valid": rows_in - quarantined,
                    "rows_quarantined": quarantined,
                    "status": "failed" if failed else "validated",
                }
            ]
        ),
    )
