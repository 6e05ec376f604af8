"""headroom: performance and capacity operations for a fleet of web services (the domain library, free of Airflow)."""

from __future__ import annotations

from include.headroom.config import HeadroomConfig, Metric, Service, Tier, get_config, load_config
from include.headroom.exceptions import (
    ActionError,
    ConfigError,
    DataError,
    ForecastError,
    GuardRailError,
    HeadroomError,
    SchemaError,
    SourceError,
    StaleDataError,
    StoreError,
)
from include.headroom.store import ParquetStore, PostgresStore, Store, UpsertResult, open_store

__all__ = [
    "ActionError",
    "ConfigError",
    "DataError",
    "ForecastError",
    "GuardRailError",
    "HeadroomConfig",
    "HeadroomError",
    "Metric",
    "ParquetStore",
    "PostgresStore",
    "SchemaError",
    "Service",
    "SourceError",
    "StaleDataError",
    "Store",
    "StoreError",
    "Tier",
    "UpsertResult",
    "get_config",
    "load_config",
    "open_store",
]
