"""The pipeline's steps as plain functions over a store: what every DAG task and the CLI call.

Each step takes explicit times (the run's data interval or as-of time), so a
re-run or a backfill of the same interval does the same thing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence

from include.headroom.config import HeadroomConfig, Service
from include.headroom.connectors.base import read_watermark, write_watermark
from include.headroom.exceptions import DataError
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.metrics.sources import MetricsSource
    from include.headroom.metrics.store import ParquetStore


def batch_id_for(source: str, start: pd.Timestamp, end: pd.Timestamp) -> str:
    return f"{source}_{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def ingest(
    store: ParquetStore,
    config: HeadroomConfig,
    source: MetricsSource,
    interval_start: Any,
    interval_end: Any,
    history_days: int | None = None,
) -> dict[str, Any]:
    """Stage one batch from ``source`` for the interval (plus late-data lookback, or the initial history on first run)."""
    import pandas as pd

    start, end = utc(interval_start), utc(interval_end)
    if end <= start and history_days is None:
        raise DataError(f"empty data interval [{start}, {end}): schedule ingest_metrics with an interval timetable")
    watermark_key = f"source:{source.name}"
    watermark = read_watermark(store, watermark_key)
    pipe = config.pipeline
    if history_days is not None:
        read_start = end - pd.Timedelta(days=history_days)
    elif watermark is None:
        read_start = min(start, end - pd.Timedelta(days=pipe.initial_history_days))
    else:
        read_start = min(start, watermark - pd.Timedelta(seconds=pipe.lookback_s))
    rows = source.read(read_start, end)
    batch_id = batch_id_for(source.name, read_start, end)
    rows = rows.assign(batch_id=batch_id)
    store.replace_partition("staging", batch_id, rows)
    newest = utc(rows["ts"].max()) if len(rows) else None
    store.upsert("batches", pd.DataFrame([{
        "batch_id": batch_id, "source": source.name, "interval_start": read_start, "interval_end": end, "status": "staged",
        "rows_in": len(rows), "rows_valid": 0, "rows_quarantined": 0, "ingested_at": pd.Timestamp.now(tz="UTC"),
        "validated_at": None, "failed_expectations": "", "newest_ts": newest,
    }]))
    if newest is not None and (watermark is None or end > watermark):
        write_watermark(store, watermark_key, end)
    return {"batch_id": batch_id, "source": source.name, "rows": len(rows), "read_start": read_start.isoformat(),
            "interval_end": end.isoformat(), "series": int(rows.groupby(["service", "metric"]).ngroups) if len(rows) else 0}


def validate_pending(store: ParquetStore, config: HeadroomConfig, now: Any = None) -> list[dict[str, Any]]:
    """Validate every staged batch: valid rows to ``metrics``, failing rows to ``quarantine``; nothing is dropped.

    :raises DataError: after writing, when a batch's failure ratio passes the configured threshold.
    """
    import pandas as pd

    from include.headroom.validation.suites import describe_failures, validate_batch

    batches = store.query("SELECT * FROM batches WHERE status = 'staged' ORDER BY interval_end")
    summaries, failures = [], []
    for batch in batches.itertuples():
        rows = store.query("SELECT * FROM staging WHERE batch_id = ? ORDER BY service, metric, ts", [batch.batch_id])
        outcome = validate_batch(config, rows, batch.batch_id, batch.interval_start, batch.interval_end, now=now)
        if len(outcome.valid):
            store.upsert("metrics", outcome.valid)
        if len(outcome.quarantined):
            store.upsert("quarantine", outcome.quarantined)
        failed = outcome.batch_failure is not None or outcome.failure_ratio > config.pipeline.max_failure_ratio
        status = "failed" if failed else "validated"
        store.upsert("batches", pd.DataFrame([{
            **{k: getattr(batch, k) for k in ("batch_id", "source", "interval_start", "interval_end", "rows_in", "ingested_at", "newest_ts")},
            "status": status, "rows_valid": len(outcome.valid), "rows_quarantined": len(outcome.quarantined),
            "validated_at": pd.Timestamp.now(tz="UTC"), "failed_expectations": outcome.summary(),
        }]))
        store.replace_partition("staging", batch.batch_id, rows.iloc[0:0])
        summaries.append({"batch_id": batch.batch_id, "status": status, "rows_in": outcome.rows_in,
                          "rows_valid": len(outcome.valid), "rows_quarantined": len(outcome.quarantined)})
        if failed:
            failures.append(describe_failures(outcome))
    if failures:
        raise DataError("validation failed:\n" + "\n".join(failures))
    return summaries


def freshness(store: ParquetStore, config: HeadroomConfig, as_of: Any) -> dict[str, str | None]:
    """Per catalog service, ``None`` when its validated data is fresh at ``as_of``, else the reason to refuse acting on it."""
    import pandas as pd

    now = utc(as_of)
    max_age = pd.Timedelta(seconds=config.pipeline.max_age_s)
    newest = store.query("SELECT service, max(ts) AS newest FROM metrics WHERE ts <= ? GROUP BY service", [now.to_pydatetime()])
    newest_by = {r.service: utc(r.newest) for r in newest.itertuples()}
    last_batch = store.query("SELECT status, failed_expectations FROM batches ORDER BY interval_end DESC LIMIT 1")
    batch_failed = len(last_batch) and last_batch["status"].iloc[0] == "failed"
    out: dict[str, str | None] = {}
    for svc in config.services:
        seen = newest_by.get(svc.name)
        if batch_failed:
            out[svc.name] = "the latest batch failed validation"
        elif seen is None:
            out[svc.name] = "no validated data"
        elif seen < now - max_age:
            out[svc.name] = f"stale: newest validated point {seen.isoformat()} is older than {max_age} at {now.isoformat()}"
        else:
            out[svc.name] = None
    return out


def _services(config: HeadroomConfig, names: Sequence[str] | None) -> list[Service]:
    return [config.service(n) for n in names] if names is not None else list(config.services)


def run_forecasts(store: ParquetStore, config: HeadroomConfig, names: Sequence[str], as_of: Any) -> list[dict[str, Any]]:
    """Forecast capacity metrics of ``names`` from history before ``as_of``; stale services get a row that says why."""
    import pandas as pd

    from include.headroom.forecasting.capacity import forecast_service

    now = utc(as_of)
    run_date = f"{now:%Y-%m-%d}"
    gate = freshness(store, config, now)
    history = store.read_metrics(services=list(names), start=now - pd.Timedelta(days=config.forecasting.history_days), end=now)
    forecasts, rows = [], []
    for svc in _services(config, names):
        if gate[svc.name]:
            rows += [{"run_date": run_date, "service": svc.name, "tier": svc.tier.value, "metric": m, "model": "",
                      "trusted": False, "status": "skipped", "reason": gate[svc.name]} for m in config.forecasting.metrics]
            continue
        for result in forecast_service(config, svc, history[history["service"] == svc.name], run_date):
            rows.append(result.capacity)
            if len(result.forecast):
                forecasts.append(result.forecast)
    if forecasts:
        store.upsert("forecasts", pd.concat(forecasts, ignore_index=True))
    capacity = pd.DataFrame(rows)
    store.upsert("capacity", _complete(capacity, "capacity"))
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items() if k != "scores"} for r in rows]


def _complete(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Give ``frame`` every column of table ``name``, missing ones empty."""
    from include.headroom.metrics.schema import table

    spec = table(name)
    defaults = {"timestamp": None, "string": "", "float64": float("nan"), "int64": 0, "bool": False}
    out = frame.copy()
    for col, kind in spec.columns.items():
        if col not in out.columns:
            out[col] = defaults[kind]
        elif kind in ("int64", "bool"):
            out[col] = out[col].fillna(defaults[kind])
    return out


