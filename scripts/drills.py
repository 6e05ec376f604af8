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
  every mapped task succeeds once;
- ``backfill`` (its own cluster, schedules running): 7 days of forecasts and 6 hours of analysis through
  ``airflow backfill create``; the store equals sequential runs', no duplicates, and the scaling decisions
  for those past intervals are recorded once each and never applied (see :class:`BackfillDrill`).

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
from typing import Any
from collections.abc import Callable

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "scripts"))

from big_fleet import seed_history, write_fleet_config  # noqa: E402
from cluster import Cluster, ClusterError, new_state  # noqa: E402

from include.headroom.exceptions import WaitTimeoutError  # noqa: E402
from include.headroom.resilience import wait_until  # noqa: E402

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
        from include.headroom.store import ParquetStore

        return ParquetStore(self.cluster.root / "data" / "store")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        import pandas as pd

        self.counter += 1
        # Same data interval, its own logical date: a DAG has one run per logical date.
        return self.cluster.trigger(
            dag_id,
            self.start.to_pydatetime(),
            self.end.to_pydatetime(),
            conf,
            run_id=f"drill_{self.counter}_{dag_id}",
            logical_date=(self.end + pd.Timedelta(seconds=self.counter)).to_pydatetime(),
        )

    def wait_until(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        try:
            return wait_until(predicate, timeout, 1, what=what)
        except WaitTimeoutError:
            raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}") from None

    def running_on(self, dag_id: str, run_id: str, host: str | None = None) -> list[dict[str, Any]]:
        return [
            t
            for t in self.cluster.task_instances(dag_id, run_id)
            if t["state"] == "running" and (host is None or t.get("hostname") == host)
        ]

    def supervise(self, result: DrillResult) -> None:
        """Start again every Airflow component that exited (what Kubernetes or systemd would do)."""
        for name in ["api-server", "scheduler", "dag-processor", *self.cluster.worker_names()]:
            if not self.cluster.alive(name):
                result.notes.append(f"{name} exited after the fault and was started again")
                self.cluster.state.pids.pop(name, None)
                self.cluster.start_component(name)

    def analysis_results(self) -> Any:
        from include.headroom.store.queries import slo_rows_per_service

        return slo_rows_per_service(self.store(), self.end)

    def check_analysis_run(self, result: DrillResult, run_id: str) -> list[dict[str, Any]]:
        run = self.cluster.wait_for_run("bottleneck_analysis", run_id, RUN_TIMEOUT)
        tis = self.cluster.task_instances("bottleneck_analysis", run_id)
        mapped = [t for t in tis if t["task_id"] == "analyse_services"]
        result.check(f"bottleneck_analysis run {run_id} succeeded (state {run['state']})", run["state"] == "success")
        result.check(f"all {SERVICES} mapped tasks succeeded", len(mapped) == SERVICES and all(t["state"] == "success" for t in mapped))
        slo = self.analysis_results()
        result.check(
            f"slo_status holds every service once for the window ({len(slo)} services, max {slo['n'].max() if len(slo) else 0} rows each)",
            len(slo) == SERVICES and set(slo["n"]) == {1},
        )
        return mapped

    # -- set-up -----------------------------------------------------------------------------------

    def prepare(self) -> None:
        import pandas as pd

        self.cluster.up()
        seed_history(self.cluster.state.config_dir, self.cluster.root / "data" / "store", self.end - pd.Timedelta(days=3), self.start)
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
        retried = [
            t
            for t in self.cluster.task_instances("bottleneck_analysis", run_id)
            if (t["task_id"], t["map_index"]) == (victim["task_id"], victim["map_index"])
        ]
        result.check(
            f"the killed task was retried by Airflow (try {retried[0]['try_number'] if retried else '-'})",
            bool(retried) and retried[0]["try_number"] >= 2,
        )
        return result

    def scheduler_restart(self) -> DrillResult:
        result = DrillResult("scheduler-restart")
        self.cluster.wait_for_run("bottleneck_analysis", self.trigger("bottleneck_analysis", {"batch_size": 4}), RUN_TIMEOUT)
        run_id = self.trigger("scaling_actions")
        self.wait_until(
            lambda: [
                t
                for t in self.cluster.task_instances("scaling_actions", run_id)
                if t["task_id"] == "plan_decisions" and t["state"] in ("running", "success")
            ],
            600,
            "scaling decisions being planned",
        )
        self.cluster.stop("scheduler")
        result.notes.append("scheduler stopped while decisions were being planned and recorded, started again 5 s later")
        time.sleep(5)
        self.cluster.start_component("scheduler")
        run = self.cluster.wait_for_run("scaling_actions", run_id, RUN_TIMEOUT)
        result.check(f"scaling_actions run resumed and ended success (state {run['state']})", run["state"] == "success")
        from include.headroom.store.queries import scaling_actions_of_run

        audit = scaling_actions_of_run(self.store(), run_id)
        result.check(
            f"the audit trail has each decision once ({len(audit)} decisions, max {audit['n'].max() if len(audit) else 0} records each)",
            len(audit) > 0 and set(audit["n"]) == {1},
        )
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


