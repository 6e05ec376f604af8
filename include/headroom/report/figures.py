"""The report's figures collected from the store into one JSON-ready dict: what the HTML shows and the JSON twin holds.

Every value is plain JSON (timestamps as ISO 8601 strings in UTC, missing values as
``None``), so the twin can be compared with what the page shows, field by field.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig
from include.headroom.catalog import Service
from include.headroom.exceptions import ForecastError
from include.headroom.report.settings import ReportSettings
from include.headroom.store import queries
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.store import Store

SCHEMA_VERSION = 1
OVERVIEW_KEYS = (
    "service",
    "tier",
    "slo_status",
    "error_budget_remaining",
    "latency_compliance",
    "saturation_at",
    "saturation_at_upper",
    "saturation_probability",
    "model",
    "trusted",
    "cost_now_month",
    "cost_forecast_month",
    "cost_recommended_month",
    "findings",
)


def plain(value: Any) -> Any:
    """``value`` as plain JSON: timestamps to ISO strings in UTC, NaN/NaT to ``None``, NumPy scalars to Python."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    try:
        if value != value:  # NaN, NaT, pandas NA
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "isoformat") and hasattr(value, "tzinfo"):
        return utc(value).isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_field(text: Any) -> Any:
    """A JSON column (``before``, ``root_causes``...) parsed; text that is not JSON is kept as it is."""
    if text is None or text == "" or (isinstance(text, float) and text != text):
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [plain(r) for r in frame.to_dict("records")] if len(frame) else []


def urgency_key(row: dict[str, Any]) -> tuple[bool, str]:
    """Sort key of the fleet overview: earliest saturation first (ISO strings in UTC sort by time), services without one last."""
    sat = row.get("saturation_at")
    return (sat is None, sat or "")


def latest_slo(store: Store, now: pd.Timestamp) -> pd.DataFrame:
    """The newest SLO status per service at or before ``now``."""
    return queries.latest_slo(store, now)


def spec_horizon_bands(store: Store, config: HeadroomConfig, now: pd.Timestamp, metric: str) -> list[dict[str, Any]]:
    """For each SPEC planning horizon: accuracy (1 - MAPE) on a held-out span of the stored daily history, and its band.

    Only whole days before ``now`` count (a partial day's mean would be biased by the hours it
    lacks). A horizon whose held-out span does not fit twice in the stored history is reported
    with ``status`` ``insufficient_history`` and the days it needs, never guessed.
    """
    import numpy as np

    from include.headroom.forecasting.accuracy import horizon_accuracy

    daily = queries.daily_means(store, metric, now.floor("D"))
    history_days = int(daily.groupby("service")["ds"].nunique().max()) if len(daily) else 0
    out = []
    for name, spec in config.forecasting.horizons.items():
        lo, hi = (float(x) for x in spec["expected_accuracy"])
        days = int(spec["period_days"][0])
        scores = []
        for _, frame in daily.groupby("service"):
            try:
                scores += [h.accuracy for h in horizon_accuracy(frame[["ds", "y"]], {name: spec})]
            except ForecastError:
                continue
        row = {
            "horizon": name,
            "days": days,
            "band": [lo, hi],
            "series": len(scores),
            "history_days": history_days,
            "needed_days": 2 * days,
        }
        if scores:
            median = float(np.median(scores))
            row.update(accuracy=round(median, 4), meets_band=median >= lo, status="meets" if median >= lo else "misses")
        else:
            row.update(accuracy=None, meets_band=None, status="insufficient_history")
        out.append(row)
    return out


def accuracy_over_time(store: Store, now: pd.Timestamp, runs: int) -> list[dict[str, Any]]:
    """Forecasts of earlier runs scored against actuals, per (run, metric, model, days ahead) over the fleet, newest runs."""
    frame = queries.accuracy_by_run(store, f"{now:%Y-%m-%d}")
    if frame.empty:
        return []
    keep = sorted(frame["run_date"].unique())[-runs:]
    frame = frame[frame["run_date"].isin(keep)]
    frame = frame.assign(accuracy=1.0 - frame["mape"])
    return _rows(frame)


