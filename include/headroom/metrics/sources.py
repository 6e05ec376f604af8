"""Metrics sources: each reads canonical rows for a time interval. The embedded sample fleet is the default."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from include.headroom.config import HeadroomConfig
from include.headroom.metrics.sample_fleet import SampleFleet, load_anchor
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd


class MetricsSource(Protocol):
    name: str

    def read(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Canonical rows with ``start <= ts < end``."""


class SampleFleetSource:
    """The simulated fleet as a live source: it serves any interval up to the present, never the future."""

    name = "sample_fleet"

    def __init__(self, config: HeadroomConfig, fleet_dir: str | Path | None = None, anchor: Any = None, now: Any = None) -> None:
        recorded = load_anchor(fleet_dir) if fleet_dir is not None else None
        self.fleet = SampleFleet(config, anchor if anchor is not None else recorded)
        self._now = now

    def read(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        import pandas as pd

        now = utc(self._now) if self._now is not None else pd.Timestamp.now(tz="UTC")
        return self.fleet.generate(utc(start), min(utc(end), now))
