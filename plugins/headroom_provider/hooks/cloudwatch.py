"""CloudWatchMetricsHook: CloudWatch ``GetMetricData`` through the amazon provider, as a metrics source."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

if TYPE_CHECKING:
    from include.headroom.config import HeadroomConfig
    from include.headroom.metrics.cloudwatch import CloudWatchSource
    from include.headroom.metrics.source_config import CloudWatchSettings


class CloudWatchMetricsHook(AwsBaseHook):
    """CloudWatch through an AWS connection (region, credentials, ``endpoint_url`` in the extra)."""

    hook_name = "headroom cloudwatch metrics"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "cloudwatch"
        super().__init__(*args, **kwargs)

    def get_source(self, config: HeadroomConfig, settings: CloudWatchSettings | None = None) -> CloudWatchSource:
        from include.headroom.metrics.cloudwatch import CloudWatchSource
        from include.headroom.metrics.source_config import load_source_settings

        settings = settings or load_source_settings().cloudwatch
        self.log.info("CloudWatch source in %s with %d queries", self.conn_region_name, len(settings.queries))
        return CloudWatchSource(self.conn, settings, config)

    def test_connection(self) -> tuple[bool, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.conn.list_metrics()
        except (BotoCoreError, ClientError) as exc:
            return False, f"CloudWatch ListMetrics failed: {exc}"
        return True, f"CloudWatch answers in {self.conn_region_name}: {len(answer.get('Metrics', []))} metrics listed"
