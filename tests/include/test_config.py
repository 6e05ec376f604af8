"""Shipped configuration: SPEC figures loaded into validated dataclasses, and clear errors for bad files."""

from __future__ import annotations

import shutil

import pytest
import yaml

from include.headroom.config import CONFIG_DIR, load_config
from include.headroom.catalog import Tier
from include.headroom.exceptions import ConfigError


def test_tiers_carry_spec_figures(config):
    assert set(config.tiers) == set(Tier)
    critical = config.tier("critical")
    assert critical.uptime_slo == 0.9999
    assert (critical.latency_slo.percentile, critical.latency_slo.threshold_ms) == (99, 20)
    assert config.tier("basic").latency_slo.percentile == 90
    assert config.tier("standard").latency_slo.threshold_ms == 200
    assert config.tier("professional").error_budget == pytest.approx(0.001)


def test_scaling_defaults_from_spec(config):
    general, critical = config.scaling.hpa_profiles["general"], config.scaling.hpa_profiles["critical"]
    assert (general.min_replicas, general.max_replicas, general.cpu_target, general.memory_target) == (1, 10, 70.0, 80.0)
    assert (critical.min_replicas, critical.max_replicas, critical.cpu_target) == (10, 100, 50.0)
    assert general.scale_up.stabilization_s == 300 and general.scale_down.percent == 50
    assert critical.scale_down.percent == 10
    assert config.scaling.alarm_error_rate == 0.05
    assert (config.scaling.lead_time_s, config.scaling.actuation_delay_s) == (600, 300)
    assert config.scaling.approval_cost_usd_month == 1000


def test_cache_ttls_from_spec(config):
    ttl = config.cache.adaptive_ttl
    assert (ttl.hot_ttl_s, ttl.large_object_ttl_s, ttl.default_ttl_s) == (3600, 300, 600)
    assert ttl.large_object_bytes == 1024 * 1024


def test_catalog_spans_every_tier(config):
    assert len(config.services) >= 12
    assert {s.tier for s in config.services} == set(Tier)
    assert config.hpa_profile(config.service("payments-gateway")).min_replicas == 10
    with pytest.raises(ConfigError, match="unknown service 'nope'"):
        config.service("nope")


def _copy(tmp_path):
    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target)
    return target


def test_bad_field_names_the_file_and_field(tmp_path):
    target = _copy(tmp_path)
    tiers = yaml.safe_load((target / "tiers.yaml").read_text())
    tiers["tiers"]["basic"]["uptime_slo"] = 1.5
    (target / "tiers.yaml").write_text(yaml.safe_dump(tiers))
    with pytest.raises(ConfigError, match=r"tier basic: uptime_slo=1.5"):
        load_config(target)


def test_catalog_bounds_are_checked(tmp_path):
    target = _copy(tmp_path)
    catalog = yaml.safe_load((target / "catalog.yaml").read_text())
    catalog["services"][0]["min_replicas"] = 20
    (target / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    with pytest.raises(ConfigError, match="service 'blog-frontend': min_replicas=20 max_replicas=4"):
        load_config(target)


def test_missing_file_is_named(tmp_path):
    target = _copy(tmp_path)
    (target / "scaling.yaml").unlink()
    with pytest.raises(ConfigError, match="scaling.yaml is missing"):
        load_config(target)


def test_incident_must_name_a_catalog_service(tmp_path):
    target = _copy(tmp_path)
    fleet = yaml.safe_load((target / "sample_fleet.yaml").read_text())
    fleet["incidents"][0]["service"] = "ghost"
    (target / "sample_fleet.yaml").write_text(yaml.safe_dump(fleet))
    with pytest.raises(ConfigError, match="unknown service 'ghost'"):
        load_config(target)
