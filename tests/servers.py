"""Real servers for tests, started on 127.0.0.1 with temporary data and stopped afterwards.

Prometheus (Debian package ``prometheus``), PostgreSQL (``initdb``/``pg_ctl``) and
moto in server mode. A fixture skips only when the server's binary is absent, and
says which; ``.ci/run`` installs them, so CI runs every test.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest
import contextlib

POSTGRES_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str, dirs: tuple[str, ...] = ()) -> str | None:
    for d in dirs:
        if (Path(d) / name).is_file():
            return str(Path(d) / name)
    found = shutil.which(name)
    if found is None and dirs:  # any other packaged PostgreSQL version
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        found = str(candidates[-1]) if candidates else None
    return found


def require_binary(name: str, dirs: tuple[str, ...] = (), package: str = "") -> str:
    path = _binary(name, dirs)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package or name}; .ci/run installs it)")
    return path


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s:\n{log.read_text()[-2000:]}")


class PrometheusServer:
    """A Prometheus process on a free loopback port with its own TSDB folder."""

    def __init__(self, workdir: Path, scrape_targets: list[str] | None = None, scrape_interval: str = "1s") -> None:
        self.binary = require_binary("prometheus")
        self.workdir = workdir
        self.data = workdir / "tsdb"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval}, "scrape_configs": []}
        if scrape_targets:
            config["scrape_configs"].append({"job_name": "fleet", "static_configs": [{"targets": scrape_targets}]})
        (workdir / "prometheus.yml").write_text(json.dumps(config))
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "prometheus.log"

    def backfill(self, openmetrics_chunks: Iterator[str]) -> None:
        """Write history through ``promtool tsdb create-blocks-from openmetrics`` (before start)."""
        promtool = require_binary("promtool", package="prometheus")
        source = self.workdir / "history.om"
        with source.open("w") as fh:
            for chunk in openmetrics_chunks:
                fh.write(chunk)
        subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(self.data)],
                       check=True, capture_output=True, text=True)
        source.unlink()

    def start(self) -> PrometheusServer:
        with self.log.open("w") as fh:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={self.workdir / 'prometheus.yml'}", f"--storage.tsdb.path={self.data}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=100y", "--log.level=warn"],
                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
            )
        _wait_http(f"{self.url}/-/ready", 60, self.proc, self.log)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class PostgresServer:
    """A throw-away PostgreSQL cluster (``initdb`` in a temp folder) on a free loopback port."""

    def __init__(self) -> None:
        import tempfile

        self.initdb = require_binary("initdb", POSTGRES_BIN_DIRS, "postgresql")
        self.pg_ctl = require_binary("pg_ctl", POSTGRES_BIN_DIRS, "postgresql")
        # Its own folder directly under /tmp: as root, the server runs as "nobody", who must reach it.
        self.workdir = Path(tempfile.mkdtemp(prefix="headroom-pg-"))
        self.data = self.workdir / "pgdata"
        self.port = free_port()
        self.user = "headroom"
        self.dbname = "postgres"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={self.dbname}"

    def conn_uri(self) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.dbname}"

    def _run(self, *args: str) -> None:
        kwargs = {}
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            import pwd

            nobody = pwd.getpwnam("nobody")
            os.chown(self.workdir, nobody.pw_uid, nobody.pw_gid)
            kwargs = {"user": nobody.pw_uid, "group": nobody.pw_gid}
        subprocess.run(list(args), check=True, capture_output=True, text=True, **kwargs)

    def start(self) -> PostgresServer:
        self._run(self.initdb, "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.workdir / "pg.log"), "-w", "-t", "60",
                  "-o", f"-h 127.0.0.1 -p {self.port} -k {self.workdir} -F", "start")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.workdir, ignore_errors=True)


class MotoServer:
    """moto in server mode on a free loopback port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> MotoServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def aws_conn(self) -> str:
        """An ``AIRFLOW_CONN_*`` value for the amazon provider pointing at this server."""
        return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                           "extra": {"region_name": "us-east-1", "endpoint_url": self.url}})


def serve(server: Any) -> Iterator[Any]:
    """Start ``server`` for a fixture, yield it, stop it afterwards; a failed start still cleans up what it began."""
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    yield from serve(PostgresServer())


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = MotoServer().start()
    yield server
    server.stop()


class RedisServer:
    """A ``redis-server`` (Debian package ``redis-server``) on a free loopback port: temp dir, no persistence, a ``maxmemory`` limit."""

    def __init__(self, maxmemory: str = "16mb", policy: str = "allkeys-lru", password: str | None = None) -> None:
        import tempfile

        self.binary = require_binary("redis-server")
        self.workdir = Path(tempfile.mkdtemp(prefix="headroom-redis-"))
        self.port = free_port()
        self.maxmemory, self.policy, self.password = maxmemory, policy, password
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir), "--save", "",
                "--appendonly", "no", "--maxmemory", self.maxmemory, "--maxmemory-policy", self.policy]
        if self.password:
            args += ["--requirepass", self.password]
        with (self.workdir / "redis.log").open("w") as fh:
            self.proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{(self.workdir / 'redis.log').read_text()[-2000:]}")
            try:
                if self.client().ping():
                    return self
            except Exception:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server on port {self.port} not ready after 20 s")

    def client(self, **kwargs: object):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5, **kwargs)

    def conn_uri(self) -> str:
        """An ``AIRFLOW_CONN_*`` value for the redis provider's ``RedisHook``."""
        return json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": self.port, "password": self.password,
                           "extra": {"db": 0}})

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from serve(RedisServer())


class OriginStandIn:
    """An HTTP origin / CDN edge stand-in on 127.0.0.1: ``GET /<key>`` returns ``size`` deterministic bytes.

    Counts requests per path, answers ``X-Cache: Miss`` the first time a path is served and ``Hit``
    afterwards, and fails (``fail_next`` answers with ``fail_status``) or slows down (``delay_s``) on demand.
    """

    def __init__(self, size: int = 1024) -> None:
        import threading
        from collections import Counter
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        stand_in = self
        self.size, self.delay_s, self.fail_next, self.fail_status = size, 0.0, 0, 503
        self.fail_paths: set[str] = set()
        self.requests: Counter[str] = Counter()
        self.served: set[str] = set()
        self._lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                with stand_in._lock:
                    stand_in.requests[path] += 1
                    failing = stand_in.fail_next > 0 or path in stand_in.fail_paths
                    if stand_in.fail_next > 0:
                        stand_in.fail_next -= 1
                    hit = path in stand_in.served
                    if not failing:
                        stand_in.served.add(path)
                    stand_in.in_flight += 1
                    stand_in.max_in_flight = max(stand_in.max_in_flight, stand_in.in_flight)
                self._counted = True
                try:
                    self._answer(path, failing, hit)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away: what a slow origin is for
                finally:
                    self._leave()

            def _leave(self) -> None:
                # A request stops counting as in flight before its answer is written: once the client
                # has the answer it may send the next request before this thread gets the lock again.
                with stand_in._lock:
                    if self._counted:
                        stand_in.in_flight -= 1
                        self._counted = False

            def _answer(self, path: str, failing: bool, hit: bool) -> None:
                from include.headroom.cache.access_log import sample_value

                time.sleep(stand_in.delay_s)
                self._leave()
                if failing:
                    self.send_response(stand_in.fail_status)
                    self.end_headers()
                    return
                body = sample_value(path.lstrip("/"), stand_in.size)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Cache", "Hit from stand-in" if hit else "Miss from stand-in")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> OriginStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin_stand_in() -> Iterator[OriginStandIn]:
    server = OriginStandIn().start()
    yield server
    server.stop()
