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
