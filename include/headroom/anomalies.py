"""Causal, seasonal, outlier-robust anomaly scores in [0, 1] for one time series.

The score at time t uses only points at or before t, as a live detector must:

1. every point is placed on a fixed grid (``anomaly.step_s``, anchored at the
   Unix epoch, so the grid never depends on later points);
2. the seasonal expectation is the median of the same slot one to four weeks
   back (or, with less than a week of history, one to seven days back), each lag
   taken with its +-``neighbours`` points so a lone outlier in the history cannot
   move it;
3. a level correction (median of value minus seasonal over the past day) follows
   growth and weekly shifts;
4. the residual is divided by a robust scale (1.4826 x the median absolute
   residual over the past week, floored at a share of the baseline);
5. a deviation counts fully only when the previous point deviates the same way
   too (the SPEC alarms' "two periods"); a lone point needs ``spike_factor``
   times the distance. The score is ``logistic((|z| - z_mid) / z_width)``.

Points with less than ``min_history_points`` of history score 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from include.headroom.exceptions import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

INPUT_COLUMNS = ("timestamp", "value")
SCORE_COLUMN = "anomaly_score"


@dataclass(frozen=True)
class AnomalyParams:
    """The scorer's settings (``bottlenecks.yaml`` section ``anomaly``)."""

    step_s: int = 300
    seasons: tuple[tuple[int, int], ...] = ((604800, 4), (86400, 7))
    neighbours: int = 2
    level_window_points: int = 288
    scale_window_points: int = 2016
    min_history_points: int = 12
    spike_factor: float = 2.0
    z_mid: float = 6.0
    z_width: float = 0.75
    rel_scale_floor: float = 0.01
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.step_s <= 0 or self.z_width <= 0 or self.spike_factor < 1 or self.min_history_points < 1:
            raise DataError(f"anomaly settings {self!r}: need step_s > 0, z_width > 0, spike_factor >= 1, min_history_points >= 1")

    def for_step(self, step_s: int) -> AnomalyParams:
        """The same settings for a series at another resolution: windows keep their durations, not their point counts."""
        from dataclasses import replace

        if step_s <= 0:
            raise DataError(f"anomaly scoring needs a positive step, got {step_s!r} s")
        if step_s == self.step_s:
            return self
        factor = self.step_s / step_s
        return replace(
            self, step_s=int(step_s),
            neighbours=int(round(self.neighbours * factor)),
            level_window_points=max(self.min_history_points, int(round(self.level_window_points * factor))),
            scale_window_points=max(2 * self.min_history_points, int(round(self.scale_window_points * factor))),
        )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> AnomalyParams:
        seasons = tuple((int(s["period_s"]), int(s["lags"])) for s in raw.get("seasons", ())) or cls.seasons
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw and k != "seasons"}
        return cls(seasons=seasons, **known)


def default_params() -> AnomalyParams:
    """The shipped settings, from the active configuration."""
    from include.headroom.config import get_config

    return AnomalyParams.from_mapping(get_config().bottlenecks.anomaly)


