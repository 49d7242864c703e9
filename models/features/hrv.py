"""Heart-rate variability features from beat-to-beat RR intervals with beat types.

Input: one RR interval per beat: ``t`` the time of the beat that ends the interval (s since
the session start), ``rr`` the interval (s), and the beat's type (MIT-BIH/AAMI symbols:
``N`` normal, ``S``/``V``/``F``/``Q`` ectopic or unknown; see :func:`beat_codes`).

**Which intervals count (NN).** Interval ``i`` is a valid NN interval when its own beat and the
previous beat are both ``N`` (so the interval into an ectopic beat and the compensatory one
after it are both excluded), ``0.3 s <= rr <= 2.0 s``, and it differs by at most 20 % from the
median of the last 11 in-range NN intervals (every in-range NN interval enters that median,
accepted or not, so a real change of rate is followed within a few beats). The first beat of a
session has no known predecessor and is excluded. A successive difference is used only when
both intervals are valid and no beat is missing between them
(``|t[i] - t[i-1] - rr[i]| <= 0.25 s``).

**Features of a closing epoch** from beats with ``end - w <= t < end``, for ``w`` in 1, 2.5
and 5 min: ``rr_hr_w`` (60 / mean NN, minus the night median HR, over the night scale; night
statistics as in :mod:`~models.features.heart_rate`, from 60 / NN of every valid interval so
far), ``rr_sdnn_w`` = ``log1p(SDNN in ms)`` (ddof 1), ``rr_rmssd_w`` = ``log1p(RMSSD in ms)``,
``rr_pnn50_w`` (fraction of successive differences above 50 ms) and ``rr_cov_w`` (sum of valid
NN intervals / ``w``, capped at 1: the fraction of the window covered by clean beats).

**Frequency domain** over the last 5 min: the valid NN series (ms) is linearly interpolated
at 4 Hz on a grid aligned to the session start, the least-squares line removed, a Hann window
applied, and the one-sided periodogram ``2 |X|^2 / (fs sum(w^2))`` summed over
LF = [0.04, 0.15) Hz and HF = [0.15, 0.40) Hz (ms^2): ``rr_lf_300s`` = ``log1p(LF)``,
``rr_hf_300s`` = ``log1p(HF)``, ``rr_lfhf_300s`` = ``ln((LF + 1) / (HF + 1))``. They are 0 when
less than half of the 5 min is covered by valid NN intervals. Linear interpolation between
beats passes a fraction ``sinc(f * mean RR)^4`` of the power at ``f`` (at 60 bpm: 0.94 at
0.1 Hz, 0.66 at 0.25 Hz), so HF reads lower than with the cubic splines of e.g. Kubios; the
values are the same in training and serving, not comparable in absolute terms with other tools.

**Slow heart rate** (``hrv_slow``): each closed epoch keeps the count, sum and sum of squares
of its valid beats' heart rate ``60 / NN``. ``rr_hrstd_w`` is the standard deviation (ddof 0)
of beat heart rate over the epochs ending in the last ``w`` (5, 10, 30, 60 min);
``rr_ephrstd_w`` the standard deviation of the epochs' mean heart rate over the epochs with
beats in the last ``w`` (2.5, 5, 10 min), and ``rr_ephrdiff_w`` the mean absolute change of
mean heart rate between adjacent epochs with beats, the later one in the window; all over the
night scale. Wakefulness and REM move the heart rate over minutes, stable NREM does not; on
SLPDB these carry more of wake/NREM/REM than the short-window HRV.

**Breathing** (``hrv_resp``), from the same 300-s spectrum: ``rr_vlf_300s`` =
``log1p(VLF)`` (0.01-0.04 Hz: apnea cycles), ``rr_hfnu_300s`` =
``ln((HF + 1) / (VLF + LF + HF + 1))``, ``rr_hfpeak_300s`` the frequency of the largest HF
bin (the breathing rate, through respiratory sinus arrhythmia; bins 1/300 Hz apart) and
``rr_hfent_300s`` the entropy of the HF bins' power over its maximum (0 to 1: regular
breathing concentrates HF power in one peak). All 0 when the spectrum is not computed.

Statistics that need more beats than there are (SDNN: 2 NN intervals, RMSSD/pNN50: one
usable difference) are 0, as are all features of an empty window. Every output is finite.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.features import _kernels as k
from models.features import _slow_kernels as ks
from models.features import registry as reg
from models.features.heart_rate import NightHistogram

__all__ = ["BEAT_CODES", "RRChannel", "beat_codes", "clean_rr"]

F64 = NDArray[np.float64]
I8 = NDArray[np.int8]
U8 = NDArray[np.uint8]

#: AAMI beat classes of MIT-BIH beat symbols; code 0 is normal, all others are excluded.
BEAT_CODES: dict[str, int] = {
    **dict.fromkeys(("N", "L", "R", "e", "j"), 0),
    **dict.fromkeys(("S", "A", "a", "J"), 1),
    **dict.fromkeys(("V", "E"), 2),
    "F": 3,
    **dict.fromkeys(("Q", "/", "f"), 4),
}
_UNKNOWN = 4
_NO_SPECTRUM = np.zeros(0, dtype=np.complex128)


def beat_codes(beat_types: ArrayLike | None, n: int) -> U8:
    """Beat types as uint8 codes (0 = N); ``None`` means all normal.

    Parameters
    ----------
    beat_types : array-like of str or int, shape (n,), or None
        MIT-BIH symbols (``"N"``, ``"S"``, ``"V"``, ``"F"``, ``"Q"``, and the other AAMI
        symbols; unknown symbols count as ``Q``) or integer codes (0 = N, 1-255 = not N).
    n : int
        Number of beats expected.
    """
    if beat_types is None:
        return np.zeros(n, dtype=np.uint8)
    arr = np.asarray(beat_types)
    if arr.shape != (n,):
        msg = f"rr beat_types must have shape ({n},) like t_s; got {arr.shape}"
        raise ValueError(msg)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            msg = "integer rr beat_types must be codes in 0..255 (0 = normal)"
            raise ValueError(msg)
        return arr.astype(np.uint8)
    if arr.dtype.kind not in "UOS":
        msg = f"rr beat_types must be str symbols or int codes; got dtype {arr.dtype}"
        raise TypeError(msg)
    uniq, inverse = np.unique(arr.astype(str), return_inverse=True)
    table = np.array([BEAT_CODES.get(u.strip(), _UNKNOWN) for u in uniq], dtype=np.uint8)
    return table[inverse.reshape(-1)] if uniq.size else np.zeros(0, dtype=np.uint8)


def clean_rr(t_s: F64, rr_s: F64, codes: U8) -> tuple[F64, F64, U8]:
    """Drop intervals that are not finite or not positive (out-of-range ones stay, invalid)."""
    keep = np.isfinite(rr_s) & (rr_s > 0.0)
    return t_s[keep], rr_s[keep], codes[keep]


def _flags_to_str(valid: I8, succ: I8) -> str:
    """Per-beat flags as one digit each: valid + 2 * succ (compact in JSON)."""
    return (valid + 2 * succ + ord("0")).astype(np.uint8).tobytes().decode("ascii")


def _flags_from_str(text: str) -> tuple[I8, I8]:
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int8) - ord("0")
    if codes.size and (codes.min() < 0 or codes.max() > 3):
        msg = "rr state flags must be digits 0-3; the state is corrupt"
        raise ValueError(msg)
    return (codes & 1).astype(np.int8), (codes >> 1).astype(np.int8)


class RRChannel:
    """State and per-epoch features of the RR groups (``hrv_time`` to ``hrv_resp``)."""

    def __init__(self) -> None:
        self.windows = np.array(reg.RR_WINDOWS_S)
        self.keep_s = max(max(reg.RR_WINDOWS_S), reg.SPEC_WINDOW_S)
        self.n_grid = int(round(reg.SPEC_WINDOW_S * reg.SPEC_FS_HZ))
        freqs = np.fft.rfftfreq(self.n_grid, 1.0 / reg.SPEC_FS_HZ)
        # bins of [lo, hi) Hz: LF start, LF stop, HF start, HF stop
        self.bands = np.searchsorted(freqs, [*reg.LF_BAND_HZ, *reg.HF_BAND_HZ]).astype(np.int64)
        self.taper = np.hanning(self.n_grid)
        # one-sided periodogram 2|X|^2 / (fs sum(w^2)), times the bin width fs / n
        self.band_scale = 2.0 / (self.n_grid * float(np.sum(self.taper**2)))
        self.spec_row = list(reg.RR_WINDOWS_S).index(reg.SPEC_WINDOW_S)
        self.resp_bands = np.searchsorted(
            freqs, [*reg.VLF_BAND_HZ, *reg.LF_BAND_HZ, *reg.HF_BAND_HZ]).astype(np.int64)
        self.df = reg.SPEC_FS_HZ / self.n_grid
        self.slow_windows = np.array(reg.RR_SLOW_WINDOWS_S)
        self.epoch_windows = np.array(reg.RR_EPOCH_WINDOWS_S)
        self.keep_epochs_s = max(max(reg.RR_SLOW_WINDOWS_S), max(reg.RR_EPOCH_WINDOWS_S))
        # per closed epoch: its end (s) and the EP_* sums of its valid beats' HR
        self.ep_end = np.empty(0)
        self.ep = np.zeros((0, 3))
        self.t = np.empty(0)
        self.rr = np.empty(0)
        self.valid = np.empty(0, dtype=np.int8)
        self.succ = np.empty(0, dtype=np.int8)
        self.fstate = np.zeros(1)
        self.istate = np.zeros(5, dtype=np.int64)
        self.med_buf = np.zeros(reg.RR_MEDIAN_BEATS)
        self.night = NightHistogram()

    def _consume(self, t_s: F64, rr_s: F64, codes: U8) -> F64:
        """Classify and keep new beats; return the HR (bpm) of the valid ones."""
        lo, hi = reg.RR_VALID_S
        valid, succ = k.rr_classify(
            t_s, rr_s, codes, self.fstate, self.istate, self.med_buf,
            lo, hi, reg.RR_MAX_REL_DEV, reg.RR_CONTIGUOUS_TOL_S,
        )
        hr = 60.0 / rr_s[valid == 1]
        self.night.add(hr)
        self.t = np.concatenate([self.t, t_s])
        self.rr = np.concatenate([self.rr, rr_s])
        self.valid = np.concatenate([self.valid, valid])
        self.succ = np.concatenate([self.succ, succ])
        return hr

    def _spectrum(self, end_s: float, coverage: float) -> NDArray[np.complex128]:
        if coverage < reg.SPEC_MIN_COVERAGE:
            return _NO_SPECTRUM
        x = k.rr_tachogram(
            self.t, self.rr, self.valid, end_s - reg.SPEC_WINDOW_S, reg.SPEC_FS_HZ, self.taper
        )
        return np.fft.rfft(x)

    def step(self, t_s: F64, rr_s: F64, codes: U8, end_s: float) -> F64:
        """Consume the cleaned beats of the closing epoch; return its features.

        Parameters
        ----------
        t_s, rr_s : ndarray of float64, shape (n,)
            Beat times (s, all ``< end_s``, sorted) and RR intervals (s).
        codes : ndarray of uint8, shape (n,)
            Beat type codes (0 = N).
        end_s : float
            End of the closing epoch in s since the session start.

        Returns
        -------
        ndarray of float64, shape (n_hrv_time + n_hrv_freq + n_hrv_slow + n_hrv_resp,)
        """
        sums = np.zeros((1, 3))
        if t_s.size:
            hr = self._consume(t_s, rr_s, codes)
            sums[0] = hr.size, np.sum(hr), np.sum(hr * hr)
        self.ep_end = np.append(self.ep_end, end_s)
        self.ep = np.concatenate([self.ep, sums])
        ht = k.hrv_time(
            self.t, self.rr, self.valid, self.succ, end_s, self.windows, reg.PNN_THRESHOLD_S
        )
        centre, scale = self.night.centre_scale()
        coverage = ht[self.spec_row, k.HT_SUM_VALID] / reg.SPEC_WINDOW_S
        spec = self._spectrum(end_s, coverage)
        out = k.hrv_assemble(ht, self.windows, centre, scale, spec, self.bands, self.band_scale)
        slow = ks.hrv_slow(self.ep_end, self.ep, end_s, self.slow_windows, self.epoch_windows,
                           scale)
        resp = ks.hrv_resp(spec, self.resp_bands, self.band_scale, self.df)
        self._trim(end_s)
        return np.concatenate([out, slow, resp])

    def _trim(self, end_s: float) -> None:
        keep = int(np.searchsorted(self.t, end_s - self.keep_s))
        self.t, self.rr = self.t[keep:], self.rr[keep:]
        self.valid, self.succ = self.valid[keep:], self.succ[keep:]
        # one epoch more than the longest window: the change into its oldest epoch
        first = int(np.searchsorted(self.ep_end, end_s - self.keep_epochs_s, side="right"))
        first = max(first - 1, 0)
        self.ep_end, self.ep = self.ep_end[first:], self.ep[first:]

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: recent beats, classifier, night histogram, last hour's HR sums."""
        return {
            "t": self.t.tolist(), "rr": self.rr.tolist(),
            "ep_end": self.ep_end.tolist(), "ep": self.ep.ravel().tolist(),
            "flags": _flags_to_str(self.valid, self.succ),
            "f": self.fstate.tolist(), "i": self.istate.tolist(), "median": self.med_buf.tolist(),
            "night": self.night.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RRChannel:
        """Rebuild from :meth:`to_state` output."""
        new = cls()
        new.t = np.asarray(state["t"], dtype=np.float64)
        new.rr = np.asarray(state["rr"], dtype=np.float64)
        new.valid, new.succ = _flags_from_str(state["flags"])
        new.ep_end = np.asarray(state["ep_end"], dtype=np.float64)
        new.ep = np.asarray(state["ep"], dtype=np.float64).reshape(-1, 3)
        if new.ep.shape[0] != new.ep_end.shape[0]:
            msg = (f"rr state has {new.ep_end.shape[0]} epoch ends but {new.ep.shape[0]} "
                   "rows of epoch sums; the state is corrupt")
            raise ValueError(msg)
        new.fstate = np.asarray(state["f"], dtype=np.float64)
        new.istate = np.asarray(state["i"], dtype=np.int64)
        new.med_buf = np.asarray(state["median"], dtype=np.float64)
        new.night = NightHistogram.from_state(state["night"])
        return new
