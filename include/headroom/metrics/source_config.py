"""Source and store settings (``sources.yaml``, ``store.yaml``) loaded into validated, frozen dataclasses."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from include.headroom.configfile import CONFIG_DIR, config_directory, read_once
from include.headroom.configfile import build as _build
from include.headroom.configfile import require as _require
from include.headroom.exceptions import ConfigError

SOURCES_FILE = "sources.yaml"
STORE_FILE = "store.yaml"
STORE_BACKENDS = ("parquet", "postgres")


@dataclass(frozen=True)
class UnitSettings:
    """Canonical unit per metric, convertible units as (dimension, factor to base), and alternative spellings."""

    canonical: Mapping[str, str]
    factors: Mapping[str, tuple[str, float]]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for metric, unit in self.canonical.items():
            _require(unit in self.factors, f"sources.yaml units.canonical.{metric}: unit {unit!r} is not in units.factors")
        for alias, unit in self.aliases.items():
            _require(unit in self.factors, f"sources.yaml units.aliases.{alias}: unit {unit!r} is not in units.factors")
        for unit, (_, factor) in self.factors.items():
            _require(factor > 0, f"sources.yaml units.factors.{unit}: factor {factor!r} must be > 0")


@dataclass(frozen=True)
class PromQuery:
    """One PromQL template mapped onto a canonical metric."""

    metric: str
    promql: str
    unit: str
    labels: Mapping[str, str] = field(default_factory=dict)
    shift_s: int = 0
    keep_labels: tuple[str, ...] = ()
    service_label: str = "service"

    def __post_init__(self) -> None:
        _require(bool(self.promql.strip()), f"sources.yaml prometheus query for {self.metric!r}: promql is empty")

    @property
    def per_service(self) -> bool:
        return "$service" in self.promql


@dataclass(frozen=True)
class PrometheusSettings:
    conn_id: str
    step_s: int
    max_points_per_series: int
    timeout_s: float
    retries: int
    backoff_s: float
    queries: tuple[PromQuery, ...]

    def __post_init__(self) -> None:
        _require(self.step_s > 0, f"sources.yaml prometheus.step_s={self.step_s!r} must be > 0")
        _require(
            1 < self.max_points_per_series <= 11000,
            f"sources.yaml prometheus.max_points_per_series={self.max_points_per_series!r} must be in (1, 11000]",
        )
        _require(self.retries >= 1, f"sources.yaml prometheus.retries={self.retries!r} must be >= 1")


@dataclass(frozen=True)
class CloudWatchQuery:
    """One CloudWatch metric (or metric-math expression over it) mapped onto a canonical metric."""

    metric: str
    namespace: str
    metric_name: str
    stat: str
    unit: str
    dimensions: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    expression: str | None = None
    id: str = "m"
    result_unit: str | None = None

    def __post_init__(self) -> None:
        _require(
            self.id.isidentifier() and self.id[0].islower(),
            f"sources.yaml cloudwatch query {self.metric!r}: id {self.id!r} must start lower-case",
        )


@dataclass(frozen=True)
class CloudWatchSettings:
    conn_id: str
    period_s: int
    max_queries_per_call: int
    retries: int
    backoff_s: float
    queries: tuple[CloudWatchQuery, ...]

    def __post_init__(self) -> None:
        _require(
            self.period_s > 0 and self.period_s % 60 == 0, f"sources.yaml cloudwatch.period_s={self.period_s!r} must be a multiple of 60"
        )
        _require(
            1 <= self.max_queries_per_call <= 500,
            f"sources.yaml cloudwatch.max_queries_per_call={self.max_queries_per_call!r} must be in [1, 500]",
        )
        _require(self.retries >= 1, f"sources.yaml cloudwatch.retries={self.retries!r} must be >= 1")


@dataclass(frozen=True)
class FileSettings:
    conn_id: str
    paths: tuple[str, ...]
    format: str
    columns: Mapping[str, str]
    timestamp_format: str | None = None
    default_unit: str | None = None
    label_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require(self.format in ("auto", "csv", "parquet"), f"sources.yaml files.format={self.format!r} must be auto, csv or parquet")
        for required in ("ts", "service", "metric", "value"):
            _require(required in self.columns, f"sources.yaml files.columns: no file column mapped to {required!r}")
        _require("unit" in self.columns or self.default_unit, "sources.yaml files: map a unit column or set default_unit")


@dataclass(frozen=True)
class SourceSettings:
    units: UnitSettings
    prometheus: PrometheusSettings
    cloudwatch: CloudWatchSettings
    files: FileSettings


@dataclass(frozen=True)
class StoreSettings:
    """Which store backend holds the tables: the embedded Parquet store, or PostgreSQL through a connection."""

    backend: str
    postgres_conn_id: str
    postgres_schema: str

    def __post_init__(self) -> None:
        _require(self.backend in STORE_BACKENDS, f"store.yaml backend={self.backend!r} must be one of {list(STORE_BACKENDS)}")
        _require(self.postgres_schema.isidentifier(), f"store.yaml postgres.schema={self.postgres_schema!r} must be an identifier")


def _config_file(name: str, config_dir: str | Path | None) -> Path:
    """``name`` in the active config folder; the shipped file when that folder does not override it."""
    path = config_directory(config_dir) / name
    return path if path.exists() else CONFIG_DIR / name


def _read(path: Path) -> dict[str, Any]:
    return read_once(path)


def load_source_settings(config_dir: str | Path | None = None) -> SourceSettings:
    """Load ``sources.yaml``.

    :raises ConfigError: naming the section and field at fault.
    """
    raw = _read(_config_file(SOURCES_FILE, config_dir))
    try:
        units_raw, prom, cw, files = raw["units"], raw["prometheus"], raw["cloudwatch"], raw["files"]
    except KeyError as exc:
        raise ConfigError(f"sources.yaml: section {exc} is missing") from None
    units = UnitSettings(
        canonical=dict(units_raw["canonical"]),
        factors={u: (str(d), float(f)) for u, (d, f) in units_raw["factors"].items()},
        aliases={str(k): str(v) for k, v in (units_raw.get("aliases") or {}).items()},
    )
    prom_queries = tuple(
        _build(
            PromQuery,
            {**q, "labels": dict(q.get("labels") or {}), "keep_labels": tuple(q.get("keep_labels") or ())},
            f"sources.yaml prometheus query {i}",
        )
        for i, q in enumerate(prom.get("queries") or [])
    )
    cw_queries = tuple(
        _build(
            CloudWatchQuery,
            {**q, "dimensions": dict(q.get("dimensions") or {}), "labels": dict(q.get("labels") or {})},
            f"sources.yaml cloudwatch query {i}",
        )
        for i, q in enumerate(cw.get("queries") or [])
    )
    return SourceSettings(
        units=units,
        prometheus=_build(PrometheusSettings, {**prom, "queries": prom_queries}, "sources.yaml prometheus"),
        cloudwatch=_build(CloudWatchSettings, {**cw, "queries": cw_queries}, "sources.yaml cloudwatch"),
        files=_build(
            FileSettings,
            {
                **files,
                "paths": tuple(files.get("paths") or ()),
                "label_columns": tuple(files.get("label_columns") or ()),
                "columns": dict(files["columns"]),
            },
            "sources.yaml files",
        ),
    )


def load_store_settings(config_dir: str | Path | None = None) -> StoreSettings:
    """Load ``store.yaml``; ``$HEADROOM_STORE_BACKEND`` overrides its backend."""
    raw = _read(_config_file(STORE_FILE, config_dir))
    postgres = raw.get("postgres") or {}
    return StoreSettings(
        backend=str(os.environ.get("HEADROOM_STORE_BACKEND") or raw.get("backend", "parquet")),
        postgres_conn_id=str(postgres.get("conn_id", "postgres_headroom")),
        postgres_schema=str(postgres.get("schema", "headroom")),
    )
