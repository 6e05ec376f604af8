"""Task helpers of headroom_provider.defaults: json_safe (valid JSON XComs on PostgreSQL and SQLite) and service_batches."""

from __future__ import annotations

import json
import math

from headroom_provider.defaults import json_safe


def test_non_finite_floats_become_none_everywhere_and_nothing_else_changes():
    value = {"mape": math.nan, "ok": 0.5, "rows": [1, math.inf, {"x": -math.inf, "s": "nan"}], "t": (1.0, math.nan), "b": True}
    out = json_safe(value)
    assert out == {"mape": None, "ok": 0.5, "rows": [1, None, {"x": None, "s": "nan"}], "t": [1.0, None], "b": True}
    json.dumps(out, allow_nan=False)  # strict JSON, as PostgreSQL's json type wants
    assert math.isnan(value["mape"])  # the caller's value is not changed


def test_service_batches_are_neighbouring_names(config):
    from headroom_provider.defaults import service_batches

    names = sorted(s.name for s in config.services)
    batches = service_batches(5)
    assert [n for b in batches for n in b] == names and [len(b) for b in batches] == [5, 5, len(names) - 10]
    assert service_batches(2, ["web", "api", "db"]) == [["api", "db"], ["web"]]
