"""The capacity and SLO report: a self-contained HTML page with one forecast plot per service, and its JSON twin.

Plots are matplotlib PNGs embedded as data URIs, so the file opens anywhere,
offline, with no scripts.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig, Service
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.metrics.store import ParquetStore

HISTORY_DAYS = 14
STATUS_COLORS = {"ok": "#1a7f37", "at_risk": "#bf8700", "breach": "#cf222e", "no_data": "#6e7781"}


def _plot(service: Service, history: pd.DataFrame, forecast: pd.DataFrame, capacity: dict[str, Any] | None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=90)
    try:
        if len(history):
            ax.plot(history["ts"], history["value"], color="#0969da", lw=0.8, label="history (req/s)")
        if len(forecast):
            ax.plot(forecast["ds"], forecast["yhat"], color="#8250df", lw=1.2, label=f"forecast ({forecast['model'].iloc[0]})")
            ax.fill_between(forecast["ds"], forecast["yhat_lower"], forecast["yhat_upper"], color="#8250df", alpha=0.2, label="80 % interval")
        if capacity and capacity.get("capacity_limit") and math.isfinite(capacity["capacity_limit"]):
            ax.axhline(capacity["capacity_limit"], color="#cf222e", ls="--", lw=1, label="capacity at CPU target")
            sat = capacity.get("saturation_at")
            if sat is not None and sat == sat:
                ax.axvline(sat, color="#cf222e", lw=1.5)
                ax.annotate(f"saturation {utc(sat):%b %d}", (sat, capacity["capacity_limit"]), textcoords="offset points",
                            xytext=(4, 6), color="#cf222e", fontsize=8)
        ax.set_title(f"{service.name} ({service.tier.value}): throughput and capacity", fontsize=10)
        ax.set_ylabel("requests / s")
        ax.set_xlabel("time (UTC)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        fig.autofmt_xdate()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _cell(value: Any) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, (str, list, dict)) and pd.isna(value)):
        return "-"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:,.4g}"
    return html.escape(str(value))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso")) if len(frame) else []


def build_report(store: ParquetStore, config: HeadroomConfig, as_of: Any, out_dir: str | Path) -> dict[str, Path]:
    """Write ``capacity_report_<date>.html`` and ``.json`` plus ``latest.html`` / ``latest.json`` under ``out_dir``."""
    import pandas as pd

    from include.headroom.pipeline import latest_capacity, recent_findings

    now = utc(as_of)
    capacity, forecasts = latest_capacity(store, now)
    findings = recent_findings(store, now)
    slo = store.query("SELECT * FROM slo_status WHERE window_end = (SELECT max(window_end) FROM slo_status WHERE window_end <= ?)", [now.to_pydatetime()])
    audit = store.query("SELECT * FROM audit ORDER BY created_at DESC")
    history = store.read_metrics(metrics=["throughput"], start=now - pd.Timedelta(days=HISTORY_DAYS), end=now)
    hourly = (history.set_index("ts").groupby("service")["value"].resample("1h").mean().reset_index()) if len(history) else history

    overview, sections = [], []
    for svc in sorted(config.services, key=lambda s: list(config.tiers).index(s.tier)):
        cap_rows = capacity[(capacity["service"] == svc.name) & (capacity["metric"] == "throughput")] if len(capacity) else capacity
        cap = cap_rows.iloc[0].to_dict() if len(cap_rows) else None
        s = slo[slo["service"] == svc.name].iloc[0].to_dict() if len(slo) and (slo["service"] == svc.name).any() else {}
        fc = forecasts[(forecasts["service"] == svc.name) & (forecasts["metric"] == "throughput")] if len(forecasts) else forecasts
        svc_findings = findings[findings["service"] == svc.name] if len(findings) else findings
        svc_audit = audit[audit["service"] == svc.name].head(5) if len(audit) else audit
        status = s.get("status", "no_data")
        overview.append({
            "service": svc.name, "tier": svc.tier.value, "slo_status": status,
            "error_budget_remaining": s.get("error_budget_remaining"), "latency_compliance": s.get("latency_compliance"),
            "saturation_at": cap.get("saturation_at") if cap else None, "model": cap.get("model") if cap else None,
            "cost_now_month": cap.get("cost_now_month") if cap else None, "cost_forecast_month": cap.get("cost_forecast_month") if cap else None,
            "findings": len(svc_findings),
        })
        png = _plot(svc, hourly[hourly["service"] == svc.name] if len(hourly) else hourly, fc, cap)
        finding_items = "".join(
            f"<li><b>{_cell(f['type'])}</b> ({_cell(f['kind'])}, confidence {_cell(f['confidence'])}) "
            f"{_cell(f['start'])} to {_cell(f['end'])}: top cause <code>{_cell((json.loads(f['root_causes']) or [{}])[0].get('signal'))}</code>, "
            f"remedy <b>{_cell(f['remedy'])}</b></li>"
            for f in svc_findings.to_dict("records")
        ) or "<li>none</li>"
        audit_items = "".join(
            f"<li>{_cell(a['created_at'])} {_cell(a['kind'])} <b>{_cell(a['action'])}</b> [{_cell(a['status'])}]: {_cell(a['reason'])}</li>"
            for a in svc_audit.to_dict("records")
        ) or "<li>none</li>"
        sections.append(
            f"<section id='{html.escape(svc.name)}'><h2>{html.escape(svc.name)} <small>{svc.tier.value}, owner {html.escape(svc.owner)}</small></h2>"
            f"<img alt='throughput forecast for {html.escape(svc.name)}' src='data:image/png;base64,{png}'/>"
            f"<h3>Bottlenecks</h3><ul>{finding_items}</ul><h3>Actions</h3><ul>{audit_items}</ul></section>"
        )

    header = ["service", "tier", "SLO", "error budget left", "latency compliance", "saturation", "model", "cost now / month", "cost forecast / month", "findings"]
    keys = ["service", "tier", "slo_status", "error_budget_remaining", "latency_compliance", "saturation_at", "model", "cost_now_month", "cost_forecast_month", "findings"]
    urgent = sorted(overview, key=lambda o: (o["saturation_at"] is None or o["saturation_at"] != o["saturation_at"], str(o["saturation_at"])))
    percent = {"error_budget_remaining", "latency_compliance"}

    def td(o: dict[str, Any], k: str) -> str:
        if k == "slo_status":
            return f"<td style='color:{STATUS_COLORS.get(o[k], '#000')}'><b>{_cell(o[k])}</b></td>"
        if k in percent and o[k] is not None and o[k] == o[k]:
            return f"<td>{o[k]:.1%}</td>"
        return f"<td>{_cell(o[k])}</td>"

    table_rows = "".join("<tr>" + "".join(td(o, k) for k in keys) + "</tr>" for o in urgent)
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>headroom capacity report {now:%Y-%m-%d}</title>
<style>
:root {{ color-scheme: light dark; }}
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} td, th {{ border: 1px solid #8884; padding: 4px 8px; text-align: left; }}
img {{ max-width: 100%; border-radius: 4px; }} section {{ margin-top: 2em; }} small {{ color: #888; font-weight: normal; }}
</style></head><body>
<h1>headroom: capacity and SLO report</h1>
<p>As of {now:%Y-%m-%d %H:%M} UTC. {len(config.services)} services, {len(findings)} bottleneck findings, {len(audit)} audited actions.</p>
<h2>Fleet overview (most urgent saturation first)</h2>
<table><tr>{''.join(f'<th>{h}</th>' for h in header)}</tr>{table_rows}</table>
{''.join(sections)}
</body></html>"""
    twin = {
        "as_of": now.isoformat(), "overview": json.loads(json.dumps(urgent, default=str)),
        "capacity": _records(capacity.drop(columns=["scores"], errors="ignore")), "findings": _records(findings), "slo": _records(slo),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": out / f"capacity_report_{now:%Y-%m-%d}.html", "json": out / f"capacity_report_{now:%Y-%m-%d}.json",
        "latest_html": out / "latest.html", "latest_json": out / "latest.json",
    }
    for key in ("html", "latest_html"):
        paths[key].write_text(page)
    for key in ("json", "latest_json"):
        paths[key].write_text(json.dumps(twin, indent=1, default=str))
    return paths
