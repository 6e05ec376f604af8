"""Every Asset of the pipeline, defined once and imported by the DAGs that produce or consume it.

There is one Asset per store table (``headroom://store/<table>``), so a user's own DAG
can schedule on any table the pipeline writes, plus the report.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import contextmanager

from airflow.sdk import Asset

SCHEME = "headroom"


@contextmanager
def _no_provider_lookup_for_our_scheme() -> Generator[None, None, None]:
    """Build ``headroom://`` Assets without asking every installed provider for its URI handlers.

    Airflow normalises an Asset URI by loading the URI handlers of every installed provider, which imports the
    Amazon provider's S3 hook (boto3, botocore) into every DAG file that names an Asset: about 100 ms a parse.
    No provider handles the ``headroom`` scheme (``tests/dags/test_dag_integrity.py`` checks it and that the
    URIs come out exactly as Airflow's own normalisation gives them), so the lookup is skipped for that scheme
    only, while these module-level Assets are built. Other schemes are looked up as usual.
    """
    from airflow.sdk.definitions import asset as asset_module

    original: Callable | None = getattr(asset_module, "_get_uri_normalizer", None)
    if original is None:  # another Airflow version: build the Assets the ordinary way
        yield
        return
    asset_module._get_uri_normalizer = lambda scheme: None if scheme == SCHEME else original(scheme)
    try:
        yield
    finally:
        asset_module._get_uri_normalizer = original


def _table(table: str, name: str | None = None) -> Asset:
    return Asset(name=name or f"headroom_{table}", uri=f"{SCHEME}://store/{table}", group="headroom")


with _no_provider_lookup_for_our_scheme():
    METRICS_STAGED = _table("staging", "headroom_metrics_staged")
    METRICS_VALIDATED = _table("metrics")
    FORECASTS = _table("capacity")
    FINDINGS = _table("findings")
    ACTIONS = _table("audit")
    BATCHES = _table("batches")
    WATERMARKS = _table("watermarks")
    SOURCE_UNITS = _table("source_units")
    QUARANTINE = _table("quarantine")
    VALIDATION_RESULTS = _table("validation_results")
    FORECAST_SERIES = _table("forecasts")
    FORECAST_ACCURACY = _table("forecast_accuracy")
    SCENARIOS = _table("scenarios")
    CAPACITY_PLANS = _table("capacity_plans")
    SLO_STATUS = _table("slo_status")
    CONNECTOR_RECORDS = _table("connector_records")
    ALERTS = _table("alerts")
    REPORT = Asset(name="headroom_report", uri=f"{SCHEME}://reports/latest", group="headroom")

# The Asset of each store table, by table name.
TABLE_ASSETS: dict[str, Asset] = {a.uri.rsplit("/", 1)[1]: a for a in (
    METRICS_STAGED, METRICS_VALIDATED, FORECASTS, FINDINGS, ACTIONS, BATCHES, WATERMARKS, SOURCE_UNITS, QUARANTINE,
    VALIDATION_RESULTS, FORECAST_SERIES, FORECAST_ACCURACY, SCENARIOS, SLO_STATUS, CONNECTOR_RECORDS, ALERTS, CAPACITY_PLANS,
)}
