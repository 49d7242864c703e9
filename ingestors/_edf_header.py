r"""The header of EDF, EDF+ and BDF files, read without trusting the writer.

:func:`read_header` reads the 256-byte fixed header and the per-signal headers into an
:class:`EdfHeader`; :mod:`ingestors.edf_decode` turns it into calibrated signals.

Refused with a :class:`~ingestors.errors.DataFormatError` naming the file, the field (and the
signal), what was expected and how to fix it: a file shorter than the header it declares, a
version that is neither EDF (``"0"``) nor BDF (``"\xffBIOSEMI"``), no signal, a header byte
count that does not match the number of signals, a number field that is not a number, a start
date or time that is not one.

Read although the specification forbids it, each written to :attr:`EdfHeader.notes` (the
decoder turns all notes of a file into one warning): bytes outside printable ASCII (decoded
as Latin-1; a NUL byte ends a field, as C writers pad with them), a decimal comma in a number
(``"-187,5"``), an EDF+ file without an annotation signal (read as plain EDF), and EDF+
identification fields that are not in their EDF+ form (subfields left empty).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from ingestors.errors import DataFormatError

__all__ = ["EdfHeader", "SignalHeader", "identification", "norm_label", "read_header"]

_WS = re.compile(r"\s+")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_ANNOTATION_LABELS: Final = frozenset({"edfannotations", "bdfannotations"})
_FIXED_HEADER_BYTES: Final = 256
# Widths of the per-signal header fields, each stored for all signals in turn (EDF
# specification, section 2.1.3), and their names in messages.
_SIGNAL_WIDTHS: Final = (16, 80, 8, 8, 8, 8, 8, 80, 8, 32)
_SIGNAL_FIELDS: Final = ("label", "transducer type", "physical dimension", "physical minimum",
                         "physical maximum", "digital minimum", "digital maximum",
                         "prefiltering", "samples per record", "reserved")
_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
                  "DEC")
_STARTDATE: Final = re.compile(r"^Startdate\s+\d{2}-([A-Z]{3})-(\d{4})\b")
_DAMAGED: Final = "The header is damaged; re-export the recording."


def norm_label(label: str) -> str:
    """Return ``label`` lower-cased with all whitespace removed, the form labels match in."""
    return _WS.sub("", label).lower()


@dataclass(frozen=True)
class SignalHeader:
    """The header fields of one signal, as written (numbers parsed, text stripped).

    Attributes
    ----------
    index : int
        Position in the file's signal list, annotation signals counted.
    label, transducer, dimension, prefilter : str
        Label, transducer type, physical dimension and prefiltering text.
    physical_min, physical_max, digital_min, digital_max : float
        The ranges that map stored (digital) samples onto physical values.
    samples_per_record : int
        Samples of this signal in one data record.
    """

    index: int
    label: str
    transducer: str
    dimension: str
    physical_min: float
    physical_max: float
    digital_min: float
    digital_max: float
    prefilter: str
    samples_per_record: int

    @property
    def is_annotation(self) -> bool:
        """True for an ``EDF Annotations``/``BDF Annotations`` signal (TALs, not samples)."""
        return norm_label(self.label) in _ANNOTATION_LABELS


@dataclass(frozen=True)
class EdfHeader:
    """What :func:`read_header` found in a file's header.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    file_type : str
        ``"EDF"``, ``"EDF+C"``, ``"EDF+D"`` or the ``"BDF"`` equivalents.
    n_records : int
        Number of data records as written: -1 while still recording, possibly stale.
    record_s : float
        Duration of a data record in seconds.
    signals : tuple of SignalHeader
        Every signal, annotation signals included, in file order.
    patient_id, recording_id : str
        The 80-character identification fields.
    start_date, start_time : str
        The ``dd.mm.yy`` and ``hh.mm.ss`` fields.
    notes : tuple of str
        What was read although the specification forbids it, one sentence each.
    """

    path: Path
    file_type: str
    n_records: int
    record_s: float
    signals: tuple[SignalHeader, ...]
    patient_id: str
    recording_id: str
    start_date: str
    start_time: str
    notes: tuple[str, ...]

    @property
    def bytes_per_sample(self) -> int:
        """2 for EDF (16-bit samples), 3 for BDF (24-bit)."""
        return 3 if self.file_type.startswith("BDF") else 2

    @property
    def header_bytes(self) -> int:
        """Size of the whole header: where the first data record starts."""
        return _FIXED_HEADER_BYTES * (len(self.signals) + 1)

    @property
    def record_bytes(self) -> int:
        """Size of one data record."""
        return self.bytes_per_sample * sum(self.samples_per_record)

    @property
    def labels(self) -> list[str]:
        """Signal labels, annotation signals included, in file order."""
        return [s.label for s in self.signals]

    @property
    def samples_per_record(self) -> list[int]:
        """Samples per data record of each signal, in the order of :attr:`labels`."""
        return [s.samples_per_record for s in self.signals]

    def clock_start(self) -> datetime:
        """The header's start as a naive clock time (EDF+ ``Startdate`` gives the year).

        Raises
        ------
        DataFormatError
            If the start date or time is not a date (field ``startdate``).
        """
        try:
            day, month, yy = (int(p) for p in self.start_date.split("."))
            hour, minute, second = (int(p) for p in self.start_time.split("."))
            year = 1900 + yy if yy >= 85 else 2000 + yy  # EDF: years 1985-2084
            full = _STARTDATE.match(self.recording_id)
            if full and full.group(1) in _MONTHS:
                year = int(full.group(2))
            return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - clock time
        except ValueError:
            raise DataFormatError(
                self.path, "start date or time of the recording is not a date",
                field="startdate", expected="'dd.mm.yy' and 'hh.mm.ss'",
                got=f"{self.start_date} {self.start_time}", fix=_DAMAGED,
            ) from None


class _Fields:
    """Decodes header fields of one file, collecting what was tolerated."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.odd_text: list[str] = []
        self.commas: list[str] = []

    def text(self, raw: bytes, what: str) -> str:
        decoded = raw.decode("latin-1")
        value = decoded.split("\x00", 1)[0].strip()
        if any(not " " <= char <= "~" for char in decoded.rstrip(" ")):
            self.odd_text.append(f"{what} ({value!r})")
        return value

    def number(self, raw: bytes, what: str, kind: type[int] | type[float] = float) -> float:
        text = raw.decode("latin-1").split("\x00", 1)[0].strip()
        if kind is float and "," in text and "." not in text:
            text = text.replace(",", ".")
            self.commas.append(f"{what} ({text})")
        if not (_INT if kind is int else _FLOAT).fullmatch(text):
            raise DataFormatError(
                self.path, "header field is not a number", field=what,
                expected="an integer" if kind is int else "a decimal number", got=text,
                fix="The file is not a valid EDF file or its header is damaged.",
            )
        return kind(text)

    def notes(self) -> list[str]:
        out = []
        if self.odd_text:
            out.append("bytes outside printable ASCII in " + ", ".join(self.odd_text)
                       + ", decoded as Latin-1 (a NUL byte ends a field)")
        if self.commas:
            out.append("a decimal comma in " + ", ".join(self.commas) + ", read as a point")
        return out


