"""Fault drills against the local CeleryExecutor cluster, each with checked outcomes: ``python scripts/drills.py <name>|all``.

Each drill starts from one day ingested and validated for a small fleet (the shipped 12 services,
4 key metrics), injects one fault while a run with mapped tasks is in flight, then checks:

- ``worker-kill``: a Celery worker is SIGKILLed (its whole process tree) while it runs a task and
  started again; Airflow notices the lost task (heartbeat timeout), retries it, the run succeeds,
  and the store holds every service's result once (no duplicates, no gaps);
- ``scheduler-restart``: the scheduler is stopped and started while ``scaling_actions`` plans and records its
  decisions; the run resumes and succeeds, and the audit trail holds each decision once;
- ``postgres-restart``: the metadata database is restarted mid-run; components that exited are
  started again (as a supervisor would), the run succeeds;
- ``redis-restart``: the Celery broker is restarted while tasks wait in its queue; none is lost,
  every mapped task succeeds once.

Exit status 0 when every drill passed; each prints PASS/FAIL with what it checked.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "scripts"))

from big_fleet import seed_history, write_fleet_config  # noqa: E402
from cluster import Cluster, ClusterError, new_state  # noqa: E402

SERVICES = 12
RUN_TIMEOUT = 1200.0  # a retried task waits for the DAGs' retry_delay (5 minutes)


@dataclass
class DrillResult:
    name: str
    checks: list[tuple[str, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, what: str, ok: bool) -> bool:
        self.checks.append((what, bool(ok)))
        print(f"    [{'ok' if ok else 'FAILED'}] {what}", flush=True)
        return ok

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(ok for _, ok in self.checks)


class Drills:
    """One cluster, one pipeline day, the drills run one after the other on it."""

    def __init__(self, root: Path) -> None:
        import pandas as pd

        self.end = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
        self.start = self.end - pd.Timedelta(days=1)
        config_dir = write_fleet_config(root / "fleet", services=SERVICES, days=3)
        state = new_state(root / "cluster", workers=2, concurrency=2, config_dir=str(config_dir), schedules=False)
        self.cluster = Cluster(state)
        self.counter = 0

    # -- helpers ----------------------------------------------------------------------------------

    def store(self):
        from include.headroom.metrics.store import ParquetStore

        return ParquetStore(self.cluster.root / "data" / "store")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        import pandas as pd

        self.counter += 1
        # Same data interval, its own logical date: a DAG has one run per logical date.
        return self.cluster.trigger(dag_id, self.start.to_pydatetime(), self.end.to_pydatetime(), conf,
                                    run_id=f"drill_{self.counter}_{dag_id}",
                                    logical_date=(self.end + pd.Timedelta(seconds=self.counter)).to_pydatetime())

    def wait_until(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(1)
        raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")

    def running_on(self, dag_id: str, run_id: str, host: str | None = None) -> list[dict[str, Any]]:
        return [t for t in self.cluster.task_instances(dag_id, run_id)
                if t["state"] == "running" and (host is None or t.get("hostname") == host)]

    def supervise(self, result: DrillResult) -> None:
        """Start again every Airflow component that exited (what Kubernetes or systemd would do)."""
        for name in ["api-server", "scheduler", "dag-processor", *self.cluster.worker_names()]:
            if not self.cluster.alive(name):
                result.notes.append(f"{name} exited after the fault and was started again")
                self.cluster.state.pids.pop(name, None)
                self.cluster.start_component(name)

    def analysis_results(self) -> Any:
        return self.store().query("SELECT service, window_end, count(*) AS n FROM slo_status WHERE window_end = ? GROUP BY 1, 2",
                                  [self.end.to_pydatetime()])

    def check_analysis_run(self, result: DrillResult, run_id: str) -> list[dict[str, Any]]:
        run = self.cluster.wait_for_run("bottleneck_analysis", run_id, RUN_TIMEOUT)
        tis = self.cluster.task_instances("bottleneck_analysis", run_id)
        mapped = [t for t in tis if t["task_id"] == "analyse_services"]
        result.check(f"bottleneck_analysis run {run_id} succeeded (state {run['state']})", run["state"] == "success")
        result.check(f"all {SERVICES} mapped tasks succeeded", len(mapped) == SERVICES and all(t["state"] == "success" for t in mapped))
        slo = self.analysis_results()
        result.check(f"slo_status holds every service once for the window ({len(slo)} services, max {slo['n'].max() if len(slo) else 0} rows each)",
                     len(slo) == SERVICES and set(slo["n"]) == {1})
        return mapped

    # -- set-up -----------------------------------------------------------------------------------

    def prepare(self) -> None:
        import pandas as pd

        self.cluster.up()
        seed_history(self.cluster.state.config_dir, self.cluster.root / "data" / "store",
                     self.end - pd.Timedelta(days=3), self.start)
        dags = ["ingest_metrics", "validate_metrics", "capacity_forecast", "bottleneck_analysis", "scaling_actions"]
        self.cluster.wait_for_dags(dags)
        self.cluster.unpause(*dags)
        for dag_id, conf in (("ingest_metrics", {"history_days": 1}), ("validate_metrics", {}), ("capacity_forecast", {"batch_size": 4})):
            run = self.cluster.wait_for_run(dag_id, self.trigger(dag_id, conf), RUN_TIMEOUT)
            if run["state"] != "success":
                raise ClusterError(f"set-up: {dag_id} ended {run['state']}")

    # -- the drills -------------------------------------------------------------------------------

    def worker_kill(self) -> DrillResult:
        result = DrillResult("worker-kill")
        run_id = self.trigger("bottleneck_analysis", {"batch_size": 1})
        victim = self.wait_until(lambda: self.running_on("bottleneck_analysis", run_id, "worker1"), 300, "a task running on worker1")[0]
        pid = self.cluster.state.pids["worker1"]
        os.killpg(pid, signal.SIGKILL)
        result.notes.append(f"SIGKILL to worker1 (process group {pid}) while it ran {victim['task_id']}[{victim['map_index']}]")
        time.sleep(2)
        self.cluster.state.pids.pop("worker1", None)
        self.cluster.start_component("worker1")
        self.check_analysis_run(result, run_id)
        retried = [t for t in self.cluster.task_instances("bottleneck_analysis", run_id)
                   if (t["task_id"], t["map_index"]) == (victim["task_id"], victim["map_index"])]
        result.check(f"the killed task was retried by Airflow (try {retried[0]['try_number'] if retried else '-'})",
                     bool(retried) and retried[0]["try_number"] >= 2)
        return result

    def scheduler_restart(self) -> DrillResult:
        result = DrillResult("scheduler-restart")
        self.cluster.wait_for_run("bottleneck_analysis", self.trigger("bottleneck_analysis", {"batch_size": 4}), RUN_TIMEOUT)
        run_id = self.trigger("scaling_actions")
        self.wait_until(lambda: [t for t in self.cluster.task_instances("scaling_actions", run_id)
                                 if t["task_id"] == "plan_decisions" and t["state"] in ("running", "success")], 600,
                        "scaling decisions being planned")
        self.cluster.stop("scheduler")
        result.notes.append("scheduler stopped while decisions were being planned and recorded, started again 5 s later")
        time.sleep(5)
        self.cluster.start_component("scheduler")
        run = self.cluster.wait_for_run("scaling_actions", run_id, RUN_TIMEOUT)
        result.check(f"scaling_actions run resumed and ended success (state {run['state']})", run["state"] == "success")
        audit = self.store().query(
            "SELECT service, action, task_id, count(*) AS n, sum(CASE WHEN status = 'applied' THEN 1 ELSE 0 END) AS applied "
            "FROM audit WHERE kind = 'scaling' AND run_id = ? GROUP BY 1, 2, 3", [run_id])
        result.check(f"the audit trail has each decision once ({len(audit)} decisions, max {audit['n'].max() if len(audit) else 0} records each)",
                     len(audit) > 0 and set(audit["n"]) == {1})
        result.check("nothing was applied (every service is dry-run)", int(audit["applied"].sum()) == 0 if len(audit) else False)
        return result

    def postgres_restart(self) -> DrillResult:
        result = DrillResult("postgres-restart")
        run_id = self.trigger("bottleneck_analysis", {"batch_size": 1})
        self.wait_until(lambda: self.running_on("bottleneck_analysis", run_id), 300, "a running task")
        self.cluster.restart_postgres()
        result.notes.append("PostgreSQL stopped (fast) and started again mid-run")
        time.sleep(10)
        self.supervise(result)
        self.check_analysis_run(result, run_id)
        return result

    def redis_restart(self) -> DrillResult:
        result = DrillResult("redis-restart")
        run_id = self.trigger("bottleneck_analysis", {"batch_size": 1})

        def queued() -> bool:
            states = [t["state"] for t in self.cluster.task_instances("bottleneck_analysis", run_id) if t["task_id"] == "analyse_services"]
            return states.count("queued") >= 2

        self.wait_until(queued, 300, "tasks queued in the broker")
        self.cluster.restart_redis()
        result.notes.append("Redis restarted while tasks were queued (append-only file keeps the queue)")
        time.sleep(5)
        self.supervise(result)
        mapped = self.check_analysis_run(result, run_id)
        result.check("no task needed a second try (none was lost)", all(t["try_number"] == 1 for t in mapped))
        return result


DRILLS = {
    "worker-kill": Drills.worker_kill,
    "scheduler-restart": Drills.scheduler_restart,
    "postgres-restart": Drills.postgres_restart,
    "redis-restart": Drills.redis_restart,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("drill", nargs="+", choices=[*DRILLS, "all"], help="one or more drills, or all")
    parser.add_argument("--dir", default="/tmp/headroom-drills", help="working folder (deleted first)")
    args = parser.parse_args(argv)
    import shutil

    root = Path(args.dir)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    drills = Drills(root)
    names = list(DRILLS) if "all" in args.drill else list(dict.fromkeys(args.drill))
    results = []
    try:
        started = time.monotonic()
        drills.prepare()
        print(f"cluster and pipeline day ready in {time.monotonic() - started:.0f} s", flush=True)
        for name in names:
            print(f"drill {name}:", flush=True)
            began = time.monotonic()
            try:
                result = DRILLS[name](drills)
            except (ClusterError, OSError, ValueError) as exc:  # HTTP errors are OSErrors
                result = DrillResult(name)
                result.check(f"drill ran to its checks ({exc})", False)
            for note in result.notes:
                print(f"    note: {note}")
            print(f"  {'PASS' if result.passed else 'FAIL'} {name} ({time.monotonic() - began:.0f} s)", flush=True)
            results.append(result)
    finally:
        drills.cluster.down()
    failed = [r.name for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or len(results) < len(names) else 0


if __name__ == "__main__":
    sys.exit(main())
