"""Error budgets and multi-window, multi-burn-rate alerts for a tier's availability SLO.

Burn rate is the observed error ratio divided by the error budget
(``1 - uptime SLO``): burning at 1x spends exactly the budget over the budget
window; at 14.4x a 30-day budget is 2 % gone in an hour. An alert fires only
when both its long and its short window burn faster than its rate, so it pages
quickly on a real burn and stops as soon as the burn stops. Error ratios are
request-weighted (error rate x throughput) when throughput is known.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping, Sequence

from include.headroom.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class BurnAlert:
    """One multi-window burn-rate alert rule (``bottlenecks.yaml`` ``slo.burn_alerts``)."""

    name: str
    severity: str
    burn_rate: float
    long_window_h: float
    short_window_h: float

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> BurnAlert:
        return cls(name=str(raw["name"]), severity=str(raw["severity"]), burn_rate=float(raw["burn_rate"]),
                   long_window_h=float(raw["long_window_h"]), short_window_h=float(raw["short_window_h"]))


@dataclass(frozen=True)
class BurnAlertStatus:
    """An alert rule evaluated at one time, with both windows' burn rates."""

    name: str
    severity: str
    threshold: float
    long_burn: float
    short_burn: float
    firing: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BudgetStatus:
    """The error budget over the rolling window at one time."""

    error_ratio: float
    consumed: float
    remaining: float
    burn_rate: float
    exhausted_at: pd.Timestamp | None


def burn_rate(error_ratio: float, error_budget: float) -> float:
    """How many times faster than allowed the budget is spent: ``error_ratio / error_budget``."""
    if error_budget <= 0:
        raise InvalidArgumentError(f"error_budget={error_budget!r} must be > 0")
    return error_ratio / error_budget


def error_ratio(errors: pd.Series, start: pd.Timestamp, end: pd.Timestamp, throughput: pd.Series | None = None) -> float:
    """Failed share of requests in ``[start, end)``: error rate weighted by throughput when given; NaN without data.

    :param errors: error rate (0..1) indexed by UTC timestamps.
    :param throughput: requests per second on the same index (missing points weigh as the mean).
    """
    import numpy as np

    lo, hi = start, end
    inside = (errors.index >= lo) & (errors.index < hi)
    err = errors[inside].to_numpy(float)
    keep = ~np.isnan(err)
    if not keep.any():
        return float("nan")
    if throughput is None:
        return float(np.mean(err[keep]))
    weight = throughput.reindex(errors.index[inside]).to_numpy(float)
    fill = np.nanmean(weight) if np.isfinite(weight).any() else 1.0
    weight = np.where(np.isfinite(weight), weight, fill)[keep]
    total = float(np.sum(weight))
    return float(np.sum(err[keep] * weight) / total) if total > 0 else float(np.mean(err[keep]))


def evaluate_burn_alerts(
    errors: pd.Series, error_budget: float, as_of: pd.Timestamp, alerts: Sequence[BurnAlert], throughput: pd.Series | None = None
) -> list[BurnAlertStatus]:
    """Each alert at ``as_of``: fires when the burn rates over ``[as_of - window, as_of)`` of both windows reach its rate."""
    import pandas as pd

    now = as_of
    out = []
    for alert in alerts:
        burns = []
        for hours in (alert.long_window_h, alert.short_window_h):
            ratio = error_ratio(errors, now - pd.Timedelta(hours=hours).round("s"), now, throughput)  # 5 min is 0.083333 h
            burns.append(burn_rate(ratio, error_budget) if ratio == ratio else float("nan"))
        firing = all(b == b and b >= alert.burn_rate for b in burns)
        out.append(BurnAlertStatus(alert.name, alert.severity, alert.burn_rate, round(burns[0], 4), round(burns[1], 4), firing))
    return out


def budget_status(
    errors: pd.Series, error_budget: float, as_of: pd.Timestamp, window_days: float, burn_window_h: float,
    throughput: pd.Series | None = None
) -> BudgetStatus:
    """Budget spent and left over ``[as_of - window_days, as_of)``, and when the current burn exhausts what is left.

    With ``r`` of the budget left and a burn rate ``b`` over the last ``burn_window_h``,
    the rest lasts ``r * window / b`` (``None`` when nothing burns or nothing is left).
    """
    import pandas as pd

    now = as_of
    window = pd.Timedelta(days=window_days)
    ratio = error_ratio(errors, now - window, now, throughput)
    consumed = burn_rate(ratio, error_budget) if ratio == ratio else float("nan")
    remaining = 1.0 - consumed
    recent = error_ratio(errors, now - pd.Timedelta(hours=burn_window_h), now, throughput)
    burn = burn_rate(recent, error_budget) if recent == recent else float("nan")
    exhausted_at = None
    if remaining == remaining and burn == burn:
        if remaining <= 0:
            exhausted_at = now
        elif burn > 0:
            exhausted_at = (now + window * (remaining / burn)).round("s")
    return BudgetStatus(error_ratio=ratio, consumed=consumed, remaining=remaining, burn_rate=burn, exhausted_at=exhausted_at)
