"""Test-wide set-up: a temporary Airflow home and data folder, created before anything imports Airflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.servers import postgres_server  # noqa: F401 (fixture: any_store's PostgreSQL)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ANCHOR = "2026-11-01"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))  # the sample fleet's "now" in tests: fixed, so figures are reproducible

_tmp = Path(tempfile.mkdtemp(prefix="headroom-tests-"))
os.environ["AIRFLOW_HOME"] = str(_tmp / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["HEADROOM_DATA_DIR"] = str(_tmp / "data")
os.environ["HEADROOM_REPORTS_DIR"] = str(_tmp / "reports")
os.environ["GX_ANALYTICS_ENABLED"] = "False"
os.environ["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
for path in (str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")):
    if path not in sys.path:
        sys.path.insert(0, path)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def config():
    from include.headroom.config import get_config

    return get_config()


@pytest.fixture
def store(tmp_path):
    from include.headroom.store import ParquetStore

    return ParquetStore(tmp_path / "store")


@pytest.fixture(params=["parquet", "postgres"])
def any_store(request, tmp_path):
    """Each store backend in turn: the embedded Parquet store, then PostgreSQL (a schema of its own in the test cluster)."""
    import uuid

    from include.headroom.store import ParquetStore, PostgresStore

    if request.param == "parquet":
        yield ParquetStore(tmp_path / "store")
        return
    import psycopg

    dsn = request.getfixturevalue("postgres_server").dsn
    pg = PostgresStore(lambda: psycopg.connect(dsn), schema=f"t_{uuid.uuid4().hex[:10]}")
    yield pg
    pg.drop_schema()


@pytest.fixture(scope="session")
def fleet(config):
    from include.headroom.metrics.sample_fleet import SampleFleet

    return SampleFleet(config, anchor=ANCHOR)


@pytest.fixture(scope="session")
def fleet_history(fleet):
    """21 days of the whole fleet up to the anchor (enough for weekly seasons and a 7-day baseline)."""
    import pandas as pd

    return fleet.generate(fleet.anchor - pd.Timedelta(days=21), fleet.anchor)


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated metadata database in the temporary Airflow home, with the pools the DAGs use."""
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True)
    import json

    from include.headroom.pools import airflow_pools  # the same pools as `make airflow-db` and the cluster

    pools = Path(os.environ["AIRFLOW_HOME"]) / "pools.json"
    pools.write_text(json.dumps(airflow_pools()))
    subprocess.run([AIRFLOW, "pools", "import", str(pools)], check=True, capture_output=True)
    return Path(os.environ["AIRFLOW_HOME"])
