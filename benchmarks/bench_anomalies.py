"""Figures for the anomaly scorer and the bottleneck analysis, on demand: ``python benchmarks/bench_anomalies.py``.

Prints points/second of ``include.headroom.anomalies.score`` on ``--series`` series of
``--days`` days at 5-minute resolution (sample fleet series, cycled), and the time of the
full analysis per service (SLO status with burn rates and USE, episodes with ranked causes)
for a one-hour window (the hourly DAG) and a 14-day review window. Nothing here asserts.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()

    import pandas as pd

    from include.headroom.anomalies import default_params, score
    from include.headroom.bottlenecks.analysis import analyze_service, slo_status
    from include.headroom.config import get_config
    from include.headroom.metrics.sample_fleet import SampleFleet

    config = get_config()
    fleet = SampleFleet(config, anchor="2026-11-01")
    budget_days = int(config.bottlenecks.slo.get("budget_window_days", 30))
    history = fleet.generate(fleet.anchor - pd.Timedelta(days=max(args.days, budget_days + 1)), fleet.anchor)
    recent = history[history["ts"] >= fleet.anchor - pd.Timedelta(days=args.days)]
    pool = [g.rename(columns={"ts": "timestamp"})[["timestamp", "value"]].reset_index(drop=True)
            for _, g in recent.groupby(["service", "metric"])]
    frames = [pool[i % len(pool)] for i in range(args.series)]
    points = sum(len(f) for f in frames)
    params = default_params()
    started = time.perf_counter()
    flagged = 0
    for frame in frames:
        flagged += int((score(frame, params)["anomaly_score"] > params.threshold).sum())
    seconds = time.perf_counter() - started
    print(f"anomaly scorer: {args.series} series x {args.days} days = {points:,} points in {seconds:.1f} s "
          f"-> {points / seconds:,.0f} points/s ({seconds / args.series * 1000:.1f} ms/series); "
          f"{flagged:,} points above {params.threshold} ({flagged / points:.3%}); peak RSS {_rss_mb():.0f} MB", flush=True)

    for label, hours in (("1-hour window (hourly run)", 1), ("14-day window (review)", 14 * 24)):
        end = fleet.anchor
        start = end - pd.Timedelta(hours=hours)
        started = time.perf_counter()
        for svc in config.services:
            rows = history[history["service"] == svc.name]
            slo_status(config, svc, rows, start, end)
            analyze_service(config, svc, rows, start, end)
        seconds = time.perf_counter() - started
        print(f"full analysis per service, {label}: {seconds / len(config.services) * 1000:.0f} ms/service "
              f"({len(config.services)} services, {budget_days}-day budget window), peak RSS {_rss_mb():.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
