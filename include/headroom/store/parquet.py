"""The embedded store: partitioned Parquet files, idempotent upserts by key, queried through DuckDB."""

from __future__ import annotations

import fcntl
import os
import re
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from include.headroom.exceptions import StoreError
from include.headroom.metrics.schema import TABLES, TableSpec, table
from include.headroom.store.base import Dialect, SqlReads, UpsertResult, fill_columns

if TYPE_CHECKING:
    import pandas as pd

_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")
DATA_FILE = "data.parquet"
PART_PREFIX = "part-"  # part files of tables with ``part_by``: one per upsert, beside the partition's data.parquet
PARQUET_GLOB = "[!.]*.parquet"  # every data file, never a writer's hidden temporary file
PART_VALUES_KEY = b"headroom.part_values"  # footer metadata: the part_by values a file holds (JSON list)
ROW_GROUP_ROWS = 32_768  # rows per Parquet row group


def _partition_dir_name(value: str) -> str:
    return _SAFE.sub("_", value) or "_"


class ParquetStore(SqlReads):
    """Tables of Parquet files under ``root/<table>/<partition>/data.parquet`` (and ``part-*.parquet`` for tables with ``part_by``).

    Writes are read-merge-replace per partition under an exclusive file lock, and
    the new file replaces the old atomically, so a reader sees either state and a
    re-run of the same rows replaces them instead of adding copies.
    """

    dialect = Dialect.DUCKDB

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ParquetStore(root={str(self.root)!r})"

    # -- writing -------------------------------------------------------------------------------

    def _partitions(self, spec: TableSpec, df: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
        if spec.partition_by is None:
            yield "all", df
            return
        if spec.partition_by.startswith("date:"):
            values = df[spec.partition_by[5:]].dt.strftime("date=%Y-%m-%d")
        else:
            values = spec.partition_by + "=" + df[spec.partition_by].astype(str)
        for value, part in df.groupby(values, sort=True):
            yield _partition_dir_name(str(value)), part

    @contextmanager
    def _locked(self, directory: Path) -> Generator[None]:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle = open(directory / ".lock", "w")  # noqa: SIM115 (closed by the with below)
        except OSError as exc:
            raise StoreError(f"store {self.root}: cannot write {directory}: {exc.strerror or exc} "
                             "(check $HEADROOM_DATA_DIR or store.yaml)") from None
        with handle as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def lock(self, name: str) -> Generator[None]:
        """Hold the lock ``name`` (a file lock under ``root/.locks``, shared by every process on the store's file system)."""
        with self._locked(self.root / ".locks" / _partition_dir_name(name)):
            yield

    def upsert(self, name: str, rows: pd.DataFrame) -> UpsertResult:
        """Insert ``rows`` into table ``name``, replacing rows with the same key.

        A table with ``part_by`` (e.g. forecasts by service) gets each upsert as a new part
        file of its partition; only the parts holding one of the upsert's ``part_by`` values
        are read and rewritten without the replaced keys, so the mapped tasks of a run append
        side by side instead of each rewriting the whole partition. Other tables are
        read-merge-replaced per partition.

        :raises SchemaError: when rows lack a column or hold a value of the wrong type.
        :raises StoreError: when rows repeat a key among themselves.
        """
        import pandas as pd

        spec = table(name)
        df = spec.conform_keyed(rows)
        inserted = updated = partitions = 0
        for part_name, part in self._partitions(spec, df):
            directory = self.root / name / part_name
            with self._locked(directory):
                if spec.part_by is not None:
                    replaced = self._upsert_part(spec, directory, part)
                    updated += replaced
                    inserted += len(part) - replaced
                    partitions += 1
                    continue
                path = directory / DATA_FILE
                if path.exists():
                    existing = self._read_file(spec, path)
                    new_keys = pd.MultiIndex.from_frame(part[list(spec.key)])
                    old_keys = pd.MultiIndex.from_frame(existing[list(spec.key)])
                    replaced = old_keys.isin(new_keys)
                    updated += int(replaced.sum())
                    inserted += len(part) - int(replaced.sum())
                    merged = pd.concat([existing.loc[~replaced], part], ignore_index=True)
                else:
                    inserted += len(part)
                    merged = part
                self._write_file(spec, merged, path)
                partitions += 1
        return UpsertResult(table=name, inserted=inserted, updated=updated, partitions=partitions)

    def _upsert_part(self, spec: TableSpec, directory: Path, part: pd.DataFrame) -> int:
        """Write ``part`` as a new part file of ``directory``; remove its keys from the parts that hold its ``part_by`` values.

        :returns: how many stored rows were replaced.
        """
        import pandas as pd

        values = set(part[spec.part_by])
        new_keys = pd.MultiIndex.from_frame(part[list(spec.key)])
        replaced_total = 0
        for path in sorted(directory.glob(PARQUET_GLOB)):
            if not values & self._part_values(spec, path):
                continue  # holds none of these services: untouched
            replaced = pd.MultiIndex.from_frame(self._read_keys(spec, path)).isin(new_keys)  # the keys only, first
            if not replaced.any():
                continue
            replaced_total += int(replaced.sum())
            if replaced.all():  # a rerun's usual case: the whole file goes, never read in full
                path.unlink()
            else:
                existing = self._read_file(spec, path)
                self._write_file(spec, existing.loc[~replaced], path)
        if len(part):
            self._write_file(spec, part, directory / f"{PART_PREFIX}{uuid.uuid4().hex}.parquet")
        return replaced_total

    def _part_values(self, spec: TableSpec, path: Path) -> set[str]:
        """The ``part_by`` values a file holds: from its footer's metadata, or (a file written without it) from the column."""
        import json

        import pyarrow.parquet as pq

        try:
            meta = pq.read_schema(path).metadata or {}
            if PART_VALUES_KEY in meta:
                return set(json.loads(meta[PART_VALUES_KEY]))
            return {str(v) for v in pq.read_table(path, columns=[spec.part_by]).column(0).to_pylist()}
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc

    def replace_partition(self, name: str, partition_value: str, rows: pd.DataFrame) -> UpsertResult:
        """Replace one whole partition (e.g. a staging batch) with ``rows``; an empty frame removes it."""
        spec = table(name)
        if spec.partition_by is None or spec.partition_by.startswith("date:"):
            raise StoreError(f"table {name!r} is not partitioned by a column value")
        directory = self.root / name / _partition_dir_name(f"{spec.partition_by}={partition_value}")
        df = spec.conform(rows)
        with self._locked(directory):
            path = directory / DATA_FILE
            before = len(self._read_file(spec, path)) if path.exists() else 0
            for other in directory.glob(f"{PART_PREFIX}*.parquet"):
                other.unlink()
            if len(df):
                self._write_file(spec, df, path)
            elif path.exists():
                path.unlink()
        return UpsertResult(table=name, inserted=len(df), updated=0, partitions=1 if before or len(df) else 0)

    def delete(self, name: str, keys: pd.DataFrame) -> int:
        """Delete the rows of ``name`` whose key is in ``keys``; return how many were removed."""
        import pandas as pd

        spec = table(name)
        if keys.empty:
            return 0
        wanted = pd.MultiIndex.from_frame(spec.conform(fill_columns(spec, keys))[list(spec.key)])
        removed = 0
        for path in sorted((self.root / name).glob(f"**/{PARQUET_GLOB}")):
            with self._locked(path.parent):
                if not path.exists():
                    continue
                existing = self._read_file(spec, path)
                hit = pd.MultiIndex.from_frame(existing[list(spec.key)]).isin(wanted)
                if hit.any():
                    removed += int(hit.sum())
                    remaining = existing.loc[~hit]
                    if len(remaining):
                        self._write_file(spec, remaining, path)
                    else:
                        path.unlink()
        return removed

    def _write_file(self, spec: TableSpec, df: pd.DataFrame, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if spec.sort_by:
            df = df.sort_values(list(spec.sort_by), kind="stable")
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        arrow = pa.Table.from_pandas(df, schema=spec.arrow_schema(), preserve_index=False)
        if spec.part_by is not None:
            import json

            held = json.dumps(sorted({str(v) for v in df[spec.part_by]})).encode()
            arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), PART_VALUES_KEY: held})
        try:
            # Small row groups over key-sorted rows: a query for a few services skips the rest by row-group statistics.
            pq.write_table(arrow, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
            os.replace(tmp, path)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def _read_keys(self, spec: TableSpec, path: Path) -> pd.DataFrame:
        """The key columns of one file, in file order, typed as :meth:`_read_file` types them."""
        import pyarrow.parquet as pq

        try:
            present = set(pq.read_schema(path).names)  # a file written before a key column was added lacks it
            keys = pq.read_table(path, columns=[k for k in spec.key if k in present]).to_pandas()
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        return spec.conform(keys, fill_missing=True)[list(spec.key)]

    def _read_file(self, spec: TableSpec, path: Path) -> pd.DataFrame:
        import pyarrow.parquet as pq

        try:
            return spec.conform(pq.read_table(path).to_pandas(), fill_missing=True)
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc

    # -- reading -------------------------------------------------------------------------------

    def files(self, name: str) -> list[Path]:
        table(name)
        return sorted((self.root / name).glob(f"**/{PARQUET_GLOB}"))

    def _relation_sql(self, spec: TableSpec) -> str:
        files = self.files(spec.name)
        if files:
            listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            columns = ", ".join(f'"{c}"' for c in spec.columns)
            return f"SELECT {columns} FROM read_parquet([{listing}], union_by_name = true, hive_partitioning = false)"
        duck = {"timestamp": "TIMESTAMPTZ", "string": "VARCHAR", "float64": "DOUBLE", "int64": "BIGINT", "bool": "BOOLEAN"}
        cols = ", ".join(f'CAST(NULL AS {duck[kind]}) AS "{col}"' for col, kind in spec.columns.items())
        return f"SELECT {cols} WHERE false"

    def query(self, sql: str, params: Sequence[Any] | None = None, via_arrow: bool = False, attempts: int = 5) -> pd.DataFrame:
        """Run DuckDB SQL in which every store table is a view by its name; timestamps come back in UTC.

        ``via_arrow`` converts the result through Arrow: pandas takes Arrow strings as they are, where
        DuckDB's own conversion builds Python strings first (a third of a 50-service history read). Only
        for plain columns: Arrow keeps DuckDB's exact types, so an integer ``sum()`` would come back as
        ``Decimal`` instead of ``float``.

        The views list each table's files when the query starts. A writer in another task may
        replace or remove a partition before DuckDB opens it (writes are atomic, but the listing
        is then stale): such a query is run again on a fresh listing, up to ``attempts`` times.
        """
        import duckdb

        attempt = 0
        while True:
            attempt += 1
            before = self._fingerprint()
            con = duckdb.connect(database=":memory:")
            try:
                con.execute("SET TimeZone = 'UTC'")
                for spec in TABLES.values():
                    if re.search(rf"\b{spec.name}\b", sql):  # only the tables the query names: each view lists its files
                        con.execute(f"CREATE VIEW {spec.name} AS {self._relation_sql(spec)}")
                result = con.execute(sql, params or [])
                return result.arrow().read_all().to_pandas() if via_arrow else result.df()
            except duckdb.IOException as exc:
                vanished = "No such file or directory" in str(exc) or "No files found that match" in str(exc)
                if not vanished or attempt >= attempts:
                    raise StoreError(f"query failed: {exc}\n{sql}") from exc
                time.sleep(0.05 * attempt)
            except duckdb.Error as exc:
                # A file replaced by a writer while DuckDB read it reads as garbage: run again on the new files.
                if attempt >= attempts or self._fingerprint() == before:
                    raise StoreError(f"query failed: {exc}\n{sql}") from exc
                time.sleep(0.05 * attempt)
            finally:
                con.close()

    def _fingerprint(self) -> frozenset[tuple[str, int]]:
        """Every data file of the store with its modification time: changes when any writer replaces a file."""
        out = set()
        for path in self.root.glob(f"*/**/{PARQUET_GLOB}"):
            try:
                out.add((str(path), path.stat().st_mtime_ns))
            except FileNotFoundError:
                continue
        return frozenset(out)
