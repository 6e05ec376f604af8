"""The capacity and SLO report: a self-contained HTML page (plots embedded), a drill-down page per service, and the JSON twin.

:func:`build_report` collects the figures (:mod:`include.headroom.report.figures`), draws one PNG
per service (:mod:`include.headroom.report.plots`), renders the pages from those same figures and
writes ``capacity_report_<date>.html|json``, ``latest.html|json`` and ``services/<service>.html``.
It runs in two steps a DAG can spread over workers: :func:`write_service_pages` for any subset of
the services (their plots and drill-down pages), then :func:`write_fleet_report` (the fleet page,
with the full section of the ``detailed_services`` most urgent services, and the twin).
Every overview cell carries its raw JSON value in ``data-value``, so a tool (or a test) can read the
page's figures back and compare them with the twin.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from include.headroom.exceptions import ReportError
from include.headroom.fileio import write_atomic
from include.headroom.report.figures import collect_figures
from include.headroom.report.settings import ReportSettings, load_report_settings
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig
    from include.headroom.store import Store

STATUS_CLASS = {
    "ok": "ok",
    "at_risk": "warn",
    "breach": "bad",
    "no_data": "muted",
    "meets": "ok",
    "misses": "bad",
    "insufficient_history": "muted",
}
OVERVIEW_COLUMNS = (  # (field, header, format)
    ("service", "service", "link"),
    ("tier", "tier", "text"),
    ("slo_status", "SLO", "status"),
    ("error_budget_remaining", "error budget left", "pct"),
    ("latency_compliance", "latency compliance", "pct"),
    ("saturation_at", "saturation (median)", "time"),
    ("saturation_at_upper", "saturation (interval)", "time"),
    ("saturation_probability", "P(saturation)", "pct"),
    ("model", "model", "text"),
    ("trusted", "trusted", "bool"),
    ("cost_now_month", "cost now / month", "usd"),
    ("cost_forecast_month", "projected / month", "usd"),
    ("cost_recommended_month", "recommended / month", "usd"),
    ("findings", "findings", "int"),
)
CSS = """
:root { color-scheme: light dark; --fg: #1f2328; --bg: #ffffff; --muted: #656d76; --line: #d0d7de; --card: #f6f8fa;
        --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --link: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #8d96a0; --line: #30363d; --card: #161b22;
          --ok: #3fb950; --warn: #d29922; --bad: #f85149; --link: #4493f8; } }
body { font-family: system-ui, sans-serif; margin: 1.5em; max-width: 1200px; color: var(--fg); background: var(--bg); }
a { color: var(--link); } h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid var(--line); padding-bottom: 0.2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
td, th { border: 1px solid var(--line); padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: var(--card); } .num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: var(--ok); font-weight: 600; } .warn { color: var(--warn); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
.muted, small { color: var(--muted); font-weight: normal; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 0.6em 1em; }
.card b { font-size: 1.3em; } img { max-width: 100%; } section.service { margin-top: 2.5em; }
.scroll { overflow-x: auto; } nav { font-size: 0.85em; margin: 0.5em 0 1em; } nav a { margin-right: 0.6em; } code { font-size: 0.9em; }
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def fmt(value: Any, kind: str = "text") -> str:
    """One figure as the page shows it (escaped); ``-`` when missing."""
    if value is None:
        return "-"
    if kind == "time":
        return f"{utc(value):%Y-%m-%d %H:%M}"
    if kind == "pct":
        return f"{float(value):.1%}"
    if kind == "usd":
        return f"${float(value):,.0f}"
    if kind == "int":
        return f"{int(value):d}"
    if kind == "bool":
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return esc(value)


def _cell(value: Any, kind: str, field: str, service_href: str = "") -> str:
    raw = esc(json.dumps(value))
    text = fmt(value, kind if kind not in ("link", "status") else "text")
    cls = " class='num'" if kind in ("pct", "usd", "int") else ""
    if kind == "status":
        cls = f" class='{STATUS_CLASS.get(str(value), '')}'"
    if kind == "bool" and value is False:
        cls = " class='bad'"
    if kind == "link" and service_href:
        text = f"<a href='{esc(service_href)}'>{text}</a>"
    return f"<td data-field='{esc(field)}' data-value='{raw}'{cls}>{text}</td>"


def _table(headers: list[str], rows: list[list[str]], table_id: str = "") -> str:
    ident = f" id='{esc(table_id)}'" if table_id else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f"<div class='scroll'><table{ident}><tr>{head}</tr>{body}</table></div>"


def _td(value: Any, kind: str = "text") -> str:
    cls = " class='num'" if kind in ("pct", "usd", "int") or isinstance(value, float) else ""
    if kind == "status":
        cls = f" class='{STATUS_CLASS.get(str(value), '')}'"
    return f"<td{cls}>{fmt(value, kind if kind != 'status' else 'text')}</td>"


def _mapping(value: Any) -> str:
    """A JSON value of an audit or finding record, as compact readable text."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return (
            "<br>".join(
                f"{esc(k)}: <code>{esc(json.dumps(v, default=str) if isinstance(v, (dict, list)) else v)}</code>" for k, v in value.items()
            )
            or "-"
        )
    return f"<code>{esc(json.dumps(value, default=str) if isinstance(value, list) else value)}</code>"


def _change(before: Any, after: Any) -> str:
    """Before -> after, key by key when both are mappings: what an action changed."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = list(dict.fromkeys([*before, *after]))
        parts = [
            f"{esc(k)}: {esc(before.get(k))} &rarr; <b>{esc(after.get(k))}</b>"
            if before.get(k) != after.get(k)
            else f"{esc(k)}: {esc(after.get(k))}"
            for k in keys
        ]
        return "<br>".join(parts) or "-"
    return f"{_mapping(before)} &rarr; {_mapping(after)}"


def _some(names: list[str], shown: int = 8) -> str:
    return ", ".join(names) if len(names) <= shown else ", ".join(names[:shown]) + f" and {len(names) - shown} more"


def _fleet(figures: Mapping[str, Any], service_href: str) -> str:
    fleet = figures["fleet"]
    tiers = "".join(
        f"<div class='card'><small>{esc(t)}</small><br><b>{len(names)}</b> <small>{esc(_some(names))}</small></div>"
        for t, names in fleet["by_tier"].items()
        if names
    )
    slo = " ".join(f"<span class='{STATUS_CLASS.get(s, '')}'>{esc(s)} {n}</span>" for s, n in sorted(fleet["slo_status"].items()))
    cost = fleet["cost"]
    cards = (
        f"<div class='cards'>{tiers}<div class='card'><small>SLO status</small><br>{slo}</div>"
        f"<div class='card' id='fleet-cost'><small>fleet cost / month: now, projected, recommended</small><br>"
        f"<b>{fmt(cost['now_month'], 'usd')}</b> &rarr; <b>{fmt(cost['forecast_month'], 'usd')}</b> "
        f"<small>(recommended {fmt(cost['recommended_month'], 'usd')})</small></div></div>"
    )
    rows = []
    for o in figures["overview"]:
        href = service_href.format(service=o["service"])
        rows.append([_cell(o[f], kind, f, href) for f, _, kind in OVERVIEW_COLUMNS])
    note = (
        "<p class='muted'>Sorted by urgency: earliest median saturation first. "
        "Saturation is the forecast load crossing the capacity line.</p>"
    )
    return cards + note + _table([h for _, h, _ in OVERVIEW_COLUMNS], rows, "overview")


def _scenarios(figures: Mapping[str, Any]) -> str:
    rows_in = figures["scenarios"]
    if not rows_in:
        return "<p class='muted'>No scenarios in the newest forecast run.</p>"
    names = list(dict.fromkeys(r["scenario"] for r in rows_in))
    base = {o["service"]: o for o in figures["overview"]}
    by = {(r["service"], r["scenario"]): r for r in rows_in}
    headers = ["service", "baseline saturation", "baseline projected / month"]
    for n in names:
        headers += [f"{n}: saturation", f"{n}: replicas peak", f"{n}: projected / month", f"{n}: max replicas enough"]
    rows = []
    for service in dict.fromkeys(r["service"] for r in rows_in):
        row = [
            _td(service),
            _td(base.get(service, {}).get("saturation_at"), "time"),
            _td(base.get(service, {}).get("cost_forecast_month"), "usd"),
        ]
        for n in names:
            r = by.get((service, n), {})
            row += [
                _td(r.get("saturation_at"), "time"),
                _td(r.get("replicas_needed_peak"), "int"),
                _td(r.get("cost_forecast_month"), "usd"),
                _td(r.get("max_replicas_enough"), "bool"),
            ]
        rows.append(row)
    described = "".join(f"<li><b>{esc(n)}</b>: {esc(figures['scenario_descriptions'].get(n, ''))}</li>" for n in names)
    return f"<ul>{described}</ul>" + _table(headers, rows, "scenarios")


def _accuracy(figures: Mapping[str, Any]) -> str:
    acc = figures["accuracy"]
    rows = [
        [
            _td(h["horizon"]),
            _td(h["days"], "int"),
            _td(f"{h['band'][0]:.0%} - {h['band'][1]:.0%}"),
            _td(h["accuracy"], "pct"),
            _td(h["series"], "int"),
            _td(h["status"], "status"),
            _td(
                f"needs {h['needed_days']} days of history, the store has {h['history_days']}"
                if h["status"] == "insufficient_history"
                else ""
            ),
        ]
        for h in acc["horizons"]
    ]
    bands = _table(
        ["SPEC horizon", "days ahead", "expected accuracy", "median accuracy", "series scored", "band", "note"], rows, "horizons"
    )
    over = acc["over_time"]
    if not over:
        return bands + "<p class='muted'>No earlier forecast has been scored against actuals yet.</p>"
    rows = [
        [
            _td(r["run_date"]),
            _td(r["metric"]),
            _td(r["model"]),
            _td(r["horizon_days"], "int"),
            _td(r["accuracy"], "pct"),
            _td(r["coverage"], "pct"),
            _td(r["series"], "int"),
        ]
        for r in over
    ]
    return (
        bands
        + "<h3>Accuracy over time (median over services)</h3>"
        + _table(["forecast run", "metric", "model", "days ahead", "accuracy (1 - MAPE)", "interval coverage", "series"], rows, "accuracy")
    )


def _findings(found: list[dict[str, Any]]) -> str:
    if not found:
        return "<p class='muted'>No bottleneck findings in the lookback.</p>"
    out = []
    for f in found:
        causes = [
            [
                _td(c.get("signal") + (" (root)" if c.get("is_root") else "")),
                _td(c.get("onset"), "time" if c.get("onset") else "text"),
                _td(c.get("lag_min")),
                _td(c.get("correlation")),
                _td(c.get("prior_weight")),
                _td(c.get("score")),
            ]
            for c in f["root_causes"]
            if isinstance(c, dict)
        ]
        out.append(
            f"<li><b>{esc(f['type'])}</b> <small>({esc(f['kind'])}, severity {esc(f.get('severity'))}, "
            f"confidence {fmt(f.get('confidence'))})</small> "
            f"{fmt(f.get('start'), 'time')} to {fmt(f.get('end'), 'time')}: remedy <b>{esc(f.get('remedy'))}</b>"
            f"<br><small>{esc(f.get('summary'))}</small>"
            + (_table(["root cause (ranked)", "onset", "lead (min)", "correlation", "prior weight", "score"], causes) if causes else "")
            + _root_cause(f)
            + (f"<details><summary>evidence</summary>{_mapping(f.get('evidence'))}</details>" if f.get("evidence") else "")
            + "</li>"
        )
    return "<ul class='findings'>" + "".join(out) + "</ul>"


def _root_cause(f: Mapping[str, Any]) -> str:
    """The root cause across services (``evidence.root_cause``): who to tell, the path, and the incident's dependency graph."""
    from include.headroom.report.incident_graph import incident_graph_svg

    root = (f.get("evidence") or {}).get("root_cause") if isinstance(f.get("evidence"), dict) else None
    if not isinstance(root, dict) or not root.get("service"):
        return ""
    path = root.get("path") or []
    line = (
        f"<p class='root-cause'>Root cause <b>{esc(root['service'])}</b> (score {fmt(root.get('score'))}), path "
        f"{esc(' → '.join(path))}; tell <b>{esc(root.get('owner') or '?')}</b>. Ranked: "
        + esc(", ".join(f"{r['service']} {r['score']:.2f}" for r in root.get("ranking", [])))
        + "</p>"
    )
    edges = root.get("graph") or []
    if not edges:
        return line
    svg = incident_graph_svg(edges, f.get("service", ""), root["service"], path)
    return (
        line + f"<img class='incident-graph' alt='dependency graph: {esc(f.get('service'))} to {esc(root['service'])}' "
        f"src='data:image/svg+xml;base64,{base64.b64encode(svg).decode()}'/>"
    )


def _actions(actions: list[dict[str, Any]], with_service: bool = False) -> str:
    if not actions:
        return "<p class='muted'>No audited actions.</p>"
    rows = [
        [_td(a.get("created_at"), "time")]
        + ([_td(a.get("service"))] if with_service else [])
        + [
            _td(a.get("kind")),
            _td(a.get("action")),
            _td(a.get("status")),
            _td("dry-run" if a.get("dry_run") else "applied"),
            _td(a.get("executor")),
            f"<td>{_change(a.get('before'), a.get('after'))}</td>",
            _td(a.get("reason")),
            f"<td><small>{esc(a.get('audit_id'))}<br>{esc(a.get('dag_id'))} {esc(a.get('task_id'))}<br>{esc(a.get('run_id'))}</small></td>",
        ]
        for a in actions
    ]
    headers = ["at (UTC)"] + (["subject"] if with_service else [])
    return _table(headers + ["kind", "action", "status", "mode", "executor", "before → after", "reason", "audit record"], rows)


def _policy_replay(figures: Mapping[str, Any]) -> str:
    """Last week's replay per service: actual replicas vs reactive HPA vs the predictive policy."""
    rows = figures.get("policy_replay") or []
    if not rows:
        return "<p class='muted'>No stored load to replay.</p>"
    body = []
    for r in rows:
        if r.get("policy") is None:
            body.append([_td(r["service"]), _td("-"), f"<td colspan='3' class='muted'>{esc(r.get('reason', ''))}</td>"])
            continue
        body.append(
            [
                _td(r["service"]),
                _td(r["policy"]),
                _td(float(r["slo_violation_minutes"])),
                _td(float(r["replica_hours"])),
                _td(r["cost_usd"], "usd"),
            ]
        )
    table = _table(["service", "policy", "SLO-violation minutes", "replica-hours", "cost"], body, "policy-replay")
    return (
        "<p class='muted'>The last 7 days of stored load replayed through the scaling kernel: <em>actual</em> is what ran, "
        "<em>reactive</em> the HPA algorithm alone, <em>predictive</em> with the forecast floor (python -m include.headroom replay).</p>"
        + table
    )


def _plans(plans: list[dict[str, Any]]) -> str:
    """The medium (12 months, daily) and long (3 years, weekly) capacity plans of a service, per scenario, with their accuracy band."""
    if not plans:
        return "<h3>Capacity plans</h3><p class='muted'>No medium or long plan in this run.</p>"
    rows = [
        [
            _td(p["horizon"]),
            _td(p["scenario"]),
            _td(p["resample"]),
            _td(p.get("until"), "time"),
            _td(p.get("yhat_end")),
            _td(f"{fmt(p.get('yhat_lower_end'))} - {fmt(p.get('yhat_upper_end'))}" if p.get("yhat_end") is not None else None),
            _td(p.get("replicas_peak")),
            _td(p.get("saturation_at"), "time"),
            _td(p.get("accuracy"), "pct"),
            _td(f"{fmt(p['band'][0], 'pct')} - {fmt(p['band'][1], 'pct')}"),
            _td(p.get("status")),
            _td(p.get("reason")),
        ]
        for p in plans
    ]
    return "<h3>Capacity plans</h3>" + _table(
        ["horizon", "scenario", "step", "until", "load at the end", "band at the end", "replicas peak", "saturation", "accuracy (1 - MAPE)",
         "expected accuracy", "status", "note"],
        rows,
    )


def _service_section(figures: Mapping[str, Any], name: str, png: bytes | None, drill_href: str = "") -> str:
    svc = figures["services"][name]
    link = f" <small><a href='{esc(drill_href)}'>drill-down</a></small>" if drill_href else ""
    img = (
        (
            f"<img class='forecast' alt='{esc(name)}: forecast, capacity and replicas' src='data:image/png;base64,"
            f"{base64.b64encode(png).decode()}'/>"
        )
        if png
        else "<p class='muted'>No forecast to plot.</p>"
    )
    cap_rows = [
        [
            _td(c["metric"]),
            _td(c.get("model")),
            _td(c.get("trusted"), "bool"),
            _td(c.get("mape"), "pct"),
            _td(c.get("capacity_limit")),
            _td(c.get("last_value")),
            _td(c.get("saturation_at"), "time"),
            _td(c.get("saturation_at_upper"), "time"),
            _td(c.get("saturation_probability"), "pct"),
            _td(c.get("status")),
            _td(c.get("reason")),
        ]
        for c in svc["capacity"]
    ]
    rep = svc["replicas"]
    slo = svc["slo"] or {}
    slo_line = (
        (
            f"<p>SLO <span class='{STATUS_CLASS.get(str(slo.get('status')), '')}'>{esc(slo.get('status'))}</span>: "
            f"p{esc(slo.get('latency_percentile'))} {fmt(slo.get('latency_observed_ms'))} ms against {fmt(slo.get('latency_slo_ms'))} ms "
            f"(compliance {fmt(slo.get('latency_compliance'), 'pct')}), availability {fmt(slo.get('availability'), 'pct')} against "
            f"{fmt(slo.get('uptime_slo'), 'pct')}, error budget left {fmt(slo.get('error_budget_remaining'), 'pct')}, "
            f"burn rate {fmt(slo.get('burn_rate'))}</p>"
        )
        if slo
        else "<p class='muted'>No SLO status yet.</p>"
    )
    return (
        f"<section class='service' id='svc-{esc(name)}'>"
        f"<h2>{esc(name)} <small>{esc(svc['tier'])}, owner {esc(svc['owner'])}</small>{link}</h2>"
        f"{slo_line}{img}<h3>Capacity forecast</h3>"
        + _table(
            [
                "metric",
                "model",
                "trusted",
                "backtest MAPE",
                "capacity",
                "last value",
                "saturation",
                "saturation (interval)",
                "P(saturation)",
                "status",
                "reason",
            ],
            cap_rows,
        )
        + _plans(svc.get("plans") or [])
        + "<h3>Replicas planned vs actual</h3>"
        + _table(
            ["actual now", "planned peak", "planned max over the forecast", "min", "max", "max enough"],
            [
                [
                    _td(rep["actual_now"]),
                    _td(rep["planned_peak"], "int" if rep["planned_peak"] is not None else "text"),
                    _td(rep["planned_max_forecast"]),
                    _td(rep["min_replicas"], "int"),
                    _td(rep["max_replicas"], "int"),
                    _td(rep["max_replicas_enough"], "bool"),
                ]
            ],
        )
        + "<h3>Bottlenecks</h3>"
        + _findings(svc["findings"])
        + "<h3>Actions (audit trail)</h3>"
        + _actions(svc["actions"])
        + "</section>"
    )


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}</body></html>"
    )


