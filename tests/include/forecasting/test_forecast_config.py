"""The forecasting section of the configuration validates itself and names the field at fault."""

from __future__ import annotations

import shutil

import pytest
import yaml

from include.headroom.config import CONFIG_DIR, load_config
from include.headroom.exceptions import ConfigError


@pytest.fixture
def config_dir(tmp_path):
    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target)
    return target


def _edit(config_dir, change):
    path = config_dir / "forecasting.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_shipped_forecasting_config(config):
    fc = config.forecasting
    assert fc.alpha == 0.2 and fc.backtest.initial_days + fc.backtest.horizon_days <= fc.min_history_days
    assert "seasonal_naive" in fc.models and {s.name for s in fc.scenarios} == {"launch", "organic_growth"}
    assert fc.horizons["long"]["resample"] == "7D"


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d["capacity"].update(alpha=1.2), r"forecasting.capacity.alpha=1.2 must be in \(0, 1\)"),
        (lambda d: d["capacity"]["backtest"].update(horizon_days=0), r"backtest.horizon_days=0 must be > 0"),
        (
            lambda d: d["capacity"].update(min_history_days=5),
            r"min_history_days=5 must be at least backtest initial_days \+ horizon_days \(10\)",
        ),
        (lambda d: d["scenarios"].append({"name": "launch", "multiplier": 3, "start_in_days": 1}), r"duplicate names"),
        (lambda d: d["scenarios"].append({"name": "odd", "multiplier": 0}), r"'odd': multiplier=0 must be > 0"),
        (lambda d: d["scenarios"].append({"name": "typo", "growht": 0.1}), r"forecasting.yaml scenarios: .*growht"),
        (lambda d: d["horizons"]["short"].update(expected_accuracy=[0.9, 1.2]), r"horizons.short.expected_accuracy"),
    ],
    ids=["alpha", "backtest", "min-history", "duplicate-scenario", "multiplier", "unknown-field", "band"],
)
def test_bad_values_are_named(config_dir, change, message):
    _edit(config_dir, change)
    with pytest.raises(ConfigError, match=message):
        load_config(config_dir)
