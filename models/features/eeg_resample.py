"""The anti-alias filter that brings EEG of any rate >= 100 Hz to the front-end's 100 Hz.

The measures of :mod:`models.features.eeg_spec` are defined on 100-Hz signals (the
Sleep-EDF recordings). Input at another rate ``fs`` is resampled by the rational ratio
``100 / fs = up / down`` (lowest terms) with a polyphase FIR filter: conceptually upsample by
``up`` (zeros in between), low-pass, keep every ``down``-th sample.

The low-pass is a Kaiser-window design (as ``scipy.signal.firwin(N, 48.5, window=("kaiser",
beta), fs=up * fs)``, written with numpy so that the stream needs no scipy):

* pass band up to :data:`RESAMPLE_PASS_HZ` (47 Hz), ripple <= 3.2e-4 (power +- 0.003 dB);
* stop band from :data:`RESAMPLE_STOP_HZ` (50 Hz, the output's Nyquist frequency), at least
  :data:`RESAMPLE_ATTEN_DB` (70 dB) down, so nothing above 50 Hz (60-Hz mains, EMG) folds back
  into the gamma band (a component at ``f`` in 50-70 Hz would land at ``100 - f``);
* its length is ``N = ceil((A - 7.95) / (2.285 pi width) + 1)`` prototype taps (made odd), i.e.
  about 1.44 s of input at any rate: ``n_taps`` = 185 input samples per output at 128 Hz,
  369 at 256 Hz, 738 at 512 Hz.
* Linear phase, applied with zero delay: output ``j`` of a run is the filtered signal *at* the
  time of input position ``j * down / up``, so the 100-Hz samples keep the input's event times
  and an epoch's measures describe that epoch's 30 s. The price is latency: an output needs
  input up to :attr:`ResampleFilter.delay_s` (about 0.72 s) after its own time.
* Each polyphase branch is scaled to sum exactly to 1, so a DC offset (tens of mV on
  DC-coupled amplifiers) passes unchanged instead of leaving a ripple at ``100 / up`` Hz.

What it does to the band powers, measured on generated signals (sums of cosines every 0.1 Hz
with random phases, exact at any rate; band measures after resampling over those of the same
cosines sampled at 100 Hz; ``tests/models/features/test_eeg_resample.py``):

* delta, theta, alpha, beta: 1.00004 (+- 5e-5; the pass-band ripple);
* gamma: 0.914 for white noise, 0.932 for 1/f noise, 0.947 for 1/f^2 noise.

The gamma band loses the attenuated 47-50 Hz bins (and the 50-Hz bin). Content between 50 Hz
and fs/2, e.g. a 60-Hz mains tone, is attenuated by >= 70 dB (power by 1e-7); white noise
there with the in-band density changes the band powers by < 4e-6. The figures are the same at
128, 200, 250, 256, 500, 512 and 1024 Hz and at non-integer ratios (100.5, 173.61, 1000/3 Hz)
because the filter is specified in Hz, not in input samples. Recordings made at 100 Hz
(Sleep-EDF) are not filtered at all; their gamma band keeps whatever the recorder's own
anti-alias filter passed, up to the 50-Hz bin, so resampled recordings read about 5-9 % lower
in gamma than a 100-Hz recording of the same brain would: a constant factor, which
normalising the features per night removes.

Rates below 100 Hz are refused: their Nyquist frequency lies below the gamma band's upper
edge, so the measures the models were trained on cannot be computed from them.
"""

from __future__ import annotations

import functools
import math
import warnings
from fractions import Fraction
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.features import eeg_spec as spec

__all__ = [
    "MAX_PHASES",
    "RESAMPLE_ATTEN_DB",
    "RESAMPLE_PASS_HZ",
    "RESAMPLE_STOP_HZ",
    "ResampleFilter",
    "check_eeg_rate",
    "kaiser_lowpass",
    "resample_filter",
    "resample_ratio",
]

F64 = NDArray[np.float64]

