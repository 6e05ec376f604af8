"""Running catalogue cases: write a case's input, push it through the real code, check the exact outcome."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from catalogue_cases import NOW, Batch, Case

from include.headroom import exceptions
from include.headroom.config import CONFIG_DIR, HeadroomConfig, load_config


def write_input(case: Case, folder: Path) -> Path:
    """The case's file: CSV text as is; ``parquet:`` CSV text turned into Parquet (``parquet-naive:`` without a zone)."""
    text: str = case.input
    name = case.options.get("name") or ("metrics.parquet" if text.startswith("parquet") else "metrics.csv")
    path = folder / name
    if text.startswith("parquet"):
        kind, _, body = text.partition(":")
        frame = pd.read_csv(io.StringIO(body))
        ts = pd.to_datetime(frame["timestamp"], utc=True)
        frame["timestamp"] = ts.dt.tz_localize(None) if kind == "parquet-naive" else ts
        frame.to_parquet(path)
    else:
        path.write_text(text)
    return path


def with_overrides(config: HeadroomConfig, overrides: dict[str, Any]) -> HeadroomConfig:
    if not overrides:
        return config
    validation = dataclasses.replace(config.pipeline.validation, **overrides)
    return dataclasses.replace(config, pipeline=dataclasses.replace(config.pipeline, validation=validation))


def catalog_with(folder: Path, service_line: str) -> HeadroomConfig:
    """The documented catalog fix: a copy of the configuration whose catalog.yaml lists one more service."""
    shutil.copytree(CONFIG_DIR, folder, dirs_exist_ok=True)
    catalog = folder / "catalog.yaml"
    text = catalog.read_text()
    anchor = text.index("  - {name: orders-api")
    catalog.write_text(text[:anchor] + service_line + "\n" + text[anchor:])
    return load_config(folder)


def error_class(name: str) -> type[Exception]:
    return getattr(exceptions, name)


def check_batch(expected: Batch, outcome: dict[str, Any], store: Any) -> None:
    """The exact outcome, and rows in = stored + quarantined + exact duplicates, in the result and in the store."""
    batch_id = outcome["batch_id"]
    assert outcome["quarantined_by_reason"] == expected.quarantined, outcome
    assert (outcome["rows_stored"], outcome["rows_duplicate"]) == (expected.stored, expected.duplicates), outcome
    assert outcome["rows_in"] == outcome["rows_stored"] + outcome["rows_quarantined"] + outcome["rows_duplicate"], outcome
    record = store.read("batches", batch_id=batch_id).iloc[0]
    assert int(record["rows_in"]) == int(record["rows_valid"]) + int(record["rows_quarantined"]) + int(record["rows_duplicate"])
    stored = store.query("SELECT count(*) AS n FROM metrics WHERE batch_id = ?", [batch_id])["n"].iloc[0]
    held = store.query("SELECT count(*) AS n FROM quarantine WHERE batch_id = ?", [batch_id])["n"].iloc[0]
    assert (int(stored), int(held)) == (expected.stored, sum(expected.quarantined.values())), (stored, held)
    assert expected.failure in outcome["batch_failure"], outcome["batch_failure"]
    assert bool(expected.failure) == bool(outcome["batch_failure"]), outcome["batch_failure"]
    for text in expected.warnings:
        assert any(text in w for w in outcome["warnings"]), (text, outcome["warnings"])


def check_readmit(expected: Batch, config: HeadroomConfig, store: Any, batch_id: str) -> None:
    from include.headroom.validation.quarantine import readmit

    fix, count = expected.readmit
    result = readmit(store, config, batch_id, fix=fix, now=NOW)
    assert (result["readmitted"], result["still_quarantined"]) == (count, result["candidates"] - count), result
    record = store.read("batches", batch_id=batch_id).iloc[0]
    assert int(record["rows_in"]) == int(record["rows_valid"]) + int(record["rows_quarantined"]) + int(record["rows_duplicate"])
    assert int(record["rows_valid"]) == expected.stored + count


def first_stored(store: Any, batch_id: str) -> str:
    return store.query("SELECT min(ts) AS ts FROM metrics WHERE batch_id = ?", [batch_id])["ts"].iloc[0].isoformat()


def fill(argv: list[str], places: dict[str, str]) -> list[str]:
    return [re.sub(r"\{(\w+)\}", lambda m: places[m.group(1)], a) for a in argv]
