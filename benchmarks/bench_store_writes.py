"""Rows per second of the PostgreSQL store's bulk writes, on demand: ``python benchmarks/bench_store_writes.py --rows 1000000``.

Starts a throw-away PostgreSQL server (``tests/servers.py``) and upserts frames of the ``metrics`` table
shaped like the fleet's history (services x 4 metrics x 5-minute points, in time order as a simulation or
a source hands them):

1. new rows into an empty table (a first seed),
2. new rows (other services) into a table already holding ``--rows`` rows (the next seed chunk, a day of ingest),
3. the same rows again with other values: every key replaced (a re-run),
4. half replaced, half new (an overlapping window),
5. ``replace_partition`` of a staging batch of ``--rows`` rows.

Prints the wall time and rows/s of each. Nothing here asserts: it measures; the figures depend on the
machine's other load (printed with them).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def fleet_rows(services: range, points: int, value: float = 1.5, start: str = "2026-10-01T00:00Z"):
    """``len(services)`` services x 4 metrics x ``points`` 5-minute points, time-major like a simulated fleet."""
    import numpy as np
    import pandas as pd

    ts = pd.date_range(start, periods=points, freq="5min", tz="UTC")
    names = [f"svc-{s:05d}" for s in services]
    metrics = ["cpu_utilization", "response_time", "throughput", "error_rate"]
    per_ts = len(names) * len(metrics)
    return pd.DataFrame({
        "ts": pd.to_datetime(np.repeat(ts.tz_convert(None).to_numpy(), per_ts), utc=True),
        "service": np.tile(np.repeat(names, len(metrics)), points),
        "tier": "standard",
        "metric": np.tile(metrics, len(names) * points),
        "value": value + np.arange(per_ts * points) % 97 / 10.0,
        "unit": "percent",
        "source": "sample",
        "labels": "",
        "batch_id": "bench",
    })


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per write (rounded to whole services of 4 metrics x 1 day)")
    args = parser.parse_args()

    import psycopg

    from include.headroom.store.postgres import PostgresStore
    from tests.servers import PostgresServer

    points = 288 * 7  # a week of 5-minute points per series
    services = max(1, args.rows // (4 * points))
    first = fleet_rows(range(services), points)
    other = fleet_rows(range(services, 2 * services), points)
    again = first.assign(value=first["value"] + 1.0)
    half = services // 2
    overlap = fleet_rows(range(2 * services - half, 3 * services - half), points, value=3.0)  # half of them in `other`
    staging = first.assign(batch_id="bench-staging")
    print(f"{len(first):,} rows per write ({services} services x 4 metrics x {points} points); "
          f"load average {os.getloadavg()[0]:.1f} (2 cores shared)", flush=True)

    server = PostgresServer().start()
    try:
        store = PostgresStore(lambda: psycopg.connect(server.dsn), schema="bench")
        store.count("metrics")  # creates the tables before timing
        cases = (("new rows, empty table", "metrics", first), ("new rows, table not empty", "metrics", other),
                 ("every key replaced", "metrics", again), ("half replaced, half new", "metrics", overlap))
        for label, name, frame in cases:
            began = time.perf_counter()
            result = store.upsert(name, frame)
            wall = time.perf_counter() - began
            print(f"  upsert {label:<28} {wall:7.2f} s  {len(frame) / wall:10,.0f} rows/s  "
                  f"(inserted {result.inserted:,}, replaced {result.updated:,})", flush=True)
        began = time.perf_counter()
        store.replace_partition("staging", "bench-staging", staging.assign(ts_naive=False))
        wall = time.perf_counter() - began
        print(f"  replace_partition {'staging batch':<17} {wall:7.2f} s  {len(staging) / wall:10,.0f} rows/s", flush=True)
        print(f"table holds {store.count('metrics'):,} rows; load average {os.getloadavg()[0]:.1f}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
