"""The README's "Bad input and faults" table is generated from the catalogue's cases and must not be stale."""

from __future__ import annotations

from catalogue_cases import CASES

from scripts.catalogue_table import README, render, rewritten


def test_the_catalogue_has_at_least_60_cases_with_unique_ids():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


def test_readme_table_matches_the_cases():
    readme = README.read_text()
    assert rewritten(readme) == readme, "README.md's bad-input table is stale: run python scripts/catalogue_table.py"
    for case in CASES:
        assert f"| `{case.id}` |" in render()
