"""Concurrent writers on one store, as real processes (``ingest_metrics`` allows 4 active runs): batch records always
match their rows, every batch is validated once, and the watermark never moves backwards, on both store backends."""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
from pathlib import Path

import pandas as pd
import pytest
from catalogue_cases import NOW, PROCESS_CASES, csv, rows

from include.headroom.exceptions import DataError

CASE = {c.id: c for c in PROCESS_CASES}
SERVICES = ("orders-api", "checkout-api", "search-api")
ROUNDS = 1


def _write(path: Path, start: str, n: int, services=SERVICES, every: int = 1, offset: int = 0) -> Path:
    lines = []
    for service in services:
        for metric, unit in (("cpu_utilization", "percent"), ("throughput", "req/s")):
            values = [40 + (i % 9) if unit == "percent" else 500 + i for i in range(n)]
            lines += rows(values, metric=metric, unit=unit, service=service, start=start, n=n)[offset::every]
    path.write_text(csv(lines))
    return path


def _ingest_and_validate(store, config, path: str, start: str, end: str, barrier) -> None:
    """What the ingest_metrics and validate_metrics tasks do, in this process."""
    from include.headroom.metrics.files import FileSource
    from include.headroom.metrics.source_config import load_source_settings
    from include.headroom.steps.ingest import ingest
    from include.headroom.steps.validate import validate_pending
    from include.headroom.timeutil import utc

    source = FileSource(dataclasses.replace(load_source_settings().files, paths=(path,)), config, now=NOW)
    barrier.wait(timeout=60)
    ingest(store, config, source, utc(start), utc(end))  # normalised as the task's boundary does
    with contextlib.suppress(DataError):  # a failed batch is recorded; the checks below read the records
        validate_pending(store, config, now=utc(NOW))


def _race(store, config, jobs) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(jobs))
    procs = [ctx.Process(target=_ingest_and_validate, args=(store, config, *job, barrier)) for job in jobs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def _check_records(store, file_rows: pd.DataFrame) -> pd.DataFrame:
    """Every batch validated once (never an "empty batch" whose rows are stored), its record counting exactly the
    file's rows in its read window (rows in = stored + quarantined + duplicates), nothing stored twice or lost."""
    batches = store.read("batches")
    assert len(batches) and set(batches["status"]) == {"validated"}, batches[["batch_id", "status", "rows_in"]]
    for b in batches.itertuples():
        assert b.rows_in == b.rows_valid + b.rows_quarantined + b.rows_duplicate, b
        window = file_rows[(file_rows["ts"] >= b.interval_start) & (file_rows["ts"] < b.interval_end)]
        assert b.rows_in == len(window), (b.batch_id, b.rows_in, len(window))
    stored = store.query("SELECT count(*) AS n FROM metrics")["n"].iloc[0]
    wanted = file_rows[(file_rows["ts"] >= batches["interval_start"].min()) & (file_rows["ts"] < batches["interval_end"].max())]
    assert int(stored) == len(wanted)  # nothing lost, nothing twice
    return batches


def _file_rows(*paths: Path) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p) for p in paths]).assign(ts=lambda f: pd.to_datetime(f["timestamp"], utc=True))


def _seed_watermark(store, at: str) -> None:
    store.upsert("watermarks", pd.DataFrame([{"source": "source:files", "watermark": pd.Timestamp(at), "updated_at": pd.Timestamp(at)}]))


def _stores(request, tmp_path, round_no):
    if request.param == "parquet":
        from include.headroom.store import ParquetStore

        return ParquetStore(tmp_path / f"store{round_no}"), lambda: None
    import psycopg

    from include.headroom.store import PostgresStore

    server = request.getfixturevalue("postgres_server")
    store = PostgresStore(lambda: psycopg.connect(server.dsn), schema=f"concurrent_{round_no}")
    store.drop_schema()
    store = PostgresStore(lambda: psycopg.connect(server.dsn), schema=f"concurrent_{round_no}")
    return store, store.drop_schema


@pytest.fixture(params=["parquet", "postgres"])
def backend(request):
    return request


def test_adjacent_intervals_in_two_processes(backend, tmp_path, catalogue_config):
    assert f"concurrent_adjacent_intervals_{backend.param}" in CASE
    path = _write(tmp_path / "m.csv", "2026-12-04T21:00", 24)
    for round_no in range(ROUNDS):
        store, cleanup = _stores(backend, tmp_path, round_no)
        try:
            _seed_watermark(store, "2026-12-04T22:00Z")
            _race(
                store,
                catalogue_config,
                [(str(path), "2026-12-04T22:00Z", "2026-12-04T22:30Z"), (str(path), "2026-12-04T22:30Z", "2026-12-04T23:00Z")],
            )
            batches = _check_records(store, _file_rows(path))
            assert len(batches) == 2
            mark = store.read("watermarks", source="source:files")["watermark"].iloc[0]
            assert pd.Timestamp(mark) == pd.Timestamp("2026-12-04T23:00Z")  # never back to 22:30
        finally:
            cleanup()


def test_same_interval_different_halves_in_two_processes(backend, tmp_path, catalogue_config):
    assert f"concurrent_same_interval_{backend.param}" in CASE
    a = _write(tmp_path / "a.csv", "2026-12-04T22:00", 12, services=SERVICES[:2])
    b = _write(tmp_path / "b.csv", "2026-12-04T22:00", 12, services=SERVICES[2:])
    for round_no in range(ROUNDS):
        store, cleanup = _stores(backend, tmp_path, round_no)
        try:
            _seed_watermark(store, "2026-12-04T22:15Z")
            _race(
                store,
                catalogue_config,
                [(str(a), "2026-12-04T22:00Z", "2026-12-04T23:00Z"), (str(b), "2026-12-04T22:00Z", "2026-12-04T23:00Z")],
            )
            (batch,) = store.read("batches").itertuples()
            held = int(store.query("SELECT count(*) AS n FROM metrics WHERE batch_id = ?", [batch.batch_id])["n"].iloc[0])
            # The record matches the rows stored under it: one run's half (the other run's staging was replaced by a
            # re-run of its interval, which it logs) or, when both were validated one after the other, both halves.
            assert batch.status == "validated" and held == batch.rows_valid, (batch, held)
            assert batch.rows_in == batch.rows_valid + batch.rows_quarantined + batch.rows_duplicate
            assert batch.rows_in in (len(_file_rows(a)), len(_file_rows(b)), len(_file_rows(a, b))), batch
        finally:
            cleanup()
