"""Recorded nights as the replay sends them: :class:`ReplayNight` and its loaders.

A :class:`ReplayNight` holds exactly the samples the training code feeds to
:func:`models.features.compute_features` for the same night, with the same session start,
epoch count and flags, so the stream computes the same feature rows as the batch path:

* Sleep-Accel mirrors :func:`training.datasets.sleep_accel.night_from_sleep_accel`: heart
  rate, activity counts, raw acceleration only when there are no counts; start, epoch count
  and ``start_is_nominal`` from the labels; :class:`~ingestors.errors.DataQualityWarning`
  of the reader ignored (the repairs are listed in the night's ``problems``).
* SLPDB mirrors :func:`training.datasets.slpdb.night_from_slpdb`: RR intervals at the
  beats ending them with their beat types, start at the record start, epochs covering the
  whole record and the scoring.
* PSG recordings (:mod:`ingestors.psg_replay`) carry their EEG channels as
  :class:`RegularStream` s: the raw samples as recorded with each channel's calibration and
  rate, placed by sample index on the session's grid, exactly as the chunks carry them.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from os import PathLike
from types import MappingProxyType
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors.base.regular import RawSamples, RegularSpec, check_raw
from ingestors.errors import DataQualityWarning
from ingestors.sleep_accel import SleepAccelNight, list_subjects, read_subject
from ingestors.slpdb import SLPDB_TIMEZONE, SlpdbRecord, list_records, read_record
from ingestors.types import EPOCH_S, NOMINAL_START, require_aware
from models.features.hrv import BEAT_CODES
from models.stages import Stage
from stream.schemas.base import ID_PATTERN
from stream.schemas.session import MODALITIES, Family, Modality

__all__ = [
    "RegularStream",
    "ReplayNight",
    "ReplayStream",
    "UnsentChannel",
    "beat_symbols",
    "sleep_accel_night",
    "sleep_accel_nights",
    "slpdb_night",
    "slpdb_nights",
]

#: AAMI class letter of each beat code of :data:`models.features.hrv.BEAT_CODES`.
_CLASS_LETTERS: Final = ("N", "S", "V", "F", "Q")
#: What a family's device announces when the night has no samples at all.
_DEFAULT_MODALITIES: Final[dict[str, tuple[Modality, ...]]] = {
    "wearable": ("heart_rate", "activity_counts"),
    "cardio": ("rr",),
    "psg": ("eeg",),
}
_ID_RE: Final = re.compile(ID_PATTERN)


class ReplayStream(NamedTuple):
    """The samples of one modality of a night.

    Attributes
    ----------
    t_s : ndarray of float64, shape (n,)
        Sample times in s since the night's ``start``, non-decreasing (may be negative:
        samples before the start belong to the first epoch, as in the batch features).
    values : ndarray of float64, shape (n,) or (n, 3)
        bpm, counts per 15 s, RR interval in s, or acceleration x, y, z in g.
    beat_types : tuple of str or None
        ``rr`` only: the AAMI class (``N``, ``S``, ``V``, ``F``, ``Q``) of each beat.
    """

    t_s: NDArray[np.float64]
    values: NDArray[np.float64]
    beat_types: tuple[str, ...] | None = None


class RegularStream(NamedTuple):
    """One EEG channel of a night: raw samples as recorded, placed and calibrated.

    Attributes
    ----------
    channel : str
        The label sent (``SampleChunk.channel``).
    spec : RegularSpec
        Rate and calibration: sample ``sample0 + i`` is at ``(sample0 + i) / rate_hz`` s
        after the night's ``start``, its value ``raw[i] * scale + offset`` uV.
    raw : ndarray of int16 or float32, shape (n,)
        EDF digital values (int16; float32 for 24-bit BDF).
    sample0 : int
        Index of ``raw[0]`` on the channel's grid from the night's start (>= 0).
    """

    channel: str
    spec: RegularSpec
    raw: RawSamples
    sample0: int = 0

    def times_s(self) -> NDArray[np.float64]:
        """Sample times in s since the night's start, as a chunk gives them."""
        return (self.sample0 + np.arange(self.raw.size, dtype=np.float64)) / self.spec.rate_hz

    def physical(self) -> NDArray[np.float64]:
        """Samples in uV, computed as the worker computes them from the chunks."""
        return self.spec.physical(self.raw)


