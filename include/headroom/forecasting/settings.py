"""Forecast settings from ``forecasting.yaml``: metrics, models, backtests, horizons and what-if scenarios."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from include.headroom.configfile import build as _build
from include.headroom.configfile import load
from include.headroom.configfile import require as _require
from include.headroom.catalog import Metric

FILE = "forecasting.yaml"


@dataclass(frozen=True)
class BacktestConfig:
    """Rolling-origin cross-validation: train on ``initial_days``, forecast ``horizon_days``, move the cutoff by ``period_days``."""

    initial_days: float
    period_days: float
    horizon_days: float
    max_cutoffs: int = 3
    top_k: int = 3  # the best candidates ``auto`` combines
    combine: str = "inverse_error"  # or "median"
    guard_ratio: float = 1.5  # a candidate this much worse than seasonal naive on the newest cutoff is not chosen
    combine_within: float = 1.25  # only candidates within this factor of the best backtest MASE are combined

    def __post_init__(self) -> None:
        for name in ("initial_days", "period_days", "horizon_days", "max_cutoffs", "top_k"):
            _require(getattr(self, name) > 0, f"forecasting.capacity.backtest.{name}={getattr(self, name)!r} must be > 0")
        _require(
            self.combine in ("inverse_error", "median"),
            f"forecasting.capacity.backtest.combine={self.combine!r} must be 'inverse_error' or 'median'",
        )
        _require(self.guard_ratio > 1, f"forecasting.capacity.backtest.guard_ratio={self.guard_ratio!r} must be above 1")


@dataclass(frozen=True)
class Scenario:
    """A what-if applied to the load forecast: ``multiplier`` from a start (date or days ahead) and ``growth`` reached by a date.

    ``{name: launch, multiplier: 2, start: 2026-12-01}`` doubles traffic from that day;
    ``{name: organic, growth: 0.3, over_days: 90}`` ramps linearly to +30 % in 90 days and holds.
    """

    name: str
    description: str = ""
    multiplier: float = 1.0
    start: str | None = None
    start_in_days: float | None = None
    growth: float = 0.0
    by: str | None = None
    over_days: float | None = None
    metrics: tuple[str, ...] = ("throughput",)

    def __post_init__(self) -> None:
        where = f"forecasting.scenarios {self.name!r}"
        _require(self.multiplier > 0, f"{where}: multiplier={self.multiplier!r} must be > 0")
        _require(self.growth > -1, f"{where}: growth={self.growth!r} must be > -1")
        _require(
            self.multiplier == 1.0 or (self.start is None) != (self.start_in_days is None),
            f"{where}: a multiplier needs exactly one of start (a date) or start_in_days",
        )
        _require(
            self.growth == 0.0 or (self.by is None) != (self.over_days is None),
            f"{where}: growth needs exactly one of by (a date) or over_days",
        )
        _require(self.multiplier != 1.0 or self.growth != 0.0, f"{where}: set a multiplier other than 1 or a growth other than 0")

    def starts_at(self, run_start: Any) -> Any:
        """When the multiplier applies (a UTC timestamp), or ``None`` without a multiplier."""
        import pandas as pd

        if self.multiplier == 1.0:
            return None
        if self.start is not None:
            return pd.Timestamp(self.start, tz="UTC")
        return pd.Timestamp(run_start) + pd.Timedelta(days=self.start_in_days)

    def growth_by(self, run_start: Any) -> Any:
        """When the growth ramp reaches ``growth`` (a UTC timestamp), or ``None`` without growth."""
        import pandas as pd

        if self.growth == 0.0:
            return None
        if self.by is not None:
            return pd.Timestamp(self.by, tz="UTC")
        return pd.Timestamp(run_start) + pd.Timedelta(days=self.over_days)


@dataclass(frozen=True)
class ForecastConfig:
    metrics: tuple[str, ...]
    resample: str
    horizon_days: int
    history_days: int
    min_history_days: int
    alpha: float
    models: tuple[str, ...]
    backtest: BacktestConfig
    accuracy_gate_mape: float
    utilization_limit_pct: float
    horizons: Mapping[str, Any]
    replicas_days: int = 7
    scenarios: tuple[Scenario, ...] = ()
    outlier_z: float = 8.0  # robust z above which a point is replaced before fitting (0: off)
    break_z: float = 6.0  # level-shift statistic above which the history before a break is moved to the new level (0: off)
    trend_z: float = 5.0  # trend-break statistic above which the history before a change of slope is tilted onto the new slope (0: off)

    def __post_init__(self) -> None:
        _require(self.outlier_z >= 0 and self.break_z >= 0 and self.trend_z >= 0,
                 f"forecasting.capacity outlier_z={self.outlier_z!r}, break_z={self.break_z!r}, trend_z={self.trend_z!r} "
                 "must be >= 0 (0: off)")
        _require(0 < self.alpha < 1, f"forecasting.capacity.alpha={self.alpha!r} must be in (0, 1)")
        needed = self.backtest.initial_days + self.backtest.horizon_days
        _require(
            self.min_history_days >= needed,
            f"forecasting.capacity.min_history_days={self.min_history_days!r} must be at least "
            f"backtest initial_days + horizon_days ({needed})",
        )
        unknown = set(self.metrics) - {m.value for m in Metric}
        _require(not unknown, f"forecasting.capacity.metrics has unknown metrics {sorted(unknown)}")
        names = [s.name for s in self.scenarios]
        _require(len(names) == len(set(names)), f"forecasting.scenarios: duplicate names {sorted(names)}")
        for horizon, spec in self.horizons.items():
            lo, hi = spec["expected_accuracy"]
            _require(0 < lo <= hi <= 1, f"forecasting.horizons.{horizon}.expected_accuracy={[lo, hi]!r} must be 0 < low <= high <= 1")


def parse_forecasting(raw: Mapping[str, Any]) -> ForecastConfig:
    """The settings of a ``forecasting.yaml`` mapping.

    :raises ConfigError: naming the key at fault.
    """
    cap = raw["capacity"]
    return _build(
        ForecastConfig,
        {
            **cap,
            "metrics": tuple(cap["metrics"]),
            "models": tuple(cap["models"]),
            "horizons": raw["horizons"],
            "backtest": _build(BacktestConfig, cap["backtest"], "forecasting.yaml capacity.backtest"),
            "scenarios": tuple(
                _build(Scenario, {**s, "metrics": tuple(s.get("metrics", ("throughput",)))}, "forecasting.yaml scenarios")
                for s in raw.get("scenarios", [])
            ),
        },
        "forecasting.yaml capacity",
    )


def load_forecasting(directory: Path) -> ForecastConfig:
    """``forecasting.yaml`` of ``directory`` (read once per process)."""
    return load(directory / FILE, parse_forecasting)
