"""The forecast stage of the daily DAG on a large fleet, on demand: ``python benchmarks/bench_forecast_stage.py --services 1000``.

What the mapped ``capacity_forecast.forecast_services`` task runs, and nothing else: for every
batch of ``--batch-size`` services (the DAG's ``batch_size`` param) one call of
``steps.forecast.run_forecasts`` (freshness gate, store read of the history, the batch through the
engine, capacity rows, scenarios, writes, scoring of earlier forecasts), over ``--workers``
processes as the ``headroom_forecasting`` pool's slots would run them.

Set-up, timed apart: ``scripts/big_fleet.py``'s overlay for ``--services`` services x 4 key
metrics (cpu_utilization, response_time, throughput, error_rate; the overlay forecasts all
four) and ``--days`` of history seeded into a fresh store. Prints the task time (sum of the
calls' durations, what the goal of 60 s is about), their CPU time (less sensitive to
other work on a shared machine), the wall time, the statuses and the models
chosen. Nothing here asserts: it measures. Figures depend on the machine's other load.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per process: the workers are the parallelism

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

_STATE: dict = {}


def _run_batch(batch: list[str]) -> tuple[float, float, list[dict]]:
    from include.headroom.store import ParquetStore
    from include.headroom.steps.forecast import run_forecasts

    t0, c0 = time.perf_counter(), time.process_time()
    rows = run_forecasts(ParquetStore(_STATE["store_dir"]), _STATE["config"], batch, _STATE["as_of"]).to_xcom()
    return time.perf_counter() - t0, time.process_time() - c0, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--days", type=int, default=28, help="days of history seeded (the DAG reads up to forecasting history_days)")
    parser.add_argument("--batch-size", type=int, default=4, help="services per mapped task (the DAG's batch_size param)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(PROJECT / "data" / "bench-forecast-stage"))
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded store of the same size")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    import pandas as pd
    import yaml

    from include.headroom.config import load_config
    from scripts.big_fleet import KEY_METRICS, seed_history, write_fleet_config

    out = Path(args.out)
    store_dir = out / "store"
    marker = out / f"seeded-{args.services}-{args.days}"
    as_of = pd.Timestamp("2026-11-01T00:00:00", tz="UTC")  # the newest seeded point is 5 minutes before: fresh
    t0 = time.perf_counter()
    if not (args.reuse and marker.exists()):
        config_dir = write_fleet_config(out, args.services, args.days, KEY_METRICS)
        fc_path = config_dir / "forecasting.yaml"
        forecasting = yaml.safe_load(fc_path.read_text())
        forecasting["capacity"]["metrics"] = list(KEY_METRICS)
        fc_path.write_text("# bench_forecast_stage.py: every key metric is forecast\n" + yaml.safe_dump(forecasting, sort_keys=False))
        if store_dir.exists():
            import shutil

            shutil.rmtree(store_dir)
        rows = seed_history(config_dir, store_dir, as_of.floor("D") - pd.Timedelta(days=args.days), as_of.floor("D"))
        marker.write_text(str(rows))
        print(f"set-up: {args.services} services x {len(KEY_METRICS)} metrics x {args.days} days, {rows:,} rows seeded in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    config = load_config(out / "config")
    # By name, as the DAG's batches (headroom_provider.defaults.service_batches): the store's files are sorted by service,
    # so a batch of neighbouring names reads a few row groups of each file instead of all of them.
    names = sorted(s.name for s in config.services)
    batches = [names[i : i + args.batch_size] for i in range(0, len(names), args.batch_size)]
    _STATE.update(store_dir=store_dir, config=config, as_of=as_of)
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(args.workers) as pool:
        results = pool.map(_run_batch, batches, chunksize=1)
    wall = time.perf_counter() - t0
    task_time = sum(seconds for seconds, _, _ in results)
    cpu_time = sum(cpu for _, cpu, _ in results)  # less sensitive to other work on the machine than the task time
    rows = [r for _, _, batch in results for r in batch]
    status = collections.Counter(r["status"] for r in rows)
    models = collections.Counter(r.get("model") or "-" for r in rows if r["status"] == "ok")
    figures = {
        "services": len(names), "metrics": len(config.forecasting.metrics), "series": len(rows), "tasks": len(batches),
        "workers": args.workers, "task_time_s": round(task_time, 1), "task_cpu_s": round(cpu_time, 1), "wall_s": round(wall, 1),
        "mean_task_s": round(task_time / len(batches), 3), "status": dict(status), "models": dict(models.most_common(8)),
    }
    print(json.dumps(figures, indent=2))
    print(f"\nforecast stage: {len(rows)} series ({len(names)} services x {len(config.forecasting.metrics)} metrics) in {len(batches)} "
          f"tasks: task time {task_time:.1f} s (goal <= 60 s; CPU time of the tasks {cpu_time:.1f} s), wall {wall:.1f} s "
          f"on {args.workers} workers, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
