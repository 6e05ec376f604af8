"""Event-window scoring of anomaly detectors, a windowed-Gaussian baseline and generated edge cases modelled on monitoring data.

Scoring (the usual event-window rules): each labelled anomaly has a window; the first detection
inside a window earns ``tp`` times a scaled sigmoid of its position (about 1 at the window's start,
0 at its end); later detections in the same window count nothing; a detection outside every window
costs ``fp`` (less just after a window, by the same sigmoid); a window without a detection costs
``fn``. Detections in a file's first ``probation`` share are ignored (the detector is learning).
The total is normalised so that a detector that never fires scores 0 and a perfect one 100, with
one threshold per detector chosen by a sweep over the whole dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class Profile:
    """Weights of one application profile."""

    name: str
    tp: float
    fp: float
    fn: float


PROFILES = {
    "standard": Profile("standard", tp=1.0, fp=0.11, fn=1.0),
    "low_fp": Profile("low_fp", tp=1.0, fp=0.22, fn=1.0),
    "low_fn": Profile("low_fn", tp=1.0, fp=0.11, fn=2.0),
}


@dataclass
class LabelledSeries:
    """One scored file: its rows, and labelled anomaly windows as (first, last) row positions (sorted by time)."""

    name: str
    frame: pd.DataFrame  # timestamp, value (rows sorted by time)
    windows: list[tuple[int, int]] = field(default_factory=list)
    probation: int = 0  # rows at the start where detections are ignored


def scaled_sigmoid(y: float) -> float:
    """2 / (1 + e^(5y)) - 1: about 0.99 at y = -1 (window start), 0 at y = 0 (window end), towards -1 after it."""
    return 2.0 / (1.0 + math.exp(min(50.0, 5.0 * y))) - 1.0


def _sigmoids(y: np.ndarray) -> np.ndarray:
    import numpy as np

    return 2.0 / (1.0 + np.exp(np.minimum(50.0, 5.0 * y))) - 1.0


def raw_score(detections: np.ndarray, windows: list[tuple[int, int]], profile: Profile, probation: int = 0) -> tuple[float, int, int, int]:
    """Raw event-window score of detection row positions (sorted) on one file; also (true, false, missed) counts.

    Windows must not overlap (sorted by start).
    """
    import numpy as np

    det = np.asarray(detections, dtype=np.int64)
    det = det[det >= probation]
    starts = np.array([a for a, _ in windows], dtype=np.int64)
    ends = np.array([b for _, b in windows], dtype=np.int64)
    lengths = np.maximum(1, ends - starts).astype(float)  # the window start is y = -1, its end y = 0
    # the last window starting at or before each detection
    w = np.searchsorted(starts, det, side="right") - 1
    inside = (w >= 0) & (det <= ends[np.maximum(w, 0)]) if len(windows) else np.zeros(len(det), bool)
    total = 0.0
    hit = np.zeros(len(windows), bool)
    if inside.any():
        wi, first = np.unique(w[inside], return_index=True)
        pos = det[inside][first]
        total += profile.tp * float(np.sum(_sigmoids((pos - ends[wi]) / lengths[wi])))
        hit[wi] = True
    outside = det[~inside]
    wo = w[~inside]
    after = wo >= 0  # after some window: the penalty grows with the distance from it
    if after.any():
        total += profile.fp * float(np.sum(_sigmoids((outside[after] - ends[wo[after]]) / lengths[wo[after]])))
    total -= profile.fp * float(np.sum(~after))
    missed = int((~hit).sum())
    total -= profile.fn * missed
    return total, int(hit.sum()), int(len(outside)), missed


def thresholds_for(scores: list[np.ndarray]) -> np.ndarray:
    """Thresholds to sweep: a linear grid plus quantiles of the scores seen (detectors differ in where their scores sit)."""
    import numpy as np

    pool = np.concatenate([s[s > 0] for s in scores]) if scores else np.zeros(0)
    grid = np.linspace(0.02, 1.0, 50)
    if len(pool):
        grid = np.concatenate([grid, np.quantile(pool, 1 - np.logspace(-0.3, -6, 60))])
    return np.unique(np.round(grid, 9))


@dataclass(frozen=True)
class Result:
    """A detector's best normalised score on a dataset, with the threshold and counts behind it."""

    score: float
    threshold: float
    true: int
    false: int
    missed: int
    windows: int


