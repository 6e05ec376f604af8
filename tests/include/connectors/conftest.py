"""Connector fixtures: the API stand-ins on 127.0.0.1 (one per module), settings from connectors.yaml with short
retry delays so tests stay quick, and credentials as an Airflow connection would hold them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from include.headroom.connectors.http import Credentials
from include.headroom.connectors.settings import Quota, load_connectors
from tests.connectors_api import HubSpotApi, ODataApi, SalesforceApi, ServiceNowApi

FAST_RETRY = {"base_delay_s": 0.01, "max_delay_s": 0.05, "timeout_s": 5.0}


def fast(name: str, **changes):
    """``connectors.yaml``'s settings of ``name`` with millisecond backoff and a generous quota unless given."""
    s = load_connectors()[name]
    changes.setdefault("quota", Quota(calls=10000, per_s=1, burst=10000))
    retry = replace(s.retry, **{**FAST_RETRY, **changes.pop("retry", {})})
    breaker = replace(s.breaker, **changes.pop("breaker", {}))
    options = {**s.options, **changes.pop("options", {})}
    return s.with_(retry=retry, breaker=breaker, options=options, **changes)


def _serve(server):
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def salesforce_api():
    yield from _serve(SalesforceApi())


@pytest.fixture(scope="module")
def hubspot_api():
    yield from _serve(HubSpotApi())


@pytest.fixture(scope="module")
def servicenow_api():
    yield from _serve(ServiceNowApi())


@pytest.fixture(scope="module")
def sap_api():
    s = load_connectors()["sap_s4hana"]
    yield from _serve(ODataApi(s.options["service_path"], "basic", max_batch=1000))


@pytest.fixture(scope="module")
def dynamics_api():
    s = load_connectors()["dynamics_365"]
    yield from _serve(ODataApi(s.options["service_path"], "bearer", login="", secret="eyJ0eXAi-dynamics-token", key_field="accountid",
                               modified_field="modifiedon", max_batch=1000))


def creds_for(server) -> Credentials:
    if isinstance(server, SalesforceApi):
        return Credentials(base_url=server.url, login=server.client_id, password=server.client_secret)
    if isinstance(server, HubSpotApi):
        return Credentials(base_url=server.url, password=server.token)
    if isinstance(server, ServiceNowApi):
        return Credentials(base_url=server.url, login=server.user, password=server.password)
    return Credentials(base_url=server.url, login=server.login, password=server.secret)
