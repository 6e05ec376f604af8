"""A local CeleryExecutor cluster on 127.0.0.1: PostgreSQL, Redis, and Airflow's scheduler, dag-processor, api-server and Celery workers.

``python scripts/cluster.py up [--workers 2]`` starts it (``make cluster``), ``down`` stops
every process it started (``make cluster-down``), ``status`` lists them, ``env`` prints the
environment to reach it from a shell (``eval "$(python scripts/cluster.py env)"``).

Every component gets a free loopback port; its state (PostgreSQL data, logs, the Airflow home,
the headroom store and reports) lives in one folder, ``$HEADROOM_CLUSTER_DIR`` (default
``/tmp/headroom-cluster``), described by ``cluster.json``. The workers run the project's DAG
bundle (``dags/``, ``plugins/``) and share the store through the filesystem. Each worker has
its own Celery hostname (``worker<N>@headroom``) and its own log-server port, so two workers
on one machine do not collide.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))
from include.headroom.exceptions import WaitTimeoutError  # noqa: E402
from include.headroom.resilience import wait_until  # noqa: E402

DEFAULT_CLUSTER_DIR = Path("/tmp/headroom-cluster")
POSTGRES_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin")
STATE_FILE = "cluster.json"
PG_USER = "headroom"
PG_DB = "airflow"
STORE_DB = "headroom"  # the headroom store's database (schema ``headroom``) when the cluster runs with store_backend="postgres"
# Airflow components, started in this order after the metadata database is migrated.
SERVICES = ("api-server", "scheduler", "dag-processor")


class ClusterError(RuntimeError):
    """The cluster could not be started, reached or stopped; the message names the component and its log."""


def worker_hostname() -> str:
    """The host name a Celery worker's task instances record: its cluster name (``worker1``), else the machine's."""
    return os.environ.get("HEADROOM_WORKER_NAME") or socket.getfqdn()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str, dirs: tuple[str, ...] = ()) -> str:
    for directory in dirs:
        if (Path(directory) / name).is_file():
            return str(Path(directory) / name)
    found = shutil.which(name)
    if found is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        found = str(candidates[-1]) if candidates else None
    if found is None:
        raise ClusterError(f"{name} is not installed (Debian packages: postgresql, redis-server)")
    return found


def _airflow() -> str:
    return str(Path(sys.executable).with_name("airflow"))


@dataclass
class ClusterState:
    """What ``up`` started: ports, secrets, process ids; written to ``cluster.json`` so ``down`` can stop it."""

    root: str
    workers: int = 2
    concurrency: int = 2
    pg_port: int = 0
    redis_port: int = 0
    api_port: int = 0
    worker_log_ports: list[int] = field(default_factory=list)
    jwt_secret: str = ""
    api_secret_key: str = ""
    config_dir: str = ""
    schedules: bool = True
    pools: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    store_backend: str = "parquet"  # or "postgres": the store in database STORE_DB of the cluster's PostgreSQL

    @property
    def path(self) -> Path:
        return Path(self.root)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def sql_alchemy_conn(self) -> str:
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.pg_port}/{PG_DB}"

    @property
    def store_dsn(self) -> str:
        """libpq connection string of the store's database (used when ``store_backend`` is ``postgres``)."""
        return f"host=127.0.0.1 port={self.pg_port} user={PG_USER} dbname={STORE_DB}"

    def save(self) -> None:
        (self.path / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, root: str | Path) -> ClusterState:
        path = Path(root) / STATE_FILE
        if not path.exists():
            raise ClusterError(f"no cluster at {root}: {path} does not exist (run `make cluster` first)")
        return cls(**json.loads(path.read_text()))

    def env(self, worker: int | None = None) -> dict[str, str]:
        """The environment every Airflow component (and a shell talking to the cluster) uses."""
        env = {
            "AIRFLOW_HOME": str(self.path / "airflow"),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": str(max(8, 2 * self.workers * self.concurrency)),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # loopback-only development cluster
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{PG_USER}@127.0.0.1:{self.pg_port}/{PG_DB}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__SECRET_KEY": self.api_secret_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            # A task whose worker died is noticed after a minute, not five.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_ports[0] if self.worker_log_ports else 0),
            "PYTHONPATH": str(PROJECT),
            "HEADROOM_DATA_DIR": str(self.path / "data"),
            "HEADROOM_REPORTS_DIR": str(self.path / "reports"),
            "GX_ANALYTICS_ENABLED": "False",
            "NO_PROXY": "*",
        }
        if self.config_dir:
            env["HEADROOM_CONFIG_DIR"] = self.config_dir
        if self.store_backend == "postgres":  # tasks reach it through the connection, tools through the DSN
            env["HEADROOM_STORE_BACKEND"] = "postgres"
            env["HEADROOM_POSTGRES_DSN"] = self.store_dsn
            env["AIRFLOW_CONN_POSTGRES_HEADROOM"] = json.dumps(
                {"conn_type": "postgres", "host": "127.0.0.1", "port": self.pg_port, "login": PG_USER, "schema": STORE_DB}
            )
        if not self.schedules:  # only runs triggered explicitly (a benchmark's stages, one at a time)
            env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
        if worker is not None:
            env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(self.worker_log_ports[worker - 1])
            # Task instances record the worker that ran them (two workers share this machine's host name).
            env["HEADROOM_WORKER_NAME"] = f"worker{worker}"
            env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "scripts.cluster.worker_hostname"
        return env


