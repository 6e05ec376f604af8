"""PrometheusHook: a Prometheus server's HTTP API as a metrics source."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    import requests

    from include.headroom.config import HeadroomConfig
    from include.headroom.metrics.prometheus import PrometheusSource
    from include.headroom.metrics.source_config import PrometheusSettings


class PrometheusHook(BaseHook):
    """A Prometheus server. Connection: host, port, schema (``http``/``https``), optional login/password
    (basic auth); extra: ``headers`` (dict), ``bearer_token``, ``verify`` (TLS), ``path_prefix``."""

    conn_name_attr = "prometheus_conn_id"
    default_conn_name = "prometheus_default"
    conn_type = "http"
    hook_name = "headroom prometheus"

    def __init__(self, prometheus_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prometheus_conn_id = prometheus_conn_id

    def base_url(self) -> str:
        conn = self.get_connection(self.prometheus_conn_id)
        scheme = conn.schema or "http"
        host = conn.host or "localhost"
        if "://" in host:
            scheme, host = host.split("://", 1)
        port = f":{conn.port}" if conn.port else ""
        prefix = (conn.extra_dejson.get("path_prefix") or "").rstrip("/")
        return f"{scheme}://{host.rstrip('/')}{port}{prefix}"

    def get_conn(self) -> requests.Session:
        """A ``requests.Session`` carrying the connection's auth, headers and TLS setting."""
        import requests

        conn = self.get_connection(self.prometheus_conn_id)
        extra = conn.extra_dejson
        session = requests.Session()
        if conn.login:
            session.auth = (conn.login, conn.password or "")
        session.headers.update({str(k): str(v) for k, v in (extra.get("headers") or {}).items()})
        if extra.get("bearer_token"):
            from airflow.sdk.log import mask_secret

            mask_secret(extra["bearer_token"])
            session.headers["Authorization"] = f"Bearer {extra['bearer_token']}"
        if "verify" in extra:
            session.verify = extra["verify"]
        return session

    def get_source(self, config: HeadroomConfig, settings: PrometheusSettings | None = None) -> PrometheusSource:
        from include.headroom.metrics.prometheus import PrometheusSource
        from include.headroom.metrics.source_config import load_source_settings

        source = PrometheusSource(self.base_url(), settings or load_source_settings().prometheus, config, session=self.get_conn())
        self.log.info("Prometheus source at %s with %d queries", source.base_url, len(source.settings.queries))
        return source

    def test_connection(self) -> tuple[bool, str]:
        from include.headroom.config import get_config
        from include.headroom.exceptions import SourceError

        try:
            source = self.get_source(get_config())
            info = source.build_info()
            source.instant("1")
        except SourceError as exc:
            return False, str(exc)
        return True, f"Prometheus {info.get('version', '?')} at {source.base_url} answers queries"