def latest_capacity(store: ParquetStore, as_of: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The newest capacity rows and their forecasts made on or before ``as_of``."""
    run = store.query("SELECT max(run_date) AS d FROM capacity WHERE run_date <= ?", [f"{utc(as_of):%Y-%m-%d}"])["d"].iloc[0]
    if run is None or run != run:
        empty = store.query("SELECT * FROM capacity WHERE false")
        return empty, store.query("SELECT * FROM forecasts WHERE false")
    return store.read("capacity", run_date=run), store.read("forecasts", run_date=run)


def run_analysis(store: ParquetStore, config: HeadroomConfig, names: Sequence[str], window_start: Any, window_end: Any) -> list[dict[str, Any]]:
    """SLO status and bottleneck findings (observed in the window, predicted from the latest forecast) for ``names``."""
    import pandas as pd

    from include.headroom.bottlenecks.analysis import analyze_service, predicted_findings, slo_status

    start, end = utc(window_start), utc(window_end)
    baseline_days = int(config.bottlenecks.detection["baseline_days"])
    metrics = store.read_metrics(services=list(names), start=start - pd.Timedelta(days=baseline_days), end=end)
    capacity, _ = latest_capacity(store, end)
    gate = freshness(store, config, end)
    findings, slos, out = [], [], []
    for svc in _services(config, names):
        rows = metrics[metrics["service"] == svc.name]
        slos.append(slo_status(config, svc, rows, start, end))
        if gate[svc.name]:
            out.append({"service": svc.name, "status": "skipped", "reason": gate[svc.name], "findings": []})
            continue
        found = analyze_service(config, svc, rows, start, end) + predicted_findings(config, svc, capacity, end)
        findings += [f.to_row(end) for f in found]
        out.append({"service": svc.name, "status": slos[-1]["status"], "reason": "",
                    "findings": [{"type": f.type, "kind": f.kind, "start": f.start.isoformat(), "cause": f.top_cause, "remedy": f.remedy} for f in found]})
    store.upsert("slo_status", pd.DataFrame(slos))
    if findings:
        store.upsert("findings", pd.DataFrame(findings))
    return out


def recent_findings(store: ParquetStore, as_of: Any, hours: float = 24.0 * 14) -> pd.DataFrame:
    """Findings of the newest analysis at or before ``as_of`` whose episode ended within ``hours``."""
    import pandas as pd

    now = utc(as_of)
    last = store.query("SELECT max(window_end) AS w FROM findings WHERE window_end <= ?", [now.to_pydatetime()])["w"].iloc[0]
    if last is None or last != last:
        return store.query("SELECT * FROM findings WHERE false")
    return store.query(
        "SELECT * FROM findings WHERE window_end = ? AND \"end\" >= ? ORDER BY service, start",
        [utc(last).to_pydatetime(), (now - pd.Timedelta(hours=hours)).to_pydatetime()],
    )


def plan_all_scaling(store: ParquetStore, config: HeadroomConfig, as_of: Any) -> list[dict[str, Any]]:
    """One scaling decision per catalog service at ``as_of``; a service with stale or invalid data gets a 'skip' decision."""
    import pandas as pd

    from include.headroom.scaling.decide import plan_scaling

    now = utc(as_of)
    gate = freshness(store, config, now)
    recent = store.read_metrics(start=now - pd.Timedelta(minutes=30), end=now + pd.Timedelta(seconds=1))
    findings = recent_findings(store, now, hours=1)
    capacity, forecast = latest_capacity(store, now)
    out = []
    for svc in config.services:
        decision = plan_scaling(config, svc, recent[recent["service"] == svc.name], now, findings, capacity, forecast).to_dict()
        if gate[svc.name]:
            decision.update(action="skip", rule="freshness_gate", reason=gate[svc.name], desired_replicas=decision["current_replicas"])
        out.append(decision)
    return out


def plan_all_warming(store: ParquetStore, config: HeadroomConfig, as_of: Any, lookback_hours: float = 24.0 * 14) -> list[dict[str, Any]]:
    """A warming plan for each service with a cache_bound finding in the lookback; the others are listed with no trigger."""
    import numpy as np
    import pandas as pd

    from include.headroom.cache.warming import plan_warming

    now = utc(as_of)
    findings = recent_findings(store, now, hours=lookback_hours)
    cache_bound = set(findings.loc[findings["type"] == "cache_bound", "service"]) if len(findings) else set()
    gate = freshness(store, config, now)
    hits = store.read_metrics(metrics=["cache_hit_ratio"], start=now - pd.Timedelta(hours=24), end=now)
    out = []
    for svc in config.services:
        series = hits.loc[hits["service"] == svc.name, "value"].to_numpy(float)
        hit_rate = float(np.mean(series)) if len(series) else 0.0
        volatility = float(np.std(series) / hit_rate) if len(series) and hit_rate else 1.0
        trigger = "cache_bound" if svc.name in cache_bound else None
        if gate[svc.name]:
            out.append({"service": svc.name, "trigger": None, "skip_reason": gate[svc.name]})
        elif trigger is None:
            out.append({"service": svc.name, "trigger": None, "skip_reason": "no cache_bound finding and no forecast peak ahead"})
        else:
            plan = plan_warming(config, svc, trigger, hit_rate, volatility, memory_budget_bytes=256 * 1024 * 1024)
            out.append({**plan.to_dict(), "hit_rate": round(hit_rate, 4), "volatility": round(volatility, 4), "skip_reason": None})
    return out


def summary(store: ParquetStore, config: HeadroomConfig, as_of: Any) -> list[dict[str, Any]]:
    """Per service: saturation date, top finding, scaling decision, and what the cache and connector tasks did."""
    now = utc(as_of)
    capacity, _ = latest_capacity(store, now)
    findings = recent_findings(store, now)
    audit = store.read("audit")
    rows = []
    for svc in config.services:
        cap = capacity[(capacity["service"] == svc.name) & (capacity["metric"] == "throughput")] if len(capacity) else capacity
        sat = cap["saturation_at"].iloc[0] if len(cap) else None
        f = findings[findings["service"] == svc.name] if len(findings) else findings
        top = f.sort_values("confidence", ascending=False).iloc[0] if len(f) else None
        acts = audit[audit["service"] == svc.name] if len(audit) else audit
        scaling = acts[acts["kind"] == "scaling"].sort_values("created_at").tail(1) if len(acts) else acts
        cache = acts[acts["kind"] == "cache"].sort_values("created_at").tail(1) if len(acts) else acts
        rows.append({
            "service": svc.name, "tier": svc.tier.value,
            "saturation": (f"{utc(sat):%Y-%m-%d %H:%M}" if sat is not None and sat == sat else "none in horizon"),
            "model": cap["model"].iloc[0] if len(cap) else "",
            "bottleneck": f"{top['type']} ({top['kind']}, cause {json.loads(top['root_causes'])[0]['signal'] if json.loads(top['root_causes']) else '?'}) -> {top['remedy']}" if top is not None else "none",
            "scaling": f"{scaling['action'].iloc[0]} {json.loads(scaling['before'].iloc[0]).get('replicas')}->{json.loads(scaling['after'].iloc[0]).get('replicas')} [{scaling['status'].iloc[0]}]" if len(scaling) else "-",
            "cache": f"{cache['action'].iloc[0]} [{cache['status'].iloc[0]}]" if len(cache) else "-",
        })
    return rows