class UnsentChannel(NamedTuple):
    """A channel of a recording that was read but is not sent (reported to the user).

    Attributes
    ----------
    label : str
        The label in the file.
    kind : str
        ``"EOG"``, ``"EMG"``, ``"ECG"``, ``"EEG"`` (not chosen or unusable) ...
    rate_hz : float
        Sampling rate.
    unit : str
        Physical unit in the file.
    duration_s : float
        Seconds of signal read.
    reason : str
        Why it is not sent.
    """

    label: str
    kind: str
    rate_hz: float
    unit: str
    duration_s: float
    reason: str

    def text(self) -> str:
        """``"EOG horizontal (EOG, 100 Hz, uV): not sent: no model uses EOG yet"``."""
        return (f"{self.label} ({self.kind}, {self.rate_hz:g} Hz, {self.unit or 'no unit'}, "
                f"{self.duration_s / 3600:.1f} h read): not sent: {self.reason}")


@dataclass(frozen=True, eq=False)
class ReplayNight:
    """One recorded night, ready to be planned and replayed.

    Attributes
    ----------
    subject_id, session_id : str
        Message key and session; both must match :data:`stream.schemas.base.ID_PATTERN`.
    family : {"wearable", "cardio", "psg"}
        Which model family stages it.
    modalities : tuple of str
        What the start event announces; includes every key of ``streams``.
    time_zone : str
        IANA zone of the subject's local clock.
    start : datetime
        Timezone-aware session start as recorded (or nominal).
    start_is_nominal : bool
        True when ``start`` is no real clock time.
    n_epochs : int
        30-s epochs of the session; it ends at ``start + n_epochs * 30 s``.
    streams : mapping of str to ReplayStream
        The samples per modality (read-only mapping).
    labels : ndarray of int8, shape (n_epochs,), or None
        Expert :class:`~models.stages.Stage` per epoch, for comparing with the stream's stages.
    device : str
        ``"replay:<dataset>"``.
    eeg : tuple of RegularStream
        The EEG channels sent (``psg``), in order; given exactly when ``modalities`` holds
        ``"eeg"``.
    unsent : tuple of UnsentChannel
        Channels read but not sent (EOG, EMG, ...), for the replay's report.
    """

    subject_id: str
    session_id: str
    family: Family
    modalities: tuple[Modality, ...]
    time_zone: str
    start: datetime
    start_is_nominal: bool
    n_epochs: int
    streams: Mapping[Modality, ReplayStream] = field(default_factory=dict, repr=False)
    labels: NDArray[np.int8] | None = field(default=None, repr=False)
    device: str = "replay"
    eeg: tuple[RegularStream, ...] = field(default=(), repr=False)
    unsent: tuple[UnsentChannel, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        for name in ("subject_id", "session_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _ID_RE.fullmatch(value):
                msg = (f"ReplayNight `{name}` must match {ID_PATTERN} (letters, digits, "
                       f"'_.:@-', no spaces or slashes); got {value!r}")
                raise ValueError(msg)
        require_aware(self.start)
        if isinstance(self.n_epochs, bool) or not isinstance(self.n_epochs, int | np.integer) \
                or self.n_epochs < 0:
            msg = f"ReplayNight {self.session_id}: `n_epochs` must be an int >= 0; got " \
                  f"{self.n_epochs!r}"
            raise ValueError(msg)
        streams = {m: _checked_stream(self.session_id, m, s) for m, s in self.streams.items()}
        missing = [m for m in streams if m not in self.modalities]
        if not self.modalities or missing or any(m not in MODALITIES for m in self.modalities):
            msg = (f"ReplayNight {self.session_id}: `modalities` must be a non-empty subset of "
                   f"{MODALITIES} naming every stream; got {self.modalities} for streams "
                   f"{tuple(streams)}")
            raise ValueError(msg)
        if self.labels is not None and self.labels.shape != (self.n_epochs,):
            msg = (f"ReplayNight {self.session_id}: `labels` must have shape "
                   f"({self.n_epochs},); got {self.labels.shape}")
            raise ValueError(msg)
        if "eeg" in streams:
            msg = (f"ReplayNight {self.session_id}: EEG goes in `eeg` (one RegularStream per "
                   "channel), not in `streams`")
            raise ValueError(msg)
        object.__setattr__(self, "streams", MappingProxyType(streams))
        object.__setattr__(self, "eeg", _checked_eeg(self.session_id, self.modalities,
                                                     self.eeg))

    @property
    def duration_s(self) -> float:
        """Length of the session in s, ``n_epochs * 30``."""
        return self.n_epochs * EPOCH_S

    @property
    def channels(self) -> tuple[str, ...]:
        """Labels of the EEG channels sent."""
        return tuple(s.channel for s in self.eeg)

    @property
    def n_samples(self) -> int:
        """Samples over all streams and EEG channels."""
        return sum(len(s.t_s) for s in self.streams.values()) + \
            sum(s.raw.size for s in self.eeg)


def _checked_eeg(session: str, modalities: tuple[Modality, ...],
                 eeg: tuple[RegularStream, ...]) -> tuple[RegularStream, ...]:
    """Validate the EEG channels: given exactly with ``eeg``, unique labels, usable data."""
    eeg = tuple(eeg)
    if ("eeg" in modalities) != bool(eeg):
        msg = (f"ReplayNight {session}: give EEG channels in `eeg` exactly when `modalities` "
               f"holds 'eeg'; got modalities {modalities} and {len(eeg)} EEG channels")
        raise ValueError(msg)
    labels = [s.channel for s in eeg]
    if len(set(labels)) != len(labels):
        msg = f"ReplayNight {session}: EEG channel labels must be unique; got {labels}"
        raise ValueError(msg)
    out = []
    for s in eeg:
        what = f"ReplayNight {session}, EEG {s.channel!r}"
        if isinstance(s.sample0, bool) or not isinstance(s.sample0, int | np.integer) \
                or s.sample0 < 0:
            msg = f"{what}: `sample0` must be an int >= 0; got {s.sample0!r}"
            raise ValueError(msg)
        out.append(RegularStream(s.channel, RegularSpec(*map(float, s.spec)).check(what),
                                 check_raw(s.raw, what), int(s.sample0)))
    return tuple(out)


def _checked_stream(session: str, modality: str, stream: ReplayStream) -> ReplayStream:
    """Validate one stream: known modality, float64 1-D times, matching values and codes."""
    if modality not in MODALITIES:
        msg = f"ReplayNight {session}: unknown modality {modality!r}; use one of {MODALITIES}"
        raise ValueError(msg)
    t, v, types = stream
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    shape = (t.shape[0], 3) if modality == "acceleration" else t.shape
    if t.ndim != 1 or v.shape != shape:
        msg = (f"ReplayNight {session}, {modality}: t_s must be 1-D and values of shape "
               f"{shape}; got t_s {t.shape} and values {v.shape}")
        raise ValueError(msg)
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
        msg = (f"ReplayNight {session}, {modality}: t_s must be finite and non-decreasing; "
               "sort the samples by time and drop those without a time")
        raise ValueError(msg)
    if types is not None and modality != "rr":
        msg = f"ReplayNight {session}: beat_types belong to rr only; got them with {modality}"
        raise ValueError(msg)
    if types is not None and len(types) != t.shape[0]:
        msg = (f"ReplayNight {session}: rr beat_types needs one code per beat ({t.shape[0]}); "
               f"got {len(types)}")
        raise ValueError(msg)
    return ReplayStream(t, v, None if types is None else tuple(types))


def beat_symbols(beat_types: Iterable[str | int] | NDArray[np.generic]) -> tuple[str, ...]:
    """AAMI class letters (``N``, ``S``, ``V``, ``F``, ``Q``) of beat symbols or codes.

    The mapping is :func:`models.features.hrv.beat_codes` followed by its code -> class
    table, so the stream's codes equal the batch codes: MIT-BIH symbols map to their AAMI
    class (``L``, ``R`` -> ``N``; ``A`` -> ``S``; ``E`` -> ``V``; ``/`` -> ``Q``), unknown
    symbols and integer codes above 4 to ``Q``. The features only tell ``N`` from the rest,
    so this is lossless for them; the original symbol itself is not kept.

    Parameters
    ----------
    beat_types : iterable of str or int, shape (n,)
        MIT-BIH symbols or integer codes (0 = N).
    """
    arr = np.asarray(list(beat_types) if not isinstance(beat_types, np.ndarray) else beat_types)
    if arr.size == 0:
        return ()
    if arr.dtype.kind in "iu":
        if arr.min() < 0 or arr.max() > 255:
            msg = (f"integer beat codes must lie in 0..255 (0 = normal); got "
                   f"{arr.min()}..{arr.max()}")
            raise ValueError(msg)
        codes = np.minimum(arr, 4)
    else:
        uniq, inverse = np.unique(arr.astype(str), return_inverse=True)
        table = np.array([BEAT_CODES.get(u.strip(), 4) for u in uniq])
        codes = table[inverse.reshape(-1)]
    return tuple(_CLASS_LETTERS[int(c)] for c in codes)


def _modalities(family: Family, streams: Mapping[Modality, ReplayStream],
                ) -> tuple[Modality, ...]:
    return tuple(streams) if streams else _DEFAULT_MODALITIES[family]


def sleep_accel_night(night: SleepAccelNight) -> ReplayNight:
    """The replay of one Sleep-Accel subject read by :func:`ingestors.sleep_accel.read_subject`.

    Without labels the session starts at the reader's (nominal) start and covers the last
    sample; ``labels`` is then None.
    """
    streams: dict[Modality, ReplayStream] = {}
    if night.heart_rate is not None:
        streams["heart_rate"] = ReplayStream(night.heart_rate.t_s, night.heart_rate.values)
    if night.counts is not None:
        streams["activity_counts"] = ReplayStream(night.counts.t_s, night.counts.values)
    elif night.motion is not None:
        streams["acceleration"] = ReplayStream(night.motion.t_s, night.motion.values)
    hyp = night.labels
    if hyp is not None:
        start, nominal, n_epochs = hyp.start, hyp.start_is_nominal, len(hyp)
    else:
        last = max((float(s.t_s[-1]) for s in streams.values() if len(s.t_s)), default=-1.0)
        start, nominal = night.start, night.start_is_nominal
        n_epochs = math.floor(last / EPOCH_S) + 1 if last >= 0 else 0
    return ReplayNight(
        night.subject, f"sleep-accel-{night.subject}", "wearable",
        _modalities("wearable", streams), "UTC", start, nominal, n_epochs, streams,
        None if hyp is None else hyp.stages, "replay:sleep-accel",
    )


def slpdb_night(rec: SlpdbRecord) -> ReplayNight:
    """The replay of one SLPDB record read by :func:`ingestors.slpdb.read_record`.

    Subject and message key are the record name, so every record is its own session.
    Without stages the night covers the record and ``labels`` is None; without beats it
    has no samples (start and end are still sent).
    """
    beats, hyp = rec.beats, rec.hypnogram
    if beats is not None:
        start, nominal = beats.start, beats.start_is_nominal
    else:
        start = rec.header.start or NOMINAL_START
        nominal = rec.header.start is None
    n_epochs = math.ceil(rec.header.duration_s / EPOCH_S)
    labels = None
    if hyp is not None:
        offset = round((hyp.start - start).total_seconds() / hyp.epoch_s)
        if offset < 0:
            msg = (f"SLPDB record {rec.record}: scoring starts {-offset} epochs before the "
                   "beats; the record's files disagree on its start")
            raise ValueError(msg)
        n_epochs = max(n_epochs, offset + len(hyp))
        labels = np.full(n_epochs, Stage.UNSCORED, dtype=np.int8)
        labels[offset: offset + len(hyp)] = hyp.stages
    streams: dict[Modality, ReplayStream] = {}
    if beats is not None:
        streams["rr"] = ReplayStream(beats.t_s, beats.rr_s, beat_symbols(beats.beat_type))
    return ReplayNight(
        rec.record, f"slpdb-{rec.record}", "cardio", _modalities("cardio", streams),
        SLPDB_TIMEZONE.key, start, nominal, n_epochs, streams, labels, "replay:slpdb",
    )


def sleep_accel_nights(
    folder: str | PathLike[str], subjects: Iterable[str | int] | None = None
) -> tuple[ReplayNight, ...]:
    """Read Sleep-Accel subjects (cropped or PhysioNet layout) as replay nights.

    Parameters
    ----------
    folder : str or path-like
        As for :func:`ingestors.sleep_accel.read_subject`.
    subjects : iterable of str or int, optional
        Which subjects, in this order; default all of :func:`~ingestors.sleep_accel.list_subjects`.
    """
    chosen = list_subjects(folder) if subjects is None else tuple(str(s) for s in subjects)
    nights = []
    for subject in chosen:
        with warnings.catch_warnings():
            # as load_sleep_accel: the repairs are listed in `problems`, the data are used
            warnings.simplefilter("ignore", DataQualityWarning)
            raw = read_subject(folder, subject)
        nights.append(sleep_accel_night(raw))
    return tuple(nights)


def slpdb_nights(
    folder: str | PathLike[str], records: Iterable[str] | None = None
) -> tuple[ReplayNight, ...]:
    """Read SLPDB records (``<rec>.hea/.rr/.an``) as replay nights, one session per record.

    Parameters
    ----------
    folder : str or path-like
        Folder of the records.
    records : iterable of str, optional
        Record names (``"slp01a"``); default all of :func:`~ingestors.slpdb.list_records`.
    """
    chosen = list_records(folder) if records is None else list(records)
    return tuple(slpdb_night(read_record(folder, r)) for r in chosen)
