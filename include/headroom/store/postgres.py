"""The PostgreSQL store: the same tables, API and idempotence as the embedded store, with a unique constraint per key.

Every table is created on first use in its own schema, with ``UNIQUE NULLS NOT
DISTINCT`` on its key; upserts are ``INSERT ... ON CONFLICT DO UPDATE``, so a
re-run replaces rows instead of adding copies. ``query`` takes the same
``?`` placeholders as the embedded store; named queries in ``store/queries.py``
give it PostgreSQL's dialect where DuckDB's differs.
"""

from __future__ import annotations

import re
from pathlib import Path
from collections.abc import Callable, Generator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from include.headroom.exceptions import StoreError
from include.headroom.metrics.schema import BOOL, F64, I64, STR, TABLES, TS, TableSpec, table
from include.headroom.store.base import Dialect, SqlReads, UpsertResult, fill_columns

if TYPE_CHECKING:
    import pandas as pd

PG_TYPES = {TS: "TIMESTAMPTZ", STR: "TEXT", F64: "DOUBLE PRECISION", I64: "BIGINT", BOOL: "BOOLEAN"}
# Postgres type OIDs -> how a result column is typed, so results look like the embedded store's.
_OID_KIND = {1184: TS, 1114: TS, 701: F64, 700: F64, 1700: F64, 20: I64, 21: I64, 23: I64, 16: BOOL}
COPY_CHUNK = 200_000  # rows per CSV block sent to COPY
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"])*\"|(\?)|(%)")


