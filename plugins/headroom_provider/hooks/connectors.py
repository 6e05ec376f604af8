"""Connector hooks: each owns an Airflow connection and builds the connector of ``connectors.yaml`` on it.

HTTP connectors (Salesforce, HubSpot, ServiceNow, SAP S/4HANA, Dynamics 365) take their base URL, login and
secret from the connection (``host`` with scheme, ``login``, ``password``; ``extra`` for the rest); S3 goes
through the amazon provider's ``S3Hook``, SFTP through the SFTP provider's ``SFTPHook``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.hook import BaseHook

if TYPE_CHECKING:
    from include.headroom.connectors.http import Credentials
    from include.headroom.connectors.settings import ConnectorSettings


def connection_base_url(host: str, schema: str | None, port: int | None) -> str:
    """``https://host[:port]`` from a connection; a host that already holds a scheme is kept as it is."""
    host = (host or "").rstrip("/")
    if "://" in host:
        return host if not port or f":{port}" in host.split("://", 1)[1] else f"{host}:{port}"
    scheme = schema if schema in ("http", "https") else "https"
    return f"{scheme}://{host}" + (f":{port}" if port else "")


class EnterpriseApiHook(BaseHook):
    """The credentials of one enterprise API connection, masked in task logs.

    :param conn_id: the Airflow connection (``connectors.yaml`` names it per connector).
    """

    conn_name_attr = "conn_id"
    default_conn_name = "headroom_enterprise_api"
    conn_type = "http"
    hook_name = "Headroom enterprise API"

    def __init__(self, conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.conn_id = conn_id

    def get_credentials(self) -> Credentials:
        from airflow.sdk.log import mask_secret

        from include.headroom.connectors.http import Credentials

        conn = self.get_connection(self.conn_id)
        extra = conn.extra_dejson or {}
        creds = Credentials(base_url=connection_base_url(conn.host or "", conn.schema, conn.port), login=conn.login or "",
                            password=conn.password or "", token=str(extra.get("token", "")), extra=extra)
        for secret in creds.secrets():
            mask_secret(secret)
        return creds

    def get_connector(self, settings: ConnectorSettings, state_dir: Any, **kwargs: Any) -> Any:
        from include.headroom.connectors.registry import build_http_connector

        return build_http_connector(settings, self.get_credentials(), state_dir, **kwargs)

    def test_connection(self) -> tuple[bool, str]:
        try:
            creds = self.get_credentials()
        except Exception as exc:  # noqa: BLE001 - reported to the UI, as providers do
            return False, str(exc)
        return bool(creds.base_url), f"connection {self.conn_id!r} points at {creds.base_url or '(no host)'}"


def build_connector(settings: ConnectorSettings, data_dir: Any, **kwargs: Any) -> Any:
    """The connector ``settings`` describe, built on its connection through the matching hook."""
    from include.headroom.connectors.registry import download_dir, state_dir

    if settings.kind == "s3":
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from include.headroom.connectors.files import S3Connector

        return S3Connector(settings, S3Hook(aws_conn_id=settings.conn_id).get_conn(), download_dir(data_dir, settings.name), **kwargs)
    if settings.kind == "sftp":
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        from include.headroom.connectors.files import SFTPConnector

        return SFTPConnector(settings, SFTPHook(ssh_conn_id=settings.conn_id).get_conn(), download_dir(data_dir, settings.name), **kwargs)
    return EnterpriseApiHook(settings.conn_id).get_connector(settings, state_dir(data_dir), **kwargs)


def landing_client(conn_id: str) -> Any:
    """A boto3 S3 client for landing records in S3 (the amazon provider's hook on ``conn_id``)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id).get_conn()
