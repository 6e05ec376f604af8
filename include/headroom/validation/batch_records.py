"""Batch records and watermarks written by compare-and-set under the store's lock, so concurrent runs cannot interleave.

Two ingest and validation runs on one store (``ingest_metrics`` allows several active runs) must not
validate one staging twice, record an empty batch over stored rows, or move a watermark backwards.
Every write of a ``batches`` or ``watermarks`` row goes through :func:`compare_and_set`: the store's
named lock (a file lock on the embedded store, an advisory lock on PostgreSQL) is held while the
current row is read, checked and replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from include.headroom.timeutil import utc

if TYPE_CHECKING:
    from include.headroom.store import ParquetStore

# A batch claimed by a validation that never finished (its process was killed) is claimed again after this long.
CLAIM_TIMEOUT_S = 900
_KEYS = {"batches": ("batch_id",), "watermarks": ("source",)}


def compare_and_set(store: ParquetStore, name: str, row: Mapping[str, Any], check: Callable[[dict[str, Any] | None], bool]) -> bool:
    """Write ``row`` into ``name`` (``batches`` or ``watermarks``) only when ``check`` accepts the stored row with its key
    (``None`` when there is none), all under the store's lock for that key. ``check`` may itself write other tables.

    :returns: whether ``row`` was written.
    """
    import pandas as pd

    key = {k: row[k] for k in _KEYS[name]}
    with store.lock(f"{name}:" + "|".join(str(v) for v in key.values())):
        found = store.read(name, **key)
        current = found.iloc[0].to_dict() if len(found) else None
        if not check(current):
            return False
        store.upsert(name, pd.DataFrame([dict(row)]))
        return True


def same_staging(current: Mapping[str, Any] | None, ingested_at: Any, *statuses: str) -> bool:
    """Whether the stored batch record is still the staging ``ingested_at`` made, in one of ``statuses``."""
    return current is not None and str(current["status"]) in statuses and utc(current["ingested_at"]) == utc(ingested_at)


def advance_watermark(store: ParquetStore, source: str, watermark: Any) -> bool:
    """Move ``source``'s watermark to ``watermark`` unless it is already there or later: it never moves backwards.

    :returns: whether it moved.
    """
    import pandas as pd

    mark = utc(watermark)

    def later(current: Mapping[str, Any] | None) -> bool:
        return current is None or current["watermark"] is None or utc(current["watermark"]) < mark

    return compare_and_set(store, "watermarks", {"source": source, "watermark": mark, "updated_at": pd.Timestamp.now(tz="UTC")}, later)


def claim_batch(store: ParquetStore, batch: Mapping[str, Any]) -> bool:
    """Take a staged batch for validation (``staged`` -> ``validating``): two validations never take the same staging;
    a claim older than :data:`CLAIM_TIMEOUT_S` (a killed validation) can be taken again."""
    import pandas as pd

    claimed_at = pd.Timestamp.now(tz="UTC")

    def free(current: Mapping[str, Any] | None) -> bool:
        if same_staging(current, batch["ingested_at"], "staged"):
            return True
        stale = claimed_at - pd.Timedelta(seconds=CLAIM_TIMEOUT_S)
        taken_at = current.get("validated_at") if current is not None else None
        return same_staging(current, batch["ingested_at"], "validating") and taken_at is not None and taken_at == taken_at \
            and utc(taken_at) < stale

    return compare_and_set(store, "batches", {**batch, "status": "validating", "validated_at": claimed_at}, free)
