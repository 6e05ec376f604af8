"""Stand-ins on 127.0.0.1 for the SaaS APIs the connectors talk to: Salesforce (OAuth token, SOQL query with
``nextRecordsUrl``, Bulk API 2.0 ingest jobs), HubSpot CRM v3 (list and search with ``after`` cursors, batch
upsert with 207 multi-status), ServiceNow Table API (``sysparm_query``/``sysparm_offset``/``sysparm_limit``) and
OData v4 (SAP S/4HANA and Dynamics 365 flavours: ``$filter``, ``$select``, ``$orderby``, ``$top``,
``Prefer: odata.maxpagesize``, ``@odata.nextLink`` with ``$skiptoken``, JSON ``$batch``).

Each answers with the real service's paths, JSON shapes and error bodies, enforces its credentials, and can
rate-limit (429 with ``Retry-After``), fail (5xx, dropped connections), refuse records of a write, or drop a
field from its payloads, so the connector code under test is the code that would talk to the real service.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from collections.abc import Iterable
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pandas as pd


class Reply:
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        self.status, self.body, self.headers, self.raw = status, body, headers or {}, raw


class ApiServer:
    """The shared machinery: threading HTTP server, call log, sliding-window rate limit, injected faults.

    :ivar rate_limit: ``(calls, window_s)``: more calls than that in the window get 429 with ``Retry-After``.
    :ivar faults: what the next requests get instead of an answer: an HTTP status, or ``"drop"`` to close the connection.
    :ivar reject: record ids a write refuses every time; ``reject_once``: ids refused the first time only.
    :ivar dropped_fields: ``(object, field)`` pairs removed from every payload served (a remote schema change).
    """

    def __init__(self) -> None:
        self.data: dict[str, list[dict[str, Any]]] = {}
        self.calls = 0
        self.throttled = 0
        self.call_log: list[tuple[float, str, str]] = []
        self.rate_limit: tuple[int, float] | None = None
        self.retry_after_s = 1
        self.faults: deque[Any] = deque()
        self.reject: set[str] = set()
        self.reject_once: set[str] = set()
        self.dropped_fields: set[tuple[str, str]] = set()
        self.writes: list[int] = []
        self.inflight = self.max_inflight = 0
        self.write_delay_s = 0.0
        # A database index stand-in for benchmarks: query results are kept per query (off in tests, which edit data in place).
        self.cache_results = False
        self.result_cache: dict[Any, list[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        self._window: deque[float] = deque()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        with self.lock:
            self.calls = self.throttled = 0
            self.call_log.clear()
            self.faults.clear()
            self._window.clear()
            self.rate_limit = None
            self.reject.clear()
            self.reject_once.clear()
            self.dropped_fields.clear()
            self.writes.clear()
            self.max_inflight = 0

    # -- to override ----------------------------------------------------------------------------------

    def authorized(self, headers: Any) -> bool:
        raise NotImplementedError

    def unauthorized(self) -> Reply:
        raise NotImplementedError

    def throttled_reply(self) -> Reply:
        return Reply(429, {"error": {"code": "429", "message": "Too many requests"}})

    def route(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Reply:
        raise NotImplementedError

    def public(self, method: str, path: str) -> bool:
        return False

    # -- helpers ----------------------------------------------------------------------------------------

    def shape(self, obj: str, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if (obj, k) not in self.dropped_fields}

    def _admit(self) -> Reply | None:
        with self.lock:
            self.calls += 1
            if self.faults:
                fault = self.faults.popleft()
                return Reply(-1) if fault == "drop" else Reply(int(fault), {"error": {"code": str(fault), "message": "injected"}})
            if self.rate_limit:
                limit, window = self.rate_limit
                now = time.monotonic()
                while self._window and now - self._window[0] > window:
                    self._window.popleft()
                if len(self._window) >= limit:
                    self.throttled += 1
                    reply = self.throttled_reply()
                    reply.headers["Retry-After"] = str(self.retry_after_s)
                    return reply
                self._window.append(now)
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes: no delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                with server.lock:
                    server.call_log.append((time.monotonic(), self.command, parts.path))
                reply = server._admit()
                if reply is None:
                    if not server.public(self.command, parts.path) and not server.authorized(self.headers):
                        reply = server.unauthorized()
                    else:
                        try:
                            reply = server.route(self.command, parts.path, query, self.headers, body)
                        except Exception as exc:  # noqa: BLE001 - the stand-in answers 500 like a real server would
                            reply = Reply(500, {"error": {"code": "500", "message": f"{type(exc).__name__}: {exc}"}})
                if reply.status == -1:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                raw = reply.raw if reply.raw is not None else (b"" if reply.body is None else json.dumps(reply.body, default=str).encode())
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler

    def begin_write(self, n: int) -> None:
        with self.lock:
            self.writes.append(n)
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        if self.write_delay_s:
            time.sleep(self.write_delay_s)

    def end_write(self) -> None:
        with self.lock:
            self.inflight -= 1

    def refuses(self, rid: str) -> bool:
        with self.lock:
            if rid in self.reject:
                return True
            if rid in self.reject_once:
                self.reject_once.discard(rid)
                return True
        return False


def iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


# -- Salesforce ----------------------------------------------------------------------------------------

SOQL = re.compile(
    r"^SELECT (?P<fields>.+?) FROM (?P<obj>\w+)(?: WHERE (?P<wf>\w+) >= (?P<wv>\S+))?"
    r"(?: ORDER BY (?P<order>\w+) ASC(?:, (?P<order2>\w+) ASC)?)?$"
)


class SalesforceApi(ApiServer):
    """Salesforce REST v60.0: ``/services/oauth2/token`` (client credentials), ``/query`` + ``/query/<locator>``,
    Bulk API 2.0 ``/jobs/ingest``. Timestamps look like ``2026-11-01T10:00:00.000+0000``."""

    VERSION = "v60.0"

    def __init__(self, client_id: str = "headroom-client", client_secret: str = "sf-secret-3f9a") -> None:
        super().__init__()
        self.client_id, self.client_secret = client_id, client_secret
        self.token = "00D" + uuid.uuid4().hex
        self.cursors: dict[str, tuple[list[dict[str, Any]], int, str]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}

    def seed(self, obj: str, n: int, start: str = "2026-11-01T00:00:00Z", step_s: int = 60) -> None:
        t0 = pd.Timestamp(start)
        self.data[obj] = [
            {
                "Id": f"001{i:012d}",
                "Name": f"Account {i}",
                "Industry": ["Energy", "Retail", "Banking"][i % 3],
                "AnnualRevenue": float(1000 * i),
                "SystemModstamp": iso(t0 + pd.Timedelta(seconds=step_s * i)),
            }
            for i in range(n)
        ]

    def touch(self, obj: str, ids: Iterable[int], when: str) -> None:
        for i in ids:
            self.data[obj][i]["SystemModstamp"] = iso(pd.Timestamp(when))
            self.data[obj][i]["Name"] += " (updated)"

    def public(self, method: str, path: str) -> bool:
        return path == "/services/oauth2/token"

    def authorized(self, headers: Any) -> bool:
        return headers.get("Authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> Reply:
        return Reply(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])

    def throttled_reply(self) -> Reply:
        return Reply(429, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])

    def route(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Reply:
        base = f"/services/data/{self.VERSION}"
        if path == "/services/oauth2/token":
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
                return Reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
            return Reply(
                200, {"access_token": self.token, "instance_url": self.url, "token_type": "Bearer", "id": f"{self.url}/id/00D/005"}
            )
        if path == f"{base}/query" and method == "GET":
            return self._query(query.get("q", ""), headers)
        if path.startswith(f"{base}/query/"):
            return self._page(path.rsplit("/", 1)[1])
        if path == f"{base}/jobs/ingest" and method == "POST":
            spec = json.loads(body)
            job = {
                "id": "750" + uuid.uuid4().hex[:15],
                "operation": spec["operation"],
                "object": spec["object"],
                "externalIdFieldName": spec["externalIdFieldName"],
                "state": "Open",
                "contentType": "CSV",
                "numberRecordsProcessed": 0,
                "numberRecordsFailed": 0,
                "rows": [],
                "failed": [],
            }
            self.jobs[job["id"]] = job
            return Reply(200, {k: v for k, v in job.items() if k not in ("rows", "failed")})
        m = re.match(rf"^{base}/jobs/ingest/(\w+)(/batches|/failedResults/|/successfulResults/)?$", path)
        if m:
            job = self.jobs.get(m.group(1))
            if job is None:
                return Reply(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
            sub = m.group(2)
            if sub == "/batches" and method == "PUT":
                if job["state"] != "Open":
                    return Reply(409, [{"errorCode": "INVALIDJOBSTATE", "message": f"Job is in state {job['state']}"}])
                job["rows"].extend(csv.DictReader(io.StringIO(body.decode())))
                return Reply(201)
            if sub is None and method == "PATCH":
                if json.loads(body).get("state") == "UploadComplete":
                    self._process(job)
                return Reply(200, {k: v for k, v in job.items() if k not in ("rows", "failed")})
            if sub is None and method == "GET":
                return Reply(200, {k: v for k, v in job.items() if k not in ("rows", "failed")})
            if sub == "/failedResults/":
                out = io.StringIO()
                cols = ["sf__Id", "sf__Error", *(job["rows"][0].keys() if job["rows"] else [])]
                w = csv.DictWriter(out, fieldnames=cols, lineterminator="\n")
                w.writeheader()
                w.writerows(job["failed"])
                return Reply(200, raw=out.getvalue().encode(), headers={"Content-Type": "text/csv"})
        return Reply(404, [{"errorCode": "NOT_FOUND", "message": f"The requested resource does not exist: {path}"}])

    def _process(self, job: dict[str, Any]) -> None:
        self.begin_write(len(job["rows"]))
        try:
            ext = job["externalIdFieldName"]
            store = self.data.setdefault(job["object"], [])
            index = {r.get(ext): r for r in store}
            for row in job["rows"]:
                if self.refuses(row[ext]):
                    job["failed"].append(
                        {"sf__Id": "", "sf__Error": "FIELD_CUSTOM_VALIDATION_EXCEPTION:Capacity figure rejected:--", **row}
                    )
                    continue
                if row[ext] in index:
                    index[row[ext]].update(row)
                else:
                    store.append(dict(row))
                    index[row[ext]] = store[-1]
            job.update(state="JobComplete", numberRecordsProcessed=len(job["rows"]), numberRecordsFailed=len(job["failed"]))
        finally:
            self.end_write()

    def _query(self, soql: str, headers: Any) -> Reply:
        m = SOQL.match(soql.strip())
        if not m:
            return Reply(400, [{"errorCode": "MALFORMED_QUERY", "message": f"unexpected token in: {soql[:80]}"}])
        obj = m.group("obj")
        if obj not in self.data:
            return Reply(400, [{"errorCode": "INVALID_TYPE", "message": f"sObject type '{obj}' is not supported."}])
        fields = [f.strip() for f in m.group("fields").split(",")]
        known = set(self.data[obj][0]) if self.data[obj] else set(fields)
        for f in fields + [x for x in (m.group("wf"), m.group("order")) if x]:
            if f not in known:
                return Reply(400, [{"errorCode": "INVALID_FIELD", "message": f"No such column '{f}' on entity '{obj}'."}])
        rows = self.data[obj]
        if m.group("wf"):
            since = pd.Timestamp(m.group("wv"))
            rows = [r for r in rows if pd.Timestamp(r[m.group("wf")]) >= since]
        if m.group("order"):
            rows = sorted(rows, key=lambda r: (pd.Timestamp(r[m.group("order")]), r.get(m.group("order2") or "Id")))
        rows = [
            {
                "attributes": {"type": obj, "url": f"/services/data/{self.VERSION}/sobjects/{obj}/{r['Id']}"},
                **self.shape(obj, {f: r.get(f) for f in fields}),
            }
            for r in rows
        ]
        size = 2000
        opts = headers.get("Sforce-Query-Options") or ""
        if "batchSize=" in opts:
            size = max(200, min(2000, int(opts.split("batchSize=")[1].split(",")[0])))
        locator = "01g" + uuid.uuid4().hex[:15]
        self.cursors[locator] = (rows, 0, str(size))
        return self._page(f"{locator}-0")

    def _page(self, locator: str) -> Reply:
        key, _, offset_s = locator.rpartition("-")
        if key not in self.cursors:
            return Reply(400, [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}])
        rows, _, size_s = self.cursors[key]
        offset, size = int(offset_s), int(size_s)
        page = rows[offset : offset + size]
        done = offset + size >= len(rows)
        body: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": page}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/{self.VERSION}/query/{key}-{offset + size}"
        return Reply(200, body)


# -- HubSpot --------------------------------------------------------------------------------------------


class HubSpotApi(ApiServer):
    """HubSpot CRM v3: ``GET /crm/v3/objects/{type}``, ``POST .../search`` (at most 100 a page), ``POST .../batch/upsert``."""

    def __init__(self, token: str = "pat-na1-7c0ffee5-secret") -> None:
        super().__init__()
        self.token = token
        self.search_window = 10_000  # the search endpoint serves at most this many results a query

    def seed(self, obj: str, n: int, start: str = "2026-11-01T00:00:00Z", step_s: int = 60) -> None:
        t0 = pd.Timestamp(start)
        self.data[obj] = []
        for i in range(n):
            ts = (t0 + pd.Timedelta(seconds=step_s * i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            self.data[obj].append(
                {
                    "id": str(1000 + i),
                    "properties": {
                        "name": f"Company {i}",
                        "domain": f"c{i}.example",
                        "numberofemployees": str(10 + i),
                        "lastmodifieddate": ts,
                        "hs_object_id": str(1000 + i),
                    },
                    "createdAt": ts,
                    "updatedAt": ts,
                    "archived": False,
                }
            )

    def authorized(self, headers: Any) -> bool:
        return headers.get("Authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> Reply:
        return Reply(
            401,
            {
                "status": "error",
                "message": "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "correlationId": str(uuid.uuid4()),
                "category": "INVALID_AUTHENTICATION",
            },
        )

    def throttled_reply(self) -> Reply:
        return Reply(
            429,
            {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()),
                "policyName": "TEN_SECONDLY_ROLLING",
            },
        )

    def _out(self, obj: str, r: dict[str, Any], props: list[str]) -> dict[str, Any]:
        keep = set(props) | {"hs_object_id", "lastmodifieddate", "createdate"}
        properties = {k: v for k, v in r["properties"].items() if k in keep and (obj, k) not in self.dropped_fields}
        return self.shape(obj, {**r, "properties": properties})

    def _page(self, obj: str, rows: list[dict[str, Any]], after: str | None, limit: int, props: list[str], path: str) -> Reply:
        start = int(after or 0)
        page = rows[start : start + limit]
        body: dict[str, Any] = {"results": [self._out(obj, r, props) for r in page]}
        if start + limit < len(rows):
            nxt = str(start + limit)
            body["paging"] = {"next": {"after": nxt, "link": f"{self.url}{path}?after={nxt}"}}
        return Reply(200, body)

    def route(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Reply:
        m = re.match(r"^/crm/v3/objects/(\w+)(/search|/batch/upsert)?$", path)
        if not m:
            return Reply(404, {"status": "error", "message": f"Unable to route {method} {path}", "category": "OBJECT_NOT_FOUND"})
        obj, sub = m.group(1), m.group(2)
        if sub is None and method == "GET":
            limit = int(query.get("limit", 10))
            if limit > 100:
                return Reply(400, {"status": "error", "category": "VALIDATION_ERROR", "message": "limit must be <= 100"})
            rows = self.result_cache.get(obj) if self.cache_results else None
            if rows is None:
                rows = sorted(self.data.get(obj, []), key=lambda r: int(r["id"]))
                if self.cache_results:
                    self.result_cache[obj] = rows
            return self._page(obj, rows, query.get("after"), limit, [p for p in query.get("properties", "").split(",") if p], path)
        if sub == "/search":
            spec = json.loads(body)
            limit = int(spec.get("limit", 10))
            if limit > 100:
                return Reply(400, {"status": "error", "category": "VALIDATION_ERROR", "message": "limit must be <= 100"})
            rows = list(self.data.get(obj, []))
            for group in spec.get("filterGroups", []):
                for f in group.get("filters", []):
                    if f["operator"] != "GTE":
                        return Reply(
                            400,
                            {"status": "error", "category": "VALIDATION_ERROR", "message": f"operator {f['operator']} not supported here"},
                        )
                    edge = pd.Timestamp(int(f["value"]), unit="ms", tz="UTC")
                    rows = [r for r in rows if pd.Timestamp(r["properties"][f["propertyName"]]) >= edge]
            for s in reversed(spec.get("sorts", [])):
                rows.sort(
                    key=lambda r: (pd.Timestamp(r["properties"][s["propertyName"]]), int(r["id"])),
                    reverse=s.get("direction") == "DESCENDING",
                )
            if int(spec.get("after") or 0) >= self.search_window:
                return Reply(
                    400,
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f"Search results are limited to {self.search_window} records; refine the filter",
                    },
                )
            return self._page(obj, rows, spec.get("after"), limit, spec.get("properties", []), path)
        if sub == "/batch/upsert" and method == "POST":
            inputs = json.loads(body)["inputs"]
            if len(inputs) > 100:
                return Reply(
                    400, {"status": "error", "category": "VALIDATION_ERROR", "message": f"Batch input size {len(inputs)} exceeds 100"}
                )
            self.begin_write(len(inputs))
            try:
                store = self.data.setdefault(obj, [])
                results, refused = [], []
                for inp in inputs:
                    if self.refuses(str(inp["id"])):
                        refused.append(str(inp["id"]))
                        continue
                    prop = inp["idProperty"]
                    existing = next((r for r in store if r["properties"].get(prop) == inp["id"]), None)
                    now = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.000Z")
                    if existing is None:
                        existing = {"id": str(5000 + len(store)), "properties": {prop: inp["id"]}, "createdAt": now, "archived": False}
                        store.append(existing)
                    existing["properties"].update(inp["properties"], lastmodifieddate=now)
                    existing["updatedAt"] = now
                    results.append(existing)
                answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
                if refused:
                    answer["errors"] = [
                        {
                            "status": "error",
                            "category": "VALIDATION_ERROR",
                            "message": "Property values were not valid",
                            "context": {"ids": refused},
                        }
                    ]
                    answer["numErrors"] = len(refused)
                return Reply(207 if refused else 200, answer)
            finally:
                self.end_write()
        return Reply(405, {"status": "error", "message": f"{method} not allowed", "category": "METHOD_NOT_ALLOWED"})


# -- ServiceNow -----------------------------------------------------------------------------------------


class ServiceNowApi(ApiServer):
    """ServiceNow Table API: ``GET /api/now/table/{table}`` with encoded ``sysparm_query`` (``field>=value``,
    ``ORDERBYfield``), ``sysparm_fields``, ``sysparm_limit``, ``sysparm_offset``; ``X-Total-Count`` header."""

    def __init__(self, user: str = "headroom.integration", password: str = "sn-pass-81c2") -> None:
        super().__init__()
        self.user, self.password = user, password

    def seed(self, table: str, n: int, start: str = "2026-11-01 00:00:00", step_s: int = 60) -> None:
        t0 = pd.Timestamp(start)
        self.data[table] = [
            {
                "sys_id": uuid.UUID(int=i + 1).hex,
                "name": f"service-{i}",
                "owned_by": f"user{i % 7}",
                "busines_criticality": f"{1 + i % 4} - {['critical', 'high', 'medium', 'low'][i % 4]}",
                "operational_status": "1",
                "sys_updated_on": (t0 + pd.Timedelta(seconds=step_s * i)).strftime("%Y-%m-%d %H:%M:%S"),
            }
            for i in range(n)
        ]

    def authorized(self, headers: Any) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return headers.get("Authorization") == expected

    def unauthorized(self) -> Reply:
        return Reply(
            401, {"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"}
        )

    def throttled_reply(self) -> Reply:
        return Reply(
            429,
            {
                "error": {"message": "Rate limit exceeded", "detail": "Rate limit of 100 requests per 10 seconds exceeded"},
                "status": "failure",
            },
        )

    def route(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Reply:
        m = re.match(r"^/api/now/table/(\w+)$", path)
        if not m or method != "GET":
            return Reply(400, {"error": {"message": "Requested URI does not represent any resource", "detail": None}, "status": "failure"})
        table = m.group(1)
        if table not in self.data:
            return Reply(400, {"error": {"message": f"Invalid table {table}", "detail": None}, "status": "failure"})
        cache_key = (table, query.get("sysparm_query", ""))
        rows = self.result_cache.get(cache_key) if self.cache_results else None
        if rows is None:
            rows = list(self.data[table])
            orders: list[str] = []
            for term in [t for t in query.get("sysparm_query", "").split("^") if t]:
                if term.startswith("ORDERBY"):
                    orders.append(term[7:])
                    continue
                field, _, value = term.partition(">=")
                rows = [r for r in rows if r.get(field, "") >= value]
            for field in reversed(orders):
                rows.sort(key=lambda r: r.get(field, ""))
            if self.cache_results:
                self.result_cache[cache_key] = rows
        limit, offset = int(query.get("sysparm_limit", 10000)), int(query.get("sysparm_offset", 0))
        fields = [f for f in query.get("sysparm_fields", "").split(",") if f]
        page = [self.shape(table, {f: r[f] for f in (fields or r) if f in r}) for r in rows[offset : offset + limit]]
        link = f'<{self.url}{path}?sysparm_offset={offset + limit}&sysparm_limit={limit}>;rel="next"'
        return Reply(200, {"result": page}, headers={"X-Total-Count": str(len(rows)), "Link": link})


# -- OData v4 (SAP S/4HANA, Dynamics 365) ----------------------------------------------------------------

FILTER = re.compile(r"^(\w+) (ge|gt) (\S+)$")


class ODataApi(ApiServer):
    """An OData v4 service under ``service_path``. ``auth`` is ``basic`` (SAP) or ``bearer`` (Dynamics)."""

    def __init__(
        self,
        service_path: str,
        auth: str,
        login: str = "HEADROOM_COMM",
        secret: str = "odata-secret-55aa",
        key_field: str = "CostCenter",
        modified_field: str = "LastChangeDateTime",
        max_batch: int = 1000,
    ) -> None:
        super().__init__()
        self.service, self.auth, self.login, self.secret = service_path.rstrip("/"), auth, login, secret
        self.key_field, self.modified_field, self.max_batch = key_field, modified_field, max_batch

    def seed_sap(self, entity_set: str, n: int, start: str = "2026-11-01T00:00:00Z", step_s: int = 60) -> None:
        t0 = pd.Timestamp(start)
        self.data[entity_set] = [
            {
                "ControllingArea": "A000",
                "CostCenter": f"CC{i:07d}",
                "CostCenterName": f"Cost center {i}",
                "CompanyCode": "1010",
                "CostCtrResponsiblePerson": f"P{i % 9}",
                "LastChangeDateTime": (t0 + pd.Timedelta(seconds=step_s * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for i in range(n)
        ]

    def seed_dynamics(self, entity_set: str, n: int, start: str = "2026-11-01T00:00:00Z", step_s: int = 60) -> None:
        t0 = pd.Timestamp(start)
        self.data[entity_set] = [
            {
                "accountid": str(uuid.UUID(int=i + 1)),
                "name": f"Account {i}",
                "revenue": 100.0 * i,
                "_ownerid_value": str(uuid.UUID(int=9)),
                "modifiedon": (t0 + pd.Timedelta(seconds=step_s * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for i in range(n)
        ]

    def authorized(self, headers: Any) -> bool:
        if self.auth == "bearer":
            return headers.get("Authorization") == f"Bearer {self.secret}"
        return headers.get("Authorization") == "Basic " + base64.b64encode(f"{self.login}:{self.secret}".encode()).decode()

    def unauthorized(self) -> Reply:
        return Reply(
            401,
            {
                "error": {
                    "code": "0x80072560" if self.auth == "bearer" else "/IWFND/MED/170",
                    "message": "The user is not authorized" if self.auth == "bearer" else "Logon failed: invalid user or password",
                }
            },
        )

    def throttled_reply(self) -> Reply:
        return Reply(
            429,
            {"error": {"code": "0x80072322", "message": "Number of requests exceeded the limit of 6000 over time window of 300 seconds."}},
        )

    def route(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Reply:
        if not path.startswith(self.service + "/"):
            return Reply(404, {"error": {"code": "404", "message": f"Resource not found for the segment '{path}'."}})
        segment = path[len(self.service) + 1 :]
        if segment == "$batch" and method == "POST":
            return self._batch(json.loads(body))
        if method != "GET" or segment not in self.data:
            return Reply(404, {"error": {"code": "404", "message": f"Resource not found for the segment '{segment}'."}})
        rows = list(self.data[segment])
        known = set(rows[0]) if rows else set()
        select = [s for s in query.get("$select", "").split(",") if s]
        for s in select:
            if s not in known:
                return Reply(400, {"error": {"code": "0x0", "message": f"Could not find a property named '{s}' on type '{segment}'."}})
        if "$filter" in query:
            m = FILTER.match(query["$filter"])
            if not m:
                return Reply(400, {"error": {"code": "0x0", "message": f"Syntax error in $filter '{query['$filter']}'."}})
            f, op, v = m.groups()
            edge = pd.Timestamp(v)
            rows = [r for r in rows if (pd.Timestamp(r[f]) >= edge if op == "ge" else pd.Timestamp(r[f]) > edge)]
        for term in reversed([t.strip() for t in query.get("$orderby", "").split(",") if t.strip()]):
            f, _, direction = term.partition(" ")
            rows.sort(key=lambda r: r[f], reverse=direction == "desc")
        if "$top" in query:
            rows = rows[: int(query["$top"])]
        size = 5000
        prefer = headers.get("Prefer") or ""
        if "odata.maxpagesize=" in prefer:
            size = int(prefer.split("odata.maxpagesize=")[1].split(",")[0])
        skip = int(base64.urlsafe_b64decode(query["$skiptoken"]).decode()) if "$skiptoken" in query else 0
        page = rows[skip : skip + size]
        answer: dict[str, Any] = {
            "@odata.context": f"{self.url}{self.service}/$metadata#{segment}",
            "value": [self.shape(segment, {k: r[k] for k in (select or r)}) for r in page],
        }
        if skip + size < len(rows):
            token = base64.urlsafe_b64encode(str(skip + size).encode()).decode()
            rest = {k: v for k, v in query.items() if k != "$skiptoken"}
            answer["@odata.nextLink"] = f"{self.url}{path}?{urlencode({**rest, '$skiptoken': token})}"
        return Reply(
            200, answer, headers={"OData-Version": "4.0", **({"Preference-Applied": f"odata.maxpagesize={size}"} if prefer else {})}
        )

    def _batch(self, batch: dict[str, Any]) -> Reply:
        requests = batch.get("requests", [])
        if len(requests) > self.max_batch:
            return Reply(
                400, {"error": {"code": "0x0", "message": f"The batch holds {len(requests)} requests; the limit is {self.max_batch}."}}
            )
        self.begin_write(len(requests))
        try:
            responses = []
            for req in requests:
                m = re.match(r"^(\w+)\('?(.*?)'?\)$", req["url"])
                if req["method"] != "PATCH" or not m:
                    responses.append(
                        {"id": req["id"], "status": 400, "body": {"error": {"code": "0x0", "message": f"bad request {req['url']}"}}}
                    )
                    continue
                entity_set, key = m.group(1), unquote(m.group(2)).replace("''", "'")
                if self.refuses(key):
                    responses.append(
                        {
                            "id": req["id"],
                            "status": 400,
                            "body": {
                                "error": {"code": "0x80040265", "message": f"Validation failed for {entity_set}({key}): value out of range"}
                            },
                        }
                    )
                    continue
                store = self.data.setdefault(entity_set, [])
                existing = next((r for r in store if r.get("_key") == key), None)
                if existing is None:
                    existing = {"_key": key}
                    store.append(existing)
                existing.update(req.get("body") or {})
                responses.append({"id": req["id"], "status": 204, "headers": {"odata-version": "4.0"}})
            return Reply(200, {"responses": responses})
        finally:
            self.end_write()


# -- OpenSSH (SFTP) -------------------------------------------------------------------------------------


class SshdServer:
    """Debian's OpenSSH ``sshd`` on a free loopback port, run as the current user with a temporary host key,
    a generated client key authorised in a temporary file, and ``internal-sftp``; ``stop`` ends it."""

    def __init__(self, root: Any) -> None:
        import getpass
        from pathlib import Path

        from tests.servers import free_port, require_binary

        self.sshd = require_binary("sshd", ("/usr/sbin",), "openssh-server")
        self.root = Path(root)
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_key, self.client_key = self.root / "host_ed25519", self.root / "client_ed25519"
        self.config = self.root / "sshd_config"
        self.log = self.root / "sshd.log"
        self.proc: Any = None

    def start(self) -> SshdServer:
        import os
        import subprocess

        self.root.mkdir(parents=True, exist_ok=True)
        for key in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, capture_output=True)
        (self.root / "authorized_keys").write_text(self.client_key.with_suffix(".pub").read_text())
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    f"AllowUsers {self.user}",
                    "Subsystem sftp internal-sftp",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation folder
        self._log_fh = open(self.log, "w")  # noqa: SIM115 - sshd writes to it until stop() closes it
        self.proc = subprocess.Popen([self.sshd, "-D", "-e", "-f", str(self.config)], stdout=self._log_fh, stderr=subprocess.STDOUT)
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on 127.0.0.1:{self.port}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc is not None:
            self._log_fh.close()

    def sftp(self) -> Any:
        """A paramiko SFTP client logged in with the generated key."""
        import paramiko

        ssh = paramiko.SSHClient()
        ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        ssh.connect(
            "127.0.0.1", port=self.port, username=self.user, key_filename=str(self.client_key), look_for_keys=False, allow_agent=False
        )
        client = ssh.open_sftp()
        client._headroom_ssh = ssh  # keep the transport alive as long as the client
        return client

    def airflow_conn(self) -> str:
        """An ``AIRFLOW_CONN_*`` value for the SFTP provider."""
        return json.dumps(
            {
                "conn_type": "sftp",
                "host": "127.0.0.1",
                "port": self.port,
                "login": self.user,
                "extra": {"key_file": str(self.client_key), "no_host_key_check": True},
            }
        )
