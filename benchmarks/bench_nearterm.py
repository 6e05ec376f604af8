"""What the near-term response time forecast adds to an analysis, on demand: ``python benchmarks/bench_nearterm.py``.

At every analysis, ``forecasting/nearterm.py`` forecasts each service's response time one hour
ahead from its last two days at 5 minutes (``run_analysis`` -> ``with_nearterm``). This runs it
on the sample fleet's response time (the 12 services, replicated with seeded scale factors
under new names up to ``--services``), as of a fixed time, and prints per batch size: CPU and
wall seconds of the whole call, the share spent in the engine, and CPU milliseconds per
service; beside it, for scale, the CPU time per service of the observed-bottleneck analysis
(``analyze_service`` over the same services' 14-day window). Then its accuracy on the 12
services: forecasts made at ``--origins`` times four hours apart (the day's shapes), each scored
on the next hour's 5-minute means: median MAPE, 80 % interval coverage, and seasonal naive's
MAPE (same time yesterday) beside it. Nothing here asserts: it measures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one math thread, as the tasks run
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AS_OF = "2026-11-01T02:00Z"


def fleet_metrics(n: int, days: float):
    """``n`` services' raw points (all metrics) over ``days`` before ``AS_OF``: the sample fleet's, replicated under new names."""
    import numpy as np
    import pandas as pd

    from include.headroom.config import get_config
    from include.headroom.metrics.sample_fleet import SampleFleet

    config = get_config()
    now = pd.Timestamp(AS_OF)
    fleet = SampleFleet(config, anchor=now.normalize())
    base = fleet.generate(now - pd.Timedelta(days=days), now)
    base = base[base["ts"] < now]
    names = [s.name for s in config.services]
    rng = np.random.default_rng(7)
    frames, out_names = [], []
    for k in range(n):
        src = names[k % len(names)]
        rows = base[base["service"] == src].copy()
        name = src if k < len(names) else f"{src}-{k // len(names)}"
        if k >= len(names):
            rows["value"] = rows["value"] * rng.uniform(0.7, 1.3)
        rows["service"] = name
        frames.append(rows)
        out_names.append(name)
    return config, pd.concat(frames, ignore_index=True), out_names, now


def measure(config, metrics, names, now, repeat: int) -> dict[str, float]:
    """CPU and wall seconds of ``nearterm_forecasts`` (best of ``repeat``) and the engine's share of the CPU."""
    from include.headroom.forecasting import engine
    from include.headroom.forecasting.nearterm import nearterm_forecasts

    spent = {"engine": 0.0}
    real = engine.run_engine

    def timed(*args, **kwargs):
        t0 = time.process_time()
        try:
            return real(*args, **kwargs)
        finally:
            spent["engine"] += time.process_time() - t0

    best = None
    engine.run_engine = timed
    try:
        for _ in range(repeat):
            spent["engine"] = 0.0
            c0, w0 = time.process_time(), time.perf_counter()
            capacity, _ = nearterm_forecasts(config, metrics, names, now)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            if best is None or cpu < best["cpu_s"]:
                best = {"cpu_s": cpu, "wall_s": wall, "engine_cpu_s": spent["engine"], "ok": int((capacity["status"] == "ok").sum())}
    finally:
        engine.run_engine = real
    return best


def observed_analysis_cpu(config, metrics, names, now) -> float:
    """CPU seconds of the observed-bottleneck analysis (``analyze_service``) of ``names`` over the last 14 days, for scale."""
    import pandas as pd

    from include.headroom.bottlenecks.analysis import analyze_service

    start = now - pd.Timedelta(days=14)
    by_service = dict(tuple(metrics.groupby("service", sort=False)))
    services = {s.name: s for s in config.services}
    t0 = time.process_time()
    for name in names:
        svc = services[name.rsplit("-", 1)[0]] if name not in services else services[name]
        analyze_service(config, svc, by_service[name], start, now)
    return time.process_time() - t0


def accuracy(origins: int) -> dict[str, float]:
    """Median MAPE and 80 % coverage of the near-term forecast over the next hour, at ``origins`` times; seasonal naive beside it."""
    import numpy as np
    import pandas as pd

    from include.headroom.forecasting.nearterm import nearterm_forecasts

    config, metrics, names, now = fleet_metrics(12, 4.0)
    rt = metrics[metrics["metric"] == "response_time"]
    mape, naive, covered = [], [], []
    for k in range(origins):
        as_of = now - pd.Timedelta(hours=1 + 4 * k)
        _, fc = nearterm_forecasts(config, metrics[metrics["ts"] < as_of], names, as_of)
        for name in names:
            rows = rt[rt["service"] == name].set_index("ts")["value"]
            actual = rows[(rows.index >= as_of) & (rows.index < as_of + pd.Timedelta(hours=1))].resample("5min").mean()
            yesterday = rows.resample("5min").mean().reindex(actual.index - pd.Timedelta(days=1)).to_numpy()
            got = fc[fc["service"] == name].set_index("ds").reindex(actual.index)
            y = actual.to_numpy()
            mape.append(float(np.mean(np.abs(got["yhat"].to_numpy() - y) / y)))
            naive.append(float(np.mean(np.abs(yesterday - y) / y)))
            covered.append(float(np.mean((y >= got["yhat_lower"].to_numpy()) & (y <= got["yhat_upper"].to_numpy()))))
    return {"forecasts": len(mape), "median_mape": float(np.nanmedian(mape)), "naive_median_mape": float(np.nanmedian(naive)),
            "coverage_80": float(np.nanmean(covered))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", default="12,60,240", help="comma-separated batch sizes (services per analysis)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per size; the fastest is reported")
    parser.add_argument("--skip-observed", action="store_true", help="do not time the observed-bottleneck analysis beside it")
    parser.add_argument("--origins", type=int, default=6, help="forecast times of the accuracy section (0: skip it)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.services.split(",") if s]
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        config, metrics, names, now = fleet_metrics(n, 14.0 if not args.skip_observed else 2.0)
        built = time.perf_counter() - t0
        near = measure(config, metrics, names, now, args.repeat)
        observed = None if args.skip_observed else observed_analysis_cpu(config, metrics, names, now)
        rows.append((n, near, observed))
        print(f"{n} services: data built in {built:.1f} s; nearterm {near}; observed analysis CPU {observed}", flush=True)
    print("\n| services | nearterm CPU s | wall s | engine share | CPU ms / service | observed analysis CPU ms / service |")
    print("|---|---|---|---|---|---|")
    for n, near, observed in rows:
        obs = "-" if observed is None else f"{observed / n * 1e3:.1f}"
        print(f"| {n} | {near['cpu_s']:.2f} | {near['wall_s']:.2f} | {near['engine_cpu_s'] / max(near['cpu_s'], 1e-9):.0%} | "
              f"{near['cpu_s'] / n * 1e3:.1f} | {obs} |")
    if args.origins:
        acc = accuracy(args.origins)
        print(f"\naccuracy over the next hour ({acc['forecasts']} forecasts of the 12 services' response time): median MAPE "
              f"{acc['median_mape']:.4f} (seasonal naive {acc['naive_median_mape']:.4f}), 80 % interval coverage {acc['coverage_80']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
