"""CloudWatch as a metrics source: ``GetMetricData`` in calls of up to 500 queries, paginated, throttling retried."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from string import Template
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Sequence

from include.headroom.exceptions import SourceError, TransientError
from include.headroom.metrics.prometheus import template_vars
from include.headroom.metrics.schema import format_labels
from include.headroom.redact import redact
from include.headroom.resilience import RetryPolicy, retry
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig
    from include.headroom.catalog import Service
    from include.headroom.metrics.source_config import CloudWatchQuery, CloudWatchSettings

log = logging.getLogger(__name__)
SOURCE_NAME = "cloudwatch"
COLUMNS = ["ts", "service", "tier", "metric", "value", "unit", "source", "labels"]
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"})


@dataclass(frozen=True)
class PlannedQuery:
    """The ``MetricDataQueries`` entries for one (query, service) and what their result means."""

    result_id: str
    entries: tuple[dict[str, Any], ...]
    query: CloudWatchQuery
    service: Service
    labels: str

    @property
    def unit(self) -> str:
        return self.query.result_unit or self.query.unit


class CloudWatchSource:
    """Reads canonical rows from CloudWatch.

    :param client: a boto3 ``cloudwatch`` client (the hook passes ``AwsBaseHook(client_type="cloudwatch").conn``).
    """

    name = SOURCE_NAME

    def __init__(
        self,
        client: Any,
        settings: CloudWatchSettings,
        config: HeadroomConfig,
        services: Sequence[str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.settings = settings
        self.config = config
        self.services = [config.service(n) for n in services] if services is not None else list(config.services)
        self._sleep = sleep
        self.stats: dict[str, Any] = {}

    def plan(self) -> list[PlannedQuery]:
        """Every (query, service) as ``MetricDataQueries`` entries; metric math hides its inputs."""
        planned = []
        for qi, query in enumerate(self.settings.queries):
            for si, svc in enumerate(self.services):
                env = template_vars(self.config, svc)
                suffix = f"_{qi}_{si}"
                stat = {
                    "Id": f"{query.id}{suffix}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": query.namespace,
                            "MetricName": query.metric_name,
                            "Dimensions": [
                                {"Name": k, "Value": Template(str(v)).safe_substitute(env)} for k, v in query.dimensions.items()
                            ],
                        },
                        "Period": self.settings.period_s,
                        "Stat": Template(query.stat).safe_substitute(env),
                    },
                    "ReturnData": query.expression is None,
                }
                entries: list[dict[str, Any]] = [stat]
                result_id = stat["Id"]
                if query.expression:
                    result_id = f"e{suffix}"
                    expression = query.expression.replace(query.id, stat["Id"])
                    entries.append({"Id": result_id, "Expression": expression, "Label": query.metric, "ReturnData": True})
                labels = format_labels({k: Template(str(v)).safe_substitute(env) for k, v in query.labels.items()})
                planned.append(PlannedQuery(result_id, tuple(entries), query, svc, labels))
        return planned

    def _call(self, **kwargs: Any) -> dict[str, Any]:
        """One ``GetMetricData`` call; throttling is retried with exponential backoff, other errors name the call."""
        from botocore.exceptions import ClientError

        ids = [q["Id"] for q in kwargs["MetricDataQueries"]][:5]

        def once() -> dict[str, Any]:
            try:
                return self.client.get_metric_data(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in THROTTLING_CODES:
                    raise SourceError(f"cloudwatch GetMetricData refused queries {ids}...: {code}: {redact(str(exc))}") from exc
                raise TransientError(redact(str(exc))) from exc

        policy = RetryPolicy(attempts=self.settings.retries, base_delay_s=self.settings.backoff_s, max_delay_s=30.0)
        return retry(
            once,
            policy,
            what="cloudwatch GetMetricData",
            sleep=self._sleep,
            on_retry=lambda n, exc, delay: log.warning(
                "CloudWatch throttled GetMetricData (%s); retry %d of %d in %.1f s", exc, n + 1, self.settings.retries - 1, delay
            ),
            exhausted=lambda n, exc: SourceError(f"cloudwatch GetMetricData still throttled after {n} attempts (queries {ids}...): {exc}"),
        )

    def read(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Canonical rows with ``start <= ts < end``; series with no datapoints are logged and listed in ``stats["empty"]``."""
        import pandas as pd

        start, end = utc(start), utc(end)
        planned = self.plan()
        by_id = {p.result_id: p for p in planned}
        values: dict[str, list[tuple[Any, float]]] = {p.result_id: [] for p in planned}
        batch_size = max(1, self.settings.max_queries_per_call)
        batches: list[list[PlannedQuery]] = []
        current: list[PlannedQuery] = []
        for p in planned:  # a query and its metric-math inputs stay in one call
            if current and sum(len(q.entries) for q in current) + len(p.entries) > batch_size:
                batches.append(current)
                current = []
            current.append(p)
        if current:
            batches.append(current)
        calls = 0
        started = time.monotonic()
        for n, batch in enumerate(batches, 1):
            token = None
            while True:
                kwargs: dict[str, Any] = {
                    "MetricDataQueries": [e for p in batch for e in p.entries],
                    "StartTime": start.to_pydatetime(),
                    "EndTime": end.to_pydatetime(),
                    "ScanBy": "TimestampAscending",
                }
                if token:
                    kwargs["NextToken"] = token
                answer = self._call(**kwargs)
                calls += 1
                for result in answer.get("MetricDataResults", []):
                    if result["Id"] in values:
                        values[result["Id"]].extend(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
                token = answer.get("NextToken")
                if not token:
                    break
            log.info("CloudWatch: call batch %d/%d done (%d series), %d calls so far", n, len(batches), len(batch), calls)
        frames, empty = [], []
        for rid, points in values.items():
            p = by_id[rid]
            if not points:
                empty.append(f"{p.query.metric} of {p.service.name}")
                log.warning(
                    "CloudWatch %s/%s (metric %s, service %s) has no datapoints in [%s, %s)",
                    p.query.namespace,
                    p.query.metric_name,
                    p.query.metric,
                    p.service.name,
                    start,
                    end,
                )
                continue
            ts, vals = zip(*points, strict=False)
            frames.append(
                pd.DataFrame({"ts": pd.to_datetime(list(ts), utc=True), "value": [float(v) for v in vals]}).assign(
                    service=p.service.name,
                    tier=p.service.tier.value,
                    metric=p.query.metric,
                    unit=p.unit,
                    source=SOURCE_NAME,
                    labels=p.labels,
                )
            )
        self.stats = {"series": len(planned), "calls": calls, "empty": empty, "seconds": round(time.monotonic() - started, 3)}
        if not frames:
            return pd.DataFrame(columns=COLUMNS)
        rows = pd.concat(frames, ignore_index=True)
        rows = rows[(rows["ts"] >= start) & (rows["ts"] < end)].drop_duplicates(["service", "metric", "labels", "ts"], keep="last")
        return rows.sort_values(["service", "metric", "ts"])[COLUMNS].reset_index(drop=True)
