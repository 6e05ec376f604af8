"""``auto``: one vectorised engine for one series or a whole batch on one time grid.

What it does to every row of a ``(series, time)`` matrix, in order:

1. **Outliers**: points whose robust z against their seasonal slot and local level is
   above ``outlier_z`` are replaced (:func:`~include.headroom.forecasting.preprocess.replace_outliers`)
   and counted.
2. **Seasonality found per series** (:func:`detect_periods`): the daily and weekly
   periods are kept where the autocorrelation of the detrended series at that lag
   is clear; otherwise the strongest other autocorrelation peak, or none.
3. **Structural breaks** (:func:`adjust_level_shifts`): persistent level shifts are
   found on period means and the history before the last one is moved to the new
   level, so a series that moved is forecast from where it is now. Persistent changes
   of slope (:func:`adjust_trend_breaks`, the batch screened in one pass by
   :func:`trend_break_rows`): such a series is also forecast from its current slope (the
   history tilted onto it, the line carried on), kept where its backtests are better.
4. **Candidates** (``KERNELS``), each a vectorised NumPy kernel over the rows: seasonal
   naive (day, week), trend + Fourier seasons, AutoETS-style exponential smoothing
   (SES or damped Holt, smoothing parameters by AIC over a grid) on the seasonally
   adjusted series, Theta (SES with half the linear drift), MSTL-like (daily and weekly
   seasonal profiles removed in turn, ETS on the remainder), AR(p) with p by AIC on the
   seasonally adjusted series. Registry models that cannot batch (Holt-Winters,
   SARIMAX, Prophet) run series by series when configured.
5. **Rolling-origin backtests** over several origins; candidates whose error on the
   most recent origin is more than ``guard_ratio`` times the seasonal naive's are out;
   the best ``top_k`` by mean MASE (those within ``combine_within`` of the best) are
   combined (inverse-MASE weights or median). If
   the combination's backtest MASE is not below seasonal naive's, seasonal naive is used.
6. **Conformal intervals** per horizon step from the combination's absolute backtest
   errors (pooled over origins and neighbouring steps, finite-sample quantile),
   widened with the square root of the step beyond the backtest horizon. The coverage stored with the scores is leave-one-origin-out,
   so it is measured on errors the interval did not see.

Rows with the same seasonality run together, so a batch costs a handful of matrix
passes whatever its size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Sequence

from include.headroom.exceptions import ForecastError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from include.headroom.forecasting.settings import ForecastConfig

DAY_NS = 86_400 * 10**9
BASELINE = "seasonal_naive"
ETS_WINDOW_DAYS = 14  # exponential smoothing forgets; the recursion runs over at most this much recent history
ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0)
BETAS = (0.05,)
PHIS = (0.9, 0.98)


@dataclass(frozen=True)
class EngineSpec:
    """How ``auto`` backtests, combines and bounds.

    :param candidates: model names (``KERNELS`` batch; other registry models run series by series).
    :param horizon: backtest horizon in steps (each origin forecasts this far).
    :param origins: rolling origins, newest leaves exactly ``horizon`` points to score.
    :param every: steps between origins.
    :param min_train: the shortest training history of the oldest origin (origins that would train on less are dropped).
    :param top_k: how many of the best candidates are combined.
    :param combine: ``inverse_error`` (weights 1 / MASE) or ``median``.
    :param guard_ratio: candidates whose MAE on the most recent origin exceeds this times seasonal naive's are not chosen.
    :param outlier_z: robust z above which a point is an outlier (replaced); ``0`` turns the cleaning off.
    :param break_z: level-shift statistic above which a break is declared; ``0`` turns break detection off.
    :param trend_z: trend-break statistic (t of the slope change) above which the history is tilted onto the
        current slope; ``0`` turns trend-break detection off.
    :param select: ``False`` forecasts with the first candidate alone (no choice, no guard), with its conformal interval.
    :param combine_within: only candidates whose backtest MASE is within this factor of the best one are combined
        (a clearly better model is not diluted by weaker ones).
    """

    candidates: tuple[str, ...] = ("seasonal_naive", "seasonal_naive_weekly", "fourier_trend", "ets", "theta", "mstl", "arima")
    horizon: int = 24
    origins: int = 5
    every: int = 24
    min_train: int = 48
    top_k: int = 3
    combine: str = "inverse_error"
    guard_ratio: float = 1.5
    outlier_z: float = 8.0
    break_z: float = 6.0
    trend_z: float = 5.0
    combine_within: float = 1.25
    select: bool = True

    def __post_init__(self) -> None:
        for name in ("horizon", "origins", "every", "min_train", "top_k"):
            if getattr(self, name) < 1:
                raise ForecastError(f"engine {name}={getattr(self, name)!r} must be at least 1")
        if self.combine not in ("inverse_error", "median"):
            raise ForecastError(f"engine combine={self.combine!r} must be 'inverse_error' or 'median'")
        if self.guard_ratio <= 1 or self.combine_within < 1:
            raise ForecastError(f"engine guard_ratio={self.guard_ratio!r} must be above 1, "
                                f"combine_within={self.combine_within!r} at least 1")

    def origin_lengths(self, n: int) -> list[int]:
        """Training lengths of the origins, oldest first.

        :raises ForecastError: when not even one origin fits (``min_train + horizon`` points needed).
        """
        last = n - self.horizon
        out = [last - k * self.every for k in range(self.origins) if last - k * self.every >= self.min_train]
        if not out:
            raise ForecastError(
                f"{n} points: less data than horizon after initial window ({self.min_train} + {self.horizon} needed). "
                "Make horizon shorter or give a longer history."
            )
        return sorted(out)


def spec_for(config: ForecastConfig, per_day: int, horizon: int, n: int, candidates: Sequence[str] | None = None) -> EngineSpec:
    """The engine's settings for a series of ``n`` points (``per_day`` a day) forecast ``horizon`` steps ahead.

    Backtests forecast ``min(horizon, backtest.horizon_days)``, origins ``period_days`` apart
    but no further apart than the backtest horizon; a short history trains the oldest origin
    on less than ``initial_days`` (never less than a day and a step) so that up to
    ``max_cutoffs`` origins fit.
    """
    bt = config.backtest
    hb = max(1, min(horizon, int(round(bt.horizon_days * per_day))))
    every = max(1, min(int(round(bt.period_days * per_day)), hb))
    floor = per_day + 1 if per_day >= 2 else 8
    min_train = max(floor, min(int(round(bt.initial_days * per_day)), n - hb - every * (bt.max_cutoffs - 1)))
    return EngineSpec(
        candidates=tuple(candidates if candidates is not None else config.models), horizon=hb, origins=bt.max_cutoffs, every=every,
        min_train=min_train, top_k=bt.top_k, combine=bt.combine, guard_ratio=bt.guard_ratio, combine_within=bt.combine_within,
        outlier_z=config.outlier_z,
        break_z=config.break_z,
        trend_z=config.trend_z,
    )


# -- seasonality, breaks --------------------------------------------------------------------------


def _acf(x: np.ndarray, lag: int) -> float:
    import numpy as np

    if lag >= len(x) - 2:
        return float("nan")
    a, b = x[lag:], x[:-lag]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < max(8, lag // 2):
        return float("nan")
    a, b = a[ok], b[ok]
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denom if denom > 0 else float("nan")


def detect_periods(y: np.ndarray, per_day: int, threshold: float = 0.3, weekly: bool = True) -> tuple[int, ...]:
    """Seasonal periods (in steps) found in ``y``: daily and/or weekly when clear, else the strongest other period, else none.

    A period needs at least two whole cycles. The series is detrended by a centred
    moving average one period long (edges left out) before the autocorrelation is read;
    the weekly lag is judged on what the daily profile leaves, as it repeats the day too.
    """
    import numpy as np
    import pandas as pd

    y = np.asarray(y, dtype=float)
    n = len(y)
    found: list[int] = []

    def strength(period: int) -> float:
        if period < 2 or n < 2 * period + 2:
            return float("nan")
        trend = pd.Series(y).rolling(period + 1, center=True).mean().to_numpy()  # NaN at the edges: no edge ramps
        return _acf(y - trend, period)

    s = strength(per_day)
    if s == s and s >= threshold:
        found.append(per_day)
    if weekly and n >= 2 * 7 * per_day + 2:
        # The weekly lag repeats the daily season too: judge it on what the daily profile leaves.
        rest = seasonal_profiles(y[None, :], found, 1)[0][0] if found else y
        trend = pd.Series(rest).rolling(7 * per_day + 1, center=True).mean().to_numpy()
        s = _acf(rest - trend, 7 * per_day)
        if s == s and s >= (threshold if found else max(threshold, 0.45)):  # without a daily season, a shorter cycle can echo
            found.append(7 * per_day)
    if found:
        return tuple(found)
    return _other_period_many(y[None, :], per_day, threshold)[0]


def _other_period_many(values: np.ndarray, per_day: int, threshold: float = 0.3) -> list[tuple[int, ...]]:
    """Per row, the period of the highest autocorrelation peak of the detrended series in ``[2, n / 3]`` (at most two
    weeks), when that autocorrelation is at least ``max(threshold, 0.4)``; else none. Series under 16 points have none.

    The trend is a centred moving mean a tenth of the series long (shorter at the edges); every
    row's autocorrelations at every lag come from one FFT of the matrix.
    """
    import numpy as np

    y = np.atleast_2d(np.asarray(values, dtype=float))
    s, n = y.shape
    max_lag = min(n // 3, 2 * 7 * per_day)
    if s == 0 or n < 16 or max_lag < 3:
        return [()] * s
    half = (max(3, n // 10) | 1) // 2
    c = np.cumsum(np.pad(y, ((0, 0), (1, 0))), axis=1)
    lo, hi = np.maximum(np.arange(n) - half, 0), np.minimum(np.arange(n) + half + 1, n)
    x = y - (c[:, hi] - c[:, lo]) / (hi - lo)
    x -= x.mean(axis=1, keepdims=True)
    denom = np.einsum("st,st->s", x, x)
    spectrum = np.fft.rfft(x, 2 * n, axis=1)
    lagged = np.fft.irfft(spectrum * np.conj(spectrum), 2 * n, axis=1)[:, 1 : max_lag + 1]  # lag k at column k - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        acf = lagged / denom[:, None]
    peak = np.zeros_like(acf, dtype=bool)
    peak[:, 1:-1] = (acf[:, 1:-1] > acf[:, :-2]) & (acf[:, 1:-1] >= acf[:, 2:])
    best = np.argmax(np.where(peak, acf, -np.inf), axis=1)  # the first of equal peaks, as max() takes it
    strong = peak.any(axis=1) & (denom > 0) & (acf[np.arange(s), best] >= max(threshold, 0.4))
    return [(int(best[i]) + 1,) if strong[i] and best[i] + 1 >= 2 else () for i in range(s)]


def _centred_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving mean of each row over ``window`` steps; NaN where the window does not fit."""
    import numpy as np

    s, n = x.shape
    out = np.full((s, n), np.nan)
    if window > n:
        return out
    c = np.cumsum(np.pad(x, ((0, 0), (1, 0))), axis=1)
    means = (c[:, window:] - c[:, :-window]) / window
    half = window // 2
    out[:, half : half + means.shape[1]] = means
    return out