def translate_placeholders(sql: str) -> str:
    """DuckDB/qmark SQL to psycopg's ``%s`` style: ``?`` outside quotes becomes ``%s``, a literal ``%`` becomes ``%%``."""

    def sub(match: re.Match[str]) -> str:
        if match.group(1):
            return "%s"
        if match.group(2):
            return "%%"
        return match.group(0).replace("%", "%%")

    return _PLACEHOLDER.sub(sub, sql)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _python(value: Any) -> Any:
    """A value psycopg can send: pandas/numpy scalars unwrapped, NaN and NaT as NULL."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


class PostgresStore(SqlReads):
    """The store's tables in PostgreSQL.

    :param connect: returns a new psycopg (3) connection, e.g. ``PostgresHook(...).get_conn`` or ``psycopg.connect(dsn)``.
    :param schema: the schema holding the tables (created when missing).
    """

    dialect = Dialect.POSTGRES

    def __init__(self, connect: Callable[[], Any], schema: str = "headroom") -> None:
        if not schema.isidentifier():
            raise StoreError(f"schema {schema!r} must be an identifier")
        self._connect = connect
        self.schema = schema
        self._ready = False

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"

    # -- connections and DDL -------------------------------------------------------------------

    def _conn(self) -> Any:
        import psycopg

        try:
            conn = self._connect()
            with conn.cursor() as cur:
                cur.execute("SET TIME ZONE 'UTC'")
                cur.execute(f"SET search_path TO {_q(self.schema)}")
            conn.commit()
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the PostgreSQL store: {exc}") from exc
        if not self._ready:
            try:
                self._create_tables(conn)
            except StoreError:
                conn.close()
                raise
        return conn

    def ddl(self, spec: TableSpec) -> list[str]:
        """``CREATE TABLE`` with the key's unique constraint, and ``ADD COLUMN`` for columns added since."""
        name = f"{_q(self.schema)}.{_q(spec.name)}"
        cols = ", ".join(f"{_q(c)} {PG_TYPES[k]}" for c, k in spec.columns.items())
        key = ", ".join(_q(c) for c in spec.key)
        return [
            f"CREATE TABLE IF NOT EXISTS {name} ({cols}, CONSTRAINT {_q(spec.name + '_key')} UNIQUE NULLS NOT DISTINCT ({key}))",
            *(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {_q(c)} {PG_TYPES[k]}" for c, k in spec.columns.items()),
        ]

    def _create_tables(self, conn: Any) -> None:
        import psycopg

        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"headroom-ddl-{self.schema}"])
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(self.schema)}")
                for spec in TABLES.values():
                    for statement in self.ddl(spec):
                        cur.execute(statement)
            conn.commit()
        except psycopg.Error as exc:
            conn.rollback()
            raise StoreError(f"cannot create the store's tables in schema {self.schema!r}: {exc}") from exc
        self._ready = True

    def _run(self, what: str, work: Callable[[Any], Any]) -> Any:
        """Run ``work(cursor)`` in one transaction; a database error becomes a :class:`StoreError` naming ``what``."""
        import psycopg

        conn = self._conn()
        try:
            with conn.cursor() as cur:
                result = work(cur)
            conn.commit()
            return result
        except psycopg.Error as exc:
            conn.rollback()
            raise StoreError(f"{what} failed: {exc}") from exc
        finally:
            conn.close()

    @contextmanager
    def lock(self, name: str) -> Generator[None]:
        """Hold the lock ``name``: a session-level advisory lock on a connection of its own, released on exit."""
        import psycopg

        conn = self._conn()
        key = f"headroom-{self.schema}-{name}"
        try:
            try:
                conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [key])
                conn.commit()
            except psycopg.Error as exc:
                raise StoreError(f"cannot take lock {name!r}: {exc}") from exc
            yield
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])
            conn.commit()
        finally:
            conn.close()  # ends the session: the lock is released even when the block raised

    # -- writing -------------------------------------------------------------------------------

    def _copy_incoming(self, cur: Any, spec: TableSpec, df: pd.DataFrame) -> None:
        """``COPY`` rows into a temporary ``_incoming`` table shaped like ``spec``, dropped at commit.

        The rows go as CSV written by Arrow (in C, ``COPY_CHUNK`` rows at a time, so a large frame is never
        one string in memory): strings always quoted, so an empty string stays empty and a null (a NaN value,
        a NaT time) is the unquoted empty field; times as UTC wall time; infinities as ``inf``.
        """
        import io

        import pyarrow as pa
        import pyarrow.csv as pa_csv

        cur.execute("SET LOCAL TIME ZONE 'UTC'")  # the times below are UTC wall time, even behind a pooler that resets sessions
        cur.execute(f"CREATE TEMP TABLE _incoming (LIKE {_q(self.schema)}.{_q(spec.name)}) ON COMMIT DROP")
        rows = pa.Table.from_pandas(df[list(spec.columns)], schema=spec.arrow_schema(), preserve_index=False)
        for i, (col, kind) in enumerate(spec.columns.items()):
            if kind == TS:  # UTC wall time: Arrow writes it about 30x faster than with a "Z"
                rows = rows.set_column(i, col, rows[col].cast(pa.timestamp("us")))
        columns = ", ".join(_q(c) for c in spec.columns)
        options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
        with cur.copy(f"COPY _incoming ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
            for offset in range(0, rows.num_rows, COPY_CHUNK):
                buffer = io.BytesIO()
                pa_csv.write_csv(rows.slice(offset, COPY_CHUNK), buffer, options)
                copy.write(buffer.getbuffer())

    def _partition_count(self, spec: TableSpec, df: pd.DataFrame) -> int:
        if spec.partition_by is None:
            return 1 if len(df) else 0
        if spec.partition_by.startswith("date:"):
            return int(df[spec.partition_by[5:]].dt.floor("D").nunique())  # UTC dates (conformed times are UTC)
        return int(df[spec.partition_by].nunique())

    def upsert(self, name: str, rows: pd.DataFrame) -> UpsertResult:
        """Insert ``rows`` into table ``name``, replacing rows with the same key (``ON CONFLICT DO UPDATE``).

        :raises SchemaError: when rows lack a column or hold a value of the wrong type.
        :raises StoreError: when rows repeat a key among themselves.
        """
        spec = table(name)
        df = spec.conform_keyed(rows)
        if df.empty:
            return UpsertResult(table=name, inserted=0, updated=0, partitions=0)
        cols = ", ".join(_q(c) for c in spec.columns)
        others = [c for c in spec.columns if c not in spec.key] or [spec.key[0]]
        # In key order, so the key's index is filled page by page; only the counts come back, not a flag per row.
        sql = (
            f"WITH written AS (INSERT INTO {_q(self.schema)}.{_q(name)} ({cols}) "
            f"SELECT {cols} FROM _incoming ORDER BY {', '.join(_q(c) for c in spec.key)} "
            f"ON CONFLICT ON CONSTRAINT {_q(name + '_key')} DO UPDATE SET {', '.join(f'{_q(c)} = EXCLUDED.{_q(c)}' for c in others)} "
            "RETURNING (xmax = 0) AS new) SELECT count(*) FILTER (WHERE new), count(*) FROM written"
        )

        def work(cur: Any) -> tuple[int, int]:
            self._copy_incoming(cur, spec, df)
            cur.execute(sql)
            return cur.fetchone()

        inserted, written = self._run(f"upsert into {name!r}", work)
        return UpsertResult(table=name, inserted=inserted, updated=written - inserted, partitions=self._partition_count(spec, df))

    def replace_partition(self, name: str, partition_value: str, rows: pd.DataFrame) -> UpsertResult:
        """Replace one whole partition (e.g. a staging batch) with ``rows`` in one transaction; an empty frame removes it."""
        spec = table(name)
        if spec.partition_by is None or spec.partition_by.startswith("date:"):
            raise StoreError(f"table {name!r} is not partitioned by a column value")
        df = spec.conform(rows)
        cols = ", ".join(_q(c) for c in spec.columns)

        def work(cur: Any) -> int:
            cur.execute(f"DELETE FROM {_q(self.schema)}.{_q(name)} WHERE {_q(spec.partition_by)} = %s", [partition_value])
            before = cur.rowcount
            if len(df):
                self._copy_incoming(cur, spec, df)
                cur.execute(f"INSERT INTO {_q(self.schema)}.{_q(name)} ({cols}) SELECT {cols} FROM _incoming")
            return before

        before = self._run(f"replace partition {partition_value!r} of {name!r}", work)
        return UpsertResult(table=name, inserted=len(df), updated=0, partitions=1 if before or len(df) else 0)

    def delete(self, name: str, keys: pd.DataFrame) -> int:
        """Delete the rows of ``name`` whose key is in ``keys``; return how many were removed."""
        spec = table(name)
        if keys.empty:
            return 0
        conformed = spec.conform(fill_columns(spec, keys))[list(spec.key)].drop_duplicates()
        match = " AND ".join(f"{_q(c)} IS NOT DISTINCT FROM %s" for c in spec.key)
        sql = f"DELETE FROM {_q(self.schema)}.{_q(name)} WHERE {match}"
        records = [tuple(_python(v) for v in row) for row in conformed.itertuples(index=False, name=None)]

        def work(cur: Any) -> int:
            removed = 0
            for record in records:
                cur.execute(sql, record)
                removed += cur.rowcount
            return removed

        return self._run(f"delete from {name!r}", work)

    # -- reading -------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | None = None, via_arrow: bool = False) -> pd.DataFrame:
        """Run SQL (``?`` placeholders) in which every store table is visible by its name; timestamps come back in UTC.

        ``via_arrow`` is the embedded store's conversion hint; rows from PostgreSQL are converted one way.
        """
        import pandas as pd

        def work(cur: Any) -> tuple[list[Any], list[Any]]:
            cur.execute(translate_placeholders(sql), [_python(p) for p in (params or [])])
            return list(cur.description or []), cur.fetchall() if cur.description else []

        description, rows = self._run(f"query\n{sql}\n", work)
        names = [d.name for d in description]
        frame = pd.DataFrame.from_records(rows, columns=names) if rows else pd.DataFrame({n: [] for n in names})
        for d in description:
            kind = _OID_KIND.get(d.type_code)
            col = d.name
            if kind == TS:
                frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[us, UTC]")
            elif kind == F64:
                frame[col] = pd.to_numeric(frame[col]).astype("float64")
            elif kind == I64:
                frame[col] = frame[col].astype("float64" if frame[col].isna().any() else "int64")
            elif kind == BOOL:
                frame[col] = frame[col].astype("bool" if not frame[col].isna().any() else "object")
            else:
                frame[col] = frame[col].astype(object)
        return frame

    def files(self, name: str) -> list[Path]:
        """The embedded store's ``files`` for tools that list storage: one pseudo path when the table has rows, else none."""
        return [Path(f"postgresql:{self.schema}.{name}")] if self.count(name) else []

    def drop_schema(self) -> None:
        """Remove the schema and every table in it (tests and resets)."""
        self._run(f"drop schema {self.schema!r}", lambda cur: cur.execute(f"DROP SCHEMA IF EXISTS {_q(self.schema)} CASCADE"))
        self._ready = False
