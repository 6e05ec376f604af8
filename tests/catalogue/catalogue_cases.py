"""The bad-input and fault catalogue as data: each case's input and its exact expected outcome.

``tests/catalogue/test_catalogue.py`` runs every case against the real code (and real servers);
``scripts/catalogue_table.py`` renders the README's "Bad input and faults" table from the same list,
and a test fails when the README's table is stale.

A file case is a small CSV (or Parquet) pushed through :func:`include.headroom.ingest_file.ingest_file`,
which is the file source plus validation the ``ingest_metrics`` and ``validate_metrics`` tasks use,
at a fixed clock (:data:`NOW`). Its outcome is either a batch (rows stored, quarantined per reason,
exact duplicates; rows in = stored + quarantined + duplicates always) or a clear error (class and message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NOW = "2026-12-04T23:30:00Z"
HEADER = "timestamp,service,metric,value,unit"
T0 = "2026-12-04T22:00:00"  # the first row of a clean file (12 rows, 5 minutes apart, to 22:55)


@dataclass(frozen=True)
class Batch:
    """A batch outcome: rows stored, quarantined per failed-expectation set, exact duplicates, and text the warnings must hold."""

    stored: int
    quarantined: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    failure: str = ""  # a batch-level failure (the whole batch quarantined) this text is in
    warnings: tuple[str, ...] = ()
    first_ts: str | None = None  # the first stored timestamp, when the case is about time
    readmit: tuple[str, int] | None = None  # (fix, rows re-admitted) after the documented fix
    catalog_fix: bool = False  # re-admission runs after adding the service to the catalog

    def describe(self) -> str:
        rows_in = self.stored + sum(self.quarantined.values()) + self.duplicates
        parts = [f"{rows_in} in: {self.stored} stored"]
        if self.quarantined:
            parts.append(
                f"{sum(self.quarantined.values())} quarantined ("
                + "; ".join(f"{n} {reason.replace(';', ' + ')}" for reason, n in self.quarantined.items())
                + ")"
            )
        if self.duplicates:
            parts.append(f"{self.duplicates} exact duplicates counted")
        text = ", ".join(parts)
        if self.failure:
            text += f'; batch failure "{self.failure}"'
        if self.warnings:
            text += "; warns " + ", ".join(f'"{w}"' for w in self.warnings)
        if self.first_ts:
            text += f"; first stored {self.first_ts}"
        if self.readmit:
            fix, n = self.readmit
            text += f"; {'after the catalog fix, ' if self.catalog_fix else ''}`readmit --fix {fix}` re-admits {n}"
        return text


def plain(pattern: str) -> str:
    """A message pattern as a reader sees it: ``.*`` as an ellipsis, ``\\d+`` as N, escapes dropped."""
    import re

    text = pattern.replace(".*", " … ").replace(r"\d+", "N")
    return re.sub(r"\\(.)", r"\1", text).replace("  ", " ").strip()


@dataclass(frozen=True)
class Raises:
    """A clear error: the exception class name and a regular expression its message must match."""

    error: str
    match: str
    shown: str = ""  # how the README shows it (default: the pattern)

    def describe(self) -> str:
        return f"{self.error}: {self.shown or plain(self.match)}"


@dataclass(frozen=True)
class Exits:
    """A command line that stops with ``error: ...`` on stderr and exit code 2 (or the code given)."""

    code: int
    match: str
    shown: str = ""

    def describe(self) -> str:
        return f"exit {self.code}, `{self.shown or plain(self.match)}`"


@dataclass(frozen=True)
class Holds:
    """What must hold after a fault that has no single error or batch (concurrent processes)."""

    text: str

    def describe(self) -> str:
        return self.text


@dataclass(frozen=True)
class Case:
    """One bad input or fault.

    :param kind: ``file`` (``input`` is the CSV text, or ``parquet:`` rows), ``cli`` (``input`` the argv after
        ``python -m include.headroom``, ``{tmp}``/``{file}``/``{blocked}`` filled in), ``config`` (``input`` maps
        a configuration file to its new text), ``server`` (a real fault against a real server, run by the test
        function of that id).
    :param options: for file cases: ``start``/``end``/``services`` of the interval, ``config`` overrides
        (``naive_timestamps``), ``name`` of the file.
    """

    id: str
    description: str
    kind: str
    input: Any
    expected: Batch | Raises | Exits | Holds
    options: dict[str, Any] = field(default_factory=dict)


def rows(
    values: list[Any] | None = None,
    metric: str = "cpu_utilization",
    unit: str = "percent",
    service: str = "orders-api",
    start: str = T0,
    zone: str = "Z",
    step_min: int = 5,
    n: int = 12,
) -> list[str]:
    """CSV lines (no header) of one series: ``n`` points ``step_min`` apart from ``start``; values default to 40, 41, ..."""
    import pandas as pd

    values = values if values is not None else [40 + (i % 7) for i in range(n)]
    stamps = pd.date_range(start, periods=len(values), freq=f"{step_min}min")
    return [f"{t.strftime('%Y-%m-%dT%H:%M:%S')}{zone},{service},{metric},{v},{unit}" for t, v in zip(stamps, values, strict=True)]


def csv(lines: list[str], header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


CLEAN = rows()
LATENCY = rows([30 + i for i in range(12)], metric="response_time", unit="ms")

FILE_CASES = [
    Case("clean_csv", "a clean CSV: 12 points of one series", "file", csv(CLEAN), Batch(12)),
    Case("clean_parquet", "the same rows as Parquet (zoned timestamps)", "file", "parquet:" + csv(CLEAN), Batch(12)),
    Case(
        "exact_duplicate_rows",
        "two rows repeated exactly",
        "file",
        csv(CLEAN + CLEAN[3:5]),
        Batch(12, duplicates=2, warnings=("2 rows repeat another row exactly",)),
    ),
    Case(
        "conflicting_duplicates",
        "the same series and time twice with different values",
        "file",
        csv(CLEAN + [CLEAN[3].replace(",43,", ",99,")]),
        Raises(
            "DataError",
            r"series 'cpu_utilization' of 'orders-api' at 2026-12-04T22:15:00\+00:00: field 'value' differs "
            r"between duplicate rows: .*row 5 \(value=43.0\) and .*row 14 \(value=99.0\)",
            "series, time and both rows named: `field 'value' differs between duplicate rows: ... row 5 ... and ... row 14`",
        ),
    ),
    Case(
        "naive_berlin_csv",
        "timestamps in Europe/Berlin local time without a zone (CSV)",
        "file",
        csv(rows(zone="")),
        Batch(0, {"expect_timestamp_has_timezone": 12}, readmit=("assume_zone:Europe/Berlin", 12), first_ts="2026-12-04T21:00:00+00:00"),
    ),
    Case(
        "naive_berlin_parquet",
        "the same naive local times as a Parquet datetime column",
        "file",
        "parquet-naive:" + csv(CLEAN),
        Batch(0, {"expect_timestamp_has_timezone": 12}, readmit=("assume_zone:Europe/Berlin", 12), first_ts="2026-12-04T21:00:00+00:00"),
    ),
    Case(
        "naive_zone_policy",
        "naive timestamps with validation.yaml naive_timestamps: Europe/Berlin",
        "file",
        csv(rows(zone="")),
        Batch(12, warnings=("read as Europe/Berlin",), first_ts="2026-12-04T21:00:00+00:00"),
        {"config": {"naive_timestamps": "Europe/Berlin"}},
    ),
    Case(
        "naive_new_york",
        "New York local times without a zone (5 h behind UTC)",
        "file",
        csv(rows(zone="", start="2026-12-04T17:00")),
        Batch(0, {"expect_timestamp_has_timezone": 12}, readmit=("assume_zone:America/New_York", 12), first_ts="2026-12-04T22:00:00+00:00"),
    ),
    Case(
        "naive_new_york_in_a_scheduled_window",
        "New York local times without a zone, read for the UTC interval they really belong to",
        "file",
        csv(rows(zone="", start="2026-12-04T17:00")),
        Batch(
            0,
            failure="empty batch",
            warnings=("12 rows before the read window", "12 of the rows outside the window have timestamps without a zone"),
        ),
        {"start": "2026-12-04T22:00:00Z", "end": "2026-12-04T23:00:00Z"},
    ),
    Case(
        "naive_utc",
        "UTC times written without a zone",
        "file",
        csv(rows(zone="")),
        Batch(0, {"expect_timestamp_has_timezone": 12}, readmit=("assume_utc", 12), first_ts="2026-12-04T22:00:00+00:00"),
    ),
    Case(
        "mixed_zones",
        "half the rows with a zone, half without",
        "file",
        csv(CLEAN[:6] + rows(zone="", start="2026-12-04T22:30")[:6]),
        Batch(6, {"expect_timestamp_has_timezone": 6}, readmit=("assume_utc", 6)),
    ),
    Case(
        "offset_zone",
        "timestamps with a +01:00 offset",
        "file",
        csv(rows(zone="+01:00", start="2026-12-04T23:00")),
        Batch(12, first_ts="2026-12-04T22:00:00+00:00"),
    ),
    Case(
        "future_rows",
        "three future-dated rows (2027-06-01, 01:00 tomorrow, 15 minutes ahead)",
        "file",
        csv(
            CLEAN
            + [
                "2027-06-01T00:00:00Z,orders-api,cpu_utilization,41,percent",
                "2026-12-05T01:00:00Z,orders-api,cpu_utilization,41,percent",
                "2026-12-04T23:45:00Z,orders-api,cpu_utilization,41,percent",
            ]
        ),
        Batch(12, {"expect_timestamp_in_interval;expect_timestamp_not_in_future": 3}, warnings=("3 rows in the future",)),
    ),
    Case(
        "rows_outside_interval",
        "rows before and after an explicit --start/--end (in the past)",
        "file",
        csv(CLEAN),
        Batch(6, warnings=("3 rows before the read window", "3 rows at or after the window end")),
        {"start": "2026-12-04T22:15:00Z", "end": "2026-12-04T22:45:00Z"},
    ),
    Case(
        "all_rows_in_the_future",
        "every row in the future",
        "file",
        csv(rows(start="2026-12-05T06:00")),
        Batch(0, {"expect_timestamp_in_interval;expect_timestamp_not_in_future": 12}),
    ),
    Case(
        "epoch_seconds",
        "epoch seconds",
        "file",
        csv([f"{1796421600 + 300 * i},orders-api,cpu_utilization,{40 + i},percent" for i in range(12)]),
        Batch(12),
    ),
    Case(
        "epoch_milliseconds",
        "epoch milliseconds",
        "file",
        csv([f"{(1796421600 + 300 * i) * 1000},orders-api,cpu_utilization,{40 + i},percent" for i in range(12)]),
        Batch(12, warnings=("read as epoch milliseconds",), first_ts="2026-12-04T22:00:00+00:00"),
    ),
    Case(
        "epoch_mixed",
        "epoch seconds and milliseconds mixed",
        "file",
        csv(
            [f"{1796421600 + 300 * i},orders-api,cpu_utilization,40,percent" for i in range(6)]
            + [f"{(1796421600 + 300 * i) * 1000},orders-api,cpu_utilization,40,percent" for i in range(6, 12)]
        ),
        Raises("DataError", r"field 'timestamp' mixes epoch seconds and epoch milli/micro/nanoseconds: row 8 .*differ from row 2"),
    ),
    Case(
        "ms_labelled_s",
        "latency in milliseconds labelled 's'",
        "file",
        csv(rows([30 + i for i in range(12)], "response_time", "s")),
        Batch(0, {"expect_latency_plausible": 12}, readmit=("ms_labelled_s", 12)),
    ),
    Case(
        "s_labelled_ms",
        "latency in seconds labelled 'ms'",
        "file",
        csv(rows([0.03 + i / 1000 for i in range(12)], "response_time", "ms")),
        Batch(0, {"expect_latency_plausible": 12}, readmit=("seconds_to_ms", 12)),
    ),
    Case(
        "unknown_service",
        "a service the catalog does not know",
        "file",
        csv(rows(service="ghost-api")),
        Batch(0, {"expect_known_service;expect_known_tier": 12}, readmit=("none", 12), catalog_fix=True),
    ),
    Case(
        "nan_value",
        "a NaN value",
        "file",
        csv(CLEAN[:5] + [CLEAN[5].replace(",45,", ",NaN,")] + CLEAN[6:]),
        Batch(11, {"expect_value_not_null": 1}),
    ),
    Case(
        "inf_value",
        "+Inf and -Inf values",
        "file",
        csv(CLEAN[:5] + [CLEAN[5].replace(",45,", ",+Inf,"), CLEAN[6].replace(",46,", ",-Inf,")] + CLEAN[7:]),
        Batch(10, {"expect_value_finite": 2}),
    ),
    Case(
        "text_value",
        "a word in the value column",
        "file",
        csv(CLEAN[:5] + [CLEAN[5].replace(",45,", ",n/a,")] + CLEAN[6:]),
        Raises("DataError", r"field 'value' is not numeric at row 7 \(value='n/a'\)"),
    ),
    Case(
        "empty_value",
        "an empty value field",
        "file",
        csv(CLEAN[:5] + [CLEAN[5].replace(",45,", ",,")] + CLEAN[6:]),
        Raises("DataError", r"field 'value' is not numeric at row 7 \(value=''\)"),
    ),
    Case(
        "bad_timestamp",
        "a day-first timestamp",
        "file",
        csv(CLEAN[:2] + ["04/12/2026 22:10,orders-api,cpu_utilization,41,percent"] + CLEAN[3:]),
        Raises(
            "DataError", r"field 'timestamp' is not a timestamp \(ISO 8601 or epoch seconds\) at row 4 \(timestamp='04/12/2026 22:10'\)"
        ),
    ),
    Case(
        "missing_column",
        "no unit column",
        "file",
        csv([",".join(r.split(",")[:4]) for r in CLEAN], "timestamp,service,metric,value"),
        Raises("SchemaError", r"lacks columns \['unit'\] \(mapped in sources.yaml files.columns"),
    ),
    Case("header_only", "a CSV with a header and no rows", "file", csv([]), Batch(0, failure="empty batch")),
    Case("empty_file", "an empty (0 byte) file", "file", "", Raises("DataError", r"is not readable csv: No columns to parse from file")),
    Case(
        "unknown_extension",
        "a .txt file",
        "file",
        csv(CLEAN),
        Raises("DataError", r"cannot tell the format from the extension; set files.format"),
        {"name": "metrics.txt"},
    ),
    Case(
        "ragged_line",
        "a line with an extra field",
        "file",
        csv(CLEAN[:3] + [CLEAN[3] + ",extra"] + CLEAN[4:]),
        Raises("DataError", r"is not readable csv: Error tokenizing data. C error: Expected 5 fields in line 5, saw 6"),
    ),
    Case(
        "negative_latency",
        "a negative latency",
        "file",
        csv(LATENCY[:4] + [LATENCY[4].replace(",34,", ",-3,")] + LATENCY[5:]),
        Batch(11, {"expect_value_in_unit_range": 1}),
    ),
    Case(
        "utilization_250",
        "utilization 250 %",
        "file",
        csv(CLEAN[:4] + [CLEAN[4].replace(",44,", ",250,")] + CLEAN[5:]),
        Batch(11, {"expect_value_in_unit_range": 1}),
    ),
    Case(
        "ratio_above_one",
        "an error rate of 1.7",
        "file",
        csv(rows([0.01] * 4 + [1.7] + [0.01 + i / 1000 for i in range(7)], "error_rate", "ratio")),
        Batch(11, {"expect_value_in_unit_range": 1}),
    ),
    Case(
        "off_grid",
        "a timestamp 2.5 minutes off the 5-minute grid",
        "file",
        csv(CLEAN[:4] + [CLEAN[4].replace("22:20:00", "22:22:30")] + CLEAN[5:]),
        Batch(11, {"expect_timestamp_aligned_to_step": 1}),
    ),
    Case(
        "fractional_replicas",
        "3.5 replicas",
        "file",
        csv(rows([3] * 4 + [3.5] + [4] * 7, "replicas", "count")),
        Batch(11, {"expect_value_integer": 1}),
    ),
    Case(
        "replicas_outside_catalog",
        "1000 replicas (catalog max 12)",
        "file",
        csv(rows([3] * 4 + [1000] + [4] * 7, "replicas", "count")),
        Batch(11, {"expect_replicas_within_catalog": 1}),
    ),
    Case(
        "unit_wrong_dimension",
        "cpu_utilization in ms",
        "file",
        csv(rows(unit="ms")),
        Raises(
            "DataError",
            r"source 'files', series 'cpu_utilization' of \['orders-api'\]: field 'unit': unit 'ms' \(time\) cannot be "
            r"converted to 'percent' \(fraction\)",
        ),
    ),
    Case(
        "unknown_unit",
        "a unit nobody knows (furlongs)",
        "file",
        csv(rows(unit="furlongs")),
        Raises("DataError", r"field 'unit': unit 'furlongs' is unknown; known units are"),
    ),
    Case("unknown_metric", "a metric no suite knows", "file", csv(rows(metric="gpu_temperature")), Batch(0, {"expect_known_metric": 12})),
    Case(
        "spike_1000x",
        "one throughput point 1000 x the series",
        "file",
        csv(rows([600 + i for i in range(5)] + [600_000] + [600 + i for i in range(6)], "throughput", "req/s")),
        Batch(11, {"expect_no_spike": 1}),
    ),
    Case("flat_line", "a stuck exporter: 12 identical CPU values", "file", csv(rows([42] * 12)), Batch(0, {"expect_series_not_flat": 12})),
    Case(
        "counter_reset",
        "a cumulative counter that drops",
        "file",
        csv(rows([1000 + 100 * i for i in range(6)] + [5 + 100 * i for i in range(6)], "requests_total", "count")),
        Batch(11, {"expect_counter_monotonic": 1}),
    ),
    Case("out_of_order", "rows out of time order", "file", csv(CLEAN[6:] + CLEAN[:6]), Batch(12, warnings=("1 rows were out of order",))),
    Case(
        "six_hour_gap",
        "a 6-hour hole in a series",
        "file",
        csv(rows(start="2026-12-04T16:00", n=6) + CLEAN[6:]),
        Batch(12, warnings=("expect_series_max_gap on orders-api/cpu_utilization",)),
    ),
    Case(
        "stale_batch",
        "rows 3 hours older than the interval end",
        "file",
        csv(rows(start="2026-12-04T19:00", n=6)),
        Batch(0, {"expect_batch_fresh": 6}, failure="stale batch: newest point 2026-12-04T19:25:00+00:00"),
        {"end": "2026-12-04T23:00:00Z"},
    ),
    Case(
        "other_services_filtered",
        "--service keeps one service; the other's rows are counted",
        "file",
        csv(CLEAN + rows(service="checkout-api")),
        Batch(12, warnings=("12 rows of services other than ['orders-api'] not ingested",)),
        {"services": ["orders-api"]},
    ),
    Case(
        "tier_from_catalog",
        "no tier column: the catalog's tier is used at validation",
        "file",
        csv(CLEAN),
        Batch(12),
        {"check_tier": "professional"},
    ),
]

CLI_CASES = [
    Case(
        "forecast_unwritable_output",
        "forecast --output under a path that is a file",
        "cli",
        ["forecast", "--input", "{series}", "--horizon", "1h", "--output", "{blocked}/out.csv"],
        Exits(2, r"error: cannot write .*blocked/out.csv: .*blocked is a file, not a folder \(checked before computing anything\)"),
    ),
    Case(
        "anomalies_unwritable_output",
        "anomalies --output under a path that is a file",
        "cli",
        ["anomalies", "--input", "{series}", "--output", "{blocked}/scored.csv"],
        Exits(2, r"error: cannot write .*blocked/scored.csv: .*blocked is a file, not a folder \(checked before computing anything\)"),
    ),
    Case(
        "forecast_output_is_a_folder",
        "forecast --output names a folder",
        "cli",
        ["forecast", "--input", "{series}", "--horizon", "1h", "--output", "{tmp}"],
        Exits(2, r"error: cannot write .*: is a folder, not a file"),
    ),
    Case(
        "sample_fleet_negative_days",
        "sample-fleet --days -5",
        "cli",
        ["sample-fleet", "--days", "-5", "--out", "{tmp}/fleet"],
        Exits(2, r"argument --days: -5 must be > 0"),
    ),
    Case(
        "sample_fleet_unwritable_out",
        "sample-fleet --out under a path that is a file",
        "cli",
        ["sample-fleet", "--days", "1", "--out", "{blocked}/f"],
        Exits(2, r"error: cannot write .*blocked/f: .*blocked is a file, not a folder"),
    ),
    Case(
        "report_unwritable_out",
        "report --out under a path that is a file",
        "cli",
        ["report", "--as-of", "2026-11-01", "--out", "{blocked}/r"],
        Exits(2, r"error: cannot write .*blocked/r: .*blocked is a file, not a folder"),
    ),
    Case(
        "access_log_unwritable_out",
        "access-log --out under a path that is a file",
        "cli",
        ["access-log", "--service", "orders-api", "--from", "2026-10-31T23:00Z", "--to", "2026-11-01T00:00Z", "--out", "{blocked}/a.csv"],
        Exits(2, r"error: cannot write .*blocked/a.csv: .*blocked is a file, not a folder"),
    ),
    Case(
        "data_dir_not_writable",
        "ingest-file with $HEADROOM_DATA_DIR under a file (a data directory that cannot be written)",
        "cli",
        ["ingest-file", "{file}", "--now", NOW],
        Exits(
            2,
            r"error: store .*blocked/data/store: cannot write .*blocked/data/store/.*: Not a directory "
            r"\(check \$HEADROOM_DATA_DIR or store.yaml\)",
        ),
        {"data_dir": "{blocked}/data"},
    ),
    Case(
        "sample_fleet_data_dir_not_writable",
        "sample-fleet into a $HEADROOM_DATA_DIR that cannot be written (a file in the path)",
        "cli",
        ["sample-fleet", "--days", "1"],
        Exits(2, r"error: cannot write .*blocked/data/sample_fleet: .*blocked is a file, not a folder"),
        {"data_dir": "{blocked}/data"},
    ),
    Case(
        "data_dir_read_only_mount",
        "ingest-file with $HEADROOM_DATA_DIR on a read-only file system (/proc)",
        "cli",
        ["ingest-file", "{file}", "--now", NOW],
        Exits(2, r"error: store /proc/headroom-data/store: cannot write /proc/headroom-data/store/.*: No such file or directory"),
        {"data_dir": "/proc/headroom-data"},
    ),
    Case(
        "anomalies_bad_value_line",
        "anomalies on a CSV with a word in the value of its 101st data row",
        "cli",
        ["anomalies", "--input", "{bad_series}", "--output", "{tmp}/scored.csv"],
        Exits(2, r"error: .*bad_series.csv: line 102: field 'value' = 'oops' is not a number"),
    ),
    Case(
        "anomalies_constant_series",
        "anomalies on a constant series",
        "cli",
        ["anomalies", "--input", "{constant_series}", "--output", "{tmp}/scored.csv"],
        Exits(0, r"warning: .*constant_series.csv: the series is constant \(5\); a change from it would be scored"),
    ),
    Case(
        "forecast_header_only",
        "forecast on a CSV with a header and no rows",
        "cli",
        ["forecast", "--input", "{header_only}", "--horizon", "1h", "--output", "{tmp}/f.csv"],
        Exits(2, r"error: .*header_only.csv: no data rows below the header; a forecast needs a history of many regular steps"),
    ),
    Case(
        "forecast_one_extreme_point",
        "forecast of values around 100 with one 1e12 point 25 minutes before the end",
        "cli",
        ["forecast", "--input", "{spiked_series}", "--horizon", "1h", "--output", "{tmp}/f.csv"],
        Exits(0, r"warning: .*spiked_series.csv: 1 outliers replaced \(robust z above forecasting.capacity.outlier_z\)"),
    ),
    Case(
        "horizons_header_only",
        "horizons on a CSV with a header and no rows",
        "cli",
        ["horizons", "--input", "{header_only}"],
        Exits(2, r"error: .*header_only.csv: no data rows below the header"),
    ),
    Case(
        "ingest_file_dry_run",
        "ingest-file --dry-run stores nothing",
        "cli",
        ["ingest-file", "{file}", "--now", NOW, "--dry-run"],
        Exits(0, r'"rows_stored": 12', '"rows_stored": 12, and the store stays empty'),
    ),
    Case(
        "ingest_file_missing",
        "ingest-file of a file that does not exist",
        "cli",
        ["ingest-file", "{tmp}/nope.csv"],
        Exits(2, r"error: ingest-file: .*nope.csv is not a file"),
    ),
    Case(
        "ingest_file_unknown_service",
        "ingest-file --service not in the catalog",
        "cli",
        ["ingest-file", "{file}", "--service", "ghost"],
        Exits(2, r"error: ingest-file: --service \['ghost'\] not in the catalog"),
    ),
    Case(
        "ingest_file_failed_batch",
        "ingest-file of a batch that fails validation",
        "cli",
        ["ingest-file", "{naive}", "--now", NOW],
        Exits(1, r'"status": "failed"', '"status": "failed" with the reasons'),
    ),
    Case(
        "readmit_unknown_fix",
        "quarantine readmit --fix with an unknown name",
        "cli",
        ["quarantine", "readmit", "--batch", "b", "--fix", "magic"],
        Exits(2, r"error: unknown fix 'magic'; fixes: none"),
    ),
    Case(
        "readmit_unknown_zone",
        "quarantine readmit --fix assume_zone:Mars/Base",
        "cli",
        ["quarantine", "readmit", "--batch", "b", "--fix", "assume_zone:Mars/Base"],
        Exits(2, r"error: fix 'assume_zone:Mars/Base': 'Mars/Base' is not an IANA time zone"),
    ),
    Case(
        "readmit_without_batch",
        "quarantine readmit without --batch",
        "cli",
        ["quarantine", "readmit"],
        Exits(2, r"error: quarantine readmit needs --batch"),
    ),
]

CONFIG_CASES = [
    Case(
        "empty_catalog",
        "an empty catalog.yaml",
        "config",
        {"catalog.yaml": ""},
        Raises("ConfigError", r"catalog.yaml: key 'services' must list at least one service \(found nothing\)"),
    ),
    Case(
        "cron_in_cache_yaml",
        'cache.yaml warming.schedule "75 */6 * * *" (the schedule now lives in the cache_warming DAG file)',
        "config",
        {"cache.yaml": ("warming:\n", 'warming:\n  schedule: "75 */6 * * *"\n')},
        Raises("ConfigError", r"cache.yaml warming: WarmingSettings.__init__\(\) got an unexpected keyword argument 'schedule'"),
    ),
    Case(
        "bad_zone_policy",
        "validation.yaml naive_timestamps: Mars/Olympus",
        "config",
        {"validation.yaml": ("future_tolerance_s: 60", "future_tolerance_s: 60\nnaive_timestamps: Mars/Olympus")},
        Raises("ConfigError", r"validation.yaml naive_timestamps='Mars/Olympus' is not an IANA time zone"),
    ),
    Case(
        "catalog_not_yaml",
        "catalog.yaml that is not YAML",
        "config",
        {"catalog.yaml": "services: [\n"},
        Raises("ConfigError", r"catalog.yaml:2:1: not valid YAML: did not find expected node content"),
    ),
    Case(
        "catalog_not_a_mapping",
        "catalog.yaml holding a list",
        "config",
        {"catalog.yaml": "- a\n- b\n"},
        Raises("ConfigError", r"catalog.yaml:1:1: must hold a mapping at top level, found list"),
    ),
    Case(
        "files_format_unknown",
        "sources.yaml files.format: xlsx",
        "config",
        {"sources.yaml": ("format: auto", "format: xlsx")},
        Raises("ConfigError", r"sources.yaml files.format='xlsx' must be auto, csv or parquet"),
    ),
    Case(
        "store_backend_unknown",
        "store.yaml backend: mysql",
        "config",
        {"store.yaml": ("backend: parquet", "backend: mysql")},
        Raises("ConfigError", r"store.yaml backend='mysql' must be one of \['parquet', 'postgres'\]"),
    ),
]

SERVER_CASES = [
    Case(
        "prometheus_unreachable",
        "Prometheus source pointed at a closed port",
        "server",
        None,
        Raises(
            "SourceError",
            r"prometheus at http://127.0.0.1:\d+ unreachable for query .*\(metric 'response_time', service 'orders-api', "
            r".*\) after 1 attempts: ConnectionError",
            "names the URL, the query, metric, service, window and attempts",
        ),
    ),
    Case(
        "prometheus_bad_promql",
        "a PromQL template that does not parse, against a real Prometheus",
        "server",
        None,
        Raises("SourceError", r"prometheus at http://127.0.0.1:\d+ refused .*bad_data", "names the server and Prometheus' bad_data answer"),
    ),
    Case(
        "prometheus_401_basic_echo",
        "a 401 that echoes `Authorization: Basic <user:password>` back",
        "server",
        None,
        Raises("SourceError", r"HTTP 401", "HTTP 401, the credentials masked (neither the base64 nor user:password in the text)"),
    ),
    Case(
        "prometheus_401_bearer_echo",
        "a 401 that echoes the bearer token back",
        "server",
        None,
        Raises("SourceError", r"HTTP 401", "HTTP 401, the token masked"),
    ),
    Case(
        "postgres_unreachable",
        "store backend postgres on a closed port, password in the DSN",
        "server",
        None,
        Raises(
            "StoreError",
            r"cannot connect to the PostgreSQL store: connection failed: .*port \d+ failed: Connection refused",
            "`cannot connect to the PostgreSQL store: ... Connection refused`; the password is not in the text",
        ),
    ),
    Case(
        "postgres_ingest_file",
        "ingest-file with duplicates and a future row on the PostgreSQL store",
        "server",
        None,
        Batch(12, {"expect_timestamp_in_interval;expect_timestamp_not_in_future": 1}, duplicates=2),
    ),
    Case(
        "s3_missing_object",
        "files source on an S3 key that does not exist (moto)",
        "server",
        None,
        Raises("SourceError", r"no S3 object matches s3://catalogue-in/missing.csv"),
    ),
    Case(
        "s3_bad_row",
        "a CSV on S3 with a word in a value (moto)",
        "server",
        None,
        Raises("DataError", r"s3://catalogue-in/bad.csv: field 'value' is not numeric at row 3 \(value='oops'\)"),
    ),
    Case(
        "redis_down",
        "cache warming against a Redis that is not running",
        "server",
        None,
        Raises(
            "WarmResult", r"redis unavailable after \d+ attempts", "status failed, nothing written, `redis unavailable after N attempts`"
        ),
    ),
    Case(
        "redis_wrong_password",
        "cache warming with a wrong Redis password",
        "server",
        None,
        Raises("WarmResult", r"redis", "status failed, nothing written; the password is not in the reason"),
    ),
]

PROCESS_CASES = [
    Case(
        f"concurrent_{what}_{backend}",
        f"two processes ingesting and validating {text} on one {backend} store",
        "process",
        None,
        Holds(outcome),
    )
    for backend in ("parquet", "postgres")
    for what, text, outcome in (
        (
            "adjacent_intervals",
            "adjacent intervals",
            'both batches validated once (never "empty batch" over stored rows), each record counting its window\'s rows, '
            "nothing stored twice, the watermark at the later end (never backwards)",
        ),
        (
            "same_interval",
            "different halves of one interval",
            "one batch, validated; its record counts exactly the rows stored under it; the run whose staging was replaced says so",
        ),
    )
]

CASES: list[Case] = [*FILE_CASES, *CLI_CASES, *CONFIG_CASES, *SERVER_CASES, *PROCESS_CASES]
