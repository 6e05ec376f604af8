"""Command line: ``python -m include.headroom <command>``; ``--help`` lists the commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from collections.abc import Sequence

from include.headroom.exceptions import DataError, HeadroomError


def _positive_int(text: str) -> int:
    """An argparse type: a whole number above 0 (``--days -5`` is refused with the value named)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def ensure_writable(path: Path | str, folder: bool = False) -> Path:
    """Check that ``path`` (a file, or a folder with ``folder``) can be written, before any computing.

    A real write test, not permission bits (which say yes to root on a read-only mount): the folder
    is created as the command would, a probe file written and removed; an existing file is opened for append.

    :raises DataError: naming the path and why it cannot be written.
    """
    import tempfile

    target = Path(path)
    directory = target if folder else target.parent
    existing = next((p for p in (directory, *directory.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise DataError(f"cannot write {target}: {existing} is a file, not a folder (checked before computing anything)")
    try:
        if not folder and target.is_dir():
            raise IsADirectoryError(21, "is a folder, not a file")
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".headroom-write-check-"):
            pass
        if not folder and target.exists():
            with target.open("a"):
                pass
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc.strerror or exc} (checked before computing anything)") from None
    return target


def _sample_fleet(args: argparse.Namespace) -> int:
    from include.headroom.config import data_dir, get_config
    from include.headroom.metrics.sample_fleet import SampleFleet

    out = ensure_writable(args.out or data_dir() / "sample_fleet", folder=True)
    summary = SampleFleet(get_config(), anchor=args.anchor).write(out, days=args.days)
    print(json.dumps({**summary, "folder": str(out)}, indent=2))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from include.headroom.config import get_config
    from include.headroom.store import open_store
    from include.headroom.steps.report import summary
    from include.headroom.timeutil import utc

    rows = summary(open_store(), get_config(), utc(args.as_of)).to_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in rows[0]}
    print("  ".join(k.ljust(w) for k, w in widths.items()))
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in widths.items()))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from include.headroom.store import open_store
    from include.headroom.store.queries import audit_listing

    rows = audit_listing(open_store(), args.kind, args.limit)
    for r in rows.itertuples():
        print(f"{r.created_at:%Y-%m-%d %H:%M:%S} {r.service} {r.action} [{r.status}] {r.reason}")
    return 0


def _forecast(args: argparse.Namespace) -> int:
    import dataclasses

    from include.headroom.config import get_config
    from include.headroom.exceptions import ForecastError
    from include.headroom.forecasting.single import forecast_series, read_series_csv, write_forecast_csv

    ensure_writable(args.output)  # before any work
    frame, naive = read_series_csv(args.input)
    config = get_config().forecasting
    if args.outlier_z is not None:
        if not args.outlier_z >= 0:
            raise ForecastError(f"--outlier-z={args.outlier_z!r} must be >= 0 (0 turns outlier replacement off)")
        config = dataclasses.replace(config, outlier_z=args.outlier_z)
    result = forecast_series(frame, args.horizon, config, model=args.model, alpha=args.alpha)
    path = write_forecast_csv(result.forecast, args.output, naive)
    summary = result.summary()
    for key, what in (
        ("outliers_replaced", "outliers replaced (robust z above forecasting.capacity.outlier_z)"),
        ("duplicates_averaged", "duplicate timestamps averaged"),
        ("gaps_filled", "missing steps interpolated"),
        ("timestamps_moved_onto_grid", "jittered timestamps moved onto the grid"),
    ):
        if summary.get(key):
            print(f"warning: {args.input}: {summary[key]} {what}", file=sys.stderr)
    print(json.dumps({**summary, "input": str(args.input), "output": str(path)}, indent=2, allow_nan=False))
    return 0


def _horizons(args: argparse.Namespace) -> int:
    import pandas as pd

    from include.headroom.config import get_config
    from include.headroom.forecasting.accuracy import fleet_horizon_bands
    from include.headroom.forecasting.single import read_series_csv
    from include.headroom.metrics.sample_fleet import SampleFleet

    config = get_config()
    if args.input:
        frame, _ = read_series_csv(args.input)
        daily = pd.DataFrame({"ds": frame["ds"], "service": str(args.input), "y": frame["y"]})
    else:
        daily = SampleFleet(config, anchor=args.anchor).daily_history(args.days)
    bands = fleet_horizon_bands(daily, config.forecasting.horizons, args.model)
    if args.json:
        print(json.dumps(bands, indent=2))
        return 0
    for name, row in bands.items():
        lo, hi = row["band"]
        print(
            f"{name:<7} {row['days']:>5} days ahead at {row['resample']:<3} median accuracy {row['median_accuracy']:.3f}  "
            f"band [{lo:.2f}, {hi:.2f}]  {'meets' if row['meets_band'] else 'MISSES'} it ({row['meets']}/{row['series']} series)"
        )
    return 0


