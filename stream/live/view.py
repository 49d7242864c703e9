"""The live page's store: what the stream produced per subject, kept compact in memory.

:class:`LiveView` holds, for every subject, its latest ``sessions_per_subject`` sessions
(by start time), each as fixed-width numpy arrays indexed by epoch number: the causal and
offline stage, their probabilities, whether the epoch had data, and the inputs of the epoch
(from the causal events' ``inputs``: heart rate and activity, or for an EEG session the
channels with measures and their amplitude), plus the session's start, end, time zone,
family, EEG channels and night summaries. A night is shown in its models' stage set, the
first stage event's: 4 classes (W, light, deep, REM) or, for psg sessions, 5 (W, N1, N2,
N3, REM). The follower of the output topics
(:mod:`stream.live.follow`) feeds it with raw message values; it serves the JSON of the live
page.

Memory is bounded:

* per epoch 20 bytes (two stage codes, ten probabilities quantised to 1/255, three
  float16 inputs, an int8 channel count, one validity flag); arrays grow by doubling from
  1,024 epochs (8.5 h) and stop at :data:`MAX_EPOCHS` (48 h), later epochs are dropped
  and counted;
* per subject at most ``sessions_per_subject`` sessions: a session older than all kept
  ones is ignored, a newer one replaces the oldest;
* at most ``max_subjects`` subjects: the one updated longest ago is dropped first, and
  :meth:`LiveView.evict_older_than` drops subjects with nothing new for the look-back.

Measured: an 8-h night takes 22 kB, so the default 5,000 subjects with two nights each
take about 220 MB (1.2 GB if every session ran 48 h). Decoding costs about 26 us per
event, which matters only when a restarted worker re-reads a long look-back window.

An epoch is identified by its session and index, so a re-delivered event (after a
worker crash) overwrites its own epoch and never adds one. Epoch ``i`` starts at the
session start plus ``i`` x 30 s (the worker's definition), so only the start is stored.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from models.stages import CLASS_NAMES
from stream.codecs import DecodeFailure, decode
from stream.schemas import EpochInputStats, NightSummary, Payload, SessionEvent, StageEvent

__all__ = ["EPOCH_S", "MAX_EPOCHS", "STAGE_SETS", "LiveView", "UnknownNight"]

#: The stage sets the live page draws: the psg models' 5 classes, the others' 4.
STAGE_SETS: Final = (5, 4)
#: The stage set of a family's models, for a night whose first stage event is still to come.
_FAMILY_STAGE_SET: Final = {"psg": 5}
_MOST_CLASSES: Final = max(STAGE_SETS)
EPOCH_S: Final = 30.0
#: Most epochs kept per session (48 h); later epochs are dropped and counted.
MAX_EPOCHS: Final = 5760
_FIRST_CAPACITY: Final = 1024
_KINDS: Final = ("causal", "offline")
_PROB_SCALE: Final = 255
_PENDING_ENDS: Final = 10_000

TopicKind = Literal["stages", "summaries", "sessions"]


class UnknownNight(KeyError):
    """The live view holds no such subject or session; ``str()`` says which and why."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown subject or session"


