"""The daily pipeline on a large fleet through the local CeleryExecutor cluster, on demand.

``python benchmarks/bench_fleet.py --services 1000`` (``make bench-fleet SERVICES=1000``); ``--store postgres``
keeps the store in PostgreSQL (database ``headroom``, schema ``headroom``, of the cluster's own PostgreSQL server,
beside Airflow's metadata database), reached by the tasks through the ``postgres_headroom`` connection:

1. writes the fleet's configuration overlay (``scripts/big_fleet.py``: N services x 4 key metrics),
2. starts the cluster (``scripts/cluster.py``: PostgreSQL, Redis, api-server, scheduler,
   dag-processor, two Celery workers) with only explicitly triggered runs,
3. seeds ``--days`` - 1 days of history into the store (set-up, timed apart; ``--seed-cache`` is for the embedded store;
   PostgreSQL is seeded through the store's own ``upsert``, its ``COPY`` path: about 10 minutes for 1,000 services),
4. triggers each stage of the daily pipeline for one day, one after the other: ingest ->
   validate -> forecast -> bottlenecks -> scaling (dry-run) -> report,
5. prints per stage the wall time, task instances (and their states), how they spread over the
   workers (Celery hostname and PIDs), then each worker's peak memory (RSS of its whole process
   tree, sampled every second) and the scheduler's task throughput; stops the cluster.

Nothing here asserts: it measures. Figures depend on the machine's other load.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "scripts"))

from big_fleet import seed_history, write_fleet_config  # noqa: E402
from cluster import Cluster, ClusterError, new_state  # noqa: E402

STAGES: tuple[tuple[str, str], ...] = (
    ("ingest", "ingest_metrics"),
    ("validate", "validate_metrics"),
    ("forecast", "capacity_forecast"),
    ("bottlenecks", "bottleneck_analysis"),
    ("scaling (dry-run)", "scaling_actions"),
    ("report", "capacity_report"),
)


def _group_rss_mb(pgid: int) -> float:
    """Summed RSS of every process in the process group ``pgid`` (a worker and the task processes it forked)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total / 2**20


