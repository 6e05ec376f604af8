"""Times are typed inside the library: a parameter named like a time is a ``pd.Timestamp`` (or ``datetime``), never ``Any``.

Times are normalised once where they enter (the Airflow layer, the command line, text read back from XCom or
files); only the constructors below, which take text given by a user or a test, may accept anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[2] / "include" / "headroom"
TIME_NAMES = {"as_of", "now", "start", "end", "window_start", "window_end", "since", "until", "interval_start", "interval_end",
              "read_from", "at"}
# (module, function, parameter): entries that take a time as the user wrote it and normalise it themselves
TAKES_TEXT = {
    ("metrics/sources.py", "__init__", "now"),
    ("metrics/files.py", "__init__", "now"),
}


def _any_typed_times() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(LIBRARY.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = node.args
            for arg in args.posonlyargs + args.args + args.kwonlyargs:
                annotation = ast.unparse(arg.annotation) if arg.annotation else ""
                if arg.arg in TIME_NAMES and annotation in ("Any", "Any | None"):
                    found.append((path.relative_to(LIBRARY).as_posix(), node.name, arg.arg))
    return found


def test_no_time_parameter_is_typed_any():
    loose = [f"{module}: {function}({param}: Any)" for module, function, param in _any_typed_times()
             if (module, function, param) not in TAKES_TEXT]
    assert loose == [], "type these as pd.Timestamp and normalise at the boundary instead:\n" + "\n".join(loose)


def test_the_allowed_entries_still_exist():
    assert set(_any_typed_times()) == TAKES_TEXT
