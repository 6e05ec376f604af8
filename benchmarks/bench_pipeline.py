"""Figures for each pipeline step on the sample fleet, on demand: ``python benchmarks/bench_pipeline.py [--days 60]``.

Prints wall time, throughput and peak memory (RSS) per step. Nothing here asserts: it measures.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=60, help="days of sample fleet history")
    args = parser.parse_args()

    import pandas as pd

    from include.headroom.steps import act, analyse, forecast, ingest, validate
    from include.headroom.config import get_config
    from include.headroom.metrics.sources import SampleFleetSource
    from include.headroom.store import ParquetStore

    config = get_config()
    as_of = pd.Timestamp("2026-11-01T02:00Z")
    names = [s.name for s in config.services]
    rows_out = []

    def step(name: str, fn, unit_count: int | None = None, unit: str = "rows"):
        started = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - started
        rate = f"{unit_count / seconds:,.0f} {unit}/s" if unit_count else ""
        rows_out.append((name, seconds, rate, _rss_mb()))
        print(f"{name:<38} {seconds:8.2f} s  {rate:>22}  peak RSS {_rss_mb():7.0f} MB", flush=True)
        return result

    with tempfile.TemporaryDirectory() as tmp:
        store = ParquetStore(Path(tmp) / "store")
        source = SampleFleetSource(config, anchor="2026-11-01")
        frame = step("generate sample fleet", lambda: source.read(as_of - pd.Timedelta(days=args.days), as_of))
        n = len(frame)
        print(f"  ({n:,} rows: {len(names)} services x 9 metrics x {args.days} days at 5 min)")
        step(
            "ingest (stage batch)",
            lambda: ingest.ingest(store, config, source, as_of - pd.Timedelta(minutes=15), as_of, history_days=args.days),
            n,
        )
        step("import great_expectations", lambda: __import__("great_expectations"))
        step("validate + upsert into metrics", lambda: validate.validate_pending(store, config), n)
        step(
            "re-ingest + re-validate same rows",
            lambda: (
                ingest.ingest(store, config, source, as_of - pd.Timedelta(minutes=15), as_of, history_days=args.days),
                validate.validate_pending(store, config),
            ),
            n,
        )
        step("DuckDB read of all metrics", lambda: store.read_metrics(), n)
        series = len(names) * len(config.forecasting.metrics)
        step("forecast (backtest + fit, all series)", lambda: forecast.run_forecasts(store, config, names, as_of), series, "series")
        step(
            "bottleneck analysis, 14-day window",
            lambda: analyse.run_analysis(store, config, names, as_of - pd.Timedelta(days=14), as_of),
            len(names),
            "services",
        )
        step("scaling decisions", lambda: act.plan_all_scaling(store, config, as_of), len(names), "services")
        from include.headroom.report.html import build_report

        step("report (HTML + 12 plots)", lambda: build_report(store, config, as_of, Path(tmp) / "reports"))
        print(f"metrics rows stored: {store.count('metrics'):,} (generated {n:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
