"""bottlenecks.yaml is validated on load; errors name the field at fault."""

from __future__ import annotations

import shutil

import pytest
import yaml

from include.headroom.config import CONFIG_DIR, load_config
from include.headroom.exceptions import ConfigError


def test_shipped_figures(config):
    bn = config.bottlenecks
    assert bn.alarms["error_rate"]["threshold"] == 0.05 and bn.alarms["connection_pool"]["threshold"] == 0.8
    assert bn.budgets["cpu_utilization"] == {"target": 70.0, "warning": 85.0, "critical": 95.0}
    assert bn.budgets["cache_hit_ratio"]["critical"] == 0.70  # SPEC: below 70 % is a problem
    assert bn.slo["budget_window_days"] == 30
    assert bn.prediction["probability_threshold"] == 0.7
    assert bn.prediction["horizons_s"] == {"response_time": 3600, "throughput": 1800, "bottleneck": 7200}
    assert {r["utilization"] for r in bn.resources.values()} >= {"disk_io", "network_io", "queue_length", "connection_pool"}


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda c: c["resources"]["disk"].update(utilization="disk_busy"),
            r"bottlenecks.resources.disk.utilization='disk_busy' is not a canonical metric",
        ),
        (lambda c: c["resources"]["queue"].update(type="queue_bound"), r"bottlenecks.resources.queue.type='queue_bound' has no remedy"),
        (
            lambda c: c["budgets"]["cpu_utilization"].update(warning=99.0),
            r"bottlenecks.budgets.cpu_utilization: target/warning/critical=\[70.0, 99.0, 95.0\] must be monotonic",
        ),
        (
            lambda c: c["slo"]["burn_alerts"][0].update(short_window_h=2),
            r"burn_alerts 'page_fast': need burn_rate > 0 and 0 < short_window_h < long_window_h",
        ),
        (lambda c: c["prediction"].update(probability_threshold=1.5), r"probability_threshold=1.5 must be in \(0, 1\)"),
        (lambda c: c.update(resource_rule_resources=["disk", "gpu"]), r"resource_rule_resources names unknown resources \['gpu'\]"),
    ],
)
def test_invalid_bottleneck_config_names_the_field(tmp_path, edit, match):
    folder = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, folder)
    path = folder / "bottlenecks.yaml"
    raw = yaml.safe_load(path.read_text())
    edit(raw)
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=match):
        load_config(folder)
