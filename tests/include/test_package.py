"""The library's public surface and its independence from Airflow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import include.headroom as headroom

LIBRARY = Path(headroom.__file__).parent


def test_public_api_is_what_all_lists():
    assert sorted(headroom.__all__) == headroom.__all__
    for name in headroom.__all__:
        assert hasattr(headroom, name), name
    assert {"HeadroomError", "ParquetStore", "get_config", "load_config"} <= set(headroom.__all__)


def test_library_source_never_imports_airflow():
    offenders = []
    for path in LIBRARY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.relative_to(LIBRARY)}: {n}" for n in names if n == "airflow" or n.startswith("airflow.")]
    assert offenders == []


def test_importing_every_library_module_loads_no_airflow():
    modules = sorted(
        "include." + ".".join(p.relative_to(LIBRARY.parent).with_suffix("").parts).replace(".__init__", "")
        for p in LIBRARY.rglob("*.py")
        if p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        + "".join(f"importlib.import_module({m!r})\n" for m in modules)
        + "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    assert len(modules) > 15


def test_errors_form_one_tree():
    for name in (
        "ConfigError",
        "DataError",
        "SchemaError",
        "StaleDataError",
        "StoreError",
        "ForecastError",
        "SourceError",
        "ActionError",
        "GuardRailError",
    ):
        assert issubclass(getattr(headroom, name), headroom.HeadroomError)
    assert issubclass(headroom.SchemaError, headroom.DataError)
    assert issubclass(headroom.GuardRailError, headroom.ActionError)
