"""Both store backends, the embedded Parquet store and PostgreSQL (a real temporary cluster), keep the same promises."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from include.headroom.exceptions import ConfigError, SchemaError, StoreError
from include.headroom.metrics.sources import SampleFleetSource
from include.headroom.steps.ingest import ingest
from include.headroom.store import ParquetStore, open_store
from include.headroom.store.postgres import PostgresStore, translate_placeholders
from tests.conftest import ANCHOR


def _pg(dsn: str, schema: str) -> PostgresStore:
    import psycopg

    return PostgresStore(lambda: psycopg.connect(dsn), schema=schema)


def _rows(start="2026-11-01T00:00Z", periods=6, value=1.0, service="catalog-api"):
    ts = pd.date_range(start, periods=periods, freq="5min")
    return pd.DataFrame({"ts": ts, "service": service, "tier": "standard", "metric": "cpu_utilization", "value": value,
                         "unit": "percent", "source": "test", "labels": "", "batch_id": "b1"})


def test_upsert_twice_replaces_instead_of_duplicating(any_store):
    first = any_store.upsert("metrics", _rows())
    assert (first.inserted, first.updated, first.partitions) == (6, 0, 1)
    second = any_store.upsert("metrics", _rows(value=2.0))
    assert (second.inserted, second.updated) == (0, 6)
    stored = any_store.read_metrics()
    assert len(stored) == 6 and stored["value"].tolist() == [2.0] * 6
    assert str(stored["ts"].dtype) == "datetime64[us, UTC]" and stored["ts"].iloc[0] == pd.Timestamp("2026-11-01T00:00Z")


def test_special_values_round_trip(any_store):
    odd = _rows(periods=4).assign(value=[float("inf"), float("-inf"), float("nan"), 1.5],
                                  labels=["", 'a=1,b="x, y"', "", ""], service=["s1", "s1", "s,2", "s'3"])
    any_store.upsert("metrics", odd)
    back = any_store.read_metrics().sort_values("value", na_position="last").reset_index(drop=True)
    assert back["value"].tolist()[:3] == [float("-inf"), 1.5, float("inf")] and back["value"].isna().tolist() == [False] * 3 + [True]
    assert sorted(back["labels"]) == ["", "", "", 'a=1,b="x, y"'] and sorted(back["service"]) == ["s'3", "s,2", "s1", "s1"]


def test_overlapping_upsert_counts_new_and_replaced_rows(any_store):
    any_store.upsert("metrics", _rows(start="2026-11-01T23:45Z", periods=6))
    overlap = any_store.upsert("metrics", _rows(start="2026-11-02T00:00Z", periods=4, value=5.0))
    assert (overlap.inserted, overlap.updated) == (1, 3)
    assert any_store.count("metrics") == 7


def test_labels_are_part_of_the_key(any_store):
    any_store.upsert("metrics", _rows())
    any_store.upsert("metrics", _rows().assign(labels="quantile=p99"))
    assert any_store.count("metrics") == 12


def test_rows_repeating_a_key_are_refused(any_store):
    with pytest.raises(StoreError, match=r"2 rows repeat a key"):
        any_store.upsert("metrics", pd.concat([_rows(periods=2), _rows(periods=1)]))
    assert any_store.count("metrics") == 0


def test_missing_column_is_named(any_store):
    with pytest.raises(SchemaError, match=r"lack required columns \['unit'\]"):
        any_store.upsert("metrics", _rows().drop(columns=["unit"]))


def test_replace_partition_and_delete(any_store):
    staged = _rows()
    any_store.replace_partition("staging", "b1", staged)
    any_store.replace_partition("staging", "b2", staged.assign(batch_id="b2"))
    any_store.replace_partition("staging", "b1", staged.head(2))
    assert any_store.count("staging") == 8
    any_store.replace_partition("staging", "b1", staged.head(0))
    assert any_store.read("staging")["batch_id"].unique().tolist() == ["b2"]
    any_store.upsert("metrics", _rows())
    assert any_store.delete("metrics", _rows(periods=2)[["service", "metric", "ts", "labels"]]) == 2
    assert any_store.count("metrics") == 4


def test_empty_tables_are_queryable_with_their_columns(any_store):
    assert any_store.count("findings") == 0
    empty = any_store.read("audit")
    assert list(empty.columns)[:3] == ["audit_id", "created_at", "kind"] and empty.empty
    assert any_store.files("metrics") == []


def test_queries_take_qmark_placeholders_and_percent_literals(any_store):
    any_store.upsert("metrics", pd.concat([_rows(), _rows(service="orders-api", value=3.0)]))
    got = any_store.query("SELECT service, count(*) AS n, max(value) AS top FROM metrics WHERE service LIKE 'ord%' AND ts >= ? "
                          "AND labels = '' GROUP BY service", [pd.Timestamp("2026-11-01T00:10Z")])
    assert got.to_dict("records") == [{"service": "orders-api", "n": 4, "top": 3.0}]
    assert translate_placeholders("SELECT '?', \"a?\" FROM t WHERE x = ? AND y LIKE '5%'") == \
        "SELECT '?', \"a?\" FROM t WHERE x = %s AND y LIKE '5%%'"


def test_ingest_twice_gives_the_same_store_content(any_store, config):
    source = SampleFleetSource(config, anchor=ANCHOR, now=ANCHOR)
    start, end = pd.Timestamp(ANCHOR) - pd.Timedelta(hours=1), pd.Timestamp(ANCHOR)
    mark = start + pd.Timedelta(seconds=config.pipeline.lookback_s)
    any_store.upsert("watermarks", pd.DataFrame([{"source": "source:sample_fleet", "watermark": mark, "updated_at": mark}]))
    first = ingest(any_store, config, source, start.tz_localize("UTC"), end.tz_localize("UTC")).to_xcom()
    staged = any_store.query("SELECT * FROM staging ORDER BY service, metric, ts")
    second = ingest(any_store, config, source, start.tz_localize("UTC"), end.tz_localize("UTC")).to_xcom()
    assert first["batch_id"] == second["batch_id"] and first["rows"] == second["rows"] == 12 * 9 * 12
    pd.testing.assert_frame_equal(staged, any_store.query("SELECT * FROM staging ORDER BY service, metric, ts"))
    assert first["new_rows"] == len(staged)
    any_store.upsert("metrics", staged)
    assert ingest(any_store, config, source, start.tz_localize("UTC"), end.tz_localize("UTC")).new_rows == 0
    assert any_store.count("metrics") == len(staged)


def test_postgres_tables_carry_a_unique_constraint_on_the_key(postgres_server):
    store = _pg(postgres_server.dsn, f"t_{uuid.uuid4().hex[:10]}")
    try:
        store.count("metrics")
        got = store.query("SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                          "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = ? AND t.relname = 'metrics'", [store.schema])
        assert got["def"].tolist() == ["UNIQUE NULLS NOT DISTINCT (service, metric, ts, labels)"]
    finally:
        store.drop_schema()


def test_open_store_selects_the_backend(monkeypatch, postgres_server, tmp_path):
    monkeypatch.setenv("HEADROOM_STORE_BACKEND", "parquet")
    assert isinstance(open_store(tmp_path), ParquetStore)
    monkeypatch.setenv("HEADROOM_STORE_BACKEND", "postgres")
    monkeypatch.delenv("HEADROOM_POSTGRES_DSN", raising=False)
    with pytest.raises(ConfigError, match="needs HEADROOM_POSTGRES_DSN"):
        open_store()
    monkeypatch.setenv("HEADROOM_POSTGRES_DSN", postgres_server.dsn)
    store = open_store()
    assert isinstance(store, PostgresStore) and store.schema == "headroom" and store.count("metrics") == 0
    store.drop_schema()
    monkeypatch.setenv("HEADROOM_STORE_BACKEND", "mysql")
    with pytest.raises(ConfigError, match=r"store.yaml backend='mysql' must be one of \['parquet', 'postgres'\]"):
        open_store()


def test_an_unreachable_postgres_is_a_store_error():
    store = _pg("host=127.0.0.1 port=1 user=x dbname=x connect_timeout=2", "t_x")
    with pytest.raises(StoreError, match="cannot connect to the PostgreSQL store"):
        store.count("metrics")


def test_validation_results_and_gates_on_both_backends(any_store, config, fleet, tmp_path):
    """A batch validated into either backend: rows are conserved, and the gate refuses only the broken service."""
    from include.headroom.validation.gates import service_freshness
    from include.headroom.validation.results import validate_rows

    start, end, now = pd.Timestamp("2026-10-31T23:00Z"), pd.Timestamp("2026-11-01T00:00Z"), pd.Timestamp("2026-11-01T00:05Z")
    rows = fleet.generate(start, end).reset_index(drop=True)
    broken = (rows["service"] == "orders-api") & rows["metric"].isin(["cpu_utilization", "error_rate", "cache_hit_ratio"])
    rows.loc[broken, "value"] = 250.0
    summary = validate_rows(any_store, config, rows, "hour-1", "test", start, end, now=now, reports_dir=tmp_path)
    assert (summary["status"], summary["failed_services"]) == ("failed", ["orders-api"])
    assert any_store.count("metrics") + any_store.count("quarantine") == len(rows)
    assert any_store.count("quarantine") == int(broken.sum())
    gate = service_freshness(any_store, config, now)
    assert gate["orders-api"] and "validation" in gate["orders-api"]
    assert {name for name, reason in gate.items() if reason} == {"orders-api"}


def test_lock_excludes_a_second_holder_until_released(any_store):
    """Another process's (here: thread's, on its own connection or file handle) ``lock`` of the same name waits for the first."""
    import threading
    import time

    events = []

    def second() -> None:
        with any_store.lock("watermark:source:x"):
            events.append("second acquired")

    with any_store.lock("watermark:source:x"):
        other = threading.Thread(target=second)
        other.start()
        time.sleep(0.5)
        with any_store.lock("another name"):  # other names are independent
            events.append("other name acquired")
        events.append("first released")
    other.join(timeout=10)
    assert events == ["other name acquired", "first released", "second acquired"]


def _fc(services: list[str], value: float, run_date: str = "2026-11-01", hours: int = 3) -> pd.DataFrame:
    ds = pd.date_range("2026-11-01T01:00Z", periods=hours, freq="h")
    return pd.concat([pd.DataFrame({"run_date": run_date, "service": s, "metric": "throughput", "model": "m", "ds": ds, "yhat": value,
                                    "yhat_lower": value - 1, "yhat_upper": value + 1, "replicas": float("nan")}) for s in services],
                     ignore_index=True)


def test_mapped_tasks_upsert_forecasts_side_by_side_by_key(any_store):
    a = any_store.upsert("forecasts", _fc(["a1", "a2"], 1.0))
    b = any_store.upsert("forecasts", _fc(["b1"], 2.0))
    assert (a.inserted, a.updated, b.inserted, b.updated) == (6, 0, 3, 0)
    # The first task run again, with one service more and new values: its keys are replaced, the other task's rows stay.
    again = any_store.upsert("forecasts", _fc(["a1", "a2", "a3"], 5.0))
    assert (again.inserted, again.updated) == (3, 6)
    stored = any_store.read("forecasts")
    assert len(stored) == 12
    assert stored.groupby("service")["yhat"].unique().map(list).to_dict() == {"a1": [5.0], "a2": [5.0], "a3": [5.0], "b1": [2.0]}
    # A part holding a service rewritten by another upsert keeps its other services.
    any_store.upsert("forecasts", _fc(["a2"], 7.0))
    stored = any_store.read("forecasts")
    assert len(stored) == 12 and stored.groupby("service")["yhat"].first().to_dict() == {"a1": 5.0, "a2": 7.0, "a3": 5.0, "b1": 2.0}
    assert any_store.delete("forecasts", stored[stored["service"] == "a1"][["run_date", "service", "metric", "ds"]]) == 3
    assert sorted(any_store.read("forecasts")["service"].unique()) == ["a2", "a3", "b1"]


def test_parquet_forecast_parts_leave_other_tasks_files_untouched(tmp_path):
    store = ParquetStore(tmp_path)
    store.upsert("forecasts", _fc(["a1", "a2"], 1.0))
    store.upsert("forecasts", _fc(["b1"], 2.0))
    parts = store.files("forecasts")
    assert [p.name.startswith("part-") for p in parts] == [True, True] and parts[0].parent.name == "run_date=2026-11-01"
    before = {p: p.stat().st_mtime_ns for p in parts}
    b_part = next(p for p in parts if len(pd.read_parquet(p)) == 3)
    store.upsert("forecasts", _fc(["a1", "a2"], 3.0))  # the first task again: the b1 part is not rewritten
    assert b_part.exists() and b_part.stat().st_mtime_ns == before[b_part]
    assert len(store.files("forecasts")) == 2 and store.count("forecasts") == 9
    # A data.parquet written before parts existed (no footer listing) is found by its column and its keys replaced.
    legacy = tmp_path / "forecasts" / "run_date=2026-11-02" / "data.parquet"
    legacy.parent.mkdir()
    _fc(["a1", "b1"], 4.0, run_date="2026-11-02").to_parquet(legacy)
    result = store.upsert("forecasts", _fc(["a1"], 9.0, run_date="2026-11-02"))
    assert (result.inserted, result.updated) == (0, 3)
    day2 = store.read("forecasts", run_date="2026-11-02")
    assert day2.groupby("service")["yhat"].first().to_dict() == {"a1": 9.0, "b1": 4.0} and len(day2) == 6


def _fleet_frame(services: list[str], start: str, points: int, value: float) -> pd.DataFrame:
    """``services`` x 4 metrics x ``points`` 5-minute points, time-major like a simulated fleet, with special values mixed in."""
    import numpy as np

    metrics = ["cpu_utilization", "response_time", "throughput", "error_rate"]
    ts = pd.date_range(start, periods=points, freq="5min", tz="UTC")
    frame = pd.DataFrame([(t, s, m) for t in ts for s in services for m in metrics], columns=["ts", "service", "metric"])
    n = len(frame)
    values = value + np.arange(n) / 7.0
    values[::101], values[50::211], values[70::307] = float("nan"), float("inf"), float("-inf")
    return frame.assign(tier="standard", value=values, unit="percent", source=np.where(np.arange(n) % 5, "sample", 'q"uote, comma'),
                        labels=np.where(frame["metric"] == "response_time", "quantile=p99", ""), batch_id=f"b{value:g}")


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    from include.headroom.metrics.schema import table

    return table("metrics").conform(frame)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    key = ["service", "metric", "ts", "labels"]
    out = frame.sort_values(key).reset_index(drop=True)
    return out.assign(**{c: out[c].astype(object) for c in out.columns if c not in ("ts", "value")})


def test_large_overlapping_upserts_give_the_table_last_write_wins_would(any_store, monkeypatch):
    """Frames of many COPY blocks, the second overlapping the first in services and time: the stored table is the
    union with the second frame's values where keys repeat, the same on both backends, and the counts say which were new."""
    from include.headroom.store import postgres

    monkeypatch.setattr(postgres, "COPY_CHUNK", 1_000)  # many blocks on PostgreSQL without a frame of millions of rows
    names = ["svc-a", "svc,b", "svc'c", 'svc"d', "svc\ne", "svc-f", "svc-g", "svc-h"]
    first = _fleet_frame(names[:6], "2026-11-01T00:00Z", 300, 1.0)  # 7,200 rows
    second = _fleet_frame(names[3:], "2026-11-01T12:30Z", 300, 2.0)  # half the services and half the points overlap
    assert any_store.upsert("metrics", first).inserted == len(first)
    result = any_store.upsert("metrics", second)
    overlap = 3 * 4 * 150
    assert (result.inserted, result.updated) == (len(second) - overlap, overlap)
    expected = _conform(pd.concat([first, second]).drop_duplicates(["service", "metric", "ts", "labels"], keep="last"))
    stored = any_store.read("metrics")
    assert len(stored) == len(first) + len(second) - overlap == any_store.count("metrics")
    pd.testing.assert_frame_equal(_sorted(stored), _sorted(expected))


