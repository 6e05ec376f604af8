"""The metrics source hooks by name: what ``pipeline.yaml`` ``ingest.source`` may name, each built from its connection."""

from __future__ import annotations

from typing import TYPE_CHECKING
from collections.abc import Callable

if TYPE_CHECKING:
    from include.headroom.config import HeadroomConfig
    from include.headroom.metrics.sources import MetricsSource


def _sample_fleet(config: HeadroomConfig) -> MetricsSource:
    from headroom_provider.hooks.sample_fleet import SampleFleetHook

    return SampleFleetHook().get_source(config)


def _prometheus(config: HeadroomConfig) -> MetricsSource:
    from headroom_provider.hooks.prometheus import PrometheusHook
    from include.headroom.metrics.source_config import load_source_settings

    settings = load_source_settings().prometheus
    return PrometheusHook(prometheus_conn_id=settings.conn_id).get_source(config, settings)


def _cloudwatch(config: HeadroomConfig) -> MetricsSource:
    from headroom_provider.hooks.cloudwatch import CloudWatchMetricsHook
    from include.headroom.metrics.source_config import load_source_settings

    settings = load_source_settings().cloudwatch
    return CloudWatchMetricsHook(aws_conn_id=settings.conn_id).get_source(config, settings)


def _files(config: HeadroomConfig) -> MetricsSource:
    from headroom_provider.hooks.files import MetricsFilesHook
    from include.headroom.metrics.source_config import load_source_settings

    settings = load_source_settings().files
    return MetricsFilesHook(aws_conn_id=settings.conn_id).get_source(config, settings)


SOURCES: dict[str, Callable[[HeadroomConfig], MetricsSource]] = {
    "sample_fleet": _sample_fleet,
    "prometheus": _prometheus,
    "cloudwatch": _cloudwatch,
    "files": _files,
}


def metrics_source(config: HeadroomConfig) -> MetricsSource:
    """The source ``config.pipeline.source`` names, built through its hook.

    :raises ValueError: naming the configured value and the known sources.
    """
    name = config.pipeline.source
    if name not in SOURCES:
        raise ValueError(f"pipeline.yaml ingest.source={name!r} is not a metrics source; sources: {sorted(SOURCES)}")
    return SOURCES[name](config)
