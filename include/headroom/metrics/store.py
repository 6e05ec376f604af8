"""Re-exports of the embedded store, which moved to :mod:`include.headroom.store` (no logic here).

Kept only so code written against the old path (branches developed in parallel) still imports; new
code imports from ``include.headroom.store``.
"""

from __future__ import annotations

from include.headroom.store.base import UpsertResult
from include.headroom.store.factory import open_store
from include.headroom.store.parquet import DATA_FILE, ROW_GROUP_ROWS, ParquetStore

__all__ = ["DATA_FILE", "ROW_GROUP_ROWS", "ParquetStore", "UpsertResult", "open_store"]
