"""Hypnogram writers: per-epoch CSV, BIDS-style TSV with JSON sidecar, Sleep-EDF style EDF+.

Each output is read back by :mod:`ingestors.hypnogram_io` with the same stages, start time
and epoch length. Codes after a round trip are the writer's names (:data:`STAGE_NAMES`,
:data:`SLEEP_EDF_NAMES`), not the original source's: Sleep-EDF ``"Sleep stage 4"`` is
written as ``N3`` / ``"Sleep stage 3"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from os import PathLike
from pathlib import Path
from typing import Any, Final

import pyedflib

from ingestors.edf import as_timezone
from ingestors.types import Hypnogram
from models.stages import Stage

__all__ = ["SLEEP_EDF_NAMES", "STAGE_NAMES", "write_bids_tsv", "write_csv",
           "write_edf_annotations"]

#: Names written to CSV and TSV files (read back with ``parse_stage(..., "text")``).
STAGE_NAMES: Final[Mapping[Stage, str]] = {
    Stage.W: "W", Stage.N1: "N1", Stage.N2: "N2", Stage.N3: "N3", Stage.REM: "REM",
    Stage.MOVEMENT: "MOVEMENT", Stage.UNSCORED: "UNSCORED",
}

#: Annotation texts written to EDF+ files, as in Sleep-EDF.
SLEEP_EDF_NAMES: Final[Mapping[Stage, str]] = {
    Stage.W: "Sleep stage W", Stage.N1: "Sleep stage 1", Stage.N2: "Sleep stage 2",
    Stage.N3: "Sleep stage 3", Stage.REM: "Sleep stage R", Stage.MOVEMENT: "Movement time",
    Stage.UNSCORED: "Sleep stage ?",
}

_LEVELS: Final[Mapping[str, str]] = {
    "W": "Wake", "N1": "NREM stage 1", "N2": "NREM stage 2",
    "N3": "NREM stage 3 (R&K stages 3 and 4)", "REM": "REM sleep",
    "MOVEMENT": "Movement time or artefact: not scorable, excluded from scoring",
    "UNSCORED": "Not scored (outside the scoring window or unknown)",
}


def _checked(hyp: Hypnogram) -> list[Stage]:
    if not isinstance(hyp, Hypnogram):
        msg = f"`hyp` must be an ingestors.types.Hypnogram; got {type(hyp).__name__}"
        raise TypeError(msg)
    if len(hyp) == 0:
        msg = "`hyp` has no epochs; there is nothing to write. Check the reader's output."
        raise ValueError(msg)
    valid = {int(s) for s in Stage}
    bad = sorted({int(s) for s in hyp.stages} - valid)
    if bad:
        msg = (f"`hyp.stages` must hold models.stages.Stage values {sorted(valid)}; got {bad}. "
               "Map source codes with parse_stages() first.")
        raise ValueError(msg)
    return [Stage(int(s)) for s in hyp.stages]


def _runs(stages: list[Stage]) -> list[tuple[int, int, Stage]]:
    """(first epoch, number of epochs, stage) of each run of equal stages."""
    edges = [0] + [i for i in range(1, len(stages)) if stages[i] != stages[i - 1]]
    return [(a, b - a, stages[a]) for a, b in zip(edges, [*edges[1:], len(stages)],
                                                   strict=True)]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def write_csv(hyp: Hypnogram, path: str | PathLike[str]) -> Path:
    """Write one row per epoch: ``epoch,onset_s,start_utc,stage``.

    A comment header carries ``# start: <ISO 8601 with offset>`` (left out when the start is
    nominal; ``start_utc`` is then empty), ``# epoch_s:`` and ``# subject:``, which
    :func:`~ingestors.hypnogram_io.read_hypnogram_table` reads back.

    Parameters
    ----------
    hyp : Hypnogram
        The hypnogram.
    path : path-like
        Output file, overwritten.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    stages = _checked(hyp)
    out = Path(path)
    lines = ["# sleepstream hypnogram, one row per epoch; onset_s is seconds since start"]
    if not hyp.start_is_nominal:
        lines.append(f"# start: {hyp.start.isoformat()}")
    lines.append(f"# epoch_s: {_num(hyp.epoch_s)}")
    if hyp.subject:
        lines.append(f"# subject: {_one_line(hyp.subject)}")
    lines.append("epoch,onset_s,start_utc,stage")
    for i, stage in enumerate(stages):
        onset = i * hyp.epoch_s
        utc = "" if hyp.start_is_nominal else \
            (hyp.start + timedelta(seconds=onset)).astimezone(UTC).isoformat()
        lines.append(f"{i},{_num(onset)},{utc},{STAGE_NAMES[stage]}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def write_bids_tsv(hyp: Hypnogram, path: str | PathLike[str]) -> Path:
    """Write a BIDS-style events table ``onset<TAB>duration<TAB>stage`` plus a JSON sidecar.

    Consecutive equal stages are merged into one row. The sidecar ``<stem>.json`` beside the
    table describes the columns (BIDS ``Description``/``Units``/``Levels``) and carries
    ``StartTime`` (ISO 8601 with offset, ``null`` when the start is nominal),
    ``EpochLength`` and ``Subject``; :func:`~ingestors.hypnogram_io.read_hypnogram_table`
    takes the start and epoch length from it.

    Parameters
    ----------
    hyp : Hypnogram
        The hypnogram.
    path : path-like
        Output ``.tsv`` file, overwritten; the sidecar is ``path`` with suffix ``.json``.

    Returns
    -------
    pathlib.Path
        The table written.
    """
    stages = _checked(hyp)
    out = Path(path)
    rows = ["onset\tduration\tstage"]
    for first, n, stage in _runs(stages):
        rows.append(f"{_num(first * hyp.epoch_s)}\t{_num(n * hyp.epoch_s)}\t{STAGE_NAMES[stage]}")
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    sidecar: dict[str, Any] = {
        "onset": {"Description": "Start of a run of equal stages, seconds since StartTime",
                  "Units": "s"},
        "duration": {"Description": "Length of the run (a whole number of epochs)",
                     "Units": "s"},
        "stage": {"Description": "Sleep stage (AASM) of every epoch in the run",
                  "Levels": dict(_LEVELS)},
        "StartTime": None if hyp.start_is_nominal else hyp.start.isoformat(),
        "EpochLength": hyp.epoch_s,
        "Subject": hyp.subject,
        "GeneratedBy": [{"Name": "sleepstream"}],
    }
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return out


def _edf_text(text: str) -> str:
    # EDF+ header subfields are ASCII without spaces (pyedflib warns otherwise).
    return "_".join(text.encode("ascii", "replace").decode("ascii").split())[:40]


def write_edf_annotations(
    hyp: Hypnogram, path: str | PathLike[str], *,
    tz: tzinfo | str = "Europe/Amsterdam",
) -> Path:
    """Write an EDF+ file holding only an annotation channel, as Sleep-EDF hypnograms do.

    Runs of equal stages become one annotation each (onset, duration, ``"Sleep stage
    W/1/2/3/R/?"`` or ``"Movement time"``; N3 is written as ``"Sleep stage 3"``). No signal
    channel is written: pyedflib (tested with 0.1.42) writes EDF+ files with zero ordinary
    signals, so no placeholder is needed.

    Parameters
    ----------
    hyp : Hypnogram
        The hypnogram; ``hyp.subject`` becomes the EDF+ patient code (ASCII, spaces as ``_``).
    path : path-like
        Output file, overwritten.
    tz : tzinfo or str
        Zone whose wall-clock time is written as the EDF start (EDF has no zone field).
        The default equals the default of
        :func:`~ingestors.hypnogram_io.read_edf_hypnogram`, so that a round trip with
        defaults keeps the start instant; read back with the same ``tz`` otherwise. EDF
        keeps neither the epoch length (read back with ``epoch_s=``) nor
        ``start_is_nominal``; on the repeated hour of a DST change the start is ambiguous.
        A sub-second start is kept to 0.1 ms (EDF+ onset resolution) by writing the fraction
        into the onsets.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    stages = _checked(hyp)
    zone = as_timezone(tz)
    out = Path(path)
    local: datetime = hyp.start.astimezone(zone).replace(tzinfo=None)
    # pyedflib 0.1.42 drops a sub-second start; whole seconds in the header and the
    # fraction in every onset keep the start exact (the reader adds the first onset).
    offset_s = local.microsecond / 1e6
    writer = pyedflib.EdfWriter(str(out), 0, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setStartdatetime(local.replace(microsecond=0))
        if hyp.subject:
            writer.setPatientCode(_edf_text(hyp.subject))
        writer.setEquipment("sleepstream")
        for first, n, stage in _runs(stages):
            writer.writeAnnotation(offset_s + first * hyp.epoch_s, float(n * hyp.epoch_s),
                                   SLEEP_EDF_NAMES[stage])
    finally:
        writer.close()
    return out
