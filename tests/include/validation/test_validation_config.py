"""validation.yaml: shipped thresholds per tier, and clear errors naming the field at fault."""

from __future__ import annotations

import shutil

import pytest
import yaml

from include.headroom.config import CONFIG_DIR, load_config
from include.headroom.catalog import Tier
from include.headroom.exceptions import ConfigError


def test_shipped_thresholds(config):
    rules = config.pipeline.validation
    assert rules.step_s == 300 and rules.max_age_s.for_tier(Tier.CRITICAL) == 3600
    assert [rules.max_failure_ratio.for_tier(t) for t in Tier] == [0.2, 0.2, 0.2, 0.1, 0.05]
    assert rules.max_gap_s.for_tier("critical") == 1800 and rules.max_gap_s.for_tier("basic") == 3600
    assert rules.max_failure_ratio.for_tier("platinum") == 0.2  # an unknown tier gets the default
    assert rules.family_of("response_time").units["ms"] == (0.0, 600000.0)
    assert rules.family_of("replicas").integer and rules.family_of("gpu_temperature") is None


def _write(tmp_path, change):
    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target)
    path = target / "validation.yaml"
    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return target


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(max_failure_ratio={"default": 0.2, "tiers": {"critical": 1.5}}),
         r"validation.yaml max_failure_ratio \(critical\)=1.5 must be in \[0.0, 1.0\]"),
        (lambda r: r.update(max_failure_ratio={"default": 0.2, "tiers": {"gold": 0.1}}), r"validation.yaml max_failure_ratio: expected"),
        (lambda r: r.pop("step_s"), r"validation.yaml: required field 'step_s' is missing"),
        (lambda r: r.update(step_s=7), r"validation.yaml step_s=7 must divide a day"),
        (lambda r: r["families"]["latency"].update(units={"ms": [10, 1]}), r"family 'latency': unit 'ms' range \[10.0, 1.0\] is empty"),
        (lambda r: r["families"]["ratio"]["metrics"].append("cpu_utilization"),
         r"metric 'cpu_utilization' is in families 'utilization' and 'ratio'"),
        (lambda r: r["families"]["latency"].update(spike_factor=0.5), r"family 'latency': spike_factor=0.5 must be > 1"),
    ],
)
def test_bad_validation_config_names_the_field(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, change))
