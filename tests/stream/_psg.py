"""psg test material: EEG nights and their chunks.

* :class:`EegNight` is one night of raw EEG channels as a PSG recorder gives them (digital
  values and a calibration to uV, or float32 uV), from generated EEG whose stages are known
  (:func:`generated_night`) or from the real Sleep-EDF Pz-Oz clips (:func:`clip_night`).
* :meth:`EegNight.chunks` cuts it into compact ``eeg`` chunks the way an ingestor does (one
  source per channel, regular, ``sample0`` on the channel's grid), time-interleaved across
  channels; :meth:`EegNight.signals` gives the same samples to the batch path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from aiokafka import AIOKafkaProducer
from numpy.typing import NDArray

from models.stages import Stage
from stream.eeg_assembly import EegSignal
from stream.schemas import SampleChunk, SessionEvent
from stream.settings import StreamSettings
from tests.ingestors._psg_data import stage_eeg

T0 = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)
#: SC4001E0's EDF calibration of EEG Pz-Oz: uV = (digital - 5) / 10.4198 (the clips' unit).
CLIP_OFFSET, CLIP_PER_UV = 5.0, 10.4198
CLIP_LABELS = ("SC4001E0", "SC4002E0", "SC4011E0", "SC4012E0", "SC4021E0", "SC4031E0",
               "SC4032E0", "SC4041E0", "SC4042E0")


@dataclass
class EegChannelData:
    """One recorded channel: ``raw * scale + offset`` uV at ``fs_hz`` from the night start."""

    label: str
    fs_hz: float
    raw: NDArray[np.int16] | NDArray[np.float32]
    scale: float = 1.0
    offset: float = 0.0
    t0_s: float = 0.0

    @property
    def uv(self) -> NDArray[np.float64]:
        """The samples in uV, exactly as a chunk's ``values_array`` gives them."""
        return self.raw.astype(np.float64) * self.scale + self.offset


@dataclass
class EegNight:
    """A psg night to replay: channels, epochs, and the stage of each epoch if known."""

    subject_id: str
    session_id: str
    n_epochs: int
    channels: list[EegChannelData]
    stages: list[str] | None = None
    start: datetime = T0
    live: bool = False
    source_prefix: str = field(default="")

    @property
    def labels(self) -> tuple[str, ...]:
        """The channel labels."""
        return tuple(c.label for c in self.channels)

    def start_event(self) -> SessionEvent:
        """The session start."""
        return SessionEvent(event="start", subject_id=self.subject_id,
                            session_id=self.session_id, device="test:psg", family="psg",
                            modalities=("eeg",), channels=self.labels, t_utc=self.start,
                            live=self.live)

    def source(self, channel: EegChannelData) -> str:
        """The source id of a channel's chunks."""
        safe = "".join(ch if ch.isalnum() else "_" for ch in channel.label)
        return f"{self.source_prefix or self.session_id}-eeg-{safe}"

    def chunks(self, span_s: float = 30.0) -> list[SampleChunk]:
        """Compact chunks of ``span_s`` per channel, in time order across the channels."""
        out: list[tuple[float, int, SampleChunk]] = []
        for i, ch in enumerate(self.channels):
            n = int(round(span_s * ch.fs_hz))
            for seq, a in enumerate(range(0, ch.raw.size, n)):
                chunk = SampleChunk.compact(
                    ch.raw[a:a + n], scale=ch.scale, offset=ch.offset,
                    subject_id=self.subject_id, session_id=self.session_id,
                    source_id=self.source(ch), seq=seq, modality="eeg", unit="uV",
                    t0_utc=self.start, rate_hz=ch.fs_hz,
                    sample0=a + int(round(ch.t0_s * ch.fs_hz)), channel=ch.label)
                out.append((ch.t0_s + a / ch.fs_hz, i, chunk))
        return [c for _, _, c in sorted(out, key=lambda x: (x[0], x[1]))]

    def end_event(self, chunks: Sequence[SampleChunk]) -> SessionEvent:
        """The session end, with each source's last sequence number."""
        final: dict[str, int] = {}
        for c in chunks:
            final[c.source_id] = max(final.get(c.source_id, -1), c.seq)
        return SessionEvent(event="end", subject_id=self.subject_id,
                            session_id=self.session_id,
                            t_utc=self.start + timedelta(seconds=self.n_epochs * 30.0),
                            final_seq=final)

    def signals(self) -> list[EegSignal]:
        """The batch path's view of the same samples."""
        return [EegSignal(c.label, c.fs_hz, c.t0_s, c.uv) for c in self.channels]


