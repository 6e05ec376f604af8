"""Write the README's "Bad input and faults" table from the catalogue's cases (``tests/catalogue/catalogue_cases.py``).

``python scripts/catalogue_table.py`` rewrites the table between its markers in README.md;
``--check`` exits 1 when the README's table differs from the cases (a test runs it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN, END = "<!-- catalogue:begin (scripts/catalogue_table.py writes this table) -->", "<!-- catalogue:end -->"
KINDS = {"file": "file", "cli": "command", "config": "config", "server": "server", "process": "processes"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The Markdown table: one row per case (id, kind, the bad input or fault, the outcome it must have)."""
    sys.path.insert(0, str(ROOT / "tests" / "catalogue"))
    try:
        from catalogue_cases import CASES
    finally:
        sys.path.pop(0)
    lines = [
        f"{len(CASES)} cases (`tests/catalogue/`), each asserted exactly; for every batch rows in = stored + quarantined + "
        "exact duplicates.",
        "",
        "| case | kind | bad input or fault | outcome |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{c.id}` | {KINDS[c.kind]} | {_cell(c.description)} | {_cell(c.expected.describe())} |" for c in CASES]
    return "\n".join(lines)


def rewritten(readme: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the markers {BEGIN!r} and {END!r}")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{render()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md's table is stale")
    args = parser.parse_args(argv)
    current = README.read_text()
    wanted = rewritten(current)
    if args.check:
        if wanted != current:
            print("README.md's bad-input table is stale: run python scripts/catalogue_table.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
