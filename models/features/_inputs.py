"""Input handling of the extractor: chunk validation and the pending-sample buffers."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.features._state import pack, unpack
from models.features.activity import clean_counts
from models.features.counts import MAX_ABS_G
from models.features.heart_rate import clean_heart_rate
from models.features.hrv import beat_codes, clean_rr

__all__ = ["Pending", "clean_chunk"]

F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]


class Pending:
    """Samples waiting for their epoch to close: times, values, beat codes; kept sorted."""

    def __init__(self) -> None:
        self.t = np.empty(0)
        self.v = np.empty(0)
        self.k = np.empty(0, dtype=np.uint8)

    def push(self, t: F64, v: F64, k: U8) -> None:
        """Add a cleaned chunk; a chunk reaching back inside the pending span is merged."""
        if self.t.size == 0:
            self.t, self.v, self.k = t, v, k
            return
        t_all = np.concatenate([self.t, t])
        v_all = np.concatenate([self.v, v])
        k_all = np.concatenate([self.k, k])
        if t[0] < self.t[-1]:  # late within the open epoch: merge, arrival order on ties
            order = np.argsort(t_all, kind="stable")
            t_all, v_all, k_all = t_all[order], v_all[order], k_all[order]
        self.t, self.v, self.k = t_all, v_all, k_all

    def pop_before(self, end_s: float) -> tuple[F64, F64, U8]:
        """Remove and return the samples with ``t < end_s``."""
        if self.t.size == 0:
            return self.t, self.v, self.k
        i = int(np.searchsorted(self.t, end_s))
        out = (self.t[:i], self.v[:i], self.k[:i])
        self.t, self.v, self.k = self.t[i:], self.v[i:], self.k[i:]
        return out

    def to_state(self, with_codes: bool) -> dict[str, Any]:
        """JSON-able lists (beat codes only for rr)."""
        state: dict[str, Any] = {"t": pack(self.t), "v": pack(self.v)}
        if with_codes:
            state["k"] = self.k.tolist()
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Pending:
        """Rebuild from :meth:`to_state` output."""
        new = cls()
        new.t = unpack(state["t"])
        new.v = unpack(state["v"])
        new.k = np.asarray(state.get("k", np.zeros(new.t.size)), dtype=np.uint8)
        return new


def _as_1d(name: str, modality: str, x: ArrayLike) -> F64:
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim != 1:
        msg = f"{modality} `{name}` must be 1-D; got shape {arr.shape}"
        raise ValueError(msg)
    return arr


def clean_chunk(
    modality: str, t_s: ArrayLike, values: ArrayLike, beat_types: ArrayLike | None
) -> tuple[F64, F64, U8]:
    """Validate one chunk and drop unusable samples; returns contiguous (t, value, code)."""
    t = _as_1d("t_s", modality, t_s)
    if not np.all(np.isfinite(t)):
        msg = f"{modality} `t_s` must be finite; got {int(np.sum(~np.isfinite(t)))} non-finite"
        raise ValueError(msg)
    if t.size > 1 and np.any(np.diff(t) < 0):
        i = int(np.argmax(np.diff(t) < 0))
        msg = (
            f"{modality} `t_s` must be non-decreasing within a chunk; t[{i + 1}]={t[i + 1]} s "
            f"follows t[{i}]={t[i]} s. Sort the chunk by time."
        )
        raise ValueError(msg)
    raw = np.asarray(values, dtype=np.float64)
    if modality == "acceleration" and raw.ndim == 2 and raw.shape[1] == 3:
        raw = raw[:, 2]  # the count algorithm uses z, perpendicular to the watch face
    v = _as_1d("values", modality, raw)
    if v.shape != t.shape:
        shape = "(n, 3) or (n,)" if modality == "acceleration" else "(n,)"
        msg = f"{modality} `values` must have shape {shape} with n = {t.size}; got {raw.shape}"
        raise ValueError(msg)
    if modality != "rr" and beat_types is not None:
        msg = f"`beat_types` belongs to rr samples only; got it with {modality}"
        raise ValueError(msg)
    if modality == "rr":
        return clean_rr(t, v, beat_codes(beat_types, t.size))
    if modality == "heart_rate":
        t, v = clean_heart_rate(t, v)
    elif modality == "activity_counts":
        t, v = clean_counts(t, v)
    else:
        keep = np.abs(v) <= MAX_ABS_G  # False for NaN too
        t, v = t[keep], v[keep]
    return t, v, np.zeros(t.size, dtype=np.uint8)
