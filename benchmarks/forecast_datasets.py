"""Development data sets for forecast accuracy, each a list of :class:`Series` with its hold-out.

- ``fleet``: the sample fleet's hourly series (30 days; the last day held out);
- ``petshop``: the PetShop ``noissue`` request counts and average latencies (real AWS
  metrics at 5 minutes, two days; the last 6 hours held out), when the shared data sets
  are on this machine;
- ``generated``: series with level shifts, drifts, seasonality changes, spikes and
  constant stretches, at 5 minutes and hourly (seeded); the last day held out.
"""

from __future__ import annotations

import dataclasses
import gzip
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass(frozen=True)
class Series:
    name: str
    values: np.ndarray  # history and hold-out
    step: pd.Timedelta
    holdout: int
    start: pd.Timestamp

    @property
    def train(self) -> np.ndarray:
        return self.values[: -self.holdout]

    @property
    def test(self) -> np.ndarray:
        return self.values[-self.holdout :]

    @property
    def per_day(self) -> int:
        return max(1, int(round(pd.Timedelta(days=1) / self.step)))


def fleet(n: int = 120, days: int = 30) -> list[Series]:
    """``n`` hourly series of the sample fleet (every service and metric but replicas), over seeds and months."""
    from include.headroom.config import get_config
    from include.headroom.metrics.sample_fleet import METRIC_UNITS, SampleFleet

    config = get_config()
    metrics = [m for m in METRIC_UNITS if m != "replicas"]
    out: list[Series] = []
    window = 0
    while len(out) < n:
        fleet_cfg = dataclasses.replace(config.sample_fleet, seed=config.sample_fleet.seed + window)
        anchor = pd.Timestamp("2026-11-01", tz="UTC") - pd.Timedelta(days=days * window)
        sample = SampleFleet(dataclasses.replace(config, sample_fleet=fleet_cfg), anchor=anchor)
        frame = sample.generate(anchor - pd.Timedelta(days=days), anchor)
        frame = frame[frame["metric"].isin(metrics)]
        hourly = frame.set_index("ts").groupby(["service", "metric"])["value"].resample("1h").mean()
        for (service, metric), values in hourly.groupby(level=[0, 1]):
            v = values.interpolate(limit_direction="both").to_numpy(float)
            start = pd.Timestamp(values.index.get_level_values(-1)[0])
            out.append(Series(f"fleet/w{window}/{service}/{metric}", v, pd.Timedelta(hours=1), 24, start))
        window += 1
    return out[:n]


def petshop(min_points: int = 560) -> list[Series]:
    """PetShop ``noissue`` requests (Sum) and latency (Average) per service, both traffic levels; [] when absent."""
    from scripts.shared_data import petshop_dir

    root = petshop_dir()
    if root is None:
        return []
    out: list[Series] = []
    for level in ("low_traffic", "high_traffic"):
        with gzip.open(root / level / "noissue.csv.gz", "rt") as fh:
            frame = pd.read_csv(fh)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        keep = ((frame["metric"] == "requests") & (frame["statistic"] == "Sum")) | (
            (frame["metric"] == "latency") & (frame["statistic"] == "Average"))
        for (service, metric), rows in frame[keep].groupby(["service", "metric"]):
            s = rows.set_index("timestamp")["value"].sort_index()
            s = s[~s.index.duplicated()].resample("5min").mean()
            if s.notna().sum() < min_points or s.std() == 0:
                continue
            v = s.interpolate(limit_direction="both").to_numpy(float)
            out.append(Series(f"petshop/{level}/{service}/{metric}", v, pd.Timedelta(minutes=5), 72, pd.Timestamp(s.index[0])))
    return out


def generated(per_kind: int = 6, seed: int = 11) -> list[Series]:
    """Seeded series with the troubles of operations data, at 5 minutes (6 days) and hourly (28 days)."""
    rng = np.random.default_rng(seed)
    out: list[Series] = []
    for step, days in ((pd.Timedelta(minutes=5), 6), (pd.Timedelta(hours=1), 28)):
        per_day = int(pd.Timedelta(days=1) / step)
        n = days * per_day
        t = np.arange(n)
        daily = np.sin(2 * np.pi * t / per_day - 1.0)
        weekend = ((t // per_day) % 7 >= 5).astype(float)
        for k in range(per_kind):
            base = rng.uniform(50, 500)
            amp = rng.uniform(0.1, 0.4) * base
            noise = rng.normal(0, rng.uniform(0.02, 0.08) * base, n)
            kinds = {
                "level_shift": base + amp * daily + noise
                + np.where(t >= int(rng.uniform(0.5, 0.8) * n), rng.choice([-1, 1]) * 0.5 * base, 0),
                "drift": base * (1 + rng.uniform(0.2, 0.8) * t / n) + amp * daily + noise,
                "season_change": base + np.where(t >= n // 2, 2.0, 0.5) * amp * daily + noise,
                "weekly": base + amp * daily - 0.3 * base * weekend + noise,
                "spikes": base + amp * daily + noise + np.where(rng.random(n) < 0.003, rng.uniform(5, 50) * base, 0),
                "trend_change": base + amp * daily + noise + np.maximum(t - int(0.6 * n), 0) * rng.uniform(0.2, 1.0) * base / n,
            }
            for kind, v in kinds.items():
                out.append(Series(f"generated/{step.seconds // 60}min/{kind}/{k}", np.maximum(v, 0.0), step, per_day,
                                  pd.Timestamp("2026-09-07", tz="UTC")))
    return out


DATASETS = {"fleet": fleet, "petshop": petshop, "generated": generated}
