"""Event-window scoring: normalisation, position reward, false-alarm cost, the threshold sweep, the baseline and the generated cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.headroom.anomalies_eval import (PROFILES, LabelledSeries, evaluate, generated_cases, raw_score, scaled_sigmoid,
                                             windowed_gaussian)

STANDARD = PROFILES["standard"]


def _series(n: int, windows: list[tuple[int, int]]) -> LabelledSeries:
    ts = pd.date_range("2026-01-01", periods=n, freq="5min", tz="UTC")
    return LabelledSeries("s", pd.DataFrame({"timestamp": ts, "value": 1.0}), windows)


def test_scaled_sigmoid_rewards_early_detection():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.9866, abs=1e-4)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(3.0) == pytest.approx(-1.0, abs=1e-5)


def test_raw_score_counts_first_hit_false_alarms_and_misses():
    total, tp, fp, fn = raw_score(np.array([5, 10, 12, 30]), [(10, 19), (50, 59)], STANDARD)
    assert (tp, fp, fn) == (1, 2, 1)
    expected = -0.11 + scaled_sigmoid(-1.0) + 0.11 * scaled_sigmoid(11 / 9) - 1.0  # before any window: full cost
    assert total == pytest.approx(expected)
    # the low-FN profile charges a miss twice
    assert raw_score(np.array([]), [(10, 19)], PROFILES["low_fn"])[0] == -2.0


def test_never_fires_scores_zero_and_perfect_scores_one_hundred():
    series = [_series(100, [(40, 49)]), _series(100, [(70, 79)])]
    never = [np.zeros(100), np.zeros(100)]
    perfect = [np.zeros(100), np.zeros(100)]
    perfect[0][40] = perfect[1][70] = 1.0
    assert evaluate(series, never, STANDARD).score == 0.0
    result = evaluate(series, perfect, STANDARD)
    assert result.score == 100.0 and (result.true, result.false, result.missed) == (2, 0, 0)
    late = [np.zeros(100), np.zeros(100)]
    late[0][48] = late[1][78] = 1.0
    assert 55 < evaluate(series, late, STANDARD).score < 70  # found near the window end: a little better than a miss (0.27 of 0.99)


def test_the_sweep_picks_the_threshold_that_drops_noise():
    series = [_series(200, [(100, 119)])]
    scores = np.full(200, 0.3)  # noise everywhere at 0.3, the anomaly at 0.9
    scores[100] = 0.9
    result = evaluate(series, [scores], STANDARD)
    assert result.threshold > 0.3 and result.score == 100.0


def test_windowed_gaussian_flags_a_jump_and_is_causal():
    values = np.random.default_rng(0).normal(10, 1, 500)
    values[400] = 30
    scores = windowed_gaussian(values, 100)
    assert scores[400] > 0.999999 and np.median(scores[100:400]) < 0.9
    np.testing.assert_array_equal(windowed_gaussian(values[:300], 100), scores[:300])


def test_generated_cases_are_labelled_and_accepted_by_the_detector():
    from include.headroom.anomalies import score

    cases = generated_cases(seed=1, days=8)
    names = {c.name.split("/")[0] for c in cases}
    assert {"level_shift_up", "spike", "drift", "seasonality_change", "exporter_restart", "dst_autumn", "duplicates",
            "jitter", "long_gap", "constant", "step_10s", "step_1h"} <= names
    for case in cases:
        assert all(0 <= a <= b < len(case.frame) for a, b in case.windows)
        out = score(case.frame)
        assert len(out) == len(case.frame) and out["anomaly_score"].between(0, 1).all()