def _anomalies(args: argparse.Namespace) -> int:
    from include.headroom.anomalies import default_params, score_file

    ensure_writable(args.output)
    params = default_params().for_step(args.step_s) if args.step_s is not None else None  # None: inferred from the series
    print(json.dumps(score_file(args.input, args.output, params), indent=2))
    return 0


def _quarantine(args: argparse.Namespace) -> int:
    from include.headroom.config import get_config
    from include.headroom.exceptions import DataError
    from include.headroom.store import open_store
    from include.headroom.validation import quarantine

    if args.action == "fixes":
        for fix in quarantine.FIXES.values():
            print(f"{fix.name:22s} {fix.description}")
        return 0
    store = open_store()
    if args.action == "readmit":
        if not args.batch:
            raise DataError("quarantine readmit needs --batch (see `quarantine list`)")
        result = quarantine.readmit(
            store,
            get_config(),
            args.batch,
            fix=args.fix,
            service=args.service,
            expectation=args.expectation,
            rows=args.rows,
            dry_run=args.dry_run,
        )
        print(json.dumps(result, indent=2, default=str))
        return 0
    if args.action == "list":
        frame = quarantine.list_quarantine(store, batch_id=args.batch, service=args.service)
    else:
        frame = quarantine.show_quarantine(
            store, batch_id=args.batch, service=args.service, expectation=args.expectation, rows=args.rows, limit=args.limit
        )
    if args.json:
        print(frame.to_json(orient="records", date_format="iso", indent=2))
    elif frame.empty:
        print("quarantine is empty" + (" for that selection" if args.batch or args.service or args.expectation else ""))
    else:
        print(frame.to_string(index=False, max_colwidth=80))
    return 0


def _pools(args: argparse.Namespace) -> int:
    from include.headroom.pools import airflow_pools

    print(json.dumps(airflow_pools(), indent=2))
    return 0


def _connectors(args: argparse.Namespace) -> int:
    from include.headroom.connectors.settings import connector_pools, read_connectors_file

    connectors = read_connectors_file()
    if args.action == "pools":
        print(json.dumps(connector_pools(connectors), indent=2))
        return 0
    from include.headroom.config import data_dir
    from include.headroom.connectors.base import read_watermark
    from include.headroom.connectors.engine import watermark_source
    from include.headroom.connectors.registry import state_dir
    from include.headroom.resilience import StateFile
    from include.headroom.store import open_store

    db = open_store()
    rows = []
    for c in connectors.values():
        state = StateFile(state_dir(data_dir()) / f"{c.name}.json").read()
        for obj in c.objects:
            mark = read_watermark(db, watermark_source(c.name, obj))
            rows.append(
                {
                    "connector": c.name,
                    "object": obj,
                    "enabled": c.enabled,
                    "pool": c.pool,
                    "watermark": mark.isoformat() if mark is not None else None,
                    "breaker": state.get("breaker", {}).get("state", "closed"),
                    "calls_today": state.get("daily", {}).get("calls", 0),
                }
            )
    print(json.dumps(rows, indent=2))
    return 0