class MemorySampler(threading.Thread):
    """Peak RSS per named process group, sampled every ``interval`` seconds."""

    def __init__(self, groups: dict[str, int], interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.groups, self.interval = groups, interval
        self.peak = dict.fromkeys(groups, 0.0)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for name, pgid in self.groups.items():
                self.peak[name] = max(self.peak[name], _group_rss_mb(pgid))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _stage_conf(dag_id: str, batch_size: int) -> dict[str, Any]:
    if dag_id == "ingest_metrics":
        return {"history_days": 1}
    if dag_id in ("capacity_forecast", "bottleneck_analysis", "capacity_report"):
        return {"batch_size": batch_size}
    return {}


def run_stages(cluster: Cluster, start: Any, end: Any, batch_size: int, timeout: float) -> list[dict[str, Any]]:
    """Trigger every stage for ``[start, end)``, one after the other; a failed stage is reported and the next one still runs."""
    results = []
    for stage, dag_id in STAGES:
        began = time.monotonic()
        run_id = cluster.trigger(dag_id, start, end, _stage_conf(dag_id, batch_size), run_id=f"bench_{dag_id}_{end:%Y%m%dT%H%M}")
        try:
            run = cluster.wait_for_run(dag_id, run_id, timeout)
        except ClusterError:  # reported with the tasks done so far; the next stage still runs
            run = {"state": f"timeout>{timeout:.0f}s"}
        wall = time.monotonic() - began
        tis = cluster.task_instances(dag_id, run_id)
        hosts = collections.Counter(ti.get("hostname") or "-" for ti in tis if ti.get("state") in ("success", "failed", "skipped"))
        pids = collections.defaultdict(set)
        for ti in tis:
            if ti.get("pid"):
                pids[ti.get("hostname") or "-"].add(ti["pid"])
        states = collections.Counter(ti.get("state") for ti in tis)
        results.append({"stage": stage, "dag_id": dag_id, "run_id": run_id, "state": run["state"], "wall_s": wall,
                        "tasks": len(tis), "states": dict(states), "hosts": dict(hosts), "pids": {h: len(p) for h, p in pids.items()},
                        "busy_s": sum(ti.get("duration") or 0.0 for ti in tis), "tis": tis})
        print(f"  {stage:<18} {run['state']:<8} {wall:7.1f} s  {len(tis):5d} tasks  {dict(states)}  by host {dict(hosts)}", flush=True)
    return results


def print_report(results: list[dict[str, Any]], peaks: dict[str, float], seed_s: float, seed_rows: int, services: int,
                 store: str = "parquet") -> None:
    total = sum(r["wall_s"] for r in results)
    tasks = sum(r["tasks"] for r in results)
    print(f"\nDaily pipeline, {services} services, {store} store (history seeded: {seed_rows:,} rows in {seed_s:.0f} s, not counted)")
    print(f"{'stage':<20}{'state':<9}{'wall s':>8}{'tasks':>7}{'task s':>9}  per worker (task instances / distinct PIDs)")
    for r in results:
        spread = ", ".join(f"{h}: {n}/{r['pids'].get(h, 0)}" for h, n in sorted(r["hosts"].items()))
        print(f"{r['stage']:<20}{r['state']:<9}{r['wall_s']:8.1f}{r['tasks']:7d}{r['busy_s']:9.1f}  {spread}")
    print(f"{'total':<29}{total:8.1f}{tasks:7d}{sum(r['busy_s'] for r in results):9.1f}  ({total / 60:.1f} min)")
    for name, peak in peaks.items():
        print(f"peak memory {name}: {peak:,.0f} MB (RSS of its process tree)")
    finished = [ti for r in results for ti in r["tis"] if ti.get("end_date") and ti.get("state") in ("success", "failed", "skipped")]
    if finished:
        from datetime import datetime

        first = min(datetime.fromisoformat(ti["start_date"] or ti["end_date"]) for ti in finished)
        last = max(datetime.fromisoformat(ti["end_date"]) for ti in finished)
        span = max((last - first).total_seconds(), 1e-9)
        print(f"scheduler throughput: {len(finished)} task instances finished in {span:.0f} s = {60 * len(finished) / span:.1f} tasks/min")


def seeded_store(config_dir: Path, store_dir: Path, start: Any, end: Any, cache: str | None,
                 cluster: Cluster | None = None) -> int:
    """Seed ``[start, end)`` into ``store_dir`` (or, on a cluster with the PostgreSQL store, into its database);
    with ``cache``, copy an earlier seed of the same fleet and span instead (embedded store only)."""
    import shutil

    if cluster is not None and cluster.state.store_backend == "postgres":
        import psycopg

        from include.headroom.store import open_store

        dsn = cluster.state.store_dsn
        return seed_history(config_dir, open_store(backend="postgres", connect=lambda: psycopg.connect(dsn)), start, end)
    if not cache:
        return seed_history(config_dir, store_dir, start, end)
    catalog = (config_dir / "catalog.yaml").read_bytes() + (config_dir / "sample_fleet.yaml").read_bytes()
    import hashlib

    key = f"{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}-{hashlib.sha256(catalog).hexdigest()[:12]}"
    cached = Path(cache) / key
    if not (cached / "rows").exists():
        rows = seed_history(config_dir, cached / "store", start, end)
        (cached / "rows").write_text(str(rows))
    shutil.copytree(cached / "store", store_dir, dirs_exist_ok=True)
    return int((cached / "rows").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30, help="days of 5-minute history, the pipeline's day included")
    parser.add_argument("--batch-size", type=int, default=50, help="services per mapped forecast/analysis task")
    parser.add_argument("--forecast-slots", type=int, default=2, help="slots of the headroom_forecasting pool")
    parser.add_argument("--concurrency", type=int, default=2, help="task processes per Celery worker")
    parser.add_argument("--dir", default="/tmp/headroom-bench", help="cluster folder (deleted first)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one stage may take before the next is started")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--store", choices=("parquet", "postgres"), default="parquet",
                        help="the store's backend: the embedded Parquet store, or PostgreSQL in the cluster's server")
    parser.add_argument("--seed-cache", help="keep the seeded history here and copy it on the next run of the same fleet and day "
                                             "(seeding 1,000 services takes 10 to 20 minutes)")
    args = parser.parse_args()

    import pandas as pd

    root = Path(args.dir)
    if root.exists():
        import shutil

        shutil.rmtree(root)
    root.mkdir(parents=True)
    config_dir = write_fleet_config(root / "fleet", args.services, args.days)
    end = pd.Timestamp.now(tz="UTC").floor("D") + pd.Timedelta(hours=2)
    if end > pd.Timestamp.now(tz="UTC"):
        end -= pd.Timedelta(days=1)
    start = end - pd.Timedelta(days=1)

    cluster = Cluster(new_state(root, workers=2, concurrency=args.concurrency, config_dir=str(config_dir),
                                forecast_slots=args.forecast_slots, schedules=False, store_backend=args.store))
    started = time.monotonic()
    cluster.up()
    print(f"cluster up in {time.monotonic() - started:.0f} s ({root}); store {args.store}; pipeline day [{start}, {end})", flush=True)
    try:
        seed_started = time.monotonic()
        rows = seeded_store(config_dir, root / "data" / "store", end - pd.Timedelta(days=args.days), start, args.seed_cache, cluster)
        seed_s = time.monotonic() - seed_started
        print(f"seeded {rows:,} rows of history in {seed_s:.0f} s", flush=True)
        cluster.wait_for_dags([dag for _, dag in STAGES])
        cluster.unpause(*[dag for _, dag in STAGES])
        sampler = MemorySampler({w: cluster.state.pids[w] for w in cluster.worker_names()})
        sampler.start()
        try:
            results = run_stages(cluster, start.to_pydatetime(), end.to_pydatetime(), args.batch_size, args.timeout)
        finally:
            sampler.stop()
        print_report(results, sampler.peak, seed_s, rows, args.services, args.store)
        if args.json:
            stages = [{k: v for k, v in r.items() if k != "tis"} for r in results]
            Path(args.json).write_text(json.dumps({"services": args.services, "store": args.store, "seed_s": seed_s, "stages": stages,
                                                   "peak_mb": sampler.peak}, indent=2))
    finally:
        cluster.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
