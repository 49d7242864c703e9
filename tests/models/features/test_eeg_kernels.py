"""The EEG front-end's numba kernels agree with their plain-Python twins, and the FFT is right."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from models.features import _eeg_kernels as ek
from models.features import eeg_spec as spec
from models.features.eeg_resample import resample_filter

TABLES = ek.welch_tables()
SEEDS = range(3)


def _welch_args(tab: ek.WelchTables) -> tuple[np.ndarray, ...]:
    return (tab.window, tab.bitrev, tab.twiddle, tab.post, tab.bin_scale, tab.band_lo,
            tab.band_hi)


def test_tables_match_scipy():
    np.testing.assert_allclose(TABLES.window, scipy.signal.get_window("hann", 256), atol=1e-15)
    f = np.fft.rfftfreq(spec.WELCH_NPERSEG, 1 / spec.EEG_FS_HZ)
    for b, (low, high) in enumerate(spec.EEG_BANDS_HZ.values()):
        sel = np.flatnonzero((f >= low) & (f <= high))
        assert (TABLES.band_lo[b], TABLES.band_hi[b]) == (sel[0], sel[-1])
    # gamma ends on the Nyquist bin, which the one-sided density does not double
    assert TABLES.band_hi[-1] == spec.WELCH_NPERSEG // 2
    assert TABLES.bin_scale[0] == TABLES.bin_scale[-1] == TABLES.bin_scale[1] / 2


@pytest.mark.parametrize("seed", SEEDS)
def test_segment_power_is_the_fft(seed):
    rng = np.random.default_rng(seed)
    seg = rng.normal(3.0, 10.0, spec.WELCH_NPERSEG)
    acc = np.zeros(spec.WELCH_NPERSEG // 2 + 1)
    ek._segment_power(seg, TABLES.window, TABLES.bitrev, TABLES.twiddle, TABLES.post, acc)
    ref = np.abs(np.fft.rfft((seg - seg.mean()) * TABLES.window)) ** 2
    np.testing.assert_allclose(acc, ref, rtol=1e-11, atol=1e-9 * ref.max())


@pytest.mark.parametrize("seed", SEEDS)
def test_welch_twins_agree(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, 20.0, 8900)
    outs = []
    for step, close in ((ek.welch_step_py, ek.welch_close_py), (ek.welch_step, ek.welch_close)):
        ist, fst = np.zeros(8, dtype=np.int64), np.zeros(5)
        ring, acc = np.zeros(256), np.zeros(129)
        e, m = np.zeros(8, dtype=np.int64), np.zeros((8, 7))
        # runs: samples 1000-4099; 4200-6999 (a gap inside epoch 1); 9000-11999 (in 2 chunks)
        k = step(y[:3100], 1000, True, ist, fst, ring, acc, *_welch_args(TABLES), e, m)
        for a, b, m0, new in ((3100, 5900, 4200, True), (5900, 7134, 9000, True),
                              (7134, 8900, 10234, False)):
            k += step(y[a:b], m0, new, ist, fst, ring, acc, *_welch_args(TABLES), e[k:], m[k:])
        k += close(ist, fst, acc, TABLES.bin_scale, TABLES.band_lo, TABLES.band_hi, e[k:], m[k:])
        outs.append((e[:k].copy(), m[:k].copy(), ist.copy(), fst.copy()))
    (e_py, m_py, i_py, f_py), (e_nb, m_nb, i_nb, f_nb) = outs
    np.testing.assert_array_equal(e_nb, e_py)
    np.testing.assert_array_equal(e_py, [0, 1, 2, 3])
    assert np.isnan(m_py[:3]).all() and np.isfinite(m_py[3]).all()
    np.testing.assert_array_equal(i_nb, i_py)
    np.testing.assert_allclose(m_nb, m_py, rtol=1e-13)
    np.testing.assert_allclose(f_nb, f_py, rtol=1e-13)


def test_welch_complete_epoch_twins_agree():
    y = np.random.default_rng(7).normal(0.0, 20.0, 3000)
    rows = []
    for step in (ek.welch_step_py, ek.welch_step):
        ist, fst = np.zeros(8, dtype=np.int64), np.zeros(5)
        e, m = np.zeros(2, dtype=np.int64), np.zeros((2, 7))
        k = step(y, 3000, True, ist, fst, np.zeros(256), np.zeros(129), *_welch_args(TABLES),
                 e, m)
        assert k == 1 and e[0] == 1
        rows.append(m[0].copy())
    np.testing.assert_allclose(rows[1], rows[0], rtol=1e-13)
    assert np.isfinite(rows[0]).all()


@pytest.mark.parametrize(("fs", "seed"), [(256.0, 0), (250.0, 1), (128.0, 2), (173.61, 3)])
def test_resample_twins_agree(fs, seed):
    filt = resample_filter(fs)
    assert filt is not None
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 20.0, 900)
    cuts = [0, 1, 350, 351, 900]
    outs = []
    for step in (ek.resample_step_py, ek.resample_step):
        ist, fst, hist = np.zeros(2, dtype=np.int64), np.zeros(2), np.zeros(filt.n_taps)
        got = []
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            out = np.empty(filt.max_outputs(b, int(ist[ek.RI_J_NEXT])))
            n = step(x[a:b], False, ist, fst, hist, filt.taps, filt.up, filt.down, filt.centre,
                     out)
            got.append(out[:n].copy())
        out = np.empty(filt.max_outputs(900, int(ist[ek.RI_J_NEXT])))
        n = step(x[:0], True, ist, fst, hist, filt.taps, filt.up, filt.down, filt.centre, out)
        got.append(out[:n].copy())
        outs.append(np.concatenate(got))
    np.testing.assert_array_equal(outs[1], outs[0])
    # closing yields every output up to the last input: floor(899 * up / down) + 1 of them
    assert outs[0].size == 899 * filt.up // filt.down + 1
