"""Validation figures, on demand: ``python benchmarks/bench_validation.py [--series 1000] [--days 1]``.

Validates ``--series`` series x ``--days`` of 5-minute data (the sample fleet's series, copied
under distinct ``instance`` labels) and prints, separately: the Great Expectations import,
the ephemeral context setup, validation alone (rows/s, every suite), and validation plus
storing (metrics, quarantine, per-service results, Data Docs). Nothing here asserts: it measures.
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


def _timed(label: str, fn, rows: int | None = None):
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    rate = f"{rows / seconds:>12,.0f} rows/s" if rows else " " * 19
    print(f"{label:<46} {seconds:8.2f} s {rate}  peak RSS {_rss_mb():6.0f} MB", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=1000, help="number of series")
    parser.add_argument("--days", type=float, default=1.0, help="days of 5-minute data per series")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from include.headroom.config import get_config
    from include.headroom.metrics.sample_fleet import SampleFleet
    from include.headroom.store import ParquetStore

    config = get_config()
    end = pd.Timestamp("2026-11-01T00:00Z")
    start = end - pd.Timedelta(days=args.days)
    base = SampleFleet(config, anchor="2026-11-01").generate(start, end).reset_index(drop=True)
    per_copy = base.groupby(["service", "metric", "labels"]).ngroups
    copies = -(-args.series // per_copy)
    rng = np.random.default_rng(7)
    frames = []
    for k in range(copies):
        copy = base.copy()
        copy["labels"] = copy["labels"].map(lambda lab, k=k: ",".join(p for p in (f"instance=i-{k:04d}", lab) if p))
        copy["value"] = copy["value"] * np.where(copy["unit"].isin(["percent", "ratio", "count"]), 1.0, rng.uniform(0.98, 1.02, len(copy)))
        frames.append(copy)
    rows = pd.concat(frames, ignore_index=True)
    keys = rows[["service", "metric", "labels"]].drop_duplicates().head(args.series)
    rows = rows.merge(keys, on=["service", "metric", "labels"]).reset_index(drop=True)
    n = len(rows)
    print(f"{args.series:,} series x {args.days:g} day(s) at 5 min = {n:,} rows")

    _timed("import great_expectations", lambda: __import__("great_expectations"))
    from include.headroom.validation.suites import _gx, validate_batch

    _timed("ephemeral GX context + pandas data source", _gx)
    now = end + pd.Timedelta(minutes=5)
    outcome = _timed("validate (all suites), first run", lambda: validate_batch(config, rows, "bench", start, end, now=now), n)
    _timed("validate (all suites), second run", lambda: validate_batch(config, rows, "bench", start, end, now=now), n)
    print(f"  {len(outcome.valid):,} valid, {len(outcome.quarantined):,} quarantined, {len(outcome.results)} expectation runs")

    from include.headroom.validation.results import validate_rows

    with tempfile.TemporaryDirectory() as tmp:
        store = ParquetStore(Path(tmp) / "store")
        summary = _timed("validate + store + Data Docs", lambda: validate_rows(
            store, config, rows, "bench", "bench", start, end, now=now, reports_dir=Path(tmp) / "reports"), n)
        print(f"  stored {store.count('metrics'):,} metrics rows, {store.count('quarantine'):,} quarantined; status {summary['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
