"""HRV features: spectra of modulated RR series, hand-checked statistics, ectopic beats."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.features import compute_features, feature_names
from models.features.hrv import beat_codes

from . import _synth as synth

NAMES = feature_names("cardio")


def _col(rows, name):
    return rows[:, NAMES.index(name)].astype(float)


def _modulated(freq_hz, amp_s=0.05, mean_s=1.0, duration_s=900.0):
    t = [0.0]
    while t[-1] < duration_s:
        t.append(t[-1] + mean_s + amp_s * math.sin(2 * math.pi * freq_hz * t[-1]))
    t = np.array(t[1:])
    return t, np.diff(np.concatenate([[0.0], t]))


@pytest.mark.parametrize(("freq", "band"), [(0.1, "lf"), (0.06, "lf"), (0.25, "hf"), (0.33, "hf")])
def test_spectral_peak_lands_in_its_band(freq, band):
    t, rr = _modulated(freq)
    rows = compute_features("cardio", synth.START, 30, rr=(t, rr, None))[15:]
    lf, hf = np.expm1(_col(rows, "rr_lf_300s")), np.expm1(_col(rows, "rr_hf_300s"))
    inside, outside = (lf, hf) if band == "lf" else (hf, lf)
    # a sine of amplitude 50 ms carries 50^2 / 2 = 1250 ms^2; linear interpolation between
    # beats 1 s apart passes a fraction sinc(f * 1 s)^4 of it
    np.testing.assert_allclose(inside, 1250.0 * np.sinc(freq * 1.0) ** 4, rtol=0.1)
    assert np.all(outside < 0.05 * inside)
    sign = 1 if band == "lf" else -1
    assert np.all(sign * _col(rows, "rr_lfhf_300s") > 2.0)


def test_time_domain_on_an_alternating_series():
    rr = np.tile([0.8, 0.9], 300)
    t = np.cumsum(rr)
    rows = compute_features("cardio", synth.START, 12, rr=(t, rr, None))
    last = rows[-1]
    for w in ("60s", "150s", "300s"):
        assert last[NAMES.index(f"rr_rmssd_{w}")] == pytest.approx(math.log1p(100.0), rel=1e-5)
        assert last[NAMES.index(f"rr_pnn50_{w}")] == 1.0
    n = np.sum((t >= 60.0) & (t < 360.0))
    sub = rr[(t >= 60.0) & (t < 360.0)]
    assert n == sub.size
    assert last[NAMES.index("rr_sdnn_300s")] == pytest.approx(
        math.log1p(1000 * np.std(sub, ddof=1)), rel=1e-5)
    assert last[NAMES.index("rr_cov_300s")] == pytest.approx(1.0, abs=0.01)
    # night: half the beats at 75 bpm, half at 66.7 (bin 67): median at the 67 bin's upper
    # edge, quartiles at the bin centres 67 and 75
    assert last[NAMES.index("rr_hr_300s")] == pytest.approx(
        (60 / np.mean(sub) - 67.5) / (8 / 1.349), abs=0.01)


def test_ectopic_beat_is_excluded_with_its_neighbour():
    rr = np.full(400, 1.0)
    rr[200] = 0.9  # a premature beat only 10 % early: the 20 % rule alone would keep it
    rr[201] = 1.1
    t = np.cumsum(rr)
    labelled = np.full(400, "N")
    labelled[200] = "V"
    win = compute_features("cardio", synth.START, 8, rr=(t, rr, labelled))[-1]
    unlabelled = compute_features("cardio", synth.START, 8, rr=(t, rr, None))[-1]
    for w in ("60s", "150s"):
        assert win[NAMES.index(f"rr_sdnn_{w}")] == 0.0
        assert win[NAMES.index(f"rr_rmssd_{w}")] == 0.0
        assert unlabelled[NAMES.index(f"rr_sdnn_{w}")] > 2.0  # log1p(>= 18 ms)
    assert win[NAMES.index("rr_cov_150s")] < unlabelled[NAMES.index("rr_cov_150s")]


def test_outliers_and_gaps_lower_coverage():
    rng = np.random.default_rng(4)
    t, rr, types = synth.rr(rng, 1800.0, ectopic_rate=0.0, gaps=((600.0, 1000.0),))
    rows = compute_features("cardio", synth.START, 60, rr=(t, rr, types))
    cov = _col(rows, "rr_cov_300s")
    assert cov[15] > 0.95 and cov[32] == 0.0
    np.testing.assert_array_equal(rows[32, :18], 0.0)  # 5 min with no beat: neutral


def test_beat_codes():
    np.testing.assert_array_equal(beat_codes(["N", "L", "V", "S", "F", "Q", "A", "?"], 8),
                                  [0, 0, 2, 1, 3, 4, 1, 4])
    np.testing.assert_array_equal(beat_codes(np.array([0, 2]), 2), [0, 2])
    np.testing.assert_array_equal(beat_codes(None, 3), [0, 0, 0])
    with pytest.raises(ValueError, match="0..255"):
        beat_codes([-1], 1)
    with pytest.raises(TypeError, match="str symbols or int codes"):
        beat_codes([1.5], 1)


@pytest.mark.parametrize("freq", [0.2, 0.25, 0.3])
def test_breathing_rate_is_the_hf_peak(freq):
    t, rr = _modulated(freq)
    rows = compute_features("cardio", synth.START, 30, rr=(t, rr, None))[15:]
    # bins are 1/300 Hz apart; RSA at a steady rate is one narrow line
    np.testing.assert_allclose(_col(rows, "rr_hfpeak_300s"), freq, atol=1 / 300)
    assert np.all(_col(rows, "rr_hfent_300s") < 0.3)
    assert np.all(_col(rows, "rr_hfnu_300s") > -0.1)


def test_irregular_breathing_spreads_hf_and_apnea_cycles_show_in_vlf():
    rng = np.random.default_rng(3)
    rr = 1.0 + 0.03 * rng.standard_normal(900)
    rows = compute_features("cardio", synth.START, 30, rr=(np.cumsum(rr), rr, None))[15:]
    assert np.all(_col(rows, "rr_hfent_300s") > 0.8)
    t, rr = _modulated(0.025)  # a 40-s apnea-arousal cycle
    rows = compute_features("cardio", synth.START, 30, rr=(t, rr, None))[15:]
    assert np.all(_col(rows, "rr_vlf_300s") > math.log1p(500.0))
    assert np.all(_col(rows, "rr_hfnu_300s") < -5.0)


def test_slow_heart_rate_features_follow_epoch_means():
    # 30-s epochs alternating between 60 and 66.7 bpm (1 s and 0.9 s beats), then steady
    t, rr = [], []
    clock = 0.0
    for epoch in range(60):
        step = 1.0 if epoch % 2 == 0 or epoch >= 40 else 0.9
        while clock + step < 30.0 * (epoch + 1):
            clock += step
            t.append(clock)
            rr.append(step)
    t, rr = np.array(t), np.array(rr)
    rows = compute_features("cardio", synth.START, 60, rr=(t, rr, None))
    std, diff = _col(rows, "rr_ephrstd_300s"), _col(rows, "rr_ephrdiff_300s")
    # alternating means: every change is twice the spread (scale cancels)
    np.testing.assert_allclose(diff[12:40], 2 * std[12:40], rtol=0.02)
    assert np.all(std[12:40] > 0.3)
    np.testing.assert_array_equal(std[51:], 0.0)  # ten steady epochs: no spread
    np.testing.assert_array_equal(diff[51:], 0.0)
    long = _col(rows, "rr_hrstd_3600s")
    assert long[59] > 0.0 and _col(rows, "rr_hrstd_300s")[59] == 0.0