def audit_records(audit: pd.DataFrame, newest: int) -> list[dict[str, Any]]:
    """The ``newest`` audit records, newest first, with their JSON columns (before, after, detail) parsed; any kind."""
    if audit.empty:
        return []
    out = []
    for a in _rows(audit.sort_values(["created_at", "audit_id"], ascending=False).head(newest)):
        a.update(before=_json_field(a.get("before")), after=_json_field(a.get("after")), detail=_json_field(a.get("detail")))
        out.append(a)
    return out


def _service_figures(
    service: Service,
    settings: ReportSettings,
    capacity: pd.DataFrame,
    forecasts: pd.DataFrame,
    findings: pd.DataFrame,
    audit: pd.DataFrame,
    scenarios: pd.DataFrame,
    slo: dict[str, Any],
    replicas_now: float | None,
    accuracy: pd.DataFrame,
) -> dict[str, Any]:
    metric = settings.plot_metric
    caps = _rows(capacity.drop(columns=["scores"], errors="ignore"))
    load = next((c for c in caps if c["metric"] == metric), None)
    load_fc = forecasts[forecasts["metric"] == metric] if len(forecasts) else forecasts
    planned = load_fc["replicas"].dropna() if len(load_fc) and "replicas" in load_fc else []
    actions = audit_records(audit, settings.actions_per_service)
    found = []
    for f in _rows(findings):
        f.update(root_causes=_json_field(f.get("root_causes")) or [], evidence=_json_field(f.get("evidence")))
        found.append(f)
    acc = (
        accuracy.groupby(["model", "horizon_days"], as_index=False).agg(
            runs=("run_date", "nunique"), mape=("mape", "median"), coverage=("coverage", "median")
        )
        if len(accuracy)
        else accuracy
    )
    return {
        "service": service.name,
        "tier": service.tier.value,
        "owner": service.owner,
        "slo": {k: plain(v) for k, v in slo.items() if k not in ("use", "burn_alerts")}
        | {"burn_alerts": _json_field(slo.get("burn_alerts")), "use": _json_field(slo.get("use"))}
        if slo
        else None,
        "capacity": caps,
        "load": load,
        "replicas": {
            "actual_now": plain(replicas_now),
            "planned_peak": plain(load.get("replicas_needed_peak")) if load else None,
            "planned_max_forecast": plain(float(max(planned))) if len(planned) else None,
            "min_replicas": service.min_replicas,
            "max_replicas": service.max_replicas,
            "max_replicas_enough": plain(load.get("max_replicas_enough")) if load else None,
        },
        "findings": found,
        "actions": actions,
        "scenarios": _rows(scenarios),
        "accuracy": _rows(acc.assign(accuracy=1.0 - acc["mape"])) if len(acc) else [],
    }


REPLAY_MAX_SERVICES = 50  # the policy replay runs the forecasting engine per service: the first 50 of the overview only
REPLAY_POLICIES = ("reactive", "predictive")


def policy_replay_figures(store: Store, config: HeadroomConfig, now: pd.Timestamp, services: list[str]) -> list[dict[str, Any]]:
    """Last week's replay per service: the replicas that actually ran against reactive HPA and the predictive policy
    (SLO-violation minutes, replica-hours, cost), from the stored load (``scaling.replay``). A service without load
    in the week gets one row that says so."""
    import pandas as pd

    from include.headroom.exceptions import DataError
    from include.headroom.scaling.replay import SEASON_S, replay

    start, history_from = now - pd.Timedelta(days=7), now - pd.Timedelta(days=7) - pd.Timedelta(seconds=SEASON_S)
    history = store.read_metrics(services=services, metrics=["throughput", "replicas"], start=history_from, end=now)
    out = []
    for name in services:
        try:
            rows = replay(config, history, start, now, [name], policies=REPLAY_POLICIES, with_actual=True)
        except DataError as exc:
            out.append({"service": name, "policy": None, "reason": str(exc)})
            continue
        out += [{k: plain(v) for k, v in r.items()} for r in rows if r["service"] == name]
    return out