def detailed_names(figures: Mapping[str, Any], settings: ReportSettings) -> list[str]:
    """The services whose whole section is in the fleet page: the ``detailed_services`` most urgent (overview order)."""
    return [o["service"] for o in figures["overview"][: settings.detailed_services]]


def render_report(
    figures: Mapping[str, Any], plots: Mapping[str, bytes], service_href: str = "services/{service}.html", detailed: list[str] | None = None
) -> str:
    """The fleet report as one self-contained HTML page: every service in the overview, the ``detailed`` ones (default all) in full."""
    names = [o["service"] for o in figures["overview"]] if detailed is None else detailed
    nav = "<nav>" + "".join(f"<a href='#svc-{esc(n)}'>{esc(n)}</a>" for n in names) + "</nav>"
    rest = len(figures["overview"]) - len(names)
    more = (
        (
            f"<p class='muted' id='more-services'>The {len(names)} most urgent services are shown in full below; the other {rest} "
            f"have their own page (the service links of the overview).</p>"
        )
        if rest
        else ""
    )
    head = (
        f"<h1>headroom: capacity and SLO report</h1><p class='muted'>As of {fmt(figures['as_of'], 'time')} UTC; forecast run "
        f"{esc(figures['run_date'] or 'none yet')}; {figures['fleet']['services']} services, {figures['fleet']['findings']} bottleneck "
        f"findings, {figures['fleet']['actions']} audited actions.</p>"
    )
    body = (
        head
        + "<h2 id='fleet'>Fleet overview</h2>"
        + _fleet(figures, service_href)
        + "<h2 id='scenarios-title'>Scenarios side by side</h2>"
        + _scenarios(figures)
        + "<h2 id='accuracy-title'>Forecast accuracy</h2>"
        + _accuracy(figures)
        + "<h2 id='policy-replay-title'>Last week's policy replay</h2>"
        + _policy_replay(figures)
        + "<h2 id='other-actions'>Other actions (audit trail)</h2>"
        + _actions(figures["other_actions"], with_service=True)
        + more
        + nav
        + "".join(_service_section(figures, n, plots.get(n), service_href.format(service=n)) for n in names)
    )
    return _page(f"headroom capacity report {figures['as_of'][:10]}", body)


