"""Replay any demand trace: ``python -m include.headroom replay --load F ...`` reads ``timestamp,value`` (req/s),
runs it through the scaling kernel under each policy, and writes ``{"policies": {...}}`` (and optionally a PNG).

Input tolerance: timestamps in any zone (or none: read as UTC), unsorted rows, duplicates (averaged, counted),
gaps (missing steps are not judged and not decided on, counted); a step coarser than the decision period is
interpolated to it. A missing column, an unreadable timestamp or a non-numeric or negative value is an error
naming the file, line and field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from include.headroom.exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig


@dataclass(frozen=True)
class Trace:
    """A demand trace read from a file: ``ds``, ``y`` (sorted, unique) and what reading it changed."""

    frame: pd.DataFrame
    path: str
    duplicates: int


def read_trace(path: str | Path) -> Trace:
    """Read ``timestamp,value``; see the module docstring for what is tolerated."""
    import numpy as np
    import pandas as pd

    from include.headroom.seriesfile import read_timestamp_value_csv

    path = Path(path)
    raw, ds, line = read_timestamp_value_csv(path, DataError)
    y = pd.to_numeric(raw["value"].str.strip(), errors="coerce")
    bad = (y.isna() | ~np.isfinite(y.fillna(0.0)) | (y < 0)).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: line {line[i]}: field 'value' = {raw['value'].iloc[i]!r} is not a request rate >= 0 "
                        f"({int(bad.sum())} such rows)")
    frame = pd.DataFrame({"ds": ds, "y": y.astype(float)})
    grouped = frame.groupby("ds", sort=True)["y"].mean().reset_index()
    if len(grouped) < 3:
        raise DataError(f"{path}: {len(grouped)} distinct timestamps; a replay needs a trace of many regular steps")
    return Trace(grouped, str(path), len(frame) - len(grouped))


def replay_file(config: HeadroomConfig, trace: Trace, *, capacity_per_replica: float, min_replicas: int, max_replicas: int, tier: str,
                policies: Sequence[str], output: str | Path, plot: str | Path | None = None, base_latency_ms: float | None = None,
                cost_per_replica_hour: float = 0.10, settings: Any = None) -> dict[str, Any]:
    """Replay ``trace`` for a service of ``tier`` with the given capacity and bounds; write the JSON ``output`` (and ``plot``)."""
    from include.headroom.catalog import ScalingTarget, Service, TargetKind, Tier
    from include.headroom.exceptions import ConfigError
    from include.headroom.scaling.kernel import kernel_settings
    from include.headroom.scaling.settings import policy_settings
    from include.headroom.scaling.replay import ReplaySettings, SimulatedService, regular_grid, replay_trace

    try:
        tier_value = Tier(tier)
    except ValueError:
        raise DataError(f"--tier {tier!r} is not a tier; tiers are {[t.value for t in Tier]}") from None
    slo = config.tier(tier_value).latency_slo.threshold_ms
    try:
        svc = Service(name=Path(trace.path).stem or "trace", tier=tier_value, owner="replay", capacity_per_replica_rps=capacity_per_replica,
                      min_replicas=min_replicas, max_replicas=max_replicas, cost_per_replica_hour=cost_per_replica_hour,
                      base_rps=0.0, base_latency_ms=base_latency_ms or slo / 4.0, target=ScalingTarget(TargetKind.DRY_RUN))
    except ConfigError as exc:
        raise DataError(f"replay --load {trace.path}: {exc}") from exc
    settings = settings or policy_settings()
    rs = ReplaySettings.from_settings(settings)
    ds, load, gaps = regular_grid(trace.frame, rs.step_s)
    sim = SimulatedService(capacity_per_replica, svc.base_latency_ms, slo, overload_utilization=settings.overload_utilization,
                           **{k: float(v) for k, v in (settings.replay.get("service", {}) or {}).items()})
    results = replay_trace(ds, load, sim, kernel_settings(config, svc, settings), list(policies), config.forecasting, rs,
                           cost_per_replica_hour=cost_per_replica_hour, replicas_for=lambda v: config.replicas_for(svc, v))
    out = {"policies": {p: {k: v for k, v in r.to_dict().items() if k != "policy"} for p, r in results.items()},
           "trace": {"file": trace.path, "steps": len(ds), "step_s": int((ds[1] - ds[0]).total_seconds()),
                     "duplicates_averaged": trace.duplicates,
                     "missing_steps": gaps, "start": ds[0].isoformat(), "end": ds[-1].isoformat()},
           "service": {"tier": tier_value.value, "capacity_per_replica_rps": capacity_per_replica, "min_replicas": min_replicas,
                       "max_replicas": max_replicas, "latency_slo_ms": slo, "base_latency_ms": sim.base_latency_ms,
                       "actuation_delay_s": rs.actuation_delay_s, "lead_time_s": rs.lead_time_s}}
    from include.headroom.report.html import write_atomic

    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(out, indent=2))
    if plot:
        draw_replay(ds, load, {p: r.replicas for p, r in results.items()}, capacity_per_replica, plot)
        out["plot"] = str(plot)
    return out


def draw_replay(ds: pd.DatetimeIndex, load: Any, replicas: dict[str, list[int]], capacity_per_replica: float, path: str | Path) -> Path:
    """A PNG: the load, and per policy its serving capacity (replicas x capacity per replica) and replicas."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    top.plot(ds, load, color="black", linewidth=0.8, label="load (req/s)")
    for policy, reps in replicas.items():
        top.plot(ds[-len(reps):], [r * capacity_per_replica for r in reps], linewidth=0.8, label=f"{policy} capacity")
        bottom.step(ds[-len(reps):], reps, where="post", linewidth=0.8, label=policy)
    top.set_ylabel("req/s")
    bottom.set_ylabel("replicas")
    top.legend(loc="upper left", fontsize=8)
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
