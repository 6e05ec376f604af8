"""headroom: performance and capacity operations for a fleet of web services (the domain library, free of Airflow)."""

from __future__ import annotations

from include.headroom.config import HeadroomConfig, get_config, load_config
from include.headroom.catalog import Metric, Service, Tier
from include.headroom.configfile import read_yaml
from include.headroom.exceptions import (
    ActionError,
    ConfigError,
    DataError,
    ForecastError,
    GuardRailError,
    HeadroomError,
    RetryExhaustedError,
    SchemaError,
    SourceError,
    StaleDataError,
    StoreError,
    TransientError,
    WaitTimeoutError,
)
from include.headroom.fileio import safe_filename, write_atomic
from include.headroom.redact import redact
from include.headroom.resilience import CircuitBreaker, RetryPolicy, TokenBucket, retry, wait_until
from include.headroom.store import ParquetStore, PostgresStore, Store, UpsertResult, open_store

__all__ = [
    "ActionError",
    "CircuitBreaker",
    "ConfigError",
    "DataError",
    "ForecastError",
    "GuardRailError",
    "HeadroomConfig",
    "HeadroomError",
    "Metric",
    "ParquetStore",
    "PostgresStore",
    "RetryExhaustedError",
    "RetryPolicy",
    "SchemaError",
    "Service",
    "SourceError",
    "StaleDataError",
    "Store",
    "StoreError",
    "Tier",
    "TokenBucket",
    "TransientError",
    "UpsertResult",
    "WaitTimeoutError",
    "get_config",
    "load_config",
    "open_store",
    "read_yaml",
    "redact",
    "retry",
    "safe_filename",
    "wait_until",
    "write_atomic",
]
