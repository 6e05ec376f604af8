"""Bottleneck settings from ``bottlenecks.yaml``: alarms, detection, the dependency prior, resources, budgets, SLO burn and prediction."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from include.headroom.configfile import load
from include.headroom.configfile import require as _require
from include.headroom.catalog import Metric

FILE = "bottlenecks.yaml"


@dataclass(frozen=True)
class BottleneckConfig:
    alarms: Mapping[str, Mapping[str, float]]
    detection: Mapping[str, float]
    dependency_prior: tuple[tuple[str, str, float], ...]
    remedies: Mapping[str, str]
    signals: Mapping[str, str]
    slo: Mapping[str, Any] = field(default_factory=dict)
    resources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    budgets: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    resource_rule_level: str = "warning"
    resource_rule_resources: tuple[str, ...] = ()
    anomaly: Mapping[str, Any] = field(default_factory=dict)
    prediction: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nodes = {n for edge in self.dependency_prior for n in edge[:2]}
        unknown = sorted(set(self.signals.values()) - nodes)
        _require(not unknown, f"bottlenecks.signals names nodes {unknown} that no dependency_prior edge uses")
        metrics = {m.value for m in Metric}
        for name, res in self.resources.items():
            _require(
                res.get("utilization") in metrics,
                f"bottlenecks.resources.{name}.utilization={res.get('utilization')!r} is not a canonical metric",
            )
            _require(
                res.get("type") in self.remedies,
                f"bottlenecks.resources.{name}.type={res.get('type')!r} has no remedy in bottlenecks.remedies",
            )
            _require(
                res.get("direction") in ("high", "low"),
                f"bottlenecks.resources.{name}.direction={res.get('direction')!r} must be 'high' or 'low'",
            )
        for metric, budget in self.budgets.items():
            levels = [budget.get(k) for k in ("target", "warning", "critical")]
            _require(None not in levels, f"bottlenecks.budgets.{metric} needs target, warning and critical (got {dict(budget)})")
            _require(
                levels == sorted(levels) or levels == sorted(levels, reverse=True),
                f"bottlenecks.budgets.{metric}: target/warning/critical={levels} must be monotonic",
            )
        _require(
            self.resource_rule_level in ("target", "warning", "critical"),
            f"bottlenecks.resource_rule_level={self.resource_rule_level!r} must be target, warning or critical",
        )
        unknown_res = sorted(set(self.resource_rule_resources) - set(self.resources))
        _require(not unknown_res, f"bottlenecks.resource_rule_resources names unknown resources {unknown_res}")
        for alert in self.slo.get("burn_alerts", ()):
            _require(
                alert["burn_rate"] > 0 and 0 < alert["short_window_h"] < alert["long_window_h"],
                f"bottlenecks.slo.burn_alerts {alert.get('name')!r}: need burn_rate > 0 and 0 < short_window_h < long_window_h",
            )
        threshold = self.prediction.get("probability_threshold", 0.7)
        _require(0 < threshold < 1, f"bottlenecks.prediction.probability_threshold={threshold!r} must be in (0, 1)")
        bad_types = {m: t for m, t in self.prediction.get("types", {}).items() if m not in metrics or t not in self.remedies}
        _require(not bad_types, f"bottlenecks.prediction.types {bad_types} need a canonical metric and a type with a remedy")
        if self.anomaly:
            from include.headroom.anomalies import AnomalyParams
            from include.headroom.exceptions import DataError

            try:
                AnomalyParams.from_mapping(self.anomaly)
            except (DataError, TypeError, ValueError) as exc:
                _require(False, f"bottlenecks.anomaly: {exc}")


def parse_bottlenecks(raw: Mapping[str, Any]) -> BottleneckConfig:
    """The settings of a ``bottlenecks.yaml`` mapping.

    :raises ConfigError: naming the key at fault.
    """
    return BottleneckConfig(
        alarms=raw["alarms"],
        detection=raw["detection"],
        dependency_prior=tuple((d["from"], d["to"], float(d["weight"])) for d in raw["dependency_prior"]),
        remedies=raw["remedies"],
        signals=raw["signals"],
        slo=raw.get("slo", {}),
        resources=raw.get("resources", {}),
        budgets=raw.get("budgets", {}),
        resource_rule_level=str(raw.get("resource_rule_level", "warning")),
        resource_rule_resources=tuple(raw.get("resource_rule_resources", ())),
        anomaly=raw.get("anomaly", {}),
        prediction=raw.get("prediction", {}),
    )


def load_bottlenecks(directory: Path) -> BottleneckConfig:
    """``bottlenecks.yaml`` of ``directory`` (read once per process)."""
    return load(directory / FILE, parse_bottlenecks)
