"""``sleep.samples.v1``: a chunk of samples of one modality from one source.

High-rate signals (EEG) travel compactly: their samples are not a JSON list of numbers but
little-endian int16 or float32 in base64 (``data_b64``, ``dtype``) with a linear
calibration to physical units (``scale``, ``offset``); an EDF recording's digital values
and its channel calibration go through unchanged, so nothing is lost on the way.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from stream.schemas.base import FiniteFloat, Identifier, Payload, UtcDatetime
from stream.schemas.session import ChannelLabel, Modality

__all__ = ["COMPACT_DTYPES", "MAX_CHUNK_SAMPLES", "UNITS", "SampleChunk"]

#: The unit each modality must be sent in.
UNITS: Final[dict[str, str]] = {
    "heart_rate": "bpm",
    "activity_counts": "count",
    "acceleration": "g",
    "rr": "s",
    "eeg": "uV",
}
#: Sample types of compact chunks: little-endian int16 and float32.
COMPACT_DTYPES: Final[tuple[str, ...]] = ("<i2", "<f4")
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
        x/y/z), ``rr`` (s, the interval ending at each beat) or ``eeg`` (uV, one channel).
    unit : str
        Must be the modality's unit (:data:`UNITS`).
    t0_utc : datetime
        Timezone-aware reference time of the chunk.
    offsets_s : tuple of float, optional
        Event time of each sample in seconds after ``t0_utc``, non-decreasing.
    rate_hz : float, optional
        For regularly sampled streams instead of ``offsets_s``: sample ``i`` of the chunk
        is at ``t0_utc + (sample0 + i) / rate_hz``.
    sample0 : int
        Regular streams: index of the chunk's first sample on the source's sample grid
        that starts at ``t0_utc`` (chunks of one source continue where the last ended:
        ``sample0`` of the next = ``sample0 + len`` of this one when nothing is missing).
    channel : str, optional
        ``eeg`` only (required there): the channel's label, one of the session's
        ``channels``.
    values : tuple of float, optional
        One finite number per sample; for acceleration three per sample, interleaved
        ``x0, y0, z0, x1, y1, z1, ...``. Exactly one of ``values`` and ``data_b64``.
    data_b64 : str, optional
        Compact samples (required for ``eeg``): base64 of ``dtype`` values; the physical
        value of raw sample ``r`` is ``r * scale + offset``.
    dtype : {"<i2", "<f4"}, optional
        The compact samples' type (with ``data_b64`` only).
    scale, offset : float
        Calibration of compact samples to the modality's unit.
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
    sample0: int = Field(default=0, ge=0)
    channel: ChannelLabel | None = None
    values: tuple[FiniteFloat, ...] | None = None
    data_b64: str | None = None
    dtype: Literal["<i2", "<f4"] | None = None
    scale: FiniteFloat = 1.0
    offset: FiniteFloat = 0.0
    beat_types: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _compact(self) -> SampleChunk:
        if (self.values is None) == (self.data_b64 is None):
            msg = "give exactly one of values (numbers) or data_b64 (compact samples)"
            raise ValueError(msg)
        if self.data_b64 is None:
            if self.dtype is not None or (self.scale, self.offset) != (1.0, 0.0):
                msg = "dtype, scale and offset describe data_b64; send them only with it"
                raise ValueError(msg)
            if self.modality == "eeg":
                msg = ("eeg samples must be compact (data_b64 with dtype '<i2' or '<f4'), "
                       "not a JSON list of numbers")
                raise ValueError(msg)
            return self
        if self.dtype is None:
            msg = "data_b64 needs its dtype: '<i2' (int16) or '<f4' (float32), little-endian"
            raise ValueError(msg)
        try:
            data = base64.b64decode(self.data_b64, validate=True)
        except (binascii.Error, ValueError):
            msg = "data_b64 is not valid base64"
            raise ValueError(msg) from None
        size = np.dtype(self.dtype).itemsize
        if len(data) % size:
            msg = f"data_b64 holds {len(data)} bytes, not a whole number of {self.dtype} values"
            raise ValueError(msg)
        raw = np.frombuffer(data, dtype=self.dtype)
        if self.dtype == "<f4" and not np.all(np.isfinite(raw)):
            msg = "data_b64 holds NaN or infinite float32 samples; send gaps as missing samples"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _consistent(self) -> SampleChunk:
        n = len(self)
        if (self.modality == "eeg") != (self.channel is not None):
            msg = "channel names the EEG channel of an eeg chunk, and only of one"
            raise ValueError(msg)
        if self.modality == "eeg" and self.rate_hz is None:
            msg = "eeg chunks are regular: give rate_hz (and sample0), not offsets_s"
            raise ValueError(msg)
        if self.rate_hz is None and self.sample0:
            msg = "sample0 places regular samples; it needs rate_hz"
            raise ValueError(msg)
        if self.modality == "acceleration" and self._count() % 3:
            msg = f"acceleration values come in x, y, z triples; got {self._count()} numbers"
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

    def _raw(self) -> NDArray[np.generic] | None:
        # decoded again on use (microseconds): a cached copy would be a private attribute,
        # whose set-up costs every chunk, compact or not, on the worker's hot path
        if self.data_b64 is None or self.dtype is None:
            return None
        return np.frombuffer(base64.b64decode(self.data_b64), dtype=self.dtype)

    def _count(self) -> int:
        if self.values is not None:
            return len(self.values)
        if self.data_b64 is None:
            return 0
        n_bytes = len(self.data_b64) * 3 // 4 - self.data_b64[-2:].count("=")
        return n_bytes // (4 if self.dtype == "<f4" else 2)

    def __len__(self) -> int:
        return self._count() // 3 if self.modality == "acceleration" else self._count()

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
        return base + (self.sample0 + np.arange(len(self), dtype=np.float64)) / rate

    def values_array(self) -> NDArray[np.float64]:
        """Values in the modality's unit as float64, shape (n,) or (n, 3) for acceleration."""
        raw = self._raw()
        if raw is not None:
            arr = raw.astype(np.float64) * self.scale + self.offset
        else:
            arr = np.asarray(self.values, dtype=np.float64)
        return arr.reshape(-1, 3) if self.modality == "acceleration" else arr

    @classmethod
    def compact(cls, raw: NDArray[np.generic], *, scale: float = 1.0, offset: float = 0.0,
                **fields: object) -> SampleChunk:
        """A chunk whose samples are ``raw`` (int16 or float32) with their calibration.

        Parameters
        ----------
        raw : ndarray of int16 or float32, shape (n,)
            The samples as recorded; physical value = ``raw * scale + offset``.
        scale, offset : float
            Calibration to the modality's unit.
        **fields
            The other fields (subject_id, ..., rate_hz, sample0, channel).
        """
        kind = {np.dtype(np.int16): "<i2", np.dtype(np.float32): "<f4"}.get(raw.dtype)
        if kind is None:
            msg = f"compact samples are int16 or float32; got {raw.dtype}. Convert them first."
            raise TypeError(msg)
        data = base64.b64encode(np.ascontiguousarray(raw, dtype=kind).tobytes()).decode("ascii")
        return cls.model_validate({**fields, "data_b64": data, "dtype": kind, "scale": scale,
                                   "offset": offset})
