"""Cache warming operators: Redis from a warming plan, CDN URL warm-ups, CloudFront invalidations; each run is audited."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.headroom.cache.redis_warmer import WarmResult
    from include.headroom.cache.settings import CacheSettings


def _settings() -> CacheSettings:
    from include.headroom.cache.settings import load_cache_settings

    return load_cache_settings()


def _record(context: Any, service: str, action: str, executor: str, result: WarmResult, reason: str, detail: dict[str, Any]) -> None:
    """One audit record per run: keys/URLs warmed, bytes, errors, duration, hit ratio before and after."""
    from headroom_provider.operators._audit import audit
    from include.headroom.audit import AuditRecord, Status
    from include.headroom.cache.redis_warmer import WarmStatus

    status = Status.FAILED if result.status == WarmStatus.FAILED else Status.APPLIED
    audit(context, AuditRecord(
        kind="cache", service=service, action=action, status=status, dry_run=False, executor=executor, reason=reason,
        before={"hit_ratio": result.hit_ratio_before, "used_memory": result.used_memory_before},
        after={"hit_ratio": result.hit_ratio_after, "used_memory": result.used_memory_after, "warmed": result.warmed,
               "bytes": result.bytes},
        detail={**detail, "result": result.to_dict()},
    ))


def _summary(result: WarmResult, unit: str) -> str:
    def ratio(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    text = (f"{result.status.value}: {result.warmed}/{result.planned} {unit} warmed ({result.bytes / 1e6:.2f} MB), "
            f"{result.skipped_fresh} fresh skipped, {result.errors} errors, {result.duration_s:.2f} s, "
            f"hit ratio {ratio(result.hit_ratio_before)} -> {ratio(result.hit_ratio_after)}")
    return f"{text}; {result.stop_reason}" if result.stop_reason else text


class WarmCacheOperator(BaseOperator):
    """Warm a service's Redis cache from a plan made by ``plan_all_warming``; a plan without a trigger is recorded as skipped.

    Values come from the configured origin (a registered loader or ``GET <url>/<key>``) and are written
    through the redis provider's ``RedisHook``, guarded by the memory fraction, skipping fresh keys.
    A partial run (memory guard, some origin errors, Redis lost mid-way) succeeds with status
    ``partial`` in the audit trail; a run that wrote nothing because Redis or the origin failed fails.

    :param plan: the plan dict (service, trigger, entries, ...).
    :param dry_run: record what would be written instead of writing it (default from ``cache.yaml``).
    :param redis_conn_id: the Redis connection (default from ``cache.yaml``).
    """

    template_fields: Sequence[str] = ("plan", "dry_run")
    ui_color = "#fde2e4"

    def __init__(self, *, plan: dict[str, Any], dry_run: bool | str | None = None, redis_conn_id: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.dry_run = dry_run
        self.redis_conn_id = redis_conn_id

    @cached_property
    def settings(self) -> CacheSettings:
        return _settings()

    def _dry_run(self) -> bool:
        if self.dry_run is None or self.dry_run == "None":
            return self.settings.warming.dry_run
        if isinstance(self.dry_run, str):
            if self.dry_run.strip().lower() not in ("true", "false"):
                raise ValueError(f"dry_run={self.dry_run!r} must be true or false")
            return self.dry_run.strip().lower() == "true"
        return bool(self.dry_run)

    def execute(self, context: Context) -> dict[str, Any]:
        from headroom_provider.operators._audit import audit
        from include.headroom.audit import AuditRecord, Status

        if not isinstance(self.plan, dict) or "service" not in self.plan:
            raise ValueError(f"plan={self.plan!r} must be a warming plan dict with a 'service'")
        service, dry_run = self.plan["service"], self._dry_run()
        if not self.plan.get("trigger"):
            audit(context, AuditRecord(kind="cache", service=service, action="warm", status=Status.SKIPPED, dry_run=dry_run,
                                       executor="redis", reason=self.plan.get("skip_reason") or "no trigger"))
            return {"service": service, "status": Status.SKIPPED.value}
        if dry_run:
            reason = (f"{self.plan['trigger']}: would warm {self.plan['keys']} keys ({self.plan['bytes'] / 1e6:.1f} MB), "
                      f"TTLs {self.plan['ttl_histogram']}")
            detail = {k: v for k, v in self.plan.items() if k != "entries"}
            audit(context, AuditRecord(kind="cache", service=service, action="warm", status=Status.DRY_RUN, dry_run=True,
                                       executor="dry_run", reason=reason, before={"hit_rate": self.plan.get("hit_rate")},
                                       after={"keys": self.plan["keys"]}, detail=detail))
            self.log.info("%s: %s", service, reason)
            return {"service": service, "status": Status.DRY_RUN.value, "keys": self.plan["keys"]}
        return self._warm(context, service)

    def _replay_keys(self, service: str) -> list[str]:
        """The newest requests of the service's access log, replayed before and after to measure the hit ratio."""
        import pandas as pd

        from include.headroom.cache.access_log import load_access_log
        from include.headroom.timeutil import utc

        warm = self.settings.warming
        if not self.plan.get("as_of") or warm.replay_requests <= 0:
            return []
        end = utc(self.plan["as_of"])  # XCom text
        log = load_access_log(self.settings.access_log, service, end - pd.Timedelta(seconds=warm.lookback_s), end)
        return list(log["key"].tail(warm.replay_requests))

    def _warm(self, context: Context, service: str) -> dict[str, Any]:
        from airflow.providers.redis.hooks.redis import RedisHook
        from airflow.sdk.exceptions import AirflowException

        from include.headroom.cache.origin import build_origin
        from include.headroom.cache.redis_warmer import WarmStatus, warm_redis

        conn_id = self.redis_conn_id or self.settings.redis.conn_id
        client = RedisHook(redis_conn_id=conn_id).get_conn()
        origin = build_origin(self.settings.origin)
        result = warm_redis(client, self.plan.get("entries") or [], origin, self.settings.redis, self.settings.warming,
                            target=f"redis:{conn_id}", replay_keys=self._replay_keys(service))
        reason = f"{self.plan['trigger']}: {_summary(result, 'keys')}"
        detail = {"triggers": self.plan.get("triggers"), "origin": origin.name, "ttl_histogram": self.plan.get("ttl_histogram"),
                  "tier": self.plan.get("tier"), "peak_rps": self.plan.get("peak_rps")}
        _record(context, service, "warm", "redis", result, reason, detail)
        if result.status == WarmStatus.FAILED:
            raise AirflowException(f"cache warming of {service} failed: {reason}")
        if result.status == WarmStatus.PARTIAL:
            self.log.warning("%s: %s", service, reason)
        else:
            self.log.info("%s: %s", service, reason)
        return {"service": service, **result.to_dict()}


