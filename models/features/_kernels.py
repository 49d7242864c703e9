"""Numba kernels of the feature extractors, each with its plain-Python reference.

Every kernel is written once as a plain Python function ``<name>_py``; at import
:func:`_jit` compiles it with ``numba.njit(cache=True)`` into ``<name>``, as sleepecg's
``heartbeats.py`` does. The extractors call only the compiled twin (so the stream and the
batch function run the same machine code), and ``tests/models/features/test_kernels.py``
checks on random inputs that both twins agree. Small helpers shared by several kernels are
``register_jitable``: plain Python when called from a ``_py`` kernel, inlined when compiled.

The count-algorithm kernels (``sosfilt``, ``accel_counts``, ``accel_close``) live beside their
filter design in :mod:`models.features.counts`, built the same way with :func:`_jit`.

Kernels use the numba subset only: arrays in, arrays out, state passed as small float/int
arrays that the kernel updates in place. Times are seconds since the session start and must
be sorted (non-decreasing) wherever a kernel takes ``t``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba.extending import register_jitable
from numpy.typing import NDArray

__all__ = [
    "HT_MEAN_NN",
    "HT_N_SUCC",
    "HT_N_VALID",
    "HT_PNN",
    "HT_RMSSD",
    "HT_SDNN",
    "HT_SUM_VALID",
    "WS_FRAC_POS",
    "WS_MAX",
    "WS_MEAN",
    "WS_N",
    "WS_SDIFF",
    "WS_SLOPE",
    "WS_STD",
    "act_assemble",
    "act_assemble_py",
    "hist_add",
    "hist_add_py",
    "hist_centre_scale",
    "hist_centre_scale_py",
    "hr_assemble",
    "hr_assemble_py",
    "hrv_assemble",
    "hrv_assemble_py",
    "hrv_time",
    "hrv_time_py",
    "rr_classify",
    "rr_classify_py",
    "rr_tachogram",
    "rr_tachogram_py",
    "window_stats",
    "window_stats_py",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
I8 = NDArray[np.int8]
U8 = NDArray[np.uint8]
C128 = NDArray[np.complex128]

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(fn: _F) -> _F:
    """Compile ``fn`` with numba (cached on disk); the plain function stays the reference."""
    return cast(_F, numba.njit(cache=True)(fn))


# ------------------------------------------------------------------------------------------
# Windowed sample statistics (heart rate, activity counts)

#: Columns of :func:`window_stats`.
WS_N, WS_MEAN, WS_STD, WS_MAX, WS_FRAC_POS, WS_SDIFF, WS_SLOPE = range(7)


def window_stats_py(
    t: F64, v: F64, end: float, windows: F64, max_pair_gap: float
) -> F64:
    """Statistics of the samples in windows ``[end - w, end)`` for each length ``w``.

    Parameters
    ----------
    t : ndarray of float64, shape (n,)
        Sample times in s, sorted.
    v : ndarray of float64, shape (n,)
        Sample values.
    end : float
        Window end in s (exclusive).
    windows : ndarray of float64, shape (n_windows,)
        Window lengths in s.
    max_pair_gap : float
        Successive differences are taken only between neighbours at most this far apart (s).

    Returns
    -------
    ndarray of float64, shape (n_windows, 7)
        Per window: ``WS_N`` count, ``WS_MEAN``, ``WS_STD`` (ddof=0), ``WS_MAX``,
        ``WS_FRAC_POS`` (fraction > 0), ``WS_SDIFF`` (RMS of successive differences),
        ``WS_SLOPE`` (least-squares slope, value units per s). Empty windows are all 0;
        spread, differences and slope are 0 where fewer than two samples define them.
    """
    out = np.zeros((windows.shape[0], 7))
    i1 = np.searchsorted(t, end)
    for w in range(windows.shape[0]):
        i0 = np.searchsorted(t, end - windows[w])
        n = i1 - i0
        if n <= 0:
            continue
        total = 0.0
        top = v[i0]
        pos = 0
        t_sum = 0.0
        for i in range(i0, i1):
            total += v[i]
            t_sum += t[i]
            top = max(top, v[i])
            if v[i] > 0.0:
                pos += 1
        mean = total / n
        t_mean = t_sum / n
        ss = 0.0
        stt = 0.0
        stv = 0.0
        dd = 0.0
        m = 0
        for i in range(i0, i1):
            dv = v[i] - mean
            dt = t[i] - t_mean
            ss += dv * dv
            stt += dt * dt
            stv += dt * dv
            if i > i0 and t[i] - t[i - 1] <= max_pair_gap:
                dd += (v[i] - v[i - 1]) ** 2
                m += 1
        out[w, WS_N] = n
        out[w, WS_MEAN] = mean
        out[w, WS_STD] = math.sqrt(ss / n)
        out[w, WS_MAX] = top
        out[w, WS_FRAC_POS] = pos / n
        out[w, WS_SDIFF] = math.sqrt(dd / m) if m > 0 else 0.0
        out[w, WS_SLOPE] = stv / stt if stt > 0.0 else 0.0
    return out


# ------------------------------------------------------------------------------------------
# Night-so-far histograms (robust running median and spread)

def hist_add_py(hist: I64, v: F64, lo: float, width: float) -> None:
    """Add values to a histogram of bins centred on ``lo + i * width`` (in place).

    Values beyond the first or last bin are counted in that bin.
    """
    last = hist.shape[0] - 1
    for x in v:
        i = int(math.floor((x - lo) / width + 0.5))
        hist[min(max(i, 0), last)] += 1


def hist_centre_scale_py(hist: I64, lo: float, width: float, floor: float) -> tuple[float, float]:
    """Median and robust scale ``max(IQR / 1.349, floor)`` of a :func:`hist_add` histogram.

    Each bin's samples are taken as spread uniformly over ``[centre - width/2,
    centre + width/2)`` and quantiles are interpolated linearly inside their bin, so a constant
    integer series gives its value as the median. An empty histogram gives ``(0, floor)``.
    """
    n = 0
    for c in hist:
        n += c
    if n == 0:
        return 0.0, floor
    qs = (0.25, 0.5, 0.75)
    out = np.zeros(3)
    cum = 0.0
    j = 0
    for i in range(hist.shape[0]):
        c = hist[i]
        while j < 3 and c > 0 and cum + c >= qs[j] * n:
            out[j] = lo + (i - 0.5 + (qs[j] * n - cum) / c) * width
            j += 1
        cum += c
    return out[1], max((out[2] - out[0]) / 1.349, floor)


def hr_assemble_py(st: F64, centre: float, scale: float, expected: F64) -> F64:
    """Heart-rate feature row from :func:`window_stats` of the windows plus the epoch.

    ``st`` rows are the windows, the last row the closing epoch (coverage only); per window:
    ``(mean - centre) / scale`` (0 if empty), ``std / scale``, ``sdiff / scale``,
    ``slope * 60 / scale`` (per minute) and ``min(1, n / expected)``.
    """
    nw = st.shape[0] - 1
    out = np.zeros(5 * nw + 1)
    for w in range(nw):
        n = st[w, WS_N]
        out[5 * w] = (st[w, WS_MEAN] - centre) / scale if n > 0 else 0.0
        out[5 * w + 1] = st[w, WS_STD] / scale
        out[5 * w + 2] = st[w, WS_SDIFF] / scale
        out[5 * w + 3] = st[w, WS_SLOPE] * 60.0 / scale
        out[5 * w + 4] = min(1.0, n / expected[w])
    out[5 * nw] = min(1.0, st[nw, WS_N] / expected[nw])
    return out


def act_assemble_py(st: F64, expected: F64, since_s: float) -> F64:
    """Activity feature row from :func:`window_stats` rows of the windows.

    Per window ``log1p(mean)``, ``log1p(max)``, fraction > 0 and ``min(1, n / expected)``;
    then ``log1p(since_s / 60)`` (0 for a negative ``since_s``).
    """
    nw = st.shape[0]
    out = np.zeros(4 * nw + 1)
    for w in range(nw):
        out[4 * w] = math.log1p(st[w, WS_MEAN])
        out[4 * w + 1] = math.log1p(st[w, WS_MAX])
        out[4 * w + 2] = st[w, WS_FRAC_POS]
        out[4 * w + 3] = min(1.0, st[w, WS_N] / expected[w])
    out[4 * nw] = math.log1p(since_s / 60.0) if since_s > 0.0 else 0.0
    return out


# ------------------------------------------------------------------------------------------
# RR intervals: ectopic / outlier classification, time-domain HRV, tachogram

#: ``rr_classify`` integer state: has_prev, prev_type, prev_valid, median count, median pos.
RC_HAS_PREV, RC_PREV_TYPE, RC_PREV_VALID, RC_MED_N, RC_MED_POS = range(5)


@register_jitable
def _median_small(buf: F64, n: int) -> float:
    """Median of ``buf[:n]`` by insertion sort of a copy (n is small)."""
    s = buf[:n].copy()
    for i in range(1, n):
        x = s[i]
        j = i - 1
        while j >= 0 and s[j] > x:
            s[j + 1] = s[j]
            j -= 1
        s[j + 1] = x
    h = n // 2
    return float(s[h]) if n % 2 == 1 else 0.5 * (s[h - 1] + s[h])


def rr_classify_py(
    t: F64,
    rr: F64,
    types: U8,
    fstate: F64,
    istate: I64,
    med_buf: F64,
    rr_min: float,
    rr_max: float,
    max_rel_dev: float,
    contig_tol: float,
) -> tuple[I8, I8]:
    """Flag valid NN intervals and usable successive differences, beat by beat.

    Interval ``i`` ends at the beat at ``t[i]``, of type ``types[i]`` (0 = N). It is a valid
    NN interval when this beat and the previous one are both N, ``rr_min <= rr <= rr_max``,
    and it deviates at most ``max_rel_dev`` from the median of the last ``len(med_buf)``
    in-range NN intervals (every in-range NN interval enters that median, accepted or not,
    so it follows real changes). A successive difference ``rr[i] - rr[i-1]`` is usable
    when both intervals are valid and the beats are contiguous:
    ``|t[i] - t[i-1] - rr[i]| <= contig_tol`` (no beat lost in between).

    Parameters
    ----------
    t, rr : ndarray of float64, shape (n,)
        Beat times and intervals in s.
    types : ndarray of uint8, shape (n,)
        Beat type codes, 0 = N (normal); anything else is ectopic or unknown.
    fstate : ndarray of float64, shape (1,)
        ``[prev_t]``, updated in place.
    istate : ndarray of int64, shape (5,)
        See ``RC_*``; updated in place.
    med_buf : ndarray of float64, shape (n_median,)
        Ring buffer of recent in-range NN intervals, updated in place.
    rr_min, rr_max, max_rel_dev, contig_tol : float
        Thresholds (s, s, fraction, s).

    Returns
    -------
    valid, succ : ndarray of int8, shape (n,)
        1 where the interval is a valid NN interval / where its successive difference is usable.
    """
    n = t.shape[0]
    valid = np.zeros(n, dtype=np.int8)
    succ = np.zeros(n, dtype=np.int8)
    size = med_buf.shape[0]
    for i in range(n):
        nn = types[i] == 0 and istate[RC_HAS_PREV] == 1 and istate[RC_PREV_TYPE] == 0
        ok = nn and rr_min <= rr[i] <= rr_max
        if ok:
            if istate[RC_MED_N] > 0:
                med = _median_small(med_buf, istate[RC_MED_N])
                ok = abs(rr[i] - med) <= max_rel_dev * med
            med_buf[istate[RC_MED_POS]] = rr[i]
            istate[RC_MED_POS] = (istate[RC_MED_POS] + 1) % size
            istate[RC_MED_N] = min(istate[RC_MED_N] + 1, size)
        contiguous = istate[RC_HAS_PREV] == 1 and abs(t[i] - fstate[0] - rr[i]) <= contig_tol
        if ok:
            valid[i] = 1
            if istate[RC_PREV_VALID] == 1 and contiguous:
                succ[i] = 1
        istate[RC_HAS_PREV] = 1
        istate[RC_PREV_TYPE] = types[i]
        istate[RC_PREV_VALID] = 1 if ok else 0
        fstate[0] = t[i]
    return valid, succ


#: Columns of :func:`hrv_time`.
HT_N_VALID, HT_SUM_VALID, HT_MEAN_NN, HT_SDNN, HT_RMSSD, HT_PNN, HT_N_SUCC = range(7)


def hrv_time_py(
    t: F64, rr: F64, valid: I8, succ: I8, end: float, windows: F64, pnn_threshold: float
) -> F64:
    """Time-domain HRV of the valid NN intervals whose beat lies in ``[end - w, end)``.

    Returns
    -------
    ndarray of float64, shape (n_windows, 7)
        Per window: ``HT_N_VALID`` number of NN intervals, ``HT_SUM_VALID`` their sum (s),
        ``HT_MEAN_NN`` (s), ``HT_SDNN`` (s, ddof=1; 0 for fewer than 2), ``HT_RMSSD`` (s),
        ``HT_PNN`` fraction of ``|difference| > pnn_threshold``, ``HT_N_SUCC`` number of
        usable successive differences (both beats inside the window).
    """
    out = np.zeros((windows.shape[0], 7))
    i1 = np.searchsorted(t, end)
    for w in range(windows.shape[0]):
        i0 = np.searchsorted(t, end - windows[w])
        n = 0
        total = 0.0
        for i in range(i0, i1):
            if valid[i] == 1:
                n += 1
                total += rr[i]
        if n == 0:
            continue
        mean = total / n
        ss = 0.0
        dd = 0.0
        big = 0
        m = 0
        for i in range(i0, i1):
            if valid[i] == 1:
                ss += (rr[i] - mean) ** 2
            if succ[i] == 1 and i > i0:
                d = rr[i] - rr[i - 1]
                dd += d * d
                m += 1
                if abs(d) > pnn_threshold:
                    big += 1
        out[w, HT_N_VALID] = n
        out[w, HT_SUM_VALID] = total
        out[w, HT_MEAN_NN] = mean
        out[w, HT_SDNN] = math.sqrt(ss / (n - 1)) if n > 1 else 0.0
        out[w, HT_RMSSD] = math.sqrt(dd / m) if m > 0 else 0.0
        out[w, HT_PNN] = big / m if m > 0 else 0.0
        out[w, HT_N_SUCC] = m
    return out


def hrv_assemble_py(
    ht: F64, windows: F64, centre: float, scale: float, spec: C128, bands: I64, band_scale: float
) -> F64:
    """HRV feature row from :func:`hrv_time` rows and the tachogram's ``rfft``.

    Per window: ``(60 / mean NN - centre) / scale`` (0 if empty), ``log1p(SDNN ms)``,
    ``log1p(RMSSD ms)``, pNN50 and ``min(1, sum NN / window)``. Then from ``spec`` (empty:
    all three 0) the band powers ``LF = band_scale * sum |spec[bands[0]:bands[1]]|^2`` and
    ``HF`` likewise over ``bands[2]:bands[3]``: ``log1p(LF)``, ``log1p(HF)``,
    ``ln((LF + 1) / (HF + 1))``.
    """
    nw = ht.shape[0]
    out = np.zeros(5 * nw + 3)
    for w in range(nw):
        n = ht[w, HT_N_VALID]
        out[5 * w] = (60.0 / ht[w, HT_MEAN_NN] - centre) / scale if n > 0 else 0.0
        out[5 * w + 1] = math.log1p(1000.0 * ht[w, HT_SDNN])
        out[5 * w + 2] = math.log1p(1000.0 * ht[w, HT_RMSSD])
        out[5 * w + 3] = ht[w, HT_PNN]
        out[5 * w + 4] = min(1.0, ht[w, HT_SUM_VALID] / windows[w])
    if spec.shape[0] == 0:
        return out
    power = np.zeros(2)
    for b in range(2):
        for i in range(bands[2 * b], bands[2 * b + 1]):
            power[b] += spec[i].real * spec[i].real + spec[i].imag * spec[i].imag
        power[b] *= band_scale
    out[5 * nw] = math.log1p(power[0])
    out[5 * nw + 1] = math.log1p(power[1])
    out[5 * nw + 2] = math.log((power[0] + 1.0) / (power[1] + 1.0))
    return out


def rr_tachogram_py(t: F64, rr: F64, valid: I8, t0: float, fs: float, taper: F64) -> F64:
    """Evenly resampled, detrended, tapered NN tachogram in ms.

    The valid NN intervals (value ``rr`` at beat time ``t``) are linearly interpolated onto
    ``t0 + j / fs`` for ``j = 0..n-1`` (held constant before the first and after the last
    valid beat; excluded beats are bridged), the least-squares line is removed, and the
    result is multiplied by ``taper`` (shape (n,), e.g. ``np.hanning(n)``). Fewer than two
    valid beats in ``[t0, t0 + n / fs)`` give zeros.
    """
    n = taper.shape[0]
    x = np.zeros(n)
    t1 = t0 + n / fs
    k0 = np.searchsorted(t, t0)
    k1 = np.searchsorted(t, t1)
    tv = np.empty(k1 - k0)
    vv = np.empty(k1 - k0)
    m = 0
    for k in range(k0, k1):
        if valid[k] == 1:
            tv[m] = t[k]
            vv[m] = 1000.0 * rr[k]
            m += 1
    if m < 2:
        return x
    p = 0
    for j in range(n):
        tg = t0 + j / fs
        while p < m - 1 and tv[p + 1] <= tg:
            p += 1
        if tg <= tv[0]:
            x[j] = vv[0]
        elif p >= m - 1:
            x[j] = vv[m - 1]
        else:
            x[j] = vv[p] + (vv[p + 1] - vv[p]) * (tg - tv[p]) / (tv[p + 1] - tv[p])
    jm = 0.5 * (n - 1)
    xm = 0.0
    for j in range(n):
        xm += x[j]
    xm /= n
    sjx = 0.0
    sjj = 0.0
    for j in range(n):
        sjx += (j - jm) * (x[j] - xm)
        sjj += (j - jm) * (j - jm)
    b = sjx / sjj if sjj > 0.0 else 0.0
    for j in range(n):
        x[j] = (x[j] - xm - b * (j - jm)) * taper[j]
    return x


window_stats = _jit(window_stats_py)
hist_add = _jit(hist_add_py)
hist_centre_scale = _jit(hist_centre_scale_py)
hr_assemble = _jit(hr_assemble_py)
act_assemble = _jit(act_assemble_py)
hrv_assemble = _jit(hrv_assemble_py)
rr_classify = _jit(rr_classify_py)
hrv_time = _jit(hrv_time_py)
rr_tachogram = _jit(rr_tachogram_py)
