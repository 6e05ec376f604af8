"""The pipeline as steps: each a function over a store with typed inputs, what every DAG task and the CLI call.

``ingest`` stages a batch, ``validate`` moves it into ``metrics`` (or ``quarantine``), ``forecast`` writes
capacity, ``analyse`` SLO status and findings, ``act`` plans scaling, capacity schedules and cache warming,
``report`` summarises per service. Each step takes explicit times (the run's data interval or as-of time), so a
re-run or a backfill of the same interval does the same thing. Read models live in
:mod:`include.headroom.store.queries`.
"""

from __future__ import annotations

__all__ = ["act", "analyse", "common", "forecast", "ingest", "report", "validate"]
