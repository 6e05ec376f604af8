"""ServiceNow Table API: basic auth, ``sysparm_offset``/``sysparm_limit`` paging, ``sys_updated_on`` watermark."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from collections.abc import Iterator

from include.headroom.connectors.http import ApiClient, Credentials

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from include.headroom.connectors.settings import ConnectorSettings, ObjectSpec


def glide_datetime(ts: pd.Timestamp) -> str:
    """ServiceNow's ``YYYY-MM-DD HH:MM:SS`` (UTC for an API user whose time zone is UTC)."""
    return ts.strftime("%Y-%m-%d %H:%M:%S")


class ServiceNowConnector:
    """Reads ``/api/now/table/{table}`` with ``sys_updated_on>=watermark^ORDERBYsys_updated_on^ORDERBYsys_id``,
    advancing ``sysparm_offset`` by ``sysparm_limit`` until a short page."""

    def __init__(self, settings: ConnectorSettings, credentials: Credentials, state_dir: str | Path, **client_kwargs: Any) -> None:
        self.settings = settings
        self.client = ApiClient(settings, credentials, state_dir, authenticate=self._authenticate, **client_kwargs)
        self.stats = self.client.stats

    def _authenticate(self, client: ApiClient) -> None:
        client.session.auth = (client.credentials.login, client.credentials.password)
        client.session.headers["Accept"] = "application/json"

    def read_changes(self, obj: ObjectSpec, since: pd.Timestamp | None) -> Iterator[list[dict[str, Any]]]:
        query = f"{obj.modified}>={glide_datetime(since)}^" if since is not None else ""
        query += f"ORDERBY{obj.modified}^ORDERBY{obj.id}"
        fields = list(dict.fromkeys([obj.id, obj.modified, *(f.split(".")[0] for f in obj.fields.values())]))
        limit, offset = self.settings.page_size, 0
        while True:
            body = self.client.json("GET", f"/api/now/table/{obj.name}", params={
                "sysparm_query": query, "sysparm_limit": limit, "sysparm_offset": offset,
                "sysparm_fields": ",".join(fields), "sysparm_exclude_reference_link": "true",
            })
            page = body.get("result", [])
            yield page
            if len(page) < limit:
                return
            offset += limit
