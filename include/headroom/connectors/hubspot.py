"""HubSpot CRM v3: private-app bearer token, objects paged by the ``after`` cursor, batch upsert with multi-status errors."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from collections.abc import Iterator

from include.headroom.connectors.http import ApiClient, Credentials
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from include.headroom.connectors.settings import ConnectorSettings, ObjectSpec


class HubSpotConnector:
    """Full reads list ``/crm/v3/objects/{object}``; incremental reads search on ``lastmodifieddate >= watermark``
    sorted ascending; both follow ``paging.next.after``. Writes go to ``/batch/upsert`` by the external id property."""

    SEARCH_WINDOW = 10_000

    def __init__(self, settings: ConnectorSettings, credentials: Credentials, state_dir: str | Path, **client_kwargs: Any) -> None:
        self.settings = settings
        self.client = ApiClient(settings, credentials, state_dir, authenticate=self._authenticate, **client_kwargs)
        self.stats = self.client.stats

    def _authenticate(self, client: ApiClient) -> None:
        token = client.credentials.token or client.credentials.password
        client.session.headers["Authorization"] = f"Bearer {token}"

    def read_changes(self, obj: ObjectSpec, since: pd.Timestamp | None) -> Iterator[list[dict[str, Any]]]:
        properties = [f.split(".", 1)[1] for f in obj.fields.values() if f.startswith("properties.")]
        limit = min(100, self.settings.page_size)
        after: str | None = None
        while True:
            if since is None:
                params: dict[str, Any] = {"limit": limit, "properties": ",".join(properties), "archived": "false"}
                if after:
                    params["after"] = after
                body = self.client.json("GET", f"/crm/v3/objects/{obj.name}", params=params)
            else:
                search: dict[str, Any] = {
                    "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                                   "value": str(int(since.timestamp() * 1000))}]}],
                    "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                    "properties": properties, "limit": limit,
                }
                if after:
                    search["after"] = after
                body = self.client.json("POST", f"/crm/v3/objects/{obj.name}/search", json=search)
            results = body.get("results", [])
            yield results
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            if since is not None and str(after).isdigit() and int(after) >= self.SEARCH_WINDOW and results:
                # search serves at most 10,000 results a query: start a new one from the last change seen
                # (records stamped at that instant are read again and land idempotently)
                since, after = utc(results[-1].get("updatedAt") or results[-1]["properties"]["lastmodifieddate"]), None

    def write_batch(self, obj: ObjectSpec, rows: list[dict[str, Any]]) -> dict[str, str]:
        """Upsert up to 100 rows; a 207 multi-status names refused ids in each error's ``context.ids``."""
        inputs = [{"idProperty": obj.external_id, "id": r[obj.external_id],
                   "properties": {k: ("" if v is None else str(v)) for k, v in r.items()}} for r in rows]
        response = self.client.request("POST", f"/crm/v3/objects/{obj.name}/batch/upsert", json={"inputs": inputs})
        body = response.json() if response.content else {}
        failures: dict[str, str] = {}
        for err in body.get("errors", []):
            ids = (err.get("context") or {}).get("ids") or []
            for rid in ids:
                failures[str(rid)] = f"{err.get('category', 'ERROR')}: {err.get('message', '')}"
            if not ids:  # an error without ids refuses what its message names, else the whole batch
                named = set(re.findall(r"[\w./-]+", err.get("message", ""))) & {str(r[obj.external_id]) for r in rows}
                for rid in named or (str(r[obj.external_id]) for r in rows):
                    failures[rid] = f"{err.get('category', 'ERROR')}: {err.get('message', '')}"
        return failures
