"""The Airflow pools the DAGs use, from one place, in ``airflow pools import`` form.

``airflow_settings.yaml`` lists them (the Astro CLI applies that file), and ``connectors.yaml`` (of
the configuration in use) decides each connector's pool and slots. ``make airflow-db``, the test
fixtures and the local cluster all import what :func:`airflow_pools` returns
(``python -m include.headroom pools``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from include.headroom.config import PROJECT_ROOT
from include.headroom.configfile import read_once
from include.headroom.exceptions import ConfigError

SETTINGS_FILE = PROJECT_ROOT / "airflow_settings.yaml"


def airflow_pools(settings_file: str | Path | None = None, config_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Every pool: those of ``airflow_settings.yaml``, then one per connector of ``connectors.yaml`` (which wins on slots).

    :raises ConfigError: naming the file and entry when a pool has no name or no whole number of slots.
    """
    from include.headroom.connectors.settings import connector_pools, read_connectors_file

    path = Path(settings_file or SETTINGS_FILE)
    listed = (read_once(path).get("airflow") or {}).get("pools") or []
    pools: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(listed):
        name, slots = (entry or {}).get("pool_name"), (entry or {}).get("pool_slot")
        if not isinstance(name, str) or not name or not isinstance(slots, int) or isinstance(slots, bool) or slots < 1:
            raise ConfigError(f"{path}: airflow.pools[{i}] needs a pool_name and a whole pool_slot >= 1, got {entry!r}")
        pools[name] = {"slots": slots, "description": str(entry.get("pool_description") or name), "include_deferred": False}
    pools.update(connector_pools(read_connectors_file(config_dir)))
    return pools
