"""SyncConnectorOperator: one incremental sync of one connector object, audited, with an Asset event per landed object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from airflow.sdk import AssetAlias, BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

# Landed objects are announced through this alias as ``headroom://connectors/<connector>/<object>`` Assets.
CONNECTOR_LANDINGS = AssetAlias(name="headroom_connector_landings", group="headroom")


def landed_asset_uri(connector: str, obj: str) -> str:
    return f"headroom://connectors/{connector}/{obj}"


class SyncConnectorOperator(BaseOperator):
    """Sync ``obj`` of ``connector`` (``connectors.yaml``) from its watermark: pull objects land in the store (or S3),
    push objects deliver headroom's figures in batches. The watermark only advances once everything is landed or
    accepted; the audit record holds pages, records read/written/failed, API calls, throttles, breaker trips, duration.

    :param connector: the connector's name in ``connectors.yaml``.
    :param obj: the object to sync.
    """

    template_fields: Sequence[str] = ("connector", "obj")
    ui_color = "#e2ece9"

    def __init__(self, *, connector: str, obj: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connector = connector
        self.obj = obj

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk import Asset

        from headroom_provider.defaults import store
        from headroom_provider.operators._audit import audit
        from include.headroom.audit import AuditRecord, Status
        from include.headroom.config import data_dir
        from include.headroom.connectors.engine import make_lander, run_sync
        from include.headroom.connectors.settings import load_connectors, load_landing

        connectors = load_connectors()
        if self.connector not in connectors:
            raise ValueError(f"connector={self.connector!r} is not in connectors.yaml; connectors: {sorted(connectors)}")
        settings = connectors[self.connector]
        settings.object(self.obj)
        db = store()
        if settings.kind == "outbox":
            outcome = self._outbox(db, settings)
        else:
            from headroom_provider.hooks.connectors import build_connector, landing_client

            landing = load_landing()
            lander = make_lander(landing, db, landing_client(landing.conn_id) if landing.target == "s3" else None)
            outcome = run_sync(db, build_connector(settings, data_dir()), self.obj, lander, landing.flush_records)
        report = outcome.report
        status = Status.FAILED if outcome.error is not None else Status.APPLIED
        audit(
            context,
            AuditRecord(
                kind="connector",
                service=f"{self.connector}:{self.obj}",
                action=report.direction or "sync",
                status=status,
                dry_run=False,
                executor=self.connector,
                reason=(
                    f"{report.direction} {report.pages} pages: read {report.read}, wrote {report.written}, failed {report.failed}; "
                    f"{report.calls} calls, {report.throttles} throttled, {report.breaker_trips} breaker trips in {report.duration_s} s"
                    + (f"; error: {outcome.error}" if outcome.error is not None else "")
                ),
                before={"watermark": report.watermark_before},
                after={"watermark": report.watermark_after},
                detail=report.to_dict(),
            ),
        )
        self.log.info("Synced %s/%s: %s", self.connector, self.obj, report.to_dict())
        if outcome.error is not None:
            raise outcome.error
        if report.landed or report.written:
            context["outlet_events"][CONNECTOR_LANDINGS].add(
                Asset(
                    name=f"headroom_connector_{self.connector}_{self.obj}", uri=landed_asset_uri(self.connector, self.obj), group="headroom"
                ),
                extra={"records": report.landed or report.written, "watermark": report.watermark_after, "direction": report.direction},
            )
        return report.to_dict()

    def _outbox(self, db: Any, settings: Any) -> Any:
        from include.headroom.config import data_dir
        from include.headroom.connectors.base import CapacityExportConnector, TokenBucket, sync
        from include.headroom.connectors.engine import SyncOutcome

        from include.headroom.connectors.base import SyncReport

        connector = CapacityExportConnector(db, data_dir() / "outbox", page_size=settings.page_size)
        bucket = TokenBucket(rate=settings.quota.rate, capacity=settings.quota.burst)
        try:
            return SyncOutcome(sync(db, connector, self.obj, bucket))
        except Exception as exc:  # noqa: BLE001 - audited, then re-raised by execute
            return SyncOutcome(SyncReport(connector=self.connector, object=self.obj, errors=[str(exc)]), exc)
