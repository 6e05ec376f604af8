"""The shipped Prometheus rules and Grafana dashboard use only metric names headroom exports, and the rules are valid."""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from include.headroom.alerts.metrics import GAUGES
from tests.conftest import PROJECT_ROOT
from tests.servers import require_binary

RULES = PROJECT_ROOT / "deploy" / "prometheus" / "headroom-rules.yml"
DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "headroom-dashboard.json"
NAME = re.compile(r"\bheadroom_[a-z_]+\b")


def test_rules_use_only_exported_metric_names():
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    used = {name for r in rules for name in NAME.findall(r["expr"])}
    assert used and used <= set(GAUGES), sorted(used - set(GAUGES))
    assert {r["labels"]["severity"] for r in rules} == {"page", "ticket"}


def test_dashboard_uses_only_exported_metric_names_and_shows_each_gauge():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    used = {name for e in exprs for name in NAME.findall(e)}
    assert used == set(GAUGES), (sorted(used - set(GAUGES)), sorted(set(GAUGES) - used))


def test_promtool_accepts_the_rules():
    promtool = require_binary("promtool", package="prometheus")
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 6 rules found" in out.stdout
