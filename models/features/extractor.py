"""Causal, incremental per-epoch feature extraction: one code path for the stream and training.

:class:`FeatureExtractor` holds one subject's state. Samples arrive in chunks with
:meth:`~FeatureExtractor.add_samples`; :meth:`~FeatureExtractor.close_epoch` closes epoch
``k = n_closed`` (``[k * epoch_s, (k + 1) * epoch_s)`` since the session start) and returns its
feature row, computed from samples with ``t < (k + 1) * epoch_s`` only. Samples are held
pending until the epoch they fall in closes, so the result does not depend on how the samples
were chunked; :func:`compute_features` (training) feeds a whole night epoch by epoch through the
very same methods, so batch and stream agree bit for bit by construction.

The state round-trips through :meth:`~FeatureExtractor.to_state` (a JSON-able dict of lists,
floats, ints and strings; exact, because floats survive ``json`` through ``repr``) and
:meth:`~FeatureExtractor.from_state`; it keeps only the samples of the longest past window,
the night-so-far histograms and running means, and the pending samples of the open epoch.

Ordering: chunks of one input arrive in time order. A chunk that reaches back before the end
of the last closed epoch is rejected (``ValueError``; the stream dead-letters it); one that
reaches back only inside the open epoch is merged in time order. Raw acceleration is the
exception: it runs through the causal count algorithm (:mod:`models.features.counts`) as soon
as it arrives, so the state never holds raw samples of the open epoch, and it must therefore
never go back in time.

Families and the inputs they take (see :mod:`models.features.registry` for the columns):
``"wearable"``: ``heart_rate`` and one activity source, ``activity_counts`` or
``acceleration``; ``"cardio"``: ``rr``. A family's input that never arrives simply leaves its
features at their neutral values with coverage 0.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ingestors.types import EPOCH_S, require_aware
from models.features import registry as reg
from models.features._inputs import Pending, clean_chunk
from models.features.activity import ActivityChannel
from models.features.clock import clock_features, tz_from_state, tz_to_state
from models.features.counts import CountState
from models.features.heart_rate import HeartRateChannel
from models.features.hrv import RRChannel
from models.features.night import NightRelative

__all__ = ["MODALITIES", "FeatureExtractor", "Modality", "compute_features"]

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]

Modality = Literal["heart_rate", "activity_counts", "acceleration", "rr"]

#: Inputs each family accepts.
MODALITIES: dict[str, tuple[str, ...]] = {
    "wearable": ("heart_rate", "activity_counts", "acceleration"),
    "cardio": ("rr",),
}
_STATE_VERSION = 1
#: Columns of the RR channel's output: what the night-relative group reads.
_RR_NAMES = tuple(
    n for g in ("hrv_time", "hrv_freq", "hrv_slow", "hrv_resp") for n in reg.FEATURE_GROUPS[g]
)
_REL_INDEX = np.array([_RR_NAMES.index(n) for n in reg.NIGHT_REL_BASE], dtype=np.int64)
_REL_COVERAGE = _RR_NAMES.index(f"rr_cov_{reg.NIGHT_REL_COVERAGE_WINDOW_S:g}s")
_LIMIT = 1.0e6  # last-resort clip: features of physical inputs stay far inside it


class FeatureExtractor:
    """Per-subject causal feature extractor of one model family.

    Parameters
    ----------
    family : {"wearable", "cardio"}
        Which model family's columns to compute (:func:`~registry.feature_names`).
    session_start : datetime
        Timezone-aware time of ``t = 0``; epoch ``k`` covers ``[k * epoch_s, (k+1) * epoch_s)``.
    start_is_nominal : bool
        True when ``session_start`` is not a real clock (then ``clock_known`` is 0).
    epoch_s : float
        Epoch length in s; for ``"wearable"`` a multiple of the 15-s count period.
    """

    def __init__(
        self,
        family: str,
        session_start: datetime,
        start_is_nominal: bool = False,
        epoch_s: float = EPOCH_S,
    ) -> None:
        self.names = reg.feature_names(family)
        if family not in MODALITIES:
            msg = (
                f"FeatureExtractor computes the {sorted(MODALITIES)} features from their "
                f"samples; got family {family!r}. psg features come per EEG channel from the "
                "EEG measures: use models.features.psg.PsgFeatures."
            )
            raise ValueError(msg)
        self.family = family
        self.session_start = require_aware(session_start, "session_start")
        self.start_is_nominal = bool(start_is_nominal)
        if not (isinstance(epoch_s, int | float) and math.isfinite(epoch_s) and epoch_s > 0):
            msg = f"`epoch_s` must be a finite number of seconds > 0; got {epoch_s!r}"
            raise ValueError(msg)
        if family == "wearable" and epoch_s % reg.COUNT_PERIOD_S != 0:
            msg = (
                f"wearable `epoch_s` must be a multiple of the {reg.COUNT_PERIOD_S:g}-s activity "
                f"count period; got {epoch_s}"
            )
            raise ValueError(msg)
        self.epoch_s = float(epoch_s)
        self.n_closed = 0
        self.activity_source: str | None = None
        wearable = family == "wearable"
        self._pending = {m: Pending() for m in ("heart_rate", "activity", "rr", "acceleration")}
        self._counts = CountState()
        self._hr = HeartRateChannel(self.epoch_s) if wearable else None
        self._act = ActivityChannel(self.epoch_s) if wearable else None
        self._rr = None if wearable else RRChannel()
        self._night = None if wearable else NightRelative(_REL_INDEX.size, "cardio")

    @property
    def n_features(self) -> int:
        """Number of columns of a feature row."""
        return len(self.names)

    @property
    def open_epoch_end_s(self) -> float:
        """End (s since the session start) of the epoch the next :meth:`close_epoch` closes."""
        return (self.n_closed + 1) * self.epoch_s

    def add_samples(
        self,
        modality: str,
        t_s: ArrayLike,
        values: ArrayLike,
        beat_types: ArrayLike | None = None,
    ) -> None:
        """Add a chunk of samples of one input.

        Parameters
        ----------
        modality : {"heart_rate", "activity_counts", "acceleration", "rr"}
            Which input: bpm, 15-s counts (stamped at their start), acceleration in g, or
            RR intervals in s (stamped at the beat that ends them).
        t_s : array-like of float, shape (n,)
            Times in s since the session start, non-decreasing within the chunk.
        values : array-like of float, shape (n,) or, for acceleration, (n, 3)
            The values; acceleration columns x, y, z (z perpendicular to the watch face;
            only z is used) or z alone.
        beat_types : array-like of str or int, shape (n,), optional
            Beat types of ``rr`` samples (``"N"``, ``"S"``, ``"V"``, ``"F"``, ``"Q"`` ... or
            codes, 0 = normal); None means all normal.

        Raises
        ------
        ValueError
            For a modality the family does not take, a second activity source, malformed
            arrays, or samples older than the end of the last closed epoch (late data: the
            stream dead-letters the chunk). Acceleration must also not go back in time.
        """
        self._check_modality(modality)
        t, v, k = clean_chunk(modality, t_s, values, beat_types)
        if t.size == 0:
            return
        closed_end = self.n_closed * self.epoch_s
        if self.n_closed and t[0] < closed_end:
            msg = (
                f"{modality} samples from t={t[0]:.3f} s to t={t[-1]:.3f} s arrive after epoch "
                f"{self.n_closed - 1} closed at {closed_end:.3f} s; samples before that are "
                "late and cannot be added (send the chunk to the dead-letter topic)"
            )
            raise ValueError(msg)
        if modality == "acceleration":
            last = self._pending["acceleration"].t
            newest = last[-1] if last.size else self._counts.last_t
            if newest is not None and t[0] < newest:
                msg = (
                    f"acceleration samples must arrive in time order: chunk starts at "
                    f"t={t[0]:.3f} s, before t={newest:.3f} s already received"
                )
                raise ValueError(msg)
        self._enqueue(modality, t, v, k)

    def _check_modality(self, modality: str) -> None:
        if modality not in MODALITIES[self.family]:
            msg = (
                f"{self.family!r} features take {list(MODALITIES[self.family])}; got "
                f"modality {modality!r}"
            )
            raise ValueError(msg)
        is_activity = modality in ("activity_counts", "acceleration")
        if is_activity and self.activity_source not in (None, modality):
            msg = (
                f"this extractor already takes activity from {self.activity_source!r}; "
                f"got {modality!r} too. Feed one activity source per subject."
            )
            raise ValueError(msg)

    def _enqueue(self, modality: str, t: F64, v: F64, k: U8) -> None:
        if modality in ("activity_counts", "acceleration"):
            self.activity_source = modality
        key = "activity" if modality == "activity_counts" else modality
        self._pending[key].push(t, v, k)
        if modality == "acceleration":
            self._drain_acceleration()

    def _drain_acceleration(self) -> None:
        """Run the count algorithm over acceleration of the open epoch (causal, streaming)."""
        t, z, _ = self._pending["acceleration"].pop_before(self.open_epoch_end_s)
        if t.size:
            self._push_counts(*self._counts.process(t, z))

    def _push_counts(self, t: F64, c: F64) -> None:
        if t.size:
            self._pending["activity"].push(t, c, np.zeros(t.size, np.uint8))

    def close_epoch(self) -> F32:
        """Close epoch ``n_closed`` and return its feature row.

        Returns
        -------
        ndarray of float32, shape (n_features,)
            Finite feature values in the order of :attr:`names`.
        """
        end = self.open_epoch_end_s
        parts: list[F64] = []
        if self._hr is not None and self._act is not None:
            self._drain_acceleration()
            self._push_counts(*self._counts.close(end))
            t, v, _ = self._pending["heart_rate"].pop_before(end)
            parts.append(self._hr.step(t, v, end))
            t, v, _ = self._pending["activity"].pop_before(end)
            parts.append(self._act.step(t, v, end))
        elif self._rr is not None and self._night is not None:
            t, v, k = self._pending["rr"].pop_before(end)
            rr = self._rr.step(t, v, k, end)
            parts.append(rr)
            parts.append(self._night.step(rr[_REL_INDEX], float(rr[_REL_COVERAGE])))
        parts.append(
            clock_features(self.session_start, self.start_is_nominal, self.n_closed, self.epoch_s)
        )
        values = np.concatenate(parts)
        if not np.all(np.abs(values) <= _LIMIT):  # NaN fails too
            values = np.clip(np.nan_to_num(values, nan=0.0), -_LIMIT, _LIMIT)
        row = values.astype(np.float32)
        self.n_closed += 1
        if self._hr is not None:
            self._drain_acceleration()
        return row

    def to_state(self) -> dict[str, Any]:
        """The whole extractor state as a compact JSON-able dict (see :meth:`from_state`)."""
        state: dict[str, Any] = {
            "state_version": _STATE_VERSION,
            "feature_version": reg.feature_version(self.family),
            "family": self.family,
            "session_start_utc": self.session_start.astimezone(UTC).isoformat(),
            "tz": tz_to_state(self.session_start),
            "start_is_nominal": self.start_is_nominal,
            "epoch_s": self.epoch_s,
            "n_closed": self.n_closed,
            "activity_source": self.activity_source,
            "pending": {
                m: p.to_state(m == "rr") for m, p in self._pending.items() if p.t.size
            },
        }
        if self._hr is not None and self._act is not None:
            state["heart_rate"] = self._hr.to_state()
            state["activity"] = self._act.to_state()
            state["counts"] = self._counts.to_state()
        elif self._rr is not None and self._night is not None:
            state["rr"] = self._rr.to_state()
            state["night_rel"] = self._night.to_state()
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureExtractor:
        """Rebuild an extractor from :meth:`to_state` output (e.g. after ``json`` round trip).

        Raises
        ------
        ValueError
            If the state was written by another feature version or state layout.
        """
        family = str(state.get("family"))
        if family not in MODALITIES:
            msg = (f"extractor state has family {family!r}; expected one of "
                   f"{sorted(MODALITIES)}. The state is corrupt or from another program.")
            raise ValueError(msg)
        for key, expected in (
            ("state_version", _STATE_VERSION), ("feature_version", reg.feature_version(family))
        ):
            if state.get(key) != expected:
                msg = (
                    f"extractor state has {key} {state.get(key)!r}, this code writes "
                    f"{expected!r}; start the subject's features afresh"
                )
                raise ValueError(msg)
        start = datetime.fromisoformat(state["session_start_utc"])
        start = start.astimezone(tz_from_state(state["tz"]))
        new = cls(state["family"], start, state["start_is_nominal"], state["epoch_s"])
        new.n_closed = int(state["n_closed"])
        new.activity_source = state["activity_source"]
        for m, p in state["pending"].items():
            new._pending[m] = Pending.from_state(p)
        if new._hr is not None:
            new._hr = HeartRateChannel.from_state(state["heart_rate"], new.epoch_s)
            new._act = ActivityChannel.from_state(state["activity"], new.epoch_s)
            new._counts = CountState.from_state(state["counts"])
        else:
            new._rr = RRChannel.from_state(state["rr"])
            new._night = NightRelative.from_state(state["night_rel"], "cardio")
        return new


def compute_features(
    family: str,
    session_start: datetime,
    n_epochs: int,
    *,
    heart_rate: tuple[ArrayLike, ArrayLike] | None = None,
    activity_counts: tuple[ArrayLike, ArrayLike] | None = None,
    acceleration: tuple[ArrayLike, ArrayLike] | None = None,
    rr: tuple[ArrayLike, ArrayLike, ArrayLike | None] | None = None,
    start_is_nominal: bool = False,
    epoch_s: float = EPOCH_S,
) -> F32:
    """Feature rows of a whole session, exactly as the stream would compute them.

    Each input is split at the epoch ends and fed through a :class:`FeatureExtractor`
    epoch by epoch, so row ``k`` equals what ``close_epoch`` returns for epoch ``k`` however
    the same samples are chunked in the stream. Samples at or after
    ``n_epochs * epoch_s`` are ignored.

    Parameters
    ----------
    family : {"wearable", "cardio"}
        Model family.
    session_start : datetime
        Timezone-aware time of ``t = 0``.
    n_epochs : int
        Number of epochs (rows) to compute.
    heart_rate : (t_s, bpm), optional
        Heart-rate samples, times non-decreasing.
    activity_counts : (t_s, counts), optional
        15-s activity counts stamped at their start.
    acceleration : (t_s, acc_g), optional
        Raw acceleration in g, shape (n, 3) (x, y, z) or (n,) (z).
    rr : (t_s, rr_s, beat_types), optional
        RR intervals at the times of the beats ending them; ``beat_types`` may be None.
    start_is_nominal : bool
        True when ``session_start`` is not a real clock.
    epoch_s : float
        Epoch length in s.

    Returns
    -------
    ndarray of float32, shape (n_epochs, n_features)
    """
    if isinstance(n_epochs, bool) or not isinstance(n_epochs, int | np.integer) or n_epochs < 0:
        msg = f"`n_epochs` must be an integer >= 0; got {n_epochs!r}"
        raise ValueError(msg)
    if activity_counts is not None and acceleration is not None:
        msg = "give `activity_counts` or `acceleration`, not both: one activity source per subject"
        raise ValueError(msg)
    ex = FeatureExtractor(family, session_start, start_is_nominal, epoch_s)
    given: dict[str, tuple[Any, ...] | None] = {
        "heart_rate": heart_rate, "activity_counts": activity_counts,
        "acceleration": acceleration, "rr": rr,
    }
    ends = np.arange(1, n_epochs + 1) * ex.epoch_s
    feeds = []
    for modality, data in given.items():
        if data is None:
            continue
        ex._check_modality(modality)
        types = data[2] if modality == "rr" and len(data) > 2 else None
        t, v, k = clean_chunk(modality, data[0], data[1], types)
        feeds.append((modality, t, v, k, np.searchsorted(t, ends)))
    rows = np.empty((n_epochs, ex.n_features), dtype=np.float32)
    for e in range(n_epochs):
        for modality, t, v, k, cut in feeds:
            a = int(cut[e - 1]) if e else 0
            b = int(cut[e])
            if b > a:
                ex._enqueue(modality, t[a:b], v[a:b], k[a:b])
        rows[e] = ex.close_epoch()
    return rows.astype(np.float32, copy=False)
