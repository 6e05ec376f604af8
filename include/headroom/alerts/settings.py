"""Alert routing settings (``alerts.yaml``): channels, routes, quiet hours, rate limit, delivery and alert kinds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from include.headroom.exceptions import ConfigError

FILE = "alerts.yaml"


class Severity(StrEnum):
    """How loud a notice is: a page wakes someone, a ticket waits for working hours, info is for the record."""

    PAGE = "page"
    TICKET = "ticket"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"page": 3, "ticket": 2, "info": 1}[self.value]


class Kind(StrEnum):
    """What raised an incident."""

    SLO_BURN = "slo_burn"
    ERROR_RATE_ALARM = "error_rate_alarm"
    OUT_OF_BOUNDS = "out_of_bounds"
    PREDICTED_BOTTLENECK = "predicted_bottleneck"
    SATURATION = "saturation"
    APPROVAL_WAITING = "approval_waiting"
    RUN_FAILED = "run_failed"
    DEADLINE_MISSED = "deadline_missed"


# The keys each channel type takes (besides ``type``), and which of them are required.
CHANNEL_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "log": (set(), set()),
    "slack_webhook": ({"conn_id"}, {"conn_id"}),
    "slack_api": ({"conn_id", "channel"}, {"conn_id", "channel"}),
    "email": ({"conn_id", "to", "from"}, {"conn_id", "to"}),
    "pagerduty": ({"conn_id"}, {"conn_id"}),
    "sns": ({"conn_id", "topic_arn"}, {"conn_id", "topic_arn"}),
}
MATCH_KEYS = {"severity", "tier", "owner", "kind"}
TOP_KEYS = {"channels", "routes", "quiet_hours", "rate_limit", "delivery", "past_interval_s", "airflow_base_url", "kinds", "metrics"}
KIND_KEYS = {"severity", "min_probability", "within_days", "page_within_days"}


@dataclass(frozen=True)
class Channel:
    """One way to reach people; ``conn_id`` names the Airflow connection that holds its secrets (never the secret)."""

    name: str
    type: str
    conn_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """Notices whose fields are in ``match`` (every key given must match) go to ``channels``."""

    match: Mapping[str, frozenset[str]]
    channels: tuple[str, ...]
    quiet_hours: bool = True

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(fields.get(key) in allowed for key, allowed in self.match.items())


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    timezone: str
    severities: frozenset[Severity]

    def holds(self, severity: Severity, at: datetime) -> bool:
        """Whether a notice of ``severity`` must wait at ``at`` (an aware datetime)."""
        if severity not in self.severities or self.start == self.end:
            return False
        local = at.astimezone(ZoneInfo(self.timezone)).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # the window spans midnight


@dataclass(frozen=True)
class RateLimit:
    max_notifications: int
    window_s: float


@dataclass(frozen=True)
class Delivery:
    attempts: int
    backoff_s: float
    max_backoff_s: float


@dataclass(frozen=True)
class KindSettings:
    severity: Severity | None = None
    min_probability: float | None = None
    within_days: float | None = None
    page_within_days: float | None = None


@dataclass(frozen=True)
class MetricsSettings:
    pushgateway_conn_id: str | None
    job: str


@dataclass(frozen=True)
class AlertSettings:
    channels: Mapping[str, Channel]
    routes: tuple[Route, ...]
    quiet_hours: QuietHours
    rate_limit: RateLimit
    delivery: Delivery
    past_interval_s: float
    airflow_base_url: str
    kinds: Mapping[Kind, KindSettings]
    metrics: MetricsSettings

    def route(self, fields: Mapping[str, str]) -> Route | None:
        """The first route matching a notice's ``severity``, ``tier``, ``owner`` and ``kind``; None when none does."""
        return next((r for r in self.routes if r.matches(fields)), None)

    def kind(self, kind: Kind) -> KindSettings:
        return self.kinds.get(kind, KindSettings())

    def conn_ids(self) -> dict[str, str]:
        """``channels.<name>.conn_id`` -> connection id, for every channel that needs a connection."""
        return {f"channels.{c.name}.conn_id": c.conn_id for c in self.channels.values() if c.conn_id}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    _require(isinstance(raw, Mapping), f"{FILE} {where}: expected a mapping, got {type(raw).__name__}")
    return raw


