"""The pipeline's steps as plain functions over a store: what every DAG task and the CLI call.

Each step takes explicit times (the run's data interval or as-of time), so a
re-run or a backfill of the same interval does the same thing.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from include.headroom.config import HeadroomConfig, Service
from include.headroom.connectors.base import read_watermark
from include.headroom.exceptions import DataError
from include.headroom.store import queries
from include.headroom.store.queries import by_service, latest_capacity, recent_findings, rows_of
from include.headroom.timeutil import utc
from include.headroom.validation.batch_records import (
    CLAIM_TIMEOUT_S,
    advance_watermark,
    claim_batch,
    compare_and_set,
    same_staging,
)
from include.headroom.validation.gates import Step, gate_services, service_freshness

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.metrics.sources import MetricsSource
    from include.headroom.store import Store

log = logging.getLogger(__name__)


def batch_id_for(source: str, start: pd.Timestamp, end: pd.Timestamp) -> str:
    return f"{source}_{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def ingest(
    store: Store,
    config: HeadroomConfig,
    source: MetricsSource,
    interval_start: Any,
    interval_end: Any,
    history_days: int | None = None,
    read_from: Any = None,
) -> dict[str, Any]:
    """Stage one batch from ``source`` for the interval (plus late-data lookback, or the initial history on first run).

    Values are converted to each metric's canonical unit (``sources.yaml`` units); the source's
    own unit, per series, is kept in the ``source_units`` table with the factor applied. Nothing is
    written, and the watermark stays, when the source or the unit conversion fails. ``new_rows``
    counts staged rows whose key is not yet in ``metrics``: re-running an interval reports 0.
    Rows the source drops as exact duplicates are counted in the batch's ``rows_duplicate`` (and in
    ``rows_in``), so ``rows_in == rows_valid + rows_quarantined + rows_duplicate`` once validated.

    :param read_from: read exactly from this time (``ingest-file``), instead of the watermark's lookback.
    """
    import time

    import pandas as pd

    from include.headroom.metrics.source_config import load_source_settings
    from include.headroom.metrics.units import normalize_units, source_units

    started = time.monotonic()
    start, end = utc(interval_start), utc(interval_end)
    if end <= start and history_days is None:
        raise DataError(f"empty data interval [{start}, {end}): schedule ingest_metrics with an interval timetable")
    watermark_key = f"source:{source.name}"
    watermark = read_watermark(store, watermark_key)
    pipe = config.pipeline
    if read_from is not None:
        read_start = utc(read_from)
    elif history_days is not None:
        read_start = end - pd.Timedelta(days=history_days)
    elif watermark is None:
        read_start = min(start, end - pd.Timedelta(days=pipe.initial_history_days))
    else:
        read_start = min(start, watermark - pd.Timedelta(seconds=pipe.lookback_s))
    units = load_source_settings().units
    rows = normalize_units(source.read(read_start, end), units, source.name)
    batch_id = batch_id_for(source.name, read_start, end)
    rows = rows.assign(batch_id=batch_id)
    rows["ts_naive"] = rows["ts_naive"].fillna(False).astype(bool) if "ts_naive" in rows.columns else False
    stats = dict(getattr(source, "stats", None) or {})
    duplicates = int(stats.get("duplicates_dropped", 0))
    newest = utc(rows["ts"].max()) if len(rows) else None
    ingested_at = pd.Timestamp.now(tz="UTC")
    record = {
        "batch_id": batch_id,
        "source": source.name,
        "interval_start": read_start,
        "interval_end": end,
        "status": "staging",
        "rows_in": len(rows) + duplicates,
        "rows_valid": 0,
        "rows_quarantined": 0,
        "rows_duplicate": duplicates,
        "ingested_at": ingested_at,
        "validated_at": None,
        "failed_expectations": "",
        "newest_ts": newest,
    }
    # The record first (a re-run always re-stages): a validation of this batch still running will see that its
    # staging was replaced and neither record its outcome over ours nor delete the rows staged here.
    compare_and_set(store, "batches", record, lambda current: True)
    store.replace_partition("staging", batch_id, rows)
    if len(rows):
        store.upsert("source_units", source_units(rows, source.name, units))
    new_rows = queries.new_staged_rows(store, batch_id, read_start, end)
    elapsed = time.monotonic() - started
    log.info(
        "Staged batch %s from %s: %d rows (%d new) in %d series, %.1f s, %.0f rows/s",
        batch_id,
        source.name,
        len(rows),
        new_rows,
        rows.groupby(["service", "metric", "labels"]).ngroups if len(rows) else 0,
        elapsed,
        len(rows) / max(elapsed, 1e-9),
    )
    staged = {**record, "status": "staged"}
    if not compare_and_set(store, "batches", staged, lambda current: same_staging(current, ingested_at, "staging")):
        log.warning("Batch %s was staged again by another run while this one staged it: that run's rows stand", batch_id)
    if newest is not None:
        advance_watermark(store, watermark_key, end)
    return {
        "batch_id": batch_id,
        "source": source.name,
        "rows": len(rows),
        "new_rows": new_rows,
        "read_start": read_start.isoformat(),
        "interval_end": end.isoformat(),
        "series": int(rows.groupby(["service", "metric"]).ngroups) if len(rows) else 0,
        "seconds": round(elapsed, 3),
        "rows_duplicate": duplicates,
        **{
            k: v
            for k, v in stats.items()
            if k in ("empty", "non_finite", "rows_before_window", "rows_after_window", "rows_in_future", "naive_timestamps")
        },
        **({"notes": list(source.notes)} if getattr(source, "notes", None) else {}),
    }


def validate_pending(
    store: Store, config: HeadroomConfig, now: Any = None, reports_dir: Any = None, batch_ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Validate every staged batch: valid rows to ``metrics``, failing rows to ``quarantine``; nothing is dropped.

    Each batch's results are stored per service (``validation_results``, read by the gates) and
    rendered as Data Docs under ``reports_dir`` (default ``$HEADROOM_REPORTS_DIR``).

    :param batch_ids: only these staged batches (``ingest-file``); default every staged batch.
    :returns: one summary per batch; ``message`` names series, expectations and rows when rows were quarantined.
    :raises DataError: after every batch is written, when a batch failed (a batch-level failure, or a
        service's share of quarantined rows past its tier's ``max_failure_ratio``).
    """
    from include.headroom.validation.docs import write_docs_index
    from include.headroom.validation.results import store_outcome
    from include.headroom.validation.suites import validate_batch

    import pandas as pd

    batches = queries.pending_batches(store, pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=CLAIM_TIMEOUT_S))
    if batch_ids is not None:
        batches = batches[batches["batch_id"].isin(list(batch_ids))]
    summaries = []
    for batch in batches.to_dict("records"):
        if not claim_batch(store, batch):
            log.info("Batch %s is being validated by another run (or was staged again): skipped here", batch["batch_id"])
            continue
        rows = staged_as_arrived(queries.staged_rows(store, batch["batch_id"]))
        outcome = validate_batch(config, rows, batch["batch_id"], batch["interval_start"], batch["interval_end"], now=now)
        summaries.append(store_outcome(store, config, outcome, batch, reports_dir, claimed=True))
    if summaries and config.pipeline.validation.data_docs:
        write_docs_index(store.read("batches"), reports_dir)
    failures = [s["message"] for s in summaries if s["status"] == "failed"]
    if failures:
        raise DataError("validation failed:\n" + "\n".join(failures))
    return summaries


