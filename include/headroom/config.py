"""The configuration in use: :class:`HeadroomConfig` gathers the settings each package owns, one YAML file each.

Catalog and tiers: :mod:`include.headroom.catalog`; scaling: :mod:`include.headroom.scaling.settings`; cache:
:mod:`include.headroom.cache.settings`; forecasting: :mod:`include.headroom.forecasting.settings`; bottlenecks:
:mod:`include.headroom.bottlenecks.settings`; sample fleet: :mod:`include.headroom.metrics.sample_fleet_settings`;
connectors: :mod:`include.headroom.connectors.settings`; pipeline and validation: :mod:`include.headroom.steps.settings`.
Each file is read once per process (:func:`include.headroom.configfile.load`), whoever asks for it first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from include.headroom.bottlenecks.settings import BottleneckConfig, load_bottlenecks
from include.headroom.cache.settings import CacheSettings, load_cache_settings
from include.headroom.catalog import Service, Tier, TierConfig, load_catalog, load_tiers
from include.headroom.configfile import CONFIG_DIR, config_directory
from include.headroom.configfile import require as _require
from include.headroom.connectors.settings import ConnectorsConfig, load_connectors_config
from include.headroom.exceptions import ConfigError
from include.headroom.forecasting.settings import ForecastConfig, load_forecasting
from include.headroom.metrics.sample_fleet_settings import SampleFleetConfig, load_sample_fleet
from include.headroom.steps.settings import PipelineConfig, load_pipeline
from include.headroom.scaling.settings import HpaProfile, ScalingConfig, load_scaling

__all__ = ["CONFIG_DIR", "PROJECT_ROOT", "HeadroomConfig", "config_directory", "data_dir", "get_config", "load_config", "reports_dir"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_REPORTS_DIR = PROJECT_ROOT / "reports"


@dataclass(frozen=True)
class HeadroomConfig:
    tiers: Mapping[Tier, TierConfig]
    services: tuple[Service, ...]
    scaling: ScalingConfig
    cache: CacheSettings
    forecasting: ForecastConfig
    bottlenecks: BottleneckConfig
    sample_fleet: SampleFleetConfig
    connectors: ConnectorsConfig
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
        self.scaling.check_services(names)

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


def load_config(config_dir: str | Path | None = None) -> HeadroomConfig:
    """Load and validate the configuration in ``config_dir`` (default: the shipped one, or ``$HEADROOM_CONFIG_DIR``).

    Each file is read once per process and version (a file changed on disk is read again).

    :param config_dir: a folder with the YAML files named like the shipped ones.
    :raises ConfigError: naming the file and field at fault.
    """
    directory = config_directory(config_dir)
    return HeadroomConfig(
        tiers=load_tiers(directory),
        services=load_catalog(directory),
        scaling=load_scaling(directory),
        cache=load_cache_settings(directory),
        forecasting=load_forecasting(directory),
        bottlenecks=load_bottlenecks(directory),
        sample_fleet=load_sample_fleet(directory),
        connectors=load_connectors_config(directory),
        pipeline=load_pipeline(directory),
    )


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
