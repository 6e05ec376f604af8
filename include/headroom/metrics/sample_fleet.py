"""The embedded sample fleet: a seeded, deterministic simulation of the catalog's services with known incidents.

Load follows daily and weekly seasons and a growth trend; a simulated autoscaler
sets replicas from load; CPU follows load per replica; latency rises
non-linearly as utilization nears saturation and with database time; the cache
hit ratio shields the database. Incidents from ``sample_fleet.yaml`` are placed
relative to the *anchor* (the fleet's "now") and their ground truth is kept.

Noise is drawn per (service, day) from a generator seeded by both, so any
interval is reproducible on its own: generating a day alone or inside a
60-day range gives the same values.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig, get_config
from include.headroom.metrics.sample_fleet_settings import Incident
from include.headroom.catalog import Service, Tier
from include.headroom.exceptions import DataError
from include.headroom.metrics.schema import format_labels
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SOURCE_NAME = "sample_fleet"
FLEET_FILE = "fleet.json"
GROUND_TRUTH_FILE = "ground_truth.json"

# metric -> unit; the order is also the row of each metric's noise.
METRIC_UNITS: dict[str, str] = {
    "throughput": "req/s",
    "response_time": "ms",
    "error_rate": "ratio",
    "cpu_utilization": "percent",
    "memory_utilization": "percent",
    "cache_hit_ratio": "ratio",
    "database_performance": "ms",
    "connection_pool": "ratio",
    "replicas": "count",
}
_BASE_ERROR_RATE = {
    Tier.BASIC: 0.002,
    Tier.STANDARD: 0.001,
    Tier.PROFESSIONAL: 0.0003,
    Tier.ENTERPRISE: 0.0001,
    Tier.CRITICAL: 0.00002,
}
_HPA_LAG_STEPS = 2  # the simulated autoscaler reacts to load two steps late


@dataclass(frozen=True)
class GroundTruth:
    """One injected incident, in absolute time, with what analysis should conclude."""

    kind: str
    service: str
    start: str
    end: str
    expected_type: str
    expected_cause: str
    remedy: str
    saturation_at: str | None = None
    capacity_limit: float | None = None
    root_cause: str | None = None  # the node where the incident was injected (the symptom's service, a database it uses, a callee)


def default_anchor() -> pd.Timestamp:
    """Today 00:00 UTC, or ``$HEADROOM_SAMPLE_ANCHOR``."""
    import pandas as pd

    raw = os.environ.get("HEADROOM_SAMPLE_ANCHOR")
    return (pd.Timestamp(raw, tz="UTC") if raw else pd.Timestamp.now(tz="UTC")).floor("D")


class SampleFleet:
    """The simulated fleet for one configuration and anchor."""

    def __init__(self, config: HeadroomConfig | None = None, anchor: Any = None) -> None:
        self.config = config or get_config()
        self.fleet = self.config.sample_fleet
        self.anchor = utc(anchor).floor("D") if anchor is not None else default_anchor()
        self.step = self.fleet.step_s
        self.per_day = 86400 // self.step
        self._services = {svc.name: (i, svc) for i, svc in enumerate(self.config.services)}
        unknown = sorted(set(self.fleet.metrics) - set(METRIC_UNITS))
        if unknown:
            raise DataError(f"sample_fleet.yaml metrics: unknown {unknown}; the simulation knows {list(METRIC_UNITS)}")
        self.metrics = tuple(m for m in METRIC_UNITS if not self.fleet.metrics or m in self.fleet.metrics)

    # -- the load model ------------------------------------------------------------------------

    def _days(self, ts: pd.DatetimeIndex) -> np.ndarray:
        return (ts - self.anchor).total_seconds().to_numpy() / 86400.0

    def _incident_window(self, incident: Incident) -> tuple[float, float]:
        return incident.start_day, incident.start_day + incident.duration_h / 24.0

    def _incidents(self, service: str, kind: str) -> list[Incident]:
        return [i for i in self.fleet.incidents if i.service == service and i.kind == kind]

    def _dependency_incidents(self, svc: Service, kind: str) -> list[Incident]:
        """Incidents of ``kind`` injected into something ``svc`` calls (a shared database, a failing service)."""
        return [i for i in self.fleet.incidents if i.kind == kind and i.service in svc.dependencies]

    def capacity_limit(self, svc: Service) -> float:
        """Load (req/s) at which max replicas run at the CPU target: beyond it the service saturates."""
        return self.config.load_at_target(svc)

    def _saturation_rate(self, svc: Service, incident: Incident) -> float:
        """Extra daily growth rate that makes the expected weekday peak reach the limit ``magnitude`` days after the anchor."""
        peak_at_target = svc.base_rps * 1.5 * self._growth(svc, incident.magnitude)
        return math.log(self.capacity_limit(svc) / peak_at_target) / (incident.magnitude - incident.start_day)

    def _growth(self, svc: Service, days: Any) -> Any:
        index, _ = self._services[svc.name]
        rate = self.fleet.daily_growth * (0.5 + 0.5 * (index % 3))
        return (1.0 + rate) ** days

    def expected_load(self, svc: Service, ts: pd.DatetimeIndex) -> np.ndarray:
        """Noise-free requests/s of ``svc`` at ``ts``."""
        import numpy as np

        days = self._days(ts)
        hour = ts.hour.to_numpy() + ts.minute.to_numpy() / 60.0
        daily = 1.0 + 0.5 * np.sin(2 * np.pi * (hour - 8.0) / 24.0)
        week_day = ts.dayofweek.to_numpy() + hour / 24.0
        weekend = np.clip(np.minimum(week_day - 5.0, 7.0 - week_day) * 8.0, 0.0, 1.0)  # 3-hour ramps
        weekly = 1.0 - 0.25 * weekend
        load = svc.base_rps * daily * weekly * self._growth(svc, days)
        for inc in self._incidents(svc.name, "saturation"):
            load *= np.exp(self._saturation_rate(svc, inc) * np.clip(days - inc.start_day, 0, None))
        for inc in self._incidents(svc.name, "traffic_surge"):
            start, end = self._incident_window(inc)
            ramp = np.clip(np.minimum(days - start, end - days) * 96.0, 0.0, 1.0)  # 15-minute ramps
            load *= 1.0 + (inc.magnitude - 1.0) * ramp
        return load

    def _replicas(self, svc: Service, ts: pd.DatetimeIndex) -> np.ndarray:
        import pandas as pd

        lagged = ts - pd.Timedelta(seconds=self.step * _HPA_LAG_STEPS)
        return self.config.replicas_for(svc, self.expected_load(svc, lagged), clip=True)

    def _noise(self, index: int, ts: pd.DatetimeIndex) -> np.ndarray:
        """Standard normal noise, shape (metrics, len(ts)), seeded per (service, day relative to the anchor)."""
        import numpy as np

        steps = np.round((ts - self.anchor).total_seconds().to_numpy() / self.step).astype(np.int64)
        day, pos = np.divmod(steps, self.per_day)
        out = np.empty((len(METRIC_UNITS), len(ts)))
        for d in np.unique(day):
            rng = np.random.default_rng([self.fleet.seed, index, int(d) + (1 << 20)])
            block = rng.standard_normal((len(METRIC_UNITS), self.per_day))
            sel = day == d
            out[:, sel] = block[:, pos[sel]]
        return out

    def simulate(self, service: str, ts: pd.DatetimeIndex) -> dict[str, np.ndarray]:
        """Every metric of ``service`` at ``ts`` (a UTC index on the fleet's step)."""
        import numpy as np

        if service not in self._services:
            raise DataError(f"sample fleet has no service {service!r}")
        index, svc = self._services[service]
        noise = dict(zip(METRIC_UNITS, self._noise(index, ts), strict=False))
        days = self._days(ts)
        sigma = self.fleet.noise

        load = self.expected_load(svc, ts) * (1.0 + sigma * noise["throughput"])
        replicas = self._replicas(svc, ts)
        util = np.clip(load / (replicas * svc.capacity_per_replica_rps), 0.0, 0.97)

        hit_base = 0.86 + 0.02 * (index % 5)
        hit = np.full(len(ts), hit_base)
        for inc in self._incidents(service, "cache_loss"):
            start, end = self._incident_window(inc)
            inside = (days >= start) & (days < end)
            elapsed = np.clip((days - start) / (end - start), 0.0, 1.0)
            hit = np.where(inside, hit_base - (hit_base - inc.magnitude) * np.exp(-3.0 * elapsed), hit)
        hit = np.clip(hit + 0.006 * noise["cache_hit_ratio"], 0.0, 1.0)

        # Database: demand grows with misses; query time with database utilization.
        miss_nominal = 1.0 - hit_base
        db_util = np.clip(0.3 * (load / (svc.base_rps * 1.5)) * ((1.0 - hit) / miss_nominal), 0.0, 0.95)
        query_ms = 2.0 / (1.0 - db_util)
        shared_db = [i for i in self._dependency_incidents(svc, "database_slowdown") if i.service not in self._services]
        for inc in self._incidents(service, "database_slowdown") + shared_db:
            start, end = self._incident_window(inc)
            query_ms = np.where((days >= start) & (days < end), query_ms * inc.magnitude, query_ms)
        nominal_query_ms = 2.0 / (1.0 - 0.3 * 0.7)
        query_ms = query_ms * (1.0 + 0.04 * noise["database_performance"])

        queueing = (1.0 + 0.5 * util / (1.0 - util)) / 1.5
        db_share = ((1.0 - hit) / miss_nominal) * (query_ms / nominal_query_ms)
        latency = svc.base_latency_ms * (0.7 * queueing + 0.3 * db_share)

        error = np.full(len(ts), _BASE_ERROR_RATE[svc.tier]) * np.exp(0.25 * noise["error_rate"])
        error = error + 0.01 * np.clip((util - 0.9) / 0.07, 0.0, None)  # overload sheds a few requests
        cpu_scale = 1.0
        for inc in self._incidents(service, "dependency_failure"):
            start, end = self._incident_window(inc)
            inside = (days >= start) & (days < end)
            error = np.where(inside, inc.magnitude * (1.0 + 0.05 * noise["error_rate"]), error)
            latency = np.where(inside, latency * 1.6, latency)  # callers wait for timeouts
            cpu_scale = np.where(inside, 0.85, cpu_scale)
        for inc in self._dependency_incidents(svc, "dependency_failure"):
            # A failing callee fails most of the requests that need it, and callers wait for its timeouts.
            start, end = self._incident_window(inc)
            inside = (days >= start) & (days < end)
            error = np.where(inside, error + 0.7 * inc.magnitude * (1.0 + 0.05 * noise["error_rate"]), error)
            latency = np.where(inside, latency * 1.3, latency)
            cpu_scale = np.where(inside, 0.9, cpu_scale)

        memory = 38.0 + 12.0 * util
        for inc in self._incidents(service, "memory_leak"):
            start, end = self._incident_window(inc)
            inside = (days >= start) & (days < end)
            memory = memory + np.where(inside, 100.0 * inc.magnitude * (days - start) / (end - start), 0.0)
        memory = np.clip(memory + 0.4 * noise["memory_utilization"], 0.0, 100.0)
        error = error + 0.02 * np.clip((memory - 92.0) / 8.0, 0.0, None)

        cpu = np.clip(100.0 * (0.05 + 0.95 * util) * cpu_scale + 1.2 * noise["cpu_utilization"], 0.0, 100.0)
        pool = np.clip(
            0.25 * (load / replicas) / (svc.capacity_per_replica_rps * 0.5) * db_share + 0.02 * noise["connection_pool"], 0.0, 1.0
        )
        return {
            "throughput": np.clip(load, 0.0, None),
            "response_time": latency * (1.0 + 0.05 * noise["response_time"]),
            "error_rate": np.clip(error, 0.0, 1.0),
            "cpu_utilization": cpu,
            "memory_utilization": memory,
            "cache_hit_ratio": hit,
            "database_performance": query_ms,
            "connection_pool": pool,
            "replicas": replicas.astype(float),
        }

    # -- output ---------------------------------------------------------------------------------

    def grid(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
        """The fleet's timestamps in ``[start, end)``."""
        import pandas as pd

        start_ts, end_ts = utc(start), utc(end)
        first = start_ts.ceil(f"{self.step}s")
        return pd.date_range(first, end_ts, freq=f"{self.step}s", inclusive="left", unit="us")

    def generate(self, start: pd.Timestamp, end: pd.Timestamp, services: list[str] | None = None) -> pd.DataFrame:
        """Canonical long rows for ``[start, end)``."""
        import numpy as np
        import pandas as pd

        ts = self.grid(start, end)
        frames = []
        for name in services or list(self._services):
            _, svc = self._services.get(name, (None, None))
            if svc is None:
                raise DataError(f"sample fleet has no service {name!r}")
            if len(ts) == 0:
                continue
            tier_slo = self.config.tier(svc.tier).latency_slo
            simulated = self.simulate(name, ts)
            for metric in self.metrics:
                values = simulated[metric]
                labels = format_labels({"quantile": f"p{tier_slo.percentile}"}) if metric == "response_time" else ""
                frames.append(
                    pd.DataFrame(
                        {
                            "ts": ts,
                            "service": name,
                            "tier": svc.tier.value,
                            "metric": metric,
                            "value": np.round(values, 6),
                            "unit": METRIC_UNITS[metric],
                            "source": SOURCE_NAME,
                            "labels": labels,
                        }
                    )
                )
        if not frames:
            return pd.DataFrame(columns=["ts", "service", "tier", "metric", "value", "unit", "source", "labels"])
        return pd.concat(frames, ignore_index=True)

    def daily_history(self, days: int = 730, services: list[str] | None = None) -> pd.DataFrame:
        """Daily mean throughput (``ds``, ``service``, ``metric``, ``y``) for ``days`` before the anchor: medium and long horizons.

        The same load model as :meth:`generate` (daily and weekly seasons, growth, the
        saturation incident) averaged over each day, with day-level noise seeded per
        (service, day) so any span is reproducible on its own.
        """
        import numpy as np
        import pandas as pd

        hours = pd.date_range(self.anchor - pd.Timedelta(days=days), self.anchor, freq="1h", inclusive="left")
        day_index = pd.DatetimeIndex(hours.floor("D").unique())
        offsets = ((day_index - self.anchor) / pd.Timedelta(days=1)).to_numpy().astype(np.int64)
        frames = []
        for name in services or list(self._services):
            if name not in self._services:
                raise DataError(f"sample fleet has no service {name!r}")
            index, svc = self._services[name]
            daily = self.expected_load(svc, hours).reshape(len(day_index), 24).mean(axis=1)
            noise = np.array([np.random.default_rng([self.fleet.seed, index, int(d) + (1 << 21)]).standard_normal() for d in offsets])
            y = daily * (1.0 + 0.5 * self.fleet.noise * noise)
            frames.append(pd.DataFrame({"ds": day_index, "service": name, "metric": "throughput", "y": np.round(y, 6)}))
        return pd.concat(frames, ignore_index=True)

    def ground_truth(self, horizon_days: int = 90) -> list[GroundTruth]:
        """The injected incidents in absolute time; saturation incidents carry their exact saturation time."""
        import numpy as np
        import pandas as pd

        truths = []
        for inc in self.fleet.incidents:
            start = (self.anchor + pd.Timedelta(days=inc.start_day)).round("min")
            end = (start + pd.Timedelta(hours=inc.duration_h)).round("min")
            saturation_at = limit = None
            if inc.kind == "saturation":
                svc = self.config.service(inc.service)
                limit = self.capacity_limit(svc)
                ts = self.grid(self.anchor, self.anchor + pd.Timedelta(days=horizon_days))
                crossing = np.flatnonzero(self.expected_load(svc, ts) >= limit)
                saturation_at = ts[crossing[0]].isoformat() if len(crossing) else None
                end = start
            services = {s.name for s in self.config.services}
            if inc.service in services:
                truths.append(
                    GroundTruth(
                        kind=inc.kind,
                        service=inc.service,
                        start=start.isoformat(),
                        end=end.isoformat(),
                        expected_type=inc.expected_type,
                        expected_cause=inc.expected_cause,
                        remedy=inc.remedy,
                        saturation_at=saturation_at,
                        capacity_limit=limit,
                        root_cause=inc.root_cause or inc.service,
                    )
                )
            # Cross-service: every catalog service that calls the injected node shows the symptom too.
            # (a slow database is seen by its callers only: a service's own database slowdown does not reach its callers).
            if inc.kind == "dependency_failure" or (inc.kind == "database_slowdown" and inc.service not in services):
                for caller in self.config.services:
                    if inc.service in caller.dependencies:
                        truths.append(
                            GroundTruth(
                                kind=inc.kind,
                                service=caller.name,
                                start=start.isoformat(),
                                end=end.isoformat(),
                                expected_type=inc.expected_type,
                                expected_cause=inc.expected_cause,
                                remedy=inc.remedy,
                                root_cause=inc.root_cause or inc.service,
                            )
                        )
        return truths

    def write(self, directory: str | Path, days: int | None = None) -> dict[str, Any]:
        """Write the fleet's history (``days`` before the anchor) as daily Parquet files plus its ground truth."""
        import pandas as pd

        out = Path(directory)
        days = days or self.fleet.history_days
        rows = 0
        for day in range(days, 0, -1):
            start = self.anchor - pd.Timedelta(days=day)
            frame = self.generate(start, start + pd.Timedelta(days=1))
            path = out / "metrics" / f"date={start:%Y-%m-%d}" / "data.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path, index=False)
            rows += len(frame)
        summary = {
            "anchor": self.anchor.isoformat(),
            "seed": self.fleet.seed,
            "step_s": self.step,
            "days": days,
            "services": len(self._services),
            "rows": rows,
        }
        (out / FLEET_FILE).write_text(json.dumps(summary, indent=2))
        (out / GROUND_TRUTH_FILE).write_text(json.dumps([asdict(t) for t in self.ground_truth()], indent=2))
        return summary


def load_anchor(directory: str | Path) -> pd.Timestamp | None:
    """The anchor recorded by :meth:`SampleFleet.write` in ``directory``, if any."""
    path = Path(directory) / FLEET_FILE
    if not path.exists():
        return None
    try:
        return utc(json.loads(path.read_text())["anchor"])
    except (ValueError, KeyError) as exc:
        raise DataError(f"{path}: no valid 'anchor' ({exc})") from exc


def load_ground_truth(directory: str | Path) -> list[GroundTruth]:
    path = Path(directory) / GROUND_TRUTH_FILE
    return [GroundTruth(**item) for item in json.loads(path.read_text())]
