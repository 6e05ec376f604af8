"""Hooks own their connections: defaults without one, the connection's extras when set, and test_connection()."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from headroom_provider.hooks.sample_fleet import SampleFleetHook
from headroom_provider.hooks.store import HeadroomStoreHook


def test_store_hook_defaults_to_the_data_dir(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_HEADROOM_STORE", raising=False)
    hook = HeadroomStoreHook()
    assert hook.store_path() == Path(os.environ["HEADROOM_DATA_DIR"]) / "store"
    assert hook.test_connection() == (True, f"store folder {hook.store_path()} is writable")


def test_store_hook_reads_the_connection_path(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_HEADROOM_STORE", json.dumps({"conn_type": "fs", "extra": {"path": str(tmp_path / "s")}}))
    store = HeadroomStoreHook().get_store()
    assert store.root == tmp_path / "s"
    assert store.count("metrics") == 0


def test_store_hook_reports_an_unwritable_folder(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AIRFLOW_CONN_HEADROOM_STORE", json.dumps({"conn_type": "fs", "extra": {"path": str(blocker / "store")}}))
    ok, message = HeadroomStoreHook().test_connection()
    assert not ok and message.startswith(f"store folder {blocker / 'store'} is not writable")


def test_sample_fleet_hook_uses_the_connection_anchor(monkeypatch, config):
    monkeypatch.setenv("AIRFLOW_CONN_HEADROOM_SAMPLE_FLEET", json.dumps({"conn_type": "generic", "extra": {"anchor": "2026-11-01"}}))
    hook = SampleFleetHook()
    source = hook.get_source(config)
    assert str(source.fleet.anchor) == "2026-11-01 00:00:00+00:00"
    ok, message = hook.test_connection()
    assert ok and message.startswith(f"{12 * 12 * 9} rows for 12 services")


@pytest.mark.parametrize("hook", [HeadroomStoreHook, SampleFleetHook])
def test_hooks_declare_their_connection(hook):
    assert hook.conn_name_attr and hook.default_conn_name.startswith("headroom_") and hook.conn_type and hook.hook_name