def collect_figures(store: Store, config: HeadroomConfig, as_of: pd.Timestamp, settings: ReportSettings) -> dict[str, Any]:
    """Every figure of the report at ``as_of`` from the store: fleet overview, per service, accuracy, scenarios.

    :returns: plain JSON (see :func:`plain`); the report's JSON twin is exactly this dict.
    """
    import pandas as pd

    from include.headroom.forecasting.plans import plan_summary
    from include.headroom.store.queries import by_service, rows_of

    now = as_of
    capacity, forecasts = queries.latest_capacity(store, now)
    run_date = str(capacity["run_date"].iloc[0]) if len(capacity) else None
    findings = queries.recent_findings(store, now)
    slo = latest_slo(store, now)
    audit = store.read("audit")
    scenarios = queries.scenarios_of_run(store, run_date)
    plans = by_service(queries.capacity_plans_of_run(store, run_date))
    accuracy = queries.accuracy_until(store, f"{now:%Y-%m-%d}")
    replicas = queries.newest_values(store, "replicas", now, now - pd.Timedelta(days=1))
    replicas_now = dict(zip(replicas["service"], replicas["value"], strict=False)) if len(replicas) else {}

    tiers = list(config.tiers)
    services, overview = {}, []
    plotted = accuracy[accuracy["metric"] == settings.plot_metric] if len(accuracy) else accuracy
    frames = (slo, capacity, forecasts, findings, audit, scenarios, plotted)
    split = [by_service(f) for f in frames]  # one pass per table, not one filter per service and table
    for svc in sorted(config.services, key=lambda s: (tiers.index(s.tier), s.name)):
        slo_rows, cap, fc, found, acts, scen, acc = (rows_of(parts, svc.name, f) for parts, f in zip(split, frames, strict=False))
        slo_row = slo_rows.iloc[0].to_dict() if len(slo_rows) else {}
        fig = _service_figures(svc, settings, cap, fc, found, acts, scen, slo_row, replicas_now.get(svc.name), acc)
        fig["plans"] = plain(plan_summary(plans.get(svc.name)))  # medium and long capacity plans, per scenario
        services[svc.name] = fig
        load = fig["load"] or {}
        overview.append(
            {
                "service": svc.name,
                "tier": svc.tier.value,
                "slo_status": plain(slo_row.get("status")) or "no_data",
                "error_budget_remaining": plain(slo_row.get("error_budget_remaining")),
                "latency_compliance": plain(slo_row.get("latency_compliance")),
                "saturation_at": load.get("saturation_at"),
                "saturation_at_upper": load.get("saturation_at_upper"),
                "saturation_probability": load.get("saturation_probability"),
                "model": load.get("model"),
                "trusted": load.get("trusted"),
                "cost_now_month": load.get("cost_now_month"),
                "cost_forecast_month": load.get("cost_forecast_month"),
                "cost_recommended_month": load.get("cost_recommended_month"),
                "findings": len(fig["findings"]),
            }
        )
    overview.sort(key=urgency_key)  # stable: services without saturation keep their tier order

    def total(key: str) -> float | None:
        values = [o[key] for o in overview if o[key] is not None]
        return round(float(sum(values)), 2) if values else None

    by_tier: dict[str, list[str]] = {t.value: [] for t in tiers}
    for svc in config.services:
        by_tier[svc.tier.value].append(svc.name)
    slo_counts: dict[str, int] = {}
    for o in overview:
        slo_counts[o["slo_status"]] = slo_counts.get(o["slo_status"], 0) + 1
    return {
        "schema_version": SCHEMA_VERSION,
        "as_of": now.isoformat(),
        "run_date": run_date,
        "fleet": {
            "services": len(config.services),
            "by_tier": by_tier,
            "slo_status": slo_counts,
            "findings": int(len(findings)),
            "actions": int(len(audit)),
            "cost": {
                "now_month": total("cost_now_month"),
                "forecast_month": total("cost_forecast_month"),
                "recommended_month": total("cost_recommended_month"),
            },
        },
        "overview": overview,
        "services": services,
        "accuracy": {
            "over_time": accuracy_over_time(store, now, settings.accuracy_runs),
            "horizons": spec_horizon_bands(store, config, now, settings.plot_metric),
        },
        "other_actions": audit_records(audit[~audit["service"].isin(list(services))] if len(audit) else audit, settings.other_actions),
        "scenarios": _rows(scenarios.drop(columns=["description"], errors="ignore")) if len(scenarios) else [],
        "scenario_descriptions": {s.name: s.description for s in config.forecasting.scenarios},
        "policy_replay": policy_replay_figures(store, config, now, [o["service"] for o in overview[:REPLAY_MAX_SERVICES]]),
    }