def _events_at(score_values: np.ndarray, threshold: float, min_gap: int) -> np.ndarray:
    """Rows where the score crosses ``threshold`` (the detector's own rows); detections closer than ``min_gap`` rows merge."""
    import numpy as np

    idx = np.flatnonzero(score_values >= threshold)
    if min_gap <= 0 or len(idx) < 2:
        return idx
    keep = np.concatenate(([True], np.diff(idx) > min_gap))
    return idx[keep]


def evaluate(series: list[LabelledSeries], scores: list[np.ndarray], profile: Profile, min_gap: int = 0) -> Result:
    """Best normalised score over the threshold sweep (one threshold for the whole dataset)."""
    windows = sum(len(s.windows) for s in series)
    perfect = sum(profile.tp * scaled_sigmoid(-1.0) for s in series for _ in s.windows)
    null = -profile.fn * windows
    best = None
    for th in thresholds_for(scores):
        total, tp, fp, fn = 0.0, 0, 0, 0
        for s, sc in zip(series, scores, strict=True):
            r, a, b, c = raw_score(_events_at(sc, th, min_gap), s.windows, profile, s.probation)
            total += r
            tp, fp, fn = tp + a, fp + b, fn + c
        if best is None or total > best[0]:
            best = (total, float(th), tp, fp, fn)
    assert best is not None
    span = perfect - null
    normalised = 100.0 * (best[0] - null) / span if span > 0 else 0.0
    return Result(score=round(normalised, 1), threshold=best[1], true=best[2], false=best[3], missed=best[4], windows=windows)


def false_events(scores: list[np.ndarray], threshold: float, probation: list[int]) -> int:
    """Detections (threshold crossings) on labelled-normal series after their probation."""
    import numpy as np

    return int(sum(int(np.sum(sc[p:] >= threshold)) for sc, p in zip(scores, probation, strict=True)))


