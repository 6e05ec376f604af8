"""Cache operators through the real provider hooks: Redis via RedisHook against a real redis-server, the CDN warmer against
the local stand-in, CloudFront invalidations via AwsBaseHook against moto in server mode; each run lands in the audit trail."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from include.headroom.store import ParquetStore
from tests.servers import RedisServer, moto_server, origin_stand_in, redis_server  # noqa: F401 (fixtures)

AS_OF = pd.Timestamp("2026-11-20T12:00:00Z")


@pytest.fixture
def context(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADROOM_DATA_DIR", str(tmp_path / "data"))
    ti = SimpleNamespace(dag_id="cache_warming", run_id="manual__test", task_id="warm_cache", map_index=-1)
    return {"ti": ti}


def _audit(tmp_path) -> pd.DataFrame:
    return ParquetStore(tmp_path / "data" / "store").read("audit", kind="cache")


def _plan(config, keys: int = 50) -> dict:
    from include.headroom.cache.access_log import sample_access_log
    from include.headroom.cache.settings import load_cache_settings
    from include.headroom.cache.warming import plan_warming, rank_hot_keys
    from include.headroom.metrics.sample_fleet import SampleFleet

    settings = load_cache_settings()
    log = sample_access_log(SampleFleet(config), settings.access_log, "catalog-api", AS_OF - pd.Timedelta(hours=1), AS_OF)
    ranked = rank_hot_keys(log, AS_OF, settings.warming.half_life_s, 300.0)[:keys]
    plan = plan_warming(config, config.service("catalog-api"), "cache_loss", 0.9, 0.05, 10**8, ranked, settings, 300.0)
    return {**plan.to_dict(), "triggers": ["cache_bound", "cache_loss"], "as_of": AS_OF.isoformat()}


def test_redis_warming_through_redishook_is_audited(config, context, tmp_path, monkeypatch, redis_server):
    from headroom_provider.operators.cache import WarmCacheOperator

    client = redis_server.client()
    client.flushall()
    monkeypatch.setenv("AIRFLOW_CONN_CACHE_TEST", redis_server.conn_uri())
    plan = _plan(config)
    out = WarmCacheOperator(task_id="warm_cache", plan=plan, dry_run=False, redis_conn_id="cache_test").execute(context)
    assert (out["status"], out["warmed"], out["errors"]) == ("complete", 50, 0)
    assert client.dbsize() == 50 and all(client.ttl(k) > 0 for k, _, _ in plan["entries"])
    row = _audit(tmp_path).iloc[0]
    assert (row["action"], row["status"], row["executor"], bool(row["dry_run"])) == ("warm", "applied", "redis", False)
    after, before = json.loads(row["after"]), json.loads(row["before"])
    assert after["warmed"] == 50 and after["bytes"] == plan["bytes"]
    assert after["hit_ratio"] > before["hit_ratio"] >= 0  # replay of the log's newest requests
    detail = json.loads(row["detail"])
    assert detail["result"]["duration_s"] >= 0 and detail["triggers"] == ["cache_bound", "cache_loss"]
    assert row["reason"].startswith("cache_loss: complete: 50/50 keys warmed")
    client.flushall()


def test_redis_down_fails_the_task_and_records_it(config, context, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowException

    from headroom_provider.operators.cache import WarmCacheOperator
    from include.headroom.config import CONFIG_DIR

    configs = tmp_path / "config"
    configs.mkdir()
    for f in Path(CONFIG_DIR).glob("*.yaml"):
        (configs / f.name).write_text(f.read_text())
    text = (configs / "cache.yaml").read_text()
    (configs / "cache.yaml").write_text(text.replace("  retries: 3\n  backoff_s: 0.5\norigin:", "  retries: 1\n  backoff_s: 0.01\norigin:"))
    monkeypatch.setenv("HEADROOM_CONFIG_DIR", str(configs))
    server = RedisServer().start()
    monkeypatch.setenv("AIRFLOW_CONN_CACHE_DOWN", server.conn_uri())
    server.stop()
    with pytest.raises(
        AirflowException,
        match="cache warming of catalog-api failed: cache_loss: failed: 0/50 keys warmed.*redis unavailable after 2 attempts",
    ):
        WarmCacheOperator(task_id="warm_cache", plan=_plan(config), dry_run=False, redis_conn_id="cache_down").execute(context)
    row = _audit(tmp_path).iloc[0]
    assert (row["status"], json.loads(row["after"])["warmed"]) == ("failed", 0)


def test_dry_run_and_no_trigger_write_nothing(config, context, tmp_path):
    from headroom_provider.operators.cache import WarmCacheOperator

    out = WarmCacheOperator(task_id="warm_cache", plan=_plan(config), dry_run="true").execute(context)
    assert out == {"service": "catalog-api", "status": "dry_run", "keys": 50}
    skipped = WarmCacheOperator(
        task_id="warm_cache", plan={"service": "orders-api", "trigger": None, "skip_reason": "no trigger"}, dry_run=False
    ).execute(context)
    assert skipped["status"] == "skipped"
    assert sorted(_audit(tmp_path)["status"]) == ["dry_run", "skipped"]
    with pytest.raises(ValueError, match=r"dry_run='maybe' must be true or false"):
        WarmCacheOperator(task_id="warm_cache", plan=_plan(config), dry_run="maybe").execute(context)


def test_cdn_warming_through_cdnhook(context, tmp_path, monkeypatch, origin_stand_in):
    from headroom_provider.hooks.cache import CdnHook
    from headroom_provider.operators.cache import WarmCdnOperator

    port = origin_stand_in.url.rsplit(":", 1)[1]
    monkeypatch.setenv("AIRFLOW_CONN_CDN_TEST", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": int(port), "schema": "http"}))
    assert CdnHook("cdn_test").base_url() == origin_stand_in.url
    assert CdnHook("cdn_test").test_connection()[0] is True
    paths = [f"/catalog-api:item:{i}" for i in range(1, 21)]
    out = WarmCdnOperator(task_id="warm_cdn", service="catalog-api", paths=paths, cdn_conn_id="cdn_test").execute(context)
    assert (out["status"], out["warmed"], out["hit_ratio_before"], out["hit_ratio_after"]) == ("complete", 20, 0.0, 1.0)
    row = _audit(tmp_path).iloc[0]
    assert (row["action"], row["executor"], json.loads(row["after"])["bytes"]) == ("warm_cdn", "cdn", 20 * 1024)
    with pytest.raises(ValueError, match=r"paths \['no-slash'\] must be strings starting with '/'"):
        WarmCdnOperator(task_id="warm_cdn", service="catalog-api", paths=["no-slash"], cdn_conn_id="cdn_test").execute(context)


def test_cloudfront_invalidation_against_moto(context, tmp_path, monkeypatch, moto_server):
    import boto3

    from headroom_provider.operators.cache import InvalidateCdnOperator

    monkeypatch.setenv("AIRFLOW_CONN_AWS_MOTO", moto_server.aws_conn())
    cloudfront = boto3.client("cloudfront", endpoint_url=moto_server.url, region_name="us-east-1")
    origin = {
        "Id": "origin",
        "DomainName": "origin.example.com",
        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"},
    }
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "headroom-test",
            "Origins": {"Quantity": 1, "Items": [origin]},
            "Comment": "",
            "Enabled": True,
            "DefaultCacheBehavior": {"TargetOriginId": "origin", "ViewerProtocolPolicy": "allow-all", "MinTTL": 0},
        }
    )["Distribution"]["Id"]
    out = InvalidateCdnOperator(
        task_id="invalidate",
        service="catalog-api",
        paths=["/catalog/*", "/img/logo.png"],
        distribution_id=distribution,
        aws_conn_id="aws_moto",
        wait_timeout_s=30,
    ).execute(context)
    listed = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    assert listed["Quantity"] == 1 and listed["Items"][0]["Id"] == out["invalidation_id"]
    paths = cloudfront.get_invalidation(DistributionId=distribution, Id=out["invalidation_id"])["Invalidation"]["InvalidationBatch"][
        "Paths"
    ]
    assert sorted(paths["Items"]) == ["/catalog/*", "/img/logo.png"]
    row = _audit(tmp_path).iloc[0]
    assert (row["action"], row["executor"], row["status"]) == ("invalidate", "cloudfront", "applied")
    with pytest.raises(ValueError, match="must be a non-empty list of paths starting with '/'"):
        InvalidateCdnOperator(
            task_id="invalidate", service="catalog-api", paths=["catalog"], distribution_id=distribution, aws_conn_id="aws_moto"
        ).execute(context)
