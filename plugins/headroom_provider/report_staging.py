"""Files the capacity_report DAG's tasks hand to each other: the figures and the fleet page's plots of one run.

They live under the reports folder (``.staging/<run id>/``), which every worker shares, instead of in
XComs: at 1,000 services the figures alone are megabytes. ``write_report`` removes them once the
report is written; a failed run leaves them for its retry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from include.headroom.fileio import safe_filename, write_atomic


def staging_dir(context: Mapping[str, Any]) -> Path:
    from include.headroom.config import reports_dir

    return reports_dir() / ".staging" / safe_filename(context["run_id"])


def save_figures(context: Mapping[str, Any], figures: Mapping[str, Any]) -> Path:
    path = staging_dir(context) / "figures.json"
    write_atomic(path, json.dumps(figures).encode())
    return path


def load_figures(context: Mapping[str, Any]) -> dict[str, Any]:
    path = staging_dir(context) / "figures.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no figures for this run; clear collect_figures to collect them again")
    return json.loads(path.read_text())


def save_plots(context: Mapping[str, Any], plots: Mapping[str, bytes]) -> None:
    for name, png in plots.items():
        write_atomic(staging_dir(context) / "plots" / f"{safe_filename(name)}.png", png)


def load_plots(context: Mapping[str, Any], names: list[str]) -> dict[str, bytes]:
    """The staged plots of ``names``; a missing one is an error naming the service (its batch did not draw it)."""
    folder = staging_dir(context) / "plots"
    missing = [n for n in names if not (folder / f"{safe_filename(n)}.png").exists()]
    if missing:
        raise FileNotFoundError(f"{folder}: no plot for {missing}; clear their draw_service_pages task to draw them again")
    return {n: (folder / f"{safe_filename(n)}.png").read_bytes() for n in names}


def discard(context: Mapping[str, Any]) -> None:
    shutil.rmtree(staging_dir(context), ignore_errors=True)
