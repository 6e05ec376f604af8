"""Validation results as data: one row per (batch, service) with success, statistics and failed expectations."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from include.headroom.store import queries
from include.headroom.timeutil import utc
from include.headroom.validation.batch_records import compare_and_set
from include.headroom.validation.gates import ALL_SERVICES

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig
    from include.headroom.store import Store
    from include.headroom.validation.suites import ValidationOutcome


def service_results(
    config: HeadroomConfig,
    outcome: ValidationOutcome,
    interval_start: pd.Timestamp,
    interval_end: pd.Timestamp,
    validated_at: Any,
    data_docs: str = "",
) -> pd.DataFrame:
    """Rows for the ``validation_results`` table: per service in the batch, whether its validation passed.

    A service fails when the batch failed as a whole or when the share of its rows quarantined passes
    its tier's ``max_failure_ratio``. A batch whose rows name no known service (empty, no service
    column) gets one row for service ``*``, which the gates apply to every service.
    """
    import pandas as pd

    rules = config.pipeline.validation
    known = {s.name: s for s in config.services}
    rows_all = outcome.all_rows()
    base = {
        "batch_id": outcome.batch_id,
        "interval_start": utc(interval_start),
        "interval_end": utc(interval_end),
        "validated_at": utc(validated_at),
        "batch_failure": outcome.batch_failure or "",
        "data_docs": data_docs,
    }
    records: list[dict[str, Any]] = []
    services = sorted(s for s in rows_all["service"].dropna().astype(str).unique() if s in known) if "service" in rows_all else []
    if outcome.batch_failure or not services:
        records.append(_record(base, ALL_SERVICES, "", outcome, None, rules.max_failure_ratio.default))
    for name in services:
        tier = known[name].tier.value
        records.append(_record(base, name, tier, outcome, name, rules.max_failure_ratio.for_tier(tier)))
    return pd.DataFrame(records)


def _record(
    base: dict[str, Any], service: str, tier: str, outcome: ValidationOutcome, only: str | None, max_ratio: float
) -> dict[str, Any]:
    """One service's (or, with ``only=None``, the whole batch's) result row."""
    import pandas as pd

    def part(frame: pd.DataFrame) -> pd.DataFrame:
        if only is None or "service" not in frame or frame.empty:
            return frame
        return frame[frame["service"].astype(str) == only]

    valid, quarantined = part(outcome.valid), part(outcome.quarantined)
    rows_in = len(valid) + len(quarantined)
    ratio = len(quarantined) / rows_in if rows_in else 0.0
    failed_counts: dict[str, int] = {}
    if len(quarantined):
        for names in quarantined["failed_expectations"]:
            for name in str(names).split(";"):
                failed_counts[name] = failed_counts.get(name, 0) + 1
    warnings = sorted({w["expectation"] for w in outcome.warnings if only is None or w.get("service") == only})
    newest = pd.to_datetime(valid["ts"], utc=True).max() if len(valid) else None
    success = not outcome.batch_failure and ratio <= max_ratio
    stats = {
        "expectations": outcome.results,  # GX runs whole suites over the batch: their statistics are batch-wide
        "warnings": [w for w in outcome.warnings if only is None or w.get("service") == only],
    }
    return {
        **base,
        "service": service,
        "tier": tier,
        "success": bool(success),
        "rows_in": rows_in,
        "rows_valid": len(valid),
        "rows_quarantined": len(quarantined),
        "failure_ratio": ratio,
        "max_failure_ratio": max_ratio,
        "newest_ts": newest if newest is not None and newest == newest else None,
        "failed_expectations": json.dumps({"quarantined": failed_counts, "warnings": warnings}, sort_keys=True),
        "statistics": json.dumps(stats, default=str),
    }


def store_outcome(
    store: Store,
    config: HeadroomConfig,
    outcome: ValidationOutcome,
    batch: Mapping[str, Any],
    reports_dir: str | Path | None = None,
    claimed: bool = False,
) -> dict[str, Any]:
    """Write one validated batch: valid rows to ``metrics``, failing rows to ``quarantine``, per-service results,
    the batch's status, and its Data Docs; the batch leaves ``staging``.

    :param batch: the batch's ``batches`` row (batch_id, source, interval_start, interval_end, ingested_at, ...).
    :param claimed: the batch was claimed (:func:`~include.headroom.validation.batch_records.claim_batch`): its record and staging are
        written only while the claim holds (compare-and-set), so a batch staged again meanwhile keeps its new rows.
        The record counts every row stored under the batch, so it matches its rows even when two stagings of the
        same interval were validated.
    :returns: the batch summary (status, counts, failed services, Data Docs path, and a message naming
        series, expectations and rows when anything was quarantined).
    """
    import pandas as pd

    validated_at = pd.Timestamp.now(tz="UTC")
    docs = ""
    if config.pipeline.validation.data_docs:
        from include.headroom.validation.docs import render_batch_docs

        docs = str(render_batch_docs(outcome, validated_at, reports_dir))
    if len(outcome.valid):
        store.upsert("metrics", outcome.valid)
    # A re-validated batch replaces its quarantine rows instead of adding to them.
    store.replace_partition("quarantine", outcome.batch_id, outcome.quarantined)
    per_service = service_results(config, outcome, batch["interval_start"], batch["interval_end"], validated_at, docs)
    store.upsert("validation_results", per_service)
    failed_services = sorted(per_service.loc[~per_service["success"], "service"])
    status = "failed" if failed_services else "validated"
    newest = pd.to_datetime(outcome.valid["ts"], utc=True).max() if len(outcome.valid) else batch.get("newest_ts")
    dup = batch.get("rows_duplicate")
    duplicates = int(dup) if dup is not None and dup == dup else 0
    stored = _stored_under(store, outcome, batch)
    if stored > len(outcome.valid):
        log.warning(
            "Batch %s: %d rows stored under it by an earlier staging of the same interval count in its record",
            outcome.batch_id,
            stored - len(outcome.valid),
        )
    record = {
        **{k: batch.get(k) for k in ("batch_id", "source", "interval_start", "interval_end", "ingested_at")},
        "newest_ts": newest if newest is not None and newest == newest else None,
        "status": status,
        "rows_in": stored + len(outcome.quarantined) + duplicates,
        "rows_valid": stored,
        "rows_quarantined": len(outcome.quarantined),
        "rows_duplicate": duplicates,
        "validated_at": validated_at,
        "failed_expectations": outcome.summary(),
    }

    def ours(current: Mapping[str, Any] | None) -> bool:
        if claimed and not (
            current is not None and str(current["status"]) == "validating" and utc(current["ingested_at"]) == utc(batch["ingested_at"])
        ):
            return False
        store.replace_partition("staging", outcome.batch_id, queries.empty(store, "staging"))  # under the lock
        return True

    if not compare_and_set(store, "batches", record, ours):
        log.warning("Batch %s was staged again while it was validated: its new staging is left for the next validation", outcome.batch_id)
    return {
        "batch_id": outcome.batch_id,
        "status": status,
        "rows_in": record["rows_in"],
        "rows_valid": stored,
        "rows_quarantined": len(outcome.quarantined),
        "rows_duplicate": duplicates,
        "failed_services": failed_services,
        "data_docs": docs,
        "message": _message(outcome, per_service, docs, config.pipeline.validation.sample_rows),
    }


def _stored_under(store: Store, outcome: ValidationOutcome, batch: Mapping[str, Any]) -> int:
    """Rows ``metrics`` holds under the batch now (its own valid rows, and any an earlier staging of it stored)."""
    if not len(outcome.valid):
        return 0
    ts = outcome.valid["ts"]
    return max(queries.metrics_in_batch(store, outcome.batch_id, ts.min(), batch["interval_end"]), len(outcome.valid))


def _message(outcome: ValidationOutcome, per_service: pd.DataFrame, docs: str, sample_rows: int) -> str:
    """Empty for a clean batch; else which services failed (share vs their tier's threshold), the series, rows and Data Docs."""
    from include.headroom.validation.suites import describe_failures

    if not len(outcome.quarantined) and not outcome.batch_failure:
        return ""
    failed = per_service[~per_service["success"] & per_service["service"].ne(ALL_SERVICES)]
    head = (
        [
            "  failed services: "
            + ", ".join(f"{r.service} {r.failure_ratio:.1%} > {r.max_failure_ratio:.0%} ({r.tier})" for r in failed.itertuples())
        ]
        if len(failed) and not outcome.batch_failure
        else []
    )
    text = describe_failures(outcome, sample_rows).split("\n")
    return "\n".join([text[0], *head, *text[1:]] + ([f"  Data Docs: {docs}"] if docs else []))


def validate_rows(
    store: Store,
    config: HeadroomConfig,
    rows: pd.DataFrame,
    batch_id: str,
    source: str,
    interval_start: pd.Timestamp,
    interval_end: pd.Timestamp,
    now: pd.Timestamp | None = None,
    reports_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Validate and store a batch held in memory (e.g. from :func:`~include.headroom.validation.csv_batch.read_csv_batch`).

    The batch is registered in ``batches`` like a staged one, so its rows, results and quarantine
    are handled exactly as :func:`include.headroom.steps.validate.validate_pending` handles staged batches.
    """
    import pandas as pd

    from include.headroom.validation.suites import validate_batch

    batch = {
        "batch_id": batch_id,
        "source": source,
        "interval_start": utc(interval_start),
        "interval_end": utc(interval_end),
        "ingested_at": pd.Timestamp.now(tz="UTC"),
        "newest_ts": None,
    }
    outcome = validate_batch(config, rows, batch_id, interval_start, interval_end, now=now)
    return store_outcome(store, config, outcome, batch, reports_dir)
