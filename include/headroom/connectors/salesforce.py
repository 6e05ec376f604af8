"""Salesforce: OAuth 2.0 client credentials, SOQL queries paged by ``nextRecordsUrl``, Bulk API 2.0 upserts."""

from __future__ import annotations

import csv
import io
import time
from typing import TYPE_CHECKING, Any
from collections.abc import Iterator

from include.headroom.connectors.http import ApiClient, Credentials
from include.headroom.exceptions import AuthenticationError, ConnectorError

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from include.headroom.connectors.settings import ConnectorSettings, ObjectSpec


def soql_datetime(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


class SalesforceConnector:
    """Reads objects with ``SELECT ... WHERE SystemModstamp >= :watermark ORDER BY SystemModstamp`` and writes
    with Bulk API 2.0 ingest jobs (create, upload CSV, UploadComplete, poll, failed results)."""

    def __init__(self, settings: ConnectorSettings, credentials: Credentials, state_dir: str | Path, **client_kwargs: Any) -> None:
        self.settings = settings
        self.version = str(settings.options.get("api_version", "v60.0"))
        self.poll_s = float(settings.options.get("bulk_poll_s", 2.0))
        self.client = ApiClient(settings, credentials, state_dir, authenticate=self._authenticate, **client_kwargs)
        self.stats = self.client.stats

    def _authenticate(self, client: ApiClient) -> None:
        creds = client.credentials
        body = client.json("POST", "/services/oauth2/token", authenticated=False,
                           data={"grant_type": "client_credentials", "client_id": creds.login, "client_secret": creds.password})
        if "access_token" not in body:
            raise AuthenticationError(f"connector {self.settings.name!r}: the token endpoint gave no access_token")
        client.session.headers["Authorization"] = f"Bearer {body['access_token']}"
        if body.get("instance_url"):
            client.base_url = str(body["instance_url"]).rstrip("/")

    def read_changes(self, obj: ObjectSpec, since: pd.Timestamp | None) -> Iterator[list[dict[str, Any]]]:
        fields = list(dict.fromkeys([obj.id, obj.modified, *(f.split(".")[0] for f in obj.fields.values())]))
        where = f" WHERE {obj.modified} >= {soql_datetime(since)}" if since is not None else ""
        soql = f"SELECT {', '.join(fields)} FROM {obj.name}{where} ORDER BY {obj.modified} ASC, {obj.id} ASC"
        headers = {"Sforce-Query-Options": f"batchSize={self.settings.page_size}"}
        body = self.client.json("GET", f"/services/data/{self.version}/query", params={"q": soql}, headers=headers)
        while True:
            yield [{k: v for k, v in r.items() if k != "attributes"} for r in body.get("records", [])]
            if body.get("done", True) or not body.get("nextRecordsUrl"):
                return
            body = self.client.json("GET", body["nextRecordsUrl"], headers=headers)

    def write_batch(self, obj: ObjectSpec, rows: list[dict[str, Any]]) -> dict[str, str]:
        """One Bulk API 2.0 upsert job for ``rows``; returns external id -> ``sf__Error`` of the refused rows."""
        base = f"/services/data/{self.version}/jobs/ingest"
        job = self.client.json("POST", base, json={"object": obj.name, "externalIdFieldName": obj.external_id,
                                                  "contentType": "CSV", "operation": "upsert", "lineEnding": "LF"})
        job_id = job["id"]
        out = io.StringIO()
        columns = list(rows[0]) if rows else [obj.external_id]
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
        self.client.request("PUT", f"{base}/{job_id}/batches", data=out.getvalue().encode(), headers={"Content-Type": "text/csv"})
        self.client.json("PATCH", f"{base}/{job_id}", json={"state": "UploadComplete"})
        while True:
            info = self.client.json("GET", f"{base}/{job_id}")
            if info["state"] in ("JobComplete", "Failed", "Aborted"):
                break
            time.sleep(self.poll_s)
        if info["state"] != "JobComplete":
            raise ConnectorError(f"connector {self.settings.name!r}: Bulk API job {job_id} for {obj.name} ended {info['state']}: "
                                 f"{info.get('errorMessage', '')}")
        if not int(info.get("numberRecordsFailed", 0)):
            return {}
        failed = self.client.request("GET", f"{base}/{job_id}/failedResults/")
        return {r[obj.external_id]: r["sf__Error"] for r in csv.DictReader(io.StringIO(failed.text))}