def staged_as_arrived(rows: pd.DataFrame) -> pd.DataFrame:
    """Staged rows as the source delivered them: a timestamp written without a zone becomes naive text again.

    Validation then judges it with ``validation.yaml`` ``naive_timestamps``, and a quarantined row keeps it as written.
    """
    if "ts_naive" not in rows.columns:
        return rows
    naive = rows["ts_naive"].fillna(False).astype(bool)
    out = rows.drop(columns=["ts_naive"])
    if naive.any():
        out["ts"] = out["ts"].astype(object)
        out.loc[naive, "ts"] = [t.tz_convert("UTC").tz_localize(None).isoformat() for t in rows.loc[naive, "ts"]]
    return out


def freshness(store: Store, config: HeadroomConfig, as_of: Any) -> dict[str, str | None]:
    """Per catalog service, ``None`` when it may be acted on at ``as_of``, else the reason to refuse (failed validation, stale data).

    Read-only (nothing audited); the decision steps call :func:`~include.headroom.validation.gates.gate_services`.
    """
    return service_freshness(store, config, as_of)


def _services(config: HeadroomConfig, names: Sequence[str] | None) -> list[Service]:
    return [config.service(n) for n in names] if names is not None else list(config.services)


def run_forecasts(store: Store, config: HeadroomConfig, names: Sequence[str], as_of: Any) -> list[dict[str, Any]]:
    """Forecast capacity metrics of ``names`` from history before ``as_of``; stale services get a row that says why.

    Writes ``forecasts``, ``capacity`` and ``scenarios`` for the run's date, and scores the
    forecasts of earlier runs against the actuals that arrived since (``forecast_accuracy``).
    """
    import pandas as pd

    from include.headroom.forecasting.capacity import forecast_many

    now = utc(as_of)
    run_date = f"{now:%Y-%m-%d}"
    gate = gate_services(store, config, now, Step.FORECAST, names)
    history = queries.slot_means(store, list(names), [*config.forecasting.metrics, "replicas"],  # hourly means, as forecast
                                 now - pd.Timedelta(days=config.forecasting.history_days), now,
                                 int(pd.Timedelta(config.forecasting.resample).total_seconds()))
    forecasts, rows, scenarios = [], [], []
    history_of = by_service(history)
    work = []  # the whole batch goes through one engine run per time grid
    for svc in _services(config, names):
        if gate[svc.name]:
            rows += [
                {
                    "run_date": run_date,
                    "service": svc.name,
                    "tier": svc.tier.value,
                    "metric": m,
                    "model": "",
                    "trusted": False,
                    "status": "skipped",
                    "reason": gate[svc.name],
                }
                for m in config.forecasting.metrics
            ]
            continue
        metrics = rows_of(history_of, svc.name, history)
        work += [(svc, metrics, m) for m in config.forecasting.metrics]
    if work:
        for result in forecast_many(config, work, run_date):
            rows.append(result.capacity)
            scenarios += result.scenarios
            if len(result.forecast):
                forecasts.append(result.forecast)
    if forecasts:
        store.upsert("forecasts", pd.concat(forecasts, ignore_index=True))
    if scenarios:
        store.upsert("scenarios", _complete(pd.DataFrame(scenarios), "scenarios"))
    _store_capacity_plans(store, config, [svc for svc in _services(config, names) if not gate[svc.name]], now, run_date)
    capacity = pd.DataFrame(rows)
    store.upsert("capacity", _complete(capacity, "capacity"))
    _score_earlier_forecasts(store, config, [s.name for s in _services(config, names)], history, now, run_date)
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items() if k != "scores"} for r in rows]


