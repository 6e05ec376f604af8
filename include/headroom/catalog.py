"""The fleet's vocabulary and inventory: tiers (``tiers.yaml``), canonical metrics, scaling targets and services (``catalog.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from include.headroom.configfile import build as _build
from include.headroom.configfile import load
from include.headroom.configfile import require as _require
from include.headroom.exceptions import ConfigError

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


def parse_tiers(raw: Mapping[str, Any]) -> dict[Tier, TierConfig]:
    """Every tier of ``tiers.yaml``; all of :class:`Tier` must be there."""
    tiers = {}
    for name, t in raw["tiers"].items():
        tiers[Tier(name)] = _build(
            TierConfig,
            {**t, "name": Tier(name), "latency_slo": _build(LatencySlo, t["latency_slo"], f"tier {name}")},
            f"tiers.yaml tier {name!r}",
        )
    missing = set(Tier) - set(tiers)
    _require(not missing, f"tiers.yaml: tiers {sorted(t.value for t in missing)} are missing")
    return tiers


def parse_service(raw: Mapping[str, Any]) -> Service:
    """One service of ``catalog.yaml``; its ``target`` defaults to a dry run."""
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


def parse_catalog(raw: Mapping[str, Any], path: str) -> tuple[Service, ...]:
    """The services of a catalog file at ``path``; an empty file or one without ``services`` is named, not a ``KeyError``."""
    services = raw.get("services")
    if not services or not isinstance(services, list):
        raise ConfigError(
            f"configuration file {path}: key 'services' must list at least one service "
            f"(found {'nothing' if services is None else repr(services)[:60]})"
        )
    return tuple(parse_service(s) for s in services)


def load_tiers(directory: Path) -> dict[Tier, TierConfig]:
    """``tiers.yaml`` of ``directory`` (read once per process)."""
    return load(directory / "tiers.yaml", parse_tiers)


def load_catalog(directory: Path) -> tuple[Service, ...]:
    """``catalog.yaml`` of ``directory`` (read once per process)."""
    path = directory / "catalog.yaml"
    return load(path, parse_catalog, str(path))
