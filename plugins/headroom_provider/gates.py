"""Gates in the Airflow layer: a task with no service it may act on is skipped (AirflowSkipException), with the reasons."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from collections.abc import Sequence

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def skip_unless_fresh(step: str, as_of: pd.Timestamp, names: Sequence[str] | None = None) -> dict[str, str | None]:
    """Gate ``names`` (default: the catalog) for ``step`` at ``as_of``; skip the whole task when none may be acted on.

    Each refused service is recorded in the audit trail (kind ``gate``) by the gate itself; the
    ones that pass are left to the step, which re-checks them per service.

    :raises AirflowSkipException: naming every service and its reason, when no service passes.
    """
    from airflow.sdk.exceptions import AirflowSkipException

    from headroom_provider.defaults import config, store
    from include.headroom.validation.gates import gate_services

    reasons = gate_services(store(), config(), as_of, step, names)
    refused = {service: why for service, why in reasons.items() if why}
    for service, why in refused.items():
        log.warning("%s skips %s: %s", step, service, why)
    if reasons and len(refused) == len(reasons):
        details = "; ".join(f"{service}: {why}" for service, why in refused.items())
        raise AirflowSkipException(f"{step}: no service may be acted on at {as_of.isoformat()} ({details})")
    return reasons

