"""EDF, EDF+ and BDF signal files: one reader with canonical channel names.

:func:`read_edf` returns every ordinary signal in physical units, at its own sampling rate
(EDF allows a different rate per channel), under a canonical name such as ``"Fpz-Cz"`` or
``"C4-A1"`` (:data:`DEFAULT_ALIASES` maps the labels of Sleep-EDF, SHHS/NSRR and SLPDB-style
files onto these names), together with the header fields and the EDF+ annotations.

EDF stores the local clock time of the recording without a time zone; the caller says which
zone that clock was in (``tz``), and the reader attaches it.

Before handing a file to pyedflib the fixed-size header is checked
(:mod:`ingestors._edf_header`), so that a file that is not EDF, a truncated file or a channel
with a non-positive sampling rate is reported with the file, the field or channel, what was
expected and how to fix it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyedflib
from numpy.typing import NDArray

from ingestors._edf_header import RawHeader, norm_label, read_header, sampling_rates
from ingestors.errors import DataFormatError, DataQualityWarning, format_problem
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
        Physical dimension from the header (``"uV"``, ``"mV"``, ``"%"``).
    data : ndarray of float64, shape (n_samples,)
        Samples in ``unit``.
    physical_min, physical_max : float
        Physical range from the header, in ``unit``.
    prefilter : str
        Prefiltering text from the header (``"HP:0.5Hz LP:100Hz"``).
    transducer : str
        Transducer type from the header (``"AgAgCl electrode"``).
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

    @property
    def t_s(self) -> NDArray[np.float64]:
        """Sample times in seconds since the recording start, shape (n_samples,)."""
        return np.arange(self.data.shape[0], dtype=np.float64) / self.sfreq_hz


@dataclass(frozen=True, eq=False)
class EdfRecording:
    """The content of one EDF/EDF+/BDF file.

    Attributes
    ----------
    path : pathlib.Path
        The file read.
    start : datetime
        Timezone-aware start of the recording (the header clock time in the ``tz`` given
        to :func:`read_edf`).
    duration_s : float
        Number of data records times the record duration, in seconds.
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
        ``"EDF"``, ``"EDF+C"``, ``"BDF"`` or ``"BDF+C"`` (EDF+D files are refused).
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



def _open(path: Path) -> Any:
    try:
        return pyedflib.EdfReader(str(path))
    except OSError as exc:
        raise DataFormatError(
            path, f"pyedflib cannot read the file ({exc})",
            fix="Check the file with EDFbrowser's header editor or re-export it as EDF+.",
        ) from exc


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
    """Read the signals, header and annotations of an EDF, EDF+ or BDF file.

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
        Header fields, timezone-aware start, channels in physical units and annotations.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataFormatError
        If the file is not EDF, is truncated, is discontinuous (EDF+D), has a channel with
        a non-positive sampling rate, or pyedflib refuses it; the message names the file
        and the field.
    ValueError
        If a channel asked for is not in the file; the message lists the channels it has.
    """
    path = Path(path)
    zone = as_timezone(tz)
    if not path.is_file():
        msg = f"EDF file {str(path)!r} does not exist; check the path."
        raise FileNotFoundError(msg)
    header = read_header(path)
    if header.file_type.endswith("+D"):
        raise DataFormatError(
            path, "discontinuous EDF+D/BDF+D files cannot be read (pyedflib refuses them)",
            field="reserved", expected="EDF+C or plain EDF", got=header.file_type,
            fix="Convert it to EDF+C first, e.g. with EDFbrowser (Tools > Convert EDF+D).",
        )
    rates = sampling_rates(path, header)
    reader = _open(path)
    try:
        return _build(path, header, rates, reader, channels, aliases, zone)
    finally:
        reader.close()


def _build(
    path: Path, header: RawHeader, rates: list[float], reader: Any,
    channels: Sequence[str] | None, aliases: Mapping[str, str], zone: tzinfo,
) -> EdfRecording:
    labels = [str(lab) for lab in reader.getSignalLabels()]
    names = _canonical_names(path, labels, aliases)
    out: dict[str, EdfChannel] = {}
    for i in _select(path, labels, names, channels, aliases):
        sh = reader.getSignalHeader(i)
        out[names[i]] = EdfChannel(
            label=labels[i], name=names[i], sfreq_hz=rates[i], unit=str(sh["dimension"]),
            data=np.asarray(reader.readSignal(i), dtype=np.float64),
            physical_min=float(sh["physical_min"]), physical_max=float(sh["physical_max"]),
            prefilter=str(sh["prefilter"]), transducer=str(sh["transducer"]),
        )
    onsets, durations, texts = reader.readAnnotations()
    events = [Event(float(o), max(float(d), 0.0), str(t))
              for o, d, t in zip(onsets, durations, texts, strict=True)]
    return EdfRecording(
        path=path, start=reader.getStartdatetime().replace(tzinfo=zone),
        duration_s=max(header.n_records, 0) * header.record_s, channels=out,
        annotations=events, patient=_subfields(reader, _PATIENT_GETTERS),
        recording=_subfields(reader, _RECORDING_GETTERS), patient_id=header.patient_id,
        recording_id=header.recording_id, file_type=header.file_type,
    )


_PATIENT_GETTERS: Final = {
    "code": "getPatientCode", "sex": "getSex", "birthdate": "getBirthdate",
    "name": "getPatientName", "additional": "getPatientAdditional",
}
_RECORDING_GETTERS: Final = {
    "admincode": "getAdmincode", "technician": "getTechnician", "equipment": "getEquipment",
    "additional": "getRecordingAdditional",
}


def _subfields(reader: Any, getters: Mapping[str, str]) -> dict[str, str]:
    # EDF+ writes "X" for an unknown subfield.
    values = {key: str(getattr(reader, getter)()).strip() for key, getter in getters.items()}
    return {key: "" if value == "X" else value for key, value in values.items()}
