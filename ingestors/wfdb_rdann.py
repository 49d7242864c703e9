"""WFDB epoch annotations as text: ``rdann`` dumps, one 30-s epoch (stage) per line.

A header line, then per annotation ``Elapsed time  Sample #  Type  Sub Chan  Num``
separated by spaces, a TAB and ``Aux``. :mod:`ingestors.slpdb` reads SLPDB's stage
annotations with :func:`read_rdann_epochs`; malformed files raise
:class:`~ingestors.errors.DataFormatError` naming the file, line and field.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ingestors.errors import DataFormatError
from ingestors.types import EPOCH_S
from ingestors.wfdb_text import WfdbSource, parse_clock_s, read_text

__all__ = ["RdannEpochs", "read_rdann_epochs"]

_AnnotationCheck = Callable[[Path, int, list[str]], None]


class RdannEpochs(NamedTuple):
    """Epoch annotations read by :func:`read_rdann_epochs`, one entry per annotation line."""

    epochs: list[int]  # index of the 30-s epoch each line opens, from the record start
    aux: list[list[str]]  # the line's Aux text split at whitespace (never empty)


def read_rdann_epochs(path: Path, fs_hz: float, source: WfdbSource,
                      check_aux: _AnnotationCheck) -> RdannEpochs:
    """Parse an ``rdann`` dump of epoch annotations, one 30-s epoch per line.

    ``check_aux(path, lineno, tokens)`` validates each line's ``Aux`` tokens (raising
    :class:`~ingestors.errors.DataFormatError`) before its sample is placed on the grid.
    See :func:`ingestors.slpdb.read_annotations` for the checks and errors.
    """
    if not isinstance(fs_hz, (int, float)) or not fs_hz > 0:
        msg = f"`fs_hz` must be a sampling rate > 0 Hz for {path}; got {fs_hz!r}"
        raise ValueError(msg)
    lines = read_text(path)
    if not lines or not lines[0].startswith("Elapsed time"):
        raise DataFormatError(path, "missing rdann header line", line=1,
                              expected="'Elapsed time  Sample #  Type  Sub Chan  Num\\tAux'",
                              got=lines[0] if lines else "an empty file",
                              fix="Restore the file's first line.")
    found = RdannEpochs([], [])
    previous: tuple[int, int] | None = None  # (sample, epoch) of the line before
    for lineno, line in enumerate(lines[1:], start=2):
        sample, tokens = _an_fields(path, lineno, line, fs_hz)
        check_aux(path, lineno, tokens)
        found.epochs.append(_epoch_index(path, lineno, sample, previous, fs_hz, source))
        found.aux.append(tokens)
        previous = (sample, found.epochs[-1])
    if not found.epochs:
        raise DataFormatError(path, "no annotations", expected="one line per 30-s epoch",
                              got="only the header line", fix="Restore the annotation lines.")
    return found


def _an_fields(path: Path, lineno: int, line: str, fs_hz: float) -> tuple[int, list[str]]:
    """Sample number and ``Aux`` tokens of one ``.an`` line, validated."""
    prefix, tab, aux = line.partition("\t")
    fields, tokens = prefix.split(), aux.split()
    fix = "Regenerate the file with `rdann -r <rec> -a st` or restore it."
    if not tab or len(fields) != 6 or not tokens:
        problem = ("wrong delimiter: no TAB before Aux" if not tab and len(fields) > 6
                   else "truncated line" if len(fields) < 6 or not tokens
                   else "wrong number of fields before the TAB")
        raise DataFormatError(
            path, problem, line=lineno, expected="Elapsed time, Sample #, Type, Sub, Chan, Num "
            "separated by spaces, then a TAB and Aux starting with the stage", got=line, fix=fix)
    elapsed = parse_clock_s(fields[0])
    if elapsed is None:
        raise DataFormatError(path, "bad time", line=lineno, field="Elapsed time",
                              expected="h:mm:ss.sss or m:ss.sss", got=fields[0], fix=fix)
    if not fields[1].isdigit():
        raise DataFormatError(path, "bad sample number", line=lineno, field="Sample #",
                              expected="a non-negative integer", got=fields[1], fix=fix)
    sample = int(fields[1])
    if abs(elapsed - sample / fs_hz) > 1 / fs_hz + 1e-3:
        raise DataFormatError(
            path, "Elapsed time and Sample # disagree", line=lineno, field="Sample #",
            expected=f"sample {elapsed * fs_hz:.0f} for {fields[0]} at {fs_hz:g} Hz",
            got=sample, fix="Pass the header's sampling rate as `fs_hz`, or restore the file.")
    return sample, tokens


def _epoch_index(path: Path, lineno: int, sample: int, previous: tuple[int, int] | None,
                 fs_hz: float, source: WfdbSource) -> int:
    """Epoch (from the record start) that an annotation at ``sample`` opens, validated."""
    if previous is not None and sample <= previous[0]:
        raise DataFormatError(
            path, "annotation samples are not strictly increasing", line=lineno,
            field="Sample #", expected=f"a sample after {previous[0]}", got=sample,
            fix="Sort the annotations by sample and remove duplicates.")
    spe = EPOCH_S * fs_hz
    index = round(sample / spe)
    if abs(sample - index * spe) > fs_hz:
        raise DataFormatError(
            path, "annotation is off the 30-s epoch grid", line=lineno, field="Sample #",
            expected=f"within 1 s of a multiple of {spe:g} samples", got=sample,
            fix=f"Check `fs_hz`; {source.name.upper()} stage annotations start each 30-s epoch.")
    if previous is not None and index == previous[1]:
        raise DataFormatError(
            path, "two annotations in one epoch", line=lineno, field="Sample #",
            expected=f"one annotation per 30-s epoch (epoch {index} is already annotated)",
            got=sample, fix="Remove the duplicate line.")
    return index
