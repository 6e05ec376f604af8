"""Validation settings from ``validation.yaml``: sampling step, failure ratios, gaps, freshness and the metric families."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from include.headroom.configfile import build as _build
from include.headroom.configfile import load
from include.headroom.configfile import require as _require
from include.headroom.configfile import require_zone as _require_zone
from include.headroom.catalog import Tier
from include.headroom.exceptions import ConfigError

FILE = "validation.yaml"


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


def _per_tier(raw: Any, where: str) -> PerTier:
    """``X`` or ``{default: X, tiers: {tier: Y}}`` as a :class:`PerTier`."""
    if not isinstance(raw, Mapping):
        return PerTier(default=float(raw))
    try:
        tiers = {Tier(t): float(v) for t, v in (raw.get("tiers") or {}).items()}
        return PerTier(default=float(raw["default"]), tiers=tiers)
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"validation.yaml {where}: expected a number or {{default: X, tiers: {{tier: Y}}}}: {exc!r}") from exc


def parse_validation(raw: Mapping[str, Any]) -> ValidationConfig:
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


def load_validation(directory: Path) -> ValidationConfig:
    """``validation.yaml`` of ``directory`` (read once per process)."""
    return load(directory / FILE, parse_validation)
