"""A stand-in for a Kubernetes API server on 127.0.0.1: the real paths and JSON for Deployments, StatefulSets,
their ``scale`` subresource and ``autoscaling/v2`` HPAs, with resourceVersion conflicts and injectable failures.

No cluster runs in tests; the real ``kubernetes`` client (through ``KubernetesHook``) talks to this server
over HTTP with a generated kubeconfig.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

WORKLOAD = re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/(?P<kind>deployments|statefulsets)/(?P<name>[^/]+)(?P<scale>/scale)?$")
HPA = re.compile(r"^/apis/autoscaling/v2/namespaces/(?P<ns>[^/]+)/horizontalpodautoscalers/(?P<name>[^/]+)$")
KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet"}


class KubeApiServer:
    """Holds objects in memory; every write bumps a global resourceVersion like etcd does.

    :ivar fail_next: list of HTTP statuses to answer the next requests with (e.g. ``[500, 500]``).
    :ivar conflict_next: how many of the next PUTs get 409 Conflict as if another writer got there first.
    :ivar converge: when False, ``status.replicas`` stays where it was (a target that does not converge).
    """

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.version = 100
        self.fail_next: list[int] = []
        self.conflict_next = 0
        self.converge = True
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> KubeApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def kubeconfig(self, directory: Path) -> Path:
        path = Path(directory) / "kubeconfig"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "stand-in",
                    "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
                    "users": [{"name": "headroom", "user": {"token": "stand-in-token"}}],
                    "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "headroom"}}],
                }
            )
        )
        return path

    # -- fixtures ---------------------------------------------------------------------------------

    def _bump(self) -> str:
        self.version += 1
        return str(self.version)

    def add_workload(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        with self.lock:
            self.objects[(kind, namespace, name)] = {
                "apiVersion": "apps/v1",
                "kind": KINDS[kind],
                "metadata": {"name": name, "namespace": namespace, "resourceVersion": self._bump(), "uid": f"uid-{name}"},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
                "status": {"replicas": replicas, "readyReplicas": replicas},
            }

    def add_hpa(self, namespace: str, name: str, target: str, min_replicas: int, max_replicas: int) -> None:
        with self.lock:
            self.objects[("hpa", namespace, name)] = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": namespace, "resourceVersion": self._bump()},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                    "minReplicas": min_replicas,
                    "maxReplicas": max_replicas,
                    "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
                    ],
                },
                "status": {"currentReplicas": min_replicas, "desiredReplicas": min_replicas},
            }

    def replicas(self, kind: str, namespace: str, name: str) -> int:
        return int(self.objects[(kind, namespace, name)]["spec"]["replicas"])

    def external_write(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        """Another writer changes the object (bumps its resourceVersion)."""
        with self.lock:
            obj = self.objects[(kind, namespace, name)]
            obj["spec"]["replicas"] = replicas
            obj["metadata"]["resourceVersion"] = self._bump()

    # -- HTTP -------------------------------------------------------------------------------------

    def _scale_view(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "resourceVersion": meta["resourceVersion"]},
            "spec": {"replicas": obj["spec"]["replicas"]},
            "status": {"replicas": obj["status"]["replicas"], "selector": f"app={meta['name']}"},
        }

    def handle(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append((method, path))
            if self.fail_next:
                code = self.fail_next.pop(0)
                return code, _status(code, "injected failure")
            m, h = WORKLOAD.match(path), HPA.match(path)
            if not m and not h:
                return 404, _status(404, f"the server could not find the requested resource {path}")
            key = (m["kind"], m["ns"], m["name"]) if m else ("hpa", h["ns"], h["name"])
            obj = self.objects.get(key)
            if obj is None:
                kind = m["kind"] if m else "horizontalpodautoscalers"
                return 404, _status(404, f'{kind} "{key[2]}" not found', reason="NotFound")
            is_scale = bool(m and m["scale"])
            if method == "GET":
                return 200, self._scale_view(obj) if is_scale else obj
            if method not in ("PUT", "PATCH") or body is None:
                return 405, _status(405, f"method {method} not allowed")
            sent_version = (body.get("metadata") or {}).get("resourceVersion")
            if method == "PUT" and self.conflict_next:
                self.conflict_next -= 1
                self.external_bump(obj)
                return 409, _conflict(key)
            if method == "PUT" and sent_version and sent_version != obj["metadata"]["resourceVersion"]:
                return 409, _conflict(key)
            if is_scale:
                replicas = (body.get("spec") or {}).get("replicas")
                if not isinstance(replicas, int) or replicas < 0:
                    return 422, _status(422, f"spec.replicas: Invalid value: {replicas!r}", reason="Invalid")
                obj["spec"]["replicas"] = replicas
                if self.converge:
                    obj["status"].update(replicas=replicas, readyReplicas=replicas)
            elif m:
                obj["spec"].update(body.get("spec") or {})
            else:
                spec = body.get("spec") or {}
                lo, hi = spec.get("minReplicas", obj["spec"]["minReplicas"]), spec.get("maxReplicas", obj["spec"]["maxReplicas"])
                if not 1 <= lo <= hi:
                    return 422, _status(
                        422, f"spec.minReplicas: Invalid value: {lo!r}: must be between 1 and maxReplicas {hi}", reason="Invalid"
                    )
                obj["spec"].update(minReplicas=lo, maxReplicas=hi)
            obj["metadata"]["resourceVersion"] = self._bump()
            return 200, self._scale_view(obj) if is_scale else obj

    def external_bump(self, obj: dict[str, Any]) -> None:
        obj["metadata"]["resourceVersion"] = self._bump()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                code, payload = server.handle(self.command, self.path.split("?")[0], body)
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                return

        return Handler


def _status(code: int, message: str, reason: str = "InternalError") -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def _conflict(key: tuple[str, str, str]) -> dict[str, Any]:
    return _status(
        409,
        f'Operation cannot be fulfilled on {key[0]} "{key[2]}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        reason="Conflict",
    )
