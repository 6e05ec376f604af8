"""The HeadroomError tree: every error the domain library raises.

::

    HeadroomError
     +-- ConfigError                configuration file or field is invalid (names file, line and key)
     |    +-- UnknownNameError      a name is not registered (also a KeyError)
     +-- InvalidArgumentError       a caller passed a value out of range (also a ValueError)
     +-- DataError                  input data is unusable (names the file, series, row or field)
     |    +-- SchemaError           required columns or dtypes are missing
     |    |    +-- RemoteSchemaError    a remote record lacks a mapped field (connector, object, record, field)
     |    +-- StaleDataError        the newest valid point is too old to act on
     |    +-- ReportError           the report cannot be drawn from the figures it was given (also a ValueError)
     +-- StoreError                 the metrics store cannot be read or written
     +-- ForecastError              a series cannot be forecast (too short, irregular)
     +-- SourceError                a metrics source failed (unreachable, bad query)
     |    +-- ConnectorError        a connector call failed (names connector, method and path)
     |         +-- AuthenticationError  the remote rejected the credentials (never quotes them)
     |         +-- CircuitOpenError     the breaker is open: no call is made until the cool-down passes
     |         +-- QuotaExhaustedError  the connector's daily call budget is spent
     |         +-- PartialFailureError  some records of a write were refused after every retry round
     +-- CacheError                 a cache could not be warmed
     |    +-- CacheUnavailableError the cache stayed unreachable through every retry
     |    +-- OriginError           the origin of cached values kept failing (also an OSError)
     +-- ActionError                an action could not be planned or applied
     |    +-- GuardRailError        an action was refused by a guard rail
     +-- TransientError             a failure worth retrying (timeout, refused connection, 429, 5xx); may carry Retry-After
     +-- RetryExhaustedError        a call kept failing through every attempt of its RetryPolicy
     +-- WaitTimeoutError           a polled condition did not hold in time (also a TimeoutError)

Text taken from a remote answer goes through :func:`include.headroom.redact.redact` before it is put into
any of these messages.
"""

from __future__ import annotations


class HeadroomError(Exception):
    """Base of every error raised by headroom."""


class ConfigError(HeadroomError):
    """A configuration file or field is invalid."""


class UnknownNameError(ConfigError, KeyError):
    """A name (an expectation, a loader...) is not registered; a ``KeyError`` too, for callers that catch that."""

    def __str__(self) -> str:  # KeyError quotes its argument; the message reads better without
        return str(self.args[0]) if self.args else ""


class InvalidArgumentError(HeadroomError, ValueError):
    """A caller passed a value out of range; a ``ValueError`` too, for callers that catch that."""


class DataError(HeadroomError):
    """Input data is unusable; the message names the offending file, series, row or field."""


class SchemaError(DataError):
    """Required columns or dtypes are missing."""


class RemoteSchemaError(SchemaError):
    """A remote record does not match the mapping in ``connectors.yaml``."""


class StaleDataError(DataError):
    """The newest valid point is too old to act on."""


class ReportError(DataError, ValueError):
    """The report cannot be drawn from the figures it was given."""


class StoreError(HeadroomError):
    """The metrics store cannot be read or written."""


class ForecastError(HeadroomError):
    """A series cannot be forecast."""


class SourceError(HeadroomError):
    """A metrics source failed."""


class ConnectorError(SourceError):
    """A connector call failed; the message names the connector, the request and the remote's own (redacted) error text."""


class AuthenticationError(ConnectorError):
    """The remote rejected the connection's credentials."""


class CircuitOpenError(ConnectorError):
    """A circuit breaker is open."""


class QuotaExhaustedError(ConnectorError):
    """The connector's daily call budget is spent."""


class PartialFailureError(ConnectorError):
    """Records of a write were refused after every retry round; ``failures`` maps record id -> remote error."""

    def __init__(self, message: str, failures: dict[str, str]) -> None:
        super().__init__(message)
        self.failures = failures


class CacheError(HeadroomError):
    """A cache could not be warmed."""


class CacheUnavailableError(CacheError):
    """The cache stayed unreachable through every retry."""


class OriginError(CacheError, OSError):
    """The origin of cached values kept failing; an ``OSError`` too, for callers that catch that."""


class ActionError(HeadroomError):
    """An action could not be planned or applied."""


class GuardRailError(ActionError):
    """An action was refused by a guard rail."""


class TransientError(HeadroomError):
    """A failure worth retrying; ``retry_after`` holds the remote's ``Retry-After`` (seconds or an HTTP date) when it sent one."""

    def __init__(self, message: str, retry_after: str | float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryExhaustedError(HeadroomError):
    """A call kept failing through every attempt of its retry policy; ``attempts`` says how many were made."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class WaitTimeoutError(HeadroomError, TimeoutError):
    """A polled condition did not hold before the timeout; a ``TimeoutError`` too."""
