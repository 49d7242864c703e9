"""``sleep.samples.v1``: a chunk of samples of one modality from one source."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from stream.schemas.base import FiniteFloat, Identifier, Payload, UtcDatetime
from stream.schemas.session import Modality

__all__ = ["MAX_CHUNK_SAMPLES", "UNITS", "SampleChunk"]

#: The unit each modality must be sent in.
UNITS: Final[dict[str, str]] = {
    "heart_rate": "bpm",
    "activity_counts": "count",
    "acceleration": "g",
    "rr": "s",
}
#: Largest chunk accepted (samples); larger chunks are split by the ingestors.
MAX_CHUNK_SAMPLES: Final = 100_000

class SampleChunk(Payload):
    """Samples of one modality, either at explicit event times or at a fixed rate.

    Attributes
    ----------
    subject_id, session_id : str
        Who and which night; the message key is ``subject_id``.
    source_id : str
        The sending device or replay stream; with ``seq`` it identifies the chunk.
    seq : int
        Per-source sequence number, increasing by one per chunk. A chunk whose
        ``(source_id, seq)`` was already processed is dropped as a duplicate.
    modality : str
        ``heart_rate`` (bpm), ``activity_counts`` (count per 15 s), ``acceleration`` (g,
        x/y/z) or ``rr`` (s, the interval ending at each beat).
    unit : str
        Must be the modality's unit (:data:`UNITS`).
    t0_utc : datetime
        Timezone-aware reference time of the chunk.
    offsets_s : tuple of float, optional
        Event time of each sample in seconds after ``t0_utc``, non-decreasing.
    rate_hz : float, optional
        For regularly sampled streams instead of ``offsets_s``: sample ``i`` is at
        ``t0_utc + i / rate_hz``.
    values : tuple of float
        One finite number per sample; for acceleration three per sample, interleaved
        ``x0, y0, z0, x1, y1, z1, ...``.
    beat_types : tuple of str, optional
        ``rr`` only: MIT-BIH beat code of each beat (``N``, ``S``, ``V``, ``F``, ``Q``).
    """

    subject_id: Identifier
    session_id: Identifier
    source_id: Identifier
    seq: int = Field(ge=0)
    modality: Modality
    unit: str
    t0_utc: UtcDatetime
    offsets_s: tuple[FiniteFloat, ...] | None = None
    rate_hz: float | None = Field(default=None, gt=0, le=10_000)
    values: tuple[FiniteFloat, ...]
    beat_types: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SampleChunk:
        n = len(self)
        if self.modality == "acceleration" and len(self.values) % 3:
            msg = f"acceleration values come in x, y, z triples; got {len(self.values)} numbers"
            raise ValueError(msg)
        expected = UNITS[self.modality]
        if self.unit != expected:
            msg = f"{self.modality} must be sent in {expected!r}; got unit {self.unit!r}"
            raise ValueError(msg)
        if n > MAX_CHUNK_SAMPLES:
            msg = f"chunk has {n} samples; at most {MAX_CHUNK_SAMPLES} are accepted, split it"
            raise ValueError(msg)
        if (self.offsets_s is None) == (self.rate_hz is None):
            msg = "give exactly one of offsets_s (event times) or rate_hz (regular samples)"
            raise ValueError(msg)
        if self.offsets_s is not None:
            if len(self.offsets_s) != n:
                msg = f"offsets_s has {len(self.offsets_s)} entries for {n} values"
                raise ValueError(msg)
            if any(b < a for a, b in zip(self.offsets_s, self.offsets_s[1:], strict=False)):
                msg = "offsets_s must be non-decreasing (samples in time order)"
                raise ValueError(msg)
        if self.beat_types is not None and (self.modality != "rr" or len(self.beat_types) != n):
            msg = "beat_types is only for rr chunks and needs one code per value"
            raise ValueError(msg)
        return self

    def __len__(self) -> int:
        return len(self.values) // 3 if self.modality == "acceleration" else len(self.values)

    @property
    def key(self) -> tuple[str, int]:
        """``(source_id, seq)``: what identifies the chunk for de-duplication."""
        return (self.source_id, self.seq)

    def times_s(self, session_start: datetime) -> NDArray[np.float64]:
        """Sample times in seconds since ``session_start`` (a timezone-aware datetime)."""
        base = (self.t0_utc - session_start) / timedelta(seconds=1)
        if self.offsets_s is not None:
            return base + np.asarray(self.offsets_s, dtype=np.float64)
        rate = self.rate_hz if self.rate_hz is not None else 1.0  # set whenever offsets are not
        return base + np.arange(len(self), dtype=np.float64) / rate

    def values_array(self) -> NDArray[np.float64]:
        """Values as float64, shape (n,) or (n, 3) for acceleration."""
        arr = np.asarray(self.values, dtype=np.float64)
        return arr.reshape(-1, 3) if self.modality == "acceleration" else arr