def _replay(args: argparse.Namespace) -> int:
    import pandas as pd

    from include.headroom.config import get_config
    from include.headroom.scaling.replay import DEFAULT_POLICIES, SEASON_S, replay

    if args.load:
        return _replay_trace(args)
    if not (args.start and args.end):
        raise DataError("replay needs --from and --to (stored or sample-fleet load) or --load FILE (a trace)")
    from include.headroom.timeutil import utc

    config = get_config()
    start, end = utc(args.start), utc(args.end)
    names = args.services.split(",") if args.services else None
    policies = args.policies.split(",") if args.policies else list(DEFAULT_POLICIES)
    since = start - pd.Timedelta(seconds=SEASON_S)
    if args.sample_fleet:
        from include.headroom.metrics.sample_fleet import SampleFleet

        history = SampleFleet(config, anchor=args.sample_fleet).generate(since, end, services=names)
    else:
        from include.headroom.store import open_store

        history = open_store().read_metrics(services=names, metrics=["throughput", "replicas"], start=since, end=end)
    rows = replay(config, history, start, end, names, policies=policies)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"policy replay {start.isoformat()} .. {end.isoformat()} ({len(rows) // len(policies) - 1} services)")
    print(f"{'service':<18} {'policy':<10} {'SLO-violation min':>17} {'replica-hours':>13} {'cost USD':>9} {'actions':>7}")
    for r in rows:
        print(
            f"{r['service']:<18} {r['policy']:<10} {r['slo_violation_minutes']:>17.0f} {r['replica_hours']:>13.1f} "
            f"{r['cost_usd']:>9.2f} {r['scale_actions']:>7}"
        )
    return 0


def _replay_trace(args: argparse.Namespace) -> int:
    from include.headroom.config import get_config
    from include.headroom.scaling.trace import read_trace, replay_file

    missing = [
        flag
        for flag, value in (
            ("--capacity-per-replica", args.capacity_per_replica),
            ("--min-replicas", args.min_replicas),
            ("--max-replicas", args.max_replicas),
            ("--tier", args.tier),
            ("--output", args.output),
        )
        if value is None
    ]
    if missing:
        raise DataError(f"replay --load needs {', '.join(missing)}")
    trace = read_trace(args.load)
    out = replay_file(
        get_config(),
        trace,
        capacity_per_replica=args.capacity_per_replica,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        tier=args.tier,
        policies=(args.policies or "reactive,predictive,combined").split(","),
        output=args.output,
        plot=args.plot,
        base_latency_ms=args.base_latency_ms,
        cost_per_replica_hour=args.cost_per_replica_hour,
    )
    print(json.dumps(out, indent=2))
    return 0


def _report(args: argparse.Namespace) -> int:
    from include.headroom.config import get_config, reports_dir
    from include.headroom.store import open_store
    from include.headroom.report.html import build_report
    from include.headroom.timeutil import utc

    out = ensure_writable(args.out or reports_dir(), folder=True)
    paths = build_report(open_store(), get_config(), utc(args.as_of), out)
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
    return 0


