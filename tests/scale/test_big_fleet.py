"""The large-fleet configuration overlay (scripts/big_fleet.py) and the sample fleet's metric subset."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from include.headroom.config import load_config
from include.headroom.exceptions import DataError
from include.headroom.metrics.sample_fleet import SampleFleet

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from big_fleet import KEY_METRICS, scaled_catalog, seed_history, write_fleet_config  # noqa: E402


def test_overlay_has_the_fleet_size_and_keeps_the_shipped_services_first(tmp_path):
    config = load_config(write_fleet_config(tmp_path, services=250, days=30))
    names = [s.name for s in config.services]
    assert len(names) == len(set(names)) == 250
    shipped = [
        s["name"]
        for s in yaml.safe_load((Path(__file__).resolve().parents[2] / "include/headroom/config/catalog.yaml").read_text())["services"]
    ]
    assert names[: len(shipped)] == shipped  # the sample incidents still point at real services
    assert config.sample_fleet.history_days == 30 and config.sample_fleet.metrics == KEY_METRICS
    targets = [(s.target.kind, tuple(sorted(s.target.params.items()))) for s in config.services]
    assert len(set(targets)) == 250  # every copy scales its own target


def test_copies_vary_the_load_of_their_template():
    base = [{"name": "a", "base_rps": 100.0, "target": {"kind": "kubernetes_deployment", "namespace": "n", "name": "a"}}]
    out = scaled_catalog(4, base)
    assert [s["name"] for s in out] == ["a", "a-0001", "a-0002", "a-0003"]
    assert [s["target"]["name"] for s in out] == ["a", "a-0001", "a-0002", "a-0003"]
    assert all(70.0 <= s["base_rps"] <= 130.0 for s in out) and len({s["base_rps"] for s in out}) == 4
    with pytest.raises(ValueError, match="services=0"):
        scaled_catalog(0, base)


def test_the_metric_subset_generates_only_those_metrics_with_the_same_values(tmp_path):
    subset = load_config(write_fleet_config(tmp_path, services=12, days=3))
    full = load_config()
    start, end = pd.Timestamp("2026-11-20T00:00Z"), pd.Timestamp("2026-11-20T06:00Z")
    few = SampleFleet(subset, anchor="2026-11-21").generate(start, end, ["checkout-api"])
    every = SampleFleet(full, anchor="2026-11-21").generate(start, end, ["checkout-api"])
    assert set(few["metric"]) == set(KEY_METRICS) and len(few) == 4 * 72
    same = every[every["metric"].isin(KEY_METRICS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(few.reset_index(drop=True), same)


def test_an_unknown_metric_is_refused_by_name(tmp_path):
    with pytest.raises(DataError, match=r"unknown \['gpu_utilization'\]"):
        SampleFleet(load_config(write_fleet_config(tmp_path, services=12, days=3, metrics=("cpu_utilization", "gpu_utilization"))))


def test_seeded_history_has_one_row_per_key_and_step(tmp_path):
    config_dir = write_fleet_config(tmp_path / "fleet", services=20, days=3)
    rows = seed_history(config_dir, tmp_path / "store", "2026-11-18T00:00Z", "2026-11-20T00:00Z", chunk=7)
    assert rows == 20 * 4 * 288 * 2
    from include.headroom.store import ParquetStore

    counts = ParquetStore(tmp_path / "store").query(
        "SELECT service, metric, count(*) AS n, count(DISTINCT ts) AS d FROM metrics GROUP BY 1, 2"
    )
    assert len(counts) == 80 and set(counts["n"]) == {576} and set(counts["d"]) == {576}
