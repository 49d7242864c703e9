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
give identical values. EEG band powers differ between people, montages and amplifiers in the
same way, so the psg family keeps one such statistic per EEG channel, with its own constants
(``PSG_NIGHT_*``; an epoch counts when the channel has measures in it).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from models.features import registry as reg
from models.features._state import pack, unpack

__all__ = ["NIGHT_RULES", "NightRelative", "NightRule"]

F64 = NDArray[np.float64]


class NightRule(NamedTuple):
    """When an epoch counts, and how its relative value is formed."""

    min_coverage: float
    min_epochs: int
    var_floor: float
    clip: float


#: The rule of each family with night-relative features.
NIGHT_RULES: dict[str, NightRule] = {
    "cardio": NightRule(reg.NIGHT_REL_MIN_COVERAGE, reg.NIGHT_REL_MIN_EPOCHS,
                        reg.NIGHT_REL_VAR_FLOOR, reg.NIGHT_REL_CLIP),
    # an EEG channel-epoch counts when it has measures: coverage 1, else 0
    "psg": NightRule(1.0, reg.PSG_NIGHT_MIN_EPOCHS, reg.PSG_NIGHT_VAR_FLOOR, reg.PSG_NIGHT_CLIP),
}


class NightRelative:
    """Running per-column night statistics and the relative values of the closing epoch.

    Parameters
    ----------
    n_columns : int
        Number of columns made relative.
    family : {"cardio", "psg"}
        Whose constants apply (:data:`NIGHT_RULES`).
    """

    def __init__(self, n_columns: int, family: str) -> None:
        if n_columns < 1:
            msg = f"NightRelative needs at least one column; got {n_columns}"
            raise ValueError(msg)
        if family not in NIGHT_RULES:
            msg = f"night-relative features exist for {sorted(NIGHT_RULES)}; got {family!r}"
            raise ValueError(msg)
        self.family, self.rule = family, NIGHT_RULES[family]
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
            The epoch's input coverage (0..1); below the rule's ``min_coverage`` the epoch
            neither enters the statistics nor gets a relative value.

        Returns
        -------
        ndarray of float64, shape (n_columns,)
        """
        if x.shape != self.mean.shape:
            msg = f"NightRelative expects {self.mean.size} values; got shape {x.shape}"
            raise ValueError(msg)
        rule = self.rule
        if not coverage >= rule.min_coverage:  # NaN coverage: not covered
            return np.zeros_like(self.mean)
        v = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        self.n += 1
        delta = v - self.mean
        self.mean = self.mean + delta / self.n
        self.m2 = self.m2 + delta * (v - self.mean)
        if self.n < rule.min_epochs:
            return np.zeros_like(self.mean)
        rel = (v - self.mean) / np.sqrt(self.m2 / self.n + rule.var_floor)
        return np.clip(rel, -rule.clip, rule.clip)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state (exact)."""
        return {"n": self.n, "mean": pack(self.mean), "m2": pack(self.m2)}

    @classmethod
    def from_state(cls, state: dict[str, Any], family: str) -> NightRelative:
        """Rebuild from :meth:`to_state` output of a ``family`` statistic."""
        mean, m2 = unpack(state["mean"]), unpack(state["m2"])
        if mean.shape != m2.shape or mean.size < 1:
            msg = (f"night-relative state has {mean.size} means and {m2.size} sums of squares; "
                   "the state is corrupt")
            raise ValueError(msg)
        new = cls(mean.size, family)
        new.n, new.mean, new.m2 = int(state["n"]), mean, m2
        return new
