"""The count algorithm on generated signals with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models.features import counts as cnt
from models.features import registry as reg

FS = 50.0
T = np.arange(0.0, 300.0, 1.0 / FS)
BIN = reg.COUNT_RANGE_G / reg.COUNT_N_BINS


def _expected(amplitude_g: float, freq_hz: float) -> float:
    gain = cnt.sos_gain(cnt.COUNT_SOS, freq_hz, FS)
    top_bin = math.floor(amplitude_g * gain / BIN) + 1
    return max(0.0, reg.COUNT_SCALE * (15 * top_bin - reg.COUNT_OFFSET))


def _steady(tc, c):
    """Counts after the filter's start-up (the first 30 s)."""
    return c[tc >= 30.0]


def test_butterworth_matches_scipy():
    signal = pytest.importorskip("scipy.signal")
    ours = cnt.butter_bandpass_sos(5, 3.0, 11.0, 50.0)
    ref = signal.butter(5, (3.0, 11.0), "bandpass", fs=50.0, output="sos")
    freqs = np.linspace(0.0, 25.0, 101)
    np.testing.assert_allclose(
        np.abs(signal.sosfreqz(ours, freqs, fs=50.0)[1]),
        np.abs(signal.sosfreqz(ref, freqs, fs=50.0)[1]), rtol=1e-9, atol=1e-12,
    )
    x = np.random.default_rng(0).normal(size=2000)
    np.testing.assert_allclose(signal.sosfilt(ours, x), signal.sosfilt(ref, x), atol=1e-12)
    # the count filter is the band-pass twice: |H|^2 as filtfilt, -6 dB at the band edges
    assert cnt.sos_gain(cnt.COUNT_SOS, 3.0, 50.0) == pytest.approx(0.5, rel=1e-9)
    assert cnt.sos_gain(cnt.COUNT_SOS, 11.0, 50.0) == pytest.approx(0.5, rel=1e-9)


@pytest.mark.parametrize(("args", "match"), [
    ((0, 3.0, 11.0, 50.0), "order"),
    ((5, 11.0, 3.0, 50.0), "band edges"),
    ((5, 3.0, 30.0, 50.0), "band edges"),
])
def test_butterworth_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        cnt.butter_bandpass_sos(*args)


def test_zero_motion_and_gravity_give_zero():
    for z in (np.zeros_like(T), np.ones_like(T), np.full_like(T, -0.7)):
        tc, c = cnt.acceleration_to_counts(T, np.column_stack([0 * T, 0 * T, z]))
        assert tc.size == 20 and np.all(c == 0.0)
        np.testing.assert_array_equal(tc, np.arange(0.0, 300.0, 15.0))


@pytest.mark.parametrize(("amp", "freq"), [(0.5, 4.3), (0.2, 7.1), (1.0, 5.9), (0.05, 6.3)])
def test_in_band_sine_gives_the_analytic_count(amp, freq):
    tc, c = cnt.acceleration_to_counts(T, 1.0 + amp * np.sin(2 * np.pi * freq * T))
    # the sampled peak of a second reaches the amplitude to within one bin
    np.testing.assert_allclose(_steady(tc, c), _expected(amp, freq), atol=15 * reg.COUNT_SCALE)
    assert abs(np.median(_steady(tc, c)) - _expected(amp, freq)) <= 15 * reg.COUNT_SCALE


@pytest.mark.parametrize("freq", [0.25, 0.5, 1.0, 2.0, 20.0, 24.0])
def test_out_of_band_sine_gives_zero(freq):
    tc, c = cnt.acceleration_to_counts(T, 1.0 + 0.5 * np.sin(2 * np.pi * freq * T))
    assert np.all(_steady(tc, c) == 0.0)


def test_counts_grow_linearly_with_amplitude():
    amps = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
    got = np.array([
        np.median(_steady(*cnt.acceleration_to_counts(T, 1.0 + a * np.sin(2 * np.pi * 5.3 * T))))
        for a in amps
    ])
    slope = 15 * reg.COUNT_SCALE * cnt.sos_gain(cnt.COUNT_SOS, 5.3, FS) / BIN  # counts per g
    np.testing.assert_allclose(got, slope * amps - 3 * reg.COUNT_SCALE, atol=15 * reg.COUNT_SCALE)
    assert np.polyfit(amps, got, 1)[0] == pytest.approx(slope, rel=0.02)


def test_saturates_instead_of_dropping_huge_motion():
    tc, c = cnt.acceleration_to_counts(T, 1.0 + 8.0 * np.sin(2 * np.pi * 5.0 * T))
    top = reg.COUNT_SCALE * (15 * reg.COUNT_N_BINS - reg.COUNT_OFFSET)
    assert np.all(_steady(tc, c) == pytest.approx(top))


def test_resampling_from_an_irregular_32_hz_stream():
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(0.8, 1.2, 32 * 300) / 32.0)
    t = t[t < 300.0]
    tc, c = cnt.acceleration_to_counts(t, 1.0 + 0.5 * np.sin(2 * np.pi * 4.3 * t))
    assert np.all(np.abs(_steady(tc, c) - _expected(0.5, 4.3)) <= 2 * 15 * reg.COUNT_SCALE)


def test_gaps_are_not_bridged():
    keep = (T < 100.0) | (T >= 140.0)  # a 40-s hole
    tc, c = cnt.acceleration_to_counts(T[keep], 1.0 + 0.5 * np.sin(2 * np.pi * 4.3 * T[keep]))
    assert not np.any((tc >= 105.0) & (tc < 135.0))  # no count epoch made up inside the hole
    assert 90.0 in tc  # 10 of 15 seconds present: still a count, scaled to 15 s
    short = (T < 100.0) | (T >= 100.5)  # 0.5 s dropout: interpolated
    tc2, _ = cnt.acceleration_to_counts(T[short], np.ones(short.sum()))
    assert tc2.size == 20


def test_streaming_state_is_chunk_invariant_and_json_exact():
    rng = np.random.default_rng(7)
    z = 1.0 + 0.3 * np.sin(2 * np.pi * 6.1 * T) * (np.sin(T / 20) > 0)
    whole = cnt.CountState()
    ref = whole.process(T, z)
    state, outs, a = cnt.CountState(), [], 0
    while a < T.size:
        b = min(T.size, a + int(rng.integers(1, 900)))
        outs.append(state.process(T[a:b], z[a:b]))
        state = cnt.CountState.from_state(json.loads(json.dumps(state.to_state())))
        a = b
    np.testing.assert_array_equal(np.concatenate([o[0] for o in outs]), ref[0])
    np.testing.assert_array_equal(np.concatenate([o[1] for o in outs]), ref[1])


def test_rejects_malformed_input():
    with pytest.raises(ValueError, match="shape"):
        cnt.acceleration_to_counts(T, np.ones((T.size, 2)))
    with pytest.raises(ValueError, match="non-decreasing"):
        cnt.acceleration_to_counts(T[::-1], np.ones(T.size))
    tc, c = cnt.acceleration_to_counts(np.empty(0), np.empty((0, 3)))
    assert tc.size == 0 and c.size == 0
