"""Versioned configuration: YAML under ``include/headroom/config`` loaded into validated, frozen dataclasses."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from include.headroom.configfile import build as _build
from include.headroom.configfile import read_yaml
from include.headroom.configfile import require as _require
from include.headroom.exceptions import ConfigError

CONFIG_DIR = Path(__file__).parent / "config"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_REPORTS_DIR = PROJECT_ROOT / "reports"
HOURS_PER_MONTH = 730.0  # for monthly cost figures: 365 * 24 / 12


class Tier(str, Enum):
    BASIC = "basic"
    STANDARD = "standard"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"
    CRITICAL = "critical"


class Metric(str, Enum):
    """Canonical metric names (SPEC section 2); sources map their own names onto these."""

    RESPONSE_TIME = "response_time"
    THROUGHPUT = "throughput"
    ERROR_RATE = "error_rate"
    CPU_UTILIZATION = "cpu_utilization"
    MEMORY_UTILIZATION = "memory_utilization"
    DISK_IO = "disk_io"
    NETWORK_IO = "network_io"
    DATABASE_PERFORMANCE = "database_performance"
    CACHE_HIT_RATIO = "cache_hit_ratio"
    CONCURRENT_USERS = "concurrent_users"
    QUEUE_LENGTH = "queue_length"
    CONNECTION_POOL = "connection_pool"
    REPLICAS = "replicas"
    COST = "cost"


class TargetKind(str, Enum):
    DRY_RUN = "dry_run"
    KUBERNETES_DEPLOYMENT = "kubernetes_deployment"
    KUBERNETES_STATEFULSET = "kubernetes_statefulset"
    AWS_ECS_SERVICE = "aws_ecs_service"
    AWS_AUTOSCALING_GROUP = "aws_autoscaling_group"
    AWS_APPLICATION_AUTOSCALING = "aws_application_autoscaling"  # ECS services, DynamoDB, Lambda provisioned concurrency


@dataclass(frozen=True)
class LatencySlo:
    percentile: int
    threshold_ms: float

    def __post_init__(self) -> None:
        _require(50 <= self.percentile < 100, f"latency_slo.percentile={self.percentile!r} must be in [50, 100)")
        _require(self.threshold_ms > 0, f"latency_slo.threshold_ms={self.threshold_ms!r} must be > 0")


@dataclass(frozen=True)
class TierConfig:
    name: Tier
    description: str
    uptime_slo: float
    latency_slo: LatencySlo
    hpa_profile: str

    def __post_init__(self) -> None:
        _require(0.9 <= self.uptime_slo < 1.0, f"tier {self.name.value}: uptime_slo={self.uptime_slo!r} must be in [0.9, 1)")

    @property
    def error_budget(self) -> float:
        """Allowed fraction of failed requests."""
        return 1.0 - self.uptime_slo


@dataclass(frozen=True)
class RatePolicy:
    stabilization_s: int
    percent: float
    period_s: int


@dataclass(frozen=True)
class HpaProfile:
    min_replicas: int
    max_replicas: int
    cpu_target: float
    memory_target: float
    scale_up: RatePolicy
    scale_down: RatePolicy

    def __post_init__(self) -> None:
        _require(
            1 <= self.min_replicas <= self.max_replicas,
            f"hpa profile: min_replicas={self.min_replicas} max_replicas={self.max_replicas} must satisfy 1 <= min <= max",
        )
        _require(0 < self.cpu_target <= 100, f"hpa profile: cpu_target={self.cpu_target} must be in (0, 100]")


@dataclass(frozen=True)
class ScalingConfig:
    tolerance: float
    cooldown_s: int
    scale_out_step: int
    scale_in_below_cpu: float
    alarm_error_rate: float
    lead_time_s: int
    cpu_target: float
    memory_target: float
    hpa_profiles: Mapping[str, HpaProfile]
    approval_cost_usd_month: float
    approval_expiry_s: int

    def __post_init__(self) -> None:
        _require(0 <= self.tolerance < 1, f"scaling.reactive.tolerance={self.tolerance!r} must be in [0, 1)")
        _require(0 < self.alarm_error_rate < 1, f"scaling.reactive.alarm_error_rate={self.alarm_error_rate!r} must be in (0, 1)")
        _require({"general", "critical"} <= set(self.hpa_profiles), "scaling.hpa_profiles must define 'general' and 'critical'")


@dataclass(frozen=True)
class AdaptiveTtl:
    hot_hit_rate: float
    hot_max_volatility: float
    hot_ttl_s: int
    large_object_bytes: int
    large_object_ttl_s: int
    default_ttl_s: int


@dataclass(frozen=True)
class CacheConfig:
    hit_rate_problem_below: float
    adaptive_ttl: AdaptiveTtl
    lead_time_s: int
    max_keys: int
    memory_budget_fraction: float

    def __post_init__(self) -> None:
        _require(
            0 < self.memory_budget_fraction <= 1, f"cache.warming.memory_budget_fraction={self.memory_budget_fraction!r} must be in (0, 1]"
        )


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

    def __post_init__(self) -> None:
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


@dataclass(frozen=True)
class ScalingTarget:
    kind: TargetKind
    params: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = False  # dry-run until a service is explicitly enabled


@dataclass(frozen=True)
class Service:
    name: str
    tier: Tier
    owner: str
    capacity_per_replica_rps: float
    min_replicas: int
    max_replicas: int
    cost_per_replica_hour: float
    base_rps: float
    base_latency_ms: float
    target: ScalingTarget
    dependencies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require(
            1 <= self.min_replicas <= self.max_replicas,
            f"service {self.name!r}: min_replicas={self.min_replicas} max_replicas={self.max_replicas} must satisfy 1 <= min <= max",
        )
        _require(self.capacity_per_replica_rps > 0, f"service {self.name!r}: capacity_per_replica_rps must be > 0")
        _require(self.cost_per_replica_hour >= 0, f"service {self.name!r}: cost_per_replica_hour must be >= 0")

    @property
    def max_capacity_rps(self) -> float:
        """Requests/s the service serves at max replicas and 100 % CPU."""
        return self.capacity_per_replica_rps * self.max_replicas


@dataclass(frozen=True)
class Incident:
    kind: str
    service: str
    start_day: float
    duration_h: float
    magnitude: float
    expected_type: str
    expected_cause: str
    remedy: str
    root_cause: str = ""  # the node that caused it when not ``service`` itself (e.g. the database it uses)


@dataclass(frozen=True)
class SampleFleetConfig:
    seed: int
    step_s: int
    history_days: int
    daily_growth: float
    noise: float
    incidents: tuple[Incident, ...]
    metrics: tuple[str, ...] = ()  # the metrics to generate; empty: every metric the simulation knows

    def __post_init__(self) -> None:
        _require(self.step_s > 0 and 86400 % self.step_s == 0, f"sample_fleet.step_s={self.step_s!r} must divide a day")
        object.__setattr__(self, "metrics", tuple(self.metrics))


@dataclass(frozen=True)
class ConnectorConfig:
    connectors: Mapping[str, Mapping[str, Any]]
    retry: Mapping[str, Any]
    circuit_breaker: Mapping[str, Any]
    landing: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PerTier:
    """A threshold with a default and optional per-tier overrides (``{default: X, tiers: {critical: Y}}`` in YAML)."""

    default: float
    tiers: Mapping[Tier, float] = field(default_factory=dict)

    def for_tier(self, tier: Tier | str | None) -> float:
        try:
            return self.tiers.get(Tier(tier), self.default) if tier is not None else self.default
        except ValueError:  # an unknown tier string: the default applies
            return self.default


@dataclass(frozen=True)
class MetricFamily:
    """One validation suite: the canonical metrics it covers, the units they may come in and the checks that apply.

    :param units: unit -> (low, high) allowed values; ``high=None`` means unbounded above.
    :param spike_factor: a point above this many times its series' median is a spike.
    :param flatline_points: this many identical consecutive points mean a stuck exporter.
    :param plausible_ratio: (low, high) bounds of a series' median over the service's catalog base latency.
    :param catalog_margin: replicas may leave the catalog's [min, max] by this share before they are implausible.
    :param monotonic: the metric is a cumulative counter: a drop between consecutive points is a reset.
    """

    name: str
    metrics: tuple[str, ...]
    units: Mapping[str, tuple[float, float | None]]
    integer: bool = False
    spike_factor: float | None = None
    flatline_points: int | None = None
    plausible_ratio: tuple[float, float] | None = None
    catalog_margin: float | None = None
    monotonic: bool = False

    def __post_init__(self) -> None:
        where = f"validation.yaml family {self.name!r}"
        _require(bool(self.metrics), f"{where}: metrics must not be empty")
        _require(bool(self.units), f"{where}: units must not be empty")
        for unit, (low, high) in self.units.items():
            _require(high is None or low <= high, f"{where}: unit {unit!r} range [{low}, {high}] is empty")
        _require(self.spike_factor is None or self.spike_factor > 1, f"{where}: spike_factor={self.spike_factor!r} must be > 1")
        _require(
            self.flatline_points is None or self.flatline_points >= 3, f"{where}: flatline_points={self.flatline_points!r} must be >= 3"
        )
        _require(self.catalog_margin is None or self.catalog_margin >= 0, f"{where}: catalog_margin={self.catalog_margin!r} must be >= 0")


@dataclass(frozen=True)
class ValidationConfig:
    """How batches are validated and when decisions refuse their data (``validation.yaml``).

    :param step_s: the sources' sampling step; timestamps must be aligned to it.
    :param future_tolerance_s: clock skew accepted before a point counts as in the future.
    :param max_failure_ratio: share of a service's rows quarantined above which its validation fails.
    :param batch_max_age_steps: a batch whose newest point is this many steps older than its interval end is stale.
    :param max_gap_s: the longest hole allowed inside a series.
    :param max_gap_ratio: the share of missing steps allowed in a series over its span.
    :param max_age_s: decisions refuse a service whose newest validated point is older than this.
    :param sample_rows: offending rows named per series in a failure message.
    :param naive_timestamps: what a timestamp written without a zone means: ``quarantine`` (it is refused,
        ``expect_timestamp_has_timezone``; re-admit with the ``assume_utc`` or ``assume_zone:<zone>`` fix) or an
        IANA zone (``UTC``, ``Europe/Berlin``) it is read in, with a warning.
    """

    step_s: int
    future_tolerance_s: int
    max_failure_ratio: PerTier
    batch_max_age_steps: int
    max_gap_s: PerTier
    max_gap_ratio: PerTier
    max_age_s: PerTier
    families: Mapping[str, MetricFamily]
    sample_rows: int = 3
    data_docs: bool = True
    naive_timestamps: str = "quarantine"

    def __post_init__(self) -> None:
        if self.naive_timestamps != "quarantine":
            _require_zone(self.naive_timestamps, "validation.yaml naive_timestamps")
        _require(self.step_s > 0 and 86400 % self.step_s == 0, f"validation.yaml step_s={self.step_s!r} must divide a day")
        _require(self.future_tolerance_s >= 0, f"validation.yaml future_tolerance_s={self.future_tolerance_s!r} must be >= 0")
        _require(self.batch_max_age_steps > 0, f"validation.yaml batch_max_age_steps={self.batch_max_age_steps!r} must be > 0")
        for name, per_tier, low, high in (
            ("max_failure_ratio", self.max_failure_ratio, 0.0, 1.0),
            ("max_gap_ratio", self.max_gap_ratio, 0.0, 1.0),
            ("max_gap_s", self.max_gap_s, float(self.step_s), float("inf")),
            ("max_age_s", self.max_age_s, 1.0, float("inf")),
        ):
            for tier, value in {"default": per_tier.default, **{t.value: v for t, v in per_tier.tiers.items()}}.items():
                _require(low <= value <= high, f"validation.yaml {name} ({tier})={value!r} must be in [{low}, {high}]")
        seen: dict[str, str] = {}
        for family in self.families.values():
            for metric in family.metrics:
                _require(metric not in seen, f"validation.yaml: metric {metric!r} is in families {seen.get(metric)!r} and {family.name!r}")
                seen[metric] = family.name

    def family_of(self, metric: str) -> MetricFamily | None:
        """The suite that validates ``metric``; ``None`` for a metric no suite knows."""
        for family in self.families.values():
            if metric in family.metrics:
                return family
        return None


@dataclass(frozen=True)
class PipelineConfig:
    source: str
    initial_history_days: int
    lookback_s: int
    validation: ValidationConfig

    def __post_init__(self) -> None:
        _require(self.initial_history_days >= 0, f"pipeline.ingest.initial_history_days={self.initial_history_days!r} must be >= 0")


@dataclass(frozen=True)
class HeadroomConfig:
    tiers: Mapping[Tier, TierConfig]
    services: tuple[Service, ...]
    scaling: ScalingConfig
    cache: CacheConfig
    forecasting: ForecastConfig
    bottlenecks: BottleneckConfig
    sample_fleet: SampleFleetConfig
    connectors: ConnectorConfig
    pipeline: PipelineConfig

    def __post_init__(self) -> None:
        names = [s.name for s in self.services]
        dupes = sorted({n for n in names if names.count(n) > 1})
        _require(not dupes, f"catalog: duplicate service names {dupes}")
        dependencies = {d for s in self.services for d in s.dependencies}
        for incident in self.sample_fleet.incidents:
            _require(
                incident.service in names or incident.service in dependencies,
                f"sample_fleet: incident {incident.kind!r} names unknown service {incident.service!r} (neither a service nor a dependency)",
            )

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise ConfigError(f"unknown service {name!r}; the catalog has {[s.name for s in self.services]}")

    def tier(self, tier: Tier | str) -> TierConfig:
        return self.tiers[Tier(tier)]

    def hpa_profile(self, service: Service) -> HpaProfile:
        return self.scaling.hpa_profiles[self.tier(service.tier).hpa_profile]

    def rps_per_replica(self, service: Service) -> float:
        """Requests/s one replica of ``service`` serves at its tier's CPU target: the one capacity formula's unit."""
        return service.capacity_per_replica_rps * self.hpa_profile(service).cpu_target / 100.0

    def replicas_for(self, service: Service, load: Any, *, clip: bool = False) -> Any:
        """Replicas ``service`` needs for ``load`` (req/s, a number or an array): ``ceil(load / rps_per_replica)``.

        The one place the per-replica capacity formula lives (forecasts, decisions, replay and the sample fleet
        call it). A number gives an ``int``, an array a float array; ``clip=True`` keeps the answer in [min, max].
        """
        import numpy as np

        needed = np.ceil(np.asarray(load, dtype=float) / self.rps_per_replica(service))
        if clip:
            needed = np.clip(needed, service.min_replicas, service.max_replicas)
        return int(needed) if needed.ndim == 0 and needed == needed else needed

    def load_at_target(self, service: Service, replicas: Any = None) -> Any:
        """Load (req/s) ``replicas`` (default: max replicas) serve at the CPU target: the saturation line of the forecasts."""
        n = service.max_replicas if replicas is None else replicas
        return service.capacity_per_replica_rps * n * self.hpa_profile(service).cpu_target / 100.0


def _require_zone(zone: str, where: str) -> None:
    """Refuse ``zone`` unless it is an IANA time zone name, naming ``where`` it was set."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}={zone!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)") from None