def stage_signal(stages: Sequence[str], fs_hz: float, seed: int,
                 gain: float = 1.0) -> NDArray[np.float64]:
    """Generated EEG (uV) of 30-s epochs of known stages (``"W"``, ``"N1"`` ... ``"REM"``):
    :func:`tests.ingestors._psg_data.stage_eeg`, with real Sleep-EDF spectra per stage."""
    codes = np.array([Stage[name] for name in stages], dtype=np.int8)
    return stage_eeg(codes, fs_hz, seed, gain)


def generated_night(subject_id: str, stages: Sequence[str], fs_hz: float, n_channels: int,
                    *, seed: int = 0, dtype: str = "int16", live: bool = False) -> EegNight:
    """A night of generated EEG whose stages are known, on ``n_channels`` channels.

    The channels share the stages, with their own noise and gain (0.6 .. 1.4, as montages
    differ); int16 nights carry them as digital values at 0.05 uV per step, float32 nights
    as uV.
    """
    labels = ("Fpz-Cz", "Pz-Oz", "C3-M2", "C4-M1", "O1-M2", "F3-M2")[:n_channels]
    gains = np.linspace(0.6, 1.4, n_channels) if n_channels > 1 else np.ones(1)
    channels = []
    for i, label in enumerate(labels):
        uv = stage_signal(stages, fs_hz, seed * 100 + i, float(gains[i]))
        if dtype == "int16":
            scale = 0.05
            raw: NDArray[np.int16] | NDArray[np.float32] = np.clip(
                np.round(uv / scale), -32768, 32767).astype(np.int16)
            channels.append(EegChannelData(label, fs_hz, raw, scale, 0.0))
        else:
            channels.append(EegChannelData(label, fs_hz, uv.astype(np.float32)))
    return EegNight(subject_id, f"{subject_id}-n1", len(stages), channels, list(stages),
                    live=live)


def clip_night(subject_id: str, digital: NDArray[np.int16], n_epochs: int | None = None,
               ) -> EegNight:
    """A night of one real Pz-Oz clip (100 Hz, digital values, SC4001E0's calibration)."""
    n = digital.size // 3000 if n_epochs is None else n_epochs
    ch = EegChannelData("EEG Pz-Oz", 100.0, np.ascontiguousarray(digital[: n * 3000]),
                        1.0 / CLIP_PER_UV, -CLIP_OFFSET / CLIP_PER_UV)
    return EegNight(subject_id, f"{subject_id}-n1", n, [ch])


async def send_nights(settings: StreamSettings, nights: Sequence[EegNight],
                      span_s: float = 30.0) -> int:
    """Publish the nights' starts, chunks (time-interleaved across nights) and ends.

    As a replay does, as fast as possible: every message keyed by its subject. Returns the
    number of messages.
    """
    messages: list[tuple[float, int, str, SessionEvent | SampleChunk]] = []
    for i, night in enumerate(nights):
        chunks = night.chunks(span_s)
        messages.append((-1.0, i, "sessions", night.start_event()))
        messages += [(c.sample0 / (c.rate_hz or 1.0), i, "samples", c) for c in chunks]
        messages.append((night.n_epochs * 30.0, i, "sessions", night.end_event(chunks)))
    messages.sort(key=lambda m: (m[0], m[1]))
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, enable_idempotence=True,
                                linger_ms=5, max_request_size=8 << 20)
    await producer.start()
    try:
        for _, _, topic, payload in messages:
            await producer.send(settings.topic(topic), payload.model_dump_json().encode(),
                                key=payload.subject_id.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return len(messages)
