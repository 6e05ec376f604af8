"""Causal anomaly events for monitoring series: a per-series normal model, a calibrated tail-probability score, event logic.

How a series is scored (every step uses only points at or before t, so appending points never
changes an earlier score):

1. **Input as exporters write it.** Timestamps without a zone are UTC; offsets are honoured (a
   local-time series across a DST change is converted to UTC first). The step is inferred from the
   first points (median gap, snapped to a usual step from 10 s to 1 day); every point is placed on
   that grid, anchored at the Unix epoch. Points that land in the same slot (duplicates written on a
   retry or at a DST change, jitter) are aggregated by their **mean**; every input row gets the score
   of its slot, in input order.
2. **Normal model, chosen from the data.** Three candidates: no season (the robust level of the past
   ``level_window_s``), daily (median of the same slot on the previous ``daily_lags`` days) and
   weekly (median of the same slot ``weekly_lags`` weeks back; it carries the daily shape and the
   weekday/weekend difference, i.e. "both"). Seasonal candidates add the robust level offset of the
   past ``level_window_s``. At each point the candidate with the smallest mean absolute error over
   the past ``model_window_s`` is used (a season must beat no season by ``season_margin``). A value
   within the seasonal shape ``season_jitter_s`` either side deviates by nothing (a daily job that
   starts a few minutes early or late is no anomaly).
3. **Ensemble.** Four cheap deviations in robust units (1.4826 x rolling median absolute residual):
   the seasonal residual, a change point (mean residual of the last ``change_points``), the rate of
   change (first difference against its own robust spread) and a spread change (std of the last
   ``change_points`` residuals against the usual spread).
4. **Calibrated score.** Each deviation is compared with the distribution of its own recent values
   (mean and std of ``sqrt(deviation)`` over ``calibration_window_s``, in the spirit of an anomaly
   likelihood): a Gaussian tail probability, computed in log space. A value within what both halves
   of that window have shown (a recurring pattern) is at most as rare as one in the window; beyond
   it, rarity grows from there. The smallest of the four probabilities, times four (Bonferroni),
   gives ``d = -log10(p)``, and the score is ``d / tail_decades`` up to 0.5, then
   ``1 - tail_decades / (4 d)``: 0.5 means p = 10^-9 with the shipped ``tail_decades`` = 18, and
   above it rarer stays higher without reaching 1 (no ties at the top). The same threshold therefore
   means the same rarity on every series, whatever its unit or scale.
5. **Events.** A point at or above ``threshold`` opens an event and keeps its score; while the event
   lasts (until ``end_after_s`` without a hot point) and for ``refractory_s`` after it, scores are
   capped below the threshold, so an incident is reported once, early. A change that keeps the same
   sign for ``adapt_after_s`` is a level shift: the level window has then absorbed it (it is the new
   normal) and the event is labelled ``level_shift`` at that point. Within ``recovery_s`` of an
   event, a hot point that deviates the other way by no more than 1.5 x the event's largest
   deviation is the way back: handled as part of the event (capped, not reported).

Series with fewer than ``min_history_points`` valid points score 0 everywhere (the reason is returned
and printed by the CLI); the first ``min_history_points`` points of every series, and the points after
a gap longer than ``level_window_s``, score 0 while the level is re-learnt (no alarm storm).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from include.headroom.exceptions import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

INPUT_COLUMNS = ("timestamp", "value")
SCORE_COLUMN = "anomaly_score"
EVENT_COLUMN = "event"
COMPONENTS = ("residual", "change_point", "rate_of_change", "spread_change")
MODELS = ("none", "daily", "weekly")
USUAL_STEPS_S = (10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class AnomalyParams:
    """The detector's settings (``bottlenecks.yaml`` section ``anomaly``); durations in seconds, so one set fits every step."""

    step_s: int = 300
    daily_lags: int = 7
    weekly_lags: int = 4
    level_window_s: int = 7200
    model_window_s: int = 86400
    season_margin: float = 0.9
    season_jitter_s: int = 600
    scale_window_s: int = 86400
    calibration_window_s: int = 259200
    change_points: int = 6
    min_history_points: int = 12
    rel_scale_floor: float = 0.001
    calibration_std_floor: float = 0.1
    calibration_cap: float = 19.0
    tail_decades: float = 18.0
    threshold: float = 0.5
    end_after_s: int = 1800
    refractory_s: int = 3600
    adapt_after_s: int = 3600
    recovery_s: int = 86400
    inferred_step: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.step_s <= 0 or self.tail_decades <= 0 or self.min_history_points < 3 or not 0 < self.threshold <= 1:
            raise DataError(f"anomaly settings {self!r}: need step_s > 0, tail_decades > 0, min_history_points >= 3, 0 < threshold <= 1")
        if self.change_points < 2 or self.calibration_std_floor <= 0 or not 0 < self.season_margin <= 1:
            raise DataError(f"anomaly settings {self!r}: need change_points >= 2, calibration_std_floor > 0, 0 < season_margin <= 1")

    def points(self, seconds: float, least: int = 1) -> int:
        """A duration as a number of points at this step (at least ``least``)."""
        return max(least, int(round(seconds / self.step_s)))

    def for_step(self, step_s: int) -> AnomalyParams:
        """The same settings for a series at another resolution (windows are durations already)."""
        if step_s <= 0:
            raise DataError(f"anomaly scoring needs a positive step, got {step_s!r} s")
        return self if step_s == self.step_s else replace(self, step_s=int(step_s))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> AnomalyParams:
        known = sorted(k for k in cls.__dataclass_fields__ if k != "inferred_step")
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise DataError(f"bottlenecks.anomaly: unknown keys {unknown} (known: {known})")
        return cls(**{k: raw[k] for k in known if k in raw})