def _store_capacity_plans(store: Store, config: HeadroomConfig, services: list[Service], now: Any, run_date: str) -> int:
    """The medium and long capacity plans (``forecasting/plans.py``) of ``services`` from their whole days of load before ``now``."""
    from include.headroom.forecasting.plans import capacity_plans

    if not services:
        return 0
    daily = queries.daily_means(store, "throughput", now.floor("D"), [s.name for s in services])
    plans = capacity_plans(config, services, daily, run_date, now=now)
    if len(plans):
        store.upsert("capacity_plans", _complete(plans, "capacity_plans"))
    return len(plans)


def _score_earlier_forecasts(store: Store, config: HeadroomConfig, names: list[str], history: pd.DataFrame, now: Any, run_date: str) -> int:
    """Score forecasts made by earlier runs (within the history window) against the actuals in ``history``."""
    import pandas as pd

    from include.headroom.forecasting.accuracy import score_past_forecasts
    from include.headroom.forecasting.capacity import to_series

    if not names:
        return 0
    oldest = f"{now - pd.Timedelta(days=config.forecasting.history_days):%Y-%m-%d}"
    earlier = queries.earlier_forecasts(store, run_date, oldest, now, names)
    if earlier.empty or history.empty:
        return 0
    history_of = by_service(history)
    actuals = [
        to_series(rows_of(history_of, service, history), metric, config.forecasting.resample).assign(service=service, metric=metric)
        for service, metric in earlier[["service", "metric"]].drop_duplicates().itertuples(index=False)
    ]
    scored = score_past_forecasts(earlier, pd.concat(actuals, ignore_index=True), now)
    if len(scored):
        store.upsert("forecast_accuracy", scored)
    return len(scored)


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


