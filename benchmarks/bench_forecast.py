"""Forecast accuracy per data set and fleet throughput, on demand: ``python benchmarks/bench_forecast.py``.

Default (``--datasets fleet,petshop,generated``, see ``forecast_datasets.py``): for each
data set and each method (every candidate of ``auto`` alone with its own conformal interval,
``auto``, seasonal naive with its normal interval, Prophet with its own interval, and
optionally Holt-Winters/SARIMAX), the median MASE (scaled by the daily seasonal naive's
in-sample error, as the issue defines it), median sMAPE, the 80 % interval's coverage and
series per minute; then the goals: auto's median MASE against seasonal naive's, series
worse than 1.25x the better of naive and Prophet, coverage in 75-85 %.

``--throughput`` runs the older fleet throughput comparison instead:
1,000 series x 30 days of hourly data (the sample fleet's services and metrics,
over several seeds and months). Every method trains on the first 27 days and
forecasts the last 3; MASE is scaled by the daily seasonal naive error of the
training data. Methods: seasonal naive; each statsmodels model; Prophet alone
(on a random subset, stated in the output); and ``auto`` with its rolling-origin
backtests (3 cutoffs, 3 candidates), both the batched engine and series by
series. Work is spread over ``--workers`` processes. Prints series/minute and
the median MASE per method, and the planning-horizon accuracy bands on two
years of daily history. Nothing here asserts: it measures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import sys
import time
import warnings
from pathlib import Path

# One BLAS thread per process: the workers are the parallelism (set before numpy loads).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

_DATA: dict = {}  # filled before the worker pool forks


def build_series(n: int, days: int):
    """``n`` hourly series of ``days`` from the sample fleet: every service and metric, over several seeds and months."""
    import numpy as np
    import pandas as pd

    from include.headroom.config import get_config
    from include.headroom.metrics.sample_fleet import METRIC_UNITS, SampleFleet

    config = get_config()
    metrics = [m for m in METRIC_UNITS if m != "replicas"]  # replicas are step functions at min for small services
    rows, labels, window = [], [], 0
    while len(rows) < n:
        fleet_cfg = dataclasses.replace(config.sample_fleet, seed=config.sample_fleet.seed + window)
        fleet = SampleFleet(
            dataclasses.replace(config, sample_fleet=fleet_cfg),
            anchor=pd.Timestamp("2026-11-01", tz="UTC") - pd.Timedelta(days=days * window),
        )
        frame = fleet.generate(fleet.anchor - pd.Timedelta(days=days), fleet.anchor)
        frame = frame[frame["metric"].isin(metrics)]
        hourly = frame.set_index("ts").groupby(["service", "metric"])["value"].resample("1h").mean()
        for (service, metric), values in hourly.groupby(level=[0, 1]):
            rows.append(values.to_numpy(float))
            labels.append(f"w{window}/{service}/{metric}")
        window += 1
    return np.vstack(rows[:n]), labels[:n]


def _naive_scale(train, season=24):
    import numpy as np

    return np.mean(np.abs(train[:, season:] - train[:, :-season]), axis=1)


def _one(args):
    """Fit one model on one training row and forecast the test span (runs in a worker)."""
    import numpy as np
    import pandas as pd

    from include.headroom.exceptions import ForecastError
    from include.headroom.forecasting.models import get_model

    name, i = args
    train, horizon = _DATA["train"][i], _DATA["horizon"]
    df = pd.DataFrame({"ds": pd.date_range("2026-01-01", periods=len(train), freq="1h", tz="UTC"), "y": train})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return get_model(name, 24).fit(df).forecast(horizon)["yhat"].to_numpy(float)
    except (ForecastError, ValueError, np.linalg.LinAlgError):
        return np.full(horizon, np.nan)


def _auto_one(i):
    """``auto`` series by series: backtest the candidates, choose, fit, forecast."""
    import pandas as pd

    from include.headroom.forecasting.evaluation import select_model
    from include.headroom.forecasting.models import get_model

    train, horizon, spec = _DATA["train"][i], _DATA["horizon"], _DATA["spec"]
    df = pd.DataFrame({"ds": pd.date_range("2026-01-01", periods=len(train), freq="1h", tz="UTC"), "y": train})
    chosen = select_model(df, _DATA["candidates"], 24, spec).chosen
    return get_model(chosen, 24).fit(df).forecast(horizon)["yhat"].to_numpy(float), chosen


def _auto_chunk(rows):
    import pandas as pd

    from include.headroom.forecasting.batch import auto_forecast_many

    result = auto_forecast_many(_DATA["train"][rows], pd.Timedelta(hours=1), _DATA["horizon"], _DATA["spec"], _DATA["candidates"])
    return result.yhat, result.chosen_names()


def _engine_one_method(series, method: str, alpha: float):
    """``auto`` (method ``auto``) or one candidate alone through the engine, per length group; (yhat, lower, upper) per series."""
    from include.headroom.config import get_config
    from include.headroom.forecasting.engine import run_engine, spec_for

    config = get_config().forecasting
    out = {}
    groups: dict = {}
    for i, s in enumerate(series):
        groups.setdefault((len(s.train), s.step, s.holdout), []).append(i)
    for (n, step, holdout), rows in groups.items():
        per_day = series[rows[0]].per_day
        candidates = None if method == "auto" else (method,)
        spec = spec_for(config, per_day, holdout, n, candidates)
        if method != "auto":
            spec = dataclasses.replace(spec, select=False)
        import numpy as np

        result = run_engine(np.vstack([series[i].train for i in rows]), step, holdout, spec, alpha, start=series[rows[0]].start)
        for j, i in enumerate(rows):
            if method != "auto" and result.rows[j].members != (method,):  # the candidate cannot forecast this series
                nan = np.full(holdout, np.nan)
                out[i] = (nan, nan, nan)
            else:
                out[i] = (result.yhat[j], result.yhat_lower[j], result.yhat_upper[j])
    return [out[i] for i in range(len(series))]


def _registry_one(args):
    """A registry model fitted on one series with its own interval (naive, Prophet, statsmodels)."""
    import numpy as np
    import pandas as pd

    from include.headroom.exceptions import ForecastError
    from include.headroom.forecasting.models import get_model

    name, s, alpha = args
    df = pd.DataFrame({"ds": pd.date_range(s.start, periods=len(s.train), freq=s.step), "y": s.train})
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            fc = get_model(name, s.per_day).fit(df).forecast(s.holdout, alpha)
        return fc["yhat"].to_numpy(float), fc["yhat_lower"].to_numpy(float), fc["yhat_upper"].to_numpy(float)
    except (ForecastError, ValueError, np.linalg.LinAlgError):
        nan = np.full(s.holdout, np.nan)
        return nan, nan, nan


def _score(series, forecasts):
    """Per series: MASE (daily seasonal naive in-sample scale), sMAPE, 80 % coverage."""
    import numpy as np

    rows = []
    for s, (yhat, lo, hi) in zip(series, forecasts, strict=True):
        m = s.per_day if s.per_day >= 2 else 1
        train, test = s.train, s.test
        scale = np.mean(np.abs(train[m:] - train[:-m]))
        err = np.abs(test - yhat)
        denom = np.abs(test) + np.abs(yhat)
        with np.errstate(divide="ignore", invalid="ignore"):
            smape = float(np.mean(np.where(denom > 0, 2 * err / denom, 0.0)))
            mase = float(np.mean(err) / scale) if scale > 0 else float("nan")
        if not np.isfinite(yhat).all():
            rows.append((np.nan, np.nan, np.nan))
            continue
        rows.append((mase, smape, float(np.mean((test >= lo) & (test <= hi)))))
    return np.array(rows)


def _r(values, how) -> float:
    return round(float(how(values)), 3) if len(values) else float("nan")


def accuracy(args) -> int:
    """The per-data-set accuracy table of every method."""
    import numpy as np

    from forecast_datasets import DATASETS
    from include.headroom.config import get_config

    config = get_config().forecasting
    methods = ["seasonal_naive_alone", *[m for m in config.models if m != "seasonal_naive"], "auto", "prophet", *args.extra]
    table, per_series = [], {}
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers) as pool:
        for name in args.datasets.split(","):
            t0 = time.perf_counter()
            series = DATASETS[name]()
            if not series:
                print(f"{name}: not on this machine, skipped", flush=True)
                continue
            print(f"{name}: {len(series)} series built in {time.perf_counter() - t0:.1f} s", flush=True)
            scores = {}
            for method in methods:
                rows = list(range(len(series)))
                if method in ("prophet", "holt_winters", "sarimax") and 0 < args.prophet_subset < len(series):
                    rows = sorted(np.random.default_rng(7).choice(len(series), size=args.prophet_subset, replace=False).tolist())
                subset = [series[i] for i in rows]
                t0 = time.perf_counter()
                if method == "seasonal_naive_alone":
                    fc = pool.map(_registry_one, [("seasonal_naive", s, args.alpha) for s in subset], chunksize=8)
                elif method in ("prophet", "holt_winters", "sarimax"):
                    fc = pool.map(_registry_one, [(method, s, args.alpha) for s in subset], chunksize=1)
                else:
                    fc = _engine_one_method(subset, method, args.alpha)
                seconds = time.perf_counter() - t0
                sc = _score(subset, fc)
                full = np.full((len(series), 3), np.nan)
                full[rows] = sc
                scores[method] = full
                label = "seasonal_naive" if method == "seasonal_naive_alone" else method
                done = np.isfinite(sc[:, 0])
                table.append(
                    {
                        "dataset": name,
                        "method": label,
                        "series": int(done.sum()),
                        "series_per_min": round(len(rows) / seconds * 60, 1),
                        "median_mase": _r(sc[done, 0], np.median),
                        "median_smape": _r(sc[done, 1], np.median),
                        "coverage_80": _r(sc[done, 2], np.mean),
                    }
                )
                print(json.dumps(table[-1]), flush=True)
            per_series[name] = (series, scores)
    print("\n| data set | method | series | series/min | median MASE | median sMAPE | 80 % coverage |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['dataset']} | {r['method']} | {r['series']} | {r['series_per_min']:,.0f} | {r['median_mase']:.3f} | "
            f"{r['median_smape']:.3f} | {r['coverage_80']:.3f} |"
        )
    print(
        "\ngoals (auto): median MASE <= 0.80 x seasonal naive's; no series worse than 1.25x the better of naive and Prophet; "
        "coverage 75-85 %"
    )
    everything = []
    for name, (series, scores) in per_series.items():
        auto, naive, prophet = scores["auto"][:, 0], scores["seasonal_naive_alone"][:, 0], scores["prophet"][:, 0]
        better = np.fmin(naive, np.where(np.isfinite(prophet), prophet, np.inf))
        worse = [series[i].name for i in np.flatnonzero(auto > 1.25 * better)]
        ratio = float(np.nanmedian(auto) / np.nanmedian(naive))
        print(
            f"  {name:<10} median MASE ratio auto/naive {ratio:.3f}; worse than 1.25x the better of naive and Prophet: "
            f"{len(worse)}/{len(series)} {worse[:4]}; coverage {np.nanmean(scores['auto'][:, 2]):.3f}"
        )
        everything.append((auto, naive, scores["auto"][:, 2]))
    if everything:
        auto = np.concatenate([e[0] for e in everything])
        naive = np.concatenate([e[1] for e in everything])
        cover = np.concatenate([e[2] for e in everything])
        print(
            f"  {'all':<10} median MASE ratio auto/naive {np.nanmedian(auto) / np.nanmedian(naive):.3f}; "
            f"median of per-series ratios {np.nanmedian(auto / naive):.3f}; coverage {np.nanmean(cover):.3f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--throughput", action="store_true", help="the fleet throughput comparison instead of the accuracy table")
    parser.add_argument("--datasets", default="fleet,petshop,generated")
    parser.add_argument("--alpha", type=float, default=0.2)
    parser.add_argument("--extra", default="", help="comma-separated extra registry models for the accuracy table (holt_winters,sarimax)")
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--test-days", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--prophet-subset",
        type=int,
        default=100,
        help="series Prophet (and statsmodels extras) run on per data set (random, seeded); 0 = all",
    )
    parser.add_argument("--statsmodels-subset", type=int, default=0, help="series each statsmodels model runs on; 0 = all")
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated methods to skip in the throughput section (e.g. sarimax); "
        "the per-dataset table always runs naive, auto and Prophet, whose goals compare them",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    args.extra = [m for m in args.extra.split(",") if m]
    if not args.throughput:
        return accuracy(args)

    import numpy as np

    from include.headroom.config import get_config
    from include.headroom.forecasting.batch import VECTORIZED
    from include.headroom.forecasting.evaluation import BacktestSpec

    config = get_config()
    started = time.perf_counter()
    values, labels = build_series(args.series, args.days)
    print(
        f"built {values.shape[0]} series x {values.shape[1]} hourly points in {time.perf_counter() - started:.1f} s; "
        f"{args.workers} workers on {os.cpu_count()} cores",
        flush=True,
    )
    horizon = args.test_days * 24
    train, test = values[:, :-horizon], values[:, -horizon:]
    scale = _naive_scale(train)
    bt = config.forecasting.backtest
    spec = BacktestSpec(
        initial=int(bt.initial_days * 24), period=int(bt.period_days * 24), horizon=int(bt.horizon_days * 24), max_cutoffs=bt.max_cutoffs
    )
    _DATA.update(train=train, horizon=horizon, spec=spec, candidates=list(VECTORIZED))
    rng = np.random.default_rng(7)
    everything = np.arange(len(train))

    def subset(k):
        return np.sort(rng.choice(everything, size=k, replace=False)) if 0 < k < len(train) else everything

    def mase_of(rows, forecasts):
        errors = np.mean(np.abs(test[rows] - np.vstack(forecasts)), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(scale[rows] > 0, errors / scale[rows], np.nan)

    results = []
    skip = set(filter(None, args.skip.split(",")))
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers) as pool:
        plan = [
            ("seasonal_naive", everything),
            ("holt_winters", subset(args.statsmodels_subset)),
            ("sarimax", subset(args.statsmodels_subset)),
            ("prophet", subset(args.prophet_subset)),
        ]
        for name, rows in plan:
            if name in skip:
                continue
            t0 = time.perf_counter()
            out = pool.map(_one, [(name, int(i)) for i in rows], chunksize=4)
            seconds = time.perf_counter() - t0
            mase = mase_of(rows, out)
            results.append(
                {
                    "method": name,
                    "series": len(rows),
                    "seconds": round(seconds, 2),
                    "series_per_min": round(len(rows) / seconds * 60, 1),
                    "median_mase": round(float(np.nanmedian(mase)), 4),
                    "failed": int(np.isnan(mase).sum()),
                }
            )
            print(json.dumps(results[-1]), flush=True)
        # auto, batched: each worker backtests and forecasts a block of series with shared matrices.
        t0 = time.perf_counter()
        blocks = np.array_split(everything, args.workers * 4)
        out = pool.map(_auto_chunk, blocks, chunksize=1)
        seconds = time.perf_counter() - t0
        forecasts = [row for block, _ in out for row in block]
        chosen = [c for _, names in out for c in names]
        mase = mase_of(everything, forecasts)
        prophet_rows = next((rows for name, rows in plan if name == "prophet" and name not in skip), None)
        results.append(
            {
                "method": "auto (batched, with backtests)",
                "series": len(everything),
                "seconds": round(seconds, 2),
                "series_per_min": round(len(everything) / seconds * 60, 1),
                "median_mase": round(float(np.nanmedian(mase)), 4),
                "failed": int(np.isnan(mase).sum()),
                "chosen": {c: chosen.count(c) for c in sorted(set(chosen))},
                "median_mase_on_prophet_series": None if prophet_rows is None else round(float(np.nanmedian(mase[prophet_rows])), 4),
            }
        )
        print(json.dumps(results[-1]), flush=True)
        if "auto_per_series" not in skip:
            t0 = time.perf_counter()
            out = pool.map(_auto_one, [int(i) for i in everything], chunksize=8)
            seconds = time.perf_counter() - t0
            mase = mase_of(everything, [f for f, _ in out])
            results.append(
                {
                    "method": "auto (series by series, with backtests)",
                    "series": len(everything),
                    "seconds": round(seconds, 2),
                    "series_per_min": round(len(everything) / seconds * 60, 1),
                    "median_mase": round(float(np.nanmedian(mase)), 4),
                    "failed": int(np.isnan(mase).sum()),
                }
            )
            print(json.dumps(results[-1]), flush=True)

    prophet = next((r for r in results if r["method"] == "prophet"), None)
    auto = next(r for r in results if r["method"].startswith("auto (batched"))
    print("\nmethod                                     series   series/min   median MASE")
    for r in results:
        print(f"{r['method']:<42} {r['series']:>6} {r['series_per_min']:>12.1f} {r['median_mase']:>13.4f}")
    if prophet:
        print(
            f"\nauto (batched) vs Prophet alone: {auto['series_per_min'] / prophet['series_per_min']:.1f}x the throughput "
            f"(goal >= 10x); median MASE {auto['median_mase']:.4f} on all series, {auto['median_mase_on_prophet_series']:.4f} on "
            f"Prophet's series, vs {prophet['median_mase']:.4f} for Prophet (goal: no worse). "
            f"Prophet measured on {prophet['series']} random series of {len(everything)}."
        )

    bands = horizon_bands(config)
    print("\nplanning horizons on two years of daily throughput (fourier_trend), share of services within each band:")
    for name, row in bands.items():
        print(
            f"  {name:<7} {row['days']:>4} days at {row['resample']}: median accuracy {row['median_accuracy']:.3f}, "
            f"band {row['band']}, meets the band on {row['meets']}/{row['series']} services"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"methods": results, "horizons": bands}, indent=2))
    return 0


def horizon_bands(config):
    """Per planning horizon on two years of the fleet's daily throughput: median accuracy and how many services meet the band."""
    from include.headroom.forecasting.accuracy import fleet_horizon_bands
    from include.headroom.metrics.sample_fleet import SampleFleet

    return fleet_horizon_bands(SampleFleet(config, anchor="2026-11-01").daily_history(730), config.forecasting.horizons)


if __name__ == "__main__":
    sys.exit(main())