class Cluster:
    """Start, inspect and stop the local cluster described by a :class:`ClusterState`."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    # -- helpers ----------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self.state.path

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def process_env(self, worker: int | None = None) -> dict[str, str]:
        return {**os.environ, **self.state.env(worker)}

    def airflow(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run one ``airflow`` CLI command against the cluster."""
        proc = subprocess.run([_airflow(), *args], env=self.process_env(), capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise ClusterError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        return proc

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], **kwargs: Any) -> int:
        with self.log(name).open("a") as fh:
            proc = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(PROJECT), **kwargs)
        self.state.pids[name] = proc.pid
        self.state.save()
        return proc.pid

    def _as_postgres_user(self) -> dict[str, int]:
        """PostgreSQL refuses to run as root: run it as ``nobody`` then."""
        if os.geteuid() != 0:
            return {}
        import pwd

        nobody = pwd.getpwnam("nobody")
        return {"user": nobody.pw_uid, "group": nobody.pw_gid}

    def alive(self, name: str) -> bool:
        pid = self.state.pids.get(name)
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie child of this process counts as gone
            return os.waitpid(pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return True

    def _wait(self, predicate, timeout: float, what: str, name: str | None = None) -> None:
        def ready() -> bool:
            if name and not self.alive(name):
                raise ClusterError(f"{name} exited while waiting for {what}; log {self.log(name)}:\n{self.tail(name)}")
            return bool(predicate())

        try:
            wait_until(ready, timeout, 0.5, what=what)
        except WaitTimeoutError:
            log = f"; log {self.log(name)}:\n{self.tail(name)}" if name else ""
            raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}{log}") from None

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.log(name)
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def api_get(self, path: str, timeout: float = 10) -> Any:
        with urllib.request.urlopen(f"{self.state.api_url}{path}", timeout=timeout) as resp:
            return json.load(resp)

    def api_post(self, path: str, body: dict[str, Any], method: str = "POST", timeout: float = 30) -> Any:
        request = urllib.request.Request(
            f"{self.state.api_url}{path}", data=json.dumps(body).encode(), method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.load(resp)

    def _healthy(self) -> bool:
        try:
            health = self.api_get("/api/v2/monitor/health", timeout=3)
        except (OSError, ValueError):
            return False
        return health.get("metadatabase", {}).get("status") == "healthy"

    # -- PostgreSQL and Redis ---------------------------------------------------------------------

    @property
    def pg_data(self) -> Path:
        return self.root / "pg" / "data"

    def start_postgres(self) -> None:
        pg_dir = self.root / "pg"
        initdb, pg_ctl = _binary("initdb", POSTGRES_BIN_DIRS), _binary("pg_ctl", POSTGRES_BIN_DIRS)
        as_user = self._as_postgres_user()
        fresh = not self.pg_data.exists()
        if fresh:
            pg_dir.mkdir(parents=True, exist_ok=True)
            if as_user:
                os.chown(pg_dir, as_user["user"], as_user["group"])
                for parent in (self.root, *self.root.parents):  # 'nobody' must traverse to its folder
                    if parent.stat().st_uid == os.geteuid() and not parent.stat().st_mode & 0o001:
                        parent.chmod(parent.stat().st_mode | 0o011)
            proc = subprocess.run(
                [initdb, "-D", str(self.pg_data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync"],
                capture_output=True,
                text=True,
                **as_user,
            )
            if proc.returncode != 0:
                raise ClusterError(
                    f"initdb {self.pg_data} failed (as root, PostgreSQL runs as 'nobody', who must be able to "
                    f"reach the cluster folder): {proc.stderr.strip() or proc.stdout.strip()}"
                )
        proc = subprocess.run(
            [
                pg_ctl,
                "-D",
                str(self.pg_data),
                "-l",
                str(pg_dir / "postgres.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-h 127.0.0.1 -p {self.state.pg_port} -k {pg_dir} -F -c max_connections=200",
                "start",
            ],
            capture_output=True,
            text=True,
            **as_user,
        )
        if proc.returncode != 0:
            raise ClusterError(f"PostgreSQL did not start: {proc.stderr or proc.stdout}; log {pg_dir / 'postgres.log'}")
        if fresh:
            self._psql(f"CREATE DATABASE {PG_DB}")
            if self.state.store_backend == "postgres":
                self._psql(f"CREATE DATABASE {STORE_DB}")

    def _psql(self, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.state.pg_port, user=PG_USER, dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def stop_postgres(self, mode: str = "fast") -> None:
        if not self.pg_data.exists():
            return
        pg_ctl = _binary("pg_ctl", POSTGRES_BIN_DIRS)
        subprocess.run(
            [pg_ctl, "-D", str(self.pg_data), "-m", mode, "-w", "-t", "60", "stop"],
            capture_output=True,
            text=True,
            **self._as_postgres_user(),
        )

    def restart_postgres(self) -> None:
        self.stop_postgres()
        self.start_postgres()

    def start_redis(self) -> None:
        redis_dir = self.root / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        # Append-only persistence: queued Celery messages survive a broker restart.
        argv = [
            _binary("redis-server"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.state.redis_port),
            "--dir",
            str(redis_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--protected-mode",
            "yes",
        ]
        self._spawn("redis", argv, dict(os.environ))
        self._wait(self._redis_ping, 30, "Redis to answer PING", "redis")

    def _redis_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.state.redis_port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def restart_redis(self) -> None:
        self.stop("redis")
        self.start_redis()

    # -- Airflow ----------------------------------------------------------------------------------

    def prepare_airflow(self) -> None:
        """Migrate the metadata database, create the pools, import ``airflow_settings.yaml``'s connections if any."""
        (self.root / "airflow").mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        pools_file = self.root / "pools.json"
        pools_file.write_text(
            json.dumps({name: {"slots": slots, "description": name, "include_deferred": False} for name, slots in self.state.pools.items()})
        )
        self.airflow("pools", "import", str(pools_file))

    def start_component(self, name: str) -> None:
        if name.startswith("worker"):
            index = int(name.removeprefix("worker"))
            argv = [
                _airflow(),
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@headroom",
                "--concurrency",
                str(self.state.concurrency),
                "--without-gossip",
                "--without-mingle",
            ]
            self._spawn(name, argv, self.process_env(index))
            return
        argv = [_airflow(), name]
        if name == "api-server":
            argv += ["--host", "127.0.0.1", "--port", str(self.state.api_port), "--workers", "1"]
        self._spawn(name, argv, self.process_env())
        if name == "api-server":
            self._wait(self._healthy, 120, "the api-server's health endpoint", name)

    def worker_names(self) -> list[str]:
        return [f"worker{i}" for i in range(1, self.state.workers + 1)]

    def wait_for_workers(self, timeout: float = 120) -> None:
        """Until every worker answers a Celery ping through the broker."""

        def all_answer() -> bool:
            proc = subprocess.run([sys.executable, "-c", _PING], env=self.process_env(), capture_output=True, text=True, timeout=60)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("PING ")]
            answered = set(json.loads(lines[-1][5:])) if proc.returncode == 0 and lines else set()
            return all(f"{w}@headroom" in answered for w in self.worker_names())

        def alive_and_answering() -> bool:
            for w in self.worker_names():
                if not self.alive(w):
                    raise ClusterError(f"{w} exited; log {self.log(w)}:\n{self.tail(w)}")
            return all_answer()

        try:
            wait_until(alive_and_answering, timeout, 2, what="Celery workers answering")
        except WaitTimeoutError:
            raise ClusterError(f"Celery workers did not answer within {timeout:.0f} s; logs under {self.root / 'logs'}") from None

    def up(self) -> None:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.state.save()
        try:
            self.start_postgres()
            self.start_redis()
            self.prepare_airflow()
            for name in SERVICES:
                self.start_component(name)
            for name in self.worker_names():
                self.start_component(name)
            self.wait_for_workers()
        except BaseException:
            self.down()
            raise

    def stop(self, name: str, timeout: float = 45) -> None:
        """SIGTERM to the component's process group (Airflow and Celery shut down warm), SIGKILL after ``timeout``."""
        pid = self.state.pids.get(name)
        if not pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)

        def gone() -> bool:
            self._reap(pid)
            return not self._group_alive(pid)

        try:
            wait_until(gone, timeout, 0.3, what=f"{name} to stop")
        except WaitTimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            time.sleep(0.5)
        self._reap(pid)
        self.state.pids.pop(name, None)
        self.state.save()

    @staticmethod
    def _reap(pid: int) -> None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        # Only zombies left (children of this process, not yet reaped) count as stopped.
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False

    def down(self) -> None:
        """Stop the workers first (they finish or hand back their tasks), then the Airflow services, Redis, PostgreSQL."""
        for name in [*reversed(self.worker_names()), "scheduler", "dag-processor", "api-server", "redis"]:
            self.stop(name)
        for name in list(self.state.pids):
            self.stop(name)
        self.stop_postgres()

    # -- runs -------------------------------------------------------------------------------------

    def unpause(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            self.api_post(f"/api/v2/dags/{dag_id}", {"is_paused": False}, method="PATCH")

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        """Until the dag-processor has serialized every one of ``dag_ids``."""

        def listed() -> bool:
            try:
                found = {d["dag_id"] for d in self.api_get("/api/v2/dags?limit=100")["dags"]}
            except (OSError, ValueError):
                return False
            return set(dag_ids) <= found

        self._wait(listed, timeout, f"DAGs {dag_ids} to be parsed", "dag-processor")

    def trigger(
        self, dag_id: str, start: Any, end: Any, conf: dict[str, Any] | None = None, run_id: str | None = None, logical_date: Any = None
    ) -> str:
        """Trigger ``dag_id`` for the data interval ``[start, end)``; returns the run id.

        :param logical_date: default ``end``; a DAG has one run per logical date, so a second run of
            the same interval needs another one.
        """
        body = {
            "logical_date": (logical_date or end).isoformat(),
            "data_interval_start": start.isoformat(),
            "data_interval_end": end.isoformat(),
            "conf": conf or {},
        }
        if run_id:
            body["dag_run_id"] = run_id
        return self.api_post(f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.api_get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 3600) -> dict[str, Any]:
        """Until the run finishes; returns it (``state`` is ``success`` or ``failed``)."""

        def finished() -> dict[str, Any] | None:
            try:
                run = self.run(dag_id, run_id)
            except (OSError, ValueError):  # the API server restarting in a drill: ask again
                return None
            return run if run.get("state") in ("success", "failed") else None

        try:
            return wait_until(finished, timeout, 2, what=f"{dag_id} run {run_id} to finish")
        except WaitTimeoutError:
            raise ClusterError(f"{dag_id} run {run_id} did not finish within {timeout:.0f} s") from None

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.api_get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances?limit=100&offset={len(out)}")
            out += page["task_instances"]
            if len(out) >= page["total_entries"] or not page["task_instances"]:
                return out

    def status(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "api": self.state.api_url,
            "healthy": self._healthy(),
            "processes": {name: {"pid": pid, "alive": self.alive(name)} for name, pid in self.state.pids.items()},
            "postgres": {"port": self.state.pg_port, "running": (self.pg_data / "postmaster.pid").exists()},
        }


_PING = """
import json
from airflow.providers.celery.executors.celery_executor_utils import app
replies = app.control.ping(timeout=2.0) or []
print("PING " + json.dumps([name for reply in replies for name in reply]))
"""


def new_state(
    root: Path,
    workers: int = 2,
    concurrency: int = 2,
    config_dir: str | None = None,
    forecast_slots: int = 2,
    schedules: bool = True,
    store_backend: str = "parquet",
) -> ClusterState:
    """A cluster description with free ports and fresh secrets; the pools of ``airflow_pools`` (the configuration's connectors)."""
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    from include.headroom.pools import airflow_pools

    return ClusterState(
        schedules=schedules,
        store_backend=store_backend,
        root=str(root),
        workers=workers,
        concurrency=concurrency,
        pg_port=free_port(),
        redis_port=free_port(),
        api_port=free_port(),
        worker_log_ports=[free_port() for _ in range(workers)],
        jwt_secret=secrets.token_urlsafe(32),
        api_secret_key=secrets.token_urlsafe(32),
        config_dir=str(Path(config_dir).resolve()) if config_dir else "",
        pools={**{name: p["slots"] for name, p in airflow_pools(config_dir=config_dir).items()}, "headroom_forecasting": forecast_slots},
    )


def cluster_dir(value: str | None = None) -> Path:
    return Path(value or os.environ.get("HEADROOM_CLUSTER_DIR") or DEFAULT_CLUSTER_DIR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", help="cluster state folder (default $HEADROOM_CLUSTER_DIR or /tmp/headroom-cluster)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start PostgreSQL, Redis, api-server, scheduler, dag-processor and the Celery workers")
    up.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    up.add_argument("--concurrency", type=int, default=2, help="task processes per worker (default 2)")
    up.add_argument(
        "--config-dir",
        default=os.environ.get("HEADROOM_CONFIG_DIR"),
        help="headroom configuration folder for every component (default $HEADROOM_CONFIG_DIR or the shipped one)",
    )
    up.add_argument("--forecast-slots", type=int, default=2, help="slots of the headroom_forecasting pool (default 2)")
    up.add_argument(
        "--no-schedules",
        action="store_true",
        help="the scheduler creates no scheduled or asset-triggered runs: only explicitly triggered ones run",
    )
    up.add_argument("--fresh", action="store_true", help="delete the folder's previous state first")
    sub.add_parser("down", help="stop everything the cluster started")
    sub.add_parser("status", help="print the components and whether they are alive (JSON)")
    sub.add_parser("env", help="print `export` lines to use the cluster from a shell")
    args = parser.parse_args(argv)
    root = cluster_dir(args.dir)

    if args.command == "up":
        if (root / STATE_FILE).exists():
            old = Cluster(ClusterState.load(root))
            if any(old.alive(n) for n in old.state.pids):
                raise ClusterError(f"a cluster is already running from {root}: `make cluster-down` first")
        if args.fresh and root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True, exist_ok=True)
        cluster = Cluster(
            new_state(root, args.workers, args.concurrency, args.config_dir, args.forecast_slots, schedules=not args.no_schedules)
        )
        started = time.monotonic()
        cluster.up()
        print(
            f"cluster up in {time.monotonic() - started:.0f} s: api {cluster.state.api_url}, "
            f"{args.workers} Celery workers, state and logs in {root}"
        )
        print(f'use it from a shell: eval "$({sys.executable} {Path(__file__).relative_to(PROJECT)} env)"')
        return 0
    if args.command == "down":
        if not (root / STATE_FILE).exists():
            print(f"no cluster at {root}")
            return 0
        cluster = Cluster(ClusterState.load(root))
        cluster.down()
        print(f"cluster at {root} stopped")
        return 0
    cluster = Cluster(ClusterState.load(root))
    if args.command == "status":
        print(json.dumps(cluster.status(), indent=2))
    else:
        for key, value in cluster.state.env().items():
            print(f"export {key}={value!r}".replace("'", "'"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
