"""EDF, EDF+ and BDF signal files: one reader with canonical channel names.

:func:`read_edf` returns every ordinary signal in physical units, at its own sampling rate
(EDF allows a different rate per channel), under a canonical name such as ``"Fpz-Cz"`` or
``"C4-A1"`` (:data:`DEFAULT_ALIASES` maps the labels of Sleep-EDF, SHHS/NSRR and SLPDB-style
files onto these names), together with the header fields and the EDF+ annotations.

EDF stores the local clock time of the recording without a time zone; the caller says which
zone that clock was in (``tz``), and the reader attaches it.

The file is decoded by the project's own decoder (:mod:`ingestors.edf_decode`), the one the
live follower uses too: values equal pyedflib's on files pyedflib reads, and files as sleep
labs' systems write them (digital ranges out of range, odd units, a record count of -1,
Latin-1 text, BDF, EDF+D) are read with one :class:`~ingestors.errors.DataQualityWarning`
saying what was tolerated and how. What cannot be read (a truncated file or header, a header
byte count that does not match the signal count, a number that is not one, a non-positive
sampling rate) raises :class:`~ingestors.errors.DataFormatError` naming the file, the field
or channel, what was expected and how to fix it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray

from ingestors._edf_header import identification, norm_label
from ingestors.edf_decode import EdfDecoder, EdfSignal, Records
from ingestors.errors import DataQualityWarning, format_problem
from ingestors.types import Event, TimeSeries

__all__ = [
    "DEFAULT_ALIASES",
    "EdfChannel",
    "EdfRecording",
    "as_timezone",
    "read_edf",
    "resolve_channel",
]

# Labels are compared lower-cased with all whitespace removed ("EEG FPZ-CZ" == "eeg fpz-cz").
_CANONICAL_LABELS: Final[Mapping[str, tuple[str, ...]]] = {
    "Fpz-Cz": ("EEG Fpz-Cz", "EEG FpzCz"),  # Sleep-EDF
    "Pz-Oz": ("EEG Pz-Oz", "EEG PzOz"),  # Sleep-EDF
    "C4-A1": ("EEG", "EEG C4-A1", "EEG (C4-A1)", "C4A1", "C4-M1", "EEG C4-M1"),  # SHHS, SLPDB
    "C3-A2": ("EEG(sec)", "EEG 2", "EEG2", "EEG C3-A2", "C3A2", "C3-M2", "EEG C3-M2"),  # SHHS
    "C3-O1": ("EEG (C3-O1)",),  # SLPDB
    "O2-A1": ("EEG (O2-A1)",),  # SLPDB
    "EOG": ("EOG horizontal", "EOG(L)", "EOG (right)", "EOG Left Horiz"),
    "EMG": ("EMG submental", "EMG chin", "Chin EMG", "Submental EMG"),
    "ECG": ("EKG", "ECG I", "ECG1"),
    "Thor": ("THOR RES", "Resp chest", "Resp (chest)", "Thoracic", "Thorax"),
    "Abdo": ("ABDO RES", "Resp abdomen", "Resp (abdomen)", "Resp (abdominal)", "Abdomen"),
    "Airflow": ("AIRFLOW", "Resp oro-nasal", "Resp (nasal)", "Flow"),
    "SpO2": ("SaO2", "SO2", "SAO2", "SpO2 %"),
}

#: File label -> canonical channel name. Matching ignores case and whitespace; canonical
#: names match themselves. Extend it with ``{**DEFAULT_ALIASES, "my label": "C4-A1"}``.
DEFAULT_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {label: name for name, labels in _CANONICAL_LABELS.items() for label in (name, *labels)}
)


def _normalised_aliases(aliases: Mapping[str, str]) -> dict[str, str]:
    table = {norm_label(name): name for name in aliases.values()}
    table.update({norm_label(label): name for label, name in aliases.items()})
    return table


def resolve_channel(label: str, aliases: Mapping[str, str] = DEFAULT_ALIASES) -> str:
    """Return the canonical name of an EDF channel label.

    Parameters
    ----------
    label : str
        The label as written in the file (``"EEG Fpz-Cz"``, ``"EEG(sec)"``, ``"THOR RES"``).
    aliases : mapping of str to str
        File label -> canonical name. Keys and canonical names are matched case- and
        whitespace-insensitively.

    Returns
    -------
    str
        The canonical name (``"Fpz-Cz"``, ``"C3-A2"``, ``"Thor"``), or the label stripped of
        surrounding whitespace when no alias matches.
    """
    if not isinstance(label, str):
        msg = f"`label` must be a str; got {type(label).__name__}. Pass the channel label text."
        raise TypeError(msg)
    return _normalised_aliases(aliases).get(norm_label(label), label.strip())


def as_timezone(tz: tzinfo | str, name: str = "tz") -> tzinfo:
    """Turn an IANA zone name or a ``tzinfo`` into a ``tzinfo``, naming ``name`` on error."""
    if isinstance(tz, tzinfo):
        return tz
    if not isinstance(tz, str):
        msg = f"`{name}` must be a tzinfo or an IANA zone name; got {type(tz).__name__}"
        raise TypeError(msg)
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        msg = (
            f"`{name}` must be an IANA time zone such as 'Europe/Amsterdam' or 'UTC'; got "
            f"{tz!r}. See zoneinfo.available_timezones() for the names this system knows."
        )
        raise ValueError(msg) from None


@dataclass(frozen=True, eq=False)
class EdfChannel:
    """One signal of an EDF file, in physical units.

    Attributes
    ----------
    label : str
        The label as written in the file.
    name : str
        The canonical name (see :func:`resolve_channel`).
    sfreq_hz : float
        Sampling rate of this channel in Hz (samples per data record / record duration).
    unit : str
        Physical unit of ``data``: the header's dimension, with any spelling of microvolts
        as ``"uV"`` (likewise ``"mV"``, ``"V"``, ``"nV"``); empty when the header defines no
        scaling (see :mod:`ingestors.edf_decode`).
    data : ndarray of float64, shape (n_samples,)
        Samples in ``unit``.
    physical_min, physical_max : float
        Physical range from the header, in ``unit``.
    prefilter : str
        Prefiltering text from the header (``"HP:0.5Hz LP:100Hz"``).
    transducer : str
        Transducer type from the header (``"AgAgCl electrode"``).
    record_onsets_s : ndarray of float64 or None
        Start of each data record in seconds since the recording start, for an EDF+D file
        whose records have gaps; ``None`` when the records are contiguous.
    """

    label: str
    name: str
    sfreq_hz: float
    unit: str
    data: NDArray[np.float64]
    physical_min: float
    physical_max: float
    prefilter: str = ""
    transducer: str = ""
    record_onsets_s: NDArray[np.float64] | None = None

    @property
    def t_s(self) -> NDArray[np.float64]:
        """Sample times in seconds since the recording start, shape (n_samples,).

        ``k / sfreq_hz`` for contiguous records; across the gaps of an EDF+D file each
        record's samples start at its own onset.
        """
        if self.record_onsets_s is None:
            return np.arange(self.data.shape[0], dtype=np.float64) / self.sfreq_hz
        per_record = self.data.shape[0] // self.record_onsets_s.shape[0]
        within = np.arange(per_record, dtype=np.float64) / self.sfreq_hz
        return (self.record_onsets_s[:, None] + within[None, :]).ravel()


@dataclass(frozen=True, eq=False)
class EdfRecording:
    """The content of one EDF/EDF+/BDF file.

    Attributes
    ----------
    path : pathlib.Path
        The file read.
    start : datetime
        Timezone-aware start of the recording: the header clock time in the ``tz`` given
        to :func:`read_edf`, plus the sub-second start an EDF+ file keeps in its first
        data record.
    duration_s : float
        Seconds from the start to the end of the last data record read.
    channels : dict of str to EdfChannel
        Signals by canonical name, in file order (or in the order asked for).
    annotations : list of Event
        EDF+ annotations, onsets in seconds since ``start``; empty for plain EDF.
    patient : dict of str to str
        EDF+ patient subfields: ``code``, ``sex``, ``birthdate``, ``name``, ``additional``.
    recording : dict of str to str
        EDF+ recording subfields: ``admincode``, ``technician``, ``equipment``, ``additional``.
    patient_id, recording_id : str
        The raw 80-character header fields (all there is in plain EDF files).
    file_type : str
        ``"EDF"``, ``"EDF+C"``, ``"EDF+D"``, ``"BDF"``, ``"BDF+C"`` or ``"BDF+D"``.
    """

    path: Path
    start: datetime
    duration_s: float
    channels: dict[str, EdfChannel]
    annotations: list[Event]
    patient: dict[str, str]
    recording: dict[str, str]
    patient_id: str = ""
    recording_id: str = ""
    file_type: str = "EDF"

    def timeseries(self, name: str) -> TimeSeries:
        """Return channel ``name`` (canonical name) as a :class:`TimeSeries`."""
        if name not in self.channels:
            msg = f"no channel {name!r} in {self.path.name}; it has {sorted(self.channels)}"
            raise KeyError(msg)
        ch = self.channels[name]
        return TimeSeries(ch.name, ch.t_s, ch.data, ch.unit, self.start)


def _select(
    path: Path, labels: list[str], names: list[str], channels: Sequence[str] | None,
    aliases: Mapping[str, str],
) -> list[int]:
    if channels is None:
        return list(range(len(labels)))
    if isinstance(channels, str):
        msg = (
            f"`channels` must be a sequence of names such as ['{channels}']; got the str "
            f"{channels!r}. Wrap a single name in a list."
        )
        raise TypeError(msg)
    table = _normalised_aliases(aliases)
    picked: list[int] = []
    for want in channels:
        keys = {norm_label(want), norm_label(table.get(norm_label(want), want))}
        hits = [i for i, (lab, nam) in enumerate(zip(labels, names, strict=True))
                if keys & {norm_label(lab), norm_label(nam)}]
        if not hits:
            have = ", ".join(f"{nam!r} (label {lab!r})" for lab, nam in zip(labels, names,
                                                                             strict=True))
            msg = format_problem(
                path, f"no channel {want!r}", expected=f"one of {have or 'no signals at all'}",
                fix="Ask for one of these, or map the file's label with `aliases=`.",
            )
            raise ValueError(msg)
        if hits[0] in picked:
            msg = f"channel {want!r} was asked for twice in `channels`; got {list(channels)}"
            raise ValueError(msg)
        picked.append(hits[0])
    return picked


def _canonical_names(path: Path, labels: list[str], aliases: Mapping[str, str]) -> list[str]:
    """Canonical name per label; a name already taken falls back to the label (+ index)."""
    table = _normalised_aliases(aliases)
    names: list[str] = []
    for i, label in enumerate(labels):
        name = table.get(norm_label(label), label.strip())
        if name in names:
            first = labels[names.index(name)]
            new = label.strip() if label.strip() not in names else f"{label.strip()} ({i})"
            warnings.warn(
                format_problem(
                    path, f"label {label!r} maps to channel {name!r}, which label {first!r} "
                    f"already has; signal {i} is named {new!r}",
                    fix="Pass `aliases=` to give each its own name.",
                ),
                DataQualityWarning, stacklevel=4,
            )
            name = new
        names.append(name)
    return names


def read_edf(
    path: str | PathLike[str],
    channels: Sequence[str] | None = None,
    *,
    aliases: Mapping[str, str] = DEFAULT_ALIASES,
    tz: tzinfo | str = "UTC",
) -> EdfRecording:
    """Read the signals, header and annotations of an EDF, EDF+, BDF or BDF+ file.

    Parameters
    ----------
    path : path-like
        The file.
    channels : sequence of str, optional
        Channels to read, by canonical name or file label (case and whitespace ignored);
        ``None`` reads all, ``[]`` reads only the header and annotations.
    aliases : mapping of str to str
        File label -> canonical name, see :data:`DEFAULT_ALIASES`.
    tz : tzinfo or str
        Time zone of the clock that wrote the header start time. EDF stores local time
        without a zone, so this cannot be read from the file; the default ``"UTC"`` is
        right only for files written in UTC. Sleep-EDF was recorded in
        ``"Europe/Amsterdam"``.

    Returns
    -------
    EdfRecording
        Header fields, timezone-aware start (with the sub-second part an EDF+ file keeps in
        its first record), channels in physical units and annotations.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataFormatError
        If the file cannot be read: not EDF/BDF, a truncated header or file (fewer data
        records than the header declares, or none), a header byte count that does not
        match the number of signals, a header number that does not parse, a date that is
        not one, a channel with a non-positive sampling rate, or data records whose times
        overlap; the message names the file and the field or channel.
    ValueError
        If a channel asked for is not in the file; the message lists the channels it has.

    Warns
    -----
    DataQualityWarning
        Once per file, saying what was read although the specification forbids it and how
        it was interpreted (see :mod:`ingestors.edf_decode`); and once per label that maps
        onto a canonical name another label already has.
    """
    path = Path(path)
    zone = as_timezone(tz)
    decoder = EdfDecoder(path)
    n_records = decoder.count_records()
    labels = [sig.label for sig in decoder.signals]
    names = _canonical_names(path, labels, aliases)
    picked = [decoder.signals[i] for i in _select(path, labels, names, channels, aliases)]
    records = decoder.read(0, n_records, [sig.index for sig in picked], annotations=True)
    patient, recording, notes = identification(decoder.header)
    for note in notes:
        decoder.note(note)
    start = decoder.header.clock_start()
    decoder.warn([sig.index for sig in picked], stacklevel=2)
    return _recording(decoder, records, picked, names, n_records, patient, recording,
                      start.replace(tzinfo=zone))


def _recording(
    decoder: EdfDecoder, records: Records, picked: list[EdfSignal], names: list[str],
    n_records: int, patient: dict[str, str], recording: dict[str, str], clock: datetime,
) -> EdfRecording:
    header = decoder.header
    onsets = records.times.record_onsets_s if records.times is not None else None
    offset_s = records.times.start_offset_s if records.times is not None else 0.0
    position = {sig.index: k for k, sig in enumerate(decoder.signals)}
    channels = {
        names[position[sig.index]]: EdfChannel(
            label=sig.label, name=names[position[sig.index]], sfreq_hz=sig.sfreq_hz,
            unit=sig.unit, data=records.values[sig.index], physical_min=sig.physical_min,
            physical_max=sig.physical_max, prefilter=sig.prefilter,
            transducer=sig.transducer, record_onsets_s=onsets,
        )
        for sig in picked
    }
    end_s = float(onsets[-1]) + header.record_s if onsets is not None \
        else n_records * header.record_s
    return EdfRecording(
        path=decoder.path, start=clock + timedelta(seconds=offset_s), duration_s=end_s,
        channels=channels, annotations=records.annotations, patient=patient,
        recording=recording, patient_id=header.patient_id, recording_id=header.recording_id,
        file_type=header.file_type,
    )
