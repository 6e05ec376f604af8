"""Shared fixtures of the catalogue: one configuration without Data Docs (the catalogue checks outcomes, not HTML)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def catalogue_config(config):
    """The shipped configuration with Data Docs off, so 60 batches stay fast."""
    validation = dataclasses.replace(config.pipeline.validation, data_docs=False)
    return dataclasses.replace(config, pipeline=dataclasses.replace(config.pipeline, validation=validation))


from tests.servers import moto_server, postgres_server  # noqa: E402, F401 (session fixtures shared by the server cases)
