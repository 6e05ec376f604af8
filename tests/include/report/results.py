"""The sample fleet's results in a store, made once per test process with the pipeline's own steps (no Airflow).

21 days of the fleet ingested and validated, forecasts from two runs (so the earlier one is
scored against actuals), the SLO and bottleneck analysis, and the scaling decisions applied
dry-run to the audit trail: what the report and the Headroom page read.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pandas as pd

from tests.conftest import ANCHOR

AS_OF = pd.Timestamp(f"{ANCHOR}T02:00Z")
EARLIER_RUN = AS_OF - pd.Timedelta(days=2)


@lru_cache(maxsize=1)
def fleet_results_dir() -> Path:
    """A data folder (``<dir>/store``) with the fleet's results at :data:`AS_OF`; built on first use, then shared."""
    from include.headroom.store import ParquetStore

    root = Path(tempfile.mkdtemp(prefix="headroom-report-"))
    fill_fleet_results(ParquetStore(root / "store"))
    return root


def fill_fleet_results(store) -> None:
    """Write the fleet's results at :data:`AS_OF` into ``store`` (any backend), with the pipeline's own steps."""
    from include.headroom.steps import act, analyse, forecast, ingest, validate
    from include.headroom.audit import AuditRecord, Status, record
    from include.headroom.config import get_config
    from include.headroom.metrics.sources import SampleFleetSource
    from include.headroom.scaling.decide import ScalingDecision
    from include.headroom.scaling.executors import DryRunExecutor

    config = get_config()
    source = SampleFleetSource(config, anchor=ANCHOR)
    ingest.ingest(store, config, source, AS_OF - pd.Timedelta(minutes=15), AS_OF, history_days=21)
    validate.validate_pending(store, config)
    names = [s.name for s in config.services]
    forecast.run_forecasts(store, config, names, EARLIER_RUN)
    forecast.run_forecasts(store, config, names, AS_OF)
    analyse.run_analysis(store, config, names, AS_OF - pd.Timedelta(days=14), AS_OF)
    # The records the scaling DAG's record_not_applied writes for dry-run services, from the executor that writes them.
    records = [
        replace(DryRunExecutor().apply(ScalingDecision.from_dict(d)), dag_id="scaling_actions",
                run_id=f"scheduled__{AS_OF.isoformat()}", task_id="record_not_applied")
        for d in act.plan_all_scaling(store, config, AS_OF).decisions if d["action"] != "skip"
    ]
    records += [
        AuditRecord(kind="cache", service=p["service"], action="warm", status=Status.DRY_RUN, dry_run=True, executor="dry_run",
                    reason=f"trigger {p['trigger']}", before={"hit_rate": p["hit_rate"]}, after={"keys": p.get("keys")},
                    dag_id="cache_warming", run_id=f"scheduled__{AS_OF.isoformat()}", task_id="warm")
        for p in act.plan_all_warming(store, config, AS_OF).plans if p["trigger"]
    ]
    record(store, *records, now=AS_OF)


def differences(a, b, path: str = "") -> list[str]:
    """Where two JSON documents (report twins) differ: keys, lengths, values (floats to 1e-9 relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a.keys() ^ b.keys())}"]
        return [d for k in a for d in differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items against {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return [] if abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b)) else [f"{path}: {a!r} against {b!r}"]
    return [] if a == b else [f"{path}: {a!r} against {b!r}"]
