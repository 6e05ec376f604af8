"""Validate step: staged batches into ``metrics`` or ``quarantine``, and the freshness each decision step is gated on."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig
from include.headroom.exceptions import DataError
from include.headroom.store import queries
from include.headroom.validation.batch_records import CLAIM_TIMEOUT_S, claim_batch
from include.headroom.validation.gates import service_freshness

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from include.headroom.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of each batch validated by one run, in the order they were validated.

    Each outcome is the summary :func:`~include.headroom.validation.results.store_outcome` records: ``batch_id``,
    ``status``, ``rows_in``, ``rows_valid``, ``rows_quarantined``, ``data_docs`` and a ``message`` naming series,
    expectations and rows when rows were quarantined.
    """

    batches: tuple[Mapping[str, Any], ...]

    @property
    def batch_ids(self) -> list[str]:
        return [b["batch_id"] for b in self.batches]

    def to_xcom(self) -> list[dict[str, Any]]:
        return [dict(b) for b in self.batches]


def validate_pending(
    store: Store,
    config: HeadroomConfig,
    now: pd.Timestamp | None = None,
    reports_dir: str | Path | None = None,
    batch_ids: Sequence[str] | None = None,
) -> ValidationResult:
    """Validate every staged batch: valid rows to ``metrics``, failing rows to ``quarantine``; nothing is dropped.

    Each batch's results are stored per service (``validation_results``, read by the gates) and
    rendered as Data Docs under ``reports_dir`` (default ``$HEADROOM_REPORTS_DIR``).

    :param batch_ids: only these staged batches (``ingest-file``); default every staged batch.
    :param now: the validation time (default: the wall clock).
    :returns: one summary per batch; ``message`` names series, expectations and rows when rows were quarantined.
    :raises DataError: after every batch is written, when a batch failed (a batch-level failure, or a
        service's share of quarantined rows past its tier's ``max_failure_ratio``).
    """
    from include.headroom.validation.docs import write_docs_index
    from include.headroom.validation.results import store_outcome
    from include.headroom.validation.suites import validate_batch

    import pandas as pd

    batches = queries.pending_batches(store, pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=CLAIM_TIMEOUT_S))
    if batch_ids is not None:
        batches = batches[batches["batch_id"].isin(list(batch_ids))]
    summaries = []
    for batch in batches.to_dict("records"):
        if not claim_batch(store, batch):
            log.info("Batch %s is being validated by another run (or was staged again): skipped here", batch["batch_id"])
            continue
        rows = staged_as_arrived(queries.staged_rows(store, batch["batch_id"]))
        outcome = validate_batch(config, rows, batch["batch_id"], batch["interval_start"], batch["interval_end"], now=now)
        summaries.append(store_outcome(store, config, outcome, batch, reports_dir, claimed=True))
    if summaries and config.pipeline.validation.data_docs:
        write_docs_index(store.read("batches"), reports_dir)
    failures = [s["message"] for s in summaries if s["status"] == "failed"]
    if failures:
        raise DataError("validation failed:\n" + "\n".join(failures))
    return ValidationResult(tuple(summaries))


def staged_as_arrived(rows: pd.DataFrame) -> pd.DataFrame:
    """Staged rows as the source delivered them: a timestamp written without a zone becomes naive text again.

    Validation then judges it with ``validation.yaml`` ``naive_timestamps``, and a quarantined row keeps it as written.
    """
    if "ts_naive" not in rows.columns:
        return rows
    naive = rows["ts_naive"].fillna(False).astype(bool)
    out = rows.drop(columns=["ts_naive"])
    if naive.any():
        out["ts"] = out["ts"].astype(object)
        out.loc[naive, "ts"] = [t.tz_convert("UTC").tz_localize(None).isoformat() for t in rows.loc[naive, "ts"]]
    return out


def freshness(store: Store, config: HeadroomConfig, as_of: pd.Timestamp) -> dict[str, str | None]:
    """Per catalog service, ``None`` when it may be acted on at ``as_of``, else the reason to refuse (failed validation, stale data).

    Read-only (nothing audited); the decision steps call :func:`~include.headroom.validation.gates.gate_services`.
    """
    return service_freshness(store, config, as_of)
