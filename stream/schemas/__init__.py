"""Message schemas of the sleepstream topics (pydantic v2, frozen, versioned)."""

from __future__ import annotations

from stream.schemas.base import Payload
from stream.schemas.deadletter import DeadLetter
from stream.schemas.samples import UNITS, SampleChunk
from stream.schemas.session import MODALITIES, Modality, SessionEvent
from stream.schemas.stages import EpochInputStats, ModelKind, StageEvent
from stream.schemas.summary import NightSummary

__all__ = [
    "MODALITIES",
    "UNITS",
    "DeadLetter",
    "EpochInputStats",
    "Modality",
    "ModelKind",
    "NightSummary",
    "Payload",
    "SampleChunk",
    "SessionEvent",
    "StageEvent",
]
