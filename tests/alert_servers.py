"""Stand-ins for the SaaS alert channels, on 127.0.0.1, driven by the real provider hooks and clients in tests.

- :class:`SlackStandIn`: an incoming webhook (``POST /services/T../B../<token>``: ``ok``, ``400 invalid_payload``
  without text or blocks, ``429`` with ``Retry-After``) and the Web API methods ``chat.postMessage`` and
  ``chat.update`` (bearer token checked, ``{"ok": false, "error": ...}`` answers as Slack gives them).
- :class:`PagerDutyStandIn`: the Events API v2 ``POST /v2/enqueue`` (``202`` with the ``dedup_key``, ``400``
  ``invalid event`` with the errors, ``429`` on demand) keeping each alert's state by ``dedup_key``.
- :class:`SmtpServer`: aiosmtpd with AUTH LOGIN/PLAIN, keeping every message.
- :class:`PushgatewayServer`: Debian's ``prometheus-pushgateway`` binary.

``fail_next`` (a list of HTTP statuses) makes the next requests fail in order; ``down`` fails every request with 503.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from tests.servers import _wait_http, free_port, require_binary


class _StandIn:
    def __init__(self, tls: bool = False) -> None:
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.tls = tls
        self.ca_bundle: str | None = None
        self.fail_next: list[int] = []
        self.down = False
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                with stand_in.lock:
                    stand_in.requests.append({"path": self.path, "body": raw, "headers": dict(self.headers)})
                    status = 503 if stand_in.down else (stand_in.fail_next.pop(0) if stand_in.fail_next else None)
                if status is not None:
                    headers = {"Retry-After": "1"} if status == 429 else {}
                    self._answer(status, stand_in.error_body(self.path, status), headers)
                    return
                status, body = stand_in.handle(self.path, raw, dict(self.headers))
                self._answer(status, body)

            def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)

    def start(self) -> _StandIn:
        if self.tls:  # a self-signed certificate for 127.0.0.1, trusted by the client through ca_bundle
            import ssl

            workdir = Path(tempfile.mkdtemp(prefix="standin-tls-"))
            cert, key = workdir / "cert.pem", workdir / "key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                           check=True, capture_output=True)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.ca_bundle = str(cert)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def error_body(self, path: str, status: int) -> Any:
        return "error"

    def handle(self, path: str, raw: str, headers: dict[str, str]) -> tuple[int, Any]:
        raise NotImplementedError


class SlackStandIn(_StandIn):
    WEBHOOK_PATH = "/services/T0HEADROOM/B0ALERTS/"

    def __init__(self, webhook_token: str, bot_token: str) -> None:
        super().__init__()
        self.webhook_token, self.bot_token = webhook_token, bot_token
        self.webhook_messages: list[dict[str, Any]] = []
        self.messages: dict[str, dict[str, Any]] = {}  # ts -> message
        self._ts = 1_764_900_000

    def error_body(self, path: str, status: int) -> Any:
        if path.startswith("/api/"):
            return {"ok": False, "error": "ratelimited" if status == 429 else "internal_error"}
        return "rate_limited" if status == 429 else "internal_error"

    def handle(self, path: str, raw: str, headers: dict[str, str]) -> tuple[int, Any]:
        if path.startswith(self.WEBHOOK_PATH):
            if path != self.WEBHOOK_PATH + self.webhook_token:
                return 403, "invalid_token"
            body = json.loads(raw or "{}")
            if not body.get("text") and not body.get("blocks"):
                return 400, "invalid_payload"
            self.webhook_messages.append(body)
            return 200, "ok"
        if headers.get("Authorization") != f"Bearer {self.bot_token}":
            return 200, {"ok": False, "error": "invalid_auth"}
        ctype = headers.get("Content-Type", "")
        body = json.loads(raw or "{}") if "json" in ctype else {k: v[0] for k, v in parse_qs(raw).items()}
        if path == "/api/chat.postMessage":
            if not body.get("channel") or not (body.get("text") or body.get("blocks")):
                return 200, {"ok": False, "error": "no_text" if body.get("channel") else "channel_not_found"}
            self._ts += 1
            ts = f"{self._ts}.000100"
            channel = "C0ALERTS" if body["channel"].startswith("#") else body["channel"]
            self.messages[ts] = {"channel": channel, "text": body.get("text", ""), "thread_ts": body.get("thread_ts"), "updates": 0}
            return 200, {"ok": True, "channel": channel, "ts": ts, "message": {"text": body.get("text", ""), "ts": ts}}
        if path == "/api/chat.update":
            msg = self.messages.get(body.get("ts", ""))
            if msg is None or msg["channel"] != body.get("channel"):
                return 200, {"ok": False, "error": "message_not_found"}
            msg.update(text=body.get("text", ""), updates=msg["updates"] + 1)
            return 200, {"ok": True, "channel": msg["channel"], "ts": body["ts"], "text": msg["text"]}
        return 404, {"ok": False, "error": "unknown_method"}

    def top_level(self) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if not m["thread_ts"]]


class PagerDutyStandIn(_StandIn):
    """Served over TLS: the ``pagerduty`` client refuses a plain-http base URL."""

    def __init__(self, routing_key: str) -> None:
        super().__init__(tls=True)
        self.routing_key = routing_key
        self.events: list[dict[str, Any]] = []
        self.alerts: dict[str, str] = {}  # dedup_key -> triggered | acknowledged | resolved

    def error_body(self, path: str, status: int) -> Any:
        return {"status": "throttle event" if status == 429 else "error", "message": "Requests for this service are arriving too quickly"}

    def handle(self, path: str, raw: str, headers: dict[str, str]) -> tuple[int, Any]:
        if path != "/v2/enqueue":
            return 404, {"status": "not found"}
        try:
            event = json.loads(raw)
        except ValueError:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["body is not JSON"]}
        errors = []
        if event.get("routing_key") != self.routing_key:
            errors.append("'routing_key' is invalid")
        action = event.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        payload = event.get("payload") or {}
        if action == "trigger":
            errors += [f"'payload.{k}' is missing" for k in ("summary", "severity", "source") if not payload.get(k)]
            if payload.get("severity") not in (None, "critical", "error", "warning", "info"):
                errors.append("'payload.severity' is invalid")
        elif not event.get("dedup_key"):
            errors.append("'dedup_key' is missing")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        key = event.get("dedup_key") or f"generated-{len(self.events)}"
        self.events.append(event)
        self.alerts[key] = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}[action]
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}


class SmtpServer:
    """aiosmtpd on 127.0.0.1 with AUTH (no TLS: loopback only), keeping every message."""

    def __init__(self, user: str, password: str) -> None:
        self.port = free_port()
        self.user, self.password = user, password
        self.messages: list[Any] = []
        self.auth_failures = 0

    def start(self) -> SmtpServer:
        from email import message_from_bytes

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        server = self

        class Handler:
            async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
                server.messages.append(message_from_bytes(envelope.content))
                return "250 Message accepted for delivery"

        def authenticator(smtp: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            ok = auth_data.login.decode() == server.user and auth_data.password.decode() == server.password
            if not ok:
                server.auth_failures += 1
            return AuthResult(success=ok, handled=False)

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticator,
                                     auth_require_tls=False, auth_required=True, auth_exclude_mechanism=["LOGIN"])
        self.controller.start()
        return self

    def stop(self) -> None:
        controller = getattr(self, "controller", None)
        if controller is not None:
            controller.stop()


class PushgatewayServer:
    """Debian's ``prometheus-pushgateway`` on a free loopback port."""

    def __init__(self) -> None:
        self.binary = require_binary("prometheus-pushgateway", ("/usr/bin",), package="prometheus-pushgateway")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="pushgateway-"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> PushgatewayServer:
        log = self.workdir / "pushgateway.log"
        self.proc = subprocess.Popen([self.binary, f"--web.listen-address=127.0.0.1:{self.port}"], stdout=log.open("w"),
                                     stderr=subprocess.STDOUT)
        _wait_http(f"{self.url}/-/ready", 30, self.proc, log)
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as resp:
            return resp.read().decode()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
