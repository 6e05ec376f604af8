"""HeadroomStoreHook: owns the connection to the metrics store (embedded Parquet, or PostgreSQL by configuration)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

if TYPE_CHECKING:
    from include.headroom.store import Store


class HeadroomStoreHook(BaseHook):
    """The metrics store.

    The store itself comes from the library's one factory, :func:`include.headroom.store.open_store`;
    this hook only supplies what Airflow owns. With the default backend (``store.yaml``
    ``backend: parquet``, ``$HEADROOM_STORE_BACKEND`` overrides it), the embedded Parquet + DuckDB
    store: the connection's extra ``{"path": "..."}`` names the store's folder; without the
    connection it lives in ``$HEADROOM_DATA_DIR/store`` (default ``<project>/data/store``). With
    ``backend: postgres``, the tables live in PostgreSQL, reached through ``store.yaml``'s
    connection (``postgres_headroom``, through ``PostgresHook``); when that connection is not
    defined, ``$HEADROOM_POSTGRES_DSN`` as outside Airflow.
    """

    conn_name_attr = "headroom_conn_id"
    default_conn_name = "headroom_store"
    conn_type = "fs"
    hook_name = "headroom store"

    def __init__(self, headroom_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.headroom_conn_id = headroom_conn_id

    def store_path(self) -> Path:
        from include.headroom.config import data_dir

        try:
            extra = self.get_connection(self.headroom_conn_id).extra_dejson
        except AirflowNotFoundException:
            self.log.info("No connection '%s': using the default store under %s", self.headroom_conn_id, data_dir())
            return data_dir() / "store"
        path = extra.get("path")
        return Path(os.path.expandvars(path)) if path else data_dir() / "store"

    def get_conn(self) -> Store:
        return self.get_store()

    def backend(self) -> str:
        """``parquet`` or ``postgres``, from ``store.yaml`` (``$HEADROOM_STORE_BACKEND`` overrides it)."""
        from include.headroom.metrics.source_config import load_store_settings

        return load_store_settings().backend

    def get_store(self) -> Store:
        """The configured store through :func:`~include.headroom.store.open_store`, with this hook's folder or PostgreSQL connection."""
        from include.headroom.metrics.source_config import load_store_settings
        from include.headroom.store import open_store

        settings = load_store_settings()
        if settings.backend != "postgres":
            return open_store(self.store_path(), backend=settings.backend)
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        try:
            self.get_connection(settings.postgres_conn_id)
        except AirflowNotFoundException:
            self.log.info("No connection '%s': the PostgreSQL store through HEADROOM_POSTGRES_DSN", settings.postgres_conn_id)
            return open_store(backend="postgres")
        self.log.info("Store: PostgreSQL through connection '%s', schema %s", settings.postgres_conn_id, settings.postgres_schema)
        return open_store(backend="postgres", connect=PostgresHook(postgres_conn_id=settings.postgres_conn_id).get_conn)

    def test_connection(self) -> tuple[bool, str]:
        if self.backend() == "postgres":
            from include.headroom.exceptions import StoreError

            store = self.get_store()
            try:
                rows = store.count("metrics")
            except StoreError as exc:
                return False, str(exc)
            return True, f"PostgreSQL store schema {store.schema!r} is reachable ({rows} metric rows)"
        path = self.store_path()
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            return False, f"store folder {path} is not writable: {exc}"
        return True, f"store folder {path} is writable"