def test_large_upsert_repeating_a_key_is_refused_and_writes_nothing(any_store):
    before = _fleet_frame(["svc-a"], "2026-11-01T00:00Z", 100, 1.0)
    any_store.upsert("metrics", before)
    repeated = _fleet_frame(["svc-a", "svc-b"], "2026-11-01T00:00Z", 2_000, 3.0)
    with pytest.raises(StoreError, match=r"table 'metrics': 2 rows repeat a key"):
        any_store.upsert("metrics", pd.concat([repeated, repeated.iloc[[9_000]]]))
    pd.testing.assert_frame_equal(_sorted(any_store.read("metrics")), _sorted(_conform(before)))


def test_postgres_upsert_failing_midway_leaves_the_table_unchanged(postgres_server, monkeypatch):
    """A value PostgreSQL refuses (a NUL character in text) in a late COPY block of a large upsert: the error names the
    table and the value, and the rows already in the table are exactly as they were (one transaction)."""
    from include.headroom.store import postgres

    monkeypatch.setattr(postgres, "COPY_CHUNK", 1_000)
    store = _pg(postgres_server.dsn, f"t_{uuid.uuid4().hex[:10]}")
    try:
        before = _fleet_frame(["svc-a", "svc-b"], "2026-11-01T00:00Z", 500, 1.0)  # 4,000 rows
        store.upsert("metrics", before)
        bad = _fleet_frame(["svc-a", "svc-b", "svc-c"], "2026-11-01T00:00Z", 1_000, 5.0)  # replaces them all and adds 8,000
        bad.loc[10_500, "labels"] = "zone=a\x00b"
        with pytest.raises(StoreError, match=r"upsert into 'metrics' failed: .*0x00"):
            store.upsert("metrics", bad)
        pd.testing.assert_frame_equal(_sorted(store.read("metrics")), _sorted(_conform(before)))
        staged = _fleet_frame(["svc-a"], "2026-11-01T00:00Z", 500, 1.0).assign(batch_id="b1")
        store.replace_partition("staging", "b1", staged)
        with pytest.raises(StoreError, match=r"replace partition 'b1' of 'staging' failed"):
            store.replace_partition("staging", "b1", bad.assign(batch_id="b1"))
        kept = store.read("staging")
        assert kept["ts_naive"].eq(False).all()
        pd.testing.assert_frame_equal(_sorted(kept.drop(columns="ts_naive")), _sorted(_conform(staged)))
    finally:
        store.drop_schema()


