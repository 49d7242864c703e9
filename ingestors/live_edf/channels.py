"""Which channels of a followed EDF file feed which modality, in which unit.

The user names the channels (:func:`choose_channels` ``eeg=``, ``hr=``, ``ecg=``, ``acc=``,
by file label or canonical name); without any, the labels decide: EEG channels (``EEG
Fpz-Cz``, ``C3-M2``, ``Cz``, see :func:`~ingestors.psg_channels.channel_kind`) make a
``psg`` session of every EEG channel at >= 100 Hz, else the canonical names (``"ECG"``,
else ``"HR"`` with ``"AccX"``/``"AccY"``/``"AccZ"`` when all three are there, see
:data:`~ingestors.live_edf.reader.LIVE_ALIASES`) make a ``cardio`` (ECG -> RR intervals from
the R peaks) or ``wearable`` (heart rate and/or acceleration) session. A subject has one
session at a time in the worker, so a PSG file with EEG and ECG gives the psg session, and
its EOG, EMG, ECG, heart rate and acceleration channels are reported as not sent
(``--ecg`` instead makes the cardio session). Each chosen channel's physical dimension is
checked and converted: EEG in V, mV or uV (folded into the calibration of its raw samples),
heart rate in bpm, acceleration in g (``mg`` and ``m/s^2`` converted), ECG in V, mV or uV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ingestors._edf_header import norm_label
from ingestors.base.regular import RegularSpec
from ingestors.errors import DataFormatError, format_problem
from ingestors.live_edf.reader import EdfFollower, LiveSignal
from ingestors.psg_channels import FileChannel, channel_kind, choose_eeg, eeg_spec
from models.features.eeg_spec import EEG_MIN_FS_HZ
from stream.schemas.session import Modality

__all__ = ["ChannelPlan", "EegSignal", "Scaled", "choose_channels"]

_G: Final = 9.80665
#: Accepted physical dimensions (lower-case, no spaces, "²" as "^2") -> factor to the unit
#: sent (bpm, g) or used (mV for ECG).
_UNITS: Final[Mapping[str, Mapping[str, float]]] = {
    "heart_rate": {"bpm": 1.0, "beats/min": 1.0, "/min": 1.0, "1/min": 1.0, "min^-1": 1.0,
                   "b/min": 1.0},
    "acceleration": {"g": 1.0, "mg": 1e-3, "m/s^2": 1.0 / _G, "m/s2": 1.0 / _G,
                     "ms^-2": 1.0 / _G, "m/s/s": 1.0 / _G},
    "ecg": {"v": 1e3, "mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3},
}
_WHAT: Final = {"heart_rate": "heart rate in bpm", "acceleration": "acceleration in g, mg or "
                "m/s^2", "ecg": "ECG in V, mV or uV"}


@dataclass(frozen=True)
class Scaled:
    """A chosen channel and the factor that brings its values into the unit used."""

    signal: LiveSignal
    factor: float


@dataclass(frozen=True)
class EegSignal:
    """An EEG channel a psg session sends: the label sent, the signal, rate and calibration."""

    label: str
    signal: LiveSignal
    spec: RegularSpec


@dataclass(frozen=True)
class ChannelPlan:
    """The channels a live EDF session reads.

    Attributes
    ----------
    family : {"wearable", "cardio", "psg"}
        Which models stage the session.
    heart_rate : Scaled or None
        Heart rate channel (to bpm).
    acceleration : tuple of Scaled
        X, Y, Z channels (to g), or empty.
    ecg : Scaled or None
        ECG channel (to mV), for RR intervals.
    eeg : tuple of EegSignal
        EEG channels (psg), sent as their raw samples with the calibration to uV.
    unsent : tuple of str
        Channels of the file that this session does not send, each with the reason.
    """

    family: Literal["wearable", "cardio", "psg"]
    heart_rate: Scaled | None = None
    acceleration: tuple[Scaled, ...] = ()
    ecg: Scaled | None = None
    eeg: tuple[EegSignal, ...] = ()
    unsent: tuple[str, ...] = ()

    @property
    def modalities(self) -> tuple[Modality, ...]:
        """The modalities the session sends."""
        if self.family == "psg":
            return ("eeg",)
        if self.family == "cardio":
            return ("rr",)
        out: tuple[Modality, ...] = ("heart_rate",) if self.heart_rate is not None else ()
        return out + (("acceleration",) if self.acceleration else ())

    @property
    def channels(self) -> tuple[str, ...]:
        """Labels of the EEG channels sent (psg), else empty."""
        return tuple(e.label for e in self.eeg)


def _find(follower: EdfFollower, want: str, option: str) -> LiveSignal:
    key = norm_label(want)
    for sig in follower.signals:
        if key in (norm_label(sig.label), norm_label(sig.name)):
            return sig
    have = ", ".join(f"{s.label!r}" + (f" ({s.name})" if s.name != s.label else "")
                     for s in follower.signals)
    msg = format_problem(follower.path, f"no channel {want!r} (asked for by {option})",
                         expected=f"one of {have or 'no signals at all'}",
                         fix=f"Pass {option} one of these labels.")
    raise ValueError(msg)


def _scaled(follower: EdfFollower, sig: LiveSignal, kind: str) -> Scaled:
    unit = norm_label(sig.unit).replace("²", "^2")
    factor = _UNITS[kind].get(unit)
    if factor is None:
        accepted = ", ".join(repr(u) for u in _UNITS[kind])
        raise DataFormatError(
            follower.path, f"channel {sig.label!r} has a physical dimension that is not "
            f"{_WHAT[kind]}", field="physical dimension", expected=f"one of {accepted}",
            got=sig.unit, fix="Choose another channel, or fix the dimension in the header.",
        )
    return Scaled(sig, factor)


def _auto(follower: EdfFollower) -> dict[str, list[str]]:
    names = {s.name for s in follower.signals}
    if "ECG" in names:
        return {"ecg": ["ECG"]}
    chosen: dict[str, list[str]] = {}
    if "HR" in names:
        chosen["hr"] = ["HR"]
    if {"AccX", "AccY", "AccZ"} <= names:
        chosen["acc"] = ["AccX", "AccY", "AccZ"]
    if not chosen:
        have = ", ".join(repr(s.label) for s in follower.signals)
        msg = format_problem(
            follower.path, "no EEG, ECG, heart rate or 3-axis acceleration channel recognised",
            expected="a channel labelled like 'EEG Fpz-Cz'/'C3-M2' (at >= 100 Hz), 'ECG', "
            "'HR'/'Pulse', or 'Acc X'/'Acc Y'/'Acc Z'",
            got=have, fix="Name the channels with --eeg, --ecg, --hr or --acc X,Y,Z.",
        )
        raise ValueError(msg)
    return chosen


def _psg(follower: EdfFollower, eeg: Sequence[str] | None) -> ChannelPlan:
    """A psg session of the EEG channels named (default: all usable ones)."""
    files = [FileChannel(s.label, s.name, s.sfreq_hz, s.unit) for s in follower.signals]
    by_label = {s.label: s for s in follower.signals}
    choice = choose_eeg(follower.path, files, eeg)
    sent = tuple(EegSignal(label, by_label[c.label],
                           eeg_spec(c, by_label[c.label].bitvalue, by_label[c.label].offset))
                 for label, c in choice.eeg)
    unsent = [f"{c.label} ({c.kind}, {c.rate_hz:g} Hz): {why}" for c, why in choice.unsent]
    unsent += [f"{s.label} ({s.name}, {s.sfreq_hz:g} Hz): a psg session sends EEG only, "
               "and a subject has one session at a time in the worker" for s in follower.signals
               if s.name in ("HR", "AccX", "AccY", "AccZ")]
    return ChannelPlan("psg", eeg=sent, unsent=tuple(unsent))


def _has_eeg(follower: EdfFollower) -> bool:
    """Whether a usable EEG channel is recognised by label (the default psg session)."""
    return any(channel_kind(s.label, s.name) == "EEG" and s.sfreq_hz >= EEG_MIN_FS_HZ
               for s in follower.signals)


def choose_channels(follower: EdfFollower, *, hr: str | None = None, ecg: str | None = None,
                    acc: Sequence[str] | None = None,
                    eeg: Sequence[str] | None = None) -> ChannelPlan:
    """Pick and check the channels of a live EDF session.

    Parameters
    ----------
    follower : EdfFollower
        The file (its header is read).
    hr, ecg : str, optional
        Heart rate and ECG channel, by file label or canonical name.
    acc : sequence of three str, optional
        The X, Y and Z acceleration channels.
    eeg : sequence of str, optional
        EEG channels (a psg session), by file label or canonical name.

    Returns
    -------
    ChannelPlan

    Raises
    ------
    ValueError
        If a channel is not in the file (the message lists those it has), EEG or ECG is
        combined with another family's channels (one session has one family), ``acc`` is
        not three channels at one rate, or nothing usable is given or recognised.
    DataFormatError
        If a channel's physical dimension is not one its modality accepts, or an EEG or
        ECG channel is sampled below 100 Hz.
    """
    if eeg is not None and (hr is not None or ecg is not None or acc is not None):
        msg = ("--eeg makes a psg session and --ecg/--hr/--acc a cardio or wearable one; a "
               "subject has one session at a time: give either --eeg or the others")
        raise ValueError(msg)
    if isinstance(eeg, str):
        msg = f"--eeg takes a list of channels; got the str {eeg!r}"
        raise TypeError(msg)
    if eeg is not None or (hr is None and ecg is None and acc is None and _has_eeg(follower)):
        return _psg(follower, eeg)
    if ecg is not None and (hr is not None or acc is not None):
        msg = ("--ecg makes a cardio session (RR intervals) and --hr/--acc a wearable one; "
               "give either --ecg or --hr/--acc")
        raise ValueError(msg)
    if acc is not None and (isinstance(acc, str) or len(acc) != 3):
        msg = f"--acc takes three channels X,Y,Z; got {acc!r}"
        raise ValueError(msg)
    given = {k: v for k, v in (("hr", [hr] if hr else None), ("ecg", [ecg] if ecg else None),
                               ("acc", list(acc) if acc else None)) if v}
    chosen = given or _auto(follower)
    if "ecg" in chosen:
        sig = _find(follower, chosen["ecg"][0], "--ecg")
        if sig.sfreq_hz < 100.0:
            raise DataFormatError(
                follower.path, f"ECG channel {sig.label!r} is sampled too slowly for R-peak "
                "detection", field=f"samples per record of {sig.label!r}",
                expected="at least 100 Hz", got=f"{sig.sfreq_hz:g} Hz",
            )
        return ChannelPlan("cardio", ecg=_scaled(follower, sig, "ecg"))
    heart = None
    if "hr" in chosen:
        heart = _scaled(follower, _find(follower, chosen["hr"][0], "--hr"), "heart_rate")
    axes: tuple[Scaled, ...] = ()
    if "acc" in chosen:
        axes = tuple(_scaled(follower, _find(follower, name, "--acc"), "acceleration")
                     for name in chosen["acc"])
        rates = {a.signal.sfreq_hz for a in axes}
        if len(rates) != 1:
            msg = format_problem(
                follower.path, "the acceleration channels have different sampling rates",
                expected="X, Y and Z at one rate",
                got={a.signal.label: a.signal.sfreq_hz for a in axes},
            )
            raise ValueError(msg)
        if len({a.signal.index for a in axes}) != 3:
            msg = f"--acc names one channel twice; got {chosen['acc']}"
            raise ValueError(msg)
    return ChannelPlan("wearable", heart_rate=heart, acceleration=axes)