def render_service_page(figures: Mapping[str, Any], plots: Mapping[str, bytes], name: str, report_href: str = "../latest.html") -> str:
    """One service's drill-down page: its overview row, scenarios, plot, capacity, replicas, findings and actions."""
    row = next(o for o in figures["overview"] if o["service"] == name)
    overview = _table([h for _, h, _ in OVERVIEW_COLUMNS], [[_cell(row[f], kind, f) for f, _, kind in OVERVIEW_COLUMNS]], "overview")
    scen = [s for s in figures["services"][name]["scenarios"]]
    scen_rows = [
        [
            _td(s["scenario"]),
            _td(s.get("saturation_at"), "time"),
            _td(s.get("replicas_needed_peak"), "int"),
            _td(s.get("cost_forecast_month"), "usd"),
            _td(s.get("max_replicas_enough"), "bool"),
        ]
        for s in scen
    ]
    body = (
        f"<p><a href='{esc(report_href)}'>&larr; fleet report</a></p><h1>{esc(name)}</h1>"
        f"<p class='muted'>As of {fmt(figures['as_of'], 'time')} UTC.</p>"
        + overview
        + (
            _table(["scenario", "saturation", "replicas peak", "projected / month", "max replicas enough"], scen_rows, "scenarios")
            if scen_rows
            else ""
        )
        + _service_section(figures, name, plots.get(name))
    )
    return _page(f"headroom: {name}", body)


