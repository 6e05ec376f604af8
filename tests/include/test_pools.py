"""One source for the Airflow pools: airflow_settings.yaml plus the configuration's connectors, for every way Airflow is set up."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from include.headroom.config import CONFIG_DIR, PROJECT_ROOT
from include.headroom.connectors.settings import read_connectors_file
from include.headroom.exceptions import ConfigError
from include.headroom.pools import airflow_pools


def test_every_pool_the_dags_use_with_its_slots():
    pools = airflow_pools()
    assert pools["headroom_forecasting"]["slots"] == 2 and pools["headroom_scaling"]["slots"] == 1
    connectors = read_connectors_file()
    assert {c.pool: c.pool_slots for c in connectors.values()} == {c.pool: pools[c.pool]["slots"] for c in connectors.values()}
    listed = {p["pool_name"] for p in yaml.safe_load((PROJECT_ROOT / "airflow_settings.yaml").read_text())["airflow"]["pools"]}
    assert set(pools) == listed  # the shipped connectors are all listed in airflow_settings.yaml too
    assert all(p["include_deferred"] is False and p["description"] for p in pools.values())


def test_the_configurations_connectors_decide_their_slots(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    raw = yaml.safe_load((config / "connectors.yaml").read_text())
    name = next(iter(raw["connectors"]))
    raw["connectors"][name].setdefault("pool", {})["slots"] = 7
    (config / "connectors.yaml").write_text(yaml.safe_dump(raw))
    assert airflow_pools(config_dir=config)[f"connector_{name}"]["slots"] == 7


def test_a_pool_without_slots_is_refused_naming_the_file_and_entry(tmp_path):
    settings = tmp_path / "airflow_settings.yaml"
    settings.write_text(yaml.safe_dump({"airflow": {"pools": [{"pool_name": "ok", "pool_slot": 1}, {"pool_name": "broken"}]}}))
    with pytest.raises(ConfigError, match=r"airflow_settings.yaml: airflow.pools\[1\] needs a pool_name and a whole pool_slot"):
        airflow_pools(settings)


def test_cli_prints_what_airflow_pools_import_reads():
    out = subprocess.run([sys.executable, "-m", "include.headroom", "pools"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == airflow_pools()
