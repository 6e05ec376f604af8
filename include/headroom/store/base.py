"""What every store backend shares: the ``Store`` protocol, the upsert result, the ``IN``-list helper and the reads built on ``query``."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from include.headroom.exceptions import StoreError
from include.headroom.metrics.schema import TableSpec, table

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd


class Dialect(StrEnum):
    """The SQL a backend's ``query`` speaks; named queries pick their text by it."""

    DUCKDB = "duckdb"
    POSTGRES = "postgres"


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert did: rows whose key was new, rows that replaced an existing key."""

    table: str
    inserted: int
    updated: int
    partitions: int

    @property
    def written(self) -> int:
        return self.inserted + self.updated


@runtime_checkable
class Store(Protocol):
    """What the pipeline's steps, the report and the tools need from a store, whichever backend holds the tables.

    Writes are idempotent by each table's key (``metrics/schema.py``); reads come back as pandas
    frames with UTC timestamps. SQL is spoken only by :mod:`include.headroom.store.queries`, which
    picks its text by :attr:`dialect`.
    """

    dialect: Dialect

    def upsert(self, name: str, rows: pd.DataFrame) -> UpsertResult: ...

    def replace_partition(self, name: str, partition_value: str, rows: pd.DataFrame) -> UpsertResult: ...

    def delete(self, name: str, keys: pd.DataFrame) -> int: ...

    def query(self, sql: str, params: Sequence[Any] | None = None, via_arrow: bool = False) -> pd.DataFrame: ...

    def read(self, name: str, **equals: Any) -> pd.DataFrame: ...

    def read_metrics(self, services: Sequence[str] | None = None, metrics: Sequence[str] | None = None, start: pd.Timestamp | None = None,
                     end: pd.Timestamp | None = None) -> pd.DataFrame: ...

    def count(self, name: str) -> int: ...

    def files(self, name: str) -> list[Path]: ...

    def lock(self, name: str) -> AbstractContextManager[None]:
        """Hold the store-wide lock ``name`` (across processes and workers) for a read-modify-write such as advancing a watermark."""
        ...


def in_list(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``column IN (?, ...)`` with its parameters; an empty ``values`` matches nothing (``false``), never every row.

    >>> in_list("service", ["a", "b"])
    ('service IN (?, ?)', ['a', 'b'])
    """
    values = list(values)
    if not values:
        return "false", []
    return f"{column} IN ({', '.join('?' * len(values))})", values


def fill_columns(spec: TableSpec, keys: pd.DataFrame) -> pd.DataFrame:
    """Give a key-only frame the table's other columns (empty) so it can be conformed."""
    out = keys.copy()
    for col, kind in spec.columns.items():
        if col not in out.columns:
            out[col] = {"timestamp": None, "string": "", "float64": 0.0, "int64": 0, "bool": False}[kind]
    return out


class SqlReads:
    """``read``, ``read_metrics`` and ``count`` in SQL both dialects speak, on top of a backend's ``query``."""

    def query(self, sql: str, params: Sequence[Any] | None = None, via_arrow: bool = False) -> pd.DataFrame:
        raise NotImplementedError

    def read(self, name: str, **equals: Any) -> pd.DataFrame:
        """All rows of ``name`` whose columns equal the given values (``None`` values are ignored)."""
        spec = table(name)
        filters = {k: v for k, v in equals.items() if v is not None}
        unknown = [k for k in filters if k not in spec.columns]
        if unknown:
            raise StoreError(f"table {name!r} has no columns {unknown}")
        where = " AND ".join(f'"{col}" = ?' for col in filters) or "true"
        order = ", ".join(f'"{c}"' for c in spec.sort_by) or "1"
        return self.query(f"SELECT * FROM {name} WHERE {where} ORDER BY {order}", list(filters.values()))

    def read_metrics(
        self,
        services: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Validated metrics in ``[start, end)``, optionally for some services and metrics, ordered by key."""
        import pandas as pd

        clauses, params = ["true"], []
        for column, values in (("service", services), ("metric", metrics)):
            if values is not None:
                clause, more = in_list(column, values)
                clauses.append(clause)
                params += more
        if start is not None:
            clauses.append("ts >= ?")
            params.append(pd.Timestamp(start).to_pydatetime())
        if end is not None:
            clauses.append("ts < ?")
            params.append(pd.Timestamp(end).to_pydatetime())
        return self.query(f"SELECT * FROM metrics WHERE {' AND '.join(clauses)} ORDER BY service, metric, labels, ts", params,
                          via_arrow=True)

    def count(self, name: str) -> int:
        return int(self.query(f"SELECT count(*) AS n FROM {table(name).name}")["n"].iloc[0])
