"""HeadroomStoreHook: owns the connection to the embedded metrics store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

if TYPE_CHECKING:
    from include.headroom.metrics.store import ParquetStore


class HeadroomStoreHook(BaseHook):
    """The embedded Parquet + DuckDB store.

    The connection's extra ``{"path": "..."}`` names the store's folder. Without the
    connection, the store lives in ``$HEADROOM_DATA_DIR/store`` (default
    ``<project>/data/store``).
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

    def get_conn(self) -> ParquetStore:
        return self.get_store()

    def get_store(self) -> ParquetStore:
        from include.headroom.metrics.store import ParquetStore

        return ParquetStore(self.store_path())

    def test_connection(self) -> tuple[bool, str]:
        path = self.store_path()
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            return False, f"store folder {path} is not writable: {exc}"
        return True, f"store folder {path} is writable"
