"""Re-exports of the PostgreSQL store, which moved to :mod:`include.headroom.store.postgres` (no logic here).

Kept only so code written against the old path (branches developed in parallel) still imports; new
code imports from ``include.headroom.store``.
"""

from __future__ import annotations

from include.headroom.store.postgres import PG_TYPES, PostgresStore, translate_placeholders

__all__ = ["PG_TYPES", "PostgresStore", "translate_placeholders"]
