"""psg sessions: raw EEG chunks to per-channel feature rows, epoch by epoch, and in one batch.

:class:`EegAssembler` is the :class:`~stream.assembly.EpochAssembler` of the psg family. Per
announced EEG channel (``SessionEvent.channels``) it runs one causal front-end,
:class:`~models.features.eeg.EegChannel`, created at the channel's first chunk with that
chunk's rate (any rate >= 100 Hz; the front-end resamples to 100 Hz). The front-end returns
a channel's measures of an epoch once they are final, which at 100 Hz is with the epoch's
last sample and otherwise :attr:`~models.features.eeg.EegChannel.delay_s` (about 0.72 s) of
input later; the rows wait here until the epoch closes.

**Closing.** Epoch ``k`` is *complete* when every announced channel has made it final (a
channel whose first samples come later makes the epochs before them final, without
measures); a complete epoch closes at once, without waiting for the grace period. An
epoch that is not complete closes by event time (or the live timer) like the other
families' epochs, ``grace_s`` after its end plus :attr:`EegAssembler.delay_s`: a channel
that has sent samples of it but not made it final is then flushed (its run ends, the
epoch's measures come from the samples it has, and are none if the run ends inside the
epoch), and a channel with nothing for it is masked. Nothing is interpolated: a channel
without measures is masked in the feature rows (``present`` False), and the psg nets
stage from the channels present.

**Rows.** The measures of the epoch's channels go through
:class:`~models.features.psg.PsgFeatures` (night-relative per channel), giving
``(n_channels, n_features)`` float32 and the ``present`` mask, the same code the batch path
:func:`eeg_night_rows` runs over a whole night, so both give bit-identical rows.

**Inputs.** Each closed epoch carries the number of channels with measures and their RMS
amplitude (:class:`~stream.schemas.EpochInputStats`).

**Rejected chunks** (dead-lettered by the worker with the reason): another modality than
``eeg``, a channel the session did not announce, a rate below 100 Hz or other than the
channel's first, samples in an epoch already closed (late), and a chunk that starts
before the end of what its channel already received (a repeat or an overlap; the
front-end cannot go back in time).

**State.** The front-ends (about 8.5 KB of JSON per 256-Hz channel), the rows waiting for
their epoch, and the features' night statistics, all exact (base64 floats).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.features._state import pack, unpack
from models.features.eeg import EegChannel, EegEpochs, eeg_measures
from models.features.psg import N_MEASURES, PsgFeatures, PsgRows, psg_features
from stream.assembly import EPOCH_S, EpochRow, chunk_start_s
from stream.schemas import EpochInputStats, SampleChunk

__all__ = ["EegAssembler", "EegSignal", "eeg_night_rows"]

F64 = NDArray[np.float64]
_STATE_VERSION = 1
#: Column of the variance (uV^2) in the front-end's measures.
_VAR = 5


class EegAssembler:
    """Epoch rows of a psg session from its EEG chunks (see the module docstring).

    Parameters
    ----------
    start : datetime
        Session start (timezone-aware): epoch ``k`` covers ``[30 k, 30 k + 30)`` s from it.
    channels : sequence of str
        The session's EEG channel labels, in the order of the rows' channel axis.
    """

    def __init__(self, start: datetime, channels: Sequence[str]) -> None:
        self.start = start
        self.features = PsgFeatures(channels)
        self.channels = self.features.channels
        self.fronts: dict[str, EegChannel] = {}
        # measures of epochs >= n_closed that a channel has made final, by epoch
        self.pending: dict[str, dict[int, F64]] = {c: {} for c in self.channels}
        # highest epoch each channel has made final (-1: none)
        self.final: dict[str, int] = dict.fromkeys(self.channels, -1)

    @property
    def n_closed(self) -> int:
        """Epochs closed so far."""
        return self.features.n_closed

    @property
    def row_shape(self) -> tuple[int, ...]:
        """``(n_channels, n_features + 1)``: a stored row carries the channel mask."""
        return (len(self.channels), self.features.n_features + 1)

    @property
    def delay_s(self) -> float:
        """The longest resampler delay of the channels seen so far (s)."""
        return max((f.delay_s for f in self.fronts.values()), default=0.0)

    # ------------------------------------------------------------------ input
    def add(self, chunk: SampleChunk) -> float:
        """Feed a chunk to its channel's front-end; the time of its last sample.

        Raises
        ------
        ValueError
            For a chunk that cannot be used (module docstring); nothing changes then.
        """
        front = self._front(chunk)
        t0 = chunk_start_s(chunk, self.start)
        closed_end = self.n_closed * EPOCH_S
        if self.n_closed and t0 < closed_end:
            msg = (f"eeg samples of channel {front.channel!r} from t={t0:.3f} s arrive after "
                   f"epoch {self.n_closed - 1} closed at {closed_end:.3f} s; samples before "
                   "that are late and cannot be added (send the chunk to the dead-letter topic)")
            raise ValueError(msg)
        rows = front.feed(t0, chunk.values_array())
        self.fronts[front.channel] = front
        self._take(front.channel, rows)
        return t0 + (len(chunk) - 1) / front.fs_hz

    def _front(self, chunk: SampleChunk) -> EegChannel:
        """The front-end of the chunk's channel (a new one at its first chunk, not kept yet)."""
        channel, rate = chunk.channel, chunk.rate_hz
        if chunk.modality != "eeg" or channel is None or rate is None:
            msg = (f"psg sessions take eeg chunks (one channel each, at rate_hz); got a "
                   f"{chunk.modality!r} chunk. Send other signals in a session of their family")
            raise ValueError(msg)
        if channel not in self.pending:
            msg = (f"eeg channel {channel!r} is not one of the session's channels "
                   f"{list(self.channels)}; announce every channel in the session start")
            raise ValueError(msg)
        front = self.fronts.get(channel)
        if front is None:
            return EegChannel(channel, rate)
        if rate != front.fs_hz:
            msg = (f"eeg channel {channel!r} is sampled at {front.fs_hz:g} Hz in this "
                   f"session; got a chunk at {rate:g} Hz. A channel keeps its rate")
            raise ValueError(msg)
        return front

    def _take(self, channel: str, rows: EegEpochs) -> None:
        if rows.epoch.size == 0:
            return
        waiting = self.pending[channel]
        for k, m in zip(rows.epoch.tolist(), rows.measures, strict=True):
            if k >= self.n_closed:  # rows of closed (or negative) epochs have no use
                waiting[k] = m
        self.final[channel] = max(self.final[channel], int(rows.epoch[-1]))

    # ------------------------------------------------------------------ closing
    def complete(self) -> int:
        """Epochs from ``n_closed`` on that every channel has made final."""
        return max(0, min(self.final.values()) + 1 - self.n_closed)

    def close_epoch(self) -> EpochRow:
        """Close epoch ``n_closed``: flush the channels that have not made it final."""
        k = self.n_closed
        measures = np.full((len(self.channels), N_MEASURES), np.nan)
        for i, channel in enumerate(self.channels):
            front = self.fronts.get(channel)
            if self.final[channel] < k and front is not None:
                self._take(channel, front.flush())
            m = self.pending[channel].pop(k, None)
            if m is not None:
                measures[i] = m
        rows = self.features.step(measures)
        present = rows.present
        var = measures[present, _VAR]
        inputs = EpochInputStats(
            eeg_channels=int(present.sum()),
            eeg_rms_uv=math.sqrt(float(var.mean())) if var.size else None,
        )
        return EpochRow(rows.features, present, inputs, bool(present.any()))

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """JSON-able state, exact."""
        pending = {}
        for channel, rows in self.pending.items():
            epochs = sorted(rows)
            pending[channel] = {
                "epochs": pack(np.asarray(epochs, np.int64), "<i8"),
                "measures": pack(np.asarray([rows[k] for k in epochs]).reshape(-1)),
            }
        return {
            "state_version": _STATE_VERSION,
            "features": self.features.to_state(),
            "fronts": {c: f.to_state() for c, f in self.fronts.items()},
            "pending": pending,
            "final": dict(self.final),
        }

    @classmethod
    def from_state(cls, d: Mapping[str, Any], start: datetime) -> EegAssembler:
        """Inverse of :meth:`to_state` for a session starting at ``start``.

        Raises
        ------
        ValueError
            If the state was written by another version, or a part of it is refused by
            its own ``from_state``.
        """
        if d.get("state_version") != _STATE_VERSION:
            msg = (f"eeg assembly state version {d.get('state_version')!r} is not "
                   f"{_STATE_VERSION}; the session must be restarted")
            raise ValueError(msg)
        features = PsgFeatures.from_state(d["features"])
        new = cls(start, features.channels)
        new.features = features
        new.fronts = {c: EegChannel.from_state(s) for c, s in d["fronts"].items()}
        for channel, rows in d["pending"].items():
            epochs = unpack(rows["epochs"], "<i8").tolist()
            measures = unpack(rows["measures"]).reshape(len(epochs), N_MEASURES)
            new.pending[channel] = dict(zip(epochs, measures, strict=True))
        new.final = {c: int(v) for c, v in d["final"].items()}
        return new


