"""SampleFleetHook: the embedded sample fleet as a metrics source."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

if TYPE_CHECKING:
    from include.headroom.config import HeadroomConfig
    from include.headroom.metrics.sources import SampleFleetSource


class SampleFleetHook(BaseHook):
    """The simulated fleet. Connection extra: ``fleet_dir`` (where ``sample-fleet`` wrote ``fleet.json``) and an optional ``anchor``."""

    conn_name_attr = "sample_fleet_conn_id"
    default_conn_name = "headroom_sample_fleet"
    conn_type = "generic"
    hook_name = "headroom sample fleet"

    def __init__(self, sample_fleet_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sample_fleet_conn_id = sample_fleet_conn_id

    def _extra(self) -> dict[str, Any]:
        try:
            return self.get_connection(self.sample_fleet_conn_id).extra_dejson
        except AirflowNotFoundException:
            return {}

    def get_conn(self) -> SampleFleetSource:
        from include.headroom.config import get_config

        return self.get_source(get_config())

    def get_source(self, config: HeadroomConfig) -> SampleFleetSource:
        from include.headroom.config import data_dir
        from include.headroom.metrics.sources import SampleFleetSource

        extra = self._extra()
        fleet_dir = Path(extra.get("fleet_dir") or data_dir() / "sample_fleet")
        source = SampleFleetSource(config, fleet_dir=fleet_dir, anchor=extra.get("anchor"))
        self.log.info("Sample fleet anchored at %s (fleet folder %s)", source.fleet.anchor, fleet_dir)
        return source

    def test_connection(self) -> tuple[bool, str]:
        import pandas as pd

        source = self.get_conn()
        end = min(source.fleet.anchor, pd.Timestamp.now(tz="UTC"))
        rows = source.read(end - pd.Timedelta(hours=1), end)
        if rows.empty:
            return False, "the sample fleet produced no rows for the last hour before its anchor"
        return True, f"{len(rows)} rows for {rows['service'].nunique()} services in the hour before {end}"