#: Upper edge of the pass band (Hz).
RESAMPLE_PASS_HZ: Final[float] = 47.0
#: Lower edge of the stop band (Hz): the Nyquist frequency of the 100-Hz output.
RESAMPLE_STOP_HZ: Final[float] = spec.EEG_FS_HZ / 2.0
#: Stop-band attenuation and pass-band ripple (dB; Kaiser designs have one ripple for both).
RESAMPLE_ATTEN_DB: Final[float] = 70.0
#: Most polyphase branches: a rate whose ratio to 100 Hz needs more is approximated (with a
#: warning stating the clock error). 10,000 covers any rate with two decimals.
MAX_PHASES: Final[int] = 10_000
#: Relative rate error above which the approximation warns (0.09 s per day).
_WARN_REL_ERROR: Final[float] = 1e-6


class ResampleFilter(NamedTuple):
    """A polyphase resampler from ``fs_in_hz`` to 100 Hz.

    Attributes
    ----------
    fs_in_hz : float
        Input rate (Hz).
    up, down : int
        ``100 / fs_in_hz = up / down`` in lowest terms (up to :data:`MAX_PHASES`).
    taps : ndarray of float64, shape (up, n_taps)
        Branch ``r`` holds prototype taps ``r, r + up, r + 2 up, ...`` times ``up``, reversed
        (oldest input first), scaled to sum to 1.
    centre : int
        Middle tap of the prototype (odd length ``up * n_taps`` at most).
    prototype : ndarray of float64, shape (n_prototype,)
        The low-pass at ``up * fs_in_hz``, unit DC gain (for its frequency response).
    """

    fs_in_hz: float
    up: int
    down: int
    taps: F64
    centre: int
    prototype: F64

    @property
    def n_taps(self) -> int:
        """Input samples per output sample."""
        return int(self.taps.shape[1])

    @property
    def delay_s(self) -> float:
        """Input needed after an output's own time before it can be computed (s)."""
        return self.centre / (self.up * self.fs_in_hz)

    def power_gain(self, f_hz: ArrayLike) -> F64:
        """``|H(f)|^2`` of the prototype at frequencies ``f_hz`` (1 in the pass band)."""
        f = np.atleast_1d(np.asarray(f_hz, dtype=np.float64))
        q = np.arange(self.prototype.size) - self.centre
        out = np.empty(f.size)
        for i, fi in enumerate(f):
            out[i] = abs(np.dot(self.prototype, np.exp(-2j * np.pi * fi * q / (self.up *
                                                                             self.fs_in_hz))))
        return out**2

    def max_outputs(self, n_in_run: int, j_next: int) -> int:
        """Upper bound on the outputs of a run holding ``n_in_run`` inputs, from ``j_next``."""
        if n_in_run <= 0:
            return 0
        return max(0, (n_in_run - 1) * self.up // self.down - j_next + 1)


def check_eeg_rate(fs_hz: float, channel: str) -> float:
    """Check that a channel's sampling rate can feed the front-end.

    Parameters
    ----------
    fs_hz : float
        The channel's regular sampling rate (Hz).
    channel : str
        Its label, for the message.

    Returns
    -------
    float
        ``fs_hz`` as a float.

    Raises
    ------
    ValueError
        If ``fs_hz`` is not a finite number >= 100 Hz.
    """
    try:
        fs = float(fs_hz)
    except (TypeError, ValueError):
        fs = math.nan
    if not math.isfinite(fs) or fs <= 0.0:
        msg = (
            f"EEG channel {channel!r}: sampling rate must be a finite number of Hz > 0; got "
            f"{fs_hz!r}. Check the recording header or the device's rate setting."
        )
        raise ValueError(msg)
    if fs < spec.EEG_MIN_FS_HZ:
        msg = (
            f"EEG channel {channel!r} is sampled at {fs:g} Hz; the EEG front-end needs >= "
            f"{spec.EEG_MIN_FS_HZ:g} Hz because its measures (gamma band up to 50 Hz, 256-sample "
            f"Welch segments at {spec.EEG_FS_HZ} Hz) are not in a slower signal. Record at "
            f"{spec.EEG_MIN_FS_HZ:g} Hz or more, or leave this channel out."
        )
        raise ValueError(msg)
    return fs


def resample_ratio(fs_hz: float) -> tuple[int, int]:
    """``100 / fs_hz`` as ``(up, down)`` in lowest terms, ``up <= MAX_PHASES``.

    The rate is read as the decimal it was meant to be (``Fraction.limit_denominator(10**6)``
    of the float). A ratio that needs more than :data:`MAX_PHASES` branches is replaced by the
    nearest one that does not, with a :class:`UserWarning` stating the relative rate error and
    the drift of the 100-Hz time base per hour that follows from it.
    """
    fs = Fraction(fs_hz).limit_denominator(10**6)
    ratio = Fraction(spec.EEG_FS_HZ) / fs
    if ratio.numerator > MAX_PHASES:
        ratio = 1 / (1 / ratio).limit_denominator(MAX_PHASES)
        rel = abs(float(ratio * fs / spec.EEG_FS_HZ) - 1.0)
        if rel > _WARN_REL_ERROR:
            warnings.warn(
                f"EEG rate {fs_hz:.10g} Hz is resampled as {float(spec.EEG_FS_HZ / ratio):.10g} Hz "
                f"(ratio {ratio.numerator}/{ratio.denominator}, at most {MAX_PHASES} filter "
                f"branches): relative error {rel:.2g}, the 100-Hz time base drifts "
                f"{rel * 3600:.2g} s per hour. Give the rate as a fraction with a smaller "
                f"numerator if the device allows it.",
                UserWarning, stacklevel=3,
            )
    return ratio.numerator, ratio.denominator


def kaiser_lowpass(fs_hz: float, pass_hz: float, stop_hz: float, atten_db: float) -> F64:
    """Kaiser-window low-pass FIR, odd length, unit DC gain.

    The same taps as ``scipy.signal.firwin(N, (pass_hz + stop_hz) / 2, window=("kaiser",
    beta), fs=fs_hz)`` with ``N, beta`` from ``scipy.signal.kaiserord(atten_db, width)``
    (``N`` made odd so that the middle tap is a sample).

    Parameters
    ----------
    fs_hz : float
        Rate the filter runs at (Hz).
    pass_hz, stop_hz : float
        Pass-band and stop-band edges (Hz), ``0 < pass_hz < stop_hz <= fs_hz / 2``.
    atten_db : float
        Stop-band attenuation (dB, > 21).

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    if not 0.0 < pass_hz < stop_hz <= fs_hz / 2.0 or atten_db <= 21.0:
        msg = (
            f"low-pass needs 0 < pass < stop <= fs/2 and attenuation > 21 dB; got pass="
            f"{pass_hz} Hz, stop={stop_hz} Hz, fs={fs_hz} Hz, attenuation={atten_db} dB"
        )
        raise ValueError(msg)
    width = (stop_hz - pass_hz) / (fs_hz / 2.0)
    n = math.ceil((atten_db - 7.95) / 2.285 / (math.pi * width) + 1.0) | 1
    beta = 0.1102 * (atten_db - 8.7) if atten_db > 50 else (
        0.5842 * (atten_db - 21) ** 0.4 + 0.07886 * (atten_db - 21))
    cutoff = (pass_hz + stop_hz) / fs_hz  # of the Nyquist band, as firwin's `cutoff / nyq`
    m = np.arange(n) - (n - 1) / 2.0
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(n, beta)
    return h / h.sum()


def resample_filter(fs_hz: float, channel: str = "EEG") -> ResampleFilter | None:
    """The resampler for a channel sampled at ``fs_hz`` (checked with :func:`check_eeg_rate`).

    Returns
    -------
    ResampleFilter or None
        None at 100 Hz (no filtering: the measures are computed on the input itself).
        Cached per rate: channels of the same rate share one table (``8 * up * n_taps``
        bytes: 74 KB at 256 Hz).
    """
    return _resample_filter(check_eeg_rate(fs_hz, channel))


@functools.lru_cache(maxsize=16)
def _resample_filter(fs: float) -> ResampleFilter | None:
    up, down = resample_ratio(fs)
    if up == down:
        return None
    h = kaiser_lowpass(up * fs, RESAMPLE_PASS_HZ, RESAMPLE_STOP_HZ, RESAMPLE_ATTEN_DB)
    n_taps = -(-h.size // up)
    padded = np.zeros(up * n_taps)
    padded[: h.size] = h * up
    branches = padded.reshape(n_taps, up).T[:, ::-1]
    branches = branches / branches.sum(axis=1, keepdims=True)
    return ResampleFilter(fs, up, down, np.ascontiguousarray(branches), (h.size - 1) // 2, h)