def _fixed_part(path: Path, head: bytes) -> bool:
    """Check length and version of the fixed header; True for BDF."""
    if len(head) < _FIXED_HEADER_BYTES:
        raise DataFormatError(
            path, "file is shorter than the 256-byte EDF header", got=f"{len(head)} bytes",
            fix="The file is truncated or is not an EDF file.",
        )
    is_bdf = head[:8] == b"\xffBIOSEMI"
    if head[:8] != b"0       " and not is_bdf:
        raise DataFormatError(
            path, "not an EDF/BDF file", field="version",
            expected="'0' (EDF) or '\xffBIOSEMI' (BDF) in the first 8 bytes", got=head[:8],
            fix="Check that this is an EDF file and that it was copied in binary mode.",
        )
    return is_bdf


def _signal_count(path: Path, head: bytes, fields: _Fields) -> int:
    n_signals = int(fields.number(head[252:256], "number of signals", int))
    if n_signals < 1:
        raise DataFormatError(path, "header declares no signal", field="number of signals",
                              expected="at least 1", got=n_signals,
                              fix="The header is damaged; re-export the recording.")
    declared = int(fields.number(head[184:192], "number of bytes in header record", int))
    if declared != _FIXED_HEADER_BYTES * (n_signals + 1):
        raise DataFormatError(
            path, "header byte count does not match the number of signals",
            field="number of bytes in header record",
            expected=f"256 x (1 + {n_signals} signals) = {256 * (n_signals + 1)}",
            got=declared, fix="The header is damaged (the byte count or the number of "
            "signals is wrong); re-export the recording.",
        )
    return n_signals


