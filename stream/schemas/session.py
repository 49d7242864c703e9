"""``sleep.sessions.v1``: the start and end of a recorded night."""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from stream.schemas.base import Identifier, Payload, UtcDatetime

__all__ = ["MODALITIES", "ChannelLabel", "Family", "Modality", "SessionEvent"]

Modality = Literal["heart_rate", "activity_counts", "acceleration", "rr", "eeg"]
MODALITIES: tuple[Modality, ...] = ("heart_rate", "activity_counts", "acceleration", "rr", "eeg")
Family = Literal["wearable", "cardio", "psg"]
#: EEG channel labels as sent: what the recording calls the derivation ("Fpz-Cz", "C3-M2").
ChannelLabel = Annotated[str, Field(pattern=r"^[^\x00-\x1f]{1,64}$")]


class SessionEvent(Payload):
    """A session (one night of one subject on one device) starts or ends.

    Attributes
    ----------
    event : {"start", "end"}
        What happened.
    subject_id, session_id : str
        Who and which night; the message key is ``subject_id``.
    device : str
        Free text (``"Apple Watch"``, ``"Polar H10"``, ``"replay:sleep-accel"``).
    family : {"wearable", "cardio", "psg"}
        Which model family stages this session.
    modalities : tuple of str
        The sample streams the device sends.
    channels : tuple of str
        ``eeg`` only: the EEG channels the session sends (their labels, as in the chunks'
        ``channel``), so that the worker knows which channels an epoch waits for.
    time_zone : str
        IANA zone of the subject's local clock (time-of-day features, summaries).
    t_utc : datetime
        Timezone-aware session start (``start``) or end (``end``).
    start_is_nominal : bool
        True when the start is not a real clock time (replays of data published with
        relative times); time-of-day features are then masked.
    live : bool
        True (default) when event time follows the wall clock: the worker's timer then
        closes a silent subject's epochs once the wall clock passes their end plus the
        grace period. Replays faster than real time send False, so epochs close on the
        samples' own event time only.
    final_seq : dict of str to int
        ``end`` only, optional: the last sequence number each source sent in the session.
        The worker finishes the night (offline revision, summary) as soon as it has
        processed them all; without it, it waits for ``end_wait_s`` of silence.
    """

    event: Literal["start", "end"]
    subject_id: Identifier
    session_id: Identifier
    device: str = Field(default="", max_length=200)
    family: Family = "wearable"
    modalities: tuple[Modality, ...] = ()
    channels: tuple[ChannelLabel, ...] = ()
    time_zone: str = "UTC"
    t_utc: UtcDatetime
    start_is_nominal: bool = False
    live: bool = True
    final_seq: dict[Identifier, int] = Field(default_factory=dict)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown IANA time zone {value!r}; use a name like 'Europe/Amsterdam'"
            raise ValueError(msg) from None
        return value

    @model_validator(mode="after")
    def _start_names_modalities(self) -> SessionEvent:
        if self.event == "start" and not self.modalities:
            msg = "a session start must list the modalities the device sends"
            raise ValueError(msg)
        if self.event == "start" and self.final_seq:
            msg = "final_seq belongs on the session end, not the start"
            raise ValueError(msg)
        if self.event == "start" and ("eeg" in self.modalities) != bool(self.channels):
            msg = ("a session start lists its EEG channels in `channels` exactly when it "
                   "sends eeg; got modalities "
                   f"{list(self.modalities)} and channels {list(self.channels)}")
            raise ValueError(msg)
        if len(set(self.channels)) != len(self.channels):
            msg = f"EEG channel labels must be unique; got {list(self.channels)}"
            raise ValueError(msg)
        if any(v < 0 for v in self.final_seq.values()):
            msg = "final_seq values are sequence numbers (>= 0)"
            raise ValueError(msg)
        return self
