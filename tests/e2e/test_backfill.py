"""A two-day CLI backfill through a running Airflow (scheduler, dag-processor, API server) leaves no duplicates."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from include.headroom.config import CONFIG_DIR
from tests.conftest import AIRFLOW

pytestmark = pytest.mark.e2e
FROM, TO = "2026-10-30T00:00:00+00:00", "2026-10-31T23:45:00+00:00"
INTERVALS = 2 * 24 * 4  # logical dates FROM..TO inclusive, every 15 minutes: two whole days


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runs(db: Path, dag_id: str) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT state, count(*) FROM dag_run WHERE dag_id = ? GROUP BY state", (dag_id,)).fetchall())


def _backfill_runs(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        return dict(
            con.execute(
                "SELECT state, count(*) FROM dag_run WHERE dag_id = 'ingest_metrics' AND run_type = 'backfill' GROUP BY state"
            ).fetchall()
        )


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"airflow standalone exited with {proc.returncode} while waiting for {what}:\n{log.read_text()[-3000:]}")
        if predicate():
            return
        time.sleep(3)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _start(env, log: Path, *args: str) -> subprocess.Popen:
    with log.open("w") as fh:
        return subprocess.Popen([AIRFLOW, *args], env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGINT to each process group (Airflow's clean shutdown), SIGKILL to what is left after a minute."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp)
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="module")
def airflow_server(tmp_path_factory):
    """A real Airflow in its own home on a free loopback port: the backfill is created with the CLI first (SQLite
    takes one writer at a time), then the API server, the scheduler and the dag-processor start and run it."""
    home = tmp_path_factory.mktemp("airflow-cluster")
    data = home / "data"
    config_dir = home / "config"
    shutil.copytree(CONFIG_DIR, config_dir)
    pipe = yaml.safe_load((config_dir / "pipeline.yaml").read_text())
    pipe["ingest"]["initial_history_days"] = 0  # each backfill run reads just its interval (plus lookback)
    (config_dir / "pipeline.yaml").write_text(yaml.safe_dump(pipe))
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "HEADROOM_DATA_DIR": str(data),
        "HEADROOM_CONFIG_DIR": str(config_dir),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW_CONN_HEADROOM_SAMPLE_FLEET": json.dumps({"conn_type": "generic", "extra": {"anchor": "2026-11-01"}}),
    }
    _cli(env, "db", "migrate")
    _cli(env, "dags", "reserialize")
    for dag_id in ("ingest_metrics", "validate_metrics"):
        _cli(env, "dags", "unpause", dag_id)
    _cli(
        env,
        "backfill",
        "create",
        "--dag-id",
        "ingest_metrics",
        "--from-date",
        FROM,
        "--to-date",
        TO,
        "--reprocess-behavior",
        "none",
        "--max-active-runs",
        "4",
    )
    base = f"http://127.0.0.1:{port}"
    api = _start(env, home / "api-server.log", "api-server", "--port", str(port))
    procs = [api]
    try:
        _wait(
            lambda: (_get_json(f"{base}/api/v2/monitor/health") or {}).get("metadatabase", {}).get("status") == "healthy",
            120,
            "the API server",
            api,
            home / "api-server.log",
        )
        procs.append(_start(env, home / "scheduler.log", "scheduler"))
        procs.append(_start(env, home / "dag-processor.log", "dag-processor"))
        _wait(
            lambda: (_get_json(f"{base}/api/v2/monitor/health") or {}).get("scheduler", {}).get("status") == "healthy",
            120,
            "the scheduler",
            procs[1],
            home / "scheduler.log",
        )
        server = {"home": home, "env": env, "base": base, "proc": procs[1], "log": home / "scheduler.log", "data": data}

        def while_scheduler_stopped(action):
            """Stop the scheduler and the dag-processor (SQLite's other writers), run ``action`` (a CLI write that
            must not share the database: a "database is locked" half-way through a backfill cannot be retried),
            start both again."""
            _stop(procs[1:3])
            action()
            server["proc"] = procs[1] = _start(env, home / "scheduler-2.log", "scheduler")
            procs[2] = _start(env, home / "dag-processor-2.log", "dag-processor")
            server["log"] = home / "scheduler-2.log"

        server["while_scheduler_stopped"] = while_scheduler_stopped
        yield server
    finally:
        _stop(procs)


def _cli(env, *args: str) -> str:
    """Run an Airflow CLI command; SQLite's "database is locked" (the scheduler writing) is retried."""
    for _ in range(10):
        proc = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True)
        if proc.returncode == 0 or "database is locked" not in proc.stderr + proc.stdout:
            break
        time.sleep(2)
    if proc.returncode != 0:
        pytest.fail(f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def _token(server) -> str:
    password = json.loads((server["home"] / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
    request = urllib.request.Request(
        f"{server['base']}/auth/token",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)["access_token"]


def _get(server, path: str) -> dict:
    request = urllib.request.Request(f"{server['base']}{path}", headers={"Authorization": f"Bearer {_token(server)}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


def test_api_server_lists_every_dag_and_no_import_errors(airflow_server):
    dags = {d["dag_id"] for d in _get(airflow_server, "/api/v2/dags?limit=100")["dags"]}
    assert dags == {
        "ingest_metrics",
        "validate_metrics",
        "capacity_forecast",
        "bottleneck_analysis",
        "scaling_actions",
        "cache_warming",
        "connector_sync",
        "capacity_report",
        "alerts",
    }
    assert _get(airflow_server, "/api/v2/importErrors")["total_entries"] == 0


def test_two_day_backfill_leaves_no_duplicates(airflow_server):
    from include.headroom.store import ParquetStore

    env, db = airflow_server["env"], airflow_server["home"] / "airflow.db"
    _wait(
        lambda: _backfill_runs(db).get("success", 0) >= INTERVALS, 1500, "the backfill runs", airflow_server["proc"], airflow_server["log"]
    )
    assert _backfill_runs(db) == {"success": INTERVALS}

    store = ParquetStore(airflow_server["data"] / "store")

    def all_validated() -> bool:
        batches = store.read("batches")
        return len(batches) >= INTERVALS and set(batches["status"]) == {"validated"}

    _wait(all_validated, 600, "validate_metrics to validate every batch", airflow_server["proc"], airflow_server["log"])
    assert _runs(db, "validate_metrics").get("failed", 0) == 0

    series = 12 * 9
    per_series = 2 * 288  # two days of 5-minute points
    window = {"start": "2026-10-30T00:00Z", "end": "2026-11-01T00:00Z"}
    assert len(store.read_metrics(**window)) == per_series * series
    dupes = store.query("SELECT count(*) AS n FROM (SELECT service, metric, ts, labels FROM metrics GROUP BY ALL HAVING count(*) > 1)")
    assert int(dupes["n"].iloc[0]) == 0
    batches = store.read("batches")
    assert (batches["rows_in"] == batches["rows_valid"]).all()

    # backfill an hour of the range again, re-running completed runs: rows are replaced, not added.
    # Only one backfill per DAG may be open: wait until the scheduler has closed the first.
    def backfill_closed() -> bool:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT completed_at FROM backfill ORDER BY id DESC LIMIT 1").fetchone()[0] is not None

    _wait(backfill_closed, 300, "the scheduler to close the backfill", airflow_server["proc"], airflow_server["log"])
    before = store.read_metrics(start="2026-10-31T12:00Z", end="2026-10-31T13:00Z")
    before_validated = store.read("batches")["validated_at"].max()
    airflow_server["while_scheduler_stopped"](
        lambda: _cli(
            env,
            "backfill",
            "create",
            "--dag-id",
            "ingest_metrics",
            "--from-date",
            "2026-10-31T12:00:00+00:00",
            "--to-date",
            "2026-10-31T12:45:00+00:00",
            "--reprocess-behavior",
            "completed",
        )
    )

    def rerun_done() -> bool:
        with sqlite3.connect(db) as con:
            completed, pending = con.execute(
                "SELECT b.completed_at, (SELECT count(*) FROM dag_run r WHERE r.backfill_id = b.id AND r.state != 'success') "
                "FROM backfill b ORDER BY b.id DESC LIMIT 1"
            ).fetchone()
        return completed is not None and pending == 0 and all_validated() and store.read("batches")["validated_at"].max() > before_validated

    _wait(rerun_done, 600, "the re-run hour", airflow_server["proc"], airflow_server["log"])
    assert len(store.read_metrics(**window)) == per_series * series
    after = store.read_metrics(start="2026-10-31T12:00Z", end="2026-10-31T13:00Z")
    assert len(after) == 12 * series
    assert after["value"].tolist() == before["value"].tolist()
