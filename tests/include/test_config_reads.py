"""Each configuration file is read once per process, whichever package asks first, and each package's settings load light."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from include.headroom import configfile
from include.headroom.config import CONFIG_DIR, PROJECT_ROOT, get_config, load_config
from include.headroom.exceptions import ConfigError

SETTINGS_MODULES = (
    "include.headroom.catalog",
    "include.headroom.config",
    "include.headroom.scaling.settings",
    "include.headroom.cache.settings",
    "include.headroom.connectors.settings",
    "include.headroom.forecasting.settings",
    "include.headroom.bottlenecks.settings",
    "include.headroom.validation.settings",
    "include.headroom.metrics.sample_fleet_settings",
    "include.headroom.steps.settings",
    "include.headroom.report.settings",
    "include.headroom.alerts.settings",
    "include.headroom.metrics.source_config",
)
HEAVY = ("pandas", "numpy", "yaml", "pyarrow", "duckdb", "psycopg", "statsmodels", "scipy", "great_expectations", "boto3", "matplotlib")


@pytest.fixture
def counted_reads(tmp_path, monkeypatch):
    """A fresh copy of the shipped configuration in use, and a counter of the files :func:`configfile.read_yaml` reads."""
    config_dir = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config_dir)
    monkeypatch.setenv("HEADROOM_CONFIG_DIR", str(config_dir))
    reads: Counter[str] = Counter()
    real = configfile.read_yaml

    def counting(path):
        reads[Path(path).name] += 1
        return real(path)

    monkeypatch.setattr(configfile, "read_yaml", counting)
    # a fresh process: files at fixed paths (airflow_settings.yaml) may have been read by earlier tests in this one
    monkeypatch.setattr(configfile, "_raw", {})
    monkeypatch.setattr(configfile, "_parsed", {})
    return config_dir, reads


def load_through_every_package() -> dict[str, object]:
    from include.headroom.alerts.settings import load_alert_settings
    from include.headroom.bottlenecks.rootcause import load_rootcause_settings
    from include.headroom.cache.settings import load_cache_settings
    from include.headroom.connectors.settings import load_connectors, load_landing, read_connectors_file
    from include.headroom.metrics.source_config import load_source_settings, load_store_settings
    from include.headroom.pools import airflow_pools
    from include.headroom.report.settings import load_report_settings
    from include.headroom.scaling.settings import policy_settings

    return {
        "config": get_config(), "alerts": load_alert_settings(), "cache": load_cache_settings(), "connectors": load_connectors(),
        "connectors_file": read_connectors_file(), "landing": load_landing(), "scaling": policy_settings(),
        "report": load_report_settings(), "sources": load_source_settings(), "store": load_store_settings(),
        "pools": airflow_pools(), "rootcause": load_rootcause_settings(),
    }


def test_each_file_is_read_once_across_get_config_and_the_packages_loaders(counted_reads):
    config_dir, reads = counted_reads
    first = load_through_every_package()
    again = load_through_every_package()
    load_config(config_dir)  # an explicit load of the same folder reads nothing either

    shipped = {p.name for p in config_dir.glob("*.yaml")}
    assert shipped <= set(reads), f"files no loader read: {sorted(shipped - set(reads))}"
    assert {name: n for name, n in reads.items() if n != 1} == {}
    assert set(reads) == shipped | {"airflow_settings.yaml"}
    # one set of settings per file: the packages' loaders hand out what HeadroomConfig holds
    config = first["config"]
    assert first["cache"] is config.cache and first["scaling"] is config.scaling and first["landing"] is config.connectors.landing
    assert first["connectors"] == dict(config.connectors.connectors) == first["connectors_file"]
    assert again["config"] is config and again["cache"] is first["cache"] and again["sources"] is not None


def test_a_file_changed_on_disk_is_read_again(counted_reads):
    config_dir, reads = counted_reads
    before = load_config(config_dir)
    text = (config_dir / "scaling.yaml").read_text()
    (config_dir / "scaling.yaml").write_text(text.replace("alarm_error_rate: 0.05", "alarm_error_rate: 0.07"))
    after = load_config(config_dir)
    assert (before.scaling.alarm_error_rate, after.scaling.alarm_error_rate) == (0.05, 0.07)
    assert reads["scaling.yaml"] == 2 and reads["catalog.yaml"] == 1
    assert after.cache is before.cache  # unchanged files are not parsed again


def test_a_cached_file_keeps_its_error(counted_reads):
    """A bad file is not cached as good: every load raises the same named error."""
    config_dir, reads = counted_reads
    (config_dir / "cache.yaml").write_text((config_dir / "cache.yaml").read_text().replace("max_keys: 500", "max_keys: 0"))
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"cache.yaml warming.max_keys=0 must be > 0"):
            load_config(config_dir)
    assert reads["cache.yaml"] == 1  # read once; the parse fails each time


def test_tracking_reads_bypasses_the_cache(counted_reads):
    config_dir, reads = counted_reads
    load_config(config_dir)
    with configfile.track_reads() as files:
        load_config(config_dir)
    assert "catalog.yaml" in {p.name for p, _ in files} and reads["catalog.yaml"] == 2


def test_settings_modules_import_nothing_heavy():
    code = "import sys\n" + "".join(f"import {m}\n" for m in SETTINGS_MODULES) + f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT).stdout.strip()
    assert out == "[]"