def _rate(raw: Mapping[str, Any]) -> RatePolicy:
    return _build(RatePolicy, raw, "scaling.hpa_profiles")


def _parse_scaling(raw: Mapping[str, Any]) -> ScalingConfig:
    profiles = {
        name: _build(
            HpaProfile, {**p, "scale_up": _rate(p["scale_up"]), "scale_down": _rate(p["scale_down"])}, f"scaling.hpa_profiles.{name}"
        )
        for name, p in raw["hpa_profiles"].items()
    }
    reactive, target = raw["reactive"], raw["target_tracking"]
    return ScalingConfig(
        tolerance=float(reactive["tolerance"]),
        cooldown_s=int(reactive["cooldown_s"]),
        scale_out_step=int(reactive["scale_out_step"]),
        scale_in_below_cpu=float(reactive["scale_in_below_cpu"]),
        alarm_error_rate=float(reactive["alarm_error_rate"]),
        lead_time_s=int(raw["predictive"]["lead_time_s"]),
        cpu_target=float(target["cpu_utilization"]),
        memory_target=float(target["memory_utilization"]),
        hpa_profiles=profiles,
        approval_cost_usd_month=float(raw["approval"]["cost_threshold_usd_month"]),
        approval_expiry_s=int(raw["approval"]["expiry_s"]),
    )