def _unknown(raw: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    extra = sorted(set(raw) - set(allowed))
    _require(not extra, f"{FILE} {where}: unknown keys {extra}; allowed {sorted(allowed)}")


def _number(raw: Mapping[str, Any], key: str, where: str, minimum: float = 0.0) -> float:
    _require(key in raw, f"{FILE} {where}.{key} is missing")
    value = raw[key]
    _require(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= minimum,
             f"{FILE} {where}.{key}={value!r} must be a number >= {minimum}")
    return float(value)


def _clock(value: Any, where: str) -> time:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ConfigError(f"{FILE} {where}={value!r} must be a time of day HH:MM") from None


def _channel(name: str, raw: Any) -> Channel:
    where = f"channels.{name}"
    raw = dict(_mapping(raw, where))
    kind = raw.pop("type", None)
    _require(kind in CHANNEL_KEYS, f"{FILE} {where}.type={kind!r} is not a channel type; types are {sorted(CHANNEL_KEYS)}")
    allowed, required = CHANNEL_KEYS[kind]
    _unknown(raw, allowed, where)
    missing = sorted(required - set(raw))
    _require(not missing, f"{FILE} {where}: {kind} channels need {missing}")
    if kind == "email":
        to = raw.get("to")
        _require(isinstance(to, list) and to and all(isinstance(a, str) and "@" in a for a in to),
                 f"{FILE} {where}.to={to!r} must be a list of email addresses")
    conn_id = raw.pop("conn_id", None)
    _require(conn_id is None or (isinstance(conn_id, str) and conn_id), f"{FILE} {where}.conn_id={conn_id!r} must be a connection id")
    return Channel(name=name, type=kind, conn_id=conn_id, params=raw)


def _route(i: int, raw: Any, channels: Mapping[str, Channel], vocab: Mapping[str, set[str]]) -> Route:
    where = f"routes[{i}]"
    raw = _mapping(raw, where)
    _unknown(raw, {"match", "channels", "quiet_hours"}, where)
    match_raw = _mapping(raw.get("match") or {}, f"{where}.match")
    _unknown(match_raw, MATCH_KEYS, f"{where}.match")
    match = {}
    for key, value in match_raw.items():
        values = [value] if isinstance(value, str) else value
        _require(isinstance(values, list) and values, f"{FILE} {where}.match.{key}={value!r} must be a value or a list")
        unknown = sorted(str(v) for v in values if str(v) not in vocab[key])
        _require(not unknown, f"{FILE} {where}.match.{key}: unknown {key} {unknown}; known are {sorted(vocab[key])}")
        match[key] = frozenset(str(v) for v in values)
    names = raw.get("channels")
    _require(isinstance(names, list) and names, f"{FILE} {where}.channels must be a non-empty list of channel names")
    unknown = sorted(str(n) for n in names if n not in channels)
    _require(not unknown, f"{FILE} {where}.channels: unknown channels {unknown}; defined are {sorted(channels)}")
    quiet = raw.get("quiet_hours", True)
    _require(isinstance(quiet, bool), f"{FILE} {where}.quiet_hours={quiet!r} must be true or false")
    return Route(match=match, channels=tuple(names), quiet_hours=quiet)


def parse_alert_settings(raw: Mapping[str, Any], owners: Iterable[str], tiers: Iterable[str],
                         connection_exists: Callable[[str], bool] | None = None) -> AlertSettings:
    """Validate ``alerts.yaml``'s content.

    :param owners: the catalog's owners, the only values ``match.owner`` may name.
    :param tiers: the tier names, the only values ``match.tier`` may name.
    :param connection_exists: when given, every channel's ``conn_id`` must exist (the Airflow layer passes a
        look-up of Airflow connections; the library itself never reads them).
    :raises ConfigError: naming the key at fault.
    """
    raw = _mapping(raw, "top level")
    _unknown(raw, TOP_KEYS, "top level")
    channels_raw = _mapping(raw.get("channels") or {}, "channels")
    _require(bool(channels_raw), f"{FILE} channels: define at least one channel")
    channels = {str(name): _channel(str(name), c) for name, c in channels_raw.items()}

    kinds_raw = _mapping(raw.get("kinds") or {}, "kinds")
    kinds = {}
    for name, k in kinds_raw.items():
        try:
            kind = Kind(name)
        except ValueError:
            raise ConfigError(f"{FILE} kinds.{name}: unknown alert kind; kinds are {[k.value for k in Kind]}") from None
        k = _mapping(k or {}, f"kinds.{name}")
        _unknown(k, KIND_KEYS, f"kinds.{name}")
        severity = k.get("severity")
        _require(severity is None or severity in {s.value for s in Severity},
                 f"{FILE} kinds.{name}.severity={severity!r} must be one of {[s.value for s in Severity]}")
        kinds[kind] = KindSettings(
            severity=Severity(severity) if severity else None,
            **{key: _number(k, key, f"kinds.{name}") for key in ("min_probability", "within_days", "page_within_days") if key in k},
        )
    for kind in (Kind.PREDICTED_BOTTLENECK,):
        _require(kinds.get(kind) and kinds[kind].min_probability is not None, f"{FILE} kinds.{kind.value}.min_probability is missing")
    _require(kinds.get(Kind.SATURATION) and kinds[Kind.SATURATION].within_days is not None,
             f"{FILE} kinds.saturation.within_days is missing")

    vocab = {"severity": {s.value for s in Severity}, "tier": set(tiers), "owner": set(owners), "kind": {k.value for k in Kind}}
    routes_raw = raw.get("routes")
    _require(isinstance(routes_raw, list) and routes_raw, f"{FILE} routes must be a non-empty list")
    routes = tuple(_route(i, r, channels, vocab) for i, r in enumerate(routes_raw))
    for severity in Severity:  # a notice nobody hears is a silent failure: every severity needs a route
        _require(any(not r.match.get("severity") or severity.value in r.match["severity"] for r in routes),
                 f"{FILE} routes: no route takes severity {severity.value!r}")

    quiet_raw = _mapping(raw.get("quiet_hours") or {}, "quiet_hours")
    _unknown(quiet_raw, {"start", "end", "timezone", "severities"}, "quiet_hours")
    tz = str(quiet_raw.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{FILE} quiet_hours.timezone={tz!r} is not a known time zone") from None
    severities = quiet_raw.get("severities", [])
    bad = [s for s in severities if s not in {"ticket", "info"}]
    _require(not bad, f"{FILE} quiet_hours.severities: {bad} cannot wait (a page is never held; use ticket or info)")
    quiet = QuietHours(start=_clock(quiet_raw.get("start", "00:00"), "quiet_hours.start"),
                       end=_clock(quiet_raw.get("end", "00:00"), "quiet_hours.end"), timezone=tz,
                       severities=frozenset(Severity(s) for s in severities))

    rate_raw = _mapping(raw.get("rate_limit") or {}, "rate_limit")
    _unknown(rate_raw, {"max_notifications", "window_s"}, "rate_limit")
    rate = RateLimit(max_notifications=int(_number(rate_raw, "max_notifications", "rate_limit", 1)),
                     window_s=_number(rate_raw, "window_s", "rate_limit", 1))
    delivery_raw = _mapping(raw.get("delivery") or {}, "delivery")
    _unknown(delivery_raw, {"attempts", "backoff_s", "max_backoff_s"}, "delivery")
    delivery = Delivery(attempts=int(_number(delivery_raw, "attempts", "delivery", 1)),
                        backoff_s=_number(delivery_raw, "backoff_s", "delivery"),
                        max_backoff_s=_number(delivery_raw, "max_backoff_s", "delivery"))
    metrics_raw = _mapping(raw.get("metrics") or {}, "metrics")
    _unknown(metrics_raw, {"pushgateway_conn_id", "job"}, "metrics")
    metrics = MetricsSettings(pushgateway_conn_id=metrics_raw.get("pushgateway_conn_id") or None,
                              job=str(metrics_raw.get("job") or "headroom"))
    base_url = raw.get("airflow_base_url")
    _require(isinstance(base_url, str) and base_url.startswith(("http://", "https://")),
             f"{FILE} airflow_base_url={base_url!r} must be an http(s) URL")

    settings = AlertSettings(
        channels=channels, routes=routes, quiet_hours=quiet, rate_limit=rate, delivery=delivery,
        past_interval_s=_number(raw, "past_interval_s", "top level", 1), airflow_base_url=base_url.rstrip("/"),
        kinds=kinds, metrics=metrics,
    )
    if connection_exists is not None:
        needed = settings.conn_ids()
        if metrics.pushgateway_conn_id:
            needed["metrics.pushgateway_conn_id"] = metrics.pushgateway_conn_id
        for key, conn_id in needed.items():
            _require(connection_exists(conn_id), f"{FILE} {key}: Airflow connection {conn_id!r} does not exist")
    return settings


def load_alert_settings(config_dir: str | Path | None = None, connection_exists: Callable[[str], bool] | None = None) -> AlertSettings:
    """Read and validate ``alerts.yaml`` from the configuration folder, against the catalog's owners and tiers."""
    from include.headroom.config import config_directory, get_config, load_config
    from include.headroom.configfile import read_once

    directory = config_directory(config_dir)
    config = load_config(directory) if config_dir else get_config()
    owners = {s.owner for s in config.services if getattr(s, "owner", None)}
    tiers = {t.value for t in config.tiers}
    return parse_alert_settings(read_once(directory / FILE), owners, tiers, connection_exists)
