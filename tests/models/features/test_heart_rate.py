"""Heart-rate and activity features: known answers on generated signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.features import compute_features, feature_names
from models.features.activity import ActivityChannel
from models.features.heart_rate import HeartRateChannel

from . import _synth as synth

NAMES = feature_names("wearable")


def _col(rows, name):
    return rows[:, NAMES.index(name)]


def test_constant_heart_rate_is_flat_and_at_the_night_centre():
    t = np.arange(0.0, 3600.0, 5.0)
    rows = compute_features("wearable", synth.START, 120, heart_rate=(t, np.full(t.size, 60.0)))
    late = rows[20:]  # after the 10-min window has filled
    for w in ("60s", "150s", "300s", "600s"):
        for kind in ("level", "std", "sdiff", "slope"):
            np.testing.assert_array_equal(_col(late, f"hr_{kind}_{w}"), 0.0)
        np.testing.assert_array_equal(_col(late, f"hr_cov_{w}"), 1.0)
    np.testing.assert_array_equal(_col(rows, "hr_cov_epoch"), 1.0)


def test_linear_ramp_gives_its_slope():
    ch = HeartRateChannel(30.0)
    t = np.arange(0.0, 1800.0, 5.0)
    bpm = 55.0 + 0.05 * t  # 3 bpm per minute
    for e in range(60):
        sel = (t >= e * 30.0) & (t < (e + 1) * 30.0)
        row = ch.step(t[sel], bpm[sel], (e + 1) * 30.0)
    names = [n for n in NAMES if n.startswith("hr_")]
    _, scale = ch.night.centre_scale()
    for w in ("60s", "150s", "300s", "600s"):
        assert row[names.index(f"hr_slope_{w}")] * scale == pytest.approx(3.0, rel=1e-9)
        assert row[names.index(f"hr_sdiff_{w}")] * scale == pytest.approx(0.25, rel=1e-9)
    # the std of an evenly sampled ramp over w seconds: 0.05 * 5 * sqrt((n^2 - 1) / 12)
    n = 120
    assert row[names.index("hr_std_600s")] * scale == pytest.approx(
        0.25 * math.sqrt((n * n - 1) / 12), rel=1e-9)


def test_sparse_heart_rate_lowers_coverage_and_gaps_fall_back_to_neutral():
    t = np.arange(0.0, 1200.0, 10.0)
    rows = compute_features("wearable", synth.START, 80, heart_rate=(t, 60 + (t > 600) * 10.0))
    np.testing.assert_allclose(_col(rows[25:40], "hr_cov_300s"), 0.5)
    np.testing.assert_allclose(_col(rows[:40], "hr_cov_epoch"), 0.5)
    assert _col(rows, "hr_level_60s")[35] > 0  # above the night median after the step
    after = rows[61:]  # > 10 min after the last sample
    for name in NAMES:
        if name.startswith("hr_") and name.endswith(("_60s", "_150s", "_300s", "_600s", "_epoch")):
            np.testing.assert_array_equal(_col(after, name), 0.0)
    # the 30-min window still holds the last samples 10 min later and is empty 30 min later
    assert _col(rows, "hr_cov_1800s")[61] > 0
    rows = compute_features("wearable", synth.START, 130, heart_rate=(t, 60 + (t > 600) * 10.0))
    for name in NAMES:
        if name.startswith("hr_") and not name.endswith("_3600s"):
            np.testing.assert_array_equal(_col(rows[101:], name), 0.0)


def test_implausible_heart_rate_is_missing_not_extreme():
    t = np.arange(0.0, 600.0, 5.0)
    bpm = np.where(np.arange(t.size) % 2 == 0, 60.0, 400.0)  # every other sample impossible
    rows = compute_features("wearable", synth.START, 20, heart_rate=(t, bpm))
    np.testing.assert_allclose(_col(rows, "hr_cov_epoch"), 0.5)
    np.testing.assert_array_equal(_col(rows, "hr_std_300s"), 0.0)


def test_activity_windows_and_time_since_movement():
    t = np.arange(0.0, 1800.0, 15.0)
    c = np.zeros(t.size)
    c[t == 600.0] = 99.0  # one movement at 10 min
    rows = compute_features("wearable", synth.START, 60, activity_counts=(t, c))
    e = 20  # epoch [600, 630): holds the movement
    assert _col(rows, "act_log_max_epoch")[e] == pytest.approx(math.log1p(99.0))
    assert _col(rows, "act_log_mean_epoch")[e] == pytest.approx(math.log1p(49.5))
    assert _col(rows, "act_frac_active_epoch")[e] == 0.5
    assert _col(rows, "act_log_max_600s")[e + 19] == pytest.approx(math.log1p(99.0))
    assert _col(rows, "act_log_max_600s")[e + 20] == 0.0  # 10 min later it left the window
    np.testing.assert_array_equal(_col(rows, "act_cov_epoch"), 1.0)
    since = np.expm1(_col(rows, "act_log_min_since_move").astype(float))
    np.testing.assert_allclose(since[:20], (np.arange(20) + 1) * 0.5, rtol=1e-6)  # from t=0
    np.testing.assert_allclose(since[e:], (np.arange(60 - e) + 1) * 0.5, rtol=1e-6)


def test_activity_channel_without_counts_is_neutral():
    ch = ActivityChannel(30.0)
    np.testing.assert_array_equal(ch.step(np.empty(0), np.empty(0), 30.0), 0.0)


def test_acceleration_and_counts_paths_agree():
    rng = np.random.default_rng(2)
    t, acc = synth.acceleration(rng, 1800.0, fs=50.0)
    from models.features.counts import acceleration_to_counts

    tc, c = acceleration_to_counts(t, acc)
    a = compute_features("wearable", synth.START, 59, acceleration=(t, acc))
    b = compute_features("wearable", synth.START, 59, activity_counts=(tc, c))
    assert np.array_equal(a, b)
    assert _col(a, "act_frac_active_600s").max() > 0.2