def _acf_many(x: np.ndarray, lag: int) -> np.ndarray:
    """Autocorrelation of each row at ``lag`` over the pairs where both values exist (NaN when too few)."""
    import numpy as np

    s, n = x.shape
    if lag >= n - 2:
        return np.full(s, np.nan)
    a, b = x[:, lag:], x[:, :-lag]
    ok = np.isfinite(a) & np.isfinite(b)
    count = ok.sum(axis=1)
    a, b = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    with np.errstate(all="ignore"):
        a = np.where(ok, a - a.sum(axis=1, keepdims=True) / np.maximum(count, 1)[:, None], 0.0)
        b = np.where(ok, b - b.sum(axis=1, keepdims=True) / np.maximum(count, 1)[:, None], 0.0)
        denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
        r = np.where(denom > 0, (a * b).sum(axis=1) / denom, np.nan)
    return np.where(count >= max(8, lag // 2), r, np.nan)


def detect_periods_many(values: np.ndarray, per_day: int, threshold: float = 0.3, weekly: bool = True) -> list[tuple[int, ...]]:
    """:func:`detect_periods` for every row of ``values`` at once (the daily and weekly tests are matrix operations)."""
    import numpy as np

    y = np.atleast_2d(np.asarray(values, dtype=float))
    s, n = y.shape
    daily = np.zeros(s, dtype=bool)
    if per_day >= 2 and n >= 2 * per_day + 2:
        strength = _acf_many(y - _centred_mean(y, per_day + 1), per_day)
        daily = np.nan_to_num(strength, nan=-1.0) >= threshold
    week = np.zeros(s, dtype=bool)
    if weekly and per_day >= 1 and n >= 2 * 7 * per_day + 2 and 7 * per_day >= 2:
        rest = y.copy()
        if daily.any():
            rest[daily] = seasonal_profiles(y[daily], (per_day,), 1)[0]
        strength = _acf_many(rest - _centred_mean(rest, 7 * per_day + 1), 7 * per_day)
        # Without a daily season a shorter cycle can echo at the weekly lag: ask for more.
        week = np.nan_to_num(strength, nan=-1.0) >= np.where(daily, threshold, max(threshold, 0.45))
    out = [tuple(p for p, on in ((per_day, daily[i]), (7 * per_day, week[i])) if on) for i in range(s)]
    rest_rows = [i for i in range(s) if not out[i]]
    for i, found in zip(rest_rows, _other_period_many(y[rest_rows], per_day, threshold), strict=True):  # another period
        out[i] = found
    return out


def _blocks(n: int, block: int, periods: Sequence[int]) -> tuple[int, int, bool, bool]:
    """How a history of ``n`` steps is cut into blocks: ``(block, n_blocks, fine, weekly_blocks)``.

    Blocks are one season long; with under two weeks of seasons (``fine``) they are quarter
    seasons of the seasonally adjusted series; with three weeks of daily blocks of a
    weekly pattern (``weekly_blocks``) the day-of-week effect is taken out of the means.
    """
    block = max(1, int(block))
    fine = n // block < 14 and block in periods and block >= 8
    if fine:
        block //= 4
    n_blocks = n // block
    weekly_blocks = not fine and n_blocks >= 21 and (block in periods or 7 * block in periods)
    return block, n_blocks, fine, weekly_blocks


def _block_means(x: np.ndarray, block: int, n_blocks: int, fine: bool, weekly_blocks: bool,
                 periods: Sequence[int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Means of the whole blocks aligned to the end of each row of ``x`` (the recent data matters most): ``(means, work, offset)``.

    ``x`` is one series or a matrix of rows; ``work`` is what the means were taken of
    (seasonally adjusted when ``fine``).
    """
    import numpy as np
    import pandas as pd

    rows = np.atleast_2d(x)
    offset = rows.shape[1] - n_blocks * block
    work = seasonal_profiles(rows, periods[:1], 1)[0] if fine else rows
    means = work[:, offset:].reshape(len(rows), n_blocks, block).mean(axis=2)
    if weekly_blocks:  # daily blocks of a weekly pattern: take the day-of-week effect out (a weekend is no break)
        local_level = pd.DataFrame(means.T).rolling(7, center=True, min_periods=4).median().to_numpy().T
        dev = means - local_level
        day = (np.arange(n_blocks) - n_blocks) % 7
        profile = np.stack([np.median(dev[:, day == d], axis=1) for d in range(7)], axis=1)
        means = means - profile[:, day]
    if np.ndim(x) == 1:
        return means[0], work[0], offset
    return means, work, offset


def adjust_level_shifts(y: np.ndarray, block: int, z: float = 6.0, max_breaks: int = 3,
                        periods: Sequence[int] = ()) -> tuple[np.ndarray, list[int]]:
    """Move the history before each persistent level shift to the level after it; return the adjusted copy and the break indices.

    The series is cut into blocks of ``block`` steps (one season), and a split between
    block means is a break when the difference of the medians of the blocks on either
    side, over the robust spread of block-to-block changes, is above ``z`` with two
    blocks on either side. With three weeks of daily blocks the day-of-week effect is
    taken out of the block means first (a weekend is not a break), and a steady trend
    always is; with under two weeks of seasons, the blocks are quarter seasons of the
    seasonally adjusted series. The shift must also be sharp: the blocks just past the
    split's neighbours on either side carry most of it (growth that bends is not a shift).
    The strongest split is adjusted first, then the search repeats up to ``max_breaks`` times.
    """
    import numpy as np
    import pandas as pd

    x = np.asarray(y, dtype=float).copy()
    breaks: list[int] = []
    block, n_blocks, fine, weekly_blocks = _blocks(len(x), block, periods)
    if n_blocks < 5 or z <= 0:
        return x, breaks
    for _ in range(max_breaks):
        raw, work, offset = _block_means(x, block, n_blocks, fine, weekly_blocks, periods)
        means = raw - np.median(np.diff(raw)) * np.arange(n_blocks)  # a steady trend is not a shift
        spread = 1.4826 * np.median(np.abs(np.diff(means) - np.median(np.diff(means))))
        if not spread > 0:
            return x, breaks
        before = pd.Series(means).expanding().median().to_numpy()  # before[k - 1] = median(means[:k])
        after = pd.Series(means[::-1]).expanding().median().to_numpy()[::-1]  # after[k] = median(means[k:])
        ks = np.arange(2, n_blocks - 2)  # at least two blocks before and three after (persistent)
        if not len(ks):
            return x, breaks
        stats = np.abs(after[ks] - before[ks - 1]) / spread
        # Where: the classical change-point statistic (difference of means, weighted by sqrt(k (n - k) / n)) peaks at the step.
        c = np.concatenate([[0.0], np.cumsum(means)])
        where = np.abs((c[-1] - c[ks]) / (n_blocks - ks) - c[ks] / ks) * np.sqrt(ks * (n_blocks - ks) / n_blocks)
        pick = int(np.argmax(where))
        best, best_stat = int(ks[pick]), float(stats[pick])
        if best_stat < z:
            return x, breaks
        shift = float(np.median(means[best:]) - np.median(means[:best]))
        # A level shift is sharp: the two blocks after the split against the two before carry most of it.
        # Growth that bends is not a shift.
        # The block on either side of the split may hold the step itself: compare the one beyond each.
        local = float(means[min(best + 1, n_blocks - 1)] - means[max(best - 2, 0)])
        if abs(local) < 0.6 * abs(shift) or np.sign(local) != np.sign(shift):
            return x, breaks
        # A ramp near the end looks like a step too: the step must fit the block means better than a line that bends.
        t = np.arange(n_blocks, dtype=float)
        bend_sse = _sse_beside_line(raw, np.maximum(t[None, :] - np.arange(1, n_blocks - 1)[:, None], 0.0)).min()
        if bend_sse < (1 - 1e-9) * _sse_beside_line(raw, _steps(n_blocks)).min():  # a tie (the last blocks) is a step
            return x, breaks
        cut = _refine_break(work, offset + best * block, block)
        if cut in breaks:
            return x, breaks
        x[:cut] += shift
        breaks.append(cut)
    return x, sorted(breaks)


def _steps(n_blocks: int) -> np.ndarray:
    """Level-shift regressors on block means, one per row: every split, and steps a quarter, half, three quarters into a block."""
    import numpy as np

    t = np.arange(n_blocks)[None, :]
    split = np.repeat(np.arange(1, n_blocks), 4)[:, None]
    part = np.tile([0.0, 0.25, 0.5, 0.75], n_blocks - 1)[:, None]
    return (t > split).astype(float) + (t == split) * (1.0 - part)


def _sse_beside_line(means: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """Residual sum of squares of ``means`` on a straight line plus each row of ``extra`` (one regressor per row)."""
    import numpy as np

    t = np.arange(len(means), dtype=float)
    basis = np.vstack([np.ones(len(means)), t - t.mean()])
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    resid = means - basis.T @ (basis @ means)
    regs = extra - (extra @ basis.T) @ basis
    norm2 = np.einsum("kb,kb->k", regs, regs)
    with np.errstate(divide="ignore", invalid="ignore"):
        explained = np.where(norm2 > 0, (regs @ resid) ** 2 / norm2, 0.0)
    return float(resid @ resid) - explained


def _refine_break(x: np.ndarray, cut: int, block: int) -> int:
    """The exact step of a level shift found between blocks: where the sum of one block of seasonal differences peaks."""
    import numpy as np

    if len(x) < 2 * block + 1 or block < 2:
        return cut
    d = np.zeros(len(x))
    d[block:] = x[block:] - x[:-block]  # a step at t lifts d over [t, t + block)
    c = np.concatenate([[0.0], np.cumsum(d)])
    lo, hi = max(block, cut - 2 * block), min(len(x) - block, cut + block)
    if hi <= lo:
        return cut
    starts = np.arange(lo, hi + 1)
    sums = np.abs(c[starts + block] - c[starts])
    return int(starts[np.argmax(sums)])


def _bend_test(means: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The trend-break test of :func:`adjust_trend_breaks` on block means ``(series, blocks)``, all rows and bends at once.

    :returns: per row whether its best bend is a trend break, that bend's block, its slope change per block,
        and the slope per block of the bent line at the end.
    """
    import numpy as np

    s, n_blocks = means.shape
    t = np.arange(n_blocks, dtype=float)
    ks = np.arange(3, n_blocks - max(4, n_blocks // 6) + 1)
    none = (np.zeros(s, dtype=bool), np.zeros(s, dtype=int), np.zeros(s), np.zeros(s))
    if n_blocks < 12 or not len(ks):
        return none
    # Each bend regressor with the straight line (intercept, slope) projected out: the t statistic of c is then one dot product.
    basis = np.vstack([np.ones(n_blocks), t - t.mean()])
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    hinge = np.maximum(t[None, :] - ks[:, None], 0.0)
    hinge -= (hinge @ basis.T) @ basis
    norm2 = np.einsum("kb,kb->k", hinge, hinge)
    resid = means - (means @ basis.T) @ basis
    sse0 = np.einsum("sb,sb->s", resid, resid)
    proj = resid @ hinge.T  # (series, bends)
    explained = proj**2 / norm2
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.sqrt(explained) / np.sqrt(np.maximum(sse0[:, None] - explained, 0.0) / (n_blocks - 3))
    # A bend that explains next to nothing (rounding on an exact line) is none; an exact bent line has an infinite statistic.
    scale = np.einsum("sb,sb->s", means, means)[:, None] + 1e-300
    stat = np.where(explained > 1e-12 * scale, np.nan_to_num(stat, nan=0.0, posinf=1e300), 0.0)
    pick = np.argmax(stat, axis=1)
    rows = np.arange(s)
    change = proj[rows, pick] / norm2[pick]
    rest = resid - hinge[pick] * change[:, None]  # residuals of the best bent line
    # Wandering means (autocorrelated residuals) bend anywhere: the spread counts as sqrt((1 + r) / (1 - r)) as much.
    rr = np.einsum("sb,sb->s", rest, rest)
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.clip(np.where(rr > 0, np.einsum("sb,sb->s", rest[:, 1:], rest[:, :-1]) / rr, 0.0), 0.0, 0.9)
    ok = stat[rows, pick] * np.sqrt((1 - r1) / (1 + r1)) >= z
    # A step near the end looks like a bend too: the bend must fit better than a level shift anywhere.
    steps = _steps(n_blocks)
    steps -= (steps @ basis.T) @ basis
    step_norm2 = np.einsum("kb,kb->k", steps, steps)
    step_sse = sse0 - ((resid @ steps.T) ** 2 / step_norm2).max(axis=1)
    ok &= rr < (1 - 1e-9) * step_sse
    line = means - rest  # the bent line; its last two blocks are past the bend
    return ok, ks[pick], change, line[:, -1] - line[:, -2]


def trend_break_rows(values: np.ndarray, block: int, z: float = 5.0, periods: Sequence[int] = (), per_day: int = 1) -> np.ndarray:
    """Which rows of ``values`` (one block and seasonality) :func:`adjust_trend_breaks` would find a trend break in, as one matrix pass."""
    import numpy as np

    y = np.atleast_2d(np.asarray(values, dtype=float))
    block, n_blocks, fine, weekly_blocks = _blocks(y.shape[1], block, periods)
    if z <= 0 or n_blocks < 12 or (per_day >= 2 and y.shape[1] < 4 * per_day):
        return np.zeros(len(y), dtype=bool)
    means, _, _ = _block_means(y, block, n_blocks, fine, weekly_blocks, periods)
    return _bend_test(means, z)[0]


def adjust_trend_breaks(y: np.ndarray, block: int, z: float = 5.0, max_breaks: int = 2, periods: Sequence[int] = (),
                        per_day: int = 1) -> tuple[np.ndarray, list[int], float]:
    """Tilt the history before each persistent change of slope onto the slope after it.

    :returns: the adjusted copy, the kinks (steps) and the current slope per step (``0.0`` when there is no kink).

    On the block means (cut as for :func:`adjust_level_shifts`), a straight line is
    compared with a line that bends once (``a + b t + c max(t - k, 0)``) at every block
    ``k`` with three blocks before and at least a sixth of the blocks (four or more) after
    it, all bends in one matrix pass. The bend is a trend break when the t statistic of
    its slope change ``c`` (against the bent line's residual spread, counted larger when
    the residuals are autocorrelated, as a wandering level's are) is above ``z`` and the
    bent line fits better than any level shift (a step near the end looks like a bend). The
    history before the kink is then tilted by the change (``x[t] += c (t - kink) / block``,
    continuous at the kink), so every candidate sees one slope, the current one, over the
    whole history; :func:`run_engine` forecasts such a series from its current slope.
    The search repeats on the tilted series up to ``max_breaks`` times.

    A bend needs several seasons to tell from a season: nothing is tested on under four
    days of a sub-daily series, nor on under twelve blocks.
    """
    import numpy as np

    x = np.asarray(y, dtype=float).copy()
    breaks: list[int] = []
    slope = 0.0
    block, n_blocks, fine, weekly_blocks = _blocks(len(x), block, periods)
    if z <= 0 or n_blocks < 12 or (per_day >= 2 and len(x) < 4 * per_day):
        return x, breaks, slope
    for _ in range(max_breaks):
        means, _, offset = _block_means(x, block, n_blocks, fine, weekly_blocks, periods)
        ok, at, change, end_slope = (v[0] for v in _bend_test(means[None, :], z))
        if not ok:
            break
        kink = offset + int(at) * block + (block - 1) / 2.0  # the centre of the block where the line bends
        before = np.arange(len(x)) < kink
        x[before] += float(change) / block * (np.arange(len(x))[before] - kink)
        cut = int(math.ceil(kink))
        if cut in breaks:
            break
        breaks.append(cut)
        slope = float(end_slope) / block
    return x, sorted(breaks), slope


# -- vectorised kernels: train (series, n) -> path (series, horizon) ---------------------------------


@dataclass(frozen=True)
class Grid:
    """What every kernel needs to know about the rows' time grid."""

    step: pd.Timedelta
    per_day: int
    periods: tuple[int, ...]  # seasonal periods found for these rows, shortest first
    start: pd.Timestamp | None = None  # first timestamp (only the per-series fallbacks need it)


def _tile(last: np.ndarray, horizon: int) -> np.ndarray:
    import numpy as np

    return np.take(last, np.arange(horizon) % last.shape[1], axis=1)


def _seasonal_naive(train: np.ndarray, grid: Grid, horizon: int, days: int = 1) -> np.ndarray:
    import numpy as np

    m = grid.per_day * days if grid.per_day >= 2 or days > 1 else 1
    if train.shape[1] < m + 1:
        return np.full((train.shape[0], horizon), np.nan)
    return _tile(train[:, -m:], horizon)


def _fourier(train: np.ndarray, grid: Grid, horizon: int) -> np.ndarray:
    import numpy as np

    from include.headroom.forecasting.models import fit_fourier_many

    if train.shape[1] < 2 * max(grid.per_day, 2):
        return np.full((train.shape[0], horizon), np.nan)
    fit = fit_fourier_many(train, grid.step)
    path = fit.predict(horizon)
    with np.errstate(over="ignore"):
        return np.where(fit.log_scale[:, None], np.exp(np.minimum(path, 700.0)), path)


def seasonal_profiles(x: np.ndarray, periods: Sequence[int], horizon: int, cycles: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Remove each period's mean profile in turn (shortest first, MSTL's order); return the remainder and the future season.

    A profile is the mean by position within the period of the series minus its centred
    moving average, over the last ``cycles`` whole periods, centred on zero.
    """
    import numpy as np

    rem = np.array(x, dtype=float)
    s, n = rem.shape
    future = np.zeros((s, horizon))
    for p in periods:
        if p < 2 or n < 2 * p + 1:
            continue
        c = np.cumsum(np.pad(rem, ((0, 0), (1, 0))), axis=1)
        ma = (c[:, p:] - c[:, :-p]) / p  # ma[:, j] = mean(rem[:, j:j + p]), centred at j + p / 2
        trend = np.full_like(rem, np.nan)
        trend[:, p // 2 : p // 2 + ma.shape[1]] = ma
        if p % 2 == 0:  # a 2 x p moving average centres an even period exactly
            trend[:, p // 2 : p // 2 + ma.shape[1] - 1] = 0.5 * (ma[:, :-1] + ma[:, 1:])
            trend[:, p // 2 + ma.shape[1] - 1] = np.nan
        detr = rem - trend
        span = min(cycles, n // p) * p
        base = n - span
        seg = detr[:, base:].reshape(s, span // p, p)
        counts = np.isfinite(seg).sum(axis=1)
        profile = np.where(counts > 0, np.nansum(seg, axis=1) / np.maximum(counts, 1), 0.0)
        profile -= profile.mean(axis=1, keepdims=True)
        rem -= np.take(profile, (np.arange(n) - base) % p, axis=1)
        future += np.take(profile, (np.arange(n, n + horizon) - base) % p, axis=1)
    return rem, future


class _Memo:
    """Work the kernels share on one training matrix (its seasonal decomposition, the exponential smoothing runs).

    ``ets``, ``theta``, ``mstl`` and ``arima`` decompose the same matrix with the same periods and
    run the same smoothing recursions on it; within :func:`_forecast_group` each training matrix
    is decomposed and smoothed once. Entries are keyed by the matrix itself (by identity, held
    while the memo lives) and never mutated by their users.
    """

    def __init__(self) -> None:
        self.train: np.ndarray | None = None
        self.entries: dict[tuple[Any, ...], Any] = {}

    def use(self, train: np.ndarray) -> None:
        if train is not self.train:
            self.train, self.entries = train, {}

    def get(self, train: np.ndarray, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        if train is not self.train:
            return make()
        if key not in self.entries:
            self.entries[key] = make()
        return self.entries[key]


_MEMO = _Memo()


def _profiles(train: np.ndarray, periods: Sequence[int], horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`seasonal_profiles` of a kernel's training matrix, once per matrix, periods and horizon."""
    periods = tuple(periods)
    return _MEMO.get(train, ("profiles", periods, horizon), lambda: seasonal_profiles(train, periods, horizon))


def _ets_runs(r: np.ndarray, combos: Sequence[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The smoothing recursion of every parameter combination ``(alpha, beta, phi)`` over each row of ``r``.

    :returns: final level, final slope and the sum of squared one-step errors after the burn-in, each (combos, series),
        and the burn-in. Every combination runs independently of the others, so runs can be split and joined.
    """
    import numpy as np

    s, w = r.shape
    alpha = np.array([c[0] for c in combos])[:, None]
    beta = np.array([c[1] for c in combos])[:, None]
    phi = np.array([c[2] for c in combos])[:, None]
    head = r[:, : min(w, 4)].mean(axis=1)
    level = np.broadcast_to(head, (len(combos), s)).copy()
    slope = np.zeros((len(combos), s))
    sse = np.zeros((len(combos), s))
    burn = min(w - 1, max(3, w // 10))
    ab = alpha * beta
    for t in range(1, w):
        pred = level + phi * slope
        err = r[:, t][None, :] - pred
        if t >= burn:
            sse += err * err
        level = pred + alpha * err
        slope = phi * slope + ab * err
    return level, slope, sse, burn


def _ets_fit(r: np.ndarray, horizon: int, trend: bool = True, memo_key: tuple[Any, ...] | None = None,
             train: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AutoETS-style on a non-seasonal remainder: SES and damped Holt over a parameter grid, best by AIC per row.

    ``memo_key`` (with the kernel's ``train``) names the remainder in the memo: the SES runs and the
    damped-trend runs are each computed once per remainder and shared by the kernels that need them.

    :returns: the point paths (series, horizon), and the best SES alpha and final SES level per row (Theta uses them).
    """
    import numpy as np

    s, w = r.shape
    ses_combos = [(a, 0.0, 0.0) for a in ALPHAS]
    trend_combos = [(a, b, p) for a in ALPHAS for b in BETAS for p in PHIS] if trend else []
    combos = ses_combos + trend_combos
    if memo_key is None or train is None:
        level, slope, sse, burn = _ets_runs(r, combos)
    else:
        parts = [_MEMO.get(train, ("ets", *memo_key, "ses"), lambda: _ets_runs(r, ses_combos))]
        if trend:
            parts.append(_MEMO.get(train, ("ets", *memo_key, "trend"), lambda: _ets_runs(r, trend_combos)))
        level, slope, sse = (np.concatenate([part[i] for part in parts]) for i in range(3))
        burn = parts[0][3]
    phi = np.array([c[2] for c in combos])[:, None]
    beta = np.array([c[1] for c in combos])[:, None]
    n_eff = max(w - burn, 1)
    k = np.where(beta[:, 0] > 0, 5, 2)[:, None]
    aic = n_eff * np.log(np.maximum(sse / n_eff, 1e-300)) + 2 * k
    best = np.argmin(aic, axis=0)
    rows = np.arange(s)
    steps = np.arange(1, horizon + 1)
    damp = np.cumsum(phi[best, 0][:, None] ** steps[None, :], axis=1)  # sum_{i=1..h} phi^i
    path = level[best, rows][:, None] + slope[best, rows][:, None] * damp
    ses = np.argmin(sse[: len(ALPHAS)], axis=0)
    return path, np.asarray(ALPHAS)[ses], level[ses, rows]


def _recent(x: np.ndarray, grid: Grid) -> np.ndarray:
    return x[:, -max(ETS_WINDOW_DAYS * grid.per_day, 64):]


def _ets(train: np.ndarray, grid: Grid, horizon: int) -> np.ndarray:
    rem, season = _profiles(train, grid.periods[:1], horizon)
    path, _, _ = _ets_fit(_recent(rem, grid), horizon, memo_key=(tuple(grid.periods[:1]), horizon), train=train)
    return path + season


def _mstl(train: np.ndarray, grid: Grid, horizon: int) -> np.ndarray:
    import numpy as np

    if len(grid.periods) < 2:
        return np.full((train.shape[0], horizon), np.nan)  # one season: the same as ets
    rem, season = _profiles(train, grid.periods, horizon)
    path, _, _ = _ets_fit(_recent(rem, grid), horizon, memo_key=(tuple(grid.periods), horizon), train=train)
    return path + season


def _theta(train: np.ndarray, grid: Grid, horizon: int) -> np.ndarray:
    """Theta method (Hyndman and Billah's form): SES plus half the linear slope, ``b/2 * (h - 1 + (1 - (1 - a)^n) / a)``."""
    import numpy as np

    rem, season = _profiles(train, grid.periods, horizon)
    r = _recent(rem, grid)
    _, alpha, level = _ets_fit(r, horizon, trend=False, memo_key=(tuple(grid.periods), horizon), train=train)
    w = r.shape[1]
    t = np.arange(w) - (w - 1) / 2.0
    slope = (r @ t) / float(t @ t)
    steps = np.arange(horizon)[None, :]
    drift = 0.5 * slope[:, None] * (steps + ((1.0 - (1.0 - alpha) ** w) / alpha)[:, None])
    return level[:, None] + drift + season


def _arima(train: np.ndarray, grid: Grid, horizon: int, max_p: int = 3) -> np.ndarray:
    """AR(p) with a constant on the seasonally adjusted series (ARIMA(p,0,0)), p by AIC; one batched least-squares solve."""
    import numpy as np

    rem, season = _profiles(train, grid.periods, horizon)
    r = _recent(rem, grid)
    s, w = r.shape
    best_aic = np.full(s, np.inf)
    best_coef = np.zeros((s, max_p + 1))
    best_p = np.ones(s, dtype=int)
    for p in range(1, max_p + 1):
        if w < 4 * (p + 1):
            break
        lags = np.stack([r[:, p - i - 1 : w - i - 1] for i in range(p)], axis=2)  # (s, w - p, p): x_{t-1}..x_{t-p}
        X = np.concatenate([np.ones((s, w - p, 1)), lags], axis=2)
        target = r[:, p:]
        xtx = np.einsum("sti,stj->sij", X, X) + 1e-9 * np.eye(p + 1)
        coef = np.linalg.solve(xtx, np.einsum("sti,st->si", X, target)[..., None])[..., 0]
        resid = target - np.einsum("sti,si->st", X, coef)
        aic = (w - p) * np.log(np.maximum(np.mean(resid**2, axis=1), 1e-300)) + 2 * (p + 1)
        better = aic < best_aic
        best_aic[better], best_p[better] = aic[better], p
        best_coef[better] = 0.0
        best_coef[better, : p + 1] = coef[better]
    hist = list(r[:, -max_p:].T)  # newest last
    out = np.empty((s, horizon))
    for h in range(horizon):
        value = best_coef[:, 0].copy()
        for i in range(1, max_p + 1):
            value += best_coef[:, i] * hist[-i]
        out[:, h] = value
        hist.append(value)
    lo, hi = r.min(axis=1), r.max(axis=1)
    span = hi - lo
    out = np.clip(out, (lo - span)[:, None], (hi + span)[:, None])  # an explosive fit stays within the data's range
    return out + season


KERNELS: dict[str, Callable[[np.ndarray, Grid, int], np.ndarray]] = {
    "seasonal_naive": _seasonal_naive,
    "seasonal_naive_weekly": lambda train, grid, h: _seasonal_naive(train, grid, h, days=7),
    "fourier_trend": _fourier,
    "ets": _ets,
    "theta": _theta,
    "mstl": _mstl,
    "arima": _arima,
}


def _per_series(name: str, train: np.ndarray, grid: Grid, horizon: int) -> np.ndarray:
    """A registry model that cannot batch, row by row; a row it cannot fit is NaN."""
    import warnings

    import numpy as np
    import pandas as pd

    from include.headroom.forecasting.models import get_model

    start = grid.start if grid.start is not None else pd.Timestamp("2026-01-01", tz="UTC")
    ds = pd.date_range(start, periods=train.shape[1], freq=grid.step)
    out = np.full((train.shape[0], horizon), np.nan)
    for i, row in enumerate(train):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[i] = get_model(name, grid.per_day).fit(pd.DataFrame({"ds": ds, "y": row})).forecast(horizon)["yhat"].to_numpy(float)
        except (ForecastError, ValueError, np.linalg.LinAlgError):
            continue
    return out


def predict(name: str, train: np.ndarray, grid: Grid, horizon: int) -> np.ndarray:
    """Point paths of candidate ``name`` for every row of ``train``; NaN rows where it cannot forecast."""
    import numpy as np

    kernel = KERNELS.get(name)
    with np.errstate(all="ignore"):
        out = kernel(train, grid, horizon) if kernel is not None else _per_series(name, train, grid, horizon)
    out = np.asarray(out, dtype=float)
    out[~np.isfinite(out).all(axis=1)] = np.nan
    return out


# -- the engine --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowResult:
    """What ``auto`` did for one series."""

    model: str  # the chosen candidate, or "ensemble(a+b+c)"
    members: tuple[str, ...]
    weights: tuple[float, ...]
    periods: tuple[int, ...]
    breaks: tuple[int, ...]
    outliers: int
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # candidate (and "auto") -> metric -> value
    trend_breaks: tuple[int, ...] = ()  # steps where the slope changed (the history before was tilted onto the new slope)

    @property
    def chosen_scores(self) -> dict[str, float]:
        return self.scores["auto"]


@dataclass(frozen=True)
class EngineResult:
    """Per row: how it was forecast, and the forecast arrays (series, horizon)."""

    rows: list[RowResult]
    yhat: np.ndarray
    yhat_lower: np.ndarray
    yhat_upper: np.ndarray


def _scores(y: np.ndarray, yhat: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """Per row: MAE, MAPE, sMAPE, MASE (scale per row) of one origin."""
    import numpy as np

    err = np.abs(y - yhat)
    mae = err.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ape = np.where(y != 0, err / np.abs(y), np.nan)
        denom = np.abs(y) + np.abs(yhat)
        sape = np.where(denom != 0, 2.0 * err / denom, 0.0)
        valid = np.isfinite(ape)
        mape = np.where(valid.any(axis=1), np.where(valid, ape, 0.0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1), np.nan)
    return {"mae": mae, "mape": mape, "smape": sape.mean(axis=1), "mase": mae / scale}


def _naive_scale(train: np.ndarray, per_day: int) -> np.ndarray:
    """In-sample MAE of the daily seasonal naive (of the one-step naive without a daily season); never zero."""
    import numpy as np

    m = per_day if per_day >= 2 and train.shape[1] > per_day else 1
    scale = np.mean(np.abs(train[:, m:] - train[:, :-m]), axis=1) if train.shape[1] > m else np.zeros(train.shape[0])
    floor = 1e-9 * (np.mean(np.abs(train), axis=1) + 1.0)
    return np.maximum(scale, floor)


def conformal_width(abs_err: np.ndarray, alpha: float, horizon: int, window: int | None = None) -> np.ndarray:
    """Half-widths (series, horizon) from absolute backtest errors ``(origins, series, steps)``.

    Step ``h`` pools the errors of every origin at steps ``h - window .. h + window``; the
    half-width is their finite-sample ``1 - alpha`` quantile (``ceil((N + 1)(1 - alpha)) / N``),
    so it follows the season of the errors (wider at a busy hour); past the backtest horizon
    the last step's width grows with ``sqrt(h / steps)``.
    """
    import numpy as np

    o, s, hb = abs_err.shape
    window = max(1, hb // 12) if window is None else window
    padded = np.pad(abs_err, ((0, 0), (0, 0), (window, window)), constant_values=np.nan)
    pooled = np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1, axis=2)  # (o, s, hb, 2w+1)
    pooled = np.moveaxis(pooled, 0, 2).reshape(s, hb, -1)  # (s, hb, o * (2w+1))
    count = np.isfinite(pooled).sum(axis=2)
    level = np.clip(np.ceil((count + 1) * (1 - alpha)) / np.maximum(count, 1), 0.0, 1.0)
    ordered = np.sort(np.where(np.isfinite(pooled), pooled, np.inf), axis=2)
    idx = np.clip(np.ceil(level * count).astype(int) - 1, 0, pooled.shape[2] - 1)
    width = np.take_along_axis(ordered, idx[..., None], axis=2)[..., 0]
    width = np.nan_to_num(np.where(count > 0, width, np.nan), nan=0.0)
    if horizon <= hb:
        return width[:, :horizon]
    grow = np.sqrt(np.arange(hb + 1, horizon + 1) / hb)[None, :]
    return np.concatenate([width, width[:, -1:] * grow], axis=1)


def run_engine(values: np.ndarray, step: pd.Timedelta, horizon: int, spec: EngineSpec, alpha: float = 0.2,
               start: pd.Timestamp | None = None) -> EngineResult:
    """Forecast every row of ``values`` (series x time on one grid) ``horizon`` steps ahead with ``auto``.

    :raises ForecastError: for missing values, or a history too short for one backtest origin.
    """
    import numpy as np
    import pandas as pd

    from include.headroom.forecasting.preprocess import replace_outliers_many

    if not 0 < alpha < 1:
        raise ForecastError(f"alpha={alpha!r} must be in (0, 1)")
    y = np.array(np.atleast_2d(values), dtype=float)
    if not np.isfinite(y).all():
        rows = np.flatnonzero(~np.isfinite(y).all(axis=1))
        raise ForecastError(f"series {rows[:5].tolist()} have missing or infinite values; fill them first")
    n_series, n = y.shape
    per_day = max(1, int(round(pd.Timedelta(days=1) / step)))
    lengths = spec.origin_lengths(n)
    breaks: list[tuple[int, ...]] = []
    season = 7 * per_day if n >= 3 * 7 * per_day else per_day
    if spec.outlier_z > 0:
        y, outliers = replace_outliers_many(y, max(season, 1), spec.outlier_z)
    else:
        outliers = np.zeros(n_series, dtype=int)
    # Breaks first (on daily blocks): level shifts, then changes of slope; then the seasons of what is left.
    first = detect_periods_many(y, per_day, weekly=False)
    kinks: dict[int, tuple[np.ndarray, tuple[int, ...], float]] = {}  # rows whose slope changed: tilted copy, kinks, current slope
    for i in range(n_series):
        block = first[i][0] if first[i] else max(per_day, n // 20, 1)
        y[i], cut = adjust_level_shifts(y[i], block, spec.break_z, periods=first[i])
        breaks.append(tuple(cut))
    for profile in sorted(set(first)):  # trend breaks: one matrix pass per seasonality finds the rows, which are then tilted
        idx = np.flatnonzero([p == profile for p in first])
        block = profile[0] if profile else max(per_day, n // 20, 1)
        for i in idx[trend_break_rows(y[idx], block, spec.trend_z, profile, per_day)]:
            tilted, bends, slope = adjust_trend_breaks(y[i], block, spec.trend_z, periods=profile, per_day=per_day)
            if bends:
                kinks[int(i)] = (tilted, tuple(bends), slope)
    periods = detect_periods_many(y, per_day)
    yhat, lower, upper = (np.empty((n_series, horizon)) for _ in range(3))
    rows: list[RowResult | None] = [None] * n_series
    for profile in sorted(set(periods)):
        idx = np.flatnonzero([p == profile for p in periods])
        grid = Grid(step=step, per_day=per_day, periods=profile, start=start)
        out = _forecast_group(y[idx], grid, horizon, spec, alpha, lengths)
        used: dict[int, tuple[int, ...]] = {}
        bent = [j for j, i in enumerate(idx) if i in kinks]
        if bent:
            # A series whose slope changed is also forecast from its current slope (the history tilted onto it, the
            # line carried on); that forecast is kept where its backtests, scored on the series itself, are better.
            alt = _forecast_group(np.vstack([kinks[idx[j]][0] for j in bent]), grid, horizon, spec, alpha, lengths,
                                  drift=np.array([kinks[idx[j]][2] for j in bent]), truth=y[idx[bent]],
                                  since=np.array([kinks[idx[j]][1][-1] for j in bent]))
            for a, j in enumerate(bent):
                if alt["scores"][a]["auto"]["mase"] < out["scores"][j]["auto"]["mase"]:
                    for key in ("yhat", "lower", "upper"):
                        out[key][j] = alt[key][a]
                    for key in ("members", "weights", "model", "scores"):
                        out[key][j] = alt[key][a]
                    used[j] = kinks[idx[j]][1]
        yhat[idx], lower[idx], upper[idx] = out["yhat"], out["lower"], out["upper"]
        for j, i in enumerate(idx):
            rows[i] = RowResult(model=out["model"][j], members=out["members"][j], weights=out["weights"][j], periods=profile,
                                breaks=breaks[i], outliers=int(outliers[i]), scores=out["scores"][j], trend_breaks=used.get(j, ()))
    nonneg = (np.asarray(values, dtype=float) >= 0).all(axis=1)[:, None]
    yhat, lower = np.where(nonneg, np.maximum(yhat, 0.0), yhat), np.where(nonneg, np.maximum(lower, 0.0), lower)
    return EngineResult(rows=[r for r in rows if r is not None], yhat=yhat, yhat_lower=lower, yhat_upper=upper)


def _forecast_group(y: np.ndarray, grid: Grid, horizon: int, spec: EngineSpec, alpha: float, lengths: list[int],
                    drift: np.ndarray | None = None, truth: np.ndarray | None = None, since: np.ndarray | None = None) -> dict[str, Any]:
    """Backtest, choose, combine and forecast the rows of ``y`` (one seasonality).

    ``drift`` (per row, per step) is a known current slope: the candidates fit and forecast the
    rows with that line taken out (anchored at the last point), and it is put back on every path.
    ``truth`` (default ``y``) is what the backtests are scored against and scaled by, so two
    treatments of the same series (``y`` its tilted copy) are compared on the series itself.
    ``since`` (per row, a step) is where the tilt was found: an origin that trains on less has not
    seen it, and its backtest forecasts ``truth`` as it is.
    """
    import warnings

    import numpy as np

    names = [BASELINE, *[c for c in spec.candidates if c != BASELINE]]
    s, n = y.shape
    hb = spec.horizon
    drift = np.zeros(s) if drift is None else np.asarray(drift, dtype=float)
    tilted = bool(np.any(drift != 0))
    line = drift[:, None] * (np.arange(n + horizon) - (n - 1))[None, :]  # zero at the last point
    flat = y - line[:, :n] if tilted else y
    # paths[name]: (origins, s, hb); scores per origin
    paths = {name: np.empty((len(lengths), s, hb)) for name in names}
    actual = np.empty((len(lengths), s, hb))
    scale = np.empty((len(lengths), s))
    truth = y if truth is None else truth
    for o, n_train in enumerate(lengths):
        train = flat[:, :n_train]
        actual[o] = truth[:, n_train : n_train + hb]
        scale[o] = _naive_scale(truth[:, :n_train], grid.per_day)
        _MEMO.use(train)  # the candidates share this matrix's decomposition and smoothing runs
        for name in names:
            paths[name][o] = predict(name, train, grid, hb)
            if tilted:
                paths[name][o] += line[:, n_train : n_train + hb]
        unseen = np.zeros(s, dtype=bool) if since is None else n_train < np.asarray(since)
        if unseen.any():  # the origin is before the tilt was found: these rows forecast the series as it is
            _MEMO.use(None)
            for name in names:
                paths[name][o][unseen] = predict(name, truth[unseen, :n_train], grid, hb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mase = {name: np.mean(np.abs(paths[name] - actual).mean(axis=2) / scale, axis=0) for name in names}  # NaN if any origin failed
        recent = {name: np.abs(paths[name][-1] - actual[-1]).mean(axis=1) for name in names}
    ranked = np.vstack([np.where(np.isfinite(mase[n]), mase[n], np.inf) for n in names])  # (candidates, s)
    guard = np.vstack([recent[n] > spec.guard_ratio * recent[BASELINE] + 1e-12 for n in names])
    ranked[guard] = np.inf
    ranked[0] = np.where(np.isfinite(mase[BASELINE]), mase[BASELINE], 0.0)  # the baseline is never guarded out
    if not spec.select:  # the first candidate alone
        first = names.index(spec.candidates[0])
        ranked = np.full_like(ranked, np.inf)
        ranked[first] = np.where(np.isfinite(mase[names[first]]), mase[names[first]], np.inf)
    order = np.argsort(ranked, axis=0, kind="stable")[: spec.top_k]  # (k, s)
    members, weights = [], []
    combo_bt = np.empty((len(lengths), s, hb))
    for j in range(s):
        best = ranked[order[0, j], j]
        chosen = [int(c) for c in order[:, j] if np.isfinite(ranked[c, j]) and ranked[c, j] <= spec.combine_within * best + 1e-12]
        if not chosen:  # the one candidate asked for cannot forecast this series: seasonal naive stands in
            chosen = [0]
        w = np.array([1.0 / max(ranked[c, j], 1e-9) for c in chosen])
        w = w / w.sum() if w.sum() > 0 else np.full(len(chosen), 1.0 / len(chosen))
        combo_bt[:, j] = _combine(np.stack([paths[names[c]][:, j] for c in chosen]), w, spec.combine)
        combo_mase = np.mean(np.abs(combo_bt[:, j] - actual[:, j]).mean(axis=1) / scale[:, j])
        if spec.select and len(chosen) > 1 and not combo_mase < ranked[0, j]:
            chosen, w = [0], np.array([1.0])  # the combination is no better than seasonal naive: use it
            combo_bt[:, j] = paths[BASELINE][:, j]
        members.append(tuple(names[c] for c in chosen))
        weights.append(tuple(round(float(v), 4) for v in w))
    abs_err = np.abs(combo_bt - actual)
    width = conformal_width(abs_err, alpha, horizon)
    # Honest coverage: each origin's errors against the interval built without it.
    covered = []
    for o in range(len(lengths)):
        if len(lengths) < 2:
            break
        rest = np.delete(abs_err, o, axis=0)
        covered.append((abs_err[o] <= conformal_width(rest, alpha, hb)).mean(axis=1))
    loo_coverage = np.mean(covered, axis=0) if covered else np.full(s, np.nan)
    # Final forecasts on the whole history: each needed candidate once for all rows that use it.
    final = {}
    _MEMO.use(flat)
    for name in {m for ms in members for m in ms}:
        final[name] = predict(name, flat, grid, horizon)
    yhat = np.empty((s, horizon))
    for j in range(s):
        stack = np.stack([final[m][j] for m in members[j]])
        if not np.isfinite(stack).all():  # a member that fits the backtests but not the full history: the baseline alone
            stack, weights[j], members[j] = predict(BASELINE, flat[j : j + 1], grid, horizon), (1.0,), (BASELINE,)
        yhat[j] = _combine(stack, np.asarray(weights[j]), spec.combine)
    if tilted:
        yhat += line[:, n:]
    _MEMO.use(None)  # let the matrices go
    scores: list[dict[str, dict[str, float]]] = []
    per_name = {name: _mean_scores(actual, paths[name], scale) for name in names}
    auto = _mean_scores(actual, combo_bt, scale)
    for j in range(s):
        row = {name: {k: _clean(v[j]) for k, v in per_name[name].items()} for name in names}
        row["auto"] = {k: _clean(v[j]) for k, v in auto.items()} | {"coverage": _clean(loo_coverage[j]), "origins": float(len(lengths))}
        scores.append(row)
    model = [m[0] if len(m) == 1 else f"ensemble({'+'.join(m)})" for m in members]
    return {"yhat": yhat, "lower": yhat - width, "upper": yhat + width, "members": members, "weights": weights, "model": model,
            "scores": scores}


def _clean(v: Any) -> float:
    v = float(v)
    return v if math.isfinite(v) else float("nan")


def _mean_scores(actual: np.ndarray, path: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    import warnings

    import numpy as np

    per_origin = [_scores(actual[o], path[o], scale[o]) for o in range(actual.shape[0])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {k: np.mean(np.vstack([p[k] for p in per_origin]), axis=0) for k in ("mae", "mape", "smape", "mase")}


def _combine(stack: np.ndarray, weights: np.ndarray, how: str) -> np.ndarray:
    """Combine member paths ``(members, ...)``: weighted mean, or the median."""
    import numpy as np

    if len(stack) == 1:
        return stack[0]
    if how == "median":
        return np.median(stack, axis=0)
    return np.tensordot(weights, stack, axes=1)