def run_analysis(store: Store, config: HeadroomConfig, names: Sequence[str], window_start: Any, window_end: Any) -> list[dict[str, Any]]:
    """SLO status and bottleneck findings (observed in the window, predicted from the latest forecast) for ``names``."""
    import pandas as pd

    from include.headroom.bottlenecks.analysis import analyze_service, predicted_findings, slo_status
    from include.headroom.bottlenecks.crossservice import explain_findings
    from include.headroom.forecasting.nearterm import with_nearterm

    def read_nodes(services: list[str], first: Any, last: Any) -> pd.DataFrame:
        """Metrics of the services a finding's root cause may be in (across the call graph), for the cross-service ranking."""
        return store.read_metrics(services=services, start=first, end=last)

    start, end = utc(window_start), utc(window_end)
    detection = config.bottlenecks.detection
    history = pd.Timedelta(days=float(detection["baseline_days"])) + pd.Timedelta(hours=float(detection.get("context_hours", 0)))
    budget_window = pd.Timedelta(days=float(config.bottlenecks.slo.get("budget_window_days", 30)))
    metrics = store.read_metrics(services=list(names), start=min(start - history, end - budget_window), end=end)
    capacity, forecasts = latest_capacity(store, end, list(names))
    gate = gate_services(store, config, end, Step.ANALYSIS, names)
    # Response time forecast one hour ahead from the newest points, in place of the daily run's (forecasting/nearterm.py).
    capacity, forecasts = with_nearterm(config, metrics, [n for n in names if not gate.get(n)], end, capacity, forecasts)
    findings, slos, out = [], [], []
    metrics_of, capacity_of, forecasts_of = by_service(metrics), by_service(capacity), by_service(forecasts)
    for svc in _services(config, names):
        rows = rows_of(metrics_of, svc.name, metrics)
        slos.append(slo_status(config, svc, rows, start, end))
        if gate[svc.name]:
            out.append({"service": svc.name, "status": "skipped", "reason": gate[svc.name], "findings": []})
            continue
        found = explain_findings(config, analyze_service(config, svc, rows, start, end), read_nodes) + predicted_findings(
            config, svc, rows_of(capacity_of, svc.name, capacity), end, rows_of(forecasts_of, svc.name, forecasts)
        )
        findings += [f.to_row(end, start) for f in found]
        out.append(
            {
                "service": svc.name,
                "status": slos[-1]["status"],
                "reason": "",
                "alert": slos[-1]["alert"],
                "budget_remaining": slos[-1]["error_budget_remaining"],
                "findings": [
                    {
                        "type": f.type,
                        "kind": f.kind,
                        "start": f.start.isoformat(),
                        "cause": f.top_cause,
                        "remedy": f.remedy,
                        "root_cause_service": f.evidence.get("root_cause", {}).get("service"),
                        "remedy_owner": f.evidence.get("root_cause", {}).get("owner"),
                        "confidence": f.confidence,
                        "summary": f.describe(),
                    }
                    for f in found
                ],
            }
        )
    store.upsert("slo_status", pd.DataFrame(slos))
    if findings:
        store.upsert("findings", pd.DataFrame(findings))
    return out


