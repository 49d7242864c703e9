"""Causal, incremental R-peak detection in ECG (Pan-Tompkins style), for RR intervals live.

The detector follows Pan J, Tompkins WJ (1985), "A real-time QRS detection algorithm", IEEE
Trans Biomed Eng 32(3):230-236, sample by sample:

1. band-pass 5-15 Hz (4th-order Butterworth as two biquads, started in steady state on the
   first sample so that the baseline gives no transient);
2. five-point derivative, ``(2x[n] + x[n-1] - x[n-3] - 2x[n-4]) * fs / 8``;
3. squaring;
4. moving-window integration over 150 ms;
5. peaks of the integrated signal: the largest value since the last decision, taken once
   it has stood for 200 ms, is a QRS when above ``NPKI + 0.25 (SPKI - NPKI)`` and at least
   250 ms (refractory period) after the previous QRS, else noise; ``SPKI``/``NPKI`` are
   running estimates (weights 1/8) of signal and noise peaks, seeded from the first 2 s
   (beats in those 2 s are not reported);
6. search-back: when no QRS came for 1.66 times the mean of the last 8 RR intervals, the
   largest noise peak since the last QRS above half the threshold is taken as a QRS.

The beat time is the largest raw ECG sample in the 150 ms + 150 ms before the integrated
peak (where the R wave lies given the filters' delays), so the QRS must point upwards
(invert leads whose QRS is negative). All state is carried between calls and the kernel
steps sample by sample, so the beats found do not depend on how the signal is cut into
chunks. :func:`rpeak_step_py` is the plain-Python reference of the numba kernel
:func:`rpeak_step` (compiled as :mod:`models.features._kernels` compiles its kernels).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, sosfilt_zi

from models.features._kernels import _jit

__all__ = ["RPeakDetector", "rpeak_step", "rpeak_step_py"]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

_LEARN_S: Final = 2.0
_MWI_S: Final = 0.15
_REFRACTORY_S: Final = 0.25
_CONFIRM_S: Final = 0.2
_SEARCH_BACK_S: Final = 0.15  # raw samples searched before the MWI window for the R wave
_N_RR: Final = 8

# Float state slots
(F_SPKI, F_NPKI, F_MWI_SUM, F_PREV_MWI, F_CAND_VAL, F_NOISE_VAL, F_LEARN_MAX,
 F_LEARN_SUM) = range(8)
# Int state slots
(I_N, I_CAND_IDX, I_CAND_R, I_LAST_QRS, I_NOISE_R, I_RR_COUNT) = range(6)
_N_FLOAT: Final = 8
_N_INT: Final = 6


def rpeak_step_py(x: F64, fs: float, sos: F64, zi_unit: F64, fstate: F64, istate: I64,
                  zf: F64, hist: F64, mwi_ring: F64, raw_ring: F64, rr_ring: I64) -> I64:
    """Run the detector over ``x`` (the next samples of the ECG) and return the new beats.

    Parameters
    ----------
    x : ndarray of float64, shape (n,)
        The next ECG samples.
    fs : float
        Sampling rate in Hz.
    sos : ndarray of float64, shape (n_sections, 6)
        The band-pass filter.
    zi_unit : ndarray of float64, shape (n_sections, 2)
        Steady-state filter state for a constant input of 1 (``scipy.signal.sosfilt_zi``).
    fstate, istate : ndarray of float64 / int64
        Scalars of the state (``F_*``, ``I_*`` slots), updated in place.
    zf : ndarray of float64, shape (n_sections, 2)
        Filter state, updated in place.
    hist : ndarray of float64, shape (5,)
        The last five band-passed samples (derivative), updated in place.
    mwi_ring : ndarray of float64, shape (window,)
        The last squared-derivative samples (moving-window integration).
    raw_ring : ndarray of float64, shape (n_raw,)
        The last raw samples (R-wave location).
    rr_ring : ndarray of int64, shape (8,)
        The last RR intervals in samples.

    Returns
    -------
    ndarray of int64
        Sample indices (since the first sample ever processed) of the beats confirmed
        during this call, increasing.
    """
    window = mwi_ring.shape[0]
    n_raw = raw_ring.shape[0]
    learn_n = int(_LEARN_S * fs)
    refractory = int(round(_REFRACTORY_S * fs))
    confirm = int(round(_CONFIRM_S * fs))
    reach = window + int(round(_SEARCH_BACK_S * fs))
    out = np.empty(x.shape[0] // max(refractory, 1) + 4, dtype=np.int64)
    n_out = 0
    n_sec = sos.shape[0]
    for i in range(x.shape[0]):
        n = istate[I_N]
        v = x[i]
        if n == 0:
            for s in range(n_sec):
                zf[s, 0] = zi_unit[s, 0] * v
                zf[s, 1] = zi_unit[s, 1] * v
        raw_ring[n % n_raw] = v
        # 1. band-pass, direct form II transposed per section
        y = v
        for s in range(n_sec):
            out_s = sos[s, 0] * y + zf[s, 0]
            zf[s, 0] = sos[s, 1] * y - sos[s, 4] * out_s + zf[s, 1]
            zf[s, 1] = sos[s, 2] * y - sos[s, 5] * out_s
            y = out_s
        # 2.-3. derivative and squaring
        for k in range(4):
            hist[k] = hist[k + 1]
        hist[4] = y
        d = (2.0 * hist[4] + hist[3] - hist[1] - 2.0 * hist[0]) * fs / 8.0
        sq = d * d if n >= 4 else 0.0
        # 4. moving-window integration
        fstate[F_MWI_SUM] += sq - mwi_ring[n % window]
        mwi_ring[n % window] = sq
        m = fstate[F_MWI_SUM] / window
        prev = fstate[F_PREV_MWI]
        fstate[F_PREV_MWI] = m
        istate[I_N] = n + 1
        if n < learn_n:
            fstate[F_LEARN_MAX] = max(fstate[F_LEARN_MAX], m)
            fstate[F_LEARN_SUM] += m
            if n == learn_n - 1:
                fstate[F_SPKI] = fstate[F_LEARN_MAX] / 3.0
                fstate[F_NPKI] = fstate[F_LEARN_SUM] / learn_n / 2.0
            continue
        # 5. candidate peak: the largest rising value since the last decision
        if m > fstate[F_CAND_VAL] and m > prev:
            fstate[F_CAND_VAL] = m
            istate[I_CAND_IDX] = n
            # R wave: the largest raw sample in the reach before the integrated peak
            best = n
            lo = max(n - reach, n - n_raw + 1, 0)
            for j in range(n, lo - 1, -1):
                if raw_ring[j % n_raw] > raw_ring[best % n_raw]:
                    best = j
            istate[I_CAND_R] = best
        threshold = fstate[F_NPKI] + 0.25 * (fstate[F_SPKI] - fstate[F_NPKI])
        if fstate[F_CAND_VAL] > 0.0 and n - istate[I_CAND_IDX] >= confirm:
            peak = fstate[F_CAND_VAL]
            r = istate[I_CAND_R]
            after_last = istate[I_LAST_QRS] < 0 or r - istate[I_LAST_QRS] >= refractory
            if peak > threshold and after_last:
                fstate[F_SPKI] = 0.125 * peak + 0.875 * fstate[F_SPKI]
                if istate[I_LAST_QRS] >= 0:
                    rr_ring[istate[I_RR_COUNT] % rr_ring.shape[0]] = r - istate[I_LAST_QRS]
                    istate[I_RR_COUNT] += 1
                istate[I_LAST_QRS] = r
                fstate[F_NOISE_VAL] = 0.0
                out[n_out] = r
                n_out += 1
            else:
                fstate[F_NPKI] = 0.125 * peak + 0.875 * fstate[F_NPKI]
                if after_last and peak > fstate[F_NOISE_VAL]:
                    fstate[F_NOISE_VAL] = peak
                    istate[I_NOISE_R] = r
            fstate[F_CAND_VAL] = 0.0
        # 6. search-back after a long silence
        n_rr = min(istate[I_RR_COUNT], rr_ring.shape[0])
        if n_rr > 0 and istate[I_LAST_QRS] >= 0 and fstate[F_NOISE_VAL] > 0.0:
            total = 0
            for k in range(n_rr):
                total += rr_ring[k]
            if n - istate[I_LAST_QRS] > 1.66 * total / n_rr + confirm:
                if fstate[F_NOISE_VAL] > 0.5 * threshold:
                    r = istate[I_NOISE_R]
                    fstate[F_SPKI] = 0.25 * fstate[F_NOISE_VAL] + 0.75 * fstate[F_SPKI]
                    rr_ring[istate[I_RR_COUNT] % rr_ring.shape[0]] = r - istate[I_LAST_QRS]
                    istate[I_RR_COUNT] += 1
                    istate[I_LAST_QRS] = r
                    out[n_out] = r
                    n_out += 1
                fstate[F_NOISE_VAL] = 0.0
    return out[:n_out]


rpeak_step = _jit(rpeak_step_py)


class RPeakDetector:
    """R peaks of one ECG channel, fed chunk by chunk.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz; at least 100 Hz (the band-pass and the 10 ms beat timing need
        it).
    compiled : bool
        Run the numba kernel (default) or its plain-Python reference.

    Attributes
    ----------
    n_samples : int
        Samples processed so far.
    """

    def __init__(self, fs: float, compiled: bool = True) -> None:
        if not (isinstance(fs, int | float) and math.isfinite(fs) and fs >= 100.0):
            msg = f"R-peak detection needs an ECG sampled at >= 100 Hz; got fs={fs!r}"
            raise ValueError(msg)
        self.fs = float(fs)
        self._step = rpeak_step if compiled else rpeak_step_py
        self._sos = np.ascontiguousarray(butter(2, [5.0, 15.0], btype="bandpass", fs=self.fs,
                                                output="sos"), dtype=np.float64)
        self._zi_unit = np.ascontiguousarray(sosfilt_zi(self._sos), dtype=np.float64)
        self._f = np.zeros(_N_FLOAT)
        self._i = np.zeros(_N_INT, dtype=np.int64)
        self._i[I_LAST_QRS] = -1
        self._zf = np.zeros_like(self._zi_unit)
        self._hist = np.zeros(5)
        self._mwi = np.zeros(max(int(round(_MWI_S * self.fs)), 1))
        self._raw = np.zeros(int(round((_MWI_S + _SEARCH_BACK_S + 0.1) * self.fs)) + 1)
        self._rr = np.zeros(_N_RR, dtype=np.int64)

    @property
    def n_samples(self) -> int:
        """Samples processed so far."""
        return int(self._i[I_N])

    def settled(self) -> int:
        """Sample index before which no beat will be reported any more.

        A later beat is the candidate peak being confirmed, the noise peak kept for the
        search-back, or the R wave of a sample still to come, which lies at most the
        integration window plus the R-wave search before it.
        """
        reach = self._mwi.shape[0] + int(round(_SEARCH_BACK_S * self.fs))
        earliest = int(self._i[I_N]) - reach
        if self._f[F_CAND_VAL] > 0.0:
            earliest = min(earliest, int(self._i[I_CAND_R]))
        if self._f[F_NOISE_VAL] > 0.0:
            earliest = min(earliest, int(self._i[I_NOISE_R]))
        return max(earliest, 0)

    def process(self, x: NDArray[np.float64]) -> I64:
        """Feed the next samples; return the sample indices of the beats confirmed now.

        Parameters
        ----------
        x : ndarray of float64, shape (n,)
            The next ECG samples (any unit; the thresholds adapt).

        Returns
        -------
        ndarray of int64
            Indices since the first sample fed, increasing across calls; a beat is
            reported 200 ms to about 0.5 s after it happened.
        """
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 1 or not np.all(np.isfinite(x)):
            msg = "ECG samples must be a 1-d array of finite numbers"
            raise ValueError(msg)
        return self._step(x, self.fs, self._sos, self._zi_unit, self._f, self._i, self._zf,
                          self._hist, self._mwi, self._raw, self._rr)