class BackfillDrill:
    """``backfill``: 7 days of ``capacity_forecast`` and then 6 hours of ``bottleneck_analysis`` through
    ``airflow backfill create`` on a cluster whose schedules keep running (ingest every 15 minutes,
    validation, hourly analysis, scaling on new findings).

    Checks: every backfill run succeeds; the store's forecasts, capacity, scenarios, forecast accuracy,
    findings and SLO status of the backfilled intervals are identical to those of the same runs made one
    after the other in-process on a copy of the store taken before the backfill; each key is held once;
    scheduled runs kept succeeding meanwhile; and the scaling runs the backfilled findings triggered
    recorded every decision for a past interval as not applied (a backfill never scales production),
    each decision once.
    """

    DAYS = 7
    HOURS = 6

    def __init__(self, root: Path) -> None:
        import pandas as pd
        import yaml

        now = pd.Timestamp.now(tz="UTC")
        self.day = now.floor("D") - pd.Timedelta(days=1)  # the last backfilled forecast is made at day 02:00
        config_dir = write_fleet_config(root / "fleet", services=SERVICES, days=self.DAYS + 12)
        pipeline = yaml.safe_load((config_dir / "pipeline.yaml").read_text())
        pipeline["ingest"]["initial_history_days"] = 0  # scheduled ingests read their own interval; the history is seeded
        (config_dir / "pipeline.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
        self.config_dir = config_dir
        self.cluster = Cluster(new_state(root / "cluster", workers=2, concurrency=2, config_dir=str(config_dir), schedules=True))
        self.reference_dir = root / "reference"
        self.now = now

    def store(self, root: Path | None = None):
        from include.headroom.store import ParquetStore

        return ParquetStore(root or self.cluster.root / "data" / "store")

    def _backfill(self, dag_id: str, first: Any, last: Any) -> dict[str, Any]:
        """Create the backfill with the CLI, wait until the scheduler has completed it; returns it with its runs."""
        self.cluster.airflow(
            "backfill",
            "create",
            "--dag-id",
            dag_id,
            "--from-date",
            first.isoformat(),
            "--to-date",
            last.isoformat(),
            "--reprocess-behavior",
            "none",
            "--max-active-runs",
            "1",
        )

        def completed() -> dict[str, Any] | None:
            found = self.cluster.api_get(f"/api/v2/backfills?dag_id={dag_id}")["backfills"]
            return found[-1] if found and found[-1].get("completed_at") else None

        try:
            backfill = wait_until(completed, 3600, 5, what=f"backfill of {dag_id} to complete")
        except WaitTimeoutError:
            raise ClusterError(f"backfill of {dag_id} did not complete within an hour") from None
        runs = self.cluster.api_get(f"/api/v2/dags/{dag_id}/dagRuns?run_type=backfill&limit=100&order_by=logical_date")["dag_runs"]
        return {"backfill": backfill, "runs": runs}

    def _wait_scheduled(self, dag_id: str, timeout: float = 900) -> dict[str, Any]:
        """The first scheduled run of ``dag_id`` once it has finished."""

        def finished() -> dict[str, Any] | None:
            runs = self.cluster.api_get(f"/api/v2/dags/{dag_id}/dagRuns?run_type=scheduled&limit=5")["dag_runs"]
            return next((r for r in runs if r["state"] in ("success", "failed")), None)

        try:
            return wait_until(finished, timeout, 5, what=f"a scheduled run of {dag_id} to finish")
        except WaitTimeoutError:
            raise ClusterError(f"no scheduled run of {dag_id} finished within {timeout:.0f} s") from None

    def run(self) -> DrillResult:
        import shutil

        import pandas as pd

        from include.headroom.config import load_config
        from include.headroom.steps.analyse import run_analysis
        from include.headroom.steps.forecast import run_forecasts

        result = DrillResult("backfill")
        os.environ["HEADROOM_CONFIG_DIR"] = str(self.config_dir)  # the in-process reference reads the same configuration
        config = load_config(self.config_dir)
        self.cluster.up()
        seed_history(
            self.config_dir, self.cluster.root / "data" / "store", self.day - pd.Timedelta(days=self.DAYS + 11), self.now.floor("15min")
        )
        shutil.copytree(self.cluster.root / "data" / "store", self.reference_dir / "store")
        dags = ["ingest_metrics", "validate_metrics", "capacity_forecast", "bottleneck_analysis", "scaling_actions"]
        self.cluster.wait_for_dags(dags)
        self.cluster.unpause(*dags)
        # capacity_forecast's own (latest) scheduled run goes first: a backfill needs the DAG unpaused.
        latest = self._wait_scheduled("capacity_forecast")
        result.notes.append(f"capacity_forecast's scheduled run {latest['dag_run_id']} ended {latest['state']} before the backfill")
        began = pd.Timestamp.now(tz="UTC")

        forecast_first = self.day + pd.Timedelta(hours=2) - pd.Timedelta(days=self.DAYS)
        fc = self._backfill("capacity_forecast", forecast_first, self.day + pd.Timedelta(hours=2) - pd.Timedelta(days=1))
        result.check(
            f"capacity_forecast backfill: {len(fc['runs'])} runs, all success ({sorted({r['state'] for r in fc['runs']})})",
            len(fc["runs"]) == self.DAYS and all(r["state"] == "success" for r in fc["runs"]),
        )
        window_last = self.day + pd.Timedelta(hours=2)
        ba = self._backfill("bottleneck_analysis", window_last - pd.Timedelta(hours=self.HOURS), window_last - pd.Timedelta(hours=1))
        result.check(
            f"bottleneck_analysis backfill: {len(ba['runs'])} runs, all success ({sorted({r['state'] for r in ba['runs']})})",
            len(ba["runs"]) == self.HOURS and all(r["state"] == "success" for r in ba["runs"]),
        )
        ended = pd.Timestamp.now(tz="UTC")

        # The same runs one after the other, in-process, on the copy taken before the backfill.
        reference = self.store(self.reference_dir / "store")
        names = sorted(s.name for s in config.services)
        batches = [names[i : i + 4] for i in range(0, len(names), 4)]  # the DAGs' default batch_size
        fc_ends = [pd.Timestamp(r["data_interval_end"]) for r in fc["runs"]]
        ba_windows = [(pd.Timestamp(r["data_interval_start"]), pd.Timestamp(r["data_interval_end"])) for r in ba["runs"]]
        for as_of in fc_ends:
            for batch in batches:
                run_forecasts(reference, config, batch, as_of)
        for start, end in ba_windows:
            for batch in batches:
                run_analysis(reference, config, batch, start, end)
        run_dates = sorted({f"{t:%Y-%m-%d}" for t in fc_ends})
        window_ends = [end.to_pydatetime() for _, end in ba_windows]
        self._compare(result, reference, "forecasts", "run_date", run_dates)
        self._compare(result, reference, "capacity", "run_date", run_dates)
        self._compare(result, reference, "scenarios", "run_date", run_dates)
        self._compare(result, reference, "forecast_accuracy", "run_date", run_dates)
        self._compare(result, reference, "findings", "window_end", window_ends)
        self._compare(result, reference, "slo_status", "window_end", window_ends)

        scheduled = [
            r
            for dag_id in ("ingest_metrics", "validate_metrics", "bottleneck_analysis")
            for r in self.cluster.api_get(f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]
            if r["run_type"] in ("scheduled", "asset_triggered")
            and r["state"] == "success"
            and began <= pd.Timestamp(r["end_date"]) <= ended
        ]
        result.check(
            f"scheduled runs kept succeeding during the backfill ({len(scheduled)} finished, e.g. "
            f"{', '.join(sorted({r['dag_id'] for r in scheduled})) or 'none'})",
            len(scheduled) > 0,
        )
        self._check_scaling(result, window_last)
        return result

    def _compare(self, result: DrillResult, reference: Any, name: str, column: str, values: list[Any]) -> None:
        import numpy as np

        from include.headroom.metrics.schema import table
        from include.headroom.store.queries import duplicate_keys, rows_where_in

        spec = table(name)
        got, want = rows_where_in(self.store(), name, column, values), rows_where_in(reference, name, column, values)
        dupes = duplicate_keys(self.store(), name)
        same = len(got) == len(want) and len(got) > 0
        differing = []
        if same:
            for col, kind in spec.columns.items():
                a, b = got[col].reset_index(drop=True), want[col].reset_index(drop=True)
                if kind == "float64":  # the same code on another process: equal to the last bits but for BLAS summation order
                    equal = np.isclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-12, equal_nan=True).all()
                else:
                    equal = a.equals(b) or bool(((a == b) | (a.isna() & b.isna())).all())
                if not equal:
                    differing.append(col)
        result.check(
            f"{name}: {len(got)} rows of the backfilled intervals, identical to the sequential runs' {len(want)}"
            + (f" (columns differ: {differing})" if differing else "")
            + f"; {dupes} duplicated keys",
            same and not differing and dupes == 0,
        )

    def _check_scaling(self, result: DrillResult, last_window_end: Any) -> None:
        import json

        import pandas as pd

        audit = self.store().read("audit", kind="scaling")
        if len(audit):
            audit["as_of"] = [pd.Timestamp(json.loads(d).get("as_of")) if isinstance(d, str) else pd.NaT for d in audit["detail"]]
        past = audit[audit["as_of"] <= last_window_end] if len(audit) else audit
        result.check(f"the scaling runs the backfilled findings triggered recorded {len(past)} decisions for past intervals", len(past) > 0)
        if not len(past):
            return
        result.check(f"none of them was applied (statuses {sorted(set(past['status']))})", set(past["status"]) <= {"dry_run", "skipped"})
        scales = past[past["action"] == "scale"]
        result.check(
            f"each past scale decision says why ({len(scales)} 'past interval' of {len(scales)} scale decisions)"
            if all("past interval" in r for r in scales["reason"])
            else "a past scale decision lacks the past-interval reason",
            all("past interval" in r for r in scales["reason"]),
        )
        per = audit.groupby(["run_id", "service", "task_id"]).size()
        result.check(
            f"each decision is recorded once ({len(per)} decisions in {audit['run_id'].nunique()} scaling runs, "
            f"max {int(per.max())} records each)",
            int(per.max()) == 1,
        )