def plan_all_scaling(store: Store, config: HeadroomConfig, as_of: Any) -> list[dict[str, Any]]:
    """One scaling decision per catalog service at ``as_of``; a service with stale or invalid data gets a 'skip' decision."""
    import pandas as pd

    from include.headroom.scaling.decide import plan_scaling
    from include.headroom.scaling.policy import policy_settings
    from include.headroom.scaling.routing import scaling_memory

    now = utc(as_of)
    gate = gate_services(store, config, now, Step.SCALING)
    recent = store.read_metrics(start=now - pd.Timedelta(minutes=30), end=now + pd.Timedelta(seconds=1))
    findings = recent_findings(store, now, hours=1)
    capacity, forecast = latest_capacity(store, now)
    settings = policy_settings()
    window = max(max(b.scale_up.stabilization_s, b.scale_down.stabilization_s) for b in settings.behaviors.values())
    memory = scaling_memory(store, now, max(window, settings.scale_in_cooldown_s))
    out = []
    recent_of, findings_of, capacity_of, forecast_of = by_service(recent), by_service(findings), by_service(capacity), by_service(forecast)
    for svc in config.services:
        history, events = memory.get(svc.name, ([], []))
        decision = plan_scaling(
            config,
            svc,
            rows_of(recent_of, svc.name, recent),
            now,
            rows_of(findings_of, svc.name, findings),
            rows_of(capacity_of, svc.name, capacity),
            rows_of(forecast_of, svc.name, forecast),
            history=history,
            events=events,
            settings=settings,
            first_seen=svc.name not in memory,
        ).to_dict()
        if gate[svc.name]:
            decision.update(action="skip", rule="freshness_gate", reason=gate[svc.name], desired_replicas=decision["current_replicas"])
        out.append(decision)
    return out


def plan_capacity_schedules(store: Store, config: HeadroomConfig, as_of: Any, now: Any) -> list[dict[str, Any]]:
    """Per service whose target takes AWS scheduled actions, the planned capacity (``planned_capacity``: predictive
    and scheduled floors per hour) and whether it may be written (``live``: current interval and enabled in the
    catalog), as keyword arguments of ``ScheduleCapacityOperator``."""
    from include.headroom.scaling.decide import planned_capacity
    from include.headroom.scaling.policy import policy_settings
    from include.headroom.scaling.safety import interval_is_current

    settings = policy_settings()
    capacity, forecast = latest_capacity(store, as_of)
    current = interval_is_current(as_of, now, settings)
    capacity_of, forecast_of = by_service(capacity), by_service(forecast)
    out = []
    for svc in config.services:
        if svc.target.kind.value not in ("aws_autoscaling_group", "aws_application_autoscaling"):
            continue
        plan = planned_capacity(
            config, svc, as_of, rows_of(capacity_of, svc.name, capacity), rows_of(forecast_of, svc.name, forecast), settings
        )
        out.append({"service": svc.name, "plan": plan, "live": bool(current and svc.target.enabled)})
    return out


