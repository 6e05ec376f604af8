"""Files as a metrics source: CSV and Parquet, local or on S3, mapped onto canonical columns by configuration."""

from __future__ import annotations

import glob
import io
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol

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
    """

    name = SOURCE_NAME

    def __init__(self, settings: FileSettings, config: HeadroomConfig, readers: Mapping[str, FileReader] | None = None) -> None:
        self.settings = settings
        self.config = config
        self.readers = {"file": LocalFileReader(), **(readers or {})}
        self.stats: dict[str, Any] = {}

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

    def parse(self, uri: str, content: bytes) -> pd.DataFrame:
        """Canonical rows of one file.

        :raises DataError: naming the file, rows and field of a missing column, bad timestamp or non-numeric value.
        """
        import pandas as pd

        fmt = self._format(uri)
        try:
            raw = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False) if fmt == "csv" else pd.read_parquet(io.BytesIO(content))
        except (ValueError, OSError) as exc:
            raise DataError(f"source 'files': {uri} is not readable {fmt}: {exc}") from exc
        mapping = dict(self.settings.columns)
        wanted = {**mapping, **{c: c for c in self.settings.label_columns}}
        missing = sorted({col for col in wanted.values() if col not in raw.columns})
        if missing:
            raise SchemaError(f"source 'files': {uri} lacks columns {missing} (mapped in sources.yaml files.columns; the file has {list(raw.columns)})")
        header = 1 if fmt == "csv" else 0
        out = pd.DataFrame({canonical: raw[col] for canonical, col in mapping.items()})

        ts_raw = out["ts"]
        if self.settings.timestamp_format:
            ts = pd.to_datetime(ts_raw, format=self.settings.timestamp_format, utc=True, errors="coerce")
        elif pd.api.types.is_numeric_dtype(ts_raw) or ts_raw.astype(str).str.fullmatch(r"\d+(\.\d+)?").all():
            ts = pd.to_datetime(pd.to_numeric(ts_raw), unit="s", utc=True)
        else:
            ts = pd.to_datetime(ts_raw, format="ISO8601", utc=True, errors="coerce")
        bad_ts = ts.isna().to_numpy()
        if bad_ts.any():
            raise DataError(f"source 'files': {uri}: field {mapping['ts']!r} is not a timestamp"
                            f"{' in format ' + repr(self.settings.timestamp_format) if self.settings.timestamp_format else ' (ISO 8601 or epoch seconds)'} "
                            f"at {_rows_named(bad_ts, out.rename(columns={'ts': mapping['ts']}), mapping['ts'], header)}")
        value_raw = out["value"]
        value = pd.to_numeric(value_raw, errors="coerce")
        explicit_nan = value_raw.astype(str).str.strip().str.lower().isin(["nan", "+inf", "-inf", "inf"])
        bad_value = (value.isna() & ~explicit_nan).to_numpy()
        if bad_value.any():
            raise DataError(f"source 'files': {uri}: field {mapping['value']!r} is not numeric at "
                            f"{_rows_named(bad_value, out.rename(columns={'value': mapping['value']}), mapping['value'], header)}")
        out["ts"] = ts.astype("datetime64[us, UTC]")
        out["value"] = value.astype(float)
        out["unit"] = out["unit"].astype(str) if "unit" in out.columns else self.settings.default_unit
        labels = raw[list(self.settings.label_columns)].astype(str) if self.settings.label_columns else None
        out["labels"] = [format_labels(r) for r in labels.to_dict("records")] if labels is not None else ""
        tiers = {s.name: s.tier.value for s in self.config.services}
        out["service"] = out["service"].astype(str)
        out["metric"] = out["metric"].astype(str)
        out["tier"] = out["service"].map(tiers).fillna("")
        out["source"] = SOURCE_NAME
        out["_file"] = uri
        out["_row"] = range(header + 1, header + 1 + len(out))
        return out

    def read(self, start: Any, end: Any) -> pd.DataFrame:
        """Canonical rows with ``start <= ts < end`` from every configured file, sorted by key.

        Identical duplicate rows are dropped (and counted); the same key with different values is an error
        naming both places.
        """
        import pandas as pd

        start, end = utc(start), utc(end)
        if not self.settings.paths:
            raise SourceError("source 'files': sources.yaml files.paths is empty")
        frames = []
        for pattern in self.settings.paths:
            reader = self._reader(pattern)
            for uri in reader.list(pattern):
                frame = self.parse(uri, reader.read_bytes(uri))
                frames.append(frame)
                log.info("Files: read %s, %d rows", uri, len(frame))
        rows = pd.concat(frames, ignore_index=True)
        rows = rows[(rows["ts"] >= start) & (rows["ts"] < end)]
        key = list(METRIC_KEY)
        exact = rows.duplicated([*key, "value", "unit"], keep="first")
        rows = rows.loc[~exact]
        clash = rows.duplicated(key, keep=False)
        if clash.any():
            sample = rows.loc[clash].sort_values(key).head(2)
            places = " and ".join(f"{r['_file']} row {r['_row']} (value={r['value']!r})" for r in sample.to_dict("records"))
            first = sample.iloc[0]
            raise DataError(f"source 'files': series {first['metric']!r} of {first['service']!r} at {first['ts'].isoformat()}: "
                            f"field 'value' differs between duplicate rows: {places}")
        ts_ns = rows.groupby(["service", "metric", "labels"], sort=False)["ts"].diff()
        out_of_order = int((ts_ns < pd.Timedelta(0)).sum())
        if out_of_order:
            log.warning("Files: %d rows were out of order; sorted by service, metric, labels, time", out_of_order)
        if int(exact.sum()):
            log.warning("Files: dropped %d rows that repeat another row exactly", int(exact.sum()))
        self.stats = {"files": sum(1 for _ in frames), "duplicates_dropped": int(exact.sum()), "out_of_order": out_of_order}
        return rows.sort_values(["service", "metric", "labels", "ts"], kind="stable")[COLUMNS].reset_index(drop=True)