def _signal_headers(body: bytes, n_signals: int, fields: _Fields) -> tuple[SignalHeader, ...]:
    def column(index: int) -> list[bytes]:
        start = sum(_SIGNAL_WIDTHS[:index]) * n_signals
        width = _SIGNAL_WIDTHS[index]
        return [body[start + k * width:start + (k + 1) * width] for k in range(n_signals)]

    labels = [fields.text(raw, f"label of signal {k}") for k, raw in enumerate(column(0))]

    def texts(index: int) -> list[str]:
        return [fields.text(raw, f"{_SIGNAL_FIELDS[index]} of {label!r}")
                for raw, label in zip(column(index), labels, strict=True)]

    def numbers(index: int, kind: type[int] | type[float] = float) -> list[float]:
        return [fields.number(raw, f"{_SIGNAL_FIELDS[index]} of {label!r}", kind)
                for raw, label in zip(column(index), labels, strict=True)]

    # The physical dimension is decoded silently: the decoder reports any odd unit itself.
    dimensions = [raw.decode("latin-1").split("\x00", 1)[0].strip() for raw in column(2)]
    transducers, prefilters = texts(1), texts(7)
    texts(9)  # reserved: only checked for odd bytes
    ranges = [numbers(index) for index in (3, 4, 5, 6)]
    samples = [int(n) for n in numbers(8, int)]
    return tuple(
        SignalHeader(k, labels[k], transducers[k], dimensions[k], ranges[0][k], ranges[1][k],
                     ranges[2][k], ranges[3][k], prefilters[k], samples[k])
        for k in range(n_signals)
    )


def _file_type(head: bytes, is_bdf: bool, signals: tuple[SignalHeader, ...],
               notes: list[str]) -> str:
    base = "BDF" if is_bdf else "EDF"
    reserved = head[192:236].decode("latin-1").strip()
    if reserved[:5] not in {f"{base}+C", f"{base}+D"}:
        return base
    if not any(s.is_annotation for s in signals):
        notes.append(f"declares {reserved[:5]} but has no '{base} Annotations' signal; read "
                     f"as plain {base} (continuous, no annotations)")
        return base
    return reserved[:5]