def test_parquet_rerun_reads_only_the_keys_of_a_part_it_replaces_whole(tmp_path, monkeypatch):
    store = ParquetStore(tmp_path)
    store.upsert("forecasts", _fc(["a1", "a2"], 1.0))
    store.upsert("forecasts", _fc(["b1", "a3"], 2.0))
    full_reads = []
    real = ParquetStore._read_file
    monkeypatch.setattr(ParquetStore, "_read_file", lambda self, spec, path: full_reads.append(path) or real(self, spec, path))
    rerun = store.upsert("forecasts", _fc(["a1", "a2"], 3.0))  # every key of the first part replaced: the file goes
    assert (rerun.inserted, rerun.updated) == (0, 6) and full_reads == []
    some = store.upsert("forecasts", _fc(["a3"], 4.0))  # half of the b1 + a3 part: that one file is read and rewritten
    assert (some.inserted, some.updated) == (0, 3) and len(full_reads) == 1
    monkeypatch.undo()
    stored = store.read("forecasts")
    assert len(stored) == 12 and stored.groupby("service")["yhat"].first().to_dict() == {"a1": 3.0, "a2": 3.0, "a3": 4.0, "b1": 2.0}
    assert len(store.files("forecasts")) == 3  # the rerun's part, the rewritten b1 part, the a3 part
