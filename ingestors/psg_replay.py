"""PSG recordings with their hypnograms as replay nights (``sleepstream replay edf FOLDER``).

A folder holds PSG recordings and their expert hypnograms, paired by name
(:func:`pair_recordings`):

* Sleep-EDF: ``SC4001E0-PSG.edf`` with ``SC4001EC-Hypnogram.edf`` (the letter after the
  night's ``E`` differs: it names the scorer), EDF+ stage annotations;
* NSRR: ``shhs1-200001.edf`` with ``shhs1-200001-nsrr.xml`` (or ``shhs1-200001.xml``),
  ``<PSGAnnotation>`` XML.

Each pair becomes one ``psg`` :class:`~ingestors.replay.ReplayNight` (:func:`psg_night`):
its EEG channels (:func:`~ingestors.psg_channels.choose_eeg`: every EEG channel at >= 100 Hz,
or those named) as the file's digital samples with their calibration, placed by sample
index on the session's grid; the hypnogram's stages as the labels of the session's epochs;
EOG, EMG and ECG channels read and listed in :attr:`ReplayNight.unsent
<ingestors.replay.ReplayNight.unsent>`, not sent (no model uses them yet).

**Crop.** By default the session runs from :data:`CROP_WAKE_MIN` (30) minutes before the
first sleep epoch to as long after the last one, the sleep period +- 30 min of the published
Sleep-EDF protocol, which the psg models were trained and evaluated on
(``training.datasets.sleep_edf``: 60 epochs of wake kept on each side, within the scored
epochs); ``crop_min=None`` replays from the hypnogram's first epoch to its last scored one.
Either way the session keeps to the epochs the EEG covers wholly. Subject and message key are
the night (``SC4001E0``), so that both nights of a subject can be replayed at once.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Final, Literal, NamedTuple

import numpy as np

from ingestors._replay_nights import RegularStream, ReplayNight, UnsentChannel
from ingestors.edf import EdfChannel, EdfRecording, as_timezone, read_edf, resolve_channel
from ingestors.edf_decode import EdfDecoder
from ingestors.errors import DataFormatError, DataQualityWarning, format_problem
from ingestors.hypnogram_io import SLEEP_EDF_TZ, read_edf_hypnogram, read_nsrr_xml
from ingestors.psg_channels import EegChoice, FileChannel, choose_eeg, eeg_samples, eeg_spec
from ingestors.types import EPOCH_S, Hypnogram
from models.stages import Stage

__all__ = ["CROP_WAKE_MIN", "PsgPair", "describe_night", "pair_recordings", "psg_night",
           "psg_nights"]

#: Minutes of wake kept before the first and after the last sleep epoch by default.
CROP_WAKE_MIN: Final = 30.0
_EDF_SUFFIXES: Final = (".edf", ".bdf")
_PSG_SUFFIX: Final = re.compile(r"-psg$", re.IGNORECASE)
_HYPNOGRAM: Final = re.compile(r"-hypnogram$", re.IGNORECASE)
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.:@-]")
_SLEEP: Final = (Stage.N1, Stage.N2, Stage.N3, Stage.REM)


class PsgPair(NamedTuple):
    """A PSG recording and its hypnogram.

    Attributes
    ----------
    night : str
        The night's name (``SC4001E0``, ``shhs1-200001``).
    psg, hypnogram : pathlib.Path
        The files.
    kind : {"sleep-edf", "nsrr"}
        How they were paired (and which hypnogram reader and default time zone apply).
    """

    night: str
    psg: Path
    hypnogram: Path
    kind: Literal["sleep-edf", "nsrr"]


def _sleep_edf_hypnogram(psg: Path, night: str) -> Path:
    exact = psg.with_name(f"{night}-Hypnogram.edf")
    found = [exact] if exact.is_file() else sorted(
        p for p in psg.parent.glob(f"{_glob_escape(night[:-1])}?-[Hh]ypnogram.[eE][dD][fF]")
        if p.is_file())
    if len(found) != 1:
        raise DataFormatError(
            psg, "no single hypnogram for this Sleep-EDF recording",
            expected=f"one {night[:-1]}?-Hypnogram.edf beside it",
            got=[p.name for p in found] or "none",
            fix="Put the night's hypnogram (e.g. SC4001EC-Hypnogram.edf for "
                "SC4001E0-PSG.edf) in the folder, and only one.")
    return found[0]


def _glob_escape(text: str) -> str:
    """``text`` with the glob characters ``*?[`` taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _nsrr_hypnogram(psg: Path) -> Path:
    for name in (f"{psg.stem}-nsrr.xml", f"{psg.stem}.xml"):
        if (psg.parent / name).is_file():
            return psg.parent / name
    raise DataFormatError(
        psg, "no hypnogram for this recording",
        expected=f"{psg.stem}-nsrr.xml or {psg.stem}.xml (NSRR) beside it, or a Sleep-EDF "
        f"pair ({psg.stem}-PSG.edf with a {psg.stem[:-1] if len(psg.stem) > 1 else psg.stem}"
        "?-Hypnogram.edf)",
        fix="Add the hypnogram, or move the recording out of the folder.")


def pair_recordings(path: str | PathLike[str]) -> tuple[PsgPair, ...]:
    """The PSG recordings of a folder (or one recording) with their hypnograms.

    Parameters
    ----------
    path : path-like
        A folder, or one PSG file (paired within its folder).

    Returns
    -------
    tuple of PsgPair
        In file-name order.

    Raises
    ------
    FileNotFoundError
        If the path does not exist or holds no PSG recording.
    DataFormatError
        If a recording has no hypnogram (or two), naming the file looked for.
    """
    path = Path(path)
    if not path.exists():
        msg = f"{str(path)!r} does not exist; give a folder of PSG recordings or one of them."
        raise FileNotFoundError(msg)
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    pairs = []
    for f in files:
        if f.suffix.lower() not in _EDF_SUFFIXES or _HYPNOGRAM.search(f.stem):
            continue
        if _PSG_SUFFIX.search(f.stem):
            night = _PSG_SUFFIX.sub("", f.stem)
            pairs.append(PsgPair(night, f, _sleep_edf_hypnogram(f, night), "sleep-edf"))
        else:
            pairs.append(PsgPair(f.stem, f, _nsrr_hypnogram(f), "nsrr"))
    if not pairs:
        msg = (f"no PSG recording in {str(path)!r}: expected Sleep-EDF *-PSG.edf files with "
               "their *-Hypnogram.edf, or NSRR .edf files with their -nsrr.xml")
        raise FileNotFoundError(msg)
    return tuple(pairs)


def _select(pairs: Sequence[PsgPair], nights: Iterable[str] | None) -> list[PsgPair]:
    """The pairs named (a night's name, or the start of it: ``SC400`` = both of subject 0)."""
    if nights is None:
        return list(pairs)
    chosen: list[PsgPair] = []
    for want in nights:
        hits = [p for p in pairs if p.night == want] or \
            [p for p in pairs if p.night.startswith(want)]
        if not hits:
            msg = (f"no night {want!r} in the folder; it holds "
                   f"{', '.join(p.night for p in pairs)}")
            raise ValueError(msg)
        chosen += [p for p in hits if p not in chosen]
    return chosen


def _channels(psg: Path) -> tuple[list[FileChannel], dict[str, tuple[float, float]]]:
    """The signals of a recording and each one's calibration ``(gain, offset)`` by label.

    :func:`~ingestors.edf.read_edf` returns physical values; the header as the one decoder
    reads it (:class:`~ingestors.edf_decode.EdfDecoder`) gives the calibration it decoded
    them with, which recovers the digital values exactly.
    """
    signals = EdfDecoder(psg).signals
    channels = [FileChannel(s.label, resolve_channel(s.label), s.sfreq_hz, s.unit)
                for s in signals]
    return channels, {s.label: (s.gain, s.offset) for s in signals}


def _by_label(rec: EdfRecording, label: str) -> EdfChannel:
    """A channel read, continuous (its samples at ``k / rate``)."""
    ch = next(c for c in rec.channels.values() if c.label == label)
    if ch.record_onsets_s is not None:
        raise DataFormatError(
            rec.path, "the recording has gaps between its data records (EDF+D)",
            field=label, expected="a continuous recording (EDF, EDF+C, BDF)",
            got=f"{ch.record_onsets_s.size} records over "
                f"{ch.record_onsets_s[-1] - ch.record_onsets_s[0]:.0f} s",
            fix="Replay each continuous part as its own file (EDFbrowser can split it).")
    return ch


def _window(hyp: Hypnogram, crop_min: float | None, covered: tuple[int, int],
            pair: PsgPair) -> tuple[int, int]:
    """First and last epoch of the session on the hypnogram's grid."""
    scored = np.flatnonzero(hyp.stages >= 0)
    if scored.size == 0:
        raise DataFormatError(pair.hypnogram, "the hypnogram scores no epoch",
                              fix="Use the hypnogram scored for this recording.")
    first, last = 0, int(scored[-1])
    if crop_min is not None:
        asleep = np.flatnonzero(np.isin(hyp.stages, _SLEEP))
        if asleep.size == 0:
            raise DataFormatError(pair.hypnogram, "no sleep epoch to crop to",
                                  fix="Replay it uncropped (crop none).")
        wake = round(crop_min * 60.0 / EPOCH_S)
        first, last = max(0, int(asleep[0]) - wake), min(last, int(asleep[-1]) + wake)
    lo, hi = max(first, covered[0]), min(last, covered[1])
    if lo > hi:
        raise DataFormatError(
            pair.psg, "the EEG does not cover any epoch of the session",
            expected=f"EEG over epochs {first}..{last} of {pair.hypnogram.name}",
            got=f"EEG over epochs {covered[0]}..{covered[1]}",
            fix="Check that the hypnogram belongs to the recording" +
                (", or replay it uncropped (crop none)." if crop_min is not None else "."))
    if (lo, hi) != (first, last):
        warnings.warn(format_problem(
            pair.psg, f"the EEG covers epochs {covered[0]}..{covered[1]} of "
            f"{pair.hypnogram.name} only; the session runs over epochs {lo}..{hi} instead "
            f"of {first}..{last}"), DataQualityWarning, stacklevel=4)
    return lo, hi


def _placed(pair: PsgPair, label: str, stream: RegularStream, psg_start: datetime,
            start: datetime, n_epochs: int) -> RegularStream:
    """The channel's samples from the session start to its end, with their ``sample0``."""
    rate = stream.spec.rate_hz
    shift = (psg_start - start).total_seconds() * rate
    k = round(shift)
    if abs(shift - k) > 1e-6:
        raise DataFormatError(
            pair.psg, f"the session start falls between two samples of channel {label!r}",
            expected=f"a start on its {rate:g}-Hz sample grid",
            got=f"{shift - math.floor(shift):.3f} of a sample off",
            fix="The hypnogram's epochs do not line up with the samples; replay it with "
                "another crop, or realign the hypnogram.")
    raw = stream.raw[max(-k, 0):]
    raw = raw[:max(math.ceil(n_epochs * EPOCH_S * rate) - max(k, 0), 0)]
    return stream._replace(raw=raw.copy(), sample0=max(k, 0))


def _hypnogram(pair: PsgPair, rec: EdfRecording, zone: str) -> Hypnogram:
    hyp = read_edf_hypnogram(pair.hypnogram, tz=zone) if pair.kind == "sleep-edf" \
        else read_nsrr_xml(pair.hypnogram, start=rec.start)
    if hyp.epoch_s != EPOCH_S:
        raise DataFormatError(pair.hypnogram, "epochs are not 30 s long", field="epoch length",
                              expected="30 s", got=f"{hyp.epoch_s:g} s",
                              fix="Rescore or convert the hypnogram to 30-s epochs.")
    return hyp


def _read_eeg(pair: PsgPair, eeg: Sequence[str] | None, zone: str,
              ) -> tuple[EdfRecording, EegChoice, list[RegularStream]]:
    """Read the chosen EEG (as recorded samples) and the channels reported as not sent."""
    channels, calibration = _channels(pair.psg)
    choice = choose_eeg(pair.psg, channels, eeg)
    labels = [c.label for _, c in choice.eeg] + [c.label for c, _ in choice.unsent]
    rec = read_edf(pair.psg, labels, tz=zone)
    wide = rec.file_type.startswith("BDF")
    streams = []
    for sent, ch in choice.eeg:
        data = _by_label(rec, ch.label).data
        raw = eeg_samples(pair.psg, ch.label, data, *calibration[ch.label], wide=wide)
        streams.append(RegularStream(sent, eeg_spec(ch, *calibration[ch.label]), raw))
    return rec, choice, streams


def psg_night(pair: PsgPair, *, eeg: Sequence[str] | None = None,
              crop_min: float | None = CROP_WAKE_MIN, time_zone: str | None = None,
              ) -> ReplayNight:
    """One PSG recording and its hypnogram as a ``psg`` replay night.

    Parameters
    ----------
    pair : PsgPair
        The files (:func:`pair_recordings`).
    eeg : sequence of str, optional
        EEG channels by label or canonical name (``"Fpz-Cz"``, ``"C3-M2"``); default every
        EEG channel at >= 100 Hz in volts.
    crop_min : float or None
        Minutes of wake kept around the sleep period, in whole 30-s epochs (default 30, as
        the psg models were trained); None: the whole scored recording.
    time_zone : str, optional
        IANA zone of the recorder's clock; default Europe/Amsterdam for Sleep-EDF, UTC for
        NSRR (whose files keep the clock time but not the date).

    Raises
    ------
    DataFormatError
        For a file that cannot be read, a hypnogram without scored (or sleep) epochs or
        not in 30-s epochs, an EEG channel sampled below 100 Hz or not in volts, EEG that
        covers no epoch of the session, or epochs that do not line up with the samples.
    ValueError
        If a channel asked for is missing, or there is no EEG channel.
    """
    if crop_min is not None and not (math.isfinite(crop_min) and crop_min >= 0):
        msg = f"`crop_min` must be minutes >= 0 or None; got {crop_min!r}"
        raise ValueError(msg)
    zone = time_zone or (str(SLEEP_EDF_TZ) if pair.kind == "sleep-edf" else "UTC")
    as_timezone(zone, "time_zone")
    rec, choice, streams = _read_eeg(pair, eeg, zone)
    hyp = _hypnogram(pair, rec, zone)
    lead_s = (rec.start - hyp.start).total_seconds()
    end_s = lead_s + min(s.raw.size / s.spec.rate_hz for s in streams)
    covered = (max(math.ceil(lead_s / EPOCH_S - 1e-9), 0),
               min(math.floor(end_s / EPOCH_S + 1e-9), len(hyp)) - 1)
    first, last = _window(hyp, crop_min, covered, pair)
    start, n_epochs = hyp.start + timedelta(seconds=first * EPOCH_S), last - first + 1
    eeg_streams = tuple(_placed(pair, c.label, s, rec.start, start, n_epochs)
                        for s, (_, c) in zip(streams, choice.eeg, strict=True))
    unsent = tuple(UnsentChannel(c.label, c.kind, c.rate_hz, c.unit,
                                 _by_label(rec, c.label).data.size / c.rate_hz, why)
                   for c, why in choice.unsent)
    night = _UNSAFE.sub("_", pair.night)
    return ReplayNight(
        night, f"edf-{night}", "psg", ("eeg",), zone, start, False, n_epochs, {},
        hyp.stages[first:last + 1].astype(np.int8), f"replay:{pair.kind}",
        eeg=eeg_streams, unsent=unsent,
    )


def psg_nights(path: str | PathLike[str], nights: Iterable[str] | None = None, *,
               eeg: Sequence[str] | None = None, crop_min: float | None = CROP_WAKE_MIN,
               time_zone: str | None = None) -> tuple[ReplayNight, ...]:
    """Read the PSG recordings of a folder with their hypnograms as replay nights.

    Parameters
    ----------
    path : path-like
        A folder (or one recording), see :func:`pair_recordings`.
    nights : iterable of str, optional
        Nights by name or the start of one (``SC400``: both nights of Sleep-EDF subject 0);
        default all.
    eeg, crop_min, time_zone
        As for :func:`psg_night`.
    """
    return tuple(psg_night(p, eeg=eeg, crop_min=crop_min, time_zone=time_zone)
                 for p in _select(pair_recordings(path), nights))


def describe_night(night: ReplayNight) -> str:
    """What a PSG replay sends and leaves out, for the terminal."""
    hours = night.duration_s / 3600
    counts = ""
    if night.labels is not None:
        found = [(s.name, int(np.sum(night.labels == s))) for s in Stage if s >= 0]
        counts = " (" + ", ".join(f"{name} {n}" for name, n in found if n) + ")"
    lines = [f"{night.subject_id}: {night.n_epochs} epochs, {hours:.1f} h from "
             f"{night.start.isoformat()}{counts}"]
    lines += [f"  EEG {s.channel}: {s.spec.rate_hz:g} Hz, {s.raw.size} samples sent"
              for s in night.eeg]
    lines += [f"  {u.text()}" for u in night.unsent]
    return "\n".join(lines)
