"""Connector framework: quota, incremental watermark, idempotent landing, crash safety."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from include.headroom.connectors.base import CapacityExportConnector, Record, TokenBucket, read_watermark, sync
from include.headroom.exceptions import ActionError, InvalidArgumentError


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_token_bucket_waits_for_refill():
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, capacity=2, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        bucket.acquire()
    assert clock.sleeps == pytest.approx([0.1, 0.1])
    assert bucket.waited_s == pytest.approx(0.2)
    with pytest.raises(InvalidArgumentError, match="rate > 0"):
        TokenBucket(rate=0, capacity=1)


def _capacity(store, run_date, services=("a", "b", "c")):
    store.upsert("capacity", pd.DataFrame([{
        "run_date": run_date, "service": s, "tier": "basic", "metric": "throughput", "model": "holt_winters", "scores": "{}",
        "mape": 0.1, "trusted": True, "data_points": 1, "capacity_limit": 1.0, "last_value": 1.0, "saturation_at": None,
        "saturation_at_upper": None, "saturation_probability": 0.0, "replicas_needed_peak": 1, "max_replicas_enough": True,
        "cost_now_month": 10.0, "cost_forecast_month": 12.0, "status": "ok", "reason": "",
        "mase": 0.8, "coverage": 0.8, "hours_over_max": 0, "cost_recommended_month": 11.0,
    } for s in services]))


def test_sync_is_incremental_and_idempotent(store, tmp_path):
    connector = CapacityExportConnector(store, tmp_path / "outbox", page_size=2)
    _capacity(store, "2026-11-01")
    first = sync(store, connector, "capacity", TokenBucket(100, 100))
    assert (first.read, first.written, first.pages, first.failed) == (3, 3, 2, 0)
    assert read_watermark(store, "connector:capacity_export:capacity") == pd.Timestamp("2026-11-01", tz="UTC")
    again = sync(store, connector, "capacity", TokenBucket(100, 100))
    assert (again.read, again.written) == (0, 0)
    _capacity(store, "2026-11-02", services=("a",))
    third = sync(store, connector, "capacity", TokenBucket(100, 100))
    assert third.read == 1 and third.watermark_after.startswith("2026-11-02")
    assert store.count("connector_records") == 4
    doc = json.loads((tmp_path / "outbox" / "capacity" / "2026-11-02" / "a__throughput.json").read_text())
    assert doc["cost_forecast_month"] == 12.0


class FailingConnector:
    """Lands fine, then the remote refuses the write: the watermark must not move."""

    name = "failing"

    def read_changes(self, obj, since):
        yield [Record("r1", "1", pd.Timestamp("2026-11-01", tz="UTC"), {"x": 1})]

    def write(self, obj, records):
        raise ConnectionError("remote down")


def test_a_crash_after_landing_leaves_the_watermark(store):
    with pytest.raises(ConnectionError):
        sync(store, FailingConnector(), "things", TokenBucket(100, 100))
    assert read_watermark(store, "connector:failing:things") is None
    assert store.count("connector_records") == 1  # landed; a re-run re-reads and replaces it


def test_unknown_object_is_named(store, tmp_path):
    with pytest.raises(ActionError, match="no object 'invoices'"):
        list(CapacityExportConnector(store, tmp_path).read_changes("invoices", None))


def test_token_bucket_takes_a_batch_larger_than_itself_at_the_average_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=100.0, capacity=100, clock=clock, sleep=clock.sleep)
    bucket.acquire(100)  # the full bucket: no wait
    bucket.acquire(250)  # 250 more at 100/s: 2.5 s
    bucket.acquire(50)
    assert clock.sleeps == pytest.approx([2.5, 0.5])
    clock.now += 10  # idle: refilled to the capacity, not beyond
    bucket.acquire(100)
    assert clock.sleeps == pytest.approx([2.5, 0.5]) and bucket.waited_s == pytest.approx(3.0)
