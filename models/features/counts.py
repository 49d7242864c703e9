"""Activity counts from raw wrist acceleration, causally, as the Sleep-Accel authors made them.

The Sleep-Accel counts (Walch et al., Sleep 2019) come from the authors' MATLAB
``make_counts.m`` (``ojwalch/sleep_classifiers``), which applies the count algorithm of
te Lindert & Van Someren ("Sleep estimates using microelectromechanical systems (MEMS)",
Sleep 36(5), 2013) through the ``actant`` toolbox (``oakley.m``, ``max2epochs.m``). Their steps,
all kept here with the same constants:

1. the **z axis only** (palmar-dorsal, perpendicular to the watch face; not the magnitude,
   not per axis), in g, linearly interpolated onto a 50 Hz grid;
2. band-pass 3-11 Hz, 5th-order Butterworth;
3. absolute value, quantised into 128 bins over [0, 5) g: ``bin = floor(|y| / (5/128)) + 1``;
4. per second the largest bin; per 15-s epoch the sum of those 15 maxima;
5. ``count = max(0, (sum - 18) * 3.07)``.

What is **not** identical to that code, and why:

* **Causal filter.** ``filtfilt`` (zero phase) needs the future. Here the same Butterworth
  sections run forward twice: the magnitude response is the same ``|H(f)|^2``
  (passband gain 1, -6 dB at 3 and 11 Hz), but the phase is not zero, so a burst's peaks land a
  few hundred ms later. The filter starts from its steady state for a constant input equal to
  the first sample (the band-pass has zero DC gain, so gravity gives no transient) instead of
  ``filtfilt``'s odd-extension padding.
* **Alignment.** The 50 Hz grid (``t = n / 50`` s), the seconds and the 15-s count epochs
  are aligned to the session start, not to the first sample; count epoch ``j`` covers
  ``[15 j, 15 j + 15)`` and is stamped ``15 j`` (MATLAB: ``linspace(first, last, n)``).
* **Gaps.** Samples that are not finite or beyond 100 g are dropped. MATLAB ``interp1``
  bridges any gap with a straight line. Here two samples
  more than 1 s apart are not bridged: the grid points between are missing and the filter
  restarts at the next sample. A second counts only with at least 25 of its 50 grid points;
  a count epoch is emitted only with at least 10 valid seconds, its sum scaled by
  ``15 / n_valid_seconds`` (identical when all 15 are valid).
* **Saturation.** MATLAB ``histc`` puts ``|y| >= 5 g`` in no bin (bin 0, i.e. stillness);
  here it saturates at bin 128.
* **Epoch close.** When a feature epoch closes at ``E``, grid points before ``E`` that are not
  yet computable (they need a sample at or after ``E``) are filtered later but no longer
  counted, so a count never uses a sample from after the feature epoch it belongs to.

These are not ActiGraph counts (ActiGraph: 30 Hz, a 0.29-1.63 Hz band-pass, its own scaling
and deadband; see Brond et al., MSSE 2017), and they are not calibrated here against any
device: they are on the scale of the Sleep-Accel counts, which is what the wearable models
are trained on. On a clean 50 Hz recording without gaps they equal the MATLAB counts up to the
filter phase and the epoch alignment.

Known answers (tested): no motion or constant gravity give 0; a sine of amplitude ``A`` at a
frequency ``f`` inside the band gives ``3.07 * (15 * (floor(A |H(f)|^2 / (5/128)) + 1) - 18)``
(the sampled peak reaches the amplitude to within a bin); sines at 1 Hz or below and at
20 Hz give 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba.extending import register_jitable
from numpy.typing import NDArray

from models.features import registry as reg
from models.features._kernels import _jit

__all__ = [
    "COUNT_SOS",
    "CountState",
    "acceleration_to_counts",
    "accel_close",
    "accel_close_py",
    "accel_counts",
    "accel_counts_py",
    "butter_bandpass_sos",
    "sos_gain",
    "sosfilt",
    "sosfilt_py",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def butter_bandpass_sos(order: int, low_hz: float, high_hz: float, fs_hz: float) -> F64:
    """Digital Butterworth band-pass as second-order sections, without scipy.

    Analog prototype poles, low-pass to band-pass transform and the bilinear transform with
    pre-warped band edges, as ``scipy.signal.butter(order, (low, high), "bandpass", fs=fs,
    output="sos")`` (same transfer function; the sections may be paired in another order).

    Parameters
    ----------
    order : int
        Order of the low-pass prototype (the band-pass has twice as many poles).
    low_hz, high_hz : float
        -3 dB band edges in Hz, ``0 < low_hz < high_hz < fs_hz / 2``.
    fs_hz : float
        Sampling rate in Hz.

    Returns
    -------
    ndarray of float64, shape (order, 6)
        Rows ``[b0, b1, b2, 1, a1, a2]``; the overall gain sits in the first row.
    """
    if not isinstance(order, int) or order < 1:
        msg = f"Butterworth `order` must be an integer >= 1; got {order!r}"
        raise ValueError(msg)
    if not 0.0 < low_hz < high_hz < fs_hz / 2.0:
        msg = (
            f"band edges must satisfy 0 < low < high < fs/2; got low={low_hz} Hz, "
            f"high={high_hz} Hz, fs={fs_hz} Hz"
        )
        raise ValueError(msg)
    m = np.arange(-order + 1, order, 2)
    proto = -np.exp(1j * np.pi * m / (2 * order))
    fs2 = 2.0 * fs_hz
    w_lo, w_hi = fs2 * math.tan(math.pi * low_hz / fs_hz), fs2 * math.tan(math.pi * high_hz / fs_hz)
    bw, w0 = w_hi - w_lo, math.sqrt(w_lo * w_hi)
    p_lp = proto * bw / 2.0
    disc = np.sqrt(p_lp**2 - w0**2 + 0j)
    poles = np.concatenate([p_lp + disc, p_lp - disc])
    gain = float(np.real(bw**order * fs2**order / np.prod(fs2 - poles)))
    zpoles = (fs2 + poles) / (fs2 - poles)
    upper = sorted((p for p in zpoles if p.imag > 1e-12), key=lambda p: p.real)
    real = sorted(p.real for p in zpoles if abs(p.imag) <= 1e-12)
    dens = [[1.0, -2.0 * p.real, abs(p) ** 2] for p in upper]
    dens += [[1.0, -(a + b), a * b] for a, b in zip(real[::2], real[1::2], strict=True)]
    sos = np.array([[1.0, 0.0, -1.0, *den] for den in dens])
    sos[0, :3] *= gain
    return sos


def sos_gain(sos: F64, f_hz: float, fs_hz: float) -> float:
    """Magnitude ``|H(f)|`` of second-order sections at frequency ``f_hz``."""
    zinv = np.exp(-2j * np.pi * f_hz / fs_hz)
    h = 1.0 + 0j
    for b0, b1, b2, a0, a1, a2 in sos:
        h *= (b0 + b1 * zinv + b2 * zinv**2) / (a0 + a1 * zinv + a2 * zinv**2)
    return float(abs(h))


_BAND_SOS = butter_bandpass_sos(reg.COUNT_FILTER_ORDER, *reg.COUNT_BAND_HZ, reg.COUNT_FS_HZ)
#: The count filter: the Butterworth sections twice, i.e. ``|H|^2`` as ``filtfilt``, causal.
COUNT_SOS: F64 = np.ascontiguousarray(np.vstack([_BAND_SOS, _BAND_SOS]))

# Kernel state layout: floats, ints, and the parameter vector.
F_T_LAST, F_Z_LAST, F_OFFSET, F_SEC_MAX, F_BIN_SUM, F_CLOSED_UNTIL = range(6)
I_HAS_LAST, I_G_NEXT, I_HAS_SEC, I_SEC, I_SEC_N, I_HAS_CE, I_CE, I_CE_N, I_N_OUT = range(9)
P_FS, P_MAX_GAP, P_BIN_W, P_N_BINS, P_MIN_POINTS, P_CE_S, P_MIN_SEC, P_OFFSET, P_SCALE = range(9)
MAX_ABS_G = reg.COUNT_MAX_ABS_G
_NEVER = -1.0e12  # "closed until": nothing closed yet (finite, so the state stays JSON)

COUNT_PARAMS: F64 = np.array([
    reg.COUNT_FS_HZ, reg.COUNT_MAX_GAP_S, reg.COUNT_RANGE_G / reg.COUNT_N_BINS,
    reg.COUNT_N_BINS, reg.COUNT_MIN_POINTS_PER_SECOND, reg.COUNT_PERIOD_S,
    reg.COUNT_MIN_VALID_SECONDS, reg.COUNT_OFFSET, reg.COUNT_SCALE,
], dtype=np.float64)


@register_jitable
def _sos_step(sos: F64, zf: F64, x: float) -> float:
    """One sample through cascaded sections (direct form II transposed)."""
    for s in range(sos.shape[0]):
        y = sos[s, 0] * x + zf[s, 0]
        zf[s, 0] = sos[s, 1] * x - sos[s, 4] * y + zf[s, 1]
        zf[s, 1] = sos[s, 2] * x - sos[s, 5] * y
        x = y
    return x


@register_jitable
def _finish_count_epoch(fst: F64, ist: I64, prm: F64, out_c: I64, out_v: F64) -> None:
    if ist[I_CE_N] >= prm[P_MIN_SEC]:
        total = fst[F_BIN_SUM] * prm[P_CE_S] / ist[I_CE_N]
        k = ist[I_N_OUT]
        out_c[k] = ist[I_CE]
        out_v[k] = max(0.0, (total - prm[P_OFFSET]) * prm[P_SCALE])
        ist[I_N_OUT] = k + 1
    ist[I_HAS_CE] = 0


@register_jitable
def _finish_second(fst: F64, ist: I64, prm: F64) -> None:
    if ist[I_SEC_N] >= prm[P_MIN_POINTS]:
        fst[F_BIN_SUM] += min(math.floor(fst[F_SEC_MAX] / prm[P_BIN_W]) + 1.0, prm[P_N_BINS])
        ist[I_CE_N] += 1
    ist[I_HAS_SEC] = 0


@register_jitable
def _accumulate(g: int, a: float, fst: F64, ist: I64, prm: F64, out_c: I64, out_v: F64) -> None:
    """Add ``|y|`` of grid point ``g`` to its second and count epoch."""
    fs = int(prm[P_FS])
    if g < fst[F_CLOSED_UNTIL] * fs:
        return
    sec = g // fs
    ce = sec // int(prm[P_CE_S])
    if ist[I_HAS_SEC] == 1 and sec != ist[I_SEC]:
        _finish_second(fst, ist, prm)
    if ist[I_HAS_CE] == 1 and ce != ist[I_CE]:
        _finish_count_epoch(fst, ist, prm, out_c, out_v)
    if ist[I_HAS_CE] == 0:
        ist[I_HAS_CE], ist[I_CE], ist[I_CE_N] = 1, ce, 0
        fst[F_BIN_SUM] = 0.0
    if ist[I_HAS_SEC] == 0:
        ist[I_HAS_SEC], ist[I_SEC], ist[I_SEC_N] = 1, sec, 0
        fst[F_SEC_MAX] = 0.0
    fst[F_SEC_MAX] = max(fst[F_SEC_MAX], a)
    ist[I_SEC_N] += 1


def sosfilt_py(sos: F64, x: F64, zf: F64) -> F64:
    """Filter ``x`` through second-order sections, updating the state ``zf`` in place.

    ``zf`` has shape (n_sections, 2); zeros mean "at rest".
    """
    y = np.empty_like(x)
    for i in range(x.shape[0]):
        y[i] = _sos_step(sos, zf, x[i])
    return y


def accel_counts_py(
    t: F64, z: F64, sos: F64, zf: F64, fst: F64, ist: I64, prm: F64, out_c: I64, out_v: F64
) -> None:
    """Feed z-axis samples through resampling, filter, binning and count epochs.

    Samples not after the previous one are skipped. Finished count epochs are written to
    ``out_c`` (index ``j`` of ``[15 j, 15 j + 15)``) and ``out_v`` (count) from position
    ``ist[I_N_OUT]`` on, which the call advances; all state arrays are updated in place.
    """
    fs = prm[P_FS]
    for i in range(t.shape[0]):
        ti = t[i]
        zi = z[i]
        if ist[I_HAS_LAST] == 1 and ti <= fst[F_T_LAST]:
            continue
        if ist[I_HAS_LAST] == 0 or ti - fst[F_T_LAST] > prm[P_MAX_GAP]:
            ist[I_HAS_LAST] = 1
            ist[I_G_NEXT] = int(math.ceil(ti * fs))
            fst[F_T_LAST], fst[F_Z_LAST], fst[F_OFFSET] = ti, zi, zi
            zf[:, :] = 0.0
        t_last = fst[F_T_LAST]
        z_last = fst[F_Z_LAST]
        g = ist[I_G_NEXT]
        while g <= ti * fs:
            val = zi
            if ti > t_last:
                val = z_last + (zi - z_last) * (g / fs - t_last) / (ti - t_last)
            y = _sos_step(sos, zf, val - fst[F_OFFSET])
            _accumulate(g, abs(y), fst, ist, prm, out_c, out_v)
            g += 1
        ist[I_G_NEXT] = g
        fst[F_T_LAST] = ti
        fst[F_Z_LAST] = zi


def accel_close_py(end: float, fst: F64, ist: I64, prm: F64, out_c: I64, out_v: F64) -> None:
    """Finish the open second and count epoch at a feature-epoch end ``end`` (s).

    Grid points before ``end`` that are computed later still pass through the filter but
    are not counted.
    """
    if ist[I_HAS_SEC] == 1:
        _finish_second(fst, ist, prm)
    if ist[I_HAS_CE] == 1:
        _finish_count_epoch(fst, ist, prm, out_c, out_v)
    fst[F_CLOSED_UNTIL] = end


sosfilt = _jit(sosfilt_py)
accel_counts = _jit(accel_counts_py)
accel_close = _jit(accel_close_py)


class CountState:
    """Streaming state of the count algorithm for one wrist, JSON round-trippable."""

    def __init__(self) -> None:
        self.zf = np.zeros((COUNT_SOS.shape[0], 2))
        self.fst = np.zeros(6)
        self.fst[F_CLOSED_UNTIL] = _NEVER
        self.ist = np.zeros(9, dtype=np.int64)

    @property
    def last_t(self) -> float | None:
        """Time of the last sample consumed (s), or None before the first."""
        return float(self.fst[F_T_LAST]) if self.ist[I_HAS_LAST] else None

    def _outputs(self, span_s: float, n_samples: int) -> tuple[I64, F64]:
        """Output buffers large enough for every count epoch a call can finish."""
        per_sample = reg.COUNT_FS_HZ * reg.COUNT_MAX_GAP_S + 1  # grid points one step can add
        per_count = reg.COUNT_MIN_VALID_SECONDS * reg.COUNT_MIN_POINTS_PER_SECOND
        by_time = max(span_s, 0.0) / reg.COUNT_PERIOD_S
        n = int(min(by_time, n_samples * per_sample / per_count)) + 3
        self.ist[I_N_OUT] = 0
        return np.empty(n, dtype=np.int64), np.empty(n)

    def _emitted(self, out_c: I64, out_v: F64) -> tuple[F64, F64]:
        n = int(self.ist[I_N_OUT])
        return out_c[:n].astype(np.float64) * reg.COUNT_PERIOD_S, out_v[:n].copy()

    def process(self, t_s: F64, z_g: F64) -> tuple[F64, F64]:
        """Consume sorted z-axis samples; return the count epochs they finished.

        Returns
        -------
        t_counts, counts : ndarray of float64, shape (n_counts,)
            Start times (s) and counts of the finished 15-s count epochs.
        """
        if t_s.size == 0:
            return np.empty(0), np.empty(0)
        first = self.last_t if self.last_t is not None else float(t_s[0])
        out_c, out_v = self._outputs(float(t_s[-1]) - min(first, float(t_s[0])), t_s.size)
        accel_counts(t_s, z_g, COUNT_SOS, self.zf, self.fst, self.ist, COUNT_PARAMS, out_c, out_v)
        return self._emitted(out_c, out_v)

    def close(self, end_s: float) -> tuple[F64, F64]:
        """Finish everything before ``end_s`` (a multiple of 15 s); return what it finished."""
        out_c, out_v = self._outputs(0.0, 0)
        accel_close(float(end_s), self.fst, self.ist, COUNT_PARAMS, out_c, out_v)
        return self._emitted(out_c, out_v)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state (exact: floats round-trip through ``repr``)."""
        return {"zf": self.zf.ravel().tolist(), "f": self.fst.tolist(), "i": self.ist.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CountState:
        """Rebuild from :meth:`to_state` output."""
        new = cls()
        new.zf = np.array(state["zf"], dtype=np.float64).reshape(new.zf.shape)
        new.fst = np.array(state["f"], dtype=np.float64)
        new.ist = np.array(state["i"], dtype=np.int64)
        if new.fst.shape != (6,) or new.ist.shape != (9,):
            msg = f"count state has the wrong shape: f {new.fst.shape}, i {new.ist.shape}"
            raise ValueError(msg)
        return new


def acceleration_to_counts(t_s: F64, acc_g: F64) -> tuple[F64, F64]:
    """Whole-recording activity counts, with the same causal code as the stream.

    Parameters
    ----------
    t_s : ndarray of float64, shape (n_samples,)
        Sample times in s since the session start, increasing; any rate (>= 30 Hz advised).
    acc_g : ndarray of float64, shape (n_samples, 3) or (n_samples,)
        Acceleration in g: columns x, y, z with z perpendicular to the watch face, or z alone.

    Returns
    -------
    t_counts, counts : ndarray of float64, shape (n_counts,)
        Start times (s, multiples of 15) and counts of the 15-s count epochs.
    """
    t = np.ascontiguousarray(t_s, dtype=np.float64)
    acc = np.asarray(acc_g, dtype=np.float64)
    if t.ndim != 1 or acc.shape not in ((t.size, 3), (t.size,)):
        msg = (
            "acceleration must be t_s of shape (n,) with acc_g of shape (n, 3) or (n,); "
            f"got {t.shape} and {acc.shape}"
        )
        raise ValueError(msg)
    z = np.ascontiguousarray(acc[:, 2] if acc.ndim == 2 else acc)
    keep = np.isfinite(t) & (np.abs(z) <= MAX_ABS_G)
    t, z = t[keep], z[keep]
    if t.size > 1 and np.any(np.diff(t) < 0):
        msg = "acceleration t_s must be non-decreasing; sort the samples by time first"
        raise ValueError(msg)
    state = CountState()
    tc, c = state.process(t, z)
    if t.size == 0:
        return tc, c
    end = (math.floor(float(t[-1]) / reg.COUNT_PERIOD_S) + 1) * reg.COUNT_PERIOD_S
    tc2, c2 = state.close(end)
    return np.concatenate([tc, tc2]), np.concatenate([c, c2])
