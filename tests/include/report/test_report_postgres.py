"""The report on the PostgreSQL store: the same figures, to the last digit, as on the embedded store for the same results."""

from __future__ import annotations

import json
import uuid

import pytest

from include.headroom.report.figures import collect_figures
from include.headroom.report.html import build_report
from include.headroom.report.settings import load_report_settings
from include.headroom.store import ParquetStore, PostgresStore
from tests.include.report.results import AS_OF, differences, fill_fleet_results, fleet_results_dir


@pytest.fixture(scope="module")
def postgres_results(postgres_server):
    """The fleet's results written by the pipeline's steps into a PostgreSQL schema of its own."""
    import psycopg

    store = PostgresStore(lambda: psycopg.connect(postgres_server.dsn), schema=f"t_{uuid.uuid4().hex[:10]}")
    fill_fleet_results(store)
    yield store
    store.drop_schema()


def test_figures_equal_on_both_stores(config, postgres_results):
    settings = load_report_settings()
    embedded = json.loads(json.dumps(collect_figures(ParquetStore(fleet_results_dir() / "store"), config, AS_OF, settings)))
    postgres = json.loads(json.dumps(collect_figures(postgres_results, config, AS_OF, settings)))
    assert differences(embedded, postgres) == []
    # the figures the dialects compute differently are there, not empty
    assert postgres["accuracy"]["over_time"] and all(s["replicas"]["actual_now"] is not None for s in postgres["services"].values())


def test_report_is_written_from_postgres(config, postgres_results, tmp_path):
    paths = build_report(postgres_results, config, AS_OF, tmp_path, load_report_settings())
    twin = json.loads(paths["json"].read_text())
    assert len(twin["overview"]) == len(config.services)
    assert len(list((tmp_path / "services").glob("*.html"))) == len(config.services)
    assert "data:image/png;base64," in paths["html"].read_text()
