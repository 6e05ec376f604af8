"""Burn-rate and error-budget maths against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from include.headroom.bottlenecks.slo import BurnAlert, budget_status, burn_rate, error_ratio, evaluate_burn_alerts

NOW = pd.Timestamp("2026-11-01T00:00Z")
BUDGET = 0.001  # a 99.9 % uptime SLO


def series(days: float, value: float = 0.0) -> pd.Series:
    """A 5-minute error-rate series over the ``days`` before NOW (the last point at NOW - 5 min)."""
    index = pd.date_range(end=NOW - pd.Timedelta(minutes=5), periods=int(days * 288), freq="5min")
    return pd.Series(value, index=index, dtype=float)


def since(s: pd.Series, minutes: float, value: float, until_minutes: float = 0.0) -> pd.Series:
    out = s.copy()
    out[(out.index >= NOW - pd.Timedelta(minutes=minutes)) & (out.index < NOW - pd.Timedelta(minutes=until_minutes))] = value
    return out


@pytest.fixture(scope="module")
def alerts(config):
    return {a["name"]: BurnAlert.from_mapping(a) for a in config.bottlenecks.slo["burn_alerts"]}


def test_shipped_alerts_are_the_spec_ones(alerts):
    shape = {n: (a.severity, a.burn_rate, a.long_window_h, round(a.short_window_h * 60)) for n, a in alerts.items()}
    assert shape == {"page_fast": ("page", 14.4, 1.0, 5), "page_slow": ("page", 6.0, 6.0, 30), "ticket": ("ticket", 1.0, 72.0, 360)}


def test_burn_rate_is_error_ratio_over_budget():
    assert burn_rate(0.0144, 0.001) == pytest.approx(14.4)
    assert burn_rate(0.0, 0.0001) == 0.0
    with pytest.raises(ValueError, match="error_budget=0"):
        burn_rate(0.1, 0.0)


def test_error_ratio_is_request_weighted():
    errors = series(1.0 / 24)  # 12 points
    errors.iloc[:6] = 0.01
    throughput = pd.Series(np.where(np.arange(12) < 6, 300.0, 100.0), index=errors.index)
    # 6 points x 300 req/s at 1 % failed out of 6 x 300 + 6 x 100 requests: 18 / 2400
    assert error_ratio(errors, NOW - pd.Timedelta(hours=1), NOW, throughput) == pytest.approx(0.0075)
    assert error_ratio(errors, NOW - pd.Timedelta(hours=1), NOW) == pytest.approx(0.005)
    assert math.isnan(error_ratio(errors, NOW, NOW + pd.Timedelta(hours=1)))


def _firing(statuses):
    return {s.name: s.firing for s in statuses}


def test_fast_page_needs_both_the_hour_and_the_last_five_minutes(alerts):
    burning = since(series(4), 60, 0.015)  # 15x for the last hour
    statuses = {s.name: s for s in evaluate_burn_alerts(burning, BUDGET, NOW, list(alerts.values()))}
    assert statuses["page_fast"].long_burn == pytest.approx(15.0) and statuses["page_fast"].short_burn == pytest.approx(15.0)
    assert statuses["page_slow"].long_burn == pytest.approx(2.5)  # 1 h of 6 at 15x
    assert statuses["ticket"].long_burn == pytest.approx(15.0 / 72, abs=1e-4)
    assert _firing(statuses.values()) == {"page_fast": True, "page_slow": False, "ticket": False}

    # 20x from 65 to 5 minutes ago, then healthy: the hour burned 11/12 x 20 = 18.3x, but the burn stopped
    recovered = since(series(4), 65, 0.02, until_minutes=5)
    fast = next(s for s in evaluate_burn_alerts(recovered, BUDGET, NOW, [alerts["page_fast"]]))
    assert fast.long_burn == pytest.approx(20 * 11 / 12, abs=1e-3) and fast.short_burn == 0.0 and not fast.firing


def test_slow_page_six_hours_at_six_times_confirmed_by_thirty_minutes(alerts):
    burning = since(series(4), 360, 0.007)  # 7x for 6 hours
    assert _firing(evaluate_burn_alerts(burning, BUDGET, NOW, list(alerts.values()))) == {
        "page_fast": False,
        "page_slow": True,
        "ticket": False,
    }
    # the same 6 hours, but healthy for the last 30 minutes: 330/360 x 7 = 6.4x long, 0 short
    quiet = since(since(series(4), 360, 0.007), 30, 0.0)
    slow = evaluate_burn_alerts(quiet, BUDGET, NOW, [alerts["page_slow"]])[0]
    assert slow.long_burn == pytest.approx(7 * 330 / 360, abs=1e-3) and not slow.firing


def test_ticket_three_days_at_budget_confirmed_by_six_hours(alerts):
    burning = series(4, 0.0012)  # 1.2x for four days
    assert _firing(evaluate_burn_alerts(burning, BUDGET, NOW, list(alerts.values()))) == {
        "page_fast": False,
        "page_slow": False,
        "ticket": True,
    }
    just_under = series(4, 0.00099)
    assert not evaluate_burn_alerts(just_under, BUDGET, NOW, [alerts["ticket"]])[0].firing


def test_budget_remaining_and_projected_exhaustion():
    steady = series(10, 0.0005)  # half the budget's rate for 10 days
    status = budget_status(steady, BUDGET, NOW, window_days=30, burn_window_h=6)
    assert status.consumed == pytest.approx(0.5) and status.remaining == pytest.approx(0.5)
    assert status.burn_rate == pytest.approx(0.5)
    assert status.exhausted_at == NOW + pd.Timedelta(days=30)  # 0.5 left / 0.5x of a 30-day budget

    # 0.04 % for 10 days, 0.2 % for the last 6 h: (72 x 0.002 + 2808 x 0.0004) / 2880 = 0.00044
    hot = since(series(10, 0.0004), 360, 0.002)
    status = budget_status(hot, BUDGET, NOW, window_days=30, burn_window_h=6)
    assert status.error_ratio == pytest.approx(0.00044)
    assert status.remaining == pytest.approx(0.56)
    assert status.burn_rate == pytest.approx(2.0)
    assert status.exhausted_at == NOW + pd.Timedelta(days=30 * 0.56 / 2.0)  # 201.6 hours

    spent = series(10, 0.002)
    status = budget_status(spent, BUDGET, NOW, window_days=30, burn_window_h=6)
    assert status.remaining == pytest.approx(-1.0) and status.exhausted_at == NOW

    clean = series(10, 0.0)
    status = budget_status(clean, BUDGET, NOW, window_days=30, burn_window_h=6)
    assert status.remaining == 1.0 and status.exhausted_at is None


def test_budget_window_excludes_older_points():
    old_then_clean = since(series(40, 0.01), 30 * 24 * 60, 0.0)  # burning until 30 days ago, clean since
    assert budget_status(old_then_clean, BUDGET, NOW, window_days=30, burn_window_h=6).remaining == 1.0
