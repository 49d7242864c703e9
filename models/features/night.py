"""Night-relative features: each column against its own night so far (causal per-subject norm).

Resting heart-rate variability differs several-fold between people (age, fitness, apnoea,
medication), so an absolute SDNN or HF power says little about one person's stage. The
offline nets remove these offsets with whole-night statistics; a causal model may only use
the night so far. :class:`NightRelative` keeps, per column, the running mean and variance
(Welford) over the epochs whose coverage is good enough, and gives::

    rel = clip((x - mean) / sqrt(var + NIGHT_REL_VAR_FLOOR), -NIGHT_REL_CLIP, NIGHT_REL_CLIP)

with the closing epoch included in the statistics. An epoch below the coverage threshold, and
every epoch until ``NIGHT_REL_MIN_EPOCHS`` good ones have been seen, gets 0 (the night mean).
The update runs once per closed epoch in the same order in training and in the stream, so both
give identical values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.features import registry as reg
from models.features._state import pack, unpack

__all__ = ["NightRelative"]

F64 = NDArray[np.float64]


class NightRelative:
    """Running per-column night statistics and the relative values of the closing epoch.

    Parameters
    ----------
    n_columns : int
        Number of columns made relative.
    """

    def __init__(self, n_columns: int) -> None:
        if n_columns < 1:
            msg = f"NightRelative needs at least one column; got {n_columns}"
            raise ValueError(msg)
        self.n = 0
        self.mean = np.zeros(n_columns)
        self.m2 = np.zeros(n_columns)

    def step(self, x: F64, coverage: float) -> F64:
        """Add the closing epoch's values (when covered) and return them night-relative.

        Parameters
        ----------
        x : ndarray of float64, shape (n_columns,)
            The epoch's values; non-finite values count as 0.
        coverage : float
            The epoch's input coverage (0..1); below ``NIGHT_REL_MIN_COVERAGE`` the epoch
            neither enters the statistics nor gets a relative value.

        Returns
        -------
        ndarray of float64, shape (n_columns,)
        """
        if x.shape != self.mean.shape:
            msg = f"NightRelative expects {self.mean.size} values; got shape {x.shape}"
            raise ValueError(msg)
        if not coverage >= reg.NIGHT_REL_MIN_COVERAGE:  # NaN coverage: not covered
            return np.zeros_like(self.mean)
        v = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        self.n += 1
        delta = v - self.mean
        self.mean = self.mean + delta / self.n
        self.m2 = self.m2 + delta * (v - self.mean)
        if self.n < reg.NIGHT_REL_MIN_EPOCHS:
            return np.zeros_like(self.mean)
        rel = (v - self.mean) / np.sqrt(self.m2 / self.n + reg.NIGHT_REL_VAR_FLOOR)
        return np.clip(rel, -reg.NIGHT_REL_CLIP, reg.NIGHT_REL_CLIP)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state (exact)."""
        return {"n": self.n, "mean": pack(self.mean), "m2": pack(self.m2)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NightRelative:
        """Rebuild from :meth:`to_state` output."""
        mean, m2 = unpack(state["mean"]), unpack(state["m2"])
        if mean.shape != m2.shape or mean.size < 1:
            msg = (f"night-relative state has {mean.size} means and {m2.size} sums of squares; "
                   "the state is corrupt")
            raise ValueError(msg)
        new = cls(mean.size)
        new.n, new.mean, new.m2 = int(state["n"]), mean, m2
        return new
