"""The raw-EEG front-end: the psg family's measures per channel and 30-s epoch, causally.

From one EEG channel (any derivation, any regular rate >= 100 Hz, **in microvolts**: callers
convert V or mV, e.g. EDF physical values in ``uV``/``mV``/``V``), per 30-s epoch the seven
measures of :data:`~models.features.eeg_spec.EEG_MEASURES`, computed exactly as the Sleep-EDF
spectral data the models train on were (README of ``shared/data``, section 6):

* ``p_delta .. p_gamma`` (uV^2/Hz): ``scipy.signal.welch(x, fs=100, nperseg=256)`` of the
  epoch's 3000 samples (22 Hann segments, 128 samples apart, mean removed per segment,
  one-sided density; the last 56 samples are in no segment, as in scipy), averaged over the bins
  with ``low <= f <= high`` of each band of :data:`~models.features.eeg_spec.EEG_BANDS_HZ`;
* ``var`` (uV^2): ``np.var(x)``; ``var_diff`` (uV^2): ``np.var(np.diff(x))`` within the epoch.

**Time.** Samples carry event time: a chunk is ``(t0_s, x)`` with ``t0_s`` the time of its
first sample in seconds since the session start, the others following at the channel's rate.
Epoch ``k`` holds the samples of time ``[30 k, 30 k + 30)``. Chunks continue the current *run*
when they start where the previous one ended, within ``tolerance_s`` (default half a sample
period, right for exact clocks such as EDF files; give jittery sources a larger one or
timestamp their chunks by sample count); their samples are placed at the run's nominal times,
so jitter does not accumulate. A chunk that starts later starts a new run; one that starts
earlier overlaps what was fed and is refused. A run's 100-Hz samples lie at
``t_run + j / 100`` and are assigned to the 10-ms slot ``floor(100 t_run) + j`` (at most 10 ms
early). Non-finite input samples are missing samples: the run breaks around them.

**Gaps and masking.** An epoch gets its measures only if all of its 3000 samples come from
one run; an epoch that a run starts or ends inside (a gap, non-finite samples, the first and
last partial epochs of a recording) gets a row of NaN, and so does every epoch wholly inside a
gap (emitted when the next run starts). Nothing is interpolated across a gap. Rows are dense,
from the epoch of the channel's first sample.

**Resampling** (rates other than 100 Hz): :mod:`models.features.eeg_resample`, a zero-phase
polyphase FIR low-pass (pass band to 47 Hz, >= 70 dB from 50 Hz). The 100-Hz samples keep
the input's event times, so epochs are in input time; within :attr:`EegChannel.delay_s`
(about 0.72 s) of a run's ends the filter holds the run's first/last sample for the input it
lacks. That touches only epochs a run starts or ends in (masked anyway) or, when a run starts
or ends within 0.72 s of an epoch boundary (a recording that starts at the session start),
the first/last 0.72 s of the epoch beyond it: its measures change by < 1e-3 (generated EEG).

**When final.** An epoch's row is returned by the call to :meth:`EegChannel.feed` that brings
its last sample (plus :attr:`EegChannel.delay_s` of input when resampling), or by
:meth:`EegChannel.flush` when the input stops (the stream calls it when it closes an epoch of
a silent channel; a later chunk then starts a new run). Rows never change once returned.

**Incremental and exact.** The state (:meth:`EegChannel.to_state`, about 8 KB of JSON) holds
the resampler's last ``n_taps`` inputs, the open epoch's last 256 samples, its summed spectra
and running moments; every sample goes through the same numba kernels
(:mod:`models.features._eeg_kernels`) in the same order whatever the chunk sizes, so a night fed
in any chunks gives bit-identical rows to :func:`eeg_measures` on the whole array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.features import _eeg_kernels as ek
from models.features import eeg_spec as spec
from models.features._state import pack, unpack
from models.features.eeg_resample import ResampleFilter, check_eeg_rate, resample_filter

__all__ = ["EegChannel", "EegEpochs", "eeg_measures"]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

_TABLES: Final = ek.welch_tables()
_N_MEAS: Final[int] = len(spec.EEG_MEASURES)
_STATE_VERSION: Final[int] = 1
#: Fields of :meth:`EegChannel.to_state`.
_STATE_KEYS: Final = ("version", "channel", "fs_hz", "tolerance_s", "t_next", "in_run",
                      "new_run", "t_run", "n_run", "m0", "res_i", "res_f", "hist", "w_i", "w_f",
                      "ring", "acc")
#: Slack when placing a run's start on the 10-ms grid, so that 29.999999999 s counts as 30 s.
_GRID_SLACK: Final[float] = 1e-6


class EegEpochs(NamedTuple):
    """Rows of epochs that became final.

    Attributes
    ----------
    epoch : ndarray of int64, shape (n,)
        Epoch indices, consecutive (epoch ``k`` covers ``[30 k, 30 k + 30)`` s).
    measures : ndarray of float64, shape (n, 7)
        :data:`~models.features.eeg_spec.EEG_MEASURES` in
        :data:`~models.features.eeg_spec.EEG_MEASURE_UNITS`; all NaN for masked epochs.
    """

    epoch: I64
    measures: F64

    @classmethod
    def empty(cls) -> EegEpochs:
        """No rows."""
        return cls(np.zeros(0, dtype=np.int64), np.zeros((0, _N_MEAS)))

    @classmethod
    def concat(cls, parts: list[EegEpochs]) -> EegEpochs:
        """The rows of ``parts`` one after another."""
        full = [p for p in parts if p.epoch.size]
        if len(full) <= 1:
            return full[0] if full else cls.empty()
        return cls(np.concatenate([p.epoch for p in full]),
                   np.concatenate([p.measures for p in full]))


class EegChannel:
    """Causal, incremental front-end of one EEG channel (see the module docstring).

    Parameters
    ----------
    channel : str
        Channel label (``"Fpz-Cz"``), named in messages.
    fs_hz : float
        Regular sampling rate (Hz), >= 100.
    tolerance_s : float, optional
        How far a chunk's start may differ from where the previous chunk ended and still
        continue the run; default half a sample period.

    Raises
    ------
    ValueError
        If the rate is below 100 Hz or not a number, or the tolerance is negative.
    """

    def __init__(self, channel: str, fs_hz: float, *, tolerance_s: float | None = None) -> None:
        if not isinstance(channel, str) or not channel:
            msg = f"EEG channel label must be a non-empty string; got {channel!r}"
            raise ValueError(msg)
        self._channel = channel
        self._fs = check_eeg_rate(fs_hz, channel)
        self._filter: ResampleFilter | None = resample_filter(self._fs, channel)
        tol = 0.5 / self._fs if tolerance_s is None else float(tolerance_s)
        if not math.isfinite(tol) or tol < 0.0:
            msg = (f"EEG channel {channel!r}: tolerance_s must be a finite number of seconds "
                   f">= 0; got {tolerance_s!r}")
            raise ValueError(msg)
        self._tol = tol
        n_taps = self._filter.n_taps if self._filter is not None else 0
        self._res_i = np.zeros(2, dtype=np.int64)
        self._res_f = np.zeros(2)
        self._hist = np.zeros(n_taps)
        self._w_i = np.zeros(8, dtype=np.int64)
        self._w_f = np.zeros(5)
        self._ring = np.zeros(spec.WELCH_NPERSEG)
        self._acc = np.zeros(spec.WELCH_NPERSEG // 2 + 1)
        self._in_run = False
        self._new_run = False
        self._t_run = 0.0
        self._n_run = 0
        self._m0 = 0
        self._t_next: float | None = None

    @property
    def channel(self) -> str:
        """The channel label."""
        return self._channel

    @property
    def fs_hz(self) -> float:
        """Input sampling rate (Hz)."""
        return self._fs

    @property
    def tolerance_s(self) -> float:
        """Largest start-time mismatch of a continuing chunk (s)."""
        return self._tol

    @property
    def delay_s(self) -> float:
        """Input needed past an epoch's end before its row is final (s; 0 at 100 Hz)."""
        return self._filter.delay_s if self._filter is not None else 0.0

    def feed(self, t0_s: float, x_uv: ArrayLike) -> EegEpochs:
        """Add a chunk of samples; return the rows of the epochs that became final.

        Parameters
        ----------
        t0_s : float
            Time of ``x_uv[0]`` in seconds since the session start.
        x_uv : array_like of float, shape (n,)
            Consecutive samples in microvolts; non-finite values are missing samples.

        Returns
        -------
        EegEpochs

        Raises
        ------
        ValueError
            If ``x_uv`` is not one-dimensional and numeric, ``t0_s`` is not finite, or the
            chunk starts before the end of the input already fed (beyond the tolerance).
        """
        t0, x = self._check_chunk(t0_s, x_uv)
        if x.size == 0:
            return EegEpochs.empty()
        parts: list[EegEpochs] = []
        contiguous = (self._in_run and self._t_next is not None
                      and abs(t0 - self._t_next) <= self._tol)
        if self._in_run and not contiguous:
            parts.append(self._close_run())
        base = self._t_run + self._n_run / self._fs if contiguous else t0
        finite = np.isfinite(x)
        pieces = [(0, x.size)]
        if not finite.all():  # non-finite samples are missing: the run breaks around them
            edges = np.flatnonzero(np.diff(np.concatenate([[False], finite, [False]]))).tolist()
            pieces = list(zip(edges[::2], edges[1::2], strict=True))
        for a, b in pieces:
            if a > 0 or not self._in_run:
                if self._in_run:
                    parts.append(self._close_run())
                self._start_run(base + a / self._fs)
            parts.append(self._process(x[a:b]))
        if not finite[-1] and self._in_run:
            parts.append(self._close_run())
        self._t_next = (self._t_run + self._n_run / self._fs if self._in_run
                        else base + x.size / self._fs)
        return EegEpochs.concat(parts)

    def flush(self) -> EegEpochs:
        """End the current run: return the rows of every epoch it touched, the last one NaN.

        Call it when no more input will come for a while (session end, a silent channel
        whose epoch the stream closes). A later chunk, at or after the end of the input fed
        so far, starts a new run.
        """
        return self._close_run() if self._in_run else EegEpochs.empty()

    # -- runs --------------------------------------------------------------------------

    def _check_chunk(self, t0_s: float, x_uv: ArrayLike) -> tuple[float, F64]:
        try:
            x = np.asarray(x_uv, dtype=np.float64)
        except (TypeError, ValueError):
            x = np.zeros((0, 0))
        if x.ndim != 1:
            msg = (f"EEG channel {self._channel!r}: samples must be a one-dimensional array of "
                   f"numbers in uV; got {type(x_uv).__name__} with shape {np.shape(x_uv)}")
            raise ValueError(msg)
        try:
            t0 = float(t0_s)
        except (TypeError, ValueError):
            t0 = math.nan
        if not math.isfinite(t0):
            msg = (f"EEG channel {self._channel!r}: chunk start t0_s must be a finite number "
                   f"of seconds since the session start; got {t0_s!r}")
            raise ValueError(msg)
        if self._t_next is not None and t0 < self._t_next - self._tol:
            msg = (
                f"EEG channel {self._channel!r}: chunk starts at {t0:.6f} s, before the end of "
                f"the samples already fed ({self._t_next:.6f} s; overlap "
                f"{self._t_next - t0:.6f} s > tolerance {self._tol:.6f} s). Feed chunks in time "
                f"order without repeats, or raise tolerance_s for a jittery clock."
            )
            raise ValueError(msg)
        return t0, np.ascontiguousarray(x)

    def _start_run(self, t_s: float) -> None:
        self._in_run = True
        self._new_run = True
        self._t_run = t_s
        self._n_run = 0
        self._m0 = math.floor(t_s * spec.EEG_FS_HZ + _GRID_SLACK)
        self._res_i[:] = 0
        self._res_f[:] = 0.0

    def _process(self, x: F64, closing: bool = False) -> EegEpochs:
        """Run samples of the current run through the resampler and the epoch kernel."""
        self._n_run += x.size
        filt = self._filter
        if filt is None:
            y, j0 = x, self._n_run - x.size
        else:
            j0 = int(self._res_i[ek.RI_J_NEXT])
            out = np.empty(filt.max_outputs(self._n_run, j0))
            n = ek.resample_step(x, closing, self._res_i, self._res_f, self._hist, filt.taps,
                                 filt.up, filt.down, filt.centre, out)
            y = out[:n]
        if y.size == 0:
            return EegEpochs.empty()
        rows = self._row_bound(self._m0 + j0, y.size)
        out_e = np.empty(rows, dtype=np.int64)
        out_m = np.empty((rows, _N_MEAS))
        t = _TABLES
        k = ek.welch_step(y, self._m0 + j0, self._new_run, self._w_i, self._w_f, self._ring,
                          self._acc, t.window, t.bitrev, t.twiddle, t.post, t.bin_scale,
                          t.band_lo, t.band_hi, out_e, out_m)
        self._new_run = False
        return EegEpochs(out_e[:k], out_m[:k])

    def _row_bound(self, m_start: int, n: int) -> int:
        """Most rows one :func:`welch_step` call over ``n`` samples from ``m_start`` writes."""
        w = self._w_i
        lo = m_start // spec.EEG_EPOCH_SAMPLES
        if w[ek.WI_HAS_EMIT]:
            lo = min(lo, int(w[ek.WI_NEXT_EMIT]))
        if w[ek.WI_HAS_EPOCH]:
            lo = min(lo, int(w[ek.WI_EPOCH]))
        return (m_start + n - 1) // spec.EEG_EPOCH_SAMPLES - lo + 2

    def _close_run(self) -> EegEpochs:
        parts = [self._process(np.zeros(0), closing=True)] if self._filter is not None else []
        out_e = np.empty(1, dtype=np.int64)
        out_m = np.empty((1, _N_MEAS))
        t = _TABLES
        k = ek.welch_close(self._w_i, self._w_f, self._acc, t.bin_scale, t.band_lo, t.band_hi,
                           out_e, out_m)
        parts.append(EegEpochs(out_e[:k], out_m[:k]))
        self._in_run = False
        return EegEpochs.concat(parts)

    # -- checkpoints -------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The whole state as a JSON-able dict (float arrays as exact base64)."""
        return {
            "version": _STATE_VERSION, "channel": self._channel, "fs_hz": self._fs,
            "tolerance_s": self._tol, "t_next": self._t_next, "in_run": self._in_run,
            "new_run": self._new_run, "t_run": self._t_run, "n_run": self._n_run,
            "m0": self._m0, "res_i": pack(self._res_i, "<i8"), "res_f": pack(self._res_f),
            "hist": pack(self._hist), "w_i": pack(self._w_i, "<i8"), "w_f": pack(self._w_f),
            "ring": pack(self._ring), "acc": pack(self._acc),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> EegChannel:
        """Rebuild a channel from :meth:`to_state`'s dict.

        Raises
        ------
        ValueError
            If the dict lacks a field, has another version or arrays of the wrong size.
        """
        missing = sorted(set(_STATE_KEYS) - set(state))
        if missing or state.get("version") != _STATE_VERSION:
            msg = (f"EEG channel state: expected version {_STATE_VERSION} with fields "
                   f"{list(_STATE_KEYS)}; got version {state.get('version')!r}, missing "
                   f"{missing}. Restore a state written by EegChannel.to_state.")
            raise ValueError(msg)
        ch = cls(state["channel"], state["fs_hz"], tolerance_s=state["tolerance_s"])
        arrays = {"res_i": ch._res_i, "res_f": ch._res_f, "hist": ch._hist, "w_i": ch._w_i,
                  "w_f": ch._w_f, "ring": ch._ring, "acc": ch._acc}
        for key, target in arrays.items():
            try:
                value = unpack(state[key], "<i8" if target.dtype == np.int64 else "<f8")
            except ValueError as exc:  # not base64, or not whole 8-byte values
                msg = f"EEG channel state of {ch._channel!r}: field {key!r} is not readable: {exc}"
                raise ValueError(msg) from None
            if value.shape != target.shape:
                msg = (f"EEG channel state of {ch._channel!r}: field {key!r} must hold "
                       f"{target.size} values; got {value.size}")
                raise ValueError(msg)
            target[:] = value
        t_next = state["t_next"]
        ch._t_next = None if t_next is None else float(t_next)
        ch._in_run, ch._new_run = bool(state["in_run"]), bool(state["new_run"])
        ch._t_run, ch._n_run, ch._m0 = float(state["t_run"]), int(state["n_run"]), int(state["m0"])
        return ch


def eeg_measures(x_uv: ArrayLike, fs_hz: float, *, t0_s: float = 0.0, channel: str = "EEG",
                 tolerance_s: float | None = None) -> EegEpochs:
    """The measures of a whole recording of one channel at once (then flushed).

    Parameters
    ----------
    x_uv : array_like of float, shape (n,)
        The channel in microvolts; non-finite values are missing samples.
    fs_hz : float
        Its rate (Hz), >= 100.
    t0_s : float
        Time of ``x_uv[0]`` in seconds since the session start.
    channel : str
        Label for messages.
    tolerance_s : float, optional
        See :class:`EegChannel`.

    Returns
    -------
    EegEpochs
        One row per epoch from the one holding the first sample to the one holding the last;
        a recording that does not end on an epoch boundary ends with a NaN row.
    """
    ch = EegChannel(channel, fs_hz, tolerance_s=tolerance_s)
    return EegEpochs.concat([ch.feed(t0_s, x_uv), ch.flush()])