def _parse_service(raw: Mapping[str, Any]) -> Service:
    raw = dict(raw)
    target_raw = dict(raw.pop("target", {"kind": "dry_run"}))
    name = raw.get("name", "?")
    try:
        kind = TargetKind(target_raw.pop("kind"))
        tier = Tier(raw.pop("tier"))
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"catalog service {name!r}: {exc}") from exc
    enabled = bool(target_raw.pop("enabled", False))
    target = ScalingTarget(kind=kind, params={k: str(v) for k, v in target_raw.items()}, enabled=enabled)
    raw["dependencies"] = tuple(raw.get("dependencies", ()))
    return _build(Service, {**raw, "tier": tier, "target": target}, f"catalog service {name!r}")


def _per_tier(raw: Any, where: str) -> PerTier:
    """``X`` or ``{default: X, tiers: {tier: Y}}`` as a :class:`PerTier`."""
    if not isinstance(raw, Mapping):
        return PerTier(default=float(raw))
    try:
        tiers = {Tier(t): float(v) for t, v in (raw.get("tiers") or {}).items()}
        return PerTier(default=float(raw["default"]), tiers=tiers)
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"validation.yaml {where}: expected a number or {{default: X, tiers: {{tier: Y}}}}: {exc!r}") from exc


def _parse_validation(raw: Mapping[str, Any]) -> ValidationConfig:
    families = {}
    for name, fam in (raw.get("families") or {}).items():
        fam = dict(fam)
        units = {str(u): (float(lo), None if hi is None else float(hi)) for u, (lo, hi) in fam.pop("units", {}).items()}
        ratio = fam.pop("plausible_ratio", None)
        families[name] = _build(
            MetricFamily,
            {
                **fam,
                "name": name,
                "metrics": tuple(fam.get("metrics", ())),
                "units": units,
                "plausible_ratio": tuple(float(x) for x in ratio) if ratio else None,
            },
            f"validation.yaml family {name!r}",
        )
    try:
        return ValidationConfig(
            step_s=int(raw["step_s"]),
            future_tolerance_s=int(raw["future_tolerance_s"]),
            max_failure_ratio=_per_tier(raw["max_failure_ratio"], "max_failure_ratio"),
            batch_max_age_steps=int(raw["batch_max_age_steps"]),
            max_gap_s=_per_tier(raw["gaps"]["max_gap_s"], "gaps.max_gap_s"),
            max_gap_ratio=_per_tier(raw["gaps"]["max_gap_ratio"], "gaps.max_gap_ratio"),
            max_age_s=_per_tier(raw["freshness"]["max_age_s"], "freshness.max_age_s"),
            families=families,
            sample_rows=int(raw.get("sample_rows", 3)),
            data_docs=bool(raw.get("data_docs", True)),
            naive_timestamps=str(raw.get("naive_timestamps", "quarantine")),
        )
    except KeyError as exc:
        raise ConfigError(f"validation.yaml: required field {exc.args[0]!r} is missing") from exc


