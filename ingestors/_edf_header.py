"""The fixed-size header of EDF, EDF+ and BDF files, checked before pyedflib opens them.

:func:`read_header` reads the 256-byte fixed header and the per-signal headers, so that a
file that is not EDF, a truncated file or a damaged number is reported with the file, the
field, what was expected and how to fix it; :func:`sampling_rates` refuses channels with a
non-positive sampling rate. Used by :func:`ingestors.edf.read_edf`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final, NamedTuple

from ingestors.errors import DataFormatError

__all__ = ["RawHeader", "SignalFields", "norm_label", "read_header", "read_signal_fields",
           "sampling_rates"]

_WS = re.compile(r"\s+")
_ANNOTATION_LABELS: Final = frozenset({"edfannotations", "bdfannotations"})
_FIXED_HEADER_BYTES: Final = 256
# Widths of the per-signal header fields, each stored for all signals in turn: label,
# transducer, dimension, physical min/max, digital min/max, prefilter, samples per record,
# reserved (EDF specification, section 2.1.3).
_SIGNAL_WIDTHS: Final = (16, 80, 8, 8, 8, 8, 8, 80, 8, 32)


def norm_label(label: str) -> str:
    """Return ``label`` lower-cased with all whitespace removed, the form labels match in."""
    return _WS.sub("", label).lower()


class RawHeader(NamedTuple):
    """The header fields :func:`~ingestors.edf.read_edf` needs before pyedflib opens the file.

    Attributes
    ----------
    file_type : str
        ``"EDF"``, ``"EDF+C"``, ``"EDF+D"`` or the ``"BDF"`` equivalents.
    n_records : int
        Number of data records; -1 while still recording.
    record_s : float
        Duration of a data record in seconds.
    labels : list of str
        Signal labels, annotation signals included, in file order.
    samples_per_record : list of int
        Samples per data record of each signal, in the order of ``labels``.
    patient_id, recording_id : str
        The 80-character identification fields.
    """

    file_type: str
    n_records: int
    record_s: float
    labels: list[str]
    samples_per_record: list[int]
    patient_id: str
    recording_id: str


def _number(path: Path, raw: bytes, name: str, kind: type[int] | type[float]) -> Any:
    text = raw.decode("latin-1").strip()
    try:
        return kind(text)
    except ValueError:
        raise DataFormatError(
            path, "header field is not a number", field=name, got=text,
            fix="The file is not a valid EDF file or its header is damaged.",
        ) from None


def read_header(path: Path) -> RawHeader:
    """Read and check the fixed and per-signal headers of ``path`` and the file's size.

    Raises
    ------
    DataFormatError
        If the file is shorter than its header says, does not start like EDF or BDF,
        declares no signal, or has a header number that does not parse.
    """
    with path.open("rb") as fh:
        head = fh.read(_FIXED_HEADER_BYTES)
        if len(head) < _FIXED_HEADER_BYTES:
            raise DataFormatError(
                path, "file is shorter than the 256-byte EDF header", got=f"{len(head)} bytes",
                fix="The file is truncated or is not an EDF file.",
            )
        is_bdf = head[:8] == b"\xffBIOSEMI"
        if head[:8] != b"0       " and not is_bdf:
            raise DataFormatError(
                path, "not an EDF/BDF file", field="version",
                expected="'0' (EDF) or '\\xffBIOSEMI' (BDF) in the first 8 bytes", got=head[:8],
                fix="Check that this is an EDF file and that it was copied in binary mode.",
            )
        n_signals = _number(path, head[252:256], "number of signals", int)
        body = fh.read(_FIXED_HEADER_BYTES * max(n_signals, 0))
        size = fh.seek(0, 2)
    if n_signals < 1:
        raise DataFormatError(path, "header declares no signal", field="number of signals",
                              expected="at least 1", got=n_signals,
                              fix="The header is damaged; re-export the recording.")
    if len(body) < _FIXED_HEADER_BYTES * n_signals:
        raise DataFormatError(
            path, "file is truncated inside the signal headers",
            expected=f"{_FIXED_HEADER_BYTES * (n_signals + 1)} header bytes for {n_signals} "
            "signals", got=f"{size} bytes", fix="Copy or download the file again.",
        )

    def column(index: int) -> list[bytes]:
        start = sum(width for width in _SIGNAL_WIDTHS[:index]) * n_signals
        width = _SIGNAL_WIDTHS[index]
        return [body[start + k * width:start + (k + 1) * width] for k in range(n_signals)]

    labels = [raw.decode("latin-1").strip() for raw in column(0)]
    reserved = head[192:236].decode("latin-1").strip()
    base = "BDF" if is_bdf else "EDF"
    header = RawHeader(
        reserved[:5] if reserved[:5] in {f"{base}+C", f"{base}+D"} else base,
        _number(path, head[236:244], "number of data records", int),
        _number(path, head[244:252], "duration of a data record", float), labels,
        [_number(path, raw, f"samples per record of {lab!r}", int)
         for raw, lab in zip(column(8), labels, strict=True)],
        head[8:88].decode("latin-1").strip(), head[88:168].decode("latin-1").strip(),
    )
    _check_size(path, header, size, 3 if is_bdf else 2)
    return header


def _check_size(path: Path, header: RawHeader, size: int, bytes_per_sample: int) -> None:
    if header.n_records < 0:  # -1: still recording; EDF allows it, the size is unknown
        return
    record_bytes = sum(header.samples_per_record) * bytes_per_sample
    expected = _FIXED_HEADER_BYTES * (len(header.labels) + 1) + header.n_records * record_bytes
    if size < expected:
        raise DataFormatError(
            path, "file is truncated", expected=f"{expected} bytes for {header.n_records} data "
            "records", got=f"{size} bytes", fix="Copy or download the file again.",
        )


def sampling_rates(path: Path, header: RawHeader) -> list[float]:
    """Rates of the ordinary signals (annotation signals left out, as pyedflib does)."""
    rates = []
    for label, spr in zip(header.labels, header.samples_per_record, strict=True):
        if norm_label(label) in _ANNOTATION_LABELS:
            continue
        if spr <= 0 or header.record_s <= 0:
            raise DataFormatError(
                path, f"sampling rate of channel {label!r} is not positive", field=label,
                expected="samples per record > 0 and record duration > 0 s",
                got=f"{spr} samples per {header.record_s} s",
                fix="The header is damaged; re-export the recording or drop this channel.",
            )
        rates.append(spr / header.record_s)
    return rates


class SignalFields(NamedTuple):
    """The per-signal header fields needed to decode data records by hand.

    Attributes
    ----------
    dimensions : list of str
        Physical dimension of each signal (``"uV"``, ``"bpm"``, ``"g"``), in file order.
    physical_min, physical_max, digital_min, digital_max : list of float
        The ranges that map digital samples onto physical values, per signal.
    start_date, start_time : str
        The fixed header's ``dd.mm.yy`` and ``hh.mm.ss`` fields.
    """

    dimensions: list[str]
    physical_min: list[float]
    physical_max: list[float]
    digital_min: list[float]
    digital_max: list[float]
    start_date: str
    start_time: str


def read_signal_fields(path: Path, header: RawHeader) -> SignalFields:
    """Read the dimension and the physical and digital ranges of every signal of ``path``.

    ``header`` is what :func:`read_header` returned for the same file (which checked that
    the signal headers are complete).

    Raises
    ------
    DataFormatError
        If a range does not parse as a number or a digital range is empty.
    """
    n_signals = len(header.labels)
    with path.open("rb") as fh:
        head = fh.read(_FIXED_HEADER_BYTES)
        body = fh.read(_FIXED_HEADER_BYTES * n_signals)

    def column(index: int) -> list[str]:
        start = sum(width for width in _SIGNAL_WIDTHS[:index]) * n_signals
        width = _SIGNAL_WIDTHS[index]
        return [body[start + k * width:start + (k + 1) * width].decode("latin-1").strip()
                for k in range(n_signals)]

    ranges: list[list[float]] = []
    for index, name in ((3, "physical minimum"), (4, "physical maximum"),
                        (5, "digital minimum"), (6, "digital maximum")):
        ranges.append([_number(path, text.encode("latin-1"), f"{name} of {label!r}", float)
                       for text, label in zip(column(index), header.labels, strict=True)])
    for label, dmin, dmax in zip(header.labels, ranges[2], ranges[3], strict=True):
        if not dmax > dmin:
            raise DataFormatError(
                path, f"digital range of channel {label!r} is empty", field="digital maximum",
                expected=f"a digital maximum above the digital minimum {dmin:g}", got=dmax,
                fix="The header is damaged; re-export the recording.",
            )
    return SignalFields(column(2), ranges[0], ranges[1], ranges[2], ranges[3],
                        head[168:176].decode("latin-1").strip(),
                        head[176:184].decode("latin-1").strip())
