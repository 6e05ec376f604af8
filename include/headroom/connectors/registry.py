"""Connector implementations by kind: what ``connectors.yaml`` ``kind`` may name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from include.headroom.exceptions import ConfigError

if TYPE_CHECKING:
    from include.headroom.connectors.http import Credentials
    from include.headroom.connectors.settings import ConnectorSettings


def _salesforce(settings: ConnectorSettings, credentials: Credentials, state_dir: Path, **kw: Any) -> Any:
    from include.headroom.connectors.salesforce import SalesforceConnector

    return SalesforceConnector(settings, credentials, state_dir, **kw)


def _hubspot(settings: ConnectorSettings, credentials: Credentials, state_dir: Path, **kw: Any) -> Any:
    from include.headroom.connectors.hubspot import HubSpotConnector

    return HubSpotConnector(settings, credentials, state_dir, **kw)


def _servicenow(settings: ConnectorSettings, credentials: Credentials, state_dir: Path, **kw: Any) -> Any:
    from include.headroom.connectors.servicenow import ServiceNowConnector

    return ServiceNowConnector(settings, credentials, state_dir, **kw)


def _odata(settings: ConnectorSettings, credentials: Credentials, state_dir: Path, **kw: Any) -> Any:
    from include.headroom.connectors.odata import ODataConnector

    return ODataConnector(settings, credentials, state_dir, **kw)


# HTTP connectors: built from credentials alone (S3 and SFTP take a client from their provider hook).
HTTP_CONNECTORS: dict[str, Callable[..., Any]] = {
    "salesforce": _salesforce,
    "hubspot": _hubspot,
    "servicenow": _servicenow,
    "odata": _odata,
}
FILE_CONNECTORS = ("s3", "sftp")


def build_http_connector(settings: ConnectorSettings, credentials: Credentials, state_dir: str | Path, **kw: Any) -> Any:
    """:raises ConfigError: naming the connector's kind when it is not an HTTP connector."""
    if settings.kind not in HTTP_CONNECTORS:
        raise ConfigError(f"connector {settings.name!r} kind={settings.kind!r} is not an HTTP connector; kinds: {sorted(HTTP_CONNECTORS)}")
    return HTTP_CONNECTORS[settings.kind](settings, credentials, Path(state_dir), **kw)


def state_dir(data_dir: str | Path) -> Path:
    """Where connector state (breaker, daily budget) lives: ``<data dir>/connectors/state``."""
    return Path(data_dir) / "connectors" / "state"


def download_dir(data_dir: str | Path, connector: str) -> Path:
    return Path(data_dir) / "connectors" / "files" / connector
