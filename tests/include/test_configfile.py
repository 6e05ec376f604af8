"""The YAML reader: line-numbered errors, duplicate keys, cron checks, and read tracking."""

from __future__ import annotations

import pickle

import pytest

from include.headroom.configfile import build, leaf_keys, read_keys, read_yaml, require, require_cron, track_reads, unread_keys
from include.headroom.exceptions import ConfigError


def test_reads_a_mapping(tmp_path):
    (tmp_path / "a.yaml").write_text("x: 1\nnested: {y: [1, 2]}\n")
    assert read_yaml(tmp_path / "a.yaml") == {"x": 1, "nested": {"y": [1, 2]}}
    assert type(read_yaml(tmp_path / "a.yaml")) is dict  # plain values outside the key test


@pytest.mark.parametrize("text, message", [
    ("a: 1\nb: [1, 2\nc: 3\n", r"bad\.yaml:3:\d+: not valid YAML: "),
    ("a: 1\n  b: 2\n", r"bad\.yaml:2:4: not valid YAML: mapping values are not allowed"),
    ("warming:\n  lead_time_s: 1\n  max_keys: 2\n  lead_time_s: 3\n",
     r"bad\.yaml:4:3: not valid YAML: duplicate key 'lead_time_s' \(first on line 2\)"),
    ("- 1\n- 2\n", r"bad\.yaml:1:1: must hold a mapping at top level, found list"),
])
def test_errors_name_file_line_and_column(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_yaml(tmp_path / "bad.yaml")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"configuration file .*nope\.yaml is missing"):
        read_yaml(tmp_path / "nope.yaml")


def test_require_and_build_name_the_key():
    with pytest.raises(ConfigError, match="^cache.yaml warming.max_keys=0 must be > 0$"):
        require(False, "cache.yaml warming.max_keys=0 must be > 0")
    require(True, "never raised")

    def settings(a: int, b: int = 2) -> tuple[int, int]:
        return a, b

    assert build(settings, {"a": 1}, "x.yaml s") == (1, 2)
    with pytest.raises(ConfigError, match=r"^x\.yaml s: .*unexpected keyword argument 'c'"):
        build(settings, {"a": 1, "c": 3}, "x.yaml s")


def test_cron_expressions_are_checked_naming_file_and_key():
    assert require_cron(" 15 */6 * * * ", "cache.yaml warming.schedule") == "15 */6 * * *"
    for bad in ("15 */6 * *", "61 * * * *", "every hour", None, "@daily"):
        with pytest.raises(ConfigError, match=r"^alerts\.yaml digest\.schedule=.* is not a cron expression"):
            require_cron(bad, "alerts.yaml digest.schedule")


def test_tracking_records_lookups_unpacking_and_iteration(tmp_path):
    (tmp_path / "t.yaml").write_text(
        "a: 1\nb: 2\nkept: {x: 1, y: 2}\nunpacked: {p: 1, q: 2}\nlisted: [{n: 1, m: 2}, {n: 3}]\nwalked: {k1: 1, k2: 2}\ndead: {z: 1}\n")
    with track_reads() as files:
        raw = read_yaml(tmp_path / "t.yaml")
        raw["a"]
        raw.get("kept")["x"]
        dict(**raw["unpacked"])
        [item["n"] for item in raw["listed"]]
        list(raw["walked"].items())
    assert [p.name for p, _ in files] == ["t.yaml"]
    assert pickle.loads(pickle.dumps(raw)) == read_yaml(tmp_path / "t.yaml")  # pickles as plain data
    assert list(dict.fromkeys(leaf_keys(raw))) == ["a", "b", "kept.x", "kept.y", "unpacked.p", "unpacked.q", "listed[].n", "listed[].m",
                                    "walked.k1", "walked.k2", "dead.z"]
    assert {"a", "kept", "kept.x", "unpacked.p", "unpacked.q", "listed", "listed[].n", "walked.k1"} <= read_keys(raw)
    assert unread_keys(raw) == ["b", "kept.y", "listed[].m", "dead.z"]
