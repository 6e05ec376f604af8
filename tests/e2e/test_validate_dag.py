"""validate_metrics in real Airflow: below a tier's threshold it warns and succeeds, above it the task fails naming what broke."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from include.headroom.steps import ingest, validate
from include.headroom.metrics.sources import SampleFleetSource
from include.headroom.store import ParquetStore
from scripts.pipeline_run import dags_test
from tests.conftest import ANCHOR

pytestmark = pytest.mark.e2e
AS_OF = datetime.fromisoformat(f"{ANCHOR}T02:00:00+00:00")


class _Corrupting:
    """The sample fleet with some metrics of some services pushed out of range (250 and up, never flat)."""

    name = "corrupting"

    def __init__(self, config, metrics, services):
        self.source, self.metrics, self.services = SampleFleetSource(config, anchor=ANCHOR), metrics, services

    def read(self, start, end):
        rows = self.source.read(start, end)
        bad = rows["metric"].isin(self.metrics) & rows["service"].isin(self.services)
        rows.loc[bad, "value"] = 250.0 + np.arange(int(bad.sum()))
        return rows


def _stage(config, root, metrics, services, end):
    store = ParquetStore(root / "store")
    ingest.ingest(store, config, _Corrupting(config, metrics, services), end - pd.Timedelta(hours=1), end, history_days=1 / 24)
    return store


def test_validation_task_warns_or_fails_and_links_data_docs(airflow_db, config, tmp_path):
    env = {"HEADROOM_DATA_DIR": str(tmp_path / "data"), "HEADROOM_REPORTS_DIR": str(tmp_path / "reports")}
    # one metric in nine of one basic service: 11 % < 20 %, the task warns and succeeds
    store = _stage(config, tmp_path / "data", ["cpu_utilization"], ["blog-frontend"], pd.Timestamp(AS_OF))
    warned = dags_test("validate_metrics", AS_OF, env=env, log_dir=tmp_path / "logs-warn")
    log = warned.log.read_text()
    assert warned.ok, log[-3000:]
    assert "series blog-frontend/cpu_utilization: expect_value_in_unit_range on 12 rows" in log
    assert f"Data Docs index: {tmp_path / 'reports' / 'data_docs' / 'index.html'}" in log
    assert store.count("quarantine") == 12 and store.read("batches")["status"].tolist() == ["validated"]

    # three metrics in nine of orders-api: 33 % > 20 %, the task fails after keeping every row
    store = _stage(config, tmp_path / "data", ["cpu_utilization", "error_rate", "cache_hit_ratio"], ["orders-api"],
                   pd.Timestamp(AS_OF) + pd.Timedelta(hours=1))
    failed = dags_test("validate_metrics", AS_OF, env=env, log_dir=tmp_path / "logs-fail")
    log = failed.log.read_text()
    assert failed.state == "failed", log[-3000:]
    assert "series orders-api/error_rate: expect_value_in_unit_range on 12 rows" in log
    batches = store.read("batches")
    assert sorted(batches["status"]) == ["failed", "validated"]
    assert (batches["rows_in"] == batches["rows_valid"] + batches["rows_quarantined"]).all()
    assert int(batches["rows_in"].sum()) == store.count("metrics") + store.count("quarantine") == 2 * 12 * 9 * len(config.services)
    # the gate now refuses orders-api only
    gate = validate.freshness(store, config, pd.Timestamp(AS_OF) + pd.Timedelta(hours=1))
    assert [s for s, why in gate.items() if why] == ["orders-api"]
