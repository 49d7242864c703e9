"""The anti-alias resampler: its design, timing, and what it does to the band powers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from models.features import _eeg_kernels as ek
from models.features import eeg_resample as rs
from models.features.eeg import eeg_measures
from tests.models.features._eeg_synth import multisine, noise_components

RATES = [128.0, 200.0, 250.0, 256.0, 500.0, 512.0, 173.61, 1000 / 3]
RIPPLE = 10 ** (-rs.RESAMPLE_ATTEN_DB / 20)  # amplitude ripple of the Kaiser design


def test_design_is_scipys_kaiser_firwin():
    fs = 25 * 256.0
    h = rs.kaiser_lowpass(fs, 47.0, 50.0, 70.0)
    n, beta = scipy.signal.kaiserord(70.0, 3.0 / (fs / 2))
    ref = scipy.signal.firwin(n | 1, 48.5, window=("kaiser", beta), fs=fs)
    np.testing.assert_allclose(h, ref, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="pass=50.0 Hz, stop=47.0 Hz"):
        rs.kaiser_lowpass(fs, 50.0, 47.0, 70.0)


@pytest.mark.parametrize(("fs", "up", "down", "n_taps"), [
    (256.0, 25, 64, 369), (250.0, 2, 5, 362), (128.0, 25, 32, 185), (512.0, 25, 128, 738),
    (1000 / 3, 3, 10, 481), (173.61, 10000, 17361, 251),
])
def test_ratio_taps_and_delay(fs, up, down, n_taps):
    filt = rs.resample_filter(fs)
    assert filt is not None
    assert (filt.up, filt.down, filt.n_taps) == (up, down, n_taps)
    assert filt.delay_s == pytest.approx(0.72, abs=0.01)  # about 1.44 s of taps, centred
    np.testing.assert_allclose(filt.taps.sum(axis=1), 1.0, rtol=1e-14)
    assert rs.resample_filter(100.0) is None


def test_a_ratio_needing_too_many_branches_is_approximated_with_a_warning():
    with pytest.warns(UserWarning, match=r"100\.0003 Hz is resampled as 100 Hz.*drifts 0\.011 s"):
        assert rs.resample_ratio(100.0003) == (1, 1)
    assert rs.resample_ratio(123.456789) == (81, 100)  # 9e-9 off: silently


def resampled(x: np.ndarray, fs: float) -> np.ndarray:
    """The 100-Hz signal the resampler makes of ``x`` (one run, closed)."""
    filt = rs.resample_filter(fs)
    assert filt is not None
    ist, fst, hist = np.zeros(2, dtype=np.int64), np.zeros(2), np.zeros(filt.n_taps)
    out = np.empty(filt.max_outputs(x.size, 0))
    n = ek.resample_step(x, True, ist, fst, hist, filt.taps, filt.up, filt.down, filt.centre,
                         out)
    return out[:n]


@pytest.mark.parametrize("fs", RATES)
def test_tones_pass_in_time_or_are_stopped(fs):
    t_in = np.arange(round(20 * fs)) / fs
    t_out = np.arange(2000) / 100.0
    inner = slice(100, 1900)  # away from the held edges
    for f0 in (0.7, 10.0, 33.0, 46.0):
        y = resampled(np.cos(2 * np.pi * f0 * t_in + 0.4), fs)
        np.testing.assert_allclose(y[inner], np.cos(2 * np.pi * f0 * t_out + 0.4)[inner],
                                   rtol=0, atol=1.5 * RIPPLE)
    for f0 in (50.0, 60.0, fs / 2 - 1.0):
        y = resampled(np.cos(2 * np.pi * f0 * t_in), fs)
        assert np.abs(y[inner]).max() < 1.5 * RIPPLE


def band_ratios(fs: float, slope: float, f_max: float = 49.9) -> np.ndarray:
    """Band measures of generated noise resampled from ``fs`` over those sampled at 100 Hz.

    The noise (cosines every 0.1 Hz up to ``f_max``) is exact at any rate; the run starts
    5 s before epoch 0 and ends 5 s after epoch 1, so both epochs are clear of the edges.
    """
    f, a, p = noise_components(1, slope, 20.0, f_max_hz=f_max, step_hz=0.1)
    below = f < 50.0
    got = eeg_measures(multisine(-5 + np.arange(round(70 * fs)) / fs, f, a, p), fs, t0_s=-5.0)
    ref = eeg_measures(multisine(np.arange(6000) / 100.0, f[below], a[below], p[below]), 100.0)
    return got.measures[1:3, :5] / ref.measures[:, :5]


@pytest.mark.parametrize("fs", RATES)
def test_band_powers_of_white_noise(fs):
    r = band_ratios(fs, 0.0)
    np.testing.assert_allclose(r[:, :4], 1.0, atol=1e-4)  # delta to beta: pass band
    assert ((r[:, 4] > 0.91) & (r[:, 4] < 0.92)).all()  # gamma loses 47-50 Hz


@pytest.mark.parametrize("fs", [256.0, 500.0])
def test_band_powers_of_coloured_noise(fs):
    pink, brown = band_ratios(fs, 1.0), band_ratios(fs, 2.0)
    np.testing.assert_allclose(pink[:, :4], 1.0, atol=1e-4)
    assert ((pink[:, 4] > 0.925) & (pink[:, 4] < 0.94)).all()
    assert ((brown[:, 4] > 0.94) & (brown[:, 4] < 0.955)).all()


@pytest.mark.parametrize("fs", [256.0, 512.0])
def test_nothing_above_50_hz_folds_into_the_bands(fs):
    f_max = fs / 2 - 0.5
    f, a, p = noise_components(2, 0.0, 20.0, f_max_hz=f_max, step_hz=0.1)
    t = -5 + np.arange(round(70 * fs)) / fs
    low = f < 50.0
    full = eeg_measures(multisine(t, f, a, p), fs, t0_s=-5.0).measures[1:3]
    inband = eeg_measures(multisine(t, f[low], a[low], p[low]), fs, t0_s=-5.0).measures[1:3]
    # white noise above 50 Hz with the same density as below: its share must be ~1e-7
    np.testing.assert_allclose(full[:, :5], inband[:, :5], rtol=1e-5)
    mains = eeg_measures(200.0 * np.cos(2 * np.pi * 60.0 * (t + 5)), fs, t0_s=-5.0)
    assert (mains.measures[1:3, 5] < (200.0 * 1.5 * RIPPLE) ** 2).all()


def test_a_dc_offset_passes_without_ripple():
    fs = 256.0
    f, a, p = noise_components(3, 1.0, 20.0, step_hz=0.1)
    x = multisine(np.arange(round(90 * fs)) / fs, f, a, p)
    plain = eeg_measures(x, fs).measures[:3]
    offset = eeg_measures(x + 25_000.0, fs).measures[:3]  # 25 mV electrode offset
    np.testing.assert_allclose(offset, plain, rtol=1e-7)
