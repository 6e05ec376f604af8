"""Files as a metrics source: CSV and Parquet, local or on S3, mapped onto canonical columns by configuration."""

from __future__ import annotations

import glob
import io
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from collections.abc import Mapping

from include.headroom.exceptions import DataError, SchemaError, SourceError
from include.headroom.metrics.schema import METRIC_KEY, format_labels
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig
    from include.headroom.metrics.source_config import FileSettings

log = logging.getLogger(__name__)
SOURCE_NAME = "files"
COLUMNS = ["ts", "service", "tier", "metric", "value", "unit", "source", "labels"]
_SHOWN = 5  # offending rows named in an error


class FileReader(Protocol):
    """Lists and reads the files behind a path pattern (local globs, ``s3://`` prefixes)."""

    def list(self, pattern: str) -> list[str]:
        """The files ``pattern`` names, sorted; raises :class:`SourceError` when there are none."""

    def read_bytes(self, uri: str) -> bytes:
        """The file's content; raises :class:`SourceError` naming it when it is missing."""


class LocalFileReader:
    """Local files; ``$VARS`` in patterns are expanded."""

    def list(self, pattern: str) -> list[str]:
        expanded = os.path.expandvars(pattern)
        found = sorted(p for p in glob.glob(expanded) if Path(p).is_file())
        if not found:
            raise SourceError(f"source 'files': no file matches {pattern!r} ({expanded})")
        return found

    def read_bytes(self, uri: str) -> bytes:
        try:
            return Path(uri).read_bytes()
        except OSError as exc:
            raise SourceError(f"source 'files': cannot read {uri}: {exc}") from exc


def _rows_named(mask: Any, frame: pd.DataFrame, field: str, header_lines: int) -> str:
    """``row N (value 'x')`` for the first offending rows; N is the line in a CSV, the row number in Parquet."""
    import numpy as np

    positions = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(f"row {p + header_lines + 1} ({field}={frame[field].iloc[p]!r})" for p in positions[:_SHOWN])
    more = f" and {len(positions) - _SHOWN} more" if len(positions) > _SHOWN else ""
    return f"{shown}{more}"


