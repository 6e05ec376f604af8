"""Connector hooks: credentials from an Airflow connection (``AIRFLOW_CONN_*``), never shown, and the connector built on them."""

from __future__ import annotations

import json

import pytest

from headroom_provider.hooks.connectors import EnterpriseApiHook, build_connector, connection_base_url
from include.headroom.connectors.engine import pull
from include.headroom.exceptions import AuthenticationError
from include.headroom.connectors.settings import load_connectors
from tests.connectors_api import HubSpotApi


@pytest.mark.parametrize("host, schema, port, url", [
    ("acme.my.salesforce.com", None, None, "https://acme.my.salesforce.com"),
    ("http://127.0.0.1", None, 8080, "http://127.0.0.1:8080"),
    ("http://127.0.0.1:8080/", None, 8080, "http://127.0.0.1:8080"),
    ("dev1234.service-now.com", "https", 443, "https://dev1234.service-now.com:443"),
])
def test_base_url_from_a_connection(host, schema, port, url):
    assert connection_base_url(host, schema, port) == url


@pytest.fixture
def hubspot():
    server = HubSpotApi().start()
    server.seed("companies", 120)
    yield server
    server.stop()


def test_hook_reads_the_connection_and_builds_the_connector(hubspot, monkeypatch, store, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_HEADROOM_HUBSPOT", json.dumps({"conn_type": "http", "host": hubspot.url, "password": hubspot.token}))
    creds = EnterpriseApiHook("headroom_hubspot").get_credentials()
    assert creds.base_url == hubspot.url and creds.password == hubspot.token and hubspot.token not in repr(creds)
    assert EnterpriseApiHook("headroom_hubspot").test_connection() == (True, f"connection 'headroom_hubspot' points at {hubspot.url}")
    connector = build_connector(load_connectors()["hubspot"], tmp_path)
    report = pull(store, connector, "companies")
    assert (report.read, report.landed, report.calls) == (120, 120, 2)
    assert connector.client.breaker.state.path == tmp_path / "connectors" / "state" / "hubspot.json"  # outlives the task


def test_wrong_token_in_the_connection_is_named_not_shown(hubspot, monkeypatch, store, tmp_path, caplog):
    wrong = "pat-na1-00000000-wrong-token"
    monkeypatch.setenv("AIRFLOW_CONN_HEADROOM_HUBSPOT", json.dumps({"conn_type": "http", "host": hubspot.url, "password": wrong}))
    with pytest.raises(AuthenticationError) as info:
        pull(store, build_connector(load_connectors()["hubspot"], tmp_path), "companies")
    assert "HTTP 401: INVALID_AUTHENTICATION: Authentication credentials not found" in str(info.value)
    assert "Airflow connection 'headroom_hubspot'" in str(info.value)
    assert wrong not in str(info.value) and wrong not in caplog.text
