"""The store: reads and clear errors on both backends (``any_store``); partitions and file races of the embedded one.

Upserts, partitions replaced and deletes on both backends: ``test_store_backends.py``.
"""

from __future__ import annotations

import pandas as pd
import pytest

from include.headroom.exceptions import SchemaError, StoreError


def _rows(start="2026-11-01T00:00Z", periods=6, value=1.0, service="catalog-api"):
    ts = pd.date_range(start, periods=periods, freq="5min")
    return pd.DataFrame({"ts": ts, "service": service, "tier": "standard", "metric": "cpu_utilization", "value": value,
                         "unit": "percent", "source": "test", "labels": "", "batch_id": "b1"})


def test_rows_spanning_midnight_land_in_two_date_partitions(store):
    result = store.upsert("metrics", _rows(start="2026-11-01T23:45Z", periods=6))
    assert result.partitions == 2
    assert sorted(p.parent.name for p in store.files("metrics")) == ["date=2026-11-01", "date=2026-11-02"]
    overlap = store.upsert("metrics", _rows(start="2026-11-02T00:00Z", periods=4, value=5.0))
    assert (overlap.inserted, overlap.updated) == (1, 3)
    assert store.count("metrics") == 7


def test_read_metrics_filters_by_time_and_series(any_store):
    any_store.upsert("metrics", pd.concat([_rows(), _rows(service="orders-api")]))
    part = any_store.read_metrics(services=["orders-api"], start="2026-11-01T00:10Z", end="2026-11-01T00:20Z")
    assert part["service"].unique().tolist() == ["orders-api"]
    assert [t.strftime("%H:%M") for t in part["ts"]] == ["00:10", "00:15"]


def test_non_numeric_value_is_named(any_store):
    with pytest.raises(SchemaError, match="column 'value' cannot be read as float64"):
        any_store.upsert("metrics", _rows().assign(value="fast"))


def test_unknown_table_is_named(any_store):
    with pytest.raises(SchemaError, match="unknown table 'nope'"):
        any_store.read("nope")


def test_query_survives_a_partition_removed_after_listing(store, monkeypatch):
    """A concurrent task empties a staging batch between the query's file listing and DuckDB opening it."""
    a, b = _rows().assign(batch_id="a"), _rows(service="orders-api").assign(batch_id="b")
    store.replace_partition("staging", "a", a)
    store.replace_partition("staging", "b", b)
    listed = store._relation_sql
    removed = []

    def list_then_remove(spec):
        sql = listed(spec)
        if spec.name == "staging" and not removed:
            store.replace_partition("staging", "a", a.iloc[0:0])  # the other writer, after the listing
            removed.append(True)
        return sql

    monkeypatch.setattr(store, "_relation_sql", list_then_remove)
    assert store.query("SELECT batch_id, count(*) AS n FROM staging GROUP BY batch_id").to_dict("records") == [{"batch_id": "b", "n": 6}]
    assert removed == [True]


def test_query_gives_up_on_a_file_that_keeps_vanishing(store, monkeypatch):
    store.replace_partition("staging", "a", _rows().assign(batch_id="a"))
    monkeypatch.setattr(store, "_relation_sql", lambda spec: "SELECT * FROM read_parquet('/nonexistent/headroom/data.parquet')")
    with pytest.raises(StoreError, match="No files found|No such file"):
        store.query("SELECT count(*) FROM staging", attempts=2)
