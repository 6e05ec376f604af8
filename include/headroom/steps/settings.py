"""Pipeline settings: ``pipeline.yaml`` (where metrics are ingested from, how far back) and the rules of ``validation.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from include.headroom.configfile import load
from include.headroom.configfile import require as _require
from include.headroom.validation.settings import ValidationConfig, load_validation

FILE = "pipeline.yaml"


@dataclass(frozen=True)
class PipelineConfig:
    source: str
    initial_history_days: int
    lookback_s: int
    validation: ValidationConfig

    def __post_init__(self) -> None:
        _require(self.initial_history_days >= 0, f"pipeline.ingest.initial_history_days={self.initial_history_days!r} must be >= 0")


def parse_ingest(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ingest`` section of a ``pipeline.yaml`` mapping, typed."""
    ingest = raw["ingest"]
    return {
        "source": str(ingest["source"]),
        "initial_history_days": int(ingest["initial_history_days"]),
        "lookback_s": int(ingest["lookback_s"]),
    }


def load_pipeline(directory: Path) -> PipelineConfig:
    """``pipeline.yaml`` and ``validation.yaml`` of ``directory`` (each read once per process)."""
    return PipelineConfig(**load(directory / FILE, parse_ingest), validation=load_validation(directory))