@dataclass(eq=False)
class _Night:
    """One session of one subject; arrays indexed by epoch number."""

    subject_id: str
    session_id: str
    start: datetime
    time_zone: str = "UTC"
    start_is_nominal: bool = False
    device: str = ""
    family: str = ""
    channels: tuple[str, ...] = ()
    stage_set: int = 0  # the first stage event's; 0 until one arrives
    ended_at: datetime | None = None
    n: int = 0
    stage: NDArray[np.int8] = field(default_factory=lambda: np.full((2, 0), -1, np.int8))
    prob: NDArray[np.uint8] = field(
        default_factory=lambda: np.zeros((2, 0, _MOST_CLASSES), np.uint8))
    valid: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    hr: NDArray[np.float16] = field(default_factory=lambda: np.full(0, np.nan, np.float16))
    activity: NDArray[np.float16] = field(
        default_factory=lambda: np.full(0, np.nan, np.float16))
    eeg_channels: NDArray[np.int8] = field(default_factory=lambda: np.full(0, -1, np.int8))
    eeg_rms: NDArray[np.float16] = field(
        default_factory=lambda: np.full(0, np.nan, np.float16))
    summaries: dict[str, NightSummary] = field(default_factory=dict)
    updated_s: float = 0.0
    version: int = 0

    def ensure(self, index: int) -> None:
        """Grow the arrays (doubling) so that ``index`` fits."""
        cap = self.valid.size
        if index < cap:
            return
        new = max(_FIRST_CAPACITY, cap)
        while new <= index:
            new *= 2
        new = min(new, MAX_EPOCHS)
        grow = new - cap
        self.stage = np.concatenate([self.stage, np.full((2, grow), -1, np.int8)], axis=1)
        self.prob = np.concatenate(
            [self.prob, np.zeros((2, grow, _MOST_CLASSES), np.uint8)], axis=1)
        self.valid = np.concatenate([self.valid, np.zeros(grow, np.bool_)])
        self.hr = np.concatenate([self.hr, np.full(grow, np.nan, np.float16)])
        self.activity = np.concatenate([self.activity, np.full(grow, np.nan, np.float16)])
        self.eeg_channels = np.concatenate([self.eeg_channels, np.full(grow, -1, np.int8)])
        self.eeg_rms = np.concatenate([self.eeg_rms, np.full(grow, np.nan, np.float16)])

    @property
    def names(self) -> tuple[str, ...]:
        """Class names of the night's stage set (of its family's models before any event)."""
        return CLASS_NAMES[self.stage_set or _FAMILY_STAGE_SET.get(self.family, 4)]

    def counts(self, kind: str) -> dict[str, int]:
        """Epochs per stage of one kind."""
        names = self.names
        row = self.stage[_KINDS.index(kind), : self.n]
        found = np.bincount(row[row >= 0], minlength=len(names))
        return {name: int(found[i]) for i, name in enumerate(names)}

    def n_scored(self, kind: str) -> int:
        """Epochs that have a stage of ``kind``."""
        return int((self.stage[_KINDS.index(kind), : self.n] >= 0).sum())

    def current_stage(self) -> str | None:
        """The causal stage of the latest scored epoch."""
        scored = np.flatnonzero(self.stage[0, : self.n] >= 0)
        return self.names[int(self.stage[0, scored[-1]])] if scored.size else None

    def summary(self) -> NightSummary | None:
        """The offline summary, else the causal one, else None."""
        return self.summaries.get("offline") or self.summaries.get("causal")


def _opt(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 2)


def _series(values: NDArray[np.float16], digits: int) -> list[float | None]:
    return [None if math.isnan(v) else round(v, digits) for v in values.astype(float).tolist()]


