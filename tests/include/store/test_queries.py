"""The named queries give the same answers on both backends, including those whose SQL differs per dialect."""

from __future__ import annotations

import ast
import re
import uuid

import pandas as pd
import pytest

from include.headroom.store import Dialect, ParquetStore, PostgresStore, in_list, queries
from tests.conftest import PROJECT_ROOT

NOW = pd.Timestamp("2026-11-01T02:00Z")


def _metrics(service: str, metric: str, values: list[float], end: pd.Timestamp = NOW, labels: str = "") -> pd.DataFrame:
    ts = pd.date_range(end=end, periods=len(values), freq="5min")
    return pd.DataFrame({"ts": ts, "service": service, "tier": "standard", "metric": metric, "value": values, "unit": "count",
                         "source": "test", "labels": labels, "batch_id": "b1"})


def _forecasts(run_date: str, service: str, replicas: float, start: str = "2026-10-31T00:00Z", hours: int = 30) -> pd.DataFrame:
    ds = pd.date_range(start, periods=hours, freq="1h")
    return pd.DataFrame({"run_date": run_date, "service": service, "metric": "throughput", "model": "seasonal_naive", "ds": ds,
                         "yhat": 10.0, "yhat_lower": 8.0, "yhat_upper": 12.0, "replicas": replicas})


def _accuracy(run_date: str, service: str, mape: float, coverage: float, points: int) -> dict:
    return {"run_date": run_date, "service": service, "metric": "throughput", "model": "fourier_trend", "horizon_days": 1,
            "points": points, "mae": 1.0, "mape": mape, "coverage": coverage, "scored_at": NOW}


def _fill(store) -> None:
    store.upsert("metrics", pd.concat([
        _metrics("a-api", "replicas", [2, 3, 4]),
        _metrics("b-api", "replicas", [7, 6], end=NOW - pd.Timedelta(hours=3)),
        _metrics("c-api", "replicas", [9], end=NOW - pd.Timedelta(days=2)),  # older than a day: no current value
        _metrics("a-api", "throughput", [10.0] * 3 + [20.0] * 3, end=NOW),
        _metrics("a-api", "throughput", [4.0, 8.0], end=pd.Timestamp("2026-10-31T12:00Z")),
    ], ignore_index=True))
    store.upsert("forecasts", pd.concat([
        _forecasts("2026-10-30", "a-api", 3.0), _forecasts("2026-10-31", "a-api", 5.0, start="2026-10-31T06:00Z"),
        _forecasts("2026-10-31", "b-api", 2.0), _forecasts("2026-11-01", "a-api", 9.0, start="2026-11-01T00:00Z"),
    ], ignore_index=True))
    store.upsert("forecast_accuracy", pd.DataFrame([
        _accuracy("2026-10-30", "a-api", 0.1, 0.8, 20), _accuracy("2026-10-30", "b-api", 0.3, 0.6, 24),
        _accuracy("2026-10-30", "c-api", 0.2, 0.9, 24), _accuracy("2026-10-31", "a-api", 0.05, 1.0, 12),
    ]))


@pytest.fixture(scope="module")
def stores(postgres_server, tmp_path_factory):
    """The same rows in both backends."""
    import psycopg

    parquet = ParquetStore(tmp_path_factory.mktemp("queries") / "store")
    postgres = PostgresStore(lambda: psycopg.connect(postgres_server.dsn), schema=f"t_{uuid.uuid4().hex[:10]}")
    for store in (parquet, postgres):
        _fill(store)
    yield parquet, postgres
    postgres.drop_schema()


def _same(frames: tuple[pd.DataFrame, pd.DataFrame], by: list[str]) -> pd.DataFrame:
    duck, pg = (f.sort_values(by).reset_index(drop=True) for f in frames)
    pd.testing.assert_frame_equal(duck, pg, check_dtype=False)
    return duck


def test_dialects():
    assert (ParquetStore.dialect, PostgresStore.dialect) == (Dialect.DUCKDB, Dialect.POSTGRES)


def test_in_list_never_matches_everything_when_empty():
    assert in_list("service", ("a", "b")) == ("service IN (?, ?)", ["a", "b"])
    assert in_list("service", []) == ("false", [])


def test_newest_value_per_service(stores):
    got = _same(tuple(queries.newest_values(s, "replicas", NOW, NOW - pd.Timedelta(days=1)) for s in stores), ["service"])
    assert dict(zip(got["service"], got["value"], strict=True)) == {"a-api": 4.0, "b-api": 6.0}


def test_replicas_planned_by_the_newest_earlier_run(stores):
    got = _same(tuple(queries.planned_earlier(s, "throughput", "2026-11-01", pd.Timestamp("2026-10-31T00:00Z"), NOW, ["a-api", "b-api"])
                      for s in stores), ["service", "ds"])
    a = got[got["service"] == "a-api"].set_index("ds")["replicas"]
    # 2026-10-31's run covers 06:00 on: it wins there; the hours before keep 2026-10-30's plan; 2026-11-01's run is not earlier
    assert a[pd.Timestamp("2026-10-31T05:00Z")] == 3.0 and a[pd.Timestamp("2026-10-31T06:00Z")] == 5.0
    assert set(a) == {3.0, 5.0} and set(got.loc[got["service"] == "b-api", "replicas"]) == {2.0}
    assert all(q.empty for q in (queries.planned_earlier(s, "throughput", "2026-11-01", NOW, NOW, []) for s in stores))


def test_accuracy_by_run_takes_medians(stores):
    got = _same(tuple(queries.accuracy_by_run(s, "2026-10-31") for s in stores), ["run_date"])
    first = got.iloc[0]
    assert (first["run_date"], first["series"], first["points"], first["mape"], first["coverage"]) == ("2026-10-30", 3, 68.0, 0.2, 0.8)
    assert got["run_date"].tolist() == ["2026-10-30", "2026-10-31"]


