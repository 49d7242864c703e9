"""Numba kernels of the EEG front-end, each with its plain-Python reference.

Two stages per channel, both fed sample by sample in time order with their state in small
arrays that the kernel updates in place (the layout constants below), so that any split of
the input into chunks gives bit-identical output:

* :func:`resample_step`: polyphase FIR resampling of one run of regularly sampled input to
  :data:`~models.features.eeg_spec.EEG_FS_HZ` (filter and its design:
  :mod:`models.features.eeg_resample`).
* :func:`welch_step` / :func:`welch_close`: per 30-s epoch of the 100-Hz signal, Welch's
  periodogram (Hann segments, mean removed per segment, one-sided density) summed per bin as
  each segment completes, and the variance of the samples and of their first difference
  (Welford's running updates), then the measures of
  :data:`~models.features.eeg_spec.EEG_MEASURES` when the epoch ends.

Written once as ``<name>_py`` and compiled by :func:`models.features._kernels._jit`, like every
feature kernel; ``tests/models/features/test_eeg_kernels.py`` checks that both twins agree.
The FFT is a radix-2 transform of the segment's even and odd samples packed as one complex
sequence of half the length (numba has no ``np.fft``); :func:`welch_tables` precomputes its
twiddles, the window and the density scale with numpy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba.extending import register_jitable
from numpy.typing import NDArray

from models.features import eeg_spec as spec
from models.features._kernels import _jit

__all__ = [
    "RF_FIRST",
    "RF_LAST",
    "RI_J_NEXT",
    "RI_N_IN",
    "WF_DM2",
    "WF_DMEAN",
    "WF_LAST",
    "WF_M2",
    "WF_MEAN",
    "WI_CLEAN",
    "WI_COUNT",
    "WI_EPOCH",
    "WI_HAS_EPOCH",
    "WI_HAS_EMIT",
    "WI_M_NEXT",
    "WI_NEXT_EMIT",
    "WI_NSEG",
    "WelchTables",
    "resample_step",
    "resample_step_py",
    "welch_close",
    "welch_close_py",
    "welch_step",
    "welch_step_py",
    "welch_tables",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
C128 = NDArray[np.complex128]

#: Resampler state: integers (inputs received in the run, next output index in the run) ...
RI_N_IN, RI_J_NEXT = range(2)
#: ... and floats (first and last input sample of the run: the edge values held at its ends).
RF_FIRST, RF_LAST = range(2)

#: Welch state, integers: next expected 100-Hz sample index, whether an epoch is open, its
#: index, samples in it, 1 while it is still complete and contiguous, segments summed, whether
#: an epoch was emitted yet and the next epoch index to emit.
(WI_M_NEXT, WI_HAS_EPOCH, WI_EPOCH, WI_COUNT, WI_CLEAN, WI_NSEG, WI_HAS_EMIT,
 WI_NEXT_EMIT) = range(8)
#: Welch state, floats: Welford mean and sum of squared deviations of the samples and of their
#: first differences, and the last sample.
WF_MEAN, WF_M2, WF_DMEAN, WF_DM2, WF_LAST = range(5)

_SEG = spec.WELCH_NPERSEG
_HOP = spec.WELCH_NPERSEG - spec.WELCH_NOVERLAP
_EPOCH = spec.EEG_EPOCH_SAMPLES
_N_MEAS = len(spec.EEG_MEASURES)


class WelchTables(NamedTuple):
    """Constants of the Welch kernels (see :func:`welch_tables`)."""

    window: F64
    bitrev: I64
    twiddle: C128
    post: C128
    bin_scale: F64
    band_lo: I64
    band_hi: I64


def welch_tables() -> WelchTables:
    """The window, FFT twiddles, density scale and band bins of the EEG specification.

    Returns
    -------
    WelchTables
        ``window`` (nperseg,): periodic Hann, as ``scipy.signal.get_window("hann", nperseg)``;
        ``bitrev`` (nperseg/2,): bit-reversal permutation of the half-length FFT;
        ``twiddle`` (nperseg/4,): ``exp(-2j pi k / (nperseg/2))``; ``post`` (nperseg/2 + 1,):
        ``exp(-2j pi k / nperseg)``; ``bin_scale`` (nperseg/2 + 1,): one-sided density scale
        ``c / (fs * sum(window**2))`` with ``c = 2`` except at 0 Hz and Nyquist;
        ``band_lo``, ``band_hi`` (n_bands,): first and last bin with ``low <= f <= high``.
    """
    n = _SEG
    half = n // 2
    if n & (n - 1) or n < 4:
        msg = f"WELCH_NPERSEG must be a power of two >= 4 for the FFT kernel; got {n}"
        raise ValueError(msg)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    bits = half.bit_length() - 1
    bitrev = np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(half)], dtype=np.int64)
    twiddle = np.exp(-2j * np.pi * np.arange(half // 2) / half)
    post = np.exp(-2j * np.pi * np.arange(half + 1) / n)
    bin_scale = np.full(half + 1, 2.0 / (spec.EEG_FS_HZ * float(np.sum(window**2))))
    bin_scale[[0, half]] /= 2.0
    freqs = np.arange(half + 1) * spec.EEG_FS_HZ / n
    lo, hi = [], []
    for low, high in spec.EEG_BANDS_HZ.values():
        idx = np.flatnonzero((freqs >= low) & (freqs <= high))
        lo.append(idx[0])
        hi.append(idx[-1])
    return WelchTables(window, bitrev, twiddle, post, bin_scale,
                       np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64))


# ------------------------------------------------------------------------------------------
# Polyphase resampling


@register_jitable
def _dot4(c: F64, w: F64, o: int) -> float:
    """``sum(c * w[o:o + len(c)])`` in four interleaved partial sums (a fixed order: exact twin)."""
    n = c.shape[0]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    u = 0
    while u + 4 <= n:
        s0 += c[u] * w[o + u]
        s1 += c[u + 1] * w[o + u + 1]
        s2 += c[u + 2] * w[o + u + 2]
        s3 += c[u + 3] * w[o + u + 3]
        u += 4
    while u < n:
        s0 += c[u] * w[o + u]
        u += 1
    return (s0 + s1) + (s2 + s3)


def resample_step_py(x: F64, closing: bool, ist: I64, fst: F64, hist: F64, taps: F64,
                     up: int, down: int, centre: int, out: F64) -> int:
    """Feed one chunk of a run to the polyphase resampler; write the outputs now computable.

    Output ``j`` of a run is the low-passed input at input position ``j * down / up``
    (zero phase: ``centre`` is the prototype's middle tap), i.e. at time
    ``t_run + j / 100`` s. It is computed once all taps it needs are in; with ``closing`` the
    run ends and every output up to the last input sample is computed, the last sample held
    for the missing taps (the first one likewise before the run's start).

    Parameters
    ----------
    x : ndarray of float64, shape (n,)
        Next input samples of the run (may be empty).
    closing : bool
        True when the run ends after ``x``.
    ist, fst : ndarray of int64 (2,), float64 (2,)
        Run state (``RI_*``, ``RF_*``), zero for a new run; updated in place.
    hist : ndarray of float64, shape (n_taps,)
        The run's last ``n_taps`` input samples, oldest first; updated in place.
    taps : ndarray of float64, shape (up, n_taps)
        Polyphase filter, each phase reversed (oldest sample first) and summing to 1.
    up, down : int
        Resampling ratio ``100 / fs_in = up / down`` in lowest terms.
    centre : int
        Middle tap of the prototype filter (its length is odd), in prototype samples.
    out : ndarray of float64
        Room for the outputs (see :func:`models.features.eeg_resample.max_outputs`).

    Returns
    -------
    int
        Number of outputs written to ``out``.
    """
    n_taps = hist.shape[0]
    n_old = ist[RI_N_IN]
    n_new = x.shape[0]
    work = np.empty(n_taps + n_new)
    work[:n_taps] = hist
    work[n_taps:] = x
    base = n_old - n_taps  # sample index of work[0]
    if n_new > 0:
        if n_old == 0:
            fst[RF_FIRST] = x[0]
        fst[RF_LAST] = x[n_new - 1]
    n_last = n_old + n_new - 1
    j = ist[RI_J_NEXT]
    k = 0
    while n_last >= 0:
        q0 = centre + j * down
        n_hi = q0 // up
        if (closing and j * down > n_last * up) or (not closing and n_hi > n_last):
            break
        phase = taps[q0 - n_hi * up]
        n_lo = n_hi - n_taps + 1
        if n_lo >= 0 and n_hi <= n_last:
            out[k] = _dot4(phase, work, n_lo - base)
        else:  # within half a filter of the run's ends: hold the edge samples
            s = 0.0
            for u in range(n_taps):
                n = n_lo + u
                v = fst[RF_FIRST] if n < 0 else (fst[RF_LAST] if n > n_last else work[n - base])
                s += phase[u] * v
            out[k] = s
        k += 1
        j += 1
    ist[RI_J_NEXT] = j
    ist[RI_N_IN] = n_last + 1
    hist[:] = work[n_new:]
    return k


# ------------------------------------------------------------------------------------------
# Welch periodogram and variances per epoch


@register_jitable
def _segment_power(seg: F64, tab_window: F64, bitrev: I64, twiddle: C128, post: C128,
                   acc: F64) -> None:
    """Add ``|FFT(window * (seg - mean(seg)))|^2`` of one segment to ``acc`` (one-sided bins)."""
    n = seg.shape[0]
    half = n // 2
    mean = 0.0
    for i in range(n):
        mean += seg[i]
    mean /= n
    z = np.empty(half, dtype=np.complex128)
    for i in range(half):
        z[bitrev[i]] = complex((seg[2 * i] - mean) * tab_window[2 * i],
                               (seg[2 * i + 1] - mean) * tab_window[2 * i + 1])
    size = 2
    while size <= half:
        step = half // size
        for start in range(0, half, size):
            for i in range(size // 2):
                t = twiddle[i * step] * z[start + i + size // 2]
                z[start + i + size // 2] = z[start + i] - t
                z[start + i] = z[start + i] + t
        size *= 2
    for k in range(half + 1):
        a = z[k % half]
        b = z[(half - k) % half].conjugate()
        even = 0.5 * (a + b)
        odd = -0.5j * (a - b)
        v = even + post[k] * odd
        acc[k] += v.real * v.real + v.imag * v.imag


@register_jitable
def _emit(ist: I64, fst: F64, acc: F64, bin_scale: F64, band_lo: I64, band_hi: I64,
          out_epoch: I64, out_meas: F64, k: int) -> int:
    """Write the open epoch to row ``k`` (NaN unless complete and contiguous); close it."""
    e = ist[WI_EPOCH]
    out_epoch[k] = e
    if ist[WI_CLEAN] == 1 and ist[WI_COUNT] == _EPOCH:
        nseg = ist[WI_NSEG]
        for b in range(band_lo.shape[0]):
            s = 0.0
            for i in range(band_lo[b], band_hi[b] + 1):
                s += acc[i] * bin_scale[i]
            out_meas[k, b] = s / (nseg * (band_hi[b] - band_lo[b] + 1))
        out_meas[k, _N_MEAS - 2] = fst[WF_M2] / _EPOCH
        out_meas[k, _N_MEAS - 1] = fst[WF_DM2] / (_EPOCH - 1)
    else:
        for c in range(_N_MEAS):
            out_meas[k, c] = np.nan
    ist[WI_HAS_EPOCH] = 0
    ist[WI_HAS_EMIT] = 1
    ist[WI_NEXT_EMIT] = e + 1
    return k + 1


@register_jitable
def _emit_missing(ist: I64, until: int, out_epoch: I64, out_meas: F64, k: int) -> int:
    """NaN rows for the epochs from the next one to emit up to ``until`` (exclusive)."""
    if ist[WI_HAS_EMIT] == 1:
        for e in range(ist[WI_NEXT_EMIT], until):
            out_epoch[k] = e
            for c in range(_N_MEAS):
                out_meas[k, c] = np.nan
            k += 1
            ist[WI_NEXT_EMIT] = e + 1
    return k


def welch_step_py(y: F64, m_start: int, new_run: bool, ist: I64, fst: F64, ring: F64,
                  acc: F64, window: F64, bitrev: I64, twiddle: C128, post: C128,
                  bin_scale: F64, band_lo: I64, band_hi: I64, out_epoch: I64,
                  out_meas: F64) -> int:
    """Feed contiguous 100-Hz samples; write the rows of the epochs that end.

    Sample ``m`` (a global index, ``m / 100`` s after the session start) belongs to epoch
    ``m // 3000``. An epoch gets its measures when its last sample is in, and only if all
    of its samples came in one run; otherwise (a run starts or ends inside it) its row is NaN.
    Epochs left without any sample between two runs get NaN rows when the next run starts.

    Parameters
    ----------
    y : ndarray of float64, shape (n,)
        Samples ``m_start .. m_start + n - 1`` in uV.
    m_start : int
        Global index of ``y[0]``. Samples before the state's next expected index (a new run
        overlapping the previous one by a rounding) or in epochs already emitted are skipped.
    new_run : bool
        True when ``y[0]`` starts a new run (the input was interrupted before it).
    ist, fst : ndarray of int64 (8,), float64 (5,)
        Welch state (``WI_*``, ``WF_*``); updated in place.
    ring : ndarray of float64, shape (nperseg,)
        The open epoch's latest samples, sample at position ``p`` in slot ``p % nperseg``.
    acc : ndarray of float64, shape (nperseg // 2 + 1,)
        The open epoch's summed squared spectra.
    window, bitrev, twiddle, post, bin_scale, band_lo, band_hi : ndarray
        :func:`welch_tables`.
    out_epoch, out_meas : ndarray of int64 (rows,), float64 (rows, 7)
        Room for the emitted rows.

    Returns
    -------
    int
        Number of rows written.
    """
    k = 0
    seg = np.empty(ring.shape[0])
    for i in range(y.shape[0]):
        m = m_start + i
        e = m // _EPOCH
        if i == 0 and new_run and ist[WI_HAS_EPOCH] == 1 and e <= ist[WI_EPOCH]:
            ist[WI_CLEAN] = 0
        started = ist[WI_HAS_EPOCH] == 1 or ist[WI_HAS_EMIT] == 1
        if (started and m < ist[WI_M_NEXT]) or (ist[WI_HAS_EMIT] == 1
                                                 and e < ist[WI_NEXT_EMIT]):
            continue
        pos = m - e * _EPOCH
        if ist[WI_HAS_EPOCH] == 1 and e != ist[WI_EPOCH]:
            k = _emit(ist, fst, acc, bin_scale, band_lo, band_hi, out_epoch, out_meas, k)
        if ist[WI_HAS_EPOCH] == 0:
            k = _emit_missing(ist, e, out_epoch, out_meas, k)
            ist[WI_HAS_EPOCH] = 1
            ist[WI_EPOCH] = e
            ist[WI_COUNT] = 0
            ist[WI_CLEAN] = 1 if pos == 0 else 0
            ist[WI_NSEG] = 0
            acc[:] = 0.0
            fst[WF_MEAN] = 0.0
            fst[WF_M2] = 0.0
            fst[WF_DMEAN] = 0.0
            fst[WF_DM2] = 0.0
        v = y[i]
        n = ist[WI_COUNT] + 1
        d = v - fst[WF_MEAN]
        fst[WF_MEAN] += d / n
        fst[WF_M2] += d * (v - fst[WF_MEAN])
        if n > 1:
            dv = v - fst[WF_LAST]
            dd = dv - fst[WF_DMEAN]
            fst[WF_DMEAN] += dd / (n - 1)
            fst[WF_DM2] += dd * (dv - fst[WF_DMEAN])
        fst[WF_LAST] = v
        ist[WI_COUNT] = n
        ist[WI_M_NEXT] = m + 1
        nseg_total = ring.shape[0]
        ring[pos % nseg_total] = v
        s0 = pos - nseg_total + 1
        if s0 >= 0 and s0 % _HOP == 0 and ist[WI_CLEAN] == 1:
            for u in range(nseg_total):
                seg[u] = ring[(s0 + u) % nseg_total]
            _segment_power(seg, window, bitrev, twiddle, post, acc)
            ist[WI_NSEG] += 1
        if pos == _EPOCH - 1:
            k = _emit(ist, fst, acc, bin_scale, band_lo, band_hi, out_epoch, out_meas, k)
    return k


def welch_close_py(ist: I64, fst: F64, acc: F64, bin_scale: F64, band_lo: I64, band_hi: I64,
                   out_epoch: I64, out_meas: F64) -> int:
    """Emit the open epoch, if any, as the input stops (NaN: it cannot be complete).

    Returns
    -------
    int
        Rows written to ``out_epoch``/``out_meas`` (0 or 1).
    """
    if ist[WI_HAS_EPOCH] == 0:
        return 0
    return _emit(ist, fst, acc, bin_scale, band_lo, band_hi, out_epoch, out_meas, 0)


resample_step = _jit(resample_step_py)
welch_step = _jit(welch_step_py)
welch_close = _jit(welch_close_py)
