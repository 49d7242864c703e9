"""Activity features from 15-s activity counts (given, or computed from raw acceleration).

Input: one count per 15-s count epoch, stamped at the count epoch's start, as in the
Sleep-Accel release (``<id>_cleaned_counts.out``) or as produced by
:mod:`models.features.counts`. A count is attributed to the time of its stamp. For each
closing epoch and each window ``w`` (the closing epoch itself, then 2.5, 5, 10, 30 and 60 min
ending at the epoch end), from the counts with ``end - w <= t < end`` only:

* ``act_log_mean_w``: ``log1p`` of the mean count;
* ``act_log_max_w``: ``log1p`` of the largest count;
* ``act_frac_active_w``: fraction of counts above 0 (the algorithm's offset already makes 0
  "no movement");
* ``act_cov_w``: counts present / counts expected (one per 15 s), capped at 1;

and ``act_log_min_since_move``: ``log1p`` of the minutes from the stamp of the last count above
0 (or, before any movement, of the first count) to the epoch end; 0 before the first count.
Counts that are negative or not finite are dropped. Empty windows give 0 everywhere.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.features import _kernels as k
from models.features import registry as reg
from models.features._state import pack, unpack

__all__ = ["ActivityChannel", "clean_counts"]

F64 = NDArray[np.float64]


def clean_counts(t_s: F64, counts: F64) -> tuple[F64, F64]:
    """Drop counts that are negative or not finite."""
    keep = np.isfinite(counts) & (counts >= 0.0)
    return t_s[keep], counts[keep]


class ActivityChannel:
    """State and per-epoch features of the ``activity`` group.

    Parameters
    ----------
    epoch_s : float
        Epoch length in s (the first window).
    """

    def __init__(self, epoch_s: float) -> None:
        self.windows = np.array([float(epoch_s), *reg.ACT_WINDOWS_S])
        self.expected = self.windows / reg.COUNT_PERIOD_S
        self.t = np.empty(0)
        self.v = np.empty(0)
        self.first_t: float | None = None
        self.last_move_t: float | None = None

    def step(self, t_s: F64, counts: F64, end_s: float) -> F64:
        """Consume the cleaned counts of the closing epoch; return its features.

        Parameters
        ----------
        t_s, counts : ndarray of float64, shape (n,)
            Count stamps (s, all ``< end_s``, sorted) and counts.
        end_s : float
            End of the closing epoch in s since the session start.

        Returns
        -------
        ndarray of float64, shape (n_activity_features,)
        """
        if t_s.size:
            self.t = np.concatenate([self.t, t_s])
            self.v = np.concatenate([self.v, counts])
            if self.first_t is None:
                self.first_t = float(t_s[0])
            moving = np.flatnonzero(counts > 0.0)
            if moving.size:
                self.last_move_t = float(t_s[moving[-1]])
        st = k.window_stats(self.t, self.v, end_s, self.windows, math.inf)
        keep = int(np.searchsorted(self.t, end_s - self.windows.max()))
        self.t, self.v = self.t[keep:], self.v[keep:]
        ref = self.last_move_t if self.last_move_t is not None else self.first_t
        return k.act_assemble(st, self.expected, -1.0 if ref is None else end_s - ref)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: counts of the longest window and the movement bookkeeping."""
        return {
            "t": pack(self.t), "v": pack(self.v),
            "first_t": self.first_t, "last_move_t": self.last_move_t,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], epoch_s: float) -> ActivityChannel:
        """Rebuild from :meth:`to_state` output."""
        new = cls(epoch_s)
        new.t = unpack(state["t"])
        new.v = unpack(state["v"])
        new.first_t = None if state["first_t"] is None else float(state["first_t"])
        new.last_move_t = None if state["last_move_t"] is None else float(state["last_move_t"])
        return new