def test_daily_means(stores):
    got = _same(tuple(queries.daily_means(s, "throughput", NOW.floor("D")) for s in stores), ["service", "ds"])
    assert got.to_dict("records") == [{"service": "a-api", "ds": pd.Timestamp("2026-10-31T00:00Z"), "y": 6.0}]


def test_latest_capacity_and_forecasts_of_a_run(stores):
    for store in stores:
        capacity, forecasts = queries.latest_capacity(store, NOW, ["a-api"])
        assert capacity.empty and forecasts.empty and "saturation_at" in capacity.columns
    got = _same(tuple(queries.run_forecasts(s, "2026-10-31", "throughput", ["b-api"]) for s in stores), ["service", "ds"])
    assert len(got) == 30 and set(got["replicas"]) == {2.0}
    earlier = _same(tuple(queries.earlier_forecasts(s, "2026-11-01", "2026-10-31", NOW, ["a-api", "b-api"]) for s in stores),
                    ["service", "ds"])
    assert set(earlier["run_date"]) == {"2026-10-31"} and earlier["ds"].max() <= NOW


def test_newest_points_and_lookups(stores):
    got = _same(tuple(queries.newest_points(s, ["a-api", "c-api", "z-api"], NOW) for s in stores), ["service"])
    assert dict(zip(got["service"], got["newest"], strict=True)) == {"a-api": NOW, "c-api": NOW - pd.Timedelta(days=2)}
    recent = _same(tuple(queries.newest_points(s, ["a-api", "c-api"], NOW, since=NOW - pd.Timedelta(hours=1)) for s in stores), ["service"])
    assert recent["service"].tolist() == ["a-api"]
    rows = _same(tuple(queries.rows_where_in(s, "forecasts", "run_date", ["2026-10-30", "2026-11-01"]) for s in stores),
                 ["run_date", "service", "ds"])
    assert sorted(set(rows["run_date"])) == ["2026-10-30", "2026-11-01"] and len(rows) == 60
    assert [queries.duplicate_keys(s, "metrics") for s in stores] == [0, 0]
    assert all(queries.recent_findings(s, NOW).empty for s in stores)


def test_no_sql_outside_the_store_package():
    """SQL is written only in include/headroom/store/ (SOQL sent to Salesforce's API is not the store's)."""
    sql = re.compile(r"\b(SELECT|INSERT INTO|DELETE FROM|UPDATE \w+ SET)\b.*\b(FROM|WHERE|VALUES|SET)\b")
    offenders = []
    for folder in ("include", "plugins", "dags", "scripts", "benchmarks"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            rel = path.relative_to(PROJECT_ROOT)
            if rel.parts[:3] == ("include", "headroom", "store") or rel.name == "salesforce.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and sql.search(node.value):
                    offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_the_two_backends_do_not_import_each_other():
    folder = PROJECT_ROOT / "include" / "headroom" / "store"
    for name, other in (("parquet", "postgres"), ("postgres", "parquet")):
        tree = ast.parse((folder / f"{name}.py").read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + \
                   [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m and m.endswith(f"store.{other}")], name
    assert not [f for f in ("store.py", "pg_store.py") if (folder.parent / "metrics" / f).exists()], "one store package"


def test_recent_accuracy_is_first_day_scores_of_recent_runs(stores):
    got = _same(tuple(queries.recent_accuracy(s, NOW, "throughput", days=1) for s in stores), ["run_date", "service"])
    assert list(zip(got["run_date"], got["service"], got["mape"], strict=True)) == [("2026-10-31", "a-api", 0.05)]
    wider = _same(tuple(queries.recent_accuracy(s, NOW, "throughput", days=2) for s in stores), ["run_date", "service"])
    assert list(zip(wider["run_date"], wider["service"], strict=True)) == [
        ("2026-10-30", "a-api"), ("2026-10-30", "b-api"), ("2026-10-30", "c-api"), ("2026-10-31", "a-api")]
    assert all(q.empty for q in (queries.recent_accuracy(s, NOW, "latency_p95", days=2) for s in stores))


def test_slot_means_are_what_resampling_the_points_gives(stores):
    frames = tuple(queries.slot_means(s, ["a-api"], ["throughput", "replicas"], "2026-10-31T00:00Z", "2026-11-01T03:00Z", 3600)
                   for s in stores)
    got = _same(frames, ["metric", "ts"])
    hour = pd.Timestamp("2026-11-01T01:00Z")
    expected = {("replicas", hour): 2.5, ("replicas", hour + pd.Timedelta(hours=1)): 4.0,
                ("throughput", pd.Timestamp("2026-10-31T11:00Z")): 4.0, ("throughput", pd.Timestamp("2026-10-31T12:00Z")): 8.0,
                ("throughput", hour): 14.0, ("throughput", hour + pd.Timedelta(hours=1)): 20.0}
    assert {(m, pd.Timestamp(t)): v for m, t, v in got[["metric", "ts", "value"]].itertuples(index=False)} == expected
    assert set(got["service"]) == {"a-api"} and str(frames[0]["ts"].dt.tz) == "UTC"
    # The end is exclusive, as for read_metrics: the 02:00 point is left out.
    before_two = queries.slot_means(stores[0], ["a-api"], ["throughput"], "2026-11-01T00:00Z", NOW, 3600)
    assert before_two["value"].tolist() == [14.0]
    with pytest.raises(ValueError, match="step_s=0"):
        queries.slot_means(stores[0], ["a-api"], ["throughput"], NOW, NOW, 0)
