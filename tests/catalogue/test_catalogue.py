"""The bad-input and fault catalogue: every case of ``catalogue_cases.py`` against the real code, with its exact outcome."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from catalogue_cases import CLI_CASES, CONFIG_CASES, FILE_CASES, NOW, Exits, Raises, csv, rows
from catalogue_runner import catalog_with, check_batch, check_readmit, error_class, fill, first_stored, with_overrides, write_input

from include.headroom.config import CONFIG_DIR
from include.headroom.ingest_file import ingest_file
from include.headroom.store import ParquetStore


@pytest.mark.parametrize("case", FILE_CASES, ids=[c.id for c in FILE_CASES])
def test_file_case(case, tmp_path, catalogue_config):
    path = write_input(case, tmp_path)
    config = with_overrides(catalogue_config, case.options.get("config", {}))
    store = ParquetStore(tmp_path / "store")
    run = {"store": store, "now": NOW, **{k: case.options[k] for k in ("start", "end", "services") if k in case.options}}
    if isinstance(case.expected, Raises):
        with pytest.raises(error_class(case.expected.error), match=case.expected.match):
            ingest_file([path], config, **run)
        assert store.read("batches").empty  # nothing half-written
        return
    outcome = ingest_file([path], config, **run)
    check_batch(case.expected, outcome, store)
    if "check_tier" in case.options:
        assert set(store.read("metrics")["tier"]) == {case.options["check_tier"]}
    if case.expected.readmit:
        if case.expected.catalog_fix:
            config = catalog_with(
                tmp_path / "config",
                "  - {name: ghost-api, tier: basic, owner: web, capacity_per_replica_rps: 100, "
                "min_replicas: 1, max_replicas: 4, cost_per_replica_hour: 0.05, base_rps: 50, base_latency_ms: 40, "
                "target: {kind: kubernetes_deployment, namespace: web, name: ghost-api}}",
            )
            config = with_overrides(config, {"data_docs": False})
        check_readmit(case.expected, config, store, outcome["batch_id"])
    if case.expected.first_ts:
        assert first_stored(store, outcome["batch_id"]) == case.expected.first_ts


@pytest.fixture
def places(tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be\n")
    clean, naive, series = tmp_path / "clean.csv", tmp_path / "naive.csv", tmp_path / "series.csv"
    clean.write_text(csv(rows()))
    naive.write_text(csv(rows(zone="")))
    stamps = pd.date_range("2026-11-01", periods=288, freq="5min", tz="UTC")
    series.write_text("timestamp,value\n" + "\n".join(f"{t.isoformat()},{100 + i % 12}" for i, t in enumerate(stamps)) + "\n")
    (tmp_path / "header_only.csv").write_text("timestamp,value\n")
    bad, constant = tmp_path / "bad_series.csv", tmp_path / "constant_series.csv"
    lines = [f"{t.isoformat()},{100 + i % 12}" for i, t in enumerate(stamps)]
    lines[100] = lines[100].split(",")[0] + ",oops"
    bad.write_text("timestamp,value\n" + "\n".join(lines) + "\n")
    constant.write_text("timestamp,value\n" + "\n".join(f"{t.isoformat()},5" for t in stamps) + "\n")
    spiked = tmp_path / "spiked_series.csv"  # three days around 100 with noise, one 1e12 point 25 minutes before the end
    days = pd.date_range("2026-11-01", periods=3 * 288, freq="5min", tz="UTC")
    noise = np.random.default_rng(7).normal(0.0, 3.0, len(days))
    values = [f"{100 + e:.3f}" for e in noise]
    values[-5] = "1e12"
    spiked.write_text("timestamp,value\n" + "\n".join(f"{t.isoformat()},{v}" for t, v in zip(days, values, strict=True)) + "\n")
    return {
        "tmp": str(tmp_path),
        "bad_series": str(bad),
        "header_only": str(tmp_path / "header_only.csv"),
        "constant_series": str(constant),
        "spiked_series": str(spiked),
        "blocked": str(blocked),
        "file": str(clean),
        "naive": str(naive),
        "series": str(series),
    }


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_case(case, places, tmp_path, monkeypatch, capsys):
    from include.headroom.__main__ import main

    data = fill([case.options.get("data_dir", "{tmp}/data")], places)[0]
    monkeypatch.setenv("HEADROOM_DATA_DIR", data)
    monkeypatch.setenv("HEADROOM_REPORTS_DIR", str(tmp_path / "reports"))
    expected: Exits = case.expected
    try:
        code = main(fill(case.input, places))
    except SystemExit as exc:  # argparse refuses an argument with exit 2 and its own message
        code = exc.code
    out, err = capsys.readouterr()
    assert code == expected.code, (out, err)
    assert re.search(expected.match, err if code == 2 else out) or re.search(expected.match, err), (out, err)
    assert "RuntimeWarning" not in err and "NaN" not in out
    if code == 2:
        assert "Traceback" not in err
    if case.id == "ingest_file_dry_run":
        assert not any(Path(data).glob("store/**/*.parquet"))


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.id for c in CONFIG_CASES])
def test_config_case(case, tmp_path, monkeypatch):
    from include.headroom.cache.settings import load_cache_settings
    from include.headroom.config import load_config
    from include.headroom.metrics.source_config import load_source_settings, load_store_settings

    monkeypatch.delenv("HEADROOM_STORE_BACKEND", raising=False)
    folder = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, folder)
    for name, change in case.input.items():
        path = folder / name
        if isinstance(change, tuple):
            text = path.read_text()
            assert change[0] in text, f"{name} no longer holds {change[0]!r}: update the case"
            path.write_text(text.replace(change[0], change[1], 1))
        else:
            path.write_text(change)
    loaders = {
        "sources.yaml": [load_source_settings],
        "store.yaml": [load_store_settings],
        "cache.yaml": [load_cache_settings],
    }.get(name, [load_config])
    expected: Raises = case.expected
    for load in loaders:
        with pytest.raises(error_class(expected.error), match=expected.match):
            load(folder)