def draw_plots(
    store: Store, config: HeadroomConfig, figures: Mapping[str, Any], settings: ReportSettings, names: list[str] | None = None
) -> dict[str, bytes]:
    """One PNG per service (``names``, default every service of the figures) from the store's history and the newest forecast run."""
    import pandas as pd

    from include.headroom.report.plots import service_plot
    from include.headroom.store import queries
    from include.headroom.store.queries import by_service

    names = list(figures["services"]) if names is None else names
    unknown = [n for n in names if n not in figures["services"]]
    if unknown:
        raise ReportError(f"no figures for services {unknown}: not in the catalog the report was collected for")
    now = utc(figures["as_of"])
    start = now - pd.Timedelta(days=settings.history_days)
    metric = settings.plot_metric
    history = store.read_metrics(services=names, metrics=[metric, "replicas"], start=start, end=now)
    if len(history):
        history = history.set_index("ts").groupby(["service", "metric"])["value"].resample("1h").mean().reset_index()
    forecasts = queries.run_forecasts(store, figures["run_date"], metric, names) if figures["run_date"] else pd.DataFrame()
    # what earlier runs planned for the hours that have since happened: planned vs actual over the same time
    earlier = queries.planned_earlier(store, metric, figures["run_date"] or "", start, now, names)
    history_of, forecast_of, earlier_of = (by_service(f) for f in (history, forecasts, earlier))
    empty = pd.DataFrame(columns=["ts", "value"])
    out = {}
    for name in names:
        svc = figures["services"][name]
        hist = history_of.get(name, pd.DataFrame(columns=["metric", "ts", "value"]))
        out[name] = service_plot(
            name,
            metric,
            hist[hist["metric"] == metric] if len(hist) else empty,
            forecast_of.get(name, pd.DataFrame()),
            svc["load"],
            hist[hist["metric"] == "replicas"] if len(hist) else empty,
            svc["replicas"]["max_replicas"],
            [a for a in svc["accuracy"]],
            dpi=settings.dpi,
            planned_earlier=earlier_of.get(name),
        )
    return out


