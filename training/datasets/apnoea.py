"""Sleep apnoea simulated on a healthy sleeper's heart rate (training augmentation).

In obstructive sleep apnoea the heart rate swings with every event: it falls while the
airway is closed and jumps at the arousal that ends the event, the *cyclic variation of
heart rate* (Guilleminault et al., Lancet 1984;323(8369):126-131). An event and its arousal
last tens of seconds, and they repeat for minutes at a time. A model trained on healthy
sleepers (Sleep-Accel) reads such swings as wake or REM, since there heart-rate variability
over minutes means exactly that; on an apnoea cohort (SLPDB) it then calls most sleep wake
or REM. :func:`apnoea_heart_rate` adds the swings to the heart rate of a labelled night, during
sleep only, so that training shows the nets sleep that looks like an apnoea patient's.

The night is cut into stretches of 10-40 min; each is apnoeic with probability ``share``,
with one cycle length (30-90 s) and one swing (4-12 bpm peak to peak) drawn per stretch.
A cycle is a slow fall over its first three quarters (the event) and a fast rise over the
last quarter (the arousal). Wake epochs and unscored epochs are left as they were. The
ranges are what descriptions of moderate to severe apnoea give, chosen once (not tuned).
"""

from __future__ import annotations

import zlib

import numpy as np
from numpy.typing import NDArray

from models.stages import reduce_stages

__all__ = ["APNOEA_CYCLE_S", "APNOEA_STRETCH_S", "APNOEA_SWING_BPM", "apnoea_heart_rate",
           "apnoea_seed"]

F64 = NDArray[np.float64]

#: Length of one event plus its arousal, drawn per apnoeic stretch.
APNOEA_CYCLE_S = (30.0, 90.0)
#: Heart-rate swing, peak to peak, drawn per apnoeic stretch.
APNOEA_SWING_BPM = (4.0, 12.0)
#: Length of the stretches the night is cut into.
APNOEA_STRETCH_S = (600.0, 2400.0)
#: Share of a cycle the heart rate falls (the event); it rises over the rest (the arousal).
_FALL = 0.75


def apnoea_seed(night_id: str) -> int:
    """A fixed seed per night, so that a night's simulated apnoea is the same every run."""
    return zlib.crc32(night_id.encode())


def _cycle(phase: F64, swing: float) -> F64:
    """Heart-rate offset (bpm) at ``phase`` in [0, 1) of a cycle: slow fall, fast rise."""
    falling = swing / 2 - swing * phase / _FALL
    rising = -swing / 2 + swing * (phase - _FALL) / (1 - _FALL)
    return np.where(phase < _FALL, falling, rising)


def apnoea_heart_rate(
    t_s: F64, bpm: F64, stages: NDArray[np.int8], rng: np.random.Generator, *,
    share: float = 0.6, epoch_s: float = 30.0,
) -> F64:
    """The heart rate with the cyclic swings of sleep apnoea added during sleep.

    Parameters
    ----------
    t_s, bpm : ndarray of float64, shape (n,)
        Heart-rate samples: seconds since the start of epoch 0, and bpm.
    stages : ndarray of int8, shape (n_epochs,)
        Canonical stages of the night's epochs (:class:`models.stages.Stage`).
    rng : numpy.random.Generator
        Draws the stretches, cycle lengths and swings.
    share : float
        Probability that a stretch is apnoeic.
    epoch_s : float
        Epoch length in s.

    Returns
    -------
    ndarray of float64, shape (n,)
        A new array; samples outside sleep epochs are unchanged.
    """
    if t_s.shape != bpm.shape:
        msg = f"heart-rate times {t_s.shape} and values {bpm.shape} must have one shape"
        raise ValueError(msg)
    out = np.array(bpm, dtype=np.float64)
    if t_s.size == 0 or stages.size == 0:
        return out
    epoch = np.clip((t_s // epoch_s).astype(np.int64), 0, stages.size - 1)
    asleep = (reduce_stages(stages, 2) == 1)[epoch] & (t_s >= 0)
    start, end = 0.0, float(t_s.max())
    while start <= end:
        length = rng.uniform(*APNOEA_STRETCH_S)
        if rng.random() < share:
            cycle, swing = rng.uniform(*APNOEA_CYCLE_S), rng.uniform(*APNOEA_SWING_BPM)
            m = asleep & (t_s >= start) & (t_s < start + length)
            out[m] += _cycle(((t_s[m] - start) / cycle) % 1.0, swing)
        start += length
    return out
