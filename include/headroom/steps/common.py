"""What the steps share: the catalog services a step works on."""

from __future__ import annotations

from collections.abc import Sequence

from include.headroom.config import HeadroomConfig
from include.headroom.catalog import Service


def select_services(config: HeadroomConfig, names: Sequence[str] | None) -> list[Service]:
    """The catalog services named (in that order), or every catalog service when ``names`` is None."""
    return [config.service(n) for n in names] if names is not None else list(config.services)
