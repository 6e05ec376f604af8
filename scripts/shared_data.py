"""Where the development data sets live: ``../shared/datasets`` beside the project (present in CI), or ``$HEADROOM_SHARED_DATASETS``."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def datasets_dir() -> Path:
    """The folder holding the shared data sets (it may not exist on a fresh clone)."""
    return Path(os.environ.get("HEADROOM_SHARED_DATASETS") or PROJECT_ROOT.parent / "shared" / "datasets")


def petshop_dir() -> Path | None:
    """The PetShop root-cause train split, or None when this machine does not have it."""
    path = datasets_dir() / "petshop-train"
    return path if (path / "README.md").exists() else None
