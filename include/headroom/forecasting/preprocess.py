"""Series preparation before fitting: one-off incidents are replaced so seasonal models do not repeat them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def replace_outliers(y: np.ndarray, season: int, threshold: float = 8.0) -> tuple[np.ndarray, int]:
    """Replace points far from their seasonal slot and local level; return the cleaned copy and how many were replaced.

    Positive series are handled on the log scale. A point's deviation from the
    median of its seasonal slot is compared with the rolling one-day median of
    those deviations (which follows trend and level shifts), and points more than
    ``threshold`` robust standard deviations away are set to slot median plus local
    level. A surge or a collapse of a few hours is removed; a lasting change is not.
    """
    import numpy as np
    import pandas as pd

    values = np.asarray(y, dtype=float)
    if len(values) < 2 * season:
        return values.copy(), 0
    log_scale = bool(np.all(values > 0))
    work = np.log(values) if log_scale else values.copy()
    slot = np.arange(len(work)) % season
    slot_median = pd.Series(work).groupby(slot).transform("median").to_numpy()
    deviation = work - slot_median
    window = max(3, season // 7 if season >= 7 * 24 else season)
    level = pd.Series(deviation).rolling(window, center=True, min_periods=1).median().to_numpy()
    residual = deviation - level
    scale = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    if scale <= 0:
        return values.copy(), 0
    outliers = np.abs(residual) > threshold * scale
    work[outliers] = (slot_median + level)[outliers]
    cleaned = np.exp(work) if log_scale else work
    return cleaned, int(outliers.sum())