def config_directory(config_dir: str | Path | None = None) -> Path:
    """The configuration folder in use: ``config_dir``, else ``$HEADROOM_CONFIG_DIR``, else the shipped one."""
    return Path(config_dir or os.environ.get("HEADROOM_CONFIG_DIR") or CONFIG_DIR)


def load_config(config_dir: str | Path | None = None) -> HeadroomConfig:
    """Load and validate the configuration in ``config_dir`` (default: the shipped one, or ``$HEADROOM_CONFIG_DIR``).

    :param config_dir: a folder with the YAML files named like the shipped ones.
    :raises ConfigError: naming the file and field at fault.
    """
    directory = config_directory(config_dir)
    tiers_raw = read_yaml(directory / "tiers.yaml")["tiers"]
    tiers = {}
    for name, t in tiers_raw.items():
        tiers[Tier(name)] = _build(
            TierConfig,
            {**t, "name": Tier(name), "latency_slo": _build(LatencySlo, t["latency_slo"], f"tier {name}")},
            f"tiers.yaml tier {name!r}",
        )
    missing = set(Tier) - set(tiers)
    _require(not missing, f"tiers.yaml: tiers {sorted(t.value for t in missing)} are missing")

    cache_raw = read_yaml(directory / "cache.yaml")
    cache = CacheConfig(
        hit_rate_problem_below=float(cache_raw["hit_rate_problem_below"]),
        adaptive_ttl=_build(AdaptiveTtl, cache_raw["adaptive_ttl"], "cache.yaml adaptive_ttl"),
        lead_time_s=int(cache_raw["warming"]["lead_time_s"]),
        max_keys=int(cache_raw["warming"]["max_keys"]),
        memory_budget_fraction=float(cache_raw["warming"]["memory_budget_fraction"]),
    )
    fc_raw = read_yaml(directory / "forecasting.yaml")
    cap = fc_raw["capacity"]
    forecasting = _build(
        ForecastConfig,
        {
            **cap,
            "metrics": tuple(cap["metrics"]),
            "models": tuple(cap["models"]),
            "horizons": fc_raw["horizons"],
            "backtest": _build(BacktestConfig, cap["backtest"], "forecasting.yaml capacity.backtest"),
            "scenarios": tuple(
                _build(Scenario, {**s, "metrics": tuple(s.get("metrics", ("throughput",)))}, "forecasting.yaml scenarios")
                for s in fc_raw.get("scenarios", [])
            ),
        },
        "forecasting.yaml capacity",
    )
    bn_raw = read_yaml(directory / "bottlenecks.yaml")
    bottlenecks = BottleneckConfig(
        alarms=bn_raw["alarms"],
        detection=bn_raw["detection"],
        dependency_prior=tuple((d["from"], d["to"], float(d["weight"])) for d in bn_raw["dependency_prior"]),
        remedies=bn_raw["remedies"],
        signals=bn_raw["signals"],
        slo=bn_raw.get("slo", {}),
        resources=bn_raw.get("resources", {}),
        budgets=bn_raw.get("budgets", {}),
        resource_rule_level=str(bn_raw.get("resource_rule_level", "warning")),
        resource_rule_resources=tuple(bn_raw.get("resource_rule_resources", ())),
        anomaly=bn_raw.get("anomaly", {}),
        prediction=bn_raw.get("prediction", {}),
    )
    fleet_raw = read_yaml(directory / "sample_fleet.yaml")
    fleet = _build(
        SampleFleetConfig,
        {**fleet_raw, "incidents": tuple(_build(Incident, i, "sample_fleet.yaml incident") for i in fleet_raw.get("incidents", []))},
        "sample_fleet.yaml",
    )
    conn_raw = read_yaml(directory / "connectors.yaml")
    pipe_raw = read_yaml(directory / "pipeline.yaml")
    ingest = pipe_raw["ingest"]
    pipeline = PipelineConfig(
        source=str(ingest["source"]),
        initial_history_days=int(ingest["initial_history_days"]),
        lookback_s=int(ingest["lookback_s"]),
        validation=_parse_validation(read_yaml(directory / "validation.yaml")),
    )
    return HeadroomConfig(
        tiers=tiers,
        services=_parse_catalog(directory),
        scaling=_parse_scaling(read_yaml(directory / "scaling.yaml")),
        cache=cache,
        forecasting=forecasting,
        bottlenecks=bottlenecks,
        sample_fleet=fleet,
        connectors=_build(ConnectorConfig, conn_raw, "connectors.yaml"),
        pipeline=pipeline,
    )


