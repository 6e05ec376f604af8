"""``open_store()``: the one factory of the configured store, used by the library, the CLI and ``HeadroomStoreHook``."""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Callable
from typing import Any

from include.headroom.exceptions import ConfigError
from include.headroom.store.base import Store

POSTGRES_DSN_ENV = "HEADROOM_POSTGRES_DSN"


def open_store(
    root: str | Path | None = None,
    backend: str | None = None,
    connect: Callable[[], Any] | None = None,
) -> Store:
    """The configured store.

    The backend is ``backend`` when given, else ``store.yaml``'s (``$HEADROOM_STORE_BACKEND`` overrides
    the file). ``parquet``: the embedded store in ``root`` (default ``$HEADROOM_DATA_DIR/store``).
    ``postgres``: the tables in ``store.yaml``'s schema, reached through ``connect`` (a function
    returning a new psycopg connection; in Airflow ``HeadroomStoreHook`` passes the
    ``postgres_headroom`` connection's ``PostgresHook.get_conn``), else through ``$HEADROOM_POSTGRES_DSN``
    (a libpq connection string).

    :raises ConfigError: for an unknown backend, or PostgreSQL with neither a connection nor a DSN.
    """
    from include.headroom.metrics.source_config import STORE_BACKENDS, load_store_settings

    settings = load_store_settings()
    chosen = backend or settings.backend
    if chosen not in STORE_BACKENDS:
        raise ConfigError(f"store backend {chosen!r} must be one of {list(STORE_BACKENDS)}")
    if chosen == "postgres":
        from include.headroom.store.postgres import PostgresStore

        return PostgresStore(connect or _dsn_connect(), schema=settings.postgres_schema)
    from include.headroom.config import data_dir
    from include.headroom.store.parquet import ParquetStore

    return ParquetStore(Path(root) if root else data_dir() / "store")


def _dsn_connect() -> Callable[[], Any]:
    dsn = os.environ.get(POSTGRES_DSN_ENV)
    if not dsn:
        raise ConfigError(f"store backend 'postgres' needs {POSTGRES_DSN_ENV} outside Airflow "
                          "(in Airflow: the postgres_headroom connection)")

    def connect() -> Any:
        import psycopg

        return psycopg.connect(dsn)

    return connect