def plan_all_warming(
    store: Store,
    config: HeadroomConfig,
    as_of: Any,
    lookback_hours: float = 24.0 * 14,
    trigger: str | None = None,
    services: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """A warming plan per service that has a trigger; the others are listed with no trigger and the reason.

    Triggers: a cache_bound finding in the lookback (``cache_loss`` too when the hit ratio caused it), a
    forecast load peak within the configured lead time, or ``trigger`` given by the run (``schedule``,
    ``manual``) for every service. Keys come from the access log, ranked by recency-weighted frequency
    x the forecast peak load, within the configured byte budget and key count.
    """
    import numpy as np
    import pandas as pd

    from include.headroom.cache.access_log import load_access_log
    from include.headroom.cache.settings import load_cache_settings
    from include.headroom.cache.warming import Trigger, finding_triggers, forecast_peak, plan_warming, rank_hot_keys

    settings = load_cache_settings()
    warm = settings.warming
    now = utc(as_of)
    findings = recent_findings(store, now, hours=lookback_hours)
    gate = gate_services(store, config, now, Step.WARMING, services)
    hits = store.read_metrics(metrics=["cache_hit_ratio"], start=now - pd.Timedelta(hours=24), end=now)
    load = store.read_metrics(metrics=["throughput"], start=now - pd.Timedelta(hours=1), end=now + pd.Timedelta(seconds=1))
    _, forecasts = latest_capacity(store, now)
    fleet = None
    if settings.access_log.source == "sample_fleet":
        from include.headroom.metrics.sample_fleet import SampleFleet

        fleet = SampleFleet(config)
    out = []
    for svc in _services(config, services):
        series = hits.loc[hits["service"] == svc.name, "value"].to_numpy(float)
        hit_rate = float(np.mean(series)) if len(series) else 0.0
        volatility = float(np.std(series) / hit_rate) if len(series) and hit_rate else 1.0
        triggers = [t.value for t in finding_triggers(findings, svc.name)]
        peak = forecast_peak(forecasts, load, svc.name, now, warm.lead_time_s, warm.peak_ratio)
        if peak is not None:
            triggers.append(Trigger.FORECAST_PEAK.value)
        if trigger:
            triggers.append(Trigger(trigger).value)
        if gate[svc.name]:
            out.append({"service": svc.name, "trigger": None, "skip_reason": gate[svc.name]})
            continue
        if not triggers:
            out.append(
                {"service": svc.name, "trigger": None, "skip_reason": "no cache_bound finding, no cache loss and no forecast peak ahead"}
            )
            continue
        observed = load.loc[load["service"] == svc.name, "value"]
        peak_rps = peak if peak is not None else (float(observed.mean()) if len(observed) else None)
        log_rows = load_access_log(settings.access_log, svc.name, now - pd.Timedelta(seconds=warm.lookback_s), now, fleet)
        keys = rank_hot_keys(log_rows, now, warm.half_life_s, peak_rps)
        plan = plan_warming(
            config,
            svc,
            triggers[0],
            hit_rate,
            volatility,
            memory_budget_bytes=warm.budget_bytes,
            keys=keys,
            settings=settings,
            peak_rps=peak_rps,
        )
        out.append(
            {
                **plan.to_dict(),
                "triggers": triggers,
                "hit_rate": round(hit_rate, 4),
                "volatility": round(volatility, 4),
                "as_of": now.isoformat(),
                "skip_reason": None,
            }
        )
    return out


def _bottleneck_line(top: Any) -> str:
    causes = json.loads(top["root_causes"])
    return f"{top['type']} ({top['kind']}, cause {causes[0]['signal'] if causes else '?'}) -> {top['remedy']}"


def _scaling_line(scaling: Any) -> str:
    before, after = json.loads(scaling["before"].iloc[0]), json.loads(scaling["after"].iloc[0])
    return f"{scaling['action'].iloc[0]} {before.get('replicas')}->{after.get('replicas')} [{scaling['status'].iloc[0]}]"


def summary(store: Store, config: HeadroomConfig, as_of: Any) -> list[dict[str, Any]]:
    """Per service: saturation date, top finding, scaling decision, and what the cache and connector tasks did."""
    from include.headroom.cache.warming import describe_cache_action

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
        rows.append(
            {
                "service": svc.name,
                "tier": svc.tier.value,
                "saturation": (f"{utc(sat):%Y-%m-%d %H:%M}" if sat is not None and sat == sat else "none in horizon"),
                "model": cap["model"].iloc[0] if len(cap) else "",
                "bottleneck": _bottleneck_line(top) if top is not None else "none",
                "scaling": _scaling_line(scaling) if len(scaling) else "-",
                "cache": describe_cache_action(
                    cache["action"].iloc[0], cache["status"].iloc[0], cache["before"].iloc[0], cache["after"].iloc[0]
                )
                if len(cache)
                else "-",
            }
        )
    return rows
