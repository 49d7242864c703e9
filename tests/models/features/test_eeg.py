"""The EEG front-end: known answers, scipy parity, chunks, checkpoints, rates and gaps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.signal

from models.features import eeg_spec as spec
from models.features.eeg import EegChannel, EegEpochs, eeg_measures
from tests.models.features._eeg_synth import stage_eeg

BANDS = list(spec.EEG_BANDS_HZ.values())
DF = spec.EEG_FS_HZ / spec.WELCH_NPERSEG  # Welch bin width (Hz)


def scipy_measures(x: np.ndarray) -> np.ndarray:
    """The measures of whole 3000-sample epochs of a 100-Hz signal, by scipy and numpy."""
    ep = x[: x.size // 3000 * 3000].reshape(-1, 3000)
    f, p = scipy.signal.welch(ep, fs=100, nperseg=256)
    cols = [p[:, (f >= lo) & (f <= hi)].mean(axis=1) for lo, hi in BANDS]
    return np.column_stack([*cols, ep.var(axis=1), np.diff(ep, axis=1).var(axis=1)])


def fed_in_chunks(ch: EegChannel, x: np.ndarray, rng: np.random.Generator, t0: float = 0.0,
                  max_chunk: int = 4000) -> EegEpochs:
    parts, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, max_chunk))
        parts.append(ch.feed(t0 + i / ch.fs_hz, x[i:i + n]))
        i += n
    parts.append(ch.flush())
    return EegEpochs.concat(parts)


# -- known answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_equals_scipy_welch(seed):
    x = np.random.default_rng(seed).normal(5.0, 30.0, 3000 * 4 + 700)
    got = eeg_measures(x, 100.0)
    np.testing.assert_array_equal(got.epoch, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(got.measures[:4], scipy_measures(x), rtol=1e-12, atol=0)
    assert np.isnan(got.measures[4]).all()  # 7 s of epoch 4: incomplete


def test_sine_gives_its_analytic_band_power():
    # 25 Hz = bin 64: its Hann spectrum fills bins 63-65, all in beta; 750 whole cycles per epoch
    amp, f0 = 40.0, 64 * DF
    x = amp * np.sin(2 * np.pi * f0 * np.arange(6000) / 100.0 + 0.3)
    got = eeg_measures(x, 100.0).measures
    lo, hi = spec.EEG_BANDS_HZ["beta"]
    n_beta = np.count_nonzero((np.arange(129) * DF >= lo) & (np.arange(129) * DF <= hi))
    # density at the peak bin: (A^2 / 2) / ENBW with ENBW = 1.5 bins for a Hann window ...
    f, p = scipy.signal.welch(x[:3000], fs=100, nperseg=256)
    assert p[64] == pytest.approx(amp**2 / 2 / (1.5 * DF), rel=1e-12)
    # ... and its 3 bins together hold A^2 / 2, which the band mean spreads over its bins
    np.testing.assert_allclose(got[:, 3], amp**2 / 2 / DF / n_beta, rtol=1e-12)
    assert np.all(got[:, [0, 1, 2, 4]] < 1e-20 * got[:, [3]])
    np.testing.assert_allclose(got[:, 5], amp**2 / 2, rtol=1e-12)
    np.testing.assert_allclose(got[:, 6], 2 * amp**2 * np.sin(np.pi * f0 / 100) ** 2, rtol=2e-3)


@pytest.mark.parametrize("fs", [100.0, 256.0])
def test_wake_alpha_and_n3_delta_dominate(fs):
    wake = eeg_measures(stage_eeg("W", fs, 90.0, seed=1, t0_s=0.0), fs).measures[:3]
    n3 = eeg_measures(stage_eeg("N3", fs, 90.0, seed=2, t0_s=0.0), fs).measures[:3]
    assert np.isfinite(wake).all() and np.isfinite(n3).all()
    assert (np.argmax(wake[:, :5], axis=1) == 2).all()  # alpha
    assert (np.argmax(n3[:, :5], axis=1) == 0).all()  # delta
    assert (wake[:, 2] > 10 * n3[:, 2]).all() and (n3[:, 0] > 10 * wake[:, 0]).all()
    assert (n3[:, 5] > 3 * wake[:, 5]).all()  # slow waves are large
    assert (wake[:, 6] / wake[:, 5] > 3 * n3[:, 6] / n3[:, 5]).all()  # and slow: low mobility


# -- chunks and checkpoints -------------------------------------------------------------------


@pytest.mark.parametrize(("fs", "seed"), [(100.0, 0), (256.0, 1), (250.0, 2), (512.0, 3),
                                           (173.61, 4)])
def test_chunked_is_bit_identical_to_whole(fs, seed):
    rng = np.random.default_rng(seed)
    x = stage_eeg("W", fs, 130.0, seed=seed) + rng.normal(0, 5, round(130 * fs))
    whole = eeg_measures(x, fs, t0_s=12.34)
    assert whole.epoch.tolist() == [0, 1, 2, 3, 4]
    assert np.isnan(whole.measures[[0, 4]]).all() and np.isfinite(whole.measures[1:4]).all()
    for _ in range(3):
        part = fed_in_chunks(EegChannel("Pz-Oz", fs), x, rng, t0=12.34)
        np.testing.assert_array_equal(part.epoch, whole.epoch)
        np.testing.assert_array_equal(part.measures, whole.measures)


@pytest.mark.parametrize("fs", [100.0, 256.0])
def test_state_round_trip_continues_exactly(fs):
    rng = np.random.default_rng(5)
    x = stage_eeg("N3", fs, 100.0, seed=5)
    whole = eeg_measures(x, fs)
    ch = EegChannel("C3-M2", fs)
    # feed piece by piece, writing and reading the state as JSON between pieces
    parts, prev = [], 0
    for cut in np.sort(rng.choice(np.arange(1, x.size), 6, replace=False)).tolist() + [x.size]:
        parts.append(ch.feed(prev / fs, x[prev:cut]))
        blob = json.dumps(ch.to_state())
        ch = EegChannel.from_state(json.loads(blob))
        prev = cut
    parts.append(ch.flush())
    got = EegEpochs.concat(parts)
    np.testing.assert_array_equal(got.epoch, whole.epoch)
    np.testing.assert_array_equal(got.measures, whole.measures)
    assert len(blob) < 10_000  # compact: base64 arrays, not JSON lists of floats


def test_state_errors_name_the_field():
    state = EegChannel("Fpz-Cz", 256.0).to_state()
    with pytest.raises(ValueError, match="missing \\['acc'\\]"):
        EegChannel.from_state({k: v for k, v in state.items() if k != "acc"})
    with pytest.raises(ValueError, match="'hist' must hold 369 values; got 3"):
        EegChannel.from_state({**state, "hist": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="'Fpz-Cz': field 'acc' is not readable"):
        EegChannel.from_state({**state, "acc": "AAAA"})
    with pytest.raises(ValueError, match="expected version 1 .* got version 7"):
        EegChannel.from_state({**state, "version": 7})


# -- rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fs", [64.0, 99.9, 50])
def test_rates_below_100_hz_are_refused(fs):
    with pytest.raises(ValueError, match=f"'C3-M2' is sampled at {fs:g} Hz.*needs >= 100 Hz"):
        EegChannel("C3-M2", fs)
    with pytest.raises(ValueError, match="'EEG' is sampled at"):
        eeg_measures(np.zeros(10_000), fs)


@pytest.mark.parametrize("fs", [0.0, -256.0, float("nan"), "fast"])
def test_nonsense_rates_are_refused(fs):
    with pytest.raises(ValueError, match="'O1-M2': sampling rate must be a finite number"):
        EegChannel("O1-M2", fs)


# -- time, gaps and masking -------------------------------------------------------------------


@pytest.mark.parametrize("fs", [100.0, 256.0])
def test_a_gap_masks_its_epoch_only(fs):
    x = stage_eeg("W", fs, 150.0, seed=3)
    whole = eeg_measures(x, fs)
    a, b = round(70 * fs), round(71 * fs)  # 1 s missing inside epoch 2
    ch = EegChannel("Pz-Oz", fs)
    got = EegEpochs.concat([ch.feed(0.0, x[:a]), ch.feed(b / fs, x[b:]), ch.flush()])
    np.testing.assert_array_equal(got.epoch, whole.epoch)
    assert np.isnan(got.measures[2]).all()
    # the other epochs are those of the uninterrupted signal, bit for bit
    keep = [0, 1, 3, 4]
    np.testing.assert_array_equal(got.measures[keep], whole.measures[keep])


def test_long_gap_gives_dense_nan_rows_and_later_epochs_resume():
    x = stage_eeg("N3", 100.0, 90.0, seed=4)
    ch = EegChannel("Fpz-Cz", 100.0)
    first = ch.feed(0.0, x[:3000])  # epoch 0 complete: final at its last sample
    np.testing.assert_array_equal(first.epoch, [0])
    later = ch.feed(300.0, x)  # 270 s of silence, then epochs 10-12
    rest = ch.flush()
    got = EegEpochs.concat([first, later, rest])
    np.testing.assert_array_equal(got.epoch, np.arange(13))
    assert np.isfinite(got.measures[[0, 10, 11, 12]]).all()
    assert np.isnan(got.measures[1:10]).all()
    np.testing.assert_array_equal(got.measures[10:13], eeg_measures(x, 100.0).measures)


def test_non_finite_samples_are_missing():
    x = stage_eeg("W", 100.0, 120.0, seed=6)
    whole = eeg_measures(x, 100.0)
    y = x.copy()
    y[4500] = np.nan
    y[9100:9200] = np.inf
    got = eeg_measures(y, 100.0)
    np.testing.assert_array_equal(got.epoch, whole.epoch)
    assert np.isnan(got.measures[[1, 3]]).all()
    np.testing.assert_array_equal(got.measures[[0, 2]], whole.measures[[0, 2]])
    ch = EegChannel("Pz-Oz", 100.0)
    tail = EegEpochs.concat([ch.feed(0.0, x[:2990]), ch.feed(29.9, np.full(10, np.nan)),
                             ch.feed(30.0, x[3000:6000])])
    np.testing.assert_array_equal(tail.epoch, [0, 1])  # the NaNs end epoch 0: masked
    assert np.isnan(tail.measures[0]).all() and np.isfinite(tail.measures[1]).all()


def test_missing_samples_shorter_than_a_100_hz_step_still_mask():
    fs = 512.0
    x = stage_eeg("W", fs, 90.0, seed=7)
    a = round(45 * fs)
    ch = EegChannel("Cz", fs)
    got = EegEpochs.concat([ch.feed(0.0, x[:a]), ch.feed((a + 2) / fs, x[a + 2:]), ch.flush()])
    assert np.isnan(got.measures[1]).all() and np.isfinite(got.measures[0]).all()


def test_jitter_within_tolerance_continues_the_run():
    fs = 256.0
    x = stage_eeg("W", fs, 95.0, seed=8)
    rng = np.random.default_rng(8)
    jitter = rng.uniform(-0.015, 0.015, x.size // 256 + 1)
    whole = eeg_measures(x, fs, t0_s=jitter[0])  # the first chunk's time anchors the run
    ch = EegChannel("Cz", fs, tolerance_s=0.02)
    parts = [ch.feed(i / fs + jitter[i // 256], x[i:i + 256]) for i in range(0, x.size, 256)]
    got = EegEpochs.concat([*parts, ch.flush()])
    np.testing.assert_array_equal(got.measures, whole.measures)
    assert np.isfinite(got.measures[1:3]).all()


def test_overlapping_chunks_are_refused():
    ch = EegChannel("Fpz-Cz", 100.0)
    ch.feed(10.0, np.zeros(500))
    with pytest.raises(ValueError, match=r"'Fpz-Cz': chunk starts at 14\.000000 s, before the end"
                                         r" of the samples already fed \(15\.000000 s"):
        ch.feed(14.0, np.zeros(10))
    ch.flush()
    with pytest.raises(ValueError, match="before the end"):
        ch.feed(12.0, np.zeros(10))
    ch.feed(15.0, np.zeros(10))  # right after the end: a new run


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), "abc", [[1.0]]])
def test_bad_chunks_are_refused(bad):
    with pytest.raises(ValueError, match="'Oz': samples must be a one-dimensional array"):
        EegChannel("Oz", 100.0).feed(0.0, bad)
    with pytest.raises(ValueError, match="'Oz': chunk start t0_s must be a finite"):
        EegChannel("Oz", 100.0).feed(float("nan"), np.zeros(3))


def test_flush_then_later_input_starts_a_new_run():
    x = stage_eeg("W", 100.0, 120.0, seed=9)
    ch = EegChannel("Pz-Oz", 100.0)
    a = ch.feed(0.0, x[:4500])  # epoch 0 final; epoch 1 half full
    b = ch.flush()  # the stream gives up waiting: epoch 1 masked
    c = ch.feed(45.0, x[4500:])  # the rest of epoch 1 is dropped, epochs 2, 3 are complete
    got = EegEpochs.concat([a, b, c, ch.flush()])
    np.testing.assert_array_equal(got.epoch, [0, 1, 2, 3])
    assert np.isnan(got.measures[1]).all()
    np.testing.assert_array_equal(got.measures[[0, 2, 3]],
                                  eeg_measures(x, 100.0).measures[[0, 2, 3]])


def test_negative_times_and_grid_placement():
    # a run starting 2 s before the session start: epoch -1 (partial) then 0 and 1 complete
    x = stage_eeg("W", 100.0, 62.0, seed=10, t0_s=-2.0)
    got = eeg_measures(x, 100.0, t0_s=-2.0)
    np.testing.assert_array_equal(got.epoch, [-1, 0, 1])
    np.testing.assert_allclose(got.measures[1:], scipy_measures(x[200:]), rtol=1e-12)
    # a start a hair before a slot boundary counts as on it
    y = eeg_measures(x[200:], 100.0, t0_s=30.0 - 1e-10)
    np.testing.assert_array_equal(y.epoch, [1, 2])


@pytest.mark.parametrize("fs", [128.0, 256.0, 512.0])
def test_a_run_starting_on_an_epoch_boundary_barely_changes_it(fs):
    # the resampler holds the first sample for the taps before the run: epoch 0 of a
    # recording that starts at the session start, against the same 30 s with input before it
    for seed, stage in ((11, "W"), (12, "N3")):
        x = stage_eeg(stage, fs, 65.0, seed=seed, t0_s=-5.0)
        inner = eeg_measures(x, fs, t0_s=-5.0).measures[1]
        edge = eeg_measures(x[round(5 * fs):], fs).measures[0]
        np.testing.assert_allclose(edge, inner, rtol=1e-3)
        assert not np.array_equal(edge, inner)
