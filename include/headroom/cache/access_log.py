"""Access logs per service (cache key, timestamp, size, hit or miss): the sample fleet's deterministic log, or files.

The sample log follows the fleet's load model: per fleet step, a Poisson number of requests
(``expected_load x step x sample_fraction``) over a Zipf key population with log-normal object
sizes, each a hit with the fleet's simulated cache hit ratio at that step. Everything is seeded
per (service, step), so any window of the log is the same whichever window it is read with.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from include.headroom.exceptions import DataError, InvalidArgumentError, SchemaError
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from include.headroom.cache.settings import AccessLogSettings
    from include.headroom.metrics.sample_fleet import SampleFleet

ACCESS_LOG_COLUMNS = ("ts", "service", "key", "size_bytes", "hit")
MAX_OBJECT_BYTES = 8 * 1024 * 1024


def sample_key(service: str, rank: int) -> str:
    """The cache key of the ``rank``-th most popular object of ``service`` (1-based)."""
    return f"{service}:item:{rank}"


def key_sizes(service: str, population: int, seed: int) -> np.ndarray:
    """Object sizes in bytes of ``service``'s key population (index 0 = rank 1): log-normal, 64 B to 8 MiB."""
    import numpy as np

    rng = np.random.default_rng([seed, zlib.crc32(service.encode()), 1])
    return np.clip(rng.lognormal(mean=7.5, sigma=1.2, size=population), 64, MAX_OBJECT_BYTES).astype(np.int64)


def sample_access_log(
    fleet: SampleFleet, settings: AccessLogSettings, service: str, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """The sample fleet's access log of ``service`` in ``[start, end)``, ordered by time.

    :raises DataError: for a service the fleet does not have.
    """
    import numpy as np
    import pandas as pd

    if end <= start:
        raise DataError(f"access log window [{start}, {end}) of {service!r} is empty")
    svc = fleet.config.service(service)
    step = pd.Timedelta(seconds=fleet.step)
    steps = pd.date_range(start.floor(step), end, freq=step, inclusive="left", tz="UTC")
    if len(steps) == 0:
        steps = pd.DatetimeIndex([start.floor(step)])
    load = fleet.expected_load(svc, steps)
    hit_ratio = fleet.simulate(service, steps)["cache_hit_ratio"]
    ranks = np.arange(1, settings.population + 1)
    weights = 1.0 / ranks**settings.zipf_exponent
    cdf = np.cumsum(weights / weights.sum())
    sizes = key_sizes(service, settings.population, fleet.fleet.seed)
    salt = zlib.crc32(service.encode())
    parts = []
    for t, rps, ratio in zip(steps, load, hit_ratio, strict=False):
        number = int((t - fleet.anchor) // step)
        rng = np.random.default_rng([fleet.fleet.seed, salt, number + (1 << 24)])
        n = int(rng.poisson(rps * fleet.step * settings.sample_fraction))
        offsets = np.sort(rng.uniform(0, fleet.step, n))
        idx = np.minimum(np.searchsorted(cdf, rng.uniform(0, 1, n)), settings.population - 1)
        hits = rng.uniform(0, 1, n) < ratio
        parts.append(pd.DataFrame({"ts": t + pd.to_timedelta(offsets, unit="s"), "rank": idx + 1, "size_bytes": sizes[idx], "hit": hits}))
    log = pd.concat(parts, ignore_index=True)
    log = log[(log["ts"] >= start) & (log["ts"] < end)]
    log.insert(1, "service", service)
    log.insert(2, "key", [sample_key(service, int(r)) for r in log["rank"]])
    return log.drop(columns="rank").reset_index(drop=True)[list(ACCESS_LOG_COLUMNS)]


def read_access_log(path: str | Path, service: str | None = None) -> pd.DataFrame:
    """Read an access log file (``.csv`` or ``.jsonl``) with the columns ``ts, key, size_bytes, hit`` (``service`` optional).

    :raises SchemaError: naming the file and the missing columns.
    :raises DataError: naming the file, row and field of the first unusable value.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"access log {path} does not exist")
    try:
        raw = (
            pd.read_json(path, lines=True, dtype=False) if path.suffix == ".jsonl" else pd.read_csv(path, dtype=str, keep_default_na=False)
        )
    except ValueError as exc:
        raise DataError(f"access log {path} cannot be parsed: {exc}") from exc
    missing = [c for c in ("ts", "key", "size_bytes", "hit") if c not in raw.columns]
    if missing:
        raise SchemaError(f"access log {path} lacks columns {missing}; it has {list(raw.columns)}")
    if "service" not in raw.columns:
        if service is None:
            raise SchemaError(f"access log {path} has no 'service' column and no service was given")
        raw["service"] = service

    def convert(field: str, fn: Callable[[Any], Any]) -> list[Any]:
        out = []
        for row, value in enumerate(raw[field], start=2 if path.suffix != ".jsonl" else 1):
            try:
                out.append(fn(value))
            except (TypeError, ValueError) as exc:
                raise DataError(f"access log {path} row {row} field {field!r}: {value!r} is not valid ({exc})") from exc
        return out

    def size(value: Any) -> int:
        number = int(value)
        if number < 0:
            raise InvalidArgumentError("negative size")
        return number

    def flag(value: Any) -> bool:
        text = str(value).strip().lower()
        if text in ("1", "true", "hit"):
            return True
        if text in ("0", "false", "miss"):
            return False
        raise InvalidArgumentError("expected hit/miss, true/false or 1/0")

    def key(value: Any) -> str:
        text = str(value)
        if not text:
            raise InvalidArgumentError("empty key")
        return text

    log = pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(convert("ts", lambda v: utc(pd.Timestamp(v)))),
            "service": raw["service"].astype(str),
            "key": convert("key", key),
            "size_bytes": convert("size_bytes", size),
            "hit": convert("hit", flag),
        }
    )
    if service is not None:
        log = log[log["service"] == service]
    return log.sort_values("ts", kind="stable").reset_index(drop=True)


def load_access_log(
    settings: AccessLogSettings, service: str, start: pd.Timestamp, end: pd.Timestamp, fleet: SampleFleet | None = None
) -> pd.DataFrame:
    """The access log of ``service`` in ``[start, end)`` from the configured source."""
    if settings.source == "sample_fleet":
        if fleet is None:
            from include.headroom.metrics.sample_fleet import SampleFleet

            fleet = SampleFleet()
        return sample_access_log(fleet, settings, service, start, end)
    folder = Path(settings.path or "")
    candidates = [folder / f"{service}.jsonl", folder / f"{service}.csv"]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise DataError(f"no access log for {service!r}: looked for {[str(p) for p in candidates]}")
    log = read_access_log(found, service)
    return log[(log["ts"] >= start) & (log["ts"] < end)].reset_index(drop=True)


def sample_value(key: str, size_bytes: int) -> bytes:
    """The sample origin's value for ``key``: ``size_bytes`` deterministic bytes."""
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (size_bytes // len(seed) + 1))[:size_bytes]


def replay_hit_ratio(log: pd.DataFrame, cached: Callable[[list[str]], list[bool]]) -> float:
    """Hit ratio of replaying ``log``'s keys against a cache: ``cached(keys)`` tells which keys are present."""
    if len(log) == 0:
        return 0.0
    present = cached(list(log["key"]))
    return sum(present) / len(present)
