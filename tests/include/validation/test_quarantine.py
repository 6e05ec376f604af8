"""The quarantine in a real store: nothing lost per batch, results and Data Docs kept, re-admission after a fix without duplicates."""

from __future__ import annotations

import io
import json
import re
import shutil

import pandas as pd
import pytest
from validation_catalogue import END, NOW, START

from include.headroom.__main__ import main
from include.headroom.exceptions import DataError
from include.headroom.validation import quarantine
from include.headroom.validation.gates import service_freshness
from include.headroom.validation.results import validate_rows


def _counts(store, batch_id: str) -> tuple[int, int]:
    stored = store.query("SELECT count(*) AS n FROM metrics WHERE batch_id = ?", [batch_id])["n"].iloc[0]
    held = store.query("SELECT count(*) AS n FROM quarantine WHERE batch_id = ?", [batch_id])["n"].iloc[0]
    return int(stored), int(held)


def summary_suites(reports) -> list:
    """The GX pages of the catalogue batch: one per suite run."""
    return list((reports / "data_docs" / "gx" / "validations").glob("*/catalogue/*/catalogue.html"))


def _no_duplicates(store) -> bool:
    dupes = store.query("SELECT count(*) AS n FROM (SELECT service, metric, ts, labels FROM metrics GROUP BY ALL HAVING count(*) > 1)")
    return int(dupes["n"].iloc[0]) == 0


@pytest.fixture(scope="module")
def stored_once(config, catalogue, tmp_path_factory):
    from include.headroom.store import ParquetStore

    root = tmp_path_factory.mktemp("catalogue")
    store = ParquetStore(root / "store")
    summary = validate_rows(store, config, catalogue.rows, "catalogue", "test", START, END, now=NOW, reports_dir=root)
    return root, summary


@pytest.fixture
def stored(stored_once, tmp_path):
    """A private copy of the validated catalogue's store (validating once is the slow part)."""
    from include.headroom.store import ParquetStore

    root, summary = stored_once
    shutil.copytree(root / "store", tmp_path / "store")
    return ParquetStore(tmp_path / "store"), summary, root


def test_rows_in_equal_rows_stored_plus_rows_quarantined(catalogue, stored):
    store, summary, _ = stored
    stored_rows, held = _counts(store, "catalogue")
    assert summary["rows_in"] == len(catalogue.rows) == stored_rows + held
    assert held == len(catalogue.outcome.quarantined) == summary["rows_quarantined"]
    batch = store.read("batches", batch_id="catalogue").iloc[0]
    assert (batch["rows_in"], batch["rows_valid"], batch["rows_quarantined"]) == (len(catalogue.rows), stored_rows, held)
    assert store.count("staging") == 0


def test_results_and_data_docs_are_kept_per_batch(stored):
    store, summary, reports = stored
    results = store.read("validation_results", batch_id="catalogue").set_index("service")
    assert results.loc["orders-api", "rows_quarantined"] == 24  # milliseconds-as-seconds and the stuck CPU
    assert json.loads(results.loc["orders-api", "failed_expectations"])["quarantined"] == {
        "expect_latency_plausible": 12,
        "expect_series_not_flat": 12,
    }
    assert results["data_docs"].nunique() == 1
    page = summary["data_docs"]
    assert page == str(reports / "data_docs" / "catalogue" / "index.html")
    text = (reports / "data_docs" / "catalogue" / "index.html").read_text()
    assert "expect_latency_plausible" in text and "1311 rows in, 1265 valid, 46 quarantined" in text
    links = re.findall(r'href="(\.\./gx/validations/[^"]+)"', text)
    assert len(links) == len(summary_suites(reports)) and all((reports / "data_docs" / "catalogue" / link).exists() for link in links)
    latency = next(link for link in links if "headroom_latency_ms" in link)
    assert "catches milliseconds sent as seconds" in (reports / "data_docs" / "catalogue" / latency).read_text()  # its description
    assert "series orders-api/response_time: expect_latency_plausible on 12 rows" in summary["message"]


def test_list_and_show(stored):
    store, _, _ = stored
    listing = quarantine.list_quarantine(store, batch_id="catalogue")
    row = listing[(listing["service"] == "orders-api") & (listing["metric"] == "response_time")].iloc[0]
    assert (row["failed_expectations"], row["rows"]) == ("expect_latency_plausible", 12)
    shown = quarantine.show_quarantine(store, batch_id="catalogue", expectation="expect_no_spike")
    assert shown[["service", "metric"]].values.tolist() == [["search-api", "throughput"]]


