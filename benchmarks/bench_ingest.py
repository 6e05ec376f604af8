"""Ingestion speed: 1,000 series x 1 day at 1-minute resolution from a real Prometheus into each store backend.

Prints points/s, peak memory (resident set of the process that ingests) and the time per series,
for the embedded Parquet store and for PostgreSQL. Needs the Debian packages ``prometheus`` and
``postgresql`` (``.ci/run`` installs them).

    python benchmarks/bench_ingest.py [--series 1000] [--hours 24]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

END = 1_793_491_200  # 2026-11-01T00:00Z


def openmetrics(series: int, hours: float):
    """A gauge per series, one sample a minute, in OpenMetrics text for promtool."""
    import numpy as np

    minutes = int(hours * 60)
    times = END - 60 * minutes + 60 * np.arange(minutes)
    yield "# TYPE bench_load gauge\n"
    for i in range(series):
        values = 100 + 50 * np.sin(times / 3600 + i) + i % 7
        head = f'bench_load{{service="svc-{i:04d}"}} '
        yield "".join(f"{head}{v:.4f} {t}\n" for v, t in zip(values, times, strict=False))
    yield "# EOF\n"


def measure(backend: str, url: str, dsn: str, series: int, hours: float, root: str, out: multiprocessing.Queue) -> None:
    """Ingest the whole range through ``steps.ingest.ingest`` into one backend; report figures (runs in its own process)."""
    import dataclasses
    import logging

    import pandas as pd

    logging.disable(logging.INFO)
    from include.headroom.config import get_config
    from include.headroom.metrics.prometheus import PrometheusSource
    from include.headroom.metrics.source_config import PromQuery, load_source_settings
    from include.headroom.steps.ingest import ingest

    config = get_config()
    if backend == "postgres":
        import psycopg

        from include.headroom.store import PostgresStore

        store = PostgresStore(lambda: psycopg.connect(dsn), schema="bench")
    else:
        from include.headroom.store import ParquetStore

        store = ParquetStore(Path(root) / "store")
    queries = tuple(PromQuery(metric="throughput", promql=f'bench_load{{service="svc-{i:04d}"}}', unit="req/s") for i in range(series))
    settings = dataclasses.replace(load_source_settings().prometheus, step_s=60, queries=queries)
    source = PrometheusSource(url, settings, config)
    end = pd.Timestamp(END, unit="s", tz="UTC")
    started = time.perf_counter()
    result = ingest(store, config, source, end - pd.Timedelta(minutes=15), end, history_days=hours / 24)
    total = time.perf_counter() - started
    read_s = source.stats["seconds"]
    out.put({
        "backend": backend, "points": result.rows, "seconds": total, "read_s": read_s, "write_s": total - read_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })


def main() -> None:
    from tests.servers import PostgresServer, PrometheusServer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    prom = PrometheusServer(work / "prom")
    (work / "prom").mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    prom.backfill(openmetrics(args.series, args.hours))
    print(f"backfilled {args.series} series x {args.hours:g} h at 1 min with promtool in {time.perf_counter() - t:.1f} s")
    prom.start()
    pg = PostgresServer().start()
    try:
        ctx = multiprocessing.get_context("spawn")
        for backend in ("parquet", "postgres"):
            queue = ctx.Queue()
            proc = ctx.Process(target=measure, args=(backend, prom.url, pg.dsn, args.series, args.hours, str(work / backend), queue))
            proc.start()
            r = queue.get(timeout=3600)
            proc.join()
            print(f"{r['backend']:>8}: {r['points']:,} points in {r['seconds']:.1f} s = {r['points'] / r['seconds']:,.0f} points/s; "
                  f"read {r['read_s']:.1f} s ({1000 * r['read_s'] / args.series:.1f} ms/series), "
                  f"write {r['write_s']:.1f} s ({1000 * r['write_s'] / args.series:.1f} ms/series), "
                  f"total {1000 * r['seconds'] / args.series:.1f} ms/series; peak RSS {r['peak_rss_mib']:.0f} MiB")
    finally:
        prom.stop()
        pg.stop()


if __name__ == "__main__":
    main()