def _parse_catalog(directory: Path) -> tuple[Service, ...]:
    """The services of ``catalog.yaml``; an empty file or one without ``services`` is named, not a ``KeyError``."""
    raw = read_yaml(directory / "catalog.yaml")
    services = raw.get("services")
    if not services or not isinstance(services, list):
        raise ConfigError(
            f"configuration file {directory / 'catalog.yaml'}: key 'services' must list at least one service "
            f"(found {'nothing' if services is None else repr(services)[:60]})"
        )
    return tuple(_parse_service(s) for s in services)


@lru_cache(maxsize=4)
def _cached(directory: str) -> HeadroomConfig:
    return load_config(directory)


def get_config() -> HeadroomConfig:
    """The active configuration, loaded once per process."""
    return _cached(str(config_directory()))


def data_dir() -> Path:
    """Root of the embedded store (``$HEADROOM_DATA_DIR``, default ``<project>/data``)."""
    return Path(os.environ.get("HEADROOM_DATA_DIR") or DEFAULT_DATA_DIR)


def reports_dir() -> Path:
    """Where reports are written (``$HEADROOM_REPORTS_DIR``, default ``<project>/reports``)."""
    return Path(os.environ.get("HEADROOM_REPORTS_DIR") or DEFAULT_REPORTS_DIR)