def write_service_pages(
    store: Store,
    config: HeadroomConfig,
    figures: Mapping[str, Any],
    out_dir: str | Path,
    settings: ReportSettings,
    names: list[str] | None = None,
) -> dict[str, bytes]:
    """Draw the plots of ``names`` (default every service) and write their ``services/<service>.html``; returns the plots."""
    plots = draw_plots(store, config, figures, settings, names)
    for name in plots:
        write_atomic(Path(out_dir) / "services" / f"{name}.html", render_service_page(figures, plots, name))
    return plots


def write_fleet_report(
    figures: Mapping[str, Any], plots: Mapping[str, bytes], out_dir: str | Path, settings: ReportSettings
) -> dict[str, Path]:
    """Write the fleet page (full sections of :func:`detailed_names`, their ``plots``) and the twin, dated and ``latest``."""
    out = Path(out_dir)
    day = figures["as_of"][:10]
    detailed = detailed_names(figures, settings)
    missing = [n for n in detailed if n not in plots]
    if missing:
        raise ReportError(f"the fleet page shows {missing} in full but their plots were not drawn")
    page = render_report(figures, plots, detailed=detailed)
    twin = json.dumps(figures, indent=1, sort_keys=False)
    paths = {
        "html": out / f"capacity_report_{day}.html",
        "json": out / f"capacity_report_{day}.json",
        "latest_html": out / "latest.html",
        "latest_json": out / "latest.json",
        "services": out / "services",
    }
    for key, text in (("html", page), ("json", twin), ("latest_html", page), ("latest_json", twin)):
        write_atomic(paths[key], text)
    return paths


def build_report(
    store: Store, config: HeadroomConfig, as_of: pd.Timestamp, out_dir: str | Path, settings: ReportSettings | None = None
) -> dict[str, Path]:
    """Write the report for ``as_of`` under ``out_dir``, in one process.

    Files: ``capacity_report_<date>.html`` and ``.json`` (the twin: exactly the figures the pages
    show), ``latest.html`` / ``latest.json`` (the same, at a stable path) and ``services/<service>.html``
    (the newest drill-down pages). Each file is written to a temporary name and renamed, so a
    reader (the Airflow UI page) never sees half a report.

    :returns: the paths by role: ``html``, ``json``, ``latest_html``, ``latest_json``, ``services``.
    """
    settings = settings or load_report_settings()
    figures = collect_figures(store, config, as_of, settings)
    plots = write_service_pages(store, config, figures, out_dir, settings)
    return write_fleet_report(figures, plots, out_dir, settings)
