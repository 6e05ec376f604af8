"""The HeadroomError tree: every error the domain library raises.

::

    HeadroomError
     +-- ConfigError            configuration file or field is invalid
     +-- DataError              input data is unusable (names the file, series, row or field)
     |    +-- SchemaError       required columns or dtypes are missing
     |    +-- StaleDataError    the newest valid point is too old to act on
     +-- StoreError             the metrics store cannot be read or written
     +-- ForecastError          a series cannot be forecast (too short, irregular)
     +-- SourceError            a metrics source failed (unreachable, bad query)
     +-- ActionError            an action could not be planned or applied
          +-- GuardRailError    an action was refused by a guard rail
"""

from __future__ import annotations


class HeadroomError(Exception):
    """Base of every error raised by headroom."""


class ConfigError(HeadroomError):
    """A configuration file or field is invalid."""


class DataError(HeadroomError):
    """Input data is unusable; the message names the offending file, series, row or field."""


class SchemaError(DataError):
    """Required columns or dtypes are missing."""


class StaleDataError(DataError):
    """The newest valid point is too old to act on."""


class StoreError(HeadroomError):
    """The metrics store cannot be read or written."""


class ForecastError(HeadroomError):
    """A series cannot be forecast."""


class SourceError(HeadroomError):
    """A metrics source failed."""


class ActionError(HeadroomError):
    """An action could not be planned or applied."""


class GuardRailError(ActionError):
    """An action was refused by a guard rail."""