class WarmCdnOperator(BaseOperator):
    """Warm a CDN with GETs of ``paths`` on the connection's host (bounded concurrency, timeouts, retries from ``cache.yaml``).

    :param service: the service the URLs belong to (for the audit trail).
    :param paths: URL paths, each starting with ``/``.
    :param cdn_conn_id: the CDN (or origin) host connection (default from ``cache.yaml``).
    """

    template_fields: Sequence[str] = ("service", "paths")
    ui_color = "#fde2e4"

    def __init__(self, *, service: str, paths: Sequence[str], cdn_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service, self.paths, self.cdn_conn_id = service, paths, cdn_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException

        from headroom_provider.hooks.cache import CdnHook
        from include.headroom.cache.cdn import warm_urls
        from include.headroom.cache.redis_warmer import WarmStatus

        paths = list(self.paths or [])
        bad = [p for p in paths if not isinstance(p, str) or not p.startswith("/")]
        if bad:
            raise ValueError(f"paths {bad!r} must be strings starting with '/'")
        settings = _settings().cdn
        hook = CdnHook(cdn_conn_id=self.cdn_conn_id or settings.conn_id)
        with hook.get_conn(settings.timeout_s, settings.concurrency) as client:
            result = warm_urls(hook.base_url(), paths, settings, client=client)
        reason = _summary(result, "URLs")
        _record(context, self.service, "warm_cdn", "cdn", result, reason, {"base_url": hook.base_url(), "paths": len(paths)})
        if result.status == WarmStatus.FAILED:
            raise AirflowException(f"CDN warming of {self.service} failed: {reason}")
        self.log.info("%s: %s", self.service, reason)
        return {"service": self.service, **result.to_dict()}


class InvalidateCdnOperator(BaseOperator):
    """Invalidate changed ``paths`` on a CloudFront distribution and wait for it to complete; audited.

    :param service: the service the paths belong to.
    :param distribution_id: the CloudFront distribution (default from ``cache.yaml`` ``cdn.distribution_id``).
    :param aws_conn_id: the AWS connection (default from ``cache.yaml`` ``cdn.cloudfront_conn_id``).
    """

    template_fields: Sequence[str] = ("service", "paths", "distribution_id")

    def __init__(self, *, service: str, paths: Sequence[str], distribution_id: str | None = None, aws_conn_id: str | None = None,
                 wait_timeout_s: float = 600, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service, self.paths, self.distribution_id = service, paths, distribution_id
        self.aws_conn_id, self.wait_timeout_s = aws_conn_id, wait_timeout_s

    def execute(self, context: Context) -> dict[str, Any]:
        from headroom_provider.hooks.cache import CloudFrontHook
        from headroom_provider.operators._audit import audit
        from include.headroom.audit import AuditRecord, Status

        settings = _settings().cdn
        distribution = self.distribution_id or settings.distribution_id
        if not distribution:
            raise ValueError("distribution_id is not set and cache.yaml cdn.distribution_id is empty")
        hook = CloudFrontHook(aws_conn_id=self.aws_conn_id or settings.cloudfront_conn_id)
        invalidation = hook.create_invalidation(distribution, list(self.paths))
        status = hook.wait_invalidation(distribution, invalidation["Id"], timeout_s=self.wait_timeout_s)
        reason = f"invalidated {len(self.paths)} paths on {distribution}: {invalidation['Id']} {status}"
        audit(context, AuditRecord(kind="cache", service=self.service, action="invalidate", status=Status.APPLIED, dry_run=False,
                                   executor="cloudfront", reason=reason, after={"invalidation_id": invalidation["Id"], "status": status},
                                   detail={"distribution_id": distribution, "paths": list(self.paths)}))
        self.log.info("%s: %s", self.service, reason)
        return {"service": self.service, "distribution_id": distribution, "invalidation_id": invalidation["Id"], "status": status}
