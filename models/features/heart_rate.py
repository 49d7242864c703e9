"""Heart-rate features: level, variability and trend over past windows, night-normalised.

Input: heart-rate samples (bpm) at irregular times, e.g. an Apple Watch every ~5 s that may
stop for long stretches. For each closing epoch ``[k * epoch_s, (k + 1) * epoch_s)`` and each
window ``w`` of :data:`~models.features.registry.HR_WINDOWS_S` (1, 2.5, 5, 10, 30 and 60 min
ending at the epoch end; the long windows carry the slow heart-rate trends of deep sleep and
REM), from the samples with ``end - w <= t < end`` only:

* ``hr_level_w``: (mean bpm - night median) / night scale;
* ``hr_std_w``: standard deviation (ddof 0) / night scale;
* ``hr_sdiff_w``: RMS of differences between successive samples at most 15 s apart / scale;
* ``hr_slope_w``: least-squares slope in bpm per minute / night scale;
* ``hr_cov_w``: samples present / samples expected at one per 5 s, capped at 1;

and ``hr_cov_epoch``, the same coverage for the closing epoch alone.

*Night so far*: every valid sample up to the epoch end enters a histogram of 1-bpm bins; the
night median and the robust scale ``max(IQR / 1.349, 3 bpm)`` come from it (quantiles
interpolated inside bins). The median and IQR resist artefacts; the 3-bpm floor keeps early-
night and very steady nights from blowing values up. *Missing data*: samples outside 25-250 bpm
or not finite are dropped. A window with no sample gives 0 for level, spread and slope (the
night-typical value) and coverage 0; spread and slope need two samples, successive
differences a pair at most 15 s apart. Every output is finite.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.features import _kernels as k
from models.features import registry as reg
from models.features._state import pack, unpack

__all__ = ["HeartRateChannel", "NightHistogram", "clean_heart_rate"]

F64 = NDArray[np.float64]


def clean_heart_rate(t_s: F64, bpm: F64) -> tuple[F64, F64]:
    """Drop samples that are not finite or outside :data:`~registry.HR_VALID_BPM`."""
    lo, hi = reg.HR_VALID_BPM
    keep = np.isfinite(bpm) & (bpm >= lo) & (bpm <= hi)
    return t_s[keep], bpm[keep]


class NightHistogram:
    """Running 1-bpm histogram of the night so far, with median and robust scale."""

    def __init__(self) -> None:
        self.counts = np.zeros(reg.NIGHT_HIST_BINS, dtype=np.int64)
        self.n = 0

    def add(self, bpm: F64) -> None:
        """Count new heart-rate values (bpm)."""
        if bpm.size:
            k.hist_add(self.counts, bpm, reg.NIGHT_HIST_LO_BPM, 1.0)
            self.n += int(bpm.size)

    def centre_scale(self) -> tuple[float, float]:
        """Night median and ``max(IQR / 1.349, floor)`` in bpm; ``(0, floor)`` when empty."""
        floor = reg.NIGHT_SCALE_FLOOR_BPM
        centre, scale = k.hist_centre_scale(self.counts, reg.NIGHT_HIST_LO_BPM, 1.0, floor)
        return centre, scale

    def to_state(self) -> dict[str, Any]:
        """Compact JSON-able state: the non-empty span of bins."""
        nz = np.flatnonzero(self.counts)
        if nz.size == 0:
            return {"first": 0, "counts": []}
        return {"first": int(nz[0]), "counts": self.counts[nz[0] : nz[-1] + 1].tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NightHistogram:
        """Rebuild from :meth:`to_state` output."""
        new = cls()
        span = np.asarray(state["counts"], dtype=np.int64)
        first = int(state["first"])
        new.counts[first : first + span.size] = span
        new.n = int(new.counts.sum())
        return new


class HeartRateChannel:
    """State and per-epoch features of the ``heart_rate`` group.

    Parameters
    ----------
    epoch_s : float
        Epoch length in s (the ``hr_cov_epoch`` window).
    """

    def __init__(self, epoch_s: float) -> None:
        self.epoch_s = float(epoch_s)
        self.windows = np.array([*reg.HR_WINDOWS_S, self.epoch_s])
        self.expected = self.windows / reg.HR_EXPECTED_PERIOD_S
        self.t = np.empty(0)
        self.v = np.empty(0)
        self.night = NightHistogram()

    def step(self, t_s: F64, bpm: F64, end_s: float) -> F64:
        """Consume the cleaned samples of the closing epoch; return its features.

        Parameters
        ----------
        t_s, bpm : ndarray of float64, shape (n,)
            The epoch's samples (all ``< end_s``), sorted, cleaned.
        end_s : float
            End of the closing epoch in s since the session start.

        Returns
        -------
        ndarray of float64, shape (n_heart_rate_features,)
        """
        if t_s.size:
            self.t = np.concatenate([self.t, t_s])
            self.v = np.concatenate([self.v, bpm])
            self.night.add(bpm)
        st = k.window_stats(self.t, self.v, end_s, self.windows, reg.HR_MAX_PAIR_GAP_S)
        keep = int(np.searchsorted(self.t, end_s - self.windows.max()))
        self.t, self.v = self.t[keep:], self.v[keep:]
        centre, scale = self.night.centre_scale()
        return k.hr_assemble(st, centre, scale, self.expected)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: samples of the longest window and the night histogram."""
        return {"t": pack(self.t), "v": pack(self.v), "night": self.night.to_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any], epoch_s: float) -> HeartRateChannel:
        """Rebuild from :meth:`to_state` output."""
        new = cls(epoch_s)
        new.t = unpack(state["t"])
        new.v = unpack(state["v"])
        new.night = NightHistogram.from_state(state["night"])
        return new
