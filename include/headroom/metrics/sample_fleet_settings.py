"""Settings of the simulated sample fleet (``sample_fleet.yaml``): seed, step, history, growth, noise and the incidents it plays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from include.headroom.configfile import build as _build
from include.headroom.configfile import load
from include.headroom.configfile import require as _require

FILE = "sample_fleet.yaml"


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


def parse_sample_fleet(raw: Mapping[str, Any]) -> SampleFleetConfig:
    """The settings of a ``sample_fleet.yaml`` mapping.

    :raises ConfigError: naming the key at fault.
    """
    return _build(
        SampleFleetConfig,
        {**raw, "incidents": tuple(_build(Incident, i, "sample_fleet.yaml incident") for i in raw.get("incidents", []))},
        "sample_fleet.yaml",
    )


def load_sample_fleet(directory: Path) -> SampleFleetConfig:
    """``sample_fleet.yaml`` of ``directory`` (read once per process)."""
    return load(directory / FILE, parse_sample_fleet)