def _access_log(args: argparse.Namespace) -> int:
    from pathlib import Path

    from include.headroom.cache.access_log import sample_access_log
    from include.headroom.cache.settings import load_cache_settings
    from include.headroom.config import get_config
    from include.headroom.metrics.sample_fleet import SampleFleet
    from include.headroom.timeutil import utc

    ensure_writable(args.out)
    log = sample_access_log(
        SampleFleet(get_config(), anchor=args.anchor), load_cache_settings().access_log, args.service, utc(args.start), utc(args.end)
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log.assign(ts=log["ts"].map(lambda t: t.isoformat()), hit=log["hit"].map({True: "hit", False: "miss"})).to_csv(out, index=False)
    print(
        json.dumps(
            {
                "service": args.service,
                "requests": len(log),
                "keys": int(log["key"].nunique()),
                "hit_ratio": round(float(log["hit"].mean()), 4) if len(log) else None,
                "file": str(out),
            }
        )
    )
    return 0


def _ingest_file(args: argparse.Namespace) -> int:
    from include.headroom.config import get_config
    from include.headroom.ingest_file import ingest_file

    outcome = ingest_file(
        args.paths, get_config(), services=args.service, start=args.start, end=args.end, now=args.now, dry_run=args.dry_run
    )
    print(json.dumps(outcome, indent=2, default=str))
    return 1 if outcome["status"] == "failed" else 0


def _rootcause(args: argparse.Namespace) -> int:
    from include.headroom.bottlenecks.rootcause import rank_files

    ranking = rank_files(args.metrics, args.normal, args.graph, args.target_service, args.target_metric, args.at, args.output)
    top = [{"service": c.service, "score": c.score, "path": list(c.path)} for c in ranking.candidates[:3]]
    print(json.dumps({"output": str(args.output), "ranked": len(ranking.candidates), "top": top, "notes": list(ranking.notes)}, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.headroom", description="headroom: capacity and performance operations")
    commands = parser.add_subparsers(dest="command", required=True)

    fleet = commands.add_parser("sample-fleet", help="write the sample fleet's history and ground truth")
    fleet.add_argument("--anchor", help="the fleet's 'now' (a date, UTC); default today, or $HEADROOM_SAMPLE_ANCHOR")
    fleet.add_argument("--days", type=_positive_int, help="days of history before the anchor (default from sample_fleet.yaml)")
    fleet.add_argument("--out", help="folder to write (default $HEADROOM_DATA_DIR/sample_fleet)")
    fleet.set_defaults(func=_sample_fleet)

    summ = commands.add_parser("summary", help="per service: saturation, bottleneck, scaling and cache outcome")
    summ.add_argument("--as-of", required=True, help="the time to summarize at (UTC)")
    summ.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summ.set_defaults(func=_summary)

    aud = commands.add_parser("audit", help="the newest audit records of one kind (scaling, cache, connector, gate, quarantine)")
    aud.add_argument("--kind", required=True, choices=["scaling", "cache", "connector", "gate", "quarantine"])
    aud.add_argument("--limit", type=int, default=5)
    aud.set_defaults(func=_audit)

    fc = commands.add_parser("forecast", help="forecast one series from a CSV file (timestamp,value) to a CSV file")
    fc.add_argument("--input", required=True, help="CSV with columns timestamp,value at any regular frequency")
    fc.add_argument("--horizon", required=True, help="how far ahead, e.g. 7D, 12h, 90min")
    fc.add_argument("--output", required=True, help="CSV to write: timestamp,yhat,yhat_lower,yhat_upper per future step")
    fc.add_argument("--model", default="auto", help="auto (best backtest MASE, never worse than seasonal naive) or a model name")
    fc.add_argument("--alpha", type=float, default=None, help="1 - interval width (default from forecasting.yaml: 0.2, an 80 %% interval)")
    fc.add_argument(
        "--outlier-z",
        type=float,
        default=None,
        help="robust z above which a point is replaced as an outlier (default from forecasting.yaml: 8; 0 = off)",
    )
    fc.set_defaults(func=_forecast)

    hor = commands.add_parser("horizons", help="accuracy of the short, medium and long planning horizons against their expected bands")
    hor.add_argument("--input", help="CSV timestamp,value of daily (or coarser) history; default: the sample fleet's daily history")
    hor.add_argument("--anchor", help="the sample fleet's 'now' (default today, or $HEADROOM_SAMPLE_ANCHOR)")
    hor.add_argument("--days", type=int, default=730, help="days of sample-fleet history (default 730)")
    hor.add_argument("--model", default="fourier_trend", help="the model to score (default fourier_trend)")
    hor.add_argument("--json", action="store_true", help="print JSON instead of a table")
    hor.set_defaults(func=_horizons)

    anom = commands.add_parser("anomalies", help="score one series from a CSV file (timestamp,value) for anomalies, causally")
    anom.add_argument("--input", required=True, help="CSV with columns timestamp,value")
    anom.add_argument(
        "--output",
        required=True,
        help="CSV to write: timestamp,value,anomaly_score (0..1),event (anomaly, level_shift or empty) per input row",
    )
    anom.add_argument(
        "--step-s", type=int, default=None, help="the series' resolution in seconds (default: inferred from its first points)"
    )
    anom.set_defaults(func=_anomalies)

    quar = commands.add_parser("quarantine", help="list, show or re-admit (after a fix) rows that failed validation")
    quar.add_argument("action", choices=["list", "show", "readmit", "fixes"])
    quar.add_argument("--batch", help="the batch id (required by readmit)")
    quar.add_argument("--service", help="only this service's rows")
    quar.add_argument("--expectation", help="only rows that failed this expectation (show, readmit)")
    quar.add_argument("--rows", type=int, nargs="+", help="only these row numbers of the batch (show, readmit)")
    quar.add_argument("--fix", default="none", help="readmit: the fix to apply first (see `quarantine fixes`)")
    quar.add_argument("--dry-run", action="store_true", help="readmit: report what would pass, change nothing")
    quar.add_argument("--limit", type=int, default=50, help="show: at most this many rows")
    quar.add_argument("--json", action="store_true", help="print JSON")
    quar.set_defaults(func=_quarantine)

    pools = commands.add_parser("pools", help="every Airflow pool the DAGs use, for `airflow pools import`")
    pools.set_defaults(func=_pools)

    conn = commands.add_parser(
        "connectors", help="connector pools (for `airflow pools import`) or each object's watermark and breaker state"
    )
    conn.add_argument("action", choices=["pools", "status"])
    conn.set_defaults(func=_connectors)

    rep = commands.add_parser("replay", help="replay stored, sample-fleet or trace load through the scaling kernel under each policy")
    rep.add_argument("--from", dest="start", help="window start (UTC timestamp)")
    rep.add_argument("--to", dest="end", help="window end (UTC timestamp, exclusive)")
    rep.add_argument("--load", help="a demand trace, CSV timestamp,value (req/s, any regular step) instead of the store")
    rep.add_argument("--capacity-per-replica", type=float, help="with --load: req/s one replica serves at 100 %% CPU")
    rep.add_argument("--min-replicas", type=int, help="with --load")
    rep.add_argument("--max-replicas", type=int, help="with --load")
    rep.add_argument("--tier", help="with --load: the tier (HPA profile and latency SLO)")
    rep.add_argument("--policies", help="comma-separated: reactive,predictive,combined,scheduled")
    rep.add_argument("--output", help="with --load: the JSON result file")
    rep.add_argument("--plot", help="with --load: a PNG of load, capacity and replicas per policy")
    rep.add_argument("--base-latency-ms", type=float, help="with --load: latency at low load (default: the tier's SLO / 4)")
    rep.add_argument("--cost-per-replica-hour", type=float, default=0.10, help="with --load: USD (default 0.10)")
    rep.add_argument("--services", help="comma-separated services (default: the catalog)")
    rep.add_argument("--sample-fleet", metavar="ANCHOR", help="replay the sample fleet anchored at ANCHOR instead of the store")
    rep.add_argument("--json", action="store_true", help="print JSON")
    rep.set_defaults(func=_replay)

    alog = commands.add_parser("access-log", help="write a service's sample access log (key, timestamp, size, hit) as CSV")
    alog.add_argument("--service", required=True)
    alog.add_argument("--from", dest="start", required=True, help="window start (UTC timestamp)")
    alog.add_argument("--to", dest="end", required=True, help="window end (UTC timestamp, exclusive)")
    alog.add_argument("--anchor", help="the sample fleet's 'now' (default today, or $HEADROOM_SAMPLE_ANCHOR)")
    alog.add_argument("--out", required=True, help="CSV file to write (readable by access_log.source: file)")
    alog.set_defaults(func=_access_log)

    rc = commands.add_parser("rootcause", help="rank the services of a call graph as the root cause of a symptom (long CSVs in, JSON out)")
    rc.add_argument("--metrics", required=True, help="CSV timestamp,service,metric,statistic,value around the issue (may be .gz)")
    rc.add_argument("--normal", help="the same format for normal operation (may be .gz); optional but advised")
    rc.add_argument("--graph", required=True, help="CSV caller,callee: one row per call edge")
    rc.add_argument("--target-service", required=True, help="the service where the symptom shows")
    rc.add_argument("--target-metric", required=True, help="the symptom's metric: latency, availability, response_time, error_rate")
    rc.add_argument("--at", required=True, help="when the symptom was seen (ISO-8601)")
    rc.add_argument(
        "--output", required=True, help='JSON to write: {"ranking": [{"service", "score", "evidence", "path"}, ...]} best first'
    )
    rc.set_defaults(func=_rootcause)

    rpt = commands.add_parser("report", help="write the capacity and SLO report (HTML, JSON twin, drill-down pages) from the store")
    rpt.add_argument("--as-of", required=True, help="the time to report at (UTC)")
    rpt.add_argument("--out", help="folder to write (default $HEADROOM_REPORTS_DIR)")
    rpt.set_defaults(func=_report)

    ingf = commands.add_parser(
        "ingest-file", help="push metric files (CSV, Parquet) through the file source and validation; print the batch outcome"
    )
    ingf.add_argument("paths", nargs="+", help="files (or globs) in the sources.yaml files format (columns, units, timestamps)")
    ingf.add_argument(
        "--service", action="append", help="only this catalog service's rows (repeatable); the others are counted, not staged"
    )
    ingf.add_argument("--start", help="interval start (UTC timestamp); default: the files' oldest row")
    ingf.add_argument("--end", help="interval end (exclusive); default: one step past the newest row not in the future")
    ingf.add_argument("--now", help="the clock that decides what is in the future (default: now)")
    ingf.add_argument("--dry-run", action="store_true", help="validate against a scratch store: store nothing")
    ingf.set_defaults(func=_ingest_file)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except HeadroomError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