def test_readmit_after_a_fix_without_duplicates(config, stored):
    store, _, _ = stored
    before_stored, before_held = _counts(store, "catalogue")
    unfixed = quarantine.readmit(store, config, "catalogue", service="orders-api", expectation="expect_latency_plausible", now=NOW)
    assert (unfixed["candidates"], unfixed["readmitted"]) == (12, 0)
    assert set(unfixed["reasons"].values()) == {"expect_latency_plausible"}
    fixed = quarantine.readmit(
        store, config, "catalogue", fix="seconds_to_ms", service="orders-api", expectation="expect_latency_plausible", now=NOW
    )
    assert (fixed["candidates"], fixed["readmitted"], fixed["still_quarantined"]) == (12, 12, 0)
    assert _counts(store, "catalogue") == (before_stored + 12, before_held - 12)
    again = quarantine.readmit(store, config, "catalogue", fix="seconds_to_ms", service="orders-api", now=NOW)
    assert again["readmitted"] == 0 and _counts(store, "catalogue") == (before_stored + 12, before_held - 12)
    assert _no_duplicates(store)
    latency = store.read_metrics(services=["orders-api"], metrics=["response_time"])
    assert len(latency) == 12 and latency["value"].between(10, 500).all()  # milliseconds again
    batch = store.read("batches", batch_id="catalogue").iloc[0]
    assert batch["rows_valid"] + batch["rows_quarantined"] == batch["rows_in"]
    audit = store.read("audit", kind="quarantine")
    assert audit[["service", "action", "status"]].values.tolist() == [["orders-api", "readmit", "applied"]]


def test_context_rules_still_hold_on_readmission(config, catalogue, stored):
    store, _, _ = stored
    spike = quarantine.readmit(store, config, "catalogue", expectation="expect_no_spike", now=NOW)
    dupes = quarantine.readmit(store, config, "catalogue", expectation="expect_unique_series_key", now=NOW)
    assert (spike["readmitted"], list(spike["reasons"].values())) == (0, ["expect_no_spike"])
    assert (dupes["readmitted"], set(dupes["reasons"].values())) == (0, {"expect_unique_series_key"})
    assert _no_duplicates(store)


def test_a_whole_batch_quarantined_for_schema_drift_is_readmitted_after_the_fix(config, hour, store, tmp_path):
    summary = validate_rows(store, config, hour.assign(region="eu"), "drift", "test", START, END, now=NOW, reports_dir=tmp_path)
    assert (summary["status"], summary["failed_services"][0]) == ("failed", "*")
    assert _counts(store, "drift") == (0, len(hour))
    assert set(service_freshness(store, config, END).values()) == {
        "latest validation failed (batch drift): schema drift: unknown columns ['region']"
    }
    result = quarantine.readmit(store, config, "drift", fix="drop_unknown_columns", now=NOW)
    assert result["readmitted"] == len(hour) and _counts(store, "drift") == (len(hour), 0)
    assert store.read("batches", batch_id="drift")["status"].tolist() == ["validated"]
    assert set(service_freshness(store, config, END).values()) == {None}


def test_naive_timestamps_are_readmitted_as_utc(config, store, tmp_path):
    from include.headroom.validation.csv_batch import read_csv_batch

    text = (
        "ts,service,tier,metric,value,unit,source,labels\n"
        "2026-10-31T23:50:00+00:00,docs-site,basic,throughput,30.5,req/s,files,\n"
        "2026-10-31T23:55:00,docs-site,basic,throughput,31.5,req/s,files,\n"
    )
    validate_rows(store, config, read_csv_batch(io.StringIO(text)), "csv", "files", START, END, now=NOW, reports_dir=tmp_path)
    assert _counts(store, "csv") == (1, 1)
    assert quarantine.readmit(store, config, "csv", now=NOW)["readmitted"] == 0
    assert quarantine.readmit(store, config, "csv", fix="assume_utc", now=NOW)["readmitted"] == 1
    assert store.read_metrics(services=["docs-site"])["ts"].tolist() == [
        pd.Timestamp("2026-10-31T23:50Z"),
        pd.Timestamp("2026-10-31T23:55Z"),
    ]


def test_unknown_batch_or_fix_is_a_clear_error(config, stored):
    store, _, _ = stored
    with pytest.raises(DataError, match=r"unknown batch 'nope'"):
        quarantine.readmit(store, config, "nope")
    with pytest.raises(DataError, match=r"unknown fix 'magic'; fixes: none"):
        quarantine.readmit(store, config, "catalogue", fix="magic")


def test_cli_lists_shows_and_readmits(stored, monkeypatch, capsys):
    store, _, _ = stored
    monkeypatch.setenv("HEADROOM_DATA_DIR", str(store.root.parent))
    assert main(["quarantine", "list", "--batch", "catalogue", "--service", "search-api"]) == 0
    out = capsys.readouterr().out
    assert "expect_no_spike" in out and "expect_value_integer" in out
    assert main(["quarantine", "show", "--batch", "catalogue", "--expectation", "expect_value_numeric", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["raw_value"] for r in shown] == ["'n/a'"]
    assert (
        main(
            [
                "quarantine",
                "readmit",
                "--batch",
                "catalogue",
                "--service",
                "orders-api",
                "--fix",
                "seconds_to_ms",
                "--expectation",
                "expect_latency_plausible",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["readmitted"] == 12
    assert main(["quarantine", "readmit"]) == 2
    assert "needs --batch" in capsys.readouterr().err
