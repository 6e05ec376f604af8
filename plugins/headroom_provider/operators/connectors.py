"""SyncConnectorOperator: one incremental sync of one connector object, audited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class SyncConnectorOperator(BaseOperator):
    """Sync ``obj`` of ``connector`` from its watermark; the watermark only advances once records are landed.

    :param connector: the connector's name (``capacity_export`` in the embedded default).
    :param obj: the object to sync (e.g. ``capacity``).
    """

    template_fields: Sequence[str] = ("connector", "obj")
    ui_color = "#e2ece9"

    def __init__(self, *, connector: str, obj: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connector = connector
        self.obj = obj

    def execute(self, context: Context) -> dict[str, Any]:
        from headroom_provider.defaults import config, store
        from headroom_provider.operators._audit import audit
        from include.headroom.audit import AuditRecord, Status
        from include.headroom.config import data_dir
        from include.headroom.connectors.base import CapacityExportConnector, TokenBucket, sync

        if self.connector != CapacityExportConnector.name:
            raise ValueError(f"connector={self.connector!r} is not available; connectors: [{CapacityExportConnector.name!r}]")
        quota = config().connectors.connectors["local_outbox"]
        db = store()
        connector = CapacityExportConnector(db, data_dir() / "outbox", page_size=int(quota["batch_size"]))
        bucket = TokenBucket(rate=float(quota["calls_per_10s"]) / 10.0, capacity=float(quota["calls_per_10s"]))
        report = sync(db, connector, self.obj, bucket)
        audit(context, AuditRecord(kind="connector", service=f"{self.connector}:{self.obj}", action="sync",
                                   status=Status.APPLIED, dry_run=False, executor=self.connector,
                                   reason=f"read {report.read}, wrote {report.written}, failed {report.failed} in {report.pages} pages",
                                   before={"watermark": report.watermark_before}, after={"watermark": report.watermark_after},
                                   detail=report.to_dict()))
        self.log.info("Synced %s/%s: %s", self.connector, self.obj, report.to_dict())
        return report.to_dict()
