"""The report's plots: matplotlib PNGs on a transparent background with a palette readable on light and dark pages.

Text, axes and grid are a mid grey that keeps contrast on white and on near-black; the
data colours are saturated mid tones that do the same. Every axis names its unit.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping, Sequence

from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

NEUTRAL = "#7d8590"  # labels, ticks, spines: readable on #ffffff and on #0d1117
COLORS = {
    "history": "#2f81f7", "forecast": "#a371f7", "capacity": "#f85149", "saturation": "#f85149", "upper": "#db6d28",
    "actual": "#2f81f7", "planned": "#3fb950", "limit": "#f85149",
}
MODEL_COLORS = ("#a371f7", "#3fb950", "#db6d28", "#2f81f7", "#d29922", "#f778ba")
UNITS = {
    "throughput": "requests / s", "memory_utilization": "percent", "cpu_utilization": "percent", "response_time": "ms",
}


def _style(ax: Any, title: str, ylabel: str, xlabel: str) -> None:
    ax.set_title(title, fontsize=9, color=NEUTRAL, loc="left")
    ax.set_ylabel(ylabel, color=NEUTRAL, fontsize=8)
    ax.set_xlabel(xlabel, color=NEUTRAL, fontsize=8)
    ax.tick_params(colors=NEUTRAL, labelsize=7)
    for spine in ax.spines.values():
        spine.set_color(NEUTRAL)
    ax.grid(color=NEUTRAL, alpha=0.25, lw=0.5)
    ax.set_facecolor("none")


def _legend(ax: Any) -> None:
    handles, _ = ax.get_legend_handles_labels()
    if handles:  # outside the axes, right of the plot: never over the data
        legend = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        for text in legend.get_texts():
            text.set_color(NEUTRAL)


def service_plot(
    service: str,
    metric: str,
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    load: Mapping[str, Any] | None,
    replicas_history: pd.DataFrame,
    max_replicas: int,
    accuracy: Sequence[Mapping[str, Any]],
    dpi: int = 90,
    planned_earlier: pd.DataFrame | None = None,
) -> bytes:
    """One PNG for a service: the load forecast with capacity and saturation, replicas planned vs actual, accuracy by days ahead.

    :param history: ``ts``, ``value`` of ``metric`` (hourly).
    :param forecast: the newest forecast of ``metric`` (``ds``, ``yhat``, ``yhat_lower``, ``yhat_upper``, ``replicas``, ``model``).
    :param load: the ``capacity`` row of ``metric`` (JSON form: ISO timestamps) or ``None``.
    :param replicas_history: ``ts``, ``value`` of the ``replicas`` metric (hourly).
    :param accuracy: rows with ``model``, ``horizon_days``, ``accuracy`` for this service.
    :param planned_earlier: ``ds``, ``replicas`` planned by earlier forecast runs for hours now past, or ``None``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    import pandas as pd

    unit = UNITS.get(metric, "")
    fig, (ax, ax_rep, ax_acc) = plt.subplots(3, 1, figsize=(11, 7.2), dpi=dpi, gridspec_kw={"height_ratios": [3, 1.6, 1.6]})
    fig.patch.set_alpha(0.0)
    try:
        if len(history):
            ax.plot(history["ts"], history["value"], color=COLORS["history"], lw=0.9, label=f"history ({unit})")
        if len(forecast):
            model = forecast["model"].iloc[0]
            ax.plot(forecast["ds"], forecast["yhat"], color=COLORS["forecast"], lw=1.2, label=f"forecast ({model})")
            ax.fill_between(forecast["ds"], forecast["yhat_lower"], forecast["yhat_upper"], color=COLORS["forecast"], alpha=0.25,
                            lw=0, label="forecast interval")
        limit = (load or {}).get("capacity_limit")
        if limit is not None:
            ax.axhline(limit, color=COLORS["capacity"], ls="--", lw=1, label=f"capacity {limit:,.0f} {unit}")
            for key, color, label in (("saturation_at", COLORS["saturation"], "saturation"),
                                      ("saturation_at_upper", COLORS["upper"], "saturation (interval)")):
                when = (load or {}).get(key)
                if when:
                    at = utc(when)
                    ax.axvline(at, color=color, lw=1.4 if key == "saturation_at" else 0.9, ls="-" if key == "saturation_at" else ":",
                               label=f"{label} {at:%Y-%m-%d %H:%M}")
        trusted = (load or {}).get("trusted")
        flag = "" if trusted is None else (" - trusted" if trusted else " - UNTRUSTED (backtest error above the gate)")
        _style(ax, f"{service}: {metric} forecast{flag}", unit, "time (UTC)")
        _legend(ax)

        if len(replicas_history):
            ax_rep.step(replicas_history["ts"], replicas_history["value"], where="post", color=COLORS["actual"], lw=1, label="actual")
        if planned_earlier is not None and len(planned_earlier):
            ax_rep.step(planned_earlier["ds"], planned_earlier["replicas"], where="post", color=COLORS["planned"], lw=1, ls="--",
                        label="planned by earlier runs")
        if len(forecast) and "replicas" in forecast and forecast["replicas"].notna().any():
            ax_rep.step(forecast["ds"], forecast["replicas"], where="post", color=COLORS["planned"], lw=1.2, label="planned (forecast)")
        ax_rep.axhline(max_replicas, color=COLORS["limit"], ls="--", lw=0.9, label=f"max replicas {max_replicas}")
        _style(ax_rep, "replicas planned vs actual", "replicas (count)", "time (UTC)")
        _legend(ax_rep)
        for a in (ax, ax_rep):
            a.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))

        acc = pd.DataFrame(list(accuracy))
        if len(acc):
            for i, (model, rows) in enumerate(acc.sort_values("horizon_days").groupby("model")):
                ax_acc.plot(rows["horizon_days"], 100 * rows["accuracy"], marker="o", ms=3, lw=1,
                            color=MODEL_COLORS[i % len(MODEL_COLORS)], label=str(model))
        else:
            ax_acc.text(0.5, 0.5, "no earlier forecast scored yet", transform=ax_acc.transAxes, ha="center", va="center",
                        color=NEUTRAL, fontsize=8)
        ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
        _style(ax_acc, "accuracy of earlier forecasts (1 - MAPE) by days ahead", "accuracy (%)", "days ahead")
        _legend(ax_acc)
        fig.subplots_adjust(left=0.07, right=0.74, top=0.96, bottom=0.07, hspace=0.6)  # fixed: tight_layout doubles the cost
        buf = io.BytesIO()
        fig.savefig(buf, format="png", transparent=True)
    finally:
        plt.close(fig)
    return buf.getvalue()
