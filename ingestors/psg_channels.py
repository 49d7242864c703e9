"""The channels of a PSG recording: which are EEG, which EEG are sent, and their raw samples.

Used by the PSG replay (:mod:`ingestors.psg_replay`) and the live EDF ingestor
(:mod:`ingestors.live_edf`), so that a recording gives the same session either way.

* **Kinds.** A channel is EEG when its canonical name (:data:`~ingestors.edf.DEFAULT_ALIASES`:
  ``Fpz-Cz``, ``Pz-Oz``, ``C4-A1`` for ``C4-M1``, ``C3-A2`` for ``C3-M2``, ...) is an EEG
  derivation, its label starts with ``EEG`` (the EDF+ signal-type prefix), or the label is a
  10-20 electrode or derivation (``Cz``, ``F4-M1``, ``O2:A1``); EOG, EMG and ECG likewise
  (``EOG``/``E1-M2``/``LOC``, ``EMG``/``Chin``, ``ECG``/``EKG``).
* **Choice.** :func:`choose_eeg` sends every EEG channel at >= 100 Hz in a volt unit, or
  those named; the others (EOG, EMG, ECG, EEG left out) are reported with the reason they
  are not sent: no model uses EOG or EMG yet, and a worker stages one session per subject
  at a time, so the ECG of a PSG does not make a second (cardio) session beside it.
* **Samples as recorded.** :func:`eeg_samples` recovers the digital values an EDF reader
  decoded as ``gain * (offset + digital)`` (exactly: the decoded values are checked to
  follow from them), and :func:`eeg_spec` folds the unit (uV, mV, V) into the calibration,
  so that the chunks carry the file's samples unchanged (int16; float32 for 24-bit BDF).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from os import PathLike
from typing import Final, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ingestors._edf_header import norm_label
from ingestors.base.regular import RawSamples, RegularSpec
from ingestors.edf import resolve_channel
from ingestors.errors import DataFormatError, format_problem
from models.features.eeg_spec import EEG_MIN_FS_HZ

__all__ = ["EEG_NAMES", "ChannelKind", "EegChoice", "FileChannel", "channel_kind",
           "choose_eeg", "eeg_samples", "eeg_spec", "uv_factor"]

ChannelKind = Literal["EEG", "EOG", "EMG", "ECG", "other"]
#: Canonical names (:data:`~ingestors.edf.DEFAULT_ALIASES`) that are EEG derivations.
EEG_NAMES: Final = frozenset({"Fpz-Cz", "Pz-Oz", "C4-A1", "C3-A2", "C3-O1", "O2-A1"})
_ELECTRODE: Final = r"(?:fp|af|ft|fc|tp|cp|po|f|c|t|p|o)(?:[0-9]{1,2}|z)"
_REFERENCE: Final = r"(?:a|m)[12]|" + _ELECTRODE
#: A 10-20 electrode, or a derivation of one against another or a mastoid/ear reference.
_DERIVATION: Final = re.compile(rf"^{_ELECTRODE}(?:[-:/](?:{_REFERENCE}))?$")
_PREFIXES: Final[tuple[tuple[str, ChannelKind], ...]] = (
    ("eeg", "EEG"), ("eog", "EOG"), ("loc", "EOG"), ("roc", "EOG"), ("e1", "EOG"),
    ("e2", "EOG"), ("emg", "EMG"), ("chin", "EMG"), ("ecg", "ECG"), ("ekg", "ECG"),
)
_NAMED: Final[dict[str, ChannelKind]] = {"EOG": "EOG", "EMG": "EMG", "ECG": "ECG"}
#: Physical dimensions (compared lower-case, spaces removed) -> factor to microvolts.
_TO_UV: Final = {
    **dict.fromkeys(("uv", "µv", "μv", "mcv", "microvolt", "microvolts"), 1.0),
    **dict.fromkeys(("mv", "millivolt", "millivolts"), 1e3),
    **dict.fromkeys(("v", "volt", "volts"), 1e6),
    **dict.fromkeys(("nv", "nanovolt", "nanovolts"), 1e-3),
}
_NOT_SENT: Final[dict[str, str]] = {
    "EOG": "no model uses EOG yet (the psg models stage from EEG)",
    "EMG": "no model uses EMG yet (the psg models stage from EEG)",
    "ECG": "a psg session is staged from EEG, and a subject has one session at a time in "
           "the worker; follow the file with --ecg for a cardio session instead",
}


def channel_kind(label: str, name: str) -> ChannelKind:
    """What a channel records, from its label and canonical name."""
    if name in EEG_NAMES:
        return "EEG"
    if name in _NAMED:
        return _NAMED[name]
    key = norm_label(label)
    for prefix, kind in _PREFIXES:
        if key.startswith(prefix):
            return kind
    return "EEG" if _DERIVATION.match(key) else "other"


def uv_factor(unit: str) -> float | None:
    """Factor from ``unit`` (V, mV, uV, nV in any usual spelling) to uV; None if no volts."""
    return _TO_UV.get(norm_label(unit))


class FileChannel(NamedTuple):
    """A signal of a recording as the header describes it.

    Attributes
    ----------
    label, name : str
        Label as written and canonical name.
    rate_hz : float
        Sampling rate.
    unit : str
        Physical dimension.
    """

    label: str
    name: str
    rate_hz: float
    unit: str

    @property
    def kind(self) -> ChannelKind:
        """EEG, EOG, EMG, ECG or other."""
        return channel_kind(self.label, self.name)


class EegChoice(NamedTuple):
    """The EEG channels a session sends and the channels it reports as not sent.

    Attributes
    ----------
    eeg : tuple of (str, FileChannel)
        The label sent (the canonical name; the file label where two share one) and the
        channel, in file order or in the order asked for.
    unsent : tuple of (FileChannel, str)
        EOG, EMG, ECG and EEG channels left out, with the reason.
    """

    eeg: tuple[tuple[str, FileChannel], ...]
    unsent: tuple[tuple[FileChannel, str], ...]


def _usable(ch: FileChannel) -> str | None:
    """Why an EEG channel cannot be sent (too slow, no volts), or None."""
    if ch.rate_hz < EEG_MIN_FS_HZ:
        return (f"sampled at {ch.rate_hz:g} Hz, below the {EEG_MIN_FS_HZ:g} Hz the EEG "
                "front-end needs")
    if uv_factor(ch.unit) is None:
        return f"physical dimension {ch.unit!r} is not V, mV or uV"
    return None


def _named(path: str | PathLike[str], channels: Sequence[FileChannel],
           wanted: Sequence[str]) -> list[FileChannel]:
    """The channels asked for by label or canonical name, checked."""
    picked: list[FileChannel] = []
    for want in wanted:
        keys = {norm_label(want), norm_label(resolve_channel(want))}  # "C3-M2" is "C3-A2"
        hits = [c for c in channels if keys & {norm_label(c.label), norm_label(c.name)}]
        if not hits:
            have = ", ".join(f"{c.label!r} ({c.kind})" for c in channels)
            msg = format_problem(path, f"no channel {want!r} (asked for as EEG)",
                                 expected=f"one of {have or 'no signals at all'}",
                                 fix="Name EEG channels by these labels.")
            raise ValueError(msg)
        if hits[0] in picked:
            msg = f"EEG channel {want!r} is named twice; got {list(wanted)}"
            raise ValueError(msg)
        why = _usable(hits[0])
        if why is not None:
            raise DataFormatError(path, f"channel {hits[0].label!r} cannot be sent as EEG: {why}",
                                  field=hits[0].label, fix="Choose another EEG channel.")
        picked.append(hits[0])
    return picked


def choose_eeg(path: str | PathLike[str], channels: Sequence[FileChannel],
               wanted: Sequence[str] | None = None) -> EegChoice:
    """Choose the EEG channels a psg session sends and say what is not sent.

    Parameters
    ----------
    path : path-like
        The recording (for messages).
    channels : sequence of FileChannel
        Its ordinary signals, in file order.
    wanted : sequence of str, optional
        EEG channels by label or canonical name, through
        :data:`~ingestors.edf.DEFAULT_ALIASES` (``"C3-M2"`` finds ``"EEG(sec)"`` and
        ``"C3-A2"``, ``"Fpz-Cz"`` finds ``"EEG Fpz-Cz"``); default every EEG channel at
        >= 100 Hz in V, mV or uV.

    Returns
    -------
    EegChoice

    Raises
    ------
    ValueError
        If a channel asked for is not in the file (the message lists what is), is named
        twice, or no EEG channel is found.
    DataFormatError
        If a channel asked for is sampled below 100 Hz or not in volts.
    """
    if isinstance(wanted, str):
        msg = f"`wanted` must be a sequence of channel labels; got the str {wanted!r}"
        raise TypeError(msg)
    if wanted is not None:
        chosen = _named(path, channels, wanted)
        left = [(c, "not among the EEG channels asked for") for c in channels
                if c.kind == "EEG" and c not in chosen]
    else:
        eeg = [(c, _usable(c)) for c in channels if c.kind == "EEG"]
        chosen = [c for c, why in eeg if why is None]
        left = [(c, str(why)) for c, why in eeg if why is not None]
    if not chosen:
        have = ", ".join(f"{c.label!r} ({c.kind}, {c.rate_hz:g} Hz, {c.unit!r})"
                         for c in channels)
        msg = format_problem(path, "no usable EEG channel", expected="an EEG channel at "
                             f">= {EEG_MIN_FS_HZ:g} Hz in V, mV or uV (labelled like 'EEG "
                             "Fpz-Cz', 'C3-M2', 'Cz')", got=have or "no signals",
                             fix="Name the EEG channels (--eeg CH,CH).")
        raise ValueError(msg)
    names = [c.name for c in chosen]
    sent = tuple((c.name if names.count(c.name) == 1 else c.label.strip(), c) for c in chosen)
    if len({label for label, _ in sent}) != len(sent):
        msg = format_problem(path, "two EEG channels have the same label",
                             got=[c.label for c in chosen], fix="Rename one in the header.")
        raise ValueError(msg)
    unsent = [(c, _NOT_SENT[c.kind]) for c in channels
              if c.kind in _NOT_SENT and c not in chosen]
    order = {c: i for i, c in enumerate(channels)}
    return EegChoice(sent, tuple(sorted([*unsent, *left], key=lambda u: order[u[0]])))


def eeg_spec(ch: FileChannel, gain: float, offset: float) -> RegularSpec:
    """Rate and calibration to uV of a channel decoded as ``gain * (offset + digital)``."""
    factor = uv_factor(ch.unit)
    if factor is None:
        msg = f"channel {ch.label!r}: physical dimension {ch.unit!r} is not V, mV or uV"
        raise ValueError(msg)
    return RegularSpec(ch.rate_hz, gain * factor, gain * offset * factor)


def eeg_samples(path: str | PathLike[str], label: str, values: NDArray[np.float64],
                gain: float, offset: float, *, wide: bool = False) -> RawSamples:
    """The digital samples behind physical ``values`` decoded as ``gain * (offset + d)``.

    Parameters
    ----------
    path : path-like
        The recording (for messages).
    label : str
        The channel (for messages).
    values : ndarray of float64, shape (n,)
        Decoded physical values.
    gain, offset : float
        The channel's calibration, as the decoder used it.
    wide : bool
        24-bit samples (BDF): returned as float32, which holds them exactly; else int16.

    Raises
    ------
    DataFormatError
        If the values are not ``gain * (offset + d)`` of integers ``d`` in the sample range
        (the calibration is not the decoder's, or the values were changed after decoding).
    """
    digital = np.rint(values / gain - offset)
    lo, hi = (-(2**23), 2**23 - 1) if wide else (-(2**15), 2**15 - 1)
    back = gain * (offset + digital)
    if values.size and (digital.min() < lo or digital.max() > hi
                        or np.max(np.abs(back - values)) > 1e-6 * abs(gain)):
        raise DataFormatError(
            path, f"the samples of channel {label!r} do not follow from whole digital values "
            "and the header calibration", field=label,
            expected=f"physical = {gain:.6g} x (offset {offset:.6g} + digital in [{lo}, {hi}])",
            fix="Read the file with the project's EDF reader, unchanged.")
    return digital.astype(np.float32 if wide else np.int16)
