"""Kernels of the slow heart-rate and breathing features of RR intervals.

``hrv_slow`` and ``hrv_resp`` groups of :mod:`models.features.registry`.

Written once in plain Python (``<name>_py``) and compiled with numba by
:func:`models.features._kernels._jit`, like every feature kernel; the tests check that both
twins agree. They live apart from :mod:`models.features._kernels` only to keep modules short.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from models.features._kernels import _jit

__all__ = [
    "EP_N",
    "EP_SUM",
    "EP_SUMSQ",
    "hrv_resp",
    "hrv_resp_py",
    "hrv_slow",
    "hrv_slow_py",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
C128 = NDArray[np.complex128]

#: Columns of the per-epoch sums: valid NN intervals, sum of their HR, sum of squared HR.
EP_N, EP_SUM, EP_SUMSQ = range(3)


def hrv_slow_py(ep_end: F64, ep: F64, end: float, hr_windows: F64, ep_windows: F64,
                scale: float) -> F64:
    """Slow heart-rate variability from per-epoch sums of beat heart rate.

    Parameters
    ----------
    ep_end : ndarray of float64, shape (m,)
        End times (s) of consecutive closed epochs, one row per epoch (empty ones too),
        ascending; the last is the closing epoch.
    ep : ndarray of float64, shape (m, 3)
        Per epoch: ``EP_N`` valid NN intervals, ``EP_SUM`` sum of their HR ``60 / NN``
        (bpm), ``EP_SUMSQ`` sum of squared HR (bpm^2).
    end : float
        Window end (s): the closing epoch's end.
    hr_windows, ep_windows : ndarray of float64, shape (n_hr,), (n_ep,)
        Window lengths (s); a window holds the epochs that end in ``(end - w, end]``.
    scale : float
        Night scale (bpm, > 0).

    Returns
    -------
    ndarray of float64, shape (n_hr + 2 * n_ep,)
        Per ``hr_windows``: std (ddof 0) of beat HR / scale (0 below two beats). Per
        ``ep_windows``: std (ddof 0) of the epochs' mean HR over epochs with beats / scale
        (0 below two such epochs); then per ``ep_windows``: mean absolute change of mean HR
        between adjacent epochs that both have beats, the later one in the window / scale
        (0 without such a pair).
    """
    nh = hr_windows.shape[0]
    ne = ep_windows.shape[0]
    out = np.zeros(nh + 2 * ne)
    m = ep_end.shape[0]
    for w in range(nh):
        n = 0.0
        s1 = 0.0
        s2 = 0.0
        for j in range(m):
            if ep_end[j] > end - hr_windows[w]:
                n += ep[j, EP_N]
                s1 += ep[j, EP_SUM]
                s2 += ep[j, EP_SUMSQ]
        if n > 1.0:
            mean = s1 / n
            out[w] = math.sqrt(max(s2 / n - mean * mean, 0.0)) / scale
    for w in range(ne):
        k = 0
        t1 = 0.0
        t2 = 0.0
        dsum = 0.0
        nd = 0
        for j in range(m):
            if ep_end[j] > end - ep_windows[w] and ep[j, EP_N] > 0.0:
                mj = ep[j, EP_SUM] / ep[j, EP_N]
                k += 1
                t1 += mj
                t2 += mj * mj
                if j > 0 and ep[j - 1, EP_N] > 0.0:
                    dsum += abs(mj - ep[j - 1, EP_SUM] / ep[j - 1, EP_N])
                    nd += 1
        if k > 1:
            mean = t1 / k
            out[nh + w] = math.sqrt(max(t2 / k - mean * mean, 0.0)) / scale
        if nd > 0:
            out[nh + ne + w] = dsum / nd / scale
    return out


def hrv_resp_py(spec: C128, bands: I64, band_scale: float, df: float) -> F64:
    """Breathing features of a tachogram spectrum (respiratory sinus arrhythmia).

    Parameters
    ----------
    spec : ndarray of complex128, shape (n_bins,) or (0,)
        ``rfft`` of the tapered tachogram (ms); empty when coverage was too low.
    bands : ndarray of int64, shape (6,)
        Bin ranges ``[lo, hi)`` of VLF, LF and HF.
    band_scale : float
        Factor from ``|X|^2`` to power in ms^2 per bin.
    df : float
        Bin width (Hz).

    Returns
    -------
    ndarray of float64, shape (4,)
        ``log1p(VLF)``, ``ln((HF + 1) / (VLF + LF + HF + 1))``, the frequency (Hz) of the
        largest HF bin (the first on ties) and the entropy of the HF bins' power
        distribution over ``ln(number of HF bins)`` (0 when HF power is 0). All 0 for an
        empty ``spec``.
    """
    out = np.zeros(4)
    if spec.shape[0] == 0:
        return out
    power = np.zeros(3)
    best = -1.0
    peak = bands[4]
    for b in range(3):
        for i in range(bands[2 * b], bands[2 * b + 1]):
            p = (spec[i].real * spec[i].real + spec[i].imag * spec[i].imag) * band_scale
            power[b] += p
            if b == 2 and p > best:
                best = p
                peak = i
    out[0] = math.log1p(power[0])
    out[1] = math.log((power[2] + 1.0) / (power[0] + power[1] + power[2] + 1.0))
    out[2] = peak * df
    n_hf = bands[5] - bands[4]
    if power[2] > 0.0 and n_hf > 1:
        ent = 0.0
        for i in range(bands[4], bands[5]):
            q = (spec[i].real * spec[i].real + spec[i].imag * spec[i].imag) * band_scale
            q /= power[2]
            if q > 0.0:
                ent -= q * math.log(q)
        out[3] = ent / math.log(n_hf)
    return out


hrv_slow = _jit(hrv_slow_py)
hrv_resp = _jit(hrv_resp_py)