def default_params() -> AnomalyParams:
    """The shipped settings, from the active configuration."""
    from include.headroom.config import get_config

    return AnomalyParams.from_mapping(get_config().bottlenecks.anomaly)


@dataclass(frozen=True)
class Detection:
    """Scores of series on one grid: ``score`` and ``event`` are (time, series) arrays."""

    score: np.ndarray
    event: np.ndarray  # 0 none, 1 anomaly (event start), 2 level shift (the change became the new normal)
    model: np.ndarray  # index into MODELS of the normal model used at each point (-1: none yet)
    component: np.ndarray  # index into COMPONENTS of the most unusual deviation at each point


# ---------------------------------------------------------------------------------------------- core


def _rolling(frame: pd.DataFrame, window: int, how: str, min_periods: int) -> np.ndarray:
    """A past-only rolling statistic (the value at t uses points before t), NaN-aware.

    Sums, means, stds and counts come from cumulative sums in NumPy (all series at once); medians,
    minima and maxima from pandas.
    """
    import numpy as np

    min_periods = min(min_periods, window)
    if how not in ("mean", "std", "count", "mean_std"):
        roll = frame.rolling(window, min_periods=min_periods)
        return getattr(roll, how)().shift(1).to_numpy()
    x = frame.to_numpy(float)
    ok = ~np.isnan(x)

    def past_sum(a: np.ndarray) -> np.ndarray:
        c = np.cumsum(a, axis=0)
        out = np.empty_like(c)
        out[0] = 0.0
        out[1:] = c[:-1]  # sums of the points before t ...
        if len(c) > window + 1:
            out[window + 1:] -= c[: len(c) - window - 1]  # ... within the window
        return out

    n = past_sum(ok.astype(float))
    enough = n >= max(1, min_periods)
    if how == "count":
        return np.where(enough, n, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        # centred on each series' first value (it depends on no later point, so the sums stay causal)
        centre = np.nan_to_num(x[_first_valid(ok), np.arange(x.shape[1])]) if len(x) else np.zeros(x.shape[1])
        xc = np.where(ok, x - centre, 0.0)
        total = past_sum(xc)
        mean = total / n
        if how == "mean":
            return np.where(enough, mean + centre, np.nan)
        var = (past_sum(xc * xc) - n * mean * mean) / (n - 1)
        std = np.where(enough & (n > 1), np.sqrt(np.fmax(var, 0.0)), np.nan)
        if how == "mean_std":  # both from the same sums
            return np.where(enough, mean + centre, np.nan), std
        return std


def _first_valid(ok: np.ndarray, head: int = 64) -> np.ndarray:
    """Per column, the first row where ``ok`` holds (0 when none): looked for in the first ``head`` rows, then further."""
    import numpy as np

    first = np.argmax(ok[:head], axis=0)
    missing = ~ok[:head].any(axis=0)
    if missing.any():
        first[missing] = np.argmax(ok[:, missing], axis=0)
    return first


def _coarse_median(x: np.ndarray, window: int, every: int, min_periods: int) -> np.ndarray:
    """A past-only rolling median over ``window`` points, estimated from every ``every``-th point (for long windows:
    a scale changes slowly, and the median of a quarter of the points is four times cheaper). Causal: the value at t
    uses points before t only."""
    import numpy as np
    import pandas as pd

    if every <= 1 or window < 8 * every:
        return _rolling(pd.DataFrame(x), window, "median", min_periods)
    sampled = pd.DataFrame(x[::every])
    med = sampled.rolling(window // every, min_periods=max(1, min(min_periods, window) // every)).median().to_numpy()
    # the median of samples up to row k*every is known from row k*every + 1 on
    out = np.full_like(x, np.nan, dtype=float)
    spread = np.repeat(med, every, axis=0)[: len(x) - 1]
    out[1: 1 + len(spread)] = spread
    return out


def _lag_median(grid: np.ndarray, period: int, lags: int) -> np.ndarray:
    """Per point, the NaN-aware median of the values ``period``, ``2 period``, ... ``lags period`` points before it.

    A season needs three lags at least (a median of two is no defence against an outlier): rows with fewer are NaN,
    and the rows before ``need x period`` are not computed at all.
    """
    import numpy as np

    t, s = grid.shape
    need = max(3, (lags + 1) // 2)
    out = np.full((t, s), np.nan)
    first = need * period
    if first >= t:
        return out
    rows = t - first
    samples = np.full((rows, s, lags), np.nan)  # lags last: each row's few values are contiguous to sort
    for k in range(1, lags + 1):
        lo = max(0, first - k * period)  # grid row of the first computed row's k-th lag (negative: not yet there)
        skip = max(0, k * period - first)
        if skip < rows:
            samples[skip:, :, k - 1] = grid[lo: lo + rows - skip]
    samples.sort(axis=2)  # NaN last
    count = np.sum(~np.isnan(samples), axis=2)
    lo_v = np.take_along_axis(samples, np.maximum((count - 1) // 2, 0)[..., None], axis=2)[..., 0]
    hi_v = np.take_along_axis(samples, np.maximum(count // 2, 0)[..., None], axis=2)[..., 0]
    med = (lo_v + hi_v) / 2.0
    med[count < need] = np.nan
    out[first:] = med
    return out


def _past_median_from(x: np.ndarray, window: int, min_periods: int, first: int) -> np.ndarray:
    """The past-only rolling median of ``x`` whose rows before ``first`` are all NaN (computed from ``first`` on only)."""
    import numpy as np
    import pandas as pd

    out = np.full(x.shape, np.nan)
    if first < len(x):
        out[first:] = _rolling(pd.DataFrame(x[first:]), window, "median", min_periods)
    return out


def _log10_gaussian_tail(x: np.ndarray) -> np.ndarray:
    """log10 of the upper Gaussian tail probability of ``x``, accurate far out in the tail (no underflow to 0)."""
    from scipy.special import log_ndtr

    return log_ndtr(-x) / math.log(10.0)


def rarity_score(decades: np.ndarray, tail_decades: float) -> np.ndarray:
    """The score of a rarity of ``decades`` (-log10 of a tail probability): ``decades / tail_decades`` up to 0.5, then
    ``1 - tail_decades / (4 decades)``, which continues it smoothly and never reaches 1, so rarer stays higher (no ties
    at the top: one threshold can still rank a one-in-10^12 change above a one-in-10^8 one)."""
    import numpy as np

    d = np.fmax(np.asarray(decades, dtype=float), 0.0)
    knee = tail_decades / 2.0
    with np.errstate(divide="ignore"):
        return np.where(d <= knee, d / tail_decades, 1.0 - tail_decades / (4.0 * np.fmax(d, knee))) + 0.0


def detect(grid: np.ndarray, params: AnomalyParams) -> Detection:
    """Scores and events of series on a common grid (``grid``: time x series, NaN where a value is missing).

    Vectorised across series; the only loop over time is the event state machine.
    """
    import numpy as np
    import pandas as pd

    grid = np.asarray(grid, dtype=float)
    if grid.ndim == 1:
        grid = grid[:, None]
    t, s = grid.shape
    p = params
    have = ~np.isnan(grid)
    level_w = p.points(p.level_window_s, 5)
    minp = min(p.min_history_points, level_w)
    frame = pd.DataFrame(grid)
    with np.errstate(invalid="ignore", divide="ignore"):
        # normal-model candidates
        level_none = _rolling(frame, level_w, "median", minp)
        baselines = [level_none]
        # seasonal shapes are also taken ``jitter`` points either side: a daily job that starts a few minutes early or
        # late moves a step of the shape, and a value within the shape's range there is no anomaly
        jitter = p.points(p.season_jitter_s, 0)
        tolerant = [level_none]
        for period_s, lags in ((86400, p.daily_lags), (604800, p.weekly_lags)):
            period = int(round(period_s / p.step_s))
            if lags < 1 or period < 4 or period_s % p.step_s or period >= t:
                baselines.append(np.full((t, s), np.nan))
                tolerant.append(baselines[-1])
                continue
            near = min(jitter, period // 4)
            # the rows after the last one hold the shape of the next slots (from points a period back: still causal)
            padded = _lag_median(np.vstack([grid, np.full((near, s), np.nan)]), period, lags) if near else _lag_median(grid, period, lags)
            seasonal = padded[:t]
            offset = _past_median_from(grid - seasonal, level_w, minp, max(3, (lags + 1) // 2) * period)
            baselines.append(seasonal + offset)
            if near:
                lo, hi = seasonal.copy(), seasonal.copy()
                for shift in range(1, near + 1):  # NaN-ignoring minimum and maximum of the shape at t - near .. t + near
                    np.fmin(lo, padded[shift: shift + t], out=lo)
                    np.fmax(hi, padded[shift: shift + t], out=hi)
                    np.fmin(lo[shift:], padded[: t - shift], out=lo[shift:])
                    np.fmax(hi[shift:], padded[: t - shift], out=hi[shift:])
                tolerant.append(offset + np.clip(grid - offset, lo, hi))
            else:
                tolerant.append(baselines[-1])
        model_w = p.points(p.model_window_s, 24)
        errors = []
        for i, base in enumerate(baselines):
            err = _rolling(pd.DataFrame(np.abs(grid - base)), model_w, "mean", max(minp, model_w // 4))
            if i > 0:
                err = err / p.season_margin  # a season must earn its place
            errors.append(np.where(np.isnan(err), np.inf, err))
        errors_arr = np.stack(errors)
        model = np.argmin(errors_arr, axis=0)
        known = np.isfinite(np.min(errors_arr, axis=0))
        # before any model has an error record, the no-season level is used
        model = np.where(known, model, 0)
        baseline = np.where(model == 1, baselines[1], np.where(model == 2, baselines[2], level_none))
        baseline = np.where(np.isnan(baseline), level_none, baseline)
        residual = grid - baseline  # for the model choice and the scales
        near_base = np.where(model == 1, tolerant[1], np.where(model == 2, tolerant[2], level_none))
        near_residual = grid - np.where(np.isnan(near_base), baseline, near_base)  # for the deviations
        del tolerant

        # robust scales, floored so that a constant series has a finite one
        scale_w = p.points(p.scale_window_s, 24)
        magnitude = np.abs(level_none)
        tiny = np.maximum(p.rel_scale_floor * np.nan_to_num(magnitude), 1e-9)
        diff = np.diff(grid, axis=0, prepend=np.nan)
        # the smallest non-zero step seen lately: a change of one unit (a replica, a quantised gauge) is no anomaly
        steps = np.abs(diff)
        resolution = np.nan_to_num(_rolling(pd.DataFrame(np.where(steps > 0, steps, np.nan)), scale_w, "min", 1))
        tiny = np.fmax(tiny, resolution)
        scale = np.fmax(1.4826 * _coarse_median(np.abs(residual), scale_w, 4, minp), tiny)
        diff_scale = np.fmax(1.4826 * _coarse_median(np.abs(diff), scale_w, 4, minp), tiny)

        k = p.change_points
        res_frame = pd.DataFrame(near_residual)
        recent_mean = res_frame.rolling(k, min_periods=k // 2 + 1).mean().to_numpy()
        recent_std = res_frame.rolling(k, min_periods=k // 2 + 1).std().to_numpy()
        deviations = {
            "residual": np.abs(near_residual) / scale,
            "change_point": np.abs(recent_mean) * math.sqrt(k) / scale,
            "rate_of_change": np.abs(diff) / diff_scale,
            "spread_change": recent_std / scale,
        }
        cal_w = p.points(p.calibration_window_s, 48)
        decades = np.zeros((t, s))  # -log10 of the smallest tail probability
        parts = {}
        # a deviation enters the calibration only once its scale rests on enough points, and capped,
        # so that the warm-up and one huge excursion do not widen the distribution for days
        settled = _rolling(pd.DataFrame(residual), scale_w, "count", 1) >= max(minp, scale_w // 8)
        counted = np.nan_to_num(_rolling(pd.DataFrame(np.where(settled, 1.0, np.nan)), cal_w, "count", 1))
        for name, dev in deviations.items():
            # the square root tames heavy tails less than a logarithm would: a 5-sigma change stays far in the tail
            u = np.sqrt(np.minimum(dev, 1e12))  # np.minimum keeps NaN (a missing deviation), np.fmin would not
            u_frame = pd.DataFrame(np.where(settled, np.minimum(u, math.sqrt(p.calibration_cap)), np.nan))
            mu, sd = _rolling(u_frame, cal_w, "mean_std", minp)
            sd = np.fmax(np.nan_to_num(sd), p.calibration_std_floor)
            rare = -_log10_gaussian_tail((u - mu) / sd)
            # within the range the recent past has shown in both halves of the window (a recurring pattern, not one
            # incident), a value is at most as rare as one in the window; beyond it, rarity grows from there (a jump a
            # little larger than yesterday's is not news, the second outage in three days is)
            half = max(1, cal_w // 2)
            recent = _rolling(pd.DataFrame(np.where(settled, u, np.nan)), half, "max", min(minp, half))  # not capped
            older = np.full_like(recent, np.nan)
            if half < t:
                older[half:] = recent[:-half]
            seen = np.fmin(recent, older)
            in_window = np.log10(counted + 1.0)
            beyond = in_window + rare + _log10_gaussian_tail((seen - mu) / sd)
            rare = np.fmin(rare, np.where(u > seen, np.fmax(beyond, in_window), in_window))
            parts[name] = np.where(np.isnan(rare), 0.0, rare)
            decades = np.fmax(decades, parts[name])
        decades = decades - math.log10(len(deviations))  # Bonferroni: the smallest of four probabilities, times four
        raw = rarity_score(decades, p.tail_decades)
        # warm-up: no score without a level, a scale and a calibration history
        ready = have & settled & ~np.isnan(level_none) & ~np.isnan(scale)
        warm = np.nan_to_num(_rolling(frame, cal_w, "count", 1)) >= max(p.min_history_points, 2 * level_w)
        raw = np.where(ready & warm, raw, 0.0)

    score, event = _events(raw, near_residual, p)
    return Detection(score=score, event=event, model=np.where(known, model, -1),
                     component=np.argmax(np.stack([parts[c] for c in COMPONENTS]), axis=0))


def _events(raw: np.ndarray, residual: np.ndarray, p: AnomalyParams) -> tuple[np.ndarray, np.ndarray]:
    """Event state machine per series: report once, early; label a persisting change as a level shift; do not report
    the way back.

    Only rows at or above the threshold, and the rows of an open event or its refractory time, need
    the state machine; every other row keeps its score. A hot row within ``recovery_s`` of an event's
    start that deviates the other way, by no more than 1.5 x the event's largest deviation, is the
    series returning to where it was (after the level window absorbed the change): it is handled like
    the rest of the event (capped, not reported).
    """
    import numpy as np

    t, s = raw.shape
    end_after, refractory, adapt = p.points(p.end_after_s), p.points(p.refractory_s), p.points(p.adapt_after_s, 2)
    recovery = p.points(p.recovery_s, 0)
    cap = p.threshold * 0.5
    score = raw.copy()
    event = np.zeros((t, s), np.int8)
    hot_all = raw >= p.threshold
    for col in np.flatnonzero(hot_all.any(axis=0)):
        hot = hot_all[:, col].tolist()
        res = np.nan_to_num(residual[:, col]).tolist()
        out = score[:, col].tolist()
        i = int(np.argmax(hot_all[:, col]))
        opened, direction, peak = -(10**12), 0.0, 0.0  # the last reported event: its row, sign and largest deviation
        while i < t:
            back = (i - opened <= recovery and direction != 0 and res[i] * direction < 0
                    and abs(res[i]) <= 1.5 * peak)
            if back:  # the way back from the last event: part of it, not a new one
                out[i] = min(out[i], cap)
                run_sign = -direction
                opened, direction, peak = -(10**12), 0.0, 0.0  # and the next change is news again
            else:  # an event opens at row i (hot, outside any event and refractory time)
                event[i, col] = 1
                opened, direction, peak = i, math.copysign(1.0, res[i]) if res[i] else 0.0, abs(res[i])
                run_sign = direction
            run, quiet, labelled = 0, 0, back
            j = i
            while j < t:
                if j > i and out[j] > cap:
                    out[j] = cap
                if res[j] * run_sign > 0:
                    run += 1
                    if not back:
                        peak = max(peak, abs(res[j]))
                else:
                    run = 0
                if not labelled and run >= adapt:
                    event[j, col] = 2
                    labelled = True
                quiet = 0 if hot[j] else quiet + 1
                j += 1
                if quiet >= end_after:
                    break
            # refractory time after the event: capped, no new report
            k = j
            while k < min(t, j + refractory):
                if out[k] > cap:
                    out[k] = cap
                k += 1
            nxt = np.flatnonzero(hot_all[k:, col])
            i = k + int(nxt[0]) if len(nxt) else t
        score[:, col] = out
    return score, event


# ------------------------------------------------------------------------------------------- input


def snap_step(seconds: float) -> int:
    """A measured step rounded to the usual step within 20 % of it (else to whole seconds)."""
    for usual in USUAL_STEPS_S:
        if abs(seconds - usual) <= 0.2 * usual:
            return usual
    return max(1, int(round(seconds)))


def infer_step(seconds: np.ndarray, first: int = 64) -> int:
    """The series' resolution: the median gap between its first ``first`` + 1 distinct points, snapped to a usual step.

    Only the first points count, so appending later points never changes it (the scorer stays causal).
    Gaps shorter than a second (duplicates, jitter) are ignored.

    :raises DataError: when fewer than two distinct timestamps are given.
    """
    import numpy as np

    distinct = np.unique(np.asarray(seconds, dtype=float))[: first + 1]
    gaps = np.diff(distinct)
    gaps = gaps[gaps >= 1.0]
    if len(gaps) == 0:
        raise DataError("cannot infer the series' step from fewer than two distinct timestamps; give the step explicitly")
    return snap_step(float(np.median(gaps)))


@dataclass(frozen=True)
class ParsedSeries:
    """One input series: epoch seconds and values per row (input order), and what was said about it."""

    seconds: np.ndarray
    values: np.ndarray
    notes: tuple[str, ...] = ()


def _where_row(where: str, i: int, lines: bool) -> str:
    return f"{where}: line {i + 2}" if lines else f"{where}: row {i}"


def parse(df: pd.DataFrame, where: str = "input", lines: bool = False) -> ParsedSeries:
    """Check and convert the ``timestamp`` and ``value`` columns.

    :param lines: name rows by file line (header = line 1), as the CLI does; else by 0-based row.
    :raises DataError: naming the input, the row (line) and the field.
    """
    import pandas as pd

    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing columns {missing} (need {list(INPUT_COLUMNS)}, got {list(df.columns)})")
    raw_ts = df["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(raw_ts):
        ts = raw_ts.dt.tz_localize("UTC") if raw_ts.dt.tz is None else raw_ts.dt.tz_convert("UTC")
    else:
        text = raw_ts.astype("string").str.strip()
        ts = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        retry = ts.isna() & text.notna() & (text != "")
        if retry.any():  # other spellings ("2026-01-01 00:00:00 +0100", "01/02/2026 10:00") one by one
            ts = ts.copy()
            ts[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
    bad_ts = ts.isna().to_numpy()
    if bad_ts.any():
        i = int(bad_ts.nonzero()[0][0])
        raise DataError(f"{_where_row(where, i, lines)}: field 'timestamp' = {raw_ts.iloc[i]!r} is not a timestamp "
                        "(ISO-8601; without a zone it is read as UTC)")
    return ParsedSeries(seconds=_epoch_seconds(ts), values=_values_of(df["value"], where, lines))


def _epoch_seconds(ts: pd.Series) -> np.ndarray:
    import pandas as pd

    return ((ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(float)


def _values_of(raw: pd.Series, where: str, lines: bool) -> np.ndarray:
    """The ``value`` column as floats: blank cells (and 'nan') are missing values, anything else must be a finite number.

    :raises DataError: naming the input, the row (line) and the field.
    """
    import numpy as np
    import pandas as pd

    text = raw.astype("string").str.strip() if raw.dtype == object or pd.api.types.is_string_dtype(raw) else raw
    values = pd.to_numeric(text, errors="coerce").astype(float)
    bad_value = values.isna() & raw.notna()
    if bad_value.any():  # blank cells are missing values, anything else must be a number
        bad_value &= raw.astype(str).str.strip().str.lower().isin(["", "nan"]) == False  # noqa: E712
    if bad_value.any():
        i = int(bad_value.to_numpy().nonzero()[0][0])
        raise DataError(f"{_where_row(where, i, lines)}: field 'value' = {raw.iloc[i]!r} is not a number")
    finite = values.to_numpy(float)
    inf = np.isinf(finite)
    if inf.any():
        i = int(inf.nonzero()[0][0])
        raise DataError(f"{_where_row(where, i, lines)}: field 'value' = {raw.iloc[i]!r} is not a finite number")
    return finite


def grid_of(seconds: np.ndarray, values: np.ndarray, step_s: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Place points on the epoch-anchored grid of ``step_s``; points in one slot are averaged (NaN ignored).

    :returns: the grid values, each point's grid position, and the number of points that shared a slot with another.
    """
    import numpy as np

    slot = np.round(np.asarray(seconds, dtype=float) / step_s).astype(np.int64)
    position = slot - slot.min()
    size = int(position.max()) + 1
    ok = ~np.isnan(values)
    sums = np.bincount(position[ok], weights=values[ok], minlength=size)
    counts = np.bincount(position[ok], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        grid = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    shared = int(len(position) - len(np.unique(position)))
    return grid, position, shared


MAX_GRID_POINTS = 20_000_000


def score_series(seconds: np.ndarray, values: np.ndarray, params: AnomalyParams | None = None,
                 where: str = "input") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scores and event labels per input row (any order, duplicates allowed), and notes for the user.

    :returns: (scores in [0, 1], event labels '' / 'anomaly' / 'level_shift', notes).
    """
    import numpy as np

    n = len(values)
    notes: list[str] = []
    if n == 0:
        return np.zeros(0), np.array([], dtype=object), [f"{where}: no rows: nothing to score"]
    if params is None:
        params = default_params()
        with contextlib.suppress(DataError):  # one distinct timestamp: the configured step
            params = replace(params.for_step(infer_step(seconds)), inferred_step=True)
    valid = int(np.sum(~np.isnan(values)))
    if valid < params.min_history_points:
        notes.append(f"{where}: {valid} valid point(s), fewer than min_history_points={params.min_history_points}: "
                     "too short to score, every score is 0")
        return np.zeros(n), np.full(n, "", dtype=object), notes
    span = (np.nanmax(seconds) - np.nanmin(seconds)) / params.step_s + 1
    if span > MAX_GRID_POINTS:
        raise DataError(f"{where}: {span:,.0f} grid points at step {params.step_s} s (more than {MAX_GRID_POINTS:,}): "
                        "check the timestamps' unit or give a coarser --step-s")
    grid, position, shared = grid_of(seconds, values, params.step_s)
    if shared:
        notes.append(f"{where}: {shared} row(s) share a {params.step_s}-s slot with another row (duplicates or jitter): "
                     "each slot is scored on the mean of its values and every row gets its slot's score")
    if np.nanmax(grid) == np.nanmin(grid):
        notes.append(f"{where}: the series is constant ({np.nanmin(grid):g}); a change from it would be scored")
    detection = detect(grid, params)
    labels = np.array(["", "anomaly", "level_shift"], dtype=object)
    return detection.score[position, 0], labels[detection.event[position, 0]], notes


def score_many(seconds: list[np.ndarray], values: list[np.ndarray], params: AnomalyParams, chunk: int = 100) -> list[np.ndarray]:
    """Scores of many series at one step (``params.step_s``), vectorised ``chunk`` series at a time on a shared grid.

    Gives the same scores as scoring each series alone (each series' grid starts at its own first point,
    which :func:`detect` treats like leading missing values). Memory is bounded by ``chunk`` x the grid length.
    """
    import numpy as np

    out: list[np.ndarray] = []
    for lo in range(0, len(values), chunk):
        part_s, part_v = seconds[lo: lo + chunk], values[lo: lo + chunk]
        slots = [np.round(np.asarray(s, dtype=float) / params.step_s).astype(np.int64) for s in part_s]
        firsts = [int(sl.min()) if len(sl) else 0 for sl in slots]
        length = max((int(sl.max()) - first + 1 for sl, first in zip(slots, firsts, strict=True) if len(sl)), default=0)
        grid = np.full((length, len(part_v)), np.nan)
        positions = []
        for j, (sl, v) in enumerate(zip(slots, part_v, strict=True)):
            if len(sl):
                g, pos, _ = grid_of(sl * params.step_s, np.asarray(v, dtype=float), params.step_s)
                grid[: len(g), j] = g
                positions.append(pos)
            else:
                positions.append(np.zeros(0, np.int64))
        scored = detect(grid, params).score if length else np.zeros((0, len(part_v)))
        out.extend(scored[pos, j] for j, pos in enumerate(positions))
    return out


def score_values(ts_seconds: np.ndarray, values: np.ndarray, params: AnomalyParams | None = None) -> np.ndarray:
    """Anomaly scores of ``values`` at epoch seconds ``ts_seconds`` (one per point, in the given order)."""
    return score_series(ts_seconds, values, params)[0]


def score(df: pd.DataFrame, params: AnomalyParams | None = None, where: str = "input", lines: bool = False,
          notes: list[str] | None = None) -> pd.DataFrame:
    """The rows of ``df`` (columns ``timestamp``, ``value``) with ``anomaly_score`` in [0, 1] and ``event`` added.

    Causal: appending later points never changes the score of an earlier one. Rows keep their order;
    empty values score 0; rows sharing a timestamp get one score (their slot's). The caller's frame
    is not modified. Without ``params`` the shipped settings are used at the series' own step
    (inferred from its first points, see :func:`infer_step`).

    :param where: names the input in error messages (a file path, a series).
    :param notes: if given, what the user should know (duplicates, too short, constant) is appended.
    :raises DataError: naming the row (line) and field with a bad timestamp or value.
    """
    import numpy as np

    parsed = parse(df, where, lines)
    scores, events, said = score_series(parsed.seconds, parsed.values, params, where)
    if notes is not None:
        notes.extend(said)
    out = df.copy()
    out[SCORE_COLUMN] = np.round(scores, 6)
    out[EVENT_COLUMN] = events
    return out


def score_file(input_path: str, output_path: str, params: AnomalyParams | None = None) -> dict[str, Any]:
    """Score ``input_path`` (CSV ``timestamp,value``) into ``output_path`` (``timestamp,value,anomaly_score,event``).

    The file is read by the reader the forecast and replay commands share
    (:func:`include.headroom.seriesfile.read_timestamp_value_csv`: ISO 8601 timestamps, offsets honoured,
    naive read as UTC; refusals name the file, line and field); one row is written per input row, in input order.
    """
    import os
    import sys
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from include.headroom.seriesfile import read_timestamp_value_csv

    path = Path(input_path)
    out_path = Path(output_path)
    parent = out_path.parent if str(out_path.parent) else Path(".")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise DataError(f"{out_path}: cannot write the output here (directory not writable)")
    raw, ds, _ = read_timestamp_value_csv(path, DataError)
    values = _values_of(raw["value"], str(path), lines=True)
    scores, events, notes = score_series(_epoch_seconds(ds), values, params, str(path))
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    out = pd.DataFrame({"timestamp": raw["timestamp"].str.strip(), "value": values,
                        SCORE_COLUMN: np.round(scores, 6), EVENT_COLUMN: events})
    parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(out_path, index=False, na_rep="")
    threshold = (params or default_params()).threshold
    return {"input": str(path), "output": str(out_path), "rows": len(out),
            "anomalous": int((out[SCORE_COLUMN] >= threshold).sum()), "threshold": threshold,
            "events": int((out[EVENT_COLUMN] == "anomaly").sum()), "level_shifts": int((out[EVENT_COLUMN] == "level_shift").sum()),
            "notes": notes}