def windowed_gaussian(values: np.ndarray, window: int) -> np.ndarray:
    """Baseline: the two-sided Gaussian tail of the value against the mean and std of the previous ``window`` points, as 1 - p."""
    import numpy as np
    import pandas as pd
    from scipy.special import ndtr

    s = pd.Series(values, dtype=float)
    mean = s.rolling(window, min_periods=max(3, window // 20)).mean().shift(1)
    std = s.rolling(window, min_periods=max(3, window // 20)).std().shift(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs((s - mean) / std.where(std > 0)).to_numpy()
    out = 1.0 - 2.0 * ndtr(-z)
    return np.nan_to_num(out, nan=0.0)


# ------------------------------------------------------------------------------------ generated edge cases


def _noise(rng: np.random.Generator, kind: str, level: np.ndarray) -> np.ndarray:
    import numpy as np

    if kind == "poisson":
        return rng.poisson(np.maximum(level, 0)).astype(float)
    if kind == "lognormal":  # latency: right-skewed
        return level * rng.lognormal(0.0, 0.15, len(level))
    if kind == "percent":  # utilisation, bounded
        return np.clip(level + rng.normal(0, 2.0, len(level)), 0, 100)
    return level * (1 + 0.03 * rng.standard_normal(len(level)))


def generated_cases(seed: int = 0, days: int = 10) -> list[LabelledSeries]:
    """Edge cases modelled on monitoring data, each with its labelled windows (empty for the ones that are normal).

    Anomalies: level shifts up and down, spikes, dips, drifts, seasonality changes, an outage to 0. Normal
    behaviour that must not alarm: exporter restarts (gap then a counter-reset dip), DST local time with its
    repeated hour, duplicate rows, jittered steps, long gaps, constant series, weekly seasons, 10-s and 1-h steps.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    out: list[LabelledSeries] = []

    def base(step: str, n_days: int, kind: str, amp: float, level: float) -> tuple[pd.DatetimeIndex, np.ndarray]:
        ts = pd.date_range("2026-03-20", periods=int(pd.Timedelta(days=n_days) / pd.Timedelta(step)), freq=step, tz="UTC")
        hour = ts.hour + ts.minute / 60
        weekly = np.where(ts.day_of_week >= 5, 0.8, 1.0)
        mean = level * (1 + amp * np.sin(2 * np.pi * (np.asarray(hour, float) - 8) / 24)) * weekly
        return ts, mean

    def add(name: str, ts: pd.DatetimeIndex, values: np.ndarray, windows: list[tuple[int, int]], stamps: list[str] | None = None) -> None:
        frame = pd.DataFrame({"timestamp": stamps if stamps is not None else ts, "value": values})
        out.append(LabelledSeries(name, frame, sorted(windows), probation=int(0.15 * len(frame))))

    kinds = ("gauss", "poisson", "lognormal", "percent")
    for r in range(3):
        kind = kinds[r % len(kinds)]
        level = {"gauss": 500.0, "poisson": 40.0, "lognormal": 0.2, "percent": 45.0}[kind]
        ts, mean = base("5min", days, kind, 0.4, level)
        n = len(ts)
        at = int(rng.integers(int(0.5 * n), int(0.85 * n)))
        w = (at, min(n - 1, at + 24))
        for name, shape in (("level_shift_up", "up"), ("level_shift_down", "down"), ("spike", "spike"), ("dip_to_zero", "zero"),
                            ("drift", "drift"), ("seasonality_change", "season")):
            m = mean.copy()
            if shape == "up":
                m[at:] *= 1.5
            elif shape == "down":
                m[at:] *= 0.6
            elif shape == "drift":
                m[at:] *= 1 + np.minimum(np.arange(n - at) / 144.0, 1.5)
            elif shape == "season":
                m[at:] = level * (1 + 0.4 * np.sin(2 * np.pi * (np.arange(n - at) / 288.0) + np.pi))  # daily shape flips
            vals = _noise(rng, kind, m)
            if shape == "spike":
                vals[at] = vals[at] * 4 + level
            elif shape == "zero":
                vals[at:at + 6] = 0.0
            add(f"{name}/{kind}/{r}", ts, vals, [w])
        # normal behaviour
        add(f"normal/{kind}/{r}", ts, _noise(rng, kind, mean), [])
        vals = _noise(rng, kind, mean)
        restart = int(0.6 * n)  # exporter restart: 20 minutes missing, then one reset dip in the rate
        keep = np.ones(n, bool)
        keep[restart:restart + 4] = False
        vals[restart + 4] = 0.0
        add(f"exporter_restart/{kind}/{r}", ts[keep], vals[keep], [])
        gap = np.ones(n, bool)  # a two-day gap
        gap[int(0.4 * n): int(0.4 * n) + 576] = False
        add(f"long_gap/{kind}/{r}", ts[gap], _noise(rng, kind, mean)[gap], [])
        vals = _noise(rng, kind, mean)
        dup = np.sort(rng.choice(n, n // 50, replace=False))  # retries: some rows written twice
        idx = np.sort(np.concatenate([np.arange(n), dup]))
        add(f"duplicates/{kind}/{r}", ts[idx], vals[idx], [])
        jitter = ts + pd.to_timedelta(rng.integers(-40, 41, n), unit="s")
        add(f"jitter/{kind}/{r}", jitter, _noise(rng, kind, mean), [])

    # local time across a DST change (Europe/Berlin, 2026-03-29 and back 2026-10-25), written without a zone
    for month, label in (("2026-03-24", "dst_spring"), ("2026-10-20", "dst_autumn")):
        utc = pd.date_range(month, periods=10 * 288, freq="5min", tz="UTC")
        local = utc.tz_convert("Europe/Berlin")
        hour = np.asarray(local.hour + local.minute / 60, float)  # the load follows local time
        vals = _noise(rng, "gauss", 300 * (1 + 0.4 * np.sin(2 * np.pi * (hour - 8) / 24)))
        stamps = [t.strftime("%Y-%m-%dT%H:%M:%S%z") for t in local]
        add(f"{label}/offsets", utc, vals, [], stamps=stamps)
    # constant and near-constant (a replica count), then a step
    ts = pd.date_range("2026-03-20", periods=5 * 288, freq="5min", tz="UTC")
    const = np.full(len(ts), 3.0)
    add("constant", ts, const, [])
    stepped = const.copy()
    stepped[1000:] = 6.0
    add("constant_then_step", ts, stepped, [(1000, 1024)])
    # other steps: 10 s (one day) and 1 h (60 days), each with a shift
    for step, n_days, at_share in (("10s", 1, 0.7), ("1h", 60, 0.75)):
        ts, mean = base(step, n_days, "gauss", 0.3, 100.0)
        n = len(ts)
        at = int(at_share * n)
        mean = mean.copy()
        mean[at: at + max(6, n // 200)] *= 1.8
        add(f"step_{step}/shift", ts, _noise(rng, "gauss", mean), [(at, min(n - 1, at + max(6, n // 100)))])
    return out
