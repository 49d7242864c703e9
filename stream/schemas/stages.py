"""``sleep.stages.v1``: one staged epoch, from the causal model or the offline revision."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from models.stages import CLASS_NAMES
from stream.schemas.base import FiniteFloat, Identifier, Payload, UtcDatetime

__all__ = ["EpochInputStats", "ModelKind", "StageEvent"]

ModelKind = Literal["causal", "offline"]


class EpochInputStats(Payload):
    """What arrived during one epoch: the one type of these numbers in the stream.

    The engine builds it when an epoch closes (:class:`stream.engine.ClosedEpoch`), the
    epoch's causal :class:`StageEvent` carries it, the live page draws heart rate and
    activity (or, for EEG, the channels and amplitude) from it and the sink writes it as
    the ``sleep_inputs`` point. Means are None when no sample of that modality fell into
    the epoch; the EEG fields are None in sessions that send no EEG.

    Attributes
    ----------
    hr_mean_bpm : float or None
        Mean heart rate in bpm.
    hr_samples : int
        Heart-rate samples in the epoch.
    activity_counts : float or None
        Activity counts summed over the epoch.
    activity_samples : int
        Activity-count samples in the epoch.
    rr_mean_s : float or None
        Mean RR interval in s of the beats in the epoch.
    beats : int
        Beats (RR intervals) in the epoch.
    eeg_channels : int or None
        EEG sessions: channels with measures in the epoch (the EEG front-end had all of
        the epoch's samples of the channel, without a gap); the others are masked.
    eeg_rms_uv : float or None
        EEG sessions: root mean square amplitude in uV, ``sqrt`` of the mean over those
        channels of the epoch's variance at 100 Hz (a flat or saturating electrode shows
        here); None when no channel had measures.
    """

    hr_mean_bpm: FiniteFloat | None = None
    hr_samples: int = Field(default=0, ge=0)
    activity_counts: FiniteFloat | None = None
    activity_samples: int = Field(default=0, ge=0)
    rr_mean_s: FiniteFloat | None = None
    beats: int = Field(default=0, ge=0)
    eeg_channels: int | None = Field(default=None, ge=0)
    eeg_rms_uv: FiniteFloat | None = Field(default=None, ge=0.0)


class StageEvent(Payload):
    """The stage of one 30-s epoch as one model scored it.

    An event is identified by ``(subject_id, session_id, epoch_start_utc, kind)``
    (:attr:`event_id`): re-processing emits the same id with the same content, and sinks
    overwrite rather than duplicate.

    Attributes
    ----------
    subject_id, session_id : str
        Who and which night.
    epoch_index : int
        Epoch number since the session start (epoch 0 starts at the session start).
    epoch_start_utc : datetime
        Start of the epoch (event time).
    model_name, model_version : str
        The model card's name (``wearable-causal``) and version.
    kind : {"causal", "offline"}
        Live stage at epoch close, or the whole-night revision at session end.
    stage_set : int
        Number of classes of ``probabilities`` (5: W, N1, N2, N3, REM for the psg models;
        4: W, light, deep, REM for the wearable and cardio models).
    stage : str
        The most probable class name.
    probabilities : dict of str to float
        Probability of each class of the stage set (sum to 1).
    confidence : float
        Probability of ``stage``.
    valid : bool
        False when the epoch had no input data (the stage is then the model's guess from
        context alone).
    closed_at_utc : datetime
        Wall time when the worker closed the epoch (or the session, for offline events).
    emitted_at_utc : datetime
        Wall time when the event was produced.
    latency_s : float
        ``emitted_at_utc - closed_at_utc`` in seconds.
    inputs : EpochInputStats, optional
        Causal events only: sample statistics of the epoch.
    """

    subject_id: Identifier
    session_id: Identifier
    epoch_index: int = Field(ge=0)
    epoch_start_utc: UtcDatetime
    model_name: str
    model_version: str
    kind: ModelKind
    stage_set: Literal[5, 4, 3, 2] = 4
    stage: str
    probabilities: dict[str, FiniteFloat]
    confidence: FiniteFloat = Field(ge=0.0, le=1.0)
    valid: bool = True
    closed_at_utc: UtcDatetime
    emitted_at_utc: UtcDatetime
    latency_s: FiniteFloat
    inputs: EpochInputStats | None = None

    @model_validator(mode="after")
    def _classes(self) -> StageEvent:
        names = CLASS_NAMES[self.stage_set]
        if tuple(self.probabilities) != names:
            msg = f"probabilities must have the keys {names} in that order"
            raise ValueError(msg)
        if self.stage not in names:
            msg = f"stage must be one of {names}; got {self.stage!r}"
            raise ValueError(msg)
        return self

    @property
    def event_id(self) -> str:
        """Stable identity of the event across re-processing."""
        return (
            f"{self.subject_id}|{self.session_id}|{self.epoch_start_utc.isoformat()}|{self.kind}"
        )
