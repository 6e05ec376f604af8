"""Hooks for cache warming: the CDN (or origin) host URL warm-ups go to, and CloudFront invalidations."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.sdk import BaseHook

if TYPE_CHECKING:
    import httpx


class CdnHook(BaseHook):
    """An HTTP host serving cached content (a CDN edge or the origin). Connection: host, port, schema
    (``http``/``https``); extra: ``headers`` (dict) sent with every warm-up request."""

    conn_name_attr = "cdn_conn_id"
    default_conn_name = "headroom_cdn"
    conn_type = "http"
    hook_name = "headroom CDN"

    def __init__(self, cdn_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cdn_conn_id = cdn_conn_id

    def base_url(self) -> str:
        conn = self.get_connection(self.cdn_conn_id)
        scheme, host = conn.schema or "http", conn.host or "localhost"
        if "://" in host:
            scheme, host = host.split("://", 1)
        port = f":{conn.port}" if conn.port else ""
        return f"{scheme}://{host.rstrip('/')}{port}"

    def get_conn(self, timeout_s: float = 10.0, concurrency: int = 8) -> httpx.Client:
        """An ``httpx.Client`` on the host, with the connection's headers, ``timeout_s`` and at most ``concurrency`` connections."""
        import httpx

        extra = self.get_connection(self.cdn_conn_id).extra_dejson
        return httpx.Client(base_url=self.base_url(), timeout=timeout_s, limits=httpx.Limits(max_connections=concurrency),
                            headers={str(k): str(v) for k, v in (extra.get("headers") or {}).items()})

    def test_connection(self) -> tuple[bool, str]:
        try:
            with self.get_conn() as client:
                status = client.get("/").status_code
        except Exception as exc:  # reported to the UI, not raised
            return False, f"{self.base_url()}: {exc}"
        return status < 500, f"{self.base_url()} answered HTTP {status}"


class CloudFrontHook(AwsBaseHook):
    """CloudFront through the amazon provider (``client_type="cloudfront"``): invalidations of changed paths."""

    hook_name = "headroom CloudFront"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "cloudfront"
        super().__init__(*args, **kwargs)

    def create_invalidation(self, distribution_id: str, paths: Sequence[str], caller_reference: str | None = None) -> dict[str, Any]:
        """Invalidate ``paths`` (each starting with ``/``) on ``distribution_id``; returns the invalidation (``Id``, ``Status``)."""
        bad = [p for p in paths if not str(p).startswith("/")]
        if not paths or bad:
            raise ValueError(f"paths={list(paths)!r} must be a non-empty list of paths starting with '/' (bad: {bad})")
        response = self.conn.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": list(paths)},
                               "CallerReference": caller_reference or f"headroom-{uuid.uuid4()}"},
        )
        return response["Invalidation"]

    def wait_invalidation(self, distribution_id: str, invalidation_id: str, timeout_s: float = 600, poll_s: float = 5) -> str:
        """Poll until the invalidation is ``Completed``; returns its last status (raises ``TimeoutError`` past ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.conn.get_invalidation(DistributionId=distribution_id, Id=invalidation_id)["Invalidation"]["Status"]
            if str(status).lower() == "completed":  # AWS says "Completed", moto "COMPLETED"
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"CloudFront invalidation {invalidation_id} on {distribution_id} still {status!r} after {timeout_s} s")
            time.sleep(poll_s)