class EegSignal(NamedTuple):
    """One EEG channel of a whole recording, for the batch path.

    Attributes
    ----------
    channel : str
        Its label.
    fs_hz : float
        Its regular rate (Hz), >= 100.
    t0_s : float
        Time of its first sample in s since the session start.
    x_uv : array-like of float, shape (n,)
        The samples in microvolts.
    """

    channel: str
    fs_hz: float
    t0_s: float
    x_uv: ArrayLike


def eeg_night_rows(signals: Sequence[EegSignal], n_epochs: int) -> PsgRows:
    """Feature rows of a whole psg night in one batch: what the stream gives epoch by epoch.

    Each channel's measures come from :func:`~models.features.eeg.eeg_measures` (the
    front-end fed the whole channel, then flushed), placed on the session's epoch grid (the
    epochs of the session without measures of the channel stay masked; measures of
    epochs before the start or from ``n_epochs`` on are dropped), then
    :func:`~models.features.psg.psg_features` over the night.

    Parameters
    ----------
    signals : sequence of EegSignal
        The session's channels, in the order of its ``channels``.
    n_epochs : int
        Epochs of the session.

    Returns
    -------
    PsgRows
        ``features`` (n_epochs, n_channels, n_features) and ``present``
        (n_epochs, n_channels).
    """
    if not signals:
        msg = "a psg night needs at least one EEG channel; got none"
        raise ValueError(msg)
    measures = np.full((n_epochs, len(signals), N_MEASURES), np.nan)
    for i, s in enumerate(signals):
        rows = eeg_measures(s.x_uv, s.fs_hz, t0_s=s.t0_s, channel=s.channel)
        keep = (rows.epoch >= 0) & (rows.epoch < n_epochs)
        measures[rows.epoch[keep], i] = rows.measures[keep]
    return psg_features(measures, [s.channel for s in signals])
