"""What a recording or dataset folder holds: subjects, duration, channels, labels, problems.

:func:`inspect_path` recognises every format the readers know (Sleep-Accel release and
the authors' cropped streams and feature files, SLPDB text dumps, EDF/EDF+/BDF recordings
and hypnograms, NSRR XML, CSV/TSV hypnograms), reads each subject with the real readers and
collects what it found. One unreadable subject does not stop the inventory: its error is
listed as a problem of that subject.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ingestors import sleep_accel, slpdb
from ingestors.edf import EdfRecording, read_edf
from ingestors.errors import DataFormatError
from ingestors.hypnogram_io import read_scoring
from ingestors.sleep_accel_features import list_feature_subjects, read_walch_features
from ingestors.types import Hypnogram, TimeSeries
from models.stages import Stage

__all__ = ["ChannelSummary", "Inventory", "SubjectSummary", "detect_kind", "inspect_path"]

_HYPNOGRAM_SUFFIXES = (".xml", ".csv", ".tsv")
_EDF_SUFFIXES = ("edf", "EDF", "bdf", "BDF")


@dataclass(frozen=True)
class ChannelSummary:
    """One signal channel of a recording."""

    name: str
    label: str
    sfreq_hz: float
    unit: str
    n_samples: int


@dataclass(frozen=True)
class SubjectSummary:
    """What one subject, record or night holds.

    Attributes
    ----------
    subject : str
        Subject, record or night id.
    group : str
        The person the night belongs to (SLPDB ``slp01a`` and ``slp01b`` are ``slp01``).
    duration_s : float or None
        Length of the labelled night, else of the recording.
    streams : dict of str to str
        Sample streams (heart rate, counts, beats ...) with a one-line description.
    samples : dict of str to int
        Number of samples (or beats, or valid epochs) per stream.
    channels : tuple of ChannelSummary
        EDF signal channels.
    n_epochs : int
        Scored-or-not epochs in the hypnogram (0 without labels).
    label_counts : dict of str to int
        Epochs per source code, short form (``"W"``, ``"4"``, ``"?"``, ``"MT"``).
    problems : tuple of str
        What the readers repaired or could not read.
    """

    subject: str
    group: str
    duration_s: float | None = None
    streams: dict[str, str] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    channels: tuple[ChannelSummary, ...] = ()
    n_epochs: int = 0
    label_counts: dict[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inventory:
    """The result of :func:`inspect_path`."""

    path: Path
    kind: str
    subjects: tuple[SubjectSummary, ...]

    @property
    def n_groups(self) -> int:
        """Number of distinct people (subjects) behind the records."""
        return len({s.group for s in self.subjects})

    @property
    def n_epochs(self) -> int:
        """Epochs over all subjects."""
        return sum(s.n_epochs for s in self.subjects)

    def label_totals(self) -> dict[str, int]:
        """Epochs per source code over all subjects, in stage order."""
        total: Counter[str] = Counter()
        for s in self.subjects:
            total.update(s.label_counts)
        return {code: total[code] for code in _ordered_codes(total)}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "n_subjects": len(self.subjects),
            "n_groups": self.n_groups,
            "n_epochs": self.n_epochs,
            "label_totals": self.label_totals(),
            "subjects": [asdict(s) for s in self.subjects],
        }


# --------------------------------------------------------------------------- labels
_SHORT = {"sleep stage ?": "?", "movement time": "MT"}


def _short_code(code: str) -> str:
    low = code.strip().lower()
    if low in _SHORT:
        return _SHORT[low]
    if low.startswith("sleep stage "):
        return code.strip()[len("sleep stage "):].upper()
    return code.strip() or "(gap)"


_STAGE_ORDER = {"-1": -1, "?": 9, "MT": 8, "M": 8, "W": 0, "R": 5, "REM": 5}


def _ordered_codes(codes: Iterable[str]) -> list[str]:
    def key(code: str) -> tuple[float, str]:
        if code in _STAGE_ORDER:
            return (_STAGE_ORDER[code], code)
        try:
            return (float(code), code)
        except ValueError:
            return (7.0, code)

    return sorted(set(codes), key=key)


def _label_counts(hyp: Hypnogram) -> dict[str, int]:
    if hyp.codes:
        found = Counter(_short_code(c) for c in hyp.codes)
    else:
        found = Counter(Stage(int(s)).name for s in hyp.stages)
    return {code: found[code] for code in _ordered_codes(found)}


def _describe(series: TimeSeries | None, what: str) -> dict[str, str]:
    if series is None or len(series) == 0:
        return {}
    t = series.t_s
    step = float(np.median(np.diff(t))) if len(series) > 1 else float("nan")
    text = f"{len(series):,} samples, {t[0] / 3600:+.2f} h to {t[-1] / 3600:+.2f} h"
    if np.isfinite(step):
        text += f", median step {step:.3g} s"
    return {what: text}


# --------------------------------------------------------------------------- per format
def _sleep_accel(folder: Path) -> Iterator[SubjectSummary]:
    for subject in sleep_accel.list_subjects(folder):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the same repairs are listed in `problems`
                night = sleep_accel.read_subject(folder, subject)
        except (DataFormatError, OSError) as err:
            yield SubjectSummary(subject, subject, problems=(f"unreadable: {err}",))
            continue
        streams: dict[str, str] = {}
        samples: dict[str, int] = {}
        for name in ("heart_rate", "counts", "motion", "steps"):
            series = getattr(night, name)
            streams |= _describe(series, name)
            if series is not None:
                samples[name] = len(series)
        hyp = night.labels
        if hyp is not None and night.heart_rate is not None:
            in_night = sleep_accel.hr_samples_in_night(night)
            streams["heart_rate_in_night"] = f"{len(in_night):,} samples in the labelled night"
            samples["heart_rate_in_night"] = len(in_night)
        yield SubjectSummary(
            subject, subject,
            duration_s=hyp.duration_s if hyp is not None else None,
            streams=streams,
            samples=samples,
            n_epochs=len(hyp) if hyp is not None else 0,
            label_counts=_label_counts(hyp) if hyp is not None else {},
            problems=night.problems,
        )


def _walch_features(folder: Path) -> Iterator[SubjectSummary]:
    for subject in list_feature_subjects(folder):
        try:
            feats = read_walch_features(folder, subject)
        except (DataFormatError, OSError) as err:
            yield SubjectSummary(subject, subject, problems=(f"unreadable: {err}",))
            continue
        codes = Counter(feats.codes)
        n = len(feats.stages)
        gaps = int(np.count_nonzero(np.diff(feats.epoch_start_s) > 30.0))
        problems = (f"{gaps} gaps between valid epochs",) if gaps else ()
        yield SubjectSummary(
            subject, subject,
            duration_s=float(feats.epoch_start_s[-1] + 30.0) if n else None,
            streams={"features": f"{n:,} valid epochs x 5 features"},
            samples={"features": n},
            n_epochs=n,
            label_counts={c: codes[c] for c in _ordered_codes(codes)},
            problems=problems,
        )


def _slpdb(folder: Path) -> Iterator[SubjectSummary]:
    for record in slpdb.list_records(folder):
        try:
            rec = slpdb.read_record(folder, record)
        except (DataFormatError, OSError) as err:
            group = slpdb.subject_of(record)
            yield SubjectSummary(record, group, problems=(f"unreadable: {err}",))
            continue
        head = rec.header
        channels = tuple(
            ChannelSummary(sig.description, sig.description, head.fs_hz, sig.unit, head.n_samples)
            for sig in head.signals
        )
        streams: dict[str, str] = {}
        samples: dict[str, int] = {}
        if rec.beats is not None:
            n_normal = int(np.count_nonzero(rec.beats.normal))
            streams["beats"] = f"{len(rec.beats):,} beats ({n_normal:,} normal)"
            samples["beats"] = len(rec.beats)
        if rec.events:
            streams["events"] = f"{len(rec.events):,} scored events"
            samples["events"] = len(rec.events)
        hyp = rec.hypnogram
        yield SubjectSummary(
            record, rec.subject,
            duration_s=head.duration_s,
            streams=streams,
            samples=samples,
            channels=channels,
            n_epochs=len(hyp) if hyp is not None else 0,
            label_counts=_label_counts(hyp) if hyp is not None else {},
            problems=rec.problems,
        )


def _read_quietly(fn: Callable[[], Any]) -> tuple[Any, tuple[str, ...]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn()
    return value, tuple(str(w.message) for w in caught)


def _edf_file(path: Path) -> SubjectSummary:
    name = re.sub(r"\.[eb]df$", "", path.name, flags=re.I)
    name = name.removesuffix("-Hypnogram").removesuffix("-PSG")
    rec: EdfRecording
    rec, problems = _read_quietly(lambda: read_edf(path))
    channels = tuple(
        ChannelSummary(ch.name, ch.label, ch.sfreq_hz, ch.unit, int(ch.data.shape[0]))
        for ch in rec.channels.values()
    )
    hyp: Hypnogram | None = None
    if any(e.label.lower().startswith(("sleep stage", "movement")) for e in rec.annotations):
        scoring, more = _read_quietly(lambda: read_scoring(path))
        # the hypnogram reader reads the file again: its EDF warnings are not news
        hyp, problems = scoring.hypnogram, tuple(dict.fromkeys(problems + more))
    streams = {"annotations": f"{len(rec.annotations):,} EDF+ annotations"}
    return SubjectSummary(
        name, name[:5] if name.startswith("SC4") else name,
        duration_s=hyp.duration_s if hyp is not None else rec.duration_s,
        streams=streams if rec.annotations else {},
        channels=channels,
        n_epochs=len(hyp) if hyp is not None else 0,
        label_counts=_label_counts(hyp) if hyp is not None else {},
        problems=problems,
    )


def _table_file(path: Path) -> SubjectSummary:
    scoring, problems = _read_quietly(lambda: read_scoring(path))
    hyp: Hypnogram = scoring.hypnogram
    name = hyp.subject or path.stem
    streams = {"events": f"{len(scoring.events):,} scored events"} if scoring.events else {}
    return SubjectSummary(
        name, name, duration_s=hyp.duration_s, streams=streams, n_epochs=len(hyp),
        label_counts=_label_counts(hyp), problems=problems,
    )


def _files(
    files: Iterable[Path], read: Callable[[Path], SubjectSummary]
) -> Iterator[SubjectSummary]:
    for path in sorted(files):
        try:
            yield read(path)
        except (DataFormatError, OSError) as err:
            yield SubjectSummary(path.name, path.name, problems=(f"unreadable: {err}",))


# --------------------------------------------------------------------------- dispatch
def detect_kind(path: str | PathLike[str]) -> str:
    """Name the format of a file or folder (see :func:`inspect_path` for the list).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataFormatError
        If nothing in it is a format sleepstream reads.
    """
    p = Path(path)
    if not p.exists():
        msg = f"{p}: no such file or folder; check the path (relative paths start at {Path.cwd()})"
        raise FileNotFoundError(msg)
    if p.is_file():
        return _file_kind(p)
    if (p / "features").is_dir() or next(p.glob("*_psg_labels.out"), None):
        return "sleep-accel-features"
    if (p / "cropped").is_dir():
        return "sleep-accel-cropped"
    if next(p.glob("*.hea"), None):
        return "slpdb"
    if any(next(p.glob(f"*.{ext}"), None) for ext in _EDF_SUFFIXES):
        return "edf"
    if any(next(p.glob(f"*{s}"), None) for s in _HYPNOGRAM_SUFFIXES):
        return "hypnograms"
    layout = sleep_accel.detect_layout(p)  # raises DataFormatError naming what it saw
    return "sleep-accel" if layout == "physionet" else "sleep-accel-cropped"


def _file_kind(p: Path) -> str:
    suffix = p.suffix.lower()
    if suffix in (".edf", ".bdf"):
        return "edf"
    if suffix in (".hea", ".an", ".rr"):
        return "slpdb"
    if suffix in _HYPNOGRAM_SUFFIXES or suffix == ".txt":
        return "hypnograms"
    raise DataFormatError(
        p, "unknown file type", expected=".edf, .hea/.an/.rr, .xml, .csv, .tsv or a folder",
        got=p.suffix or "(no suffix)",
        fix="Pass a recording, a hypnogram or a dataset folder.",
    )


def inspect_path(path: str | PathLike[str]) -> Inventory:
    """Read everything under ``path`` with the real readers and summarise it.

    Parameters
    ----------
    path : str or path-like
        A dataset folder (Sleep-Accel release or ``cropped/`` folder, the authors' feature
        folder, an SLPDB folder, a folder of EDF or hypnogram files) or one file.

    Returns
    -------
    Inventory
        One :class:`SubjectSummary` per subject, record or night.
    """
    p = Path(path)
    kind = detect_kind(p)
    if kind == "sleep-accel-features":
        folder = p / "features" if (p / "features").is_dir() else p
        subjects = tuple(_walch_features(folder))
    elif kind.startswith("sleep-accel"):
        folder = p / "cropped" if (p / "cropped").is_dir() else p
        subjects = tuple(_sleep_accel(folder))
    elif kind == "slpdb":
        folder = p if p.is_dir() else p.parent
        records = _slpdb(folder)
        subjects = tuple(r for r in records if p.is_dir() or r.subject == p.stem)
    elif kind == "edf":
        files = [p] if p.is_file() else [f for ext in _EDF_SUFFIXES for f in p.glob(f"*.{ext}")]
        subjects = tuple(_files(files, _edf_file))
    else:
        files = [p] if p.is_file() else [
            f for s in _HYPNOGRAM_SUFFIXES for f in p.glob(f"*{s}")
        ]
        subjects = tuple(_files(files, _table_file))
    return Inventory(p, kind, subjects)
