"""The PagerDuty provider's Events API v2 hook, with the connection's host honoured as the Events API address."""

from __future__ import annotations

from typing import Any

from airflow.providers.pagerduty.hooks.pagerduty_events import PagerdutyEventsHook, prepare_event_data


class HeadroomPagerdutyEventsHook(PagerdutyEventsHook):
    """:class:`PagerdutyEventsHook` whose events go to the connection's host when one is set (an EU account's
    ``https://events.eu.pagerduty.com``, a proxy, a test server; the client accepts https only) and the extra's
    ``ca_bundle`` trusted; the routing key stays the connection's password.

    The provider's ``send_event`` always uses the US address. The ``pagerduty`` client retries a 429 itself; it
    is bounded here to ``retries_429`` so a channel that keeps refusing fails instead of blocking the run.
    """

    def __init__(self, pagerduty_events_conn_id: str, retries_429: int = 2) -> None:
        super().__init__(pagerduty_events_conn_id=pagerduty_events_conn_id)
        conn = self.get_connection(pagerduty_events_conn_id)
        host = conn.host or ""
        self.base_url = host.rstrip("/") if host.startswith("https://") else None
        self.ca_bundle = conn.extra_dejson.get("ca_bundle")  # a private CA (a TLS-inspecting proxy, a test server)
        self.retries_429 = retries_429

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def client(self) -> Any:
        import ssl

        import pagerduty

        kwargs = {"verify": ssl.create_default_context(cafile=self.ca_bundle)} if self.ca_bundle else {}
        client = pagerduty.EventsApiV2Client(self.integration_key, base_url=self.base_url, **kwargs)
        client.retry = {429: self.retries_429}
        client.sleep_timer = 0.5
        return client

    def send_event(self, summary: str, severity: str, source: str = "airflow", action: str = "trigger", dedup_key: str | None = None,
                   **kwargs: Any) -> str:
        data = prepare_event_data(summary=summary, severity=severity, source=source, action=action, dedup_key=dedup_key, **kwargs)
        return self.client().send_event(**data)
