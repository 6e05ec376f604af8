"""Runs the pipeline DAGs in order with ``airflow dags test``: shared by ``make demo`` and the end-to-end tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any
from collections.abc import Mapping

# (dag_id, conf) in pipeline order; "{window_hours}" is filled in by run_pipeline.
PIPELINE: tuple[tuple[str, dict[str, Any]], ...] = (
    ("ingest_metrics", {}),
    ("validate_metrics", {}),
    ("capacity_forecast", {}),
    ("bottleneck_analysis", {"window_hours": "{window_hours}"}),
    ("scaling_actions", {}),
    ("cache_warming", {}),
    ("connector_sync", {}),
    ("capacity_report", {}),
)
_STATE = re.compile(r"DagRun Finished: dag_id=(\S+),.*?state=(\w+)")


@dataclass(frozen=True)
class DagTestResult:
    dag_id: str
    state: str
    seconds: float
    log: Path

    @property
    def ok(self) -> bool:
        return self.state == "success"


def airflow_bin() -> str:
    """The ``airflow`` command of the running interpreter's environment."""
    return str(Path(sys.executable).with_name("airflow"))


def default_as_of(now: datetime | None = None) -> datetime:
    """The latest 02:00 UTC (the daily schedule's time) at or before ``now``: every pipeline schedule has a run then."""
    now = now or datetime.now(UTC)
    at = now.replace(hour=2, minute=0, second=0, microsecond=0)
    return at if at <= now else at - timedelta(days=1)


def dags_test(dag_id: str, when: datetime, conf: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
              log_dir: Path | None = None) -> DagTestResult:
    """Run one DAG with ``airflow dags test`` and return the run's final state."""
    log_dir = log_dir or Path(os.environ.get("AIRFLOW_HOME", ".")) / "dags-test-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{dag_id}.log"
    cmd = [airflow_bin(), "dags", "test", dag_id, when.isoformat()]
    if conf:
        cmd[3:3] = ["-c", json.dumps(conf)]
    started = time.monotonic()
    with log.open("w") as fh:
        # HEADROOM_DAG_DEADLINES=off: `airflow dags test` (3.3.2) crashes finishing a run of a DAG with a deadline.
        run_env = {**os.environ, "HEADROOM_DAG_DEADLINES": "off", **(env or {})}
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=run_env, check=False)
    seconds = time.monotonic() - started
    states = [state for dag, state in _STATE.findall(log.read_text()) if dag == dag_id]
    state = states[-1] if states else f"exit {proc.returncode}"
    if proc.returncode != 0 and state == "success":
        state = f"exit {proc.returncode}"
    return DagTestResult(dag_id, state, seconds, log)


def run_pipeline(as_of: datetime, window_hours: float, env: Mapping[str, str] | None = None, log_dir: Path | None = None,
                 echo: bool = True) -> list[DagTestResult]:
    """Every pipeline DAG in order at ``as_of``; stops at the first failure."""
    results = []
    for dag_id, conf in PIPELINE:
        filled = {k: (window_hours if v == "{window_hours}" else v) for k, v in conf.items()}
        result = dags_test(dag_id, as_of, filled, env=env, log_dir=log_dir)
        results.append(result)
        if echo:
            print(f"  {dag_id:<20} {result.state:<8} {result.seconds:6.1f} s   log: {result.log}", flush=True)
        if not result.ok:
            break
    return results
