"""Connector settings from ``connectors.yaml``: validated, frozen, with the SPEC figures (quotas, batches, retries)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from collections.abc import Mapping

from include.headroom.exceptions import ConfigError

KINDS = ("salesforce", "hubspot", "servicenow", "odata", "s3", "sftp", "outbox", "rest", "cloudwatch")


@dataclass(frozen=True)
class Quota:
    """A token bucket: ``calls`` per ``per_s`` seconds, ``burst`` at once; ``daily_calls`` caps a UTC day (0 = none)."""

    calls: float
    per_s: float
    burst: float
    daily_calls: int = 0

    @property
    def rate(self) -> float:
        return self.calls / self.per_s


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    jitter: bool = True
    timeout_s: float = 30.0
    record_retry_rounds: int = 2


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 5
    cooldown_s: float = 60.0


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a connector: which way it flows and how its records map to canonical fields."""

    name: str
    direction: str
    id: str = "id"
    modified: str = ""
    version: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    external_id: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorSettings:
    name: str
    kind: str
    family: str
    enabled: bool
    conn_id: str
    pool: str
    pool_slots: int
    quota: Quota
    page_size: int
    batch_size: int
    concurrency: int
    retry: RetrySettings
    breaker: BreakerSettings
    objects: Mapping[str, ObjectSpec]
    options: Mapping[str, Any] = field(default_factory=dict)

    def object(self, name: str) -> ObjectSpec:
        try:
            return self.objects[name]
        except KeyError:
            raise ConfigError(f"connector {self.name!r} has no object {name!r}; objects: {sorted(self.objects)}") from None

    def with_(self, **changes: Any) -> ConnectorSettings:
        """A copy with some fields changed (quota, retry, breaker, sizes): for tests and benchmarks."""
        return replace(self, **changes)


@dataclass(frozen=True)
class LandingSettings:
    target: str = "store"
    bucket: str = ""
    prefix: str = "connectors/"
    conn_id: str = "aws_default"
    flush_records: int = 10000

    def __post_init__(self) -> None:
        if self.target not in ("store", "s3"):
            raise ConfigError(f"connectors.yaml landing.target={self.target!r} must be 'store' or 's3'")
        if self.target == "s3" and not self.bucket:
            raise ConfigError("connectors.yaml landing.target='s3' needs landing.bucket")


_OBJECT_KEYS = {"direction", "id", "modified", "version", "fields", "source", "external_id"}
_CONNECTOR_KEYS = {"kind", "family", "enabled", "conn_id", "pool", "quota", "page_size", "batch_size", "concurrency", "objects"}


def _object(connector: str, name: str, raw: Mapping[str, Any]) -> ObjectSpec:
    where = f"connectors.yaml connectors.{connector}.objects.{name}"
    direction = raw.get("direction")
    if direction not in ("pull", "push"):
        raise ConfigError(f"{where}.direction={direction!r} must be 'pull' or 'push'")
    fields = raw.get("fields") or {}
    if not isinstance(fields, Mapping):
        raise ConfigError(f"{where}.fields must map canonical field -> remote field, got {fields!r}")
    if direction == "push" and not raw.get("source"):
        raise ConfigError(f"{where}: a push object needs a source table")
    return ObjectSpec(
        name=name, direction=direction, id=str(raw.get("id", "id")), modified=str(raw.get("modified", "")),
        version=str(raw.get("version", "")), fields=dict(fields), source=str(raw.get("source", "")),
        external_id=str(raw.get("external_id", "")), options={k: v for k, v in raw.items() if k not in _OBJECT_KEYS},
    )


