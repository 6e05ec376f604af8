"""Series preparation before fitting: one-off incidents are replaced so seasonal models do not repeat them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def replace_outliers_many(values: np.ndarray, season: int, threshold: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`replace_outliers` for every row of ``values`` (series x time) at once; returns the cleaned copy and the count per row."""
    import numpy as np
    import pandas as pd

    y = np.array(np.atleast_2d(values), dtype=float)
    s, n = y.shape
    counts = np.zeros(s, dtype=int)
    if n < 2 * season:
        return y, counts
    log_scale = np.all(y > 0, axis=1)
    work = np.where(log_scale[:, None], np.log(np.where(y > 0, y, 1.0)), y)
    cycles = -(-n // season)
    padded = np.full((s, cycles * season), np.nan)
    padded[:, :n] = work
    with np.errstate(all="ignore"):
        slot = np.nanmedian(padded.reshape(s, cycles, season), axis=1)  # (s, season)
    slot_median = np.take(slot, np.arange(n) % season, axis=1)
    deviation = work - slot_median
    window = max(3, season // 7 if season >= 7 * 24 else season)
    level = pd.DataFrame(deviation.T).rolling(window, center=True, min_periods=1).median().to_numpy().T
    residual = deviation - level
    # The spread is the whole series' robust one, raised where the local one (two seasons) is larger: after a drop
    # to a lower level, ordinary noise on the log scale is larger, not extreme.
    overall = np.median(np.abs(residual - np.median(residual, axis=1, keepdims=True)), axis=1, keepdims=True)
    local = pd.DataFrame(np.abs(residual).T).rolling(max(2 * season, 25), center=True, min_periods=1).median().to_numpy().T
    scale = 1.4826 * np.maximum(local, overall)
    outliers = (np.abs(residual) > threshold * scale) & (scale > 0)
    work = np.where(outliers, slot_median + level, work)
    cleaned = np.where(log_scale[:, None], np.exp(work), work)
    return np.where(outliers.any(axis=1)[:, None], cleaned, y), outliers.sum(axis=1)


def replace_outliers(y: np.ndarray, season: int, threshold: float = 8.0) -> tuple[np.ndarray, int]:
    """Replace points far from their seasonal slot and local level; return the cleaned copy and how many were replaced.

    Positive series are handled on the log scale. A point's deviation from the
    median of its seasonal slot is compared with the rolling one-day median of
    those deviations (which follows trend and level shifts), and points more than
    ``threshold`` robust standard deviations away are set to slot median plus local
    level. A surge or a collapse of a few hours is removed; a lasting change is not.
    The robust standard deviation is the series' own, raised where the last two
    seasons around a point are noisier, so a noisier stretch is judged against itself.
    """
    import numpy as np

    values = np.asarray(y, dtype=float)
    cleaned, counts = replace_outliers_many(values[None, :], season, threshold)
    return cleaned[0], int(counts[0])
