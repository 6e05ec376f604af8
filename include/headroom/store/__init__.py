"""The store: one protocol, two backends and every named query the code runs.

- ``base``: the :class:`Store` protocol, :class:`UpsertResult`, :func:`in_list` and the reads both backends share;
- ``parquet``: :class:`ParquetStore`, partitioned Parquet queried through DuckDB (the embedded default);
- ``postgres``: :class:`PostgresStore`, the same tables in a PostgreSQL schema;
- ``factory``: :func:`open_store`, the configured backend (``store.yaml``, ``$HEADROOM_STORE_BACKEND``);
- ``queries``: the named queries, their SQL per dialect. No SQL is written outside this package.

The two backends never import each other.
"""

from __future__ import annotations

from include.headroom.store.base import Dialect, Store, UpsertResult, in_list
from include.headroom.store.factory import open_store
from include.headroom.store.parquet import ParquetStore
from include.headroom.store.postgres import PostgresStore

__all__ = ["Dialect", "ParquetStore", "PostgresStore", "Store", "UpsertResult", "in_list", "open_store"]