def _row_nanmedian(samples: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (NaN where a row has none); sorting is much faster than ``np.nanmedian`` here."""
    import numpy as np

    ordered = np.sort(samples, axis=1)  # NaN sorts last
    count = np.sum(~np.isnan(samples), axis=1)
    rows = np.arange(len(samples))
    lo = ordered[rows, np.maximum((count - 1) // 2, 0)]
    hi = ordered[rows, np.maximum(count // 2, 0)]
    out = (lo + hi) / 2.0
    out[count == 0] = np.nan
    return out


def _seasonal(grid: np.ndarray, params: AnomalyParams) -> tuple[np.ndarray, np.ndarray]:
    """Per grid position, the seasonal expectation and the spread (1.4826 x MAD) of its samples, from values strictly before it."""
    import numpy as np

    positions = np.arange(len(grid))
    centre = np.full(len(grid), np.nan)
    spread = np.full(len(grid), np.nan)
    pending = np.ones(len(grid), bool)
    deltas = np.arange(-params.neighbours, params.neighbours + 1)
    for period_s, lags in params.seasons:
        period = period_s // params.step_s
        if period <= params.neighbours or not pending.any():
            continue
        # a season is used once a whole period (plus the neighbours) of history lies before the point
        usable = pending & (positions >= period + params.neighbours)
        if not usable.any():
            continue
        pos = positions[usable]
        offsets = (np.arange(1, lags + 1)[:, None] * period - deltas[None, :]).ravel()
        idx = pos[:, None] - offsets[None, :]
        samples = np.where(idx >= 0, grid[np.clip(idx, 0, None)], np.nan)
        median = _row_nanmedian(samples)
        centre[usable] = median
        spread[usable] = 1.4826 * _row_nanmedian(np.abs(samples - median[:, None]))
        pending &= ~usable
    return centre, spread


def _resolution(grid: np.ndarray, window: int) -> np.ndarray:
    """The smallest non-zero step between consecutive past values: a change of one unit (a replica) is never an anomaly."""
    import numpy as np
    import pandas as pd

    steps = np.abs(np.diff(grid, prepend=np.nan))
    steps[steps == 0] = np.nan
    return pd.Series(steps).rolling(window, min_periods=1).min().shift(1).to_numpy()


def score_values(ts_seconds: np.ndarray, values: np.ndarray, params: AnomalyParams | None = None) -> np.ndarray:
    """Anomaly scores of ``values`` at epoch seconds ``ts_seconds`` (sorted ascending, unique).

    :returns: scores in [0, 1]; 0 where the value is missing or history is too short.
    """
    import numpy as np
    import pandas as pd

    params = params or default_params()
    n = len(values)
    if n == 0:
        return np.zeros(0)
    slot = np.round(np.asarray(ts_seconds, dtype=float) / params.step_s).astype(np.int64)
    positions = slot - slot[0]
    grid = np.full(int(positions[-1]) + 1, np.nan)
    grid[positions] = values
    have = ~np.isnan(grid)

    seasonal, seasonal_spread = _seasonal(grid, params)
    window = params.level_window_points
    deseasoned = pd.Series(grid - seasonal)
    level = deseasoned.rolling(window, min_periods=max(1, params.min_history_points)).median().shift(1).to_numpy()
    # before a whole season is known: the median of the last three points (follows a daily ramp, not a spike)
    plain = pd.Series(grid).rolling(3, min_periods=1).median().shift(1).to_numpy()
    seasonal_ok = ~np.isnan(seasonal) & ~np.isnan(level)
    baseline = np.where(seasonal_ok, seasonal + np.nan_to_num(level), plain)
    residual = grid - baseline

    spread = pd.Series(np.abs(residual)).rolling(params.scale_window_points, min_periods=params.min_history_points).median().shift(1)
    floors = np.vstack([
        1.4826 * spread.to_numpy(),                   # how far residuals stray over the past week
        np.where(seasonal_ok, seasonal_spread, 0.0),  # how much this slot varied from lag to lag
        _resolution(grid, params.scale_window_points),
        params.rel_scale_floor * np.abs(baseline),
    ])
    scale = np.nanmax(np.nan_to_num(floors, nan=0.0), axis=0) + 1e-12
    z = residual / scale

    previous = np.concatenate(([np.nan], z[:-1]))
    same_way = np.sign(previous) == np.sign(z)
    confirmed = np.where(same_way, np.minimum(np.abs(z), np.abs(previous)), 0.0)
    lone = np.abs(z) / params.spike_factor
    strength = np.nan_to_num(np.maximum(np.nan_to_num(confirmed), lone), nan=0.0)
    with np.errstate(over="ignore"):
        scores = 1.0 / (1.0 + np.exp(-(strength - params.z_mid) / params.z_width))
    scores[~have | np.isnan(z)] = 0.0
    # a logistic never reaches 0: what sits far below the midpoint is reported as 0
    scores[strength < params.z_mid - 8 * params.z_width] = 0.0
    return np.clip(scores[positions], 0.0, 1.0)


def _parse(df: pd.DataFrame, where: str) -> tuple[pd.Series, pd.Series]:
    import pandas as pd

    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing columns {missing} (need {list(INPUT_COLUMNS)}, got {list(df.columns)})")
    ts = pd.to_datetime(df["timestamp"], utc=True, errors="coerce", format="mixed")
    bad_ts = ts.isna() & df["timestamp"].notna() | df["timestamp"].isna()
    if bad_ts.any():
        row = int(bad_ts.to_numpy().nonzero()[0][0])
        raise DataError(f"{where}: row {row}: timestamp {df['timestamp'].iloc[row]!r} is not a timestamp")
    raw = df["value"]
    values = pd.to_numeric(raw, errors="coerce")
    bad_value = values.isna() & raw.notna()
    if bad_value.any():  # blank cells are missing values, anything else must be a number
        bad_value &= raw.astype(str).str.strip() != ""
    if bad_value.any():
        row = int(bad_value.to_numpy().nonzero()[0][0])
        raise DataError(f"{where}: row {row}: value {raw.iloc[row]!r} is not a number")
    dup = ts.duplicated(keep=False)
    if dup.any():
        rows = dup.to_numpy().nonzero()[0][:2].tolist()
        raise DataError(f"{where}: rows {rows}: duplicate timestamp {ts.iloc[rows[0]].isoformat()}")
    return ts, values.astype(float)


def infer_step(seconds: np.ndarray, first: int = 32) -> int:
    """The series' resolution: the median gap between its first ``first`` + 1 distinct points (sorted epoch seconds).

    Only the first points count, so appending later points never changes it (the scorer stays causal).

    :raises DataError: when fewer than two distinct timestamps are given.
    """
    import numpy as np

    gaps = np.diff(np.unique(np.asarray(seconds, dtype=float))[: first + 1])
    if len(gaps) == 0:
        raise DataError("cannot infer the series' step from fewer than two distinct timestamps; give the step explicitly")
    return max(1, int(round(float(np.median(gaps)))))


def score(df: pd.DataFrame, params: AnomalyParams | None = None, where: str = "input") -> pd.DataFrame:
    """The rows of ``df`` (columns ``timestamp``, ``value``) with ``anomaly_score`` in [0, 1] added.

    Causal: appending later points never changes the score of an earlier one. Rows keep
    their order; empty values score 0. The caller's frame is not modified. Without ``params``
    the shipped settings are used at the series' own resolution (inferred from its first points,
    see :func:`infer_step`), so 1-minute, hourly and daily series are scored as well as 5-minute ones.

    :param where: names the input in error messages (a file path, a series).
    :raises DataError: naming the row with a bad timestamp or value, or duplicate timestamps.
    """
    import numpy as np
    import pandas as pd

    ts, values = _parse(df, where)
    seconds = ((ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(float)
    order = np.argsort(seconds, kind="stable")
    if params is None:
        params = default_params()
        if len(df) >= 2:
            params = params.for_step(infer_step(seconds))
    sorted_scores = score_values(seconds[order], values.to_numpy(float)[order], params)
    scores = np.empty(len(df))
    scores[order] = sorted_scores
    out = df.copy()
    out[SCORE_COLUMN] = np.round(scores, 6)
    return out


def score_file(input_path: str, output_path: str, params: AnomalyParams | None = None) -> dict[str, Any]:
    """Score ``input_path`` (CSV ``timestamp,value``) into ``output_path`` (``timestamp,value,anomaly_score``)."""
    from pathlib import Path

    import pandas as pd

    path = Path(input_path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype={"timestamp": str, "value": str}, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV: {exc}") from exc
    scored = score(frame, params, where=str(path))
    out = scored[[*INPUT_COLUMNS, SCORE_COLUMN]].copy()
    out["value"] = pd.to_numeric(out["value"])
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(output_path, index=False)
    threshold = (params or default_params()).threshold
    return {"input": str(path), "output": str(output_path), "rows": len(out),
            "anomalous": int((out[SCORE_COLUMN] > threshold).sum()), "threshold": threshold}
