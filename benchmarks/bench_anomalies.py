"""Figures for the anomaly detector and the bottleneck analysis, on demand: ``python benchmarks/bench_anomalies.py``.

Prints points/second of the detector on ``--series`` series of ``--days`` days at 5-minute
resolution (sample fleet series, cycled), vectorised across series
(:func:`include.headroom.anomalies.score_many`, ``--chunk`` series at a time) and, for a sample,
one file at a time through :func:`include.headroom.anomalies.score` (the CLI's path); then the
peak memory of one ``--long-days`` series (default two years at 5 minutes); then the time of the
full analysis per service for a one-hour and a 14-day window. Nothing here asserts. The machine
is shared: say the load (printed) beside any figure you quote.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=1000, help="series to score")
    parser.add_argument("--days", type=int, default=30, help="days per series")
    parser.add_argument("--chunk", type=int, default=100, help="series scored together")
    parser.add_argument("--one-by-one", type=int, default=20, help="series scored one file at a time, for comparison")
    parser.add_argument("--long-days", type=int, default=730, help="days of the long single series (0: skip)")
    parser.add_argument("--no-analysis", action="store_true", help="skip the per-service analysis timing")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from include.headroom.anomalies import default_params, score, score_many, score_series
    from include.headroom.bottlenecks.analysis import analyze_service, slo_status
    from include.headroom.config import get_config
    from include.headroom.metrics.sample_fleet import SampleFleet

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the machine is shared)", flush=True)
    config = get_config()
    fleet = SampleFleet(config, anchor="2026-11-01")
    budget_days = int(config.bottlenecks.slo.get("budget_window_days", 30))
    history = fleet.generate(fleet.anchor - pd.Timedelta(days=max(args.days, budget_days + 1)), fleet.anchor)
    recent = history[history["ts"] >= fleet.anchor - pd.Timedelta(days=args.days)]
    pool = [g.sort_values("ts") for _, g in recent.groupby(["service", "metric"])]
    seconds = [((g["ts"] - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(float) for g in pool]
    values = [g["value"].to_numpy(float) for g in pool]
    picks = [i % len(pool) for i in range(args.series)]
    points = sum(len(values[i]) for i in picks)
    params = default_params()
    started, cpu = time.perf_counter(), time.process_time()
    scores = score_many([seconds[i] for i in picks], [values[i] for i in picks], params, chunk=args.chunk)
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    events = sum(int(np.sum(s >= params.threshold)) for s in scores)
    print(f"detector, vectorised ({args.chunk} series at a time): {args.series} series x {args.days} days = {points:,} points "
          f"in {took:.1f} s -> {points / took:,.0f} points/s ({points / cpu:,.0f} per CPU-second: the figure without the other "
          f"users of the machine); {events:,} events ({events / args.series / args.days:.3f} per series-day); "
          f"peak RSS {_rss_mb():.0f} MB", flush=True)

    frames = [pool[i].rename(columns={"ts": "timestamp"})[["timestamp", "value"]].reset_index(drop=True) for i in picks[: args.one_by_one]]
    started = time.perf_counter()
    for frame in frames:
        score(frame, params)
    took = time.perf_counter() - started
    n = sum(len(f) for f in frames)
    print(f"detector, one file at a time (the CLI's path): {len(frames)} series, {n:,} points -> {n / took:,.0f} points/s", flush=True)

    if args.long_days:
        before = _rss_mb()
        ts = np.arange(args.long_days * 288) * 300.0 + 1.7e9
        rng = np.random.default_rng(0)
        value = 100 + 30 * np.sin(2 * np.pi * ts / 86400) + rng.normal(0, 3, len(ts))
        started = time.perf_counter()
        score_series(ts, value, params)
        took = time.perf_counter() - started
        print(f"one series of {args.long_days} days at 5 minutes ({len(ts):,} points): {took:.1f} s, peak RSS {_rss_mb():.0f} MB "
              f"(before: {before:.0f} MB)", flush=True)

    if args.no_analysis:
        return 0
    for label, hours in (("1-hour window (hourly run)", 1), ("14-day window (review)", 14 * 24)):
        end = fleet.anchor
        start = end - pd.Timedelta(hours=hours)
        started = time.perf_counter()
        for svc in config.services:
            rows = history[history["service"] == svc.name]
            slo_status(config, svc, rows, start, end)
            analyze_service(config, svc, rows, start, end)
        took = time.perf_counter() - started
        print(f"full analysis per service, {label}: {took / len(config.services) * 1000:.0f} ms/service "
              f"({len(config.services)} services, {budget_days}-day budget window), peak RSS {_rss_mb():.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