class FileSource:
    """Reads every file of the configured paths and keeps the rows inside the interval.

    :param readers: a reader per scheme (``"file"``, ``"s3"``); the S3 reader comes from the hook.
    :param now: the clock that decides what lies in the future (default: the wall clock).
    """

    name = SOURCE_NAME

    def __init__(
        self, settings: FileSettings, config: HeadroomConfig, readers: Mapping[str, FileReader] | None = None, now: Any = None
    ) -> None:
        self.settings = settings
        self.config = config
        self.readers = {"file": LocalFileReader(), **(readers or {})}
        self.stats: dict[str, Any] = {}
        self.notes: list[str] = []
        self.now = now

    def _reader(self, pattern: str) -> FileReader:
        scheme = pattern.split("://", 1)[0] if "://" in pattern else "file"
        if scheme not in self.readers:
            raise SourceError(f"source 'files': no reader for {scheme}:// paths ({pattern!r}); readers: {sorted(self.readers)}")
        return self.readers[scheme]

    def _format(self, uri: str) -> str:
        if self.settings.format != "auto":
            return self.settings.format
        suffix = uri.lower().rsplit(".", 1)[-1]
        if suffix in ("csv", "parquet"):
            return suffix
        raise DataError(f"source 'files': {uri}: cannot tell the format from the extension; set files.format to csv or parquet")

    def _timestamps(self, uri: str, ts_raw: pd.Series, field: str, header: int) -> tuple[pd.Series, Any]:
        """UTC timestamps of a file's time column, and which were written without a zone (kept at their wall-clock time).

        Numbers are epoch seconds, or milliseconds / microseconds / nanoseconds when every value is that large
        (1e11 seconds is the year 5138); a column mixing those magnitudes is refused, naming rows.
        """
        import numpy as np
        import pandas as pd

        if self.settings.timestamp_format:
            zoned_format = "%z" in self.settings.timestamp_format or "%Z" in self.settings.timestamp_format
            naive = (
                np.zeros(len(ts_raw), bool)
                if zoned_format
                else ~ts_raw.astype(str).str.contains(r"(?:Z|[+-]\d{2}:?\d{2})\s*$", regex=True).to_numpy()
            )
            ts = pd.to_datetime(ts_raw, format=self.settings.timestamp_format, utc=True, errors="coerce")
            return ts, naive
        if pd.api.types.is_datetime64_any_dtype(ts_raw):  # Parquet: a zone for the whole column, or none
            naive = getattr(ts_raw.dtype, "tz", None) is None
            return pd.to_datetime(ts_raw, utc=True), np.full(len(ts_raw), naive)
        if pd.api.types.is_numeric_dtype(ts_raw) or ts_raw.astype(str).str.fullmatch(r"\d+(\.\d+)?").all():
            numbers = pd.to_numeric(ts_raw).astype(float)
            scale = np.select([numbers >= 1e17, numbers >= 1e14, numbers >= 1e11], [1e9, 1e6, 1e3], 1.0)
            if len(set(scale)) > 1:
                mixed = scale != scale[0]
                raise DataError(
                    f"source 'files': {uri}: field {field!r} mixes epoch seconds and epoch milli/micro/nanoseconds: "
                    f"{_rows_named(mixed, pd.DataFrame({field: ts_raw}), field, header)} differ from row {header + 1}; "
                    "write every timestamp in one unit"
                )
            if len(scale) and scale[0] != 1.0:
                unit = {1e3: "milliseconds", 1e6: "microseconds", 1e9: "nanoseconds"}[scale[0]]
                log.warning("Files: %s: field %r holds epoch %s (values from %.0f): read as such", uri, field, unit, numbers.min())
                self.notes.append(f"{uri}: field {field!r} read as epoch {unit}")
            return pd.to_datetime(numbers / scale, unit="s", utc=True), np.zeros(len(ts_raw), bool)
        text = ts_raw.astype(str).str.strip()
        naive = ~text.str.contains(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", regex=True).to_numpy()
        return pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce"), naive

    def parse(self, uri: str, content: bytes) -> pd.DataFrame:
        """Canonical rows of one file.

        :raises DataError: naming the file, rows and field of a missing column, bad timestamp or non-numeric value.
        """
        import pandas as pd

        fmt = self._format(uri)
        try:
            raw = (
                pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False) if fmt == "csv" else pd.read_parquet(io.BytesIO(content))
            )
        except (ValueError, OSError) as exc:
            raise DataError(f"source 'files': {uri} is not readable {fmt}: {exc}") from exc
        mapping = dict(self.settings.columns)
        wanted = {**mapping, **{c: c for c in self.settings.label_columns}}
        missing = sorted({col for col in wanted.values() if col not in raw.columns})
        if missing:
            raise SchemaError(
                f"source 'files': {uri} lacks columns {missing} (mapped in sources.yaml files.columns; the file has {list(raw.columns)})"
            )
        header = 1 if fmt == "csv" else 0
        out = pd.DataFrame({canonical: raw[col] for canonical, col in mapping.items()})

        ts, naive = self._timestamps(uri, out["ts"], mapping["ts"], header)
        bad_ts = ts.isna().to_numpy()
        if bad_ts.any():
            ts_format = self.settings.timestamp_format
            raise DataError(
                f"source 'files': {uri}: field {mapping['ts']!r} is not a timestamp"
                f"{' in format ' + repr(ts_format) if ts_format else ' (ISO 8601 or epoch seconds)'} "
                f"at {_rows_named(bad_ts, out.rename(columns={'ts': mapping['ts']}), mapping['ts'], header)}"
            )
        value_raw = out["value"]
        value = pd.to_numeric(value_raw, errors="coerce")
        explicit_nan = value_raw.astype(str).str.strip().str.lower().isin(["nan", "+inf", "-inf", "inf"])
        bad_value = (value.isna() & ~explicit_nan).to_numpy()
        if bad_value.any():
            raise DataError(
                f"source 'files': {uri}: field {mapping['value']!r} is not numeric at "
                f"{_rows_named(bad_value, out.rename(columns={'value': mapping['value']}), mapping['value'], header)}"
            )
        out["ts"] = ts.astype("datetime64[us, UTC]")
        out["ts_naive"] = naive
        out["value"] = value.astype(float)
        out["unit"] = out["unit"].astype(str) if "unit" in out.columns else self.settings.default_unit
        labels = raw[list(self.settings.label_columns)].astype(str) if self.settings.label_columns else None
        out["labels"] = [format_labels(r) for r in labels.to_dict("records")] if labels is not None else ""
        out["service"] = out["service"].astype(str)
        out["metric"] = out["metric"].astype(str)
        # The tier is the file's when it maps one; else validation looks it up in the catalog (so a catalog fix re-admits).
        out["tier"] = out["tier"].astype(str) if "tier" in out.columns else ""
        out["source"] = SOURCE_NAME
        out["_file"] = uri
        out["_row"] = range(header + 1, header + 1 + len(out))
        return out

    def placed(self, rows: pd.DataFrame) -> pd.Series:
        """Where each row lies in time for choosing its batch: a naive timestamp is read in ``validation.yaml``
        ``naive_timestamps`` when that is a zone, else at its wall-clock time as if UTC (validation then refuses it)."""
        policy = self.config.pipeline.validation.naive_timestamps
        naive = rows["ts_naive"].to_numpy(dtype=bool)
        if policy == "quarantine" or not naive.any():
            return rows["ts"]
        local = rows.loc[naive, "ts"].dt.tz_localize(None).dt.tz_localize(policy, ambiguous="NaT", nonexistent="NaT")
        out = rows["ts"].copy()
        out.loc[naive] = local.dt.tz_convert("UTC").fillna(rows.loc[naive, "ts"])
        return out

    def read(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Canonical rows of every configured file for the read window ``[start, end)``, sorted by key.

        Nothing vanishes unsaid: rows dated in the future (after ``now`` plus validation's clock-skew
        tolerance) are kept in the batch, so validation quarantines them with their reasons; rows before
        the window (history the run did not ask for) and rows after it that are already past (they belong
        to a later interval, whose run reads them) are counted in :attr:`stats` and logged. Identical
        duplicate rows are dropped and counted (``duplicates_dropped``); the same key with different
        values is an error naming both places. Naive timestamps are kept at their wall-clock time with
        ``ts_naive`` set: validation judges them.
        """
        import pandas as pd

        start, end = utc(start), utc(end)
        if not self.settings.paths:
            raise SourceError("source 'files': sources.yaml files.paths is empty")
        self.notes = []
        frames = []
        for pattern in self.settings.paths:
            reader = self._reader(pattern)
            for uri in reader.list(pattern):
                frame = self.parse(uri, reader.read_bytes(uri))
                frames.append(frame)
                log.info("Files: read %s, %d rows", uri, len(frame))
        rows = pd.concat(frames, ignore_index=True)
        placed = self.placed(rows)
        now = utc(self.now) if self.now is not None else pd.Timestamp.now(tz="UTC")
        future = placed > now + pd.Timedelta(seconds=self.config.pipeline.validation.future_tolerance_s)
        earlier = placed < start
        later = (placed >= end) & ~future
        for count, what in (
            (int(earlier.sum()), f"before the read window {start.isoformat()}: history this run did not ask for"),
            (int(later.sum()), f"at or after the window end {end.isoformat()}: a later interval's run reads them"),
            (int((future & (placed >= end)).sum()), f"in the future (after {now.isoformat()}): kept for validation to quarantine"),
        ):
            if count:
                log.warning("Files: %d rows %s", count, what)
                self.notes.append(f"{count} rows {what}")
        naive_outside = int(((earlier | later) & rows["ts_naive"]).sum())
        if naive_outside:
            policy = self.config.pipeline.validation.naive_timestamps
            self.notes.append(
                f"{naive_outside} of the rows outside the window have timestamps without a zone, placed at their wall-clock "
                f"time in {'UTC' if policy == 'quarantine' else policy}: if they are another zone's local time, "
                "set validation.yaml naive_timestamps to it"
            )
        rows = rows[~earlier & ~later]
        key = list(METRIC_KEY)
        exact = rows.duplicated([*key, "value", "unit", "ts_naive"], keep="first")
        rows = rows.loc[~exact]
        clash = rows.duplicated(key, keep=False)
        if clash.any():
            sample = rows.loc[clash].sort_values(key).head(2)
            places = " and ".join(f"{r['_file']} row {r['_row']} (value={r['value']!r})" for r in sample.to_dict("records"))
            first = sample.iloc[0]
            raise DataError(
                f"source 'files': series {first['metric']!r} of {first['service']!r} at {first['ts'].isoformat()}: "
                f"field 'value' differs between duplicate rows: {places}"
            )
        ts_ns = rows.groupby(["service", "metric", "labels"], sort=False)["ts"].diff()
        out_of_order = int((ts_ns < pd.Timedelta(0)).sum())
        if out_of_order:
            log.warning("Files: %d rows were out of order; sorted by service, metric, labels, time", out_of_order)
            self.notes.append(f"{out_of_order} rows were out of order: sorted by series and time")
        duplicates = int(exact.sum())
        if duplicates:
            log.warning("Files: dropped %d rows that repeat another row exactly (counted in the batch's rows_duplicate)", duplicates)
            self.notes.append(f"{duplicates} rows repeat another row exactly: dropped, counted as duplicates")
        self.stats = {
            "files": len(frames),
            "duplicates_dropped": duplicates,
            "out_of_order": out_of_order,
            "rows_before_window": int(earlier.sum()),
            "rows_after_window": int(later.sum()),
            "rows_in_future": int(future.sum()),
            "naive_timestamps": int(rows["ts_naive"].sum()),
        }
        return rows.sort_values(["service", "metric", "labels", "ts"], kind="stable")[[*COLUMNS, "ts_naive"]].reset_index(drop=True)