def backfill(drills: Any) -> DrillResult:
    return drills.run()


DRILLS = {
    "worker-kill": Drills.worker_kill,
    "scheduler-restart": Drills.scheduler_restart,
    "postgres-restart": Drills.postgres_restart,
    "redis-restart": Drills.redis_restart,
    "backfill": backfill,  # its own cluster, with schedules running
}


def _run_drill(name: str, drills: Any) -> DrillResult:
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
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("drill", nargs="+", choices=[*DRILLS, "all"], help="one or more drills, or all")
    parser.add_argument("--dir", default="/tmp/headroom-drills", help="working folder (deleted first)")
    args = parser.parse_args(argv)
    import shutil

    root = Path(args.dir)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    names = list(DRILLS) if "all" in args.drill else list(dict.fromkeys(args.drill))
    faults = [n for n in names if n != "backfill"]
    results = []
    if faults:
        drills = Drills(root)
        try:
            started = time.monotonic()
            drills.prepare()
            print(f"cluster and pipeline day ready in {time.monotonic() - started:.0f} s", flush=True)
            results += [_run_drill(name, drills) for name in faults]
        finally:
            drills.cluster.down()
    if "backfill" in names:
        drill = BackfillDrill(root / "backfill")
        try:
            results.append(_run_drill("backfill", drill))
        finally:
            drill.cluster.down()
    failed = [r.name for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or len(results) < len(names) else 0


if __name__ == "__main__":
    sys.exit(main())
