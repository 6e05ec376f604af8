"""MetricsFreshnessSensor: waits until validated metrics are recent enough to act on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class MetricsFreshnessSensor(BaseSensorOperator):
    """Succeeds once at least ``min_fresh_share`` of the catalog's services have fresh, valid data at the run's time.

    A service counts when its latest validation passed and its newest validated point is recent
    (``validation.yaml``). On timeout the sensor is skipped, not failed (``soft_fail`` defaults to
    True): stale data is a reason to refuse acting, and the downstream actions are skipped with it.

    :param min_fresh_share: the share of services that must be fresh, in (0, 1].
    """

    template_fields = ("min_fresh_share",)

    def __init__(self, *, min_fresh_share: float = 0.5, **kwargs: Any) -> None:
        kwargs.setdefault("soft_fail", True)
        super().__init__(**kwargs)
        self.min_fresh_share = min_fresh_share

    def poke(self, context: Context) -> bool:
        from headroom_provider.defaults import config, run_window, store
        from include.headroom.steps.validate import freshness

        share = float(self.min_fresh_share)
        if not 0 < share <= 1:
            raise ValueError(f"min_fresh_share={self.min_fresh_share!r} must be in (0, 1]")
        _, as_of = run_window(context)
        gate = freshness(store(), config(), as_of)
        stale = {s: why for s, why in gate.items() if why}
        for service, why in stale.items():
            self.log.warning("Not fresh: %s: %s", service, why)
        return (len(gate) - len(stale)) / max(len(gate), 1) >= share