@dataclass
class LiveView:
    """Recent nights of every subject, fed by the output topics (see the module docs).

    Parameters
    ----------
    sessions_per_subject : int
        Sessions kept per subject (the latest by start time).
    max_subjects : int
        Most subjects kept; the one updated longest ago goes first.

    Attributes
    ----------
    applied : int
        Messages applied.
    undecodable : collections.Counter
        Skipped messages per topic kind (bad JSON, schema violations, stage sets the page
        does not draw).
    dropped : collections.Counter
        Events not kept and why (``old_session``, ``beyond_max_epochs``,
        ``other_stage_set``: a stage set other than the night's first).
    """

    sessions_per_subject: int = 2
    max_subjects: int = 5_000
    applied: int = 0
    undecodable: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    _subjects: OrderedDict[str, dict[str, _Night]] = field(default_factory=OrderedDict)
    _pending_ends: OrderedDict[tuple[str, str], datetime] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        for name in ("sessions_per_subject", "max_subjects"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"`{name}` must be an int >= 1; got {value!r}"
                raise ValueError(msg)

    # ---------------------------------------------------------------- input

    def apply(self, kind: TopicKind, raw: bytes | None, timestamp_s: float | None = None) -> bool:
        """Apply one message value of topic ``kind``; never raises for bad input.

        Parameters
        ----------
        kind : {"stages", "summaries", "sessions"}
            The topic it came from.
        raw : bytes or None
            The message value (JSON).
        timestamp_s : float, optional
            The broker timestamp in s since the epoch (default: now); the subject's last
            update.

        Returns
        -------
        bool
            Whether the message was used (False: undecodable, unsupported or dropped).
        """
        now = time.time() if timestamp_s is None else timestamp_s
        model: dict[str, type[Payload]] = {
            "stages": StageEvent, "summaries": NightSummary, "sessions": SessionEvent}
        if kind not in model:
            msg = f"`kind` must be one of {tuple(model)}; got {kind!r}"
            raise ValueError(msg)
        payload = decode(raw, model[kind])
        if isinstance(payload, DecodeFailure):
            self.undecodable[kind] += 1
            return False
        if isinstance(payload, StageEvent):
            used = self._stage(payload, now)
        elif isinstance(payload, NightSummary):
            used = self._summary(payload, now)
        elif isinstance(payload, SessionEvent):
            used = self._session(payload, now)
        else:  # pragma: no cover - the three models above are all there is
            return False
        self.applied += used
        return used

    def _stage(self, ev: StageEvent, now: float) -> bool:
        if ev.stage_set not in STAGE_SETS:
            self.undecodable["stages"] += 1
            return False
        k = ev.epoch_index
        if k >= MAX_EPOCHS:
            self.dropped["beyond_max_epochs"] += 1
            return False
        start = ev.epoch_start_utc - timedelta(seconds=k * EPOCH_S)
        night = self._night(ev.subject_id, ev.session_id, start, now)
        if night is None:
            return False
        if night.stage_set not in (0, ev.stage_set):  # one night, one stage set
            self.dropped["other_stage_set"] += 1
            return False
        night.stage_set = ev.stage_set
        names = night.names
        night.ensure(k)
        row = _KINDS.index(ev.kind)
        night.stage[row, k] = names.index(ev.stage)
        probs = np.asarray([ev.probabilities[s] for s in names], dtype=np.float64)
        night.prob[row, k, : len(names)] = np.clip(np.rint(probs * _PROB_SCALE), 0, _PROB_SCALE)
        if ev.kind == "causal":
            night.valid[k] = ev.valid
            if ev.inputs is not None:
                _inputs(night, k, ev.inputs)
        night.n = max(night.n, k + 1)
        self._touch(night, now)
        return True

    def _summary(self, s: NightSummary, now: float) -> bool:
        night = self._night(s.subject_id, s.session_id, s.t_start_utc, now)
        if night is None:
            return False
        night.summaries[s.kind] = s
        self._touch(night, now)
        return True

    def _session(self, e: SessionEvent, now: float) -> bool:
        key = (e.subject_id, e.session_id)
        if e.event == "end":
            night = self._find(*key)
            if night is None:  # its start or first epoch is still to come
                self._pending_ends[key] = e.t_utc
                while len(self._pending_ends) > _PENDING_ENDS:
                    self._pending_ends.popitem(last=False)
                return True
            night.ended_at = e.t_utc
        else:
            night = self._night(e.subject_id, e.session_id, e.t_utc, now)
            if night is None:
                return False
            night.start = e.t_utc
            night.time_zone, night.device = e.time_zone, e.device
            night.start_is_nominal = e.start_is_nominal
            night.family, night.channels = e.family, tuple(e.channels)
        self._touch(night, now)
        return True

    def _find(self, subject: str, session: str) -> _Night | None:
        return self._subjects.get(subject, {}).get(session)

    def _night(self, subject: str, session: str, start: datetime, now: float) -> _Night | None:
        """The night of ``(subject, session)``, created if it is among the latest."""
        nights = self._subjects.get(subject)
        if nights is None:
            nights = self._subjects[subject] = {}
            while len(self._subjects) > self.max_subjects:
                self._subjects.popitem(last=False)
        night = nights.get(session)
        if night is not None:
            return night
        if len(nights) >= self.sessions_per_subject:
            oldest = min(nights.values(), key=lambda n: n.start)
            if start < oldest.start:
                self.dropped["old_session"] += 1
                return None
            del nights[oldest.session_id]
        night = nights[session] = _Night(subject, session, start, updated_s=now)
        night.ended_at = self._pending_ends.pop((subject, session), None)
        return night

    def _touch(self, night: _Night, now: float) -> None:
        night.updated_s = max(night.updated_s, now)
        night.version += 1
        self._subjects.move_to_end(night.subject_id)

    def evict_older_than(self, cutoff_s: float) -> int:
        """Drop subjects whose last update is before ``cutoff_s``; returns how many."""
        stale = [s for s, nights in self._subjects.items()
                 if max((n.updated_s for n in nights.values()), default=0.0) < cutoff_s]
        for subject in stale:
            del self._subjects[subject]
        return len(stale)

    # ---------------------------------------------------------------- output

    def __len__(self) -> int:
        return len(self._subjects)

    def night_of(self, subject: str, session: str | None = None) -> _Night:
        """A subject's session (default its latest); raises :class:`UnknownNight`."""
        nights = self._subjects.get(subject)
        if not nights:
            msg = (f"unknown subject {subject!r}: the live view has {len(self)} subjects "
                   "(GET /live/api/subjects lists them)")
            raise UnknownNight(msg)
        if session is None:
            return max(nights.values(), key=lambda n: n.start)
        if session not in nights:
            msg = (f"unknown session {session!r} of subject {subject!r}; the live view keeps "
                   f"its sessions {sorted(nights)}")
            raise UnknownNight(msg)
        return nights[session]

    def subjects(self) -> list[dict[str, Any]]:
        """One row per subject (its latest session), sorted by subject id."""
        rows = []
        for subject in sorted(self._subjects):
            night = self.night_of(subject)
            rows.append({
                "subject": subject, "session": night.session_id,
                "sessions": [n.session_id for n in sorted(
                    self._subjects[subject].values(), key=lambda n: n.start, reverse=True)],
                "started_at": night.start.isoformat(),
                "n_causal": night.n_scored("causal"), "n_offline": night.n_scored("offline"),
                "current_stage": night.current_stage(),
                "last_update": datetime.fromtimestamp(night.updated_s).astimezone().isoformat(),
                "ended": night.ended_at is not None or "offline" in night.summaries,
                "has_summary": night.summary() is not None,
            })
        return rows

    def night(self, subject: str, session: str | None = None) -> dict[str, Any]:
        """Everything the page draws for one session, as JSON-ready arrays.

        ``causal.stage``/``offline.stage`` hold indices into ``stages`` (-1: not scored);
        ``*.prob`` one list per stage of probabilities x ``prob_scale``.
        """
        night = self.night_of(subject, session)
        n = night.n
        out: dict[str, Any] = {
            "subject": night.subject_id, "session": night.session_id,
            "sessions": [{"session": s.session_id, "started_at": s.start.isoformat()}
                         for s in sorted(self._subjects[subject].values(),
                                         key=lambda s: s.start, reverse=True)],
            "started_at": night.start.isoformat(),
            "ended_at": night.ended_at.isoformat() if night.ended_at else None,
            "time_zone": night.time_zone, "start_is_nominal": night.start_is_nominal,
            "device": night.device, "family": night.family, "channels": list(night.channels),
            "epoch_s": EPOCH_S, "n_epochs": n,
            "stages": list(night.names), "prob_scale": _PROB_SCALE, "version": night.version,
            "last_update": datetime.fromtimestamp(night.updated_s).astimezone().isoformat(),
            "valid": night.valid[:n].astype(np.int8).tolist(),
            "hr_bpm": _series(night.hr[:n], 1), "activity_counts": _series(night.activity[:n], 1),
            "eeg_channels": [None if c < 0 else c for c in night.eeg_channels[:n].tolist()],
            "eeg_rms_uv": _series(night.eeg_rms[:n], 1),
        }
        for row, kind in enumerate(_KINDS):
            out[kind] = {
                "stage": night.stage[row, :n].tolist(),
                "prob": night.prob[row, :n, : len(night.names)].T.tolist(),
                "n_scored": night.n_scored(kind), "counts": night.counts(kind),
            }
        summary = night.summary()
        out["summary"] = None if summary is None else _summary_json(summary)
        return out


def _inputs(night: _Night, k: int, inputs: EpochInputStats) -> None:
    """Keep what the page draws of an epoch's inputs."""
    hr, act = inputs.hr_mean_bpm, inputs.activity_counts
    night.hr[k] = np.nan if hr is None else hr
    night.activity[k] = np.nan if act is None else act
    if inputs.eeg_channels is not None:
        night.eeg_channels[k] = min(inputs.eeg_channels, 127)
        rms = inputs.eeg_rms_uv
        night.eeg_rms[k] = np.nan if rms is None else rms


def _summary_json(s: NightSummary) -> dict[str, Any]:
    return {
        "kind": s.kind, "model": s.model_name, "n_epochs": s.n_epochs,
        "n_valid_epochs": s.n_valid_epochs, "tib_min": _opt(s.tib_min),
        "tst_min": _opt(s.tst_min), "se_pct": _opt(s.se_pct), "sol_min": _opt(s.sol_min),
        "waso_min": _opt(s.waso_min), "rem_latency_min": _opt(s.rem_latency_min),
        "minutes": {k: _opt(v) for k, v in s.minutes.items()},
        "percent_of_tst": {k: _opt(v) for k, v in s.percent_of_tst.items()},
        "t_start_utc": s.t_start_utc.isoformat(), "t_end_utc": s.t_end_utc.isoformat(),
    }
