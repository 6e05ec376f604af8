"""Versioned configuration: YAML under ``include/headroom/config`` loaded into validated, frozen dataclasses."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

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


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


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
    throughput_rpm: int
    scaling_style: str
    caching: str
    price_band_usd_month: tuple[float, float | None]
    hpa_profile: str

    def __post_init__(self) -> None:
        _require(0.9 <= self.uptime_slo < 1.0, f"tier {self.name.value}: uptime_slo={self.uptime_slo!r} must be in [0.9, 1)")
        _require(self.throughput_rpm > 0, f"tier {self.name.value}: throughput_rpm must be > 0")

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
    requests_per_pod_per_s: float | None = None

    def __post_init__(self) -> None:
        _require(1 <= self.min_replicas <= self.max_replicas, f"hpa profile: min_replicas={self.min_replicas} max_replicas={self.max_replicas} must satisfy 1 <= min <= max")
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
        _require(0 < self.memory_budget_fraction <= 1, f"cache.warming.memory_budget_fraction={self.memory_budget_fraction!r} must be in (0, 1]")


@dataclass(frozen=True)
class ForecastConfig:
    metrics: tuple[str, ...]
    resample: str
    horizon_days: int
    history_days: int
    min_history_days: int
    alpha: float
    models: tuple[str, ...]
    backtest_holdout_days: int
    accuracy_gate_mape: float
    utilization_limit_pct: float
    horizons: Mapping[str, Any]

    def __post_init__(self) -> None:
        _require(0 < self.alpha < 1, f"forecasting.capacity.alpha={self.alpha!r} must be in (0, 1)")
        _require(self.min_history_days > self.backtest_holdout_days, "forecasting.capacity.min_history_days must exceed backtest_holdout_days")
        unknown = set(self.metrics) - {m.value for m in Metric}
        _require(not unknown, f"forecasting.capacity.metrics has unknown metrics {sorted(unknown)}")


@dataclass(frozen=True)
class BottleneckConfig:
    alarms: Mapping[str, Mapping[str, float]]
    detection: Mapping[str, float]
    dependency_prior: tuple[tuple[str, str, float], ...]
    remedies: Mapping[str, str]
    signals: Mapping[str, str]

    def __post_init__(self) -> None:
        nodes = {n for edge in self.dependency_prior for n in edge[:2]}
        unknown = sorted(set(self.signals.values()) - nodes)
        _require(not unknown, f"bottlenecks.signals names nodes {unknown} that no dependency_prior edge uses")


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
        _require(1 <= self.min_replicas <= self.max_replicas, f"service {self.name!r}: min_replicas={self.min_replicas} max_replicas={self.max_replicas} must satisfy 1 <= min <= max")
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


@dataclass(frozen=True)
class SampleFleetConfig:
    seed: int
    step_s: int
    history_days: int
    daily_growth: float
    noise: float
    incidents: tuple[Incident, ...]

    def __post_init__(self) -> None:
        _require(self.step_s > 0 and 86400 % self.step_s == 0, f"sample_fleet.step_s={self.step_s!r} must divide a day")


@dataclass(frozen=True)
class ConnectorConfig:
    connectors: Mapping[str, Mapping[str, Any]]
    retry: Mapping[str, Any]
    circuit_breaker: Mapping[str, Any]


@dataclass(frozen=True)
class PipelineConfig:
    source: str
    initial_history_days: int
    lookback_s: int
    max_failure_ratio: float
    latency_ceiling_ms: float
    future_tolerance_s: int
    unit_ranges: Mapping[str, tuple[float, float]]
    non_negative_units: tuple[str, ...]
    max_age_s: int

    def __post_init__(self) -> None:
        _require(self.initial_history_days >= 0, f"pipeline.ingest.initial_history_days={self.initial_history_days!r} must be >= 0")
        _require(0 <= self.max_failure_ratio <= 1, f"pipeline.validation.max_failure_ratio={self.max_failure_ratio!r} must be in [0, 1]")
        _require(self.max_age_s > 0, f"pipeline.freshness.max_age_s={self.max_age_s!r} must be > 0")


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
        for incident in self.sample_fleet.incidents:
            _require(incident.service in names, f"sample_fleet: incident {incident.kind!r} names unknown service {incident.service!r}")

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise ConfigError(f"unknown service {name!r}; the catalog has {[s.name for s in self.services]}")

    def tier(self, tier: Tier | str) -> TierConfig:
        return self.tiers[Tier(tier)]

    def hpa_profile(self, service: Service) -> HpaProfile:
        return self.scaling.hpa_profiles[self.tier(service.tier).hpa_profile]


def _read_yaml(directory: Path, name: str) -> dict[str, Any]:
    path = directory / name
    try:
        with path.open() as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} is missing") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping at top level")
    return data


def _build(kind: type, raw: Mapping[str, Any], where: str) -> Any:
    try:
        return kind(**raw)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _rate(raw: Mapping[str, Any]) -> RatePolicy:
    return _build(RatePolicy, raw, "scaling.hpa_profiles")


def _parse_scaling(raw: Mapping[str, Any]) -> ScalingConfig:
    profiles = {
        name: _build(HpaProfile, {**p, "scale_up": _rate(p["scale_up"]), "scale_down": _rate(p["scale_down"])}, f"scaling.hpa_profiles.{name}")
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


def load_config(config_dir: str | Path | None = None) -> HeadroomConfig:
    """Load and validate the configuration in ``config_dir`` (default: the shipped one, or ``$HEADROOM_CONFIG_DIR``).

    :param config_dir: a folder with the YAML files named like the shipped ones.
    :raises ConfigError: naming the file and field at fault.
    """
    directory = Path(config_dir or os.environ.get("HEADROOM_CONFIG_DIR") or CONFIG_DIR)
    tiers_raw = _read_yaml(directory, "tiers.yaml")["tiers"]
    tiers = {}
    for name, t in tiers_raw.items():
        band = t.get("price_band_usd_month", [0, None])
        tiers[Tier(name)] = _build(
            TierConfig,
            {**t, "name": Tier(name), "latency_slo": _build(LatencySlo, t["latency_slo"], f"tier {name}"), "price_band_usd_month": (band[0], band[1])},
            f"tiers.yaml tier {name!r}",
        )
    missing = set(Tier) - set(tiers)
    _require(not missing, f"tiers.yaml: tiers {sorted(t.value for t in missing)} are missing")

    cache_raw = _read_yaml(directory, "cache.yaml")
    cache = CacheConfig(
        hit_rate_problem_below=float(cache_raw["hit_rate_problem_below"]),
        adaptive_ttl=_build(AdaptiveTtl, cache_raw["adaptive_ttl"], "cache.yaml adaptive_ttl"),
        lead_time_s=int(cache_raw["warming"]["lead_time_s"]),
        max_keys=int(cache_raw["warming"]["max_keys"]),
        memory_budget_fraction=float(cache_raw["warming"]["memory_budget_fraction"]),
    )
    fc_raw = _read_yaml(directory, "forecasting.yaml")
    cap = fc_raw["capacity"]
    forecasting = _build(
        ForecastConfig,
        {**cap, "metrics": tuple(cap["metrics"]), "models": tuple(cap["models"]), "horizons": fc_raw["horizons"]},
        "forecasting.yaml capacity",
    )
    bn_raw = _read_yaml(directory, "bottlenecks.yaml")
    bottlenecks = BottleneckConfig(
        alarms=bn_raw["alarms"],
        detection=bn_raw["detection"],
        dependency_prior=tuple((d["from"], d["to"], float(d["weight"])) for d in bn_raw["dependency_prior"]),
        remedies=bn_raw["remedies"],
        signals=bn_raw["signals"],
    )
    fleet_raw = _read_yaml(directory, "sample_fleet.yaml")
    fleet = _build(
        SampleFleetConfig,
        {**fleet_raw, "incidents": tuple(_build(Incident, i, "sample_fleet.yaml incident") for i in fleet_raw.get("incidents", []))},
        "sample_fleet.yaml",
    )
    conn_raw = _read_yaml(directory, "connectors.yaml")
    pipe_raw = _read_yaml(directory, "pipeline.yaml")
    ingest, validation = pipe_raw["ingest"], pipe_raw["validation"]
    pipeline = PipelineConfig(
        source=str(ingest["source"]),
        initial_history_days=int(ingest["initial_history_days"]),
        lookback_s=int(ingest["lookback_s"]),
        max_failure_ratio=float(validation["max_failure_ratio"]),
        latency_ceiling_ms=float(validation["latency_ceiling_ms"]),
        future_tolerance_s=int(validation["future_tolerance_s"]),
        unit_ranges={unit: (float(lo), float(hi)) for unit, (lo, hi) in validation["unit_ranges"].items()},
        non_negative_units=tuple(validation["non_negative_units"]),
        max_age_s=int(pipe_raw["freshness"]["max_age_s"]),
    )
    return HeadroomConfig(
        tiers=tiers,
        services=tuple(_parse_service(s) for s in _read_yaml(directory, "catalog.yaml")["services"]),
        scaling=_parse_scaling(_read_yaml(directory, "scaling.yaml")),
        cache=cache,
        forecasting=forecasting,
        bottlenecks=bottlenecks,
        sample_fleet=fleet,
        connectors=_build(ConnectorConfig, conn_raw, "connectors.yaml"),
        pipeline=pipeline,
    )


@lru_cache(maxsize=4)
def _cached(directory: str) -> HeadroomConfig:
    return load_config(directory)


def get_config() -> HeadroomConfig:
    """The active configuration, loaded once per process."""
    return _cached(str(os.environ.get("HEADROOM_CONFIG_DIR") or CONFIG_DIR))


def data_dir() -> Path:
    """Root of the embedded store (``$HEADROOM_DATA_DIR``, default ``<project>/data``)."""
    return Path(os.environ.get("HEADROOM_DATA_DIR") or DEFAULT_DATA_DIR)


def reports_dir() -> Path:
    """Where reports are written (``$HEADROOM_REPORTS_DIR``, default ``<project>/reports``)."""
    return Path(os.environ.get("HEADROOM_REPORTS_DIR") or DEFAULT_REPORTS_DIR)