def _quota(name: str, raw: Mapping[str, Any]) -> Quota:
    q = dict(raw.get("quota") or {})
    if raw.get("kind") == "hubspot" and "calls" not in q:
        plans = raw.get("calls_per_10s") or {}
        plan = raw.get("plan")
        if plan not in plans:
            raise ConfigError(f"connectors.yaml connectors.{name}.plan={plan!r} is not one of {sorted(plans)}")
        q.update(calls=float(plans[plan]), per_s=10.0, burst=float(plans[plan]) if "burst" not in q else q["burst"])
    try:
        quota = Quota(calls=float(q["calls"]), per_s=float(q["per_s"]), burst=float(q["burst"]), daily_calls=int(q.get("daily_calls", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"connectors.yaml connectors.{name}.quota={q!r} needs numeric calls, per_s and burst ({exc})") from None
    if quota.calls <= 0 or quota.per_s <= 0 or quota.burst < 1:
        raise ConfigError(f"connectors.yaml connectors.{name}.quota={q!r}: calls and per_s must be > 0 and burst >= 1")
    return quota


def parse_connector(name: str, raw: Mapping[str, Any], retry: Mapping[str, Any], breaker: Mapping[str, Any]) -> ConnectorSettings:
    """One connector's settings, validated.

    :raises ConfigError: naming the connector and the offending key.
    """
    where = f"connectors.yaml connectors.{name}"
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind={kind!r} is not a connector kind; kinds: {list(KINDS)}")
    pool = raw.get("pool") or {}
    if not pool.get("name"):
        raise ConfigError(f"{where}.pool needs a name (the Airflow pool bounding its syncs)")
    try:
        return ConnectorSettings(
            name=name, kind=kind, family=str(raw.get("family", "")), enabled=bool(raw.get("enabled", True)),
            conn_id=str(raw.get("conn_id", "")), pool=str(pool["name"]), pool_slots=int(pool.get("slots", 1)),
            quota=_quota(name, raw), page_size=int(raw["page_size"]), batch_size=int(raw["batch_size"]),
            concurrency=int(raw.get("concurrency", 1)),
            retry=RetrySettings(**{**retry, **(raw.get("retry") or {})}),
            breaker=BreakerSettings(**{**breaker, **(raw.get("circuit_breaker") or {})}),
            objects={o: _object(name, o, spec) for o, spec in (raw.get("objects") or {}).items()},
            options={k: v for k, v in raw.items() if k not in _CONNECTOR_KEYS},
        )
    except KeyError as exc:
        raise ConfigError(f"{where} lacks {exc.args[0]!r}") from None
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class ConnectorsConfig:
    """Everything ``connectors.yaml`` sets (``get_config().connectors``): every connector by name, and where records land."""

    connectors: Mapping[str, ConnectorSettings]
    landing: LandingSettings


def load_connectors(raw: Any = None) -> dict[str, ConnectorSettings]:
    """Every connector of the active ``connectors.yaml`` (or of ``raw``, a :class:`ConnectorsConfig` or a file's mapping), by name."""
    if raw is None:
        from include.headroom.config import get_config

        raw = get_config().connectors
    if isinstance(raw, ConnectorsConfig):
        return dict(raw.connectors)
    retry, breaker = raw.get("retry") or {}, raw.get("circuit_breaker") or {}
    return {name: parse_connector(name, spec, retry, breaker) for name, spec in (raw.get("connectors") or {}).items()}


def load_landing(raw: Any = None) -> LandingSettings:
    """Where synced records land: the active configuration's, or those of ``raw`` (the ``landing`` mapping)."""
    if raw is None:
        from include.headroom.config import get_config

        return get_config().connectors.landing
    try:
        return LandingSettings(**(raw or {}))
    except TypeError as exc:
        raise ConfigError(f"connectors.yaml landing: {exc}") from None


def parse_connectors_config(raw: Mapping[str, Any]) -> ConnectorsConfig:
    """The settings of a ``connectors.yaml`` mapping.

    :raises ConfigError: naming the connector and key at fault.
    """
    unknown = sorted(set(raw.keys()) - {"connectors", "retry", "circuit_breaker", "landing"})
    if unknown:
        raise ConfigError(f"connectors.yaml: unknown top-level keys {unknown}; known are connectors, retry, circuit_breaker, landing")
    return ConnectorsConfig(connectors=load_connectors(raw), landing=load_landing(raw.get("landing") or {}))


def load_connectors_config(config_dir: Any = None) -> ConnectorsConfig:
    """``connectors.yaml`` of ``config_dir`` (default: the active configuration), read once per process."""
    from include.headroom.configfile import config_directory, load

    return load(config_directory(config_dir) / "connectors.yaml", parse_connectors_config)


def enabled_objects(connectors: Mapping[str, ConnectorSettings]) -> list[dict[str, str]]:
    """``[{"connector": ..., "obj": ...}]`` of every object of every enabled connector."""
    return [{"connector": c.name, "obj": o} for c in connectors.values() if c.enabled for o in c.objects]


def read_connectors_file(config_dir: Any = None) -> dict[str, ConnectorSettings]:
    """``connectors.yaml`` alone, without the rest of the configuration: every connector by name."""
    return dict(load_connectors_config(config_dir).connectors)


def connector_pools(connectors: Mapping[str, ConnectorSettings] | None = None) -> dict[str, dict[str, Any]]:
    """The Airflow pools the connectors sync in, in ``airflow pools import`` form."""
    connectors = connectors if connectors is not None else read_connectors_file()
    return {c.pool: {"slots": c.pool_slots, "description": f"connector_sync: {c.name} syncs (holds its quota across runs)",
                     "include_deferred": False} for c in connectors.values()}