def read_header(path: Path) -> EdfHeader:
    """Read and check the fixed and per-signal headers of ``path``.

    Parameters
    ----------
    path : pathlib.Path
        An EDF, EDF+, BDF or BDF+ file.

    Returns
    -------
    EdfHeader
        The fields, numbers parsed, and the notes on what was tolerated.

    Raises
    ------
    DataFormatError
        If the file is shorter than its header, does not start like EDF or BDF, declares
        no signal, declares a header size that does not match its signal count, or has a
        number field that does not parse.
    """
    fields = _Fields(path)
    with path.open("rb") as fh:
        head = fh.read(_FIXED_HEADER_BYTES)
        is_bdf = _fixed_part(path, head)
        n_signals = _signal_count(path, head, fields)
        body = fh.read(_FIXED_HEADER_BYTES * n_signals)
        size = fh.seek(0, 2)
    if len(body) < _FIXED_HEADER_BYTES * n_signals:
        raise DataFormatError(
            path, "file is truncated inside the signal headers",
            expected=f"{_FIXED_HEADER_BYTES * (n_signals + 1)} header bytes for {n_signals} "
            "signals", got=f"{size} bytes", fix="Copy or download the file again.",
        )
    n_records = int(fields.number(head[236:244], "number of data records", int))
    record_s = fields.number(head[244:252], "duration of a data record")
    patient_id = fields.text(head[8:88], "patient identification")
    recording_id = fields.text(head[88:168], "recording identification")
    start_date = fields.text(head[168:176], "startdate")
    start_time = fields.text(head[176:184], "starttime")
    signals = _signal_headers(body, n_signals, fields)
    notes = fields.notes()
    file_type = _file_type(head, is_bdf, signals, notes)
    return EdfHeader(path, file_type, n_records, record_s, signals, patient_id, recording_id,
                     start_date, start_time, tuple(notes))


# -- EDF+ identification subfields ----------------------------------------------------------


def _subfield(value: str) -> str:
    """EDF+ writes "X" for unknown and "_" for a space inside a subfield."""
    return "" if value == "X" else value.replace("_", " ")


def _birthdate(value: str) -> str:
    """``"30-JUN-1969"`` -> ``"30 jun 1969"`` (pyedflib's form); "X" -> ""."""
    parts = value.split("-")
    return " ".join([parts[0], parts[1].lower(), *parts[2:]]) if len(parts) == 3 else ""


def _split(text: str, keys: tuple[str, ...], forms: tuple[Callable[[str], str], ...],
           ) -> dict[str, str] | None:
    tokens = text.split(" ", len(keys) - 1)
    if len(tokens) < len(keys) - 1:
        return None
    tokens += [""] * (len(keys) - len(tokens))
    return {key: form(token).strip() for key, form, token in zip(keys, forms, tokens,
                                                                   strict=True)}


def _sex(value: str) -> str:
    return {"M": "Male", "F": "Female"}.get(value, "")


def _keep(value: str) -> str:
    return value


def identification(header: EdfHeader) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """EDF+ patient and recording subfields of ``header``, and a note per malformed field.

    Returns
    -------
    patient : dict of str to str
        ``code``, ``sex`` (``"Male"``/``"Female"``/``""``), ``birthdate``
        (``"30 jun 1969"``), ``name``, ``additional``; all empty for plain EDF/BDF.
    recording : dict of str to str
        ``admincode``, ``technician``, ``equipment``, ``additional``.
    notes : list of str
        A sentence for an EDF+ field that is not in its EDF+ form (its subfields are empty).
    """
    patient_keys = ("code", "sex", "birthdate", "name", "additional")
    recording_keys = ("admincode", "technician", "equipment", "additional")
    empty_patient = dict.fromkeys(patient_keys, "")
    empty_recording = dict.fromkeys(recording_keys, "")
    if header.file_type in ("EDF", "BDF"):
        return empty_patient, empty_recording, []
    notes = []
    patient = _split(header.patient_id, patient_keys,
                     (_subfield, _sex, _birthdate, _subfield, _keep))
    if patient is None:
        notes.append(f"patient identification {header.patient_id!r} is not in the EDF+ form "
                     "'code sex birthdate name'; its subfields are left empty")
    words = header.recording_id.split(" ", 2)
    recording = None
    if len(words) == 3 and words[0] == "Startdate":
        recording = _split(words[2], recording_keys, (_subfield, _subfield, _subfield, _keep))
    if recording is None:
        notes.append(f"recording identification {header.recording_id!r} is not in the EDF+ "
                     "form 'Startdate dd-MMM-yyyy admincode technician equipment'; its "
                     "subfields are left empty")
    return patient or empty_patient, recording or empty_recording, notes
